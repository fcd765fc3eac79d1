package web_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/sim"
)

// EDGE and CORE select the leaves (ports to servers) and the spines (every
// port on a link) of a links-only topology; maps label key values; keys of
// records fabrictrace does not decode are refused, naming the record.
func TestEdgeCoreMapsAndUndecodedKeys(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 2, Mice: -1, CounterInterval: time.Second, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.11"), Dst: mustAddr("172.16.1.41"), Rate: 1e9, Duration: time.Hour}}}, false)
	var links []string
	for leaf := 1; leaf <= 4; leaf++ {
		for spine := 1; spine <= 2; spine++ {
			links = append(links, fmt.Sprintf(`"l%d%d":{"node1":"leaf%02d","port1":"swp5%d","node2":"spine%02d","port2":"swp%d"}`,
				leaf, spine, leaf, spine, spine, leaf))
		}
	}
	r.must("PUT", "/topology/json", `{"links":{`+strings.Join(links, ",")+`}}`, 204)
	r.must("PUT", "/map/ports/json", `{"iperf":["5201"],"web":["80","443"]}`, 204)
	r.must("PUT", "/flow/apps/json", `{"keys":"map:tcpdestinationport:ports","value":"bps"}`, 204)
	r.must("PUT", "/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps"}`, 204)
	for r.sim.Now() < 3*time.Second {
		r.step()
	}
	agentsOf := func(sel string) map[string]bool {
		var afs []api.ActiveFlow
		json.Unmarshal([]byte(r.must("GET", "/activeflows/"+sel+"/pairs/json?maxFlows=100", "", 200)), &afs)
		seen := map[string]bool{}
		for _, af := range afs {
			seen[af.Agent] = true
		}
		var stats []api.Statistic
		json.Unmarshal([]byte(r.must("GET", "/metric/"+sel+"/ifspeed/json", "", 200)), &stats)
		if len(stats) != 1 || stats[0].MetricN == 0 {
			t.Errorf("/metric/%s/ifspeed: %+v", sel, stats)
		}
		return seen
	}
	edge, core := agentsOf("EDGE"), agentsOf("CORE")
	if len(edge) == 0 || len(core) == 0 {
		t.Fatalf("EDGE %v, CORE %v", edge, core)
	}
	for a := range edge {
		if !strings.HasPrefix(a, "10.255.1.") {
			t.Errorf("EDGE selected %s, not a leaf", a)
		}
	}
	for a := range core {
		if !strings.HasPrefix(a, "10.255.0.") {
			t.Errorf("CORE selected %s, not a spine", a)
		}
	}

	// The elephant goes to iperf's port 5201: the map labels it.
	var apps []api.ActiveFlow
	json.Unmarshal([]byte(r.must("GET", "/activeflows/ALL/apps/json", "", 200)), &apps)
	if len(apps) != 1 || apps[0].Key != "iperf" {
		t.Errorf("apps %+v, want the elephant as iperf", apps)
	}
	if got := r.must("GET", "/map/ports/json", "", 200); !strings.Contains(got, `"web":["80","443"]`) {
		t.Errorf("GET map: %s", got)
	}
	if got := r.must("GET", "/map/json", "", 200); !strings.Contains(got, `"ports"`) {
		t.Errorf("GET maps: %s", got)
	}
	r.must("PUT", "/map/bad/json", `{"a":["80"],"b":["80"]}`, 400)
	r.must("DELETE", "/map/ports/json", "", 204)
	r.must("DELETE", "/map/ports/json", "", 404)
	r.must("GET", "/map/ports/json", "", 404)

	// sFlow-RT's reference: /metric/{agent}/json of an unknown agent is 404.
	r.must("GET", "/metric/10.255.1.1/json", "", 200)
	r.must("GET", "/metric/10.9.9.9/json", "", 404)
	r.must("GET", "/metric/nosuchnode/json", "", 404)

	for body, record := range map[string]string{
		`{"keys":"ipsource","value":"bps","values":["avg:tcprtt"]}`: "0:2209",
		`{"keys":"uri:httpuri:path","value":"bps"}`:                 "0:2206",
		`{"keys":"ipsource","value":"requests"}`:                    "0:2206",
		`{"keys":"queuedepth","value":"frames"}`:                    "0:1036",
	} {
		if got := r.must("PUT", "/flow/undecoded/json", body, 400); !strings.Contains(got, record) {
			t.Errorf("%s: %s, want the error to name record %s", body, got, record)
		}
	}
}
