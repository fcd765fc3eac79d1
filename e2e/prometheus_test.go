//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// promConfig is InMon's blog's scrape configuration for sFlow-RT (the
// native exporter's analyzer and metrics, the prometheus app's flow
// export with comma lists), plus the collector's own /metrics, aimed at
// the collector.
const promConfig = `global:
  scrape_interval: 2s
  scrape_timeout: 2s
scrape_configs:
  - job_name: fabrictrace
    static_configs: [{targets: ['%[1]s']}]
  - job_name: sflow-rt-analyzer
    metrics_path: /prometheus/analyzer/txt
    static_configs: [{targets: ['%[1]s']}]
  - job_name: sflow-rt-metrics
    metrics_path: /prometheus/metrics/ALL/ALL/txt
    static_configs: [{targets: ['%[1]s']}]
  - job_name: sflow-rt-src-dst-bps
    metrics_path: /app/prometheus/scripts/export.js/flows/ALL/txt
    params:
      metric: ['sflow_src_dst_bps']
      key: ['ipsource,ipdestination']
      label: ['src,dst']
      value: ['bytes']
      scale: ['8']
      maxFlows: ['100']
      minValue: ['1000']
    static_configs: [{targets: ['%[1]s']}]
`

// A real Prometheus (Debian's) scrapes the collector beside the simulated
// fabric with the blog's jobs: every job is up, and the series carry the
// labels and values a Grafana dashboard reads.
func TestRealPrometheusScrapesEveryJob(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: run e2e/setup.sh as root")
	}
	dir := t.TempDir()
	httpAddr, _ := demoFabric(t, dir)
	promAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(promConfig, httpAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "prometheus", nil, prom, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)

	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	query := func(q string) ([]sample, error) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct{ Result []sample }
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return nil, err
		}
		return r.Data.Result, nil
	}
	value := func(s sample) float64 {
		str, _ := s.Value[1].(string)
		v, _ := strconv.ParseFloat(str, 64)
		return v
	}
	waitFor(t, "every job up", 60*time.Second, func() (bool, string) {
		res, err := query("up")
		if err != nil {
			return false, err.Error()
		}
		up := map[string]float64{}
		for _, s := range res {
			up[s.Metric["job"]] = value(s)
		}
		return len(up) == 4 && up["fabrictrace"] == 1 && up["sflow-rt-analyzer"] == 1 &&
			up["sflow-rt-metrics"] == 1 && up["sflow-rt-src-dst-bps"] == 1, fmt.Sprint(up)
	})
	// The demo fabric's elephant, 300 Mbit/s, as the flow job labels it.
	waitFor(t, "the elephant in sflow_src_dst_bps", 30*time.Second, func() (bool, string) {
		res, err := query(`sflow_src_dst_bps{src="172.16.1.11",dst="172.16.1.42"}`)
		if err != nil || len(res) == 0 {
			return false, fmt.Sprint(res, err)
		}
		v := value(res[0])
		return v > 200e6 && v < 400e6, fmt.Sprint(res)
	})
	// Interface counters with their names, as dashboards group them.
	waitFor(t, "interface counters with host and ifname", 30*time.Second, func() (bool, string) {
		res, err := query(`sflow_ifinoctets{host="leaf01",ifname="swp1"}`)
		return err == nil && len(res) == 1 && value(res[0]) > 0, fmt.Sprint(res, err)
	})
	res, err := query("sflow_analyzer_agents")
	if err != nil || len(res) != 1 || value(res[0]) < 10 {
		t.Errorf("sflow_analyzer_agents: %v %v", res, err)
	}
}
