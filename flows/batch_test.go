package flows_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// oneByOne hides the engine's FlowBatch, so the decoder hands it one
// sample at a time.
type oneByOne struct{ e *flows.Engine }

func (v oneByOne) Flow(d *decode.Datagram, s *decode.FlowSample)       { v.e.Flow(d, s) }
func (v oneByOne) Counter(d *decode.Datagram, s *decode.CounterSample) { v.e.Counter(d, s) }

// TestBatchedMatchesOneByOne: an engine taking each datagram's samples
// together must end where one taking them one by one does: the same flows
// and values, evictions, events, elephants and paths. The tables are kept
// small so that both evict, and the clock steps by hand.
func TestBatchedMatchesOneByOne(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	defs := map[string]keys.Definition{
		"elephant": {Keys: "node:inputifindex,ipsource,ipdestination,ipttl", Value: "bytes"},
		"pairs":    {Keys: "ipsource,ipdestination", Value: "bps", Values: "count:ipttl,avg:ipttl,frames"},
		"ports":    {Keys: "node:inputifindex,inputifindex", Value: "bps"},
	}
	engines := [2]*flows.Engine{}
	for i := range engines {
		e := flows.New(flows.Config{MaxFlows: 700, MaxPaths: 600, Now: clock})
		for name, d := range defs {
			if err := e.SetFlow(name, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 2e6, ByFlow: true, Timeout: 1}); err != nil {
			t.Fatal(err)
		}
		if err := e.SetThreshold("busyport", thresholds.Threshold{Metric: "ports", Value: 1e8}); err != nil {
			t.Fatal(err)
		}
		engines[i] = e
	}
	batched, single := engines[0], engines[1]
	var dec decode.Decoder
	dgs := sflowtest.LoadDatagrams(1000)
	for round := range 4 {
		for i, dg := range dgs {
			if i < len(dgs)/(round+1) { // later rounds repeat fewer flows
				dec.Decode(dg, batched)
				dec.Decode(dg, oneByOne{single})
			}
			now = now.Add(time.Millisecond)
		}
		batched.Sweep()
		single.Sweep()
	}
	all := func(netip.Addr) bool { return true }
	snapshot := func(e *flows.Engine) string {
		st := e.Stats()
		st.Waiters = 0
		out := map[string]any{"stats": st, "elephants": e.ActiveElephants(),
			"events": e.Events(context.Background(), -1, "", 100000, 0)}
		for name := range defs {
			af, err := e.ActiveFlows(name, all, 100000, 0, "sum")
			if err != nil {
				t.Fatal(err)
			}
			out[name] = af
		}
		paths, err := e.Paths(api.PathQuery{Src: netip.MustParseAddr("172.16.0.7"), Dst: netip.MustParseAddr("172.17.0.0")})
		if err != nil {
			t.Fatal(err)
		}
		out["paths"] = paths
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	st := batched.Stats()
	if st.FlowsEvicted == 0 || st.PathsEvicted == 0 || st.Events == 0 {
		t.Fatalf("the load should evict flows and paths and fire events: %+v", st)
	}
	if a, b := snapshot(batched), snapshot(single); a != b {
		t.Fatalf("batched engine differs from one fed sample by sample:\n%.2000s\n%.2000s", a, b)
	}
}
