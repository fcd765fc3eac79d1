package web_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/sim"
)

func TestCounterMetricsDumpTableAndThresholds(t *testing.T) {
	// 1 Gbit/s from server01 into leaf01 swp1 (a 10G port): 10 % in.
	r := newRig(t, sim.Config{Seed: 2, Mice: -1, CounterInterval: time.Second, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.11"), Dst: mustAddr("172.16.1.41"), Rate: 1e9, Duration: time.Hour}}}, false)
	r.must("PUT", "/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps","n":3}`, 204)
	r.must("PUT", "/threshold/busy/json", `{"metric":"ifinutilization","value":5,"filter":{"ifspeed":[10000000000]}}`, 204)
	// A filter on any counter metric: the leaves' uplinks by name.
	r.must("PUT", "/threshold/uplinks/json", `{"metric":"ifoututilization","value":0.5,"filter":{"ifname":["swp51","swp52"]}}`, 204)
	for r.sim.Now() < 5*time.Second {
		r.step()
	}
	var stats []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/10.255.1.1/1.ifinoctets,1.ifinutilization,1.ifname,host_name/json", "", 200)), &stats)
	if len(stats) != 4 {
		t.Fatalf("stats %+v", stats)
	}
	want := 1e9 / 8 * 1514 / 1500
	if v := stats[0].MetricValue.(float64); math.Abs(v-want)/want > 0.02 {
		t.Errorf("leaf01 swp1 ifinoctets %.0f B/s, want about %.0f", v, want)
	}
	if v := stats[1].MetricValue.(float64); math.Abs(v-10.1) > 0.3 {
		t.Errorf("leaf01 swp1 ifinutilization %.2f %%, want about 10.1", v)
	}
	if stats[2].MetricValue != "swp1" || stats[3].MetricValue != "leaf01" {
		t.Errorf("names: %v %v", stats[2].MetricValue, stats[3].MetricValue)
	}
	r.must("GET", "/metric/ALL/bogus/json", "", 404)
	r.must("GET", "/metric/ALL/median:ifspeed/json", "", 400)

	var sum []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/ALL/sum:ifspeed/json", "", 200)), &sum)
	// 4 leaves x (1 server port at 10G + 2 uplinks at 100G), 2 spines x 4 x 100G.
	if sum[0].MetricValue != float64(4*(10e9+2*100e9)+2*4*100e9) || sum[0].MetricN != 20 {
		t.Errorf("sum:ifspeed %+v", sum[0])
	}
	// Attribute filters in the query, as sFlow-RT takes them.
	for q, want := range map[string]string{"host_name=spine*": "10.255.0.", "host_name=leaf04": "10.255.1.4",
		"host_name=leaf01,leaf02&ifspeed=10000000000": "10.255.1."} {
		var st []api.Statistic
		json.Unmarshal([]byte(r.must("GET", "/metric/ALL/max:ifinoctets/json?"+q, "", 200)), &st)
		if len(st) != 1 || st[0].MetricN == 0 || !strings.HasPrefix(st[0].Agent, want) {
			t.Errorf("?%s: %+v, want an agent %s...", q, st, want)
		}
	}
	var none []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/ALL/max:ifinoctets/json?host_name=nowhere", "", 200)), &none)
	if len(none) != 1 || none[0].MetricN != 0 {
		t.Errorf("?host_name=nowhere: %+v", none)
	}
	r.must("GET", "/metric/ALL/max:ifinoctets/json?colour=red", "", 400)
	// The spread of those 20 speeds: 4 at 10G, 16 at 100G (mean 82G).
	var spread []api.Statistic
	json.Unmarshal([]byte(r.must("GET", "/metric/ALL/med:ifspeed,q1:ifspeed,q3:ifspeed,iqr:ifspeed,var:ifspeed,sdev:ifspeed/json", "", 200)), &spread)
	for i, want := range []float64{100e9, 100e9, 100e9, 0, 1296e18, 36e9} {
		if i >= len(spread) || math.Abs(spread[i].MetricValue.(float64)-want) > want*1e-9 {
			t.Errorf("%d: %+v, want %g", i, spread, want)
			break
		}
	}

	var dump []api.Metric
	json.Unmarshal([]byte(r.must("GET", "/dump/10.255.1.1/pairs/json", "", 200)), &dump)
	// swp1 takes the elephant in; swp52 (or 51) its ACKs.
	if len(dump) != 2 || dump[0].DataSource != "1" || len(dump[0].TopKeys) == 0 ||
		dump[0].TopKeys[0].Key != "172.16.1.11,172.16.1.41" {
		t.Errorf("dump of pairs at leaf01: %+v", dump)
	}
	var table [][]api.Metric
	json.Unmarshal([]byte(r.must("GET", "/table/10.255.1.1/ifname,ifspeed/json", "", 200)), &table)
	if len(table) != 3 || table[0][0].MetricName != "ifname" || table[0][1].MetricName != "ifspeed" {
		t.Errorf("table %+v", table)
	}
	// sort:m:-N: the top N rows by m. leaf01 swp1 takes the elephant in.
	var top [][]api.Metric
	json.Unmarshal([]byte(r.must("GET", "/table/ALL/ifname,sort:ifinoctets:-2/json", "", 200)), &top)
	if len(top) != 2 || top[0][1].MetricName != "ifinoctets" || top[0][0].MetricValue != "swp1" ||
		top[0][1].MetricValue.(float64) < top[1][1].MetricValue.(float64) {
		t.Errorf("top 2 by ifinoctets: %+v", top)
	}
	r.must("GET", "/table/ALL/sort:ifinoctets:x/json", "", 400)

	var events []api.Event
	json.Unmarshal([]byte(r.must("GET", "/events/json?thresholdID=busy", "", 200)), &events)
	places := map[string]bool{}
	for _, ev := range events {
		places[ev.Agent+":"+ev.DataSource] = true
	}
	// Only 10G ports pass the filter, and only leaf01 swp1 takes the
	// elephant in.
	if len(places) != 1 || !places["10.255.1.1:1"] || len(events) != 1 {
		t.Errorf("busy events %+v", events)
	}
	for p := range places {
		if strings.HasPrefix(p, "10.255.0.") {
			t.Errorf("event on a 100G spine port %s despite the ifspeed filter", p)
		}
	}
	// 1 Gbit/s is 1 % of a 100G uplink: leaf01's, out; the spine's ports
	// (swp1-4) do not pass the filter.
	json.Unmarshal([]byte(r.must("GET", "/events/json?thresholdID=uplinks", "", 200)), &events)
	if len(events) != 1 || events[0].Agent != "10.255.1.1" || (events[0].DataSource != "51" && events[0].DataSource != "52") {
		t.Errorf("uplinks events %+v", events)
	}
}

// sFlow-RT's own Prometheus exporter paths, as its scrape jobs name them:
// every counter metric with agent, datasource, host and ifname labels, in
// text Prometheus parses; and the analyzer's figures.
func TestPrometheusNativeExporter(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 2, Mice: -1, CounterInterval: time.Second, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.11"), Dst: mustAddr("172.16.1.41"), Rate: 1e9, Duration: time.Hour}}}, false)
	r.must("PUT", "/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps"}`, 204)
	for r.sim.Now() < 3*time.Second {
		r.step()
	}
	parse := func(text string) map[string]*dto.MetricFamily {
		t.Helper()
		parser := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatalf("not Prometheus text: %v\n%.500s", err, text)
		}
		return fams
	}
	for _, path := range []string{"/prometheus/metrics/ALL/ALL/txt", "/prometheus/metrics/ALL/ifinoctets,ifoutoctets/txt"} {
		fams := parse(r.must("GET", path, "", 200))
		f := fams["sflow_ifinoctets"]
		if f == nil {
			t.Fatalf("%s: no sflow_ifinoctets among %d families", path, len(fams))
		}
		found := false
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["agent"] == "10.255.1.1" && l["datasource"] == "1" {
				found = l["host"] == "leaf01" && l["ifname"] == "swp1" && m.GetUntyped().GetValue() > 1e8
			}
		}
		if !found {
			t.Errorf("%s: no leaf01 swp1 series with its labels and rate:\n%v", path, f)
		}
		if path != "/prometheus/metrics/ALL/ALL/txt" && len(fams) != 2 {
			t.Errorf("%s: %d families", path, len(fams))
		}
	}
	// The app's statistics export: a summary over the agents, by group.
	fams := parse(r.must("GET", "/app/prometheus/scripts/export.js/statistics/fabric/ALL/max:ifinoctets,sum:ifspeed/txt", "", 200))
	if f := fams["sflow_max_ifinoctets"]; f == nil || f.GetMetric()[0].GetLabel()[0].GetValue() != "fabric" ||
		f.GetMetric()[0].GetUntyped().GetValue() < 1e8 || fams["sflow_sum_ifspeed"] == nil {
		t.Errorf("statistics export: %v", fams)
	}
	fams = parse(r.must("GET", "/prometheus/analyzer/txt", "", 200))
	if f := fams["sflow_analyzer_agents"]; f == nil || f.GetMetric()[0].GetUntyped().GetValue() == 0 {
		t.Errorf("sflow_analyzer_agents: %v", f)
	}
}

// After a topology of links alone, TOPOLOGY selects the agents of the
// linked nodes (named by their host_descr), and a node's name selects its
// agent, as sFlow-RT's selectors do.
func TestTopologyAndNameSelectors(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 2, Mice: -1, CounterInterval: time.Second, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.11"), Dst: mustAddr("172.16.1.41"), Rate: 1e9, Duration: time.Hour}}}, false)
	r.must("PUT", "/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps"}`, 204)
	r.must("PUT", "/topology/json", `{"links":{"l1":{"node1":"leaf01","port1":"swp51","node2":"spine01","port2":"swp1"}}}`, 204)
	for r.sim.Now() < 3*time.Second {
		r.step()
	}
	var all, topo, leaf []api.ActiveFlow
	json.Unmarshal([]byte(r.must("GET", "/activeflows/ALL/pairs/json?aggMode=sum", "", 200)), &all)
	json.Unmarshal([]byte(r.must("GET", "/activeflows/TOPOLOGY/pairs/json?aggMode=sum", "", 200)), &topo)
	json.Unmarshal([]byte(r.must("GET", "/activeflows/leaf01/pairs/json?aggMode=sum", "", 200)), &leaf)
	if len(all) == 0 || len(topo) == 0 || len(leaf) == 0 {
		t.Fatalf("ALL %d, TOPOLOGY %d, leaf01 %d flows", len(all), len(topo), len(leaf))
	}
	// The elephant crosses leaf01, a spine and leaf04: summed over all of
	// them it is three times what leaf01 alone saw.
	if ratio := all[0].Value / leaf[0].Value; ratio < 2.5 || ratio > 3.5 {
		t.Errorf("ALL %.0f against leaf01 %.0f", all[0].Value, leaf[0].Value)
	}
	r.must("GET", "/activeflows/nosuchnode/pairs/json", "", 400)
}
