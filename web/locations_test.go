package web_test

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/sim"
)

// /flowlocations gives the places a flow passes, /flowvalue its value at
// one of them, and /flowkeys the keys the samples seen could give.
func TestFlowLocationsValueAndKeys(t *testing.T) {
	src, dst := mustAddr("172.16.1.11"), mustAddr("172.16.1.41")
	r := newRig(t, sim.Config{Seed: 2, Mice: -1, Elephants: []sim.Elephant{{Src: src, Dst: dst, Rate: 1e9, Duration: time.Hour}}}, false)
	r.must("PUT", "/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps"}`, 204)
	for r.sim.Now() < 5*time.Second {
		r.step()
	}
	var locs []api.FlowLocation
	json.Unmarshal([]byte(r.must("GET", "/flowlocations/ALL/pairs/json?key=172.16.1.11,172.16.1.41", "", 200)), &locs)
	// Every switch samples its ports' ingress: leaf01's server port, one
	// spine's port from leaf01, leaf04's uplink from that spine.
	if len(locs) != 3 {
		t.Fatalf("locations %+v, want leaf01, a spine and leaf04", locs)
	}
	want := 1e9 * 1514 / 1500
	var agents []string
	for _, l := range locs {
		agents = append(agents, l.Agent)
		if math.Abs(l.Value-want)/want > 0.1 {
			t.Errorf("%+v: want about %.3g bit/s", l, want)
		}
	}
	if locs[0].Value < locs[1].Value || locs[1].Value < locs[2].Value {
		t.Errorf("not largest first: %+v", locs)
	}
	slices.Sort(agents)
	if !strings.HasPrefix(agents[0], "10.255.0.") || agents[1] != "10.255.1.1" || agents[2] != "10.255.1.4" {
		t.Errorf("locations at %v: want a spine, leaf01 and leaf04", agents)
	}
	for _, l := range locs {
		if l.Agent == "10.255.1.1" && l.DataSource != "1" {
			t.Errorf("at leaf01: %+v, want its server port 1", l)
		}
	}
	// Only the selected agents; none for the reverse direction's key
	// at leaf01's server port.
	json.Unmarshal([]byte(r.must("GET", "/flowlocations/10.255.1.1/pairs/json?key=172.16.1.11,172.16.1.41", "", 200)), &locs)
	if len(locs) != 1 || locs[0].Agent != "10.255.1.1" {
		t.Errorf("leaf01 only: %+v", locs)
	}

	var v float64
	json.Unmarshal([]byte(r.must("GET", "/flowvalue/10.255.1.1/1.pairs/json?key=172.16.1.11,172.16.1.41", "", 200)), &v)
	if math.Abs(v-locs[0].Value) > want*0.05 || v == 0 {
		t.Errorf("flowvalue at leaf01 port 1: %v, want about %v", v, locs[0].Value)
	}
	json.Unmarshal([]byte(r.must("GET", "/flowvalue/10.255.1.1/2.pairs/json?key=172.16.1.11,172.16.1.41", "", 200)), &v)
	if v != 0 {
		t.Errorf("flowvalue at a port the flow does not enter: %v", v)
	}
	r.must("GET", "/flowlocations/ALL/pairs/json", "", 400)
	r.must("GET", "/flowvalue/ALL/pairs/json?key=a", "", 400)
	r.must("GET", "/flowlocations/ALL/nosuch/json?key=a", "", 404)

	var keys map[string]int64
	json.Unmarshal([]byte(r.must("GET", "/flowkeys/json", "", 200)), &keys)
	for _, k := range []string{"agent", "inputifindex", "macsource", "ipsource", "ipttl", "tcpsourceport", "tcpflags", "vlansource"} {
		if ago, ok := keys[k]; !ok || ago < 0 || ago > 1000 {
			t.Errorf("/flowkeys lacks %s (or saw it %d ms ago): %v", k, ago, keys)
		}
	}
	for _, k := range []string{"ip6source", "udpsourceport", "vni", "ipsource.1", "reason", "ipsourcemaskbits"} {
		if _, ok := keys[k]; ok {
			t.Errorf("/flowkeys has %s, which no sample could give", k)
		}
	}
}
