package web_test

import (
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/sim"
)

// The simulated servers send hsflowd's host records; their metrics come out
// in sFlow-RT's names, filter thresholds by any attribute (os_name, as the
// reference's own example does) and reach Prometheus.
func TestHostMetrics(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 3, Mice: -1, ServerAgents: true, CounterInterval: time.Second}, false)
	r.must("PUT", "/threshold/busyhosts/json", `{"metric":"load_one","value":4.5,"filter":{"os_name":["linux"]}}`, 204)
	r.must("PUT", "/threshold/windows/json", `{"metric":"load_one","value":1,"filter":{"os_name":["windows"]}}`, 204)
	for r.sim.Now() < 5*time.Second {
		r.step()
	}
	// server02 is busy 25 % of 16 CPUs: its simulated figures.
	names := []string{"load_one", "cpu_num", "cpu_utilization", "cpu_user", "cpu_idle", "mem_utilization",
		"disk_utilization", "part_max_used", "disk_bytes_read", "page_out", "os_name", "machine_type", "os_release", "host_name"}
	want := []any{4.0, 16.0, 25.0, 17.5, 75.0, 43.75, 100 * 848.0 / 2048, 41.4, float64(8 << 20), 300.0,
		"linux", "x86_64", "6.1.0-28-amd64", "server02"}
	var stats []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/ALL/"+strings.Join(names, ",")+"/json?host_name=server02", "", 200)), &stats)
	if len(stats) != len(names) {
		t.Fatalf("%d statistics for %d metrics: %+v", len(stats), len(names), stats)
	}
	for i, st := range stats {
		// host_name is every data source's: the host's and its NIC's.
		if st.MetricName != names[i] || st.MetricN != 1 && names[i] != "host_name" || st.Agent != "10.0.0.2" {
			t.Errorf("%s: %+v", names[i], st)
			continue
		}
		if w, ok := want[i].(float64); ok {
			if v, _ := st.MetricValue.(float64); math.Abs(v-w) > 0.01*math.Max(1, w) {
				t.Errorf("%s = %v, want %v", names[i], st.MetricValue, w)
			}
		} else if st.MetricValue != want[i] {
			t.Errorf("%s = %v, want %v", names[i], st.MetricValue, want[i])
		}
	}
	// The host's network rate is its NIC's, from the same counters.
	var nic, host []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/10.0.0.1/2.ifinoctets/json", "", 200)), &nic)
	json.Unmarshal([]byte(r.must("GET", "/metric/10.0.0.1/2.1.bytes_in/json", "", 200)), &host)
	if len(nic) != 1 || len(host) != 1 || nic[0].MetricValue != host[0].MetricValue {
		t.Errorf("server01 eth0 ifinoctets %+v, host bytes_in %+v: want equal", nic, host)
	}

	var events []api.Event
	json.Unmarshal([]byte(r.must("GET", "/events/json?thresholdID=busyhosts", "", 200)), &events)
	if len(events) == 0 {
		t.Fatal("no busyhosts events, although half the servers have a load of 4.8 or 5.6")
	}
	for _, ev := range events {
		a := netip.MustParseAddr(ev.Agent).As4()
		if ev.DataSource != "2.1" || (a[3]-1)%4 < 2 || ev.Value < 4.5 {
			t.Errorf("busyhosts event %+v: only servers loaded over 4.5 should fire", ev)
		}
	}
	json.Unmarshal([]byte(r.must("GET", "/events/json?thresholdID=windows", "", 200)), &events)
	if len(events) != 0 {
		t.Errorf("the os_name filter let linux hosts fire a windows threshold: %+v", events)
	}

	prom := r.must("GET", "/prometheus/metrics/ALL/load_one,mem_utilization/txt", "", 200)
	if !strings.Contains(prom, `sflow_load_one{agent="10.0.0.2",datasource="2.1",host="server02"} 4`) ||
		!strings.Contains(prom, "sflow_mem_utilization{") {
		t.Errorf("Prometheus exporter lacks the host metrics:\n%s", prom)
	}
}
