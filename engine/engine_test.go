package engine_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func links() map[string]api.TopologyLink {
	out := map[string]api.TopologyLink{}
	for l := 1; l <= 4; l++ {
		for s := 1; s <= 2; s++ {
			out[fmt.Sprintf("leaf%02d-spine%02d", l, s)] = api.TopologyLink{Node1: fmt.Sprintf("leaf%02d", l),
				Port1: fmt.Sprintf("swp%d", 50+s), Node2: fmt.Sprintf("spine%02d", s), Port2: fmt.Sprintf("swp%d", l)}
		}
	}
	return out
}

// Results do not depend on the number of shards. One simulated load (a
// minute and a half of a fabric whose links fail, with mice, 1 Gbit/s
// elephants, a colliding twin, flows straddling the threshold and agents
// that hold datagrams 1 s) is fed, datagram by datagram on one clock, into
// 1, 2 and 4 shards with the demo's definitions, a confident pair
// threshold, a threshold on a flow keyed by source alone (the primary's)
// and the topology. Their top flows, events, elephants, collisions, paths
// and metrics must be the same.
func TestResultsDoNotDependOnShards(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 5, Mice: 100, ServerAgents: true, ExportDelay: time.Second,
		LinkFailures: true, LinkFailEvery: 15 * time.Second, LinkDownFor: 5 * time.Second,
		ElephantEvery: 10 * time.Second, ElephantRate: 1e9, ElephantDuration: 20 * time.Second, Collision: true,
		MixEvery: 2 * time.Second, MixThreshold: 100e6})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ks := []int{1, 2, 4, 2} // the last gathers batches, as an engine node's
	var engines []*engine.Engine
	for i, k := range ks {
		e, err := engine.New(flows.Config{Now: clock.now}, k)
		if err != nil {
			t.Fatal(err)
		}
		e.Gather = i == len(ks)-1
		t.Cleanup(e.Close)
		for name, ks := range map[string]string{
			"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
			"pairs":    "ipsource,ipdestination",
			"ports":    "node:inputifindex,inputifindex",
			"talkers":  "ipsource",
		} {
			if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks), Value: "bytes"}); err != nil {
				t.Fatal(err)
			}
		}
		for name, th := range map[string]thresholds.Threshold{
			"elephant": {Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 10, Confidence: 0.99},
			"talkers":  {Metric: "talkers", Value: 150e6 / 8, ByFlow: true, Timeout: 5},
		} {
			if err := e.SetThreshold(name, th); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.SetTopology(api.Topology{Links: links()}); err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
	}
	decs := make([]decode.Decoder, len(engines))
	for step := 1; s.Now() < 90*time.Second; step++ {
		s.Step(func(b []byte) {
			for i, e := range engines {
				if _, err := decs[i].Decode(b, e); err != nil {
					t.Fatalf("decode: %v", err)
				}
			}
		})
		for _, e := range engines {
			e.Flush() // the step's datagrams taken at its time, as one engine does
		}
		clock.t = clock.t.Add(100 * time.Millisecond)
		for _, e := range engines {
			if step%10 == 0 {
				e.Sweep()
			} else if step%2 == 0 {
				e.SweepPaths()
			}
		}
	}
	all := func(netip.Addr) bool { return true }
	type view struct {
		flows      map[string]string
		events     []string
		elephants  []string
		collisions []string
		paths      []string
		metrics    string
		samples    uint64
	}
	look := func(e *engine.Engine) view {
		v := view{flows: map[string]string{}, samples: e.Stats().Samples}
		for _, name := range []string{"elephant", "pairs", "ports", "talkers"} {
			for _, mode := range []string{"max", "sum"} {
				afs, err := e.ActiveFlows(name, all, 50, 0, mode)
				if err != nil {
					t.Fatal(err)
				}
				var rows []string
				for _, af := range afs {
					rows = append(rows, fmt.Sprintf("%s=%.6g@%s/%s n%d", af.Key, af.Value, af.Agent, af.DataSource, af.FlowN))
				}
				v.flows[name+"/"+mode] = strings.Join(rows, "\n")
				if mode != "max" || len(afs) == 0 {
					continue
				}
				// Where the largest key is seen: from every shard that has it.
				locs, err := e.FlowLocations(name, all, afs[0].Key)
				if err != nil || len(locs) != afs[0].FlowN {
					t.Fatalf("%s: locations of %q: %v, %d of its %d", name, afs[0].Key, err, len(locs), afs[0].FlowN)
				}
				rows = rows[:0]
				for _, l := range locs {
					rows = append(rows, fmt.Sprintf("%s/%s=%.6g", l.Agent, l.DataSource, l.Value))
				}
				v.flows[name+"/locations"] = strings.Join(rows, "\n")
			}
		}
		for _, ev := range e.Events(context.Background(), 0, "", 10_000, 0) {
			v.events = append(v.events, fmt.Sprintf("%d %s %s %s/%s %.6g %v>%v %v", ev.Timestamp, ev.ThresholdID, ev.FlowKey,
				ev.Agent, ev.DataSource, ev.Value, ev.OldPath, ev.NewPath, ev.Flows))
		}
		for _, ev := range e.Events(context.Background(), 0, api.EventCollision, 10_000, 0) {
			v.events = append(v.events, fmt.Sprintf("%d %s %s %s/%s %v %d-%d", ev.Timestamp, ev.ThresholdID, ev.FlowKey,
				ev.Agent, ev.DataSource, ev.Flows, ev.Start, ev.End))
		}
		sort.Strings(v.events)
		pairs := map[[2]netip.Addr]bool{}
		for _, r := range e.ElephantRecords(1000) {
			v.elephants = append(v.elephants, fmt.Sprintf("%s %s start %d detected %d active %v rate %.6g samples %.6g locations %d",
				r.ThresholdID, r.FlowKey, r.Start, r.Detected, r.Active, r.Rate, r.Samples, len(r.Locations)))
			if r.Src.IsValid() && r.Dst.IsValid() {
				pairs[[2]netip.Addr{r.Src, r.Dst}] = true
			}
		}
		sort.Strings(v.elephants)
		for _, c := range e.Collisions() {
			v.collisions = append(v.collisions, fmt.Sprintf("%s %v %d", c.FlowKey, c.Flows, c.Start))
		}
		for p := range pairs {
			ps, err := e.Paths(api.PathQuery{Src: p[0], Dst: p[1]})
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range ps.Paths {
				var hops []string
				for _, h := range path.Hops {
					hops = append(hops, fmt.Sprintf("%s@%d", h.Node, h.TTL))
				}
				v.paths = append(v.paths, fmt.Sprintf("%s>%s %s %.3f", p[0], p[1], strings.Join(hops, " "), path.Share))
			}
		}
		sort.Strings(v.paths)
		st, err := e.Metrics(all, []string{"max:pairs", "sum:pairs", "avg:ifinoctets", "max:ports"})
		if err != nil {
			t.Fatal(err)
		}
		v.metrics = fmt.Sprintf("%v", st)
		return v
	}
	want := look(engines[0])
	if len(want.elephants) < 5 || len(want.events) < 20 || len(want.paths) < 5 || len(want.collisions)+countPrefix(want.events, "collision") == 0 {
		t.Fatalf("too little to compare: %d elephants, %d events, %d paths, %d collisions",
			len(want.elephants), len(want.events), len(want.paths), len(want.collisions))
	}
	if !strings.Contains(strings.Join(want.events, "\n"), " talkers ") {
		t.Fatal("the primary's threshold (talkers) never fired: nothing to compare")
	}
	for i, e := range engines[1:] {
		k := ks[i+1]
		got := look(e)
		if got.samples != want.samples {
			t.Errorf("%d shards counted %d samples, 1 shard %d", k, got.samples, want.samples)
		}
		for name, w := range want.flows {
			if g := got.flows[name]; !sameWithin(g, w) {
				t.Errorf("%d shards: /activeflows/%s differs:\n%s\nwant\n%s", k, name, first(g, 8), first(w, 8))
			}
		}
		diff(t, fmt.Sprintf("%d shards: events", k), got.events, want.events)
		diff(t, fmt.Sprintf("%d shards: elephants", k), got.elephants, want.elephants)
		diff(t, fmt.Sprintf("%d shards: collisions", k), got.collisions, want.collisions)
		diff(t, fmt.Sprintf("%d shards: paths", k), got.paths, want.paths)
		if !sameWithin(got.metrics, want.metrics) {
			t.Errorf("%d shards: metrics %s, want %s", k, got.metrics, want.metrics)
		}
	}
	t.Logf("compared %d elephants, %d events, %d paths, %d live collisions over 1, 2 and 4 shards, and 2 gathering batches",
		len(want.elephants), len(want.events), len(want.paths), len(want.collisions))
}

func countPrefix(lines []string, word string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, " "+word+" ") {
			n++
		}
	}
	return n
}

func first(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// sameWithin compares two renderings number by number, within 1e-9
// relative: values merged in another order round differently.
func sameWithin(a, b string) bool {
	if a == b {
		return true
	}
	fa, fb := strings.FieldsFunc(a, sep), strings.FieldsFunc(b, sep)
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i] == fb[i] {
			continue
		}
		var x, y float64
		if _, err := fmt.Sscan(fa[i], &x); err != nil {
			return false
		}
		if _, err := fmt.Sscan(fb[i], &y); err != nil || math.Abs(x-y) > 1e-9*math.Max(math.Abs(x), math.Abs(y)) {
			return false
		}
	}
	return true
}

func sep(r rune) bool {
	return r == ' ' || r == '\n' || r == '=' || r == '@' || r == '{' || r == '}' || r == '[' || r == ']'
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if sameWithin(strings.Join(got, "\n"), strings.Join(want, "\n")) {
		return
	}
	g, w := map[string]bool{}, map[string]bool{}
	for _, x := range got {
		g[x] = true
	}
	for _, x := range want {
		w[x] = true
	}
	var extra, missing []string
	for _, x := range got {
		if !w[x] {
			extra = append(extra, x)
		}
	}
	for _, x := range want {
		if !g[x] {
			missing = append(missing, x)
		}
	}
	t.Errorf("%s differ (%d vs %d): extra %v\nmissing %v", what, len(got), len(want), extra[:min(5, len(extra))], missing[:min(5, len(missing))])
}

// Workers on several goroutines feed the shards while queries run: every
// sample is counted once, and (under -race) nothing is shared unlocked.
func TestWorkersAndQueriesAtOnce(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 9, Mice: 200, ElephantEvery: 5 * time.Second, ElephantRate: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	var dgs [][]byte
	for s.Now() < 20*time.Second {
		s.Step(func(b []byte) { dgs = append(dgs, append([]byte(nil), b...)) })
	}
	e, err := engine.New(flows.Config{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if err := e.SetFlow("pairs", keys.Definition{Keys: "ipsource,ipdestination"}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetThreshold("pairs", thresholds.Threshold{Metric: "pairs", Value: 1e6, ByFlow: true, Confidence: 0.99}); err != nil {
		t.Fatal(err)
	}
	var want uint64
	var one decode.Decoder
	counter := countSamples{}
	for _, b := range dgs {
		one.Decode(b, &counter)
	}
	want = counter.n
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { // queries until the workers are done
		defer close(done)
		all := func(netip.Addr) bool { return true }
		for ctx.Err() == nil {
			e.ActiveFlows("pairs", all, 10, 0, "")
			e.ElephantRecords(10)
			e.Dump(all, []string{"pairs"})
			e.Sweep()
		}
	}()
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var dec decode.Decoder
			for i := w; i < len(dgs); i += workers {
				if _, err := dec.Decode(dgs[i], e); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	e.Flush()
	st := e.Stats()
	if st.Samples+st.BatchesDropped == 0 || st.Samples > want || st.BatchesDropped == 0 && st.Samples != want {
		t.Errorf("shards counted %d samples and dropped %d batches; the datagrams hold %d samples", st.Samples, st.BatchesDropped, want)
	}
}

// countSamples counts the flow samples with a header the engine keys.
type countSamples struct{ n uint64 }

func (c *countSamples) Flow(_ *decode.Datagram, fs *decode.FlowSample) {
	if fs.SamplingRate != 0 && fs.Records&decode.HasRawHeader != 0 {
		c.n++
	}
}

func (c *countSamples) Counter(*decode.Datagram, *decode.CounterSample) {}

// Forget drops the address pairs it is told of, from every shard: their
// entries in flows keyed by the pair, their paths and their elephants;
// the other pairs stay as they were.
func TestForget(t *testing.T) {
	e, err := engine.New(flows.Config{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for name, ks := range map[string]string{"pairs": "ipsource,ipdestination", "ports": "node:inputifindex,inputifindex"} {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SetThreshold("pairs", thresholds.Threshold{Metric: "pairs", Value: 1, ByFlow: true}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	for _, dg := range sflowtest.LoadDatagrams(500) {
		dec.Decode(dg, e)
	}
	e.Flush()
	all := func(netip.Addr) bool { return true }
	pairs := func() (kept, dropped int) {
		afs, err := e.ActiveFlows("pairs", all, 0, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, af := range afs {
			src, dst, _ := strings.Cut(af.Key, ",")
			if flows.PairOf(netip.MustParseAddr(src), netip.MustParseAddr(dst), 4) == 1 {
				dropped++
			} else {
				kept++
			}
		}
		return kept, dropped
	}
	keptBefore, droppedBefore := pairs()
	elephantsBefore := len(e.ActiveElephants())
	portsBefore, _ := e.ActiveFlows("ports", all, 0, 0, "")
	if droppedBefore == 0 || keptBefore == 0 || elephantsBefore != keptBefore+droppedBefore {
		t.Fatalf("%d and %d pairs, %d elephants", keptBefore, droppedBefore, elephantsBefore)
	}
	src, dst := netip.MustParseAddr("172.16.0.7"), netip.MustParseAddr("172.17.0.0") // the load's 5-tuple 7
	gone := flows.PairOf(src, dst, 4) == 1
	entries, tuples := e.Forget(func(s, d netip.Addr) bool { return flows.PairOf(s, d, 4) == 1 })
	kept, dropped := pairs()
	if dropped != 0 || kept != keptBefore || entries < droppedBefore || tuples < droppedBefore {
		t.Errorf("after Forget: %d and %d pairs (%d and %d before); %d entries and %d 5-tuples went",
			kept, dropped, keptBefore, droppedBefore, entries, tuples)
	}
	if n := len(e.ActiveElephants()); n != keptBefore {
		t.Errorf("%d elephants after Forget, want %d", n, keptBefore)
	}
	ps, err := e.Paths(api.PathQuery{Src: src, Dst: dst})
	if err != nil || (len(ps.Paths) == 0) != gone {
		t.Errorf("the paths of a pair forgotten (%v): %d, %v", gone, len(ps.Paths), err)
	}
	// A flow keyed by neither address is not the pair's: it stays.
	if ports, _ := e.ActiveFlows("ports", all, 0, 0, ""); len(ports) != len(portsBefore) {
		t.Errorf("%d port entries after Forget, %d before", len(ports), len(portsBefore))
	}
}
