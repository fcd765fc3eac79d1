package flows_test

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// trueHops renders the simulator's hops as the tracker should: TTL, node,
// in and out ports.
func trueHops(f sim.TruthFlow, skip func(string) bool) string {
	var b []string
	for _, h := range f.Hops {
		if skip != nil && skip(h.Node) {
			continue
		}
		b = append(b, fmt.Sprintf("%d %s %s>%s", h.TTL, h.Node, h.In, h.Out))
	}
	return strings.Join(b, " | ")
}

func gotHops(p api.Path) string {
	var b []string
	for _, h := range p.Hops {
		b = append(b, fmt.Sprintf("%d %s %s>%s", h.TTL, h.Node, h.In, h.Out))
	}
	return strings.Join(b, " | ")
}

// Every elephant's path is exact: nodes, ports and TTLs, hosts included.
func TestElephantPathsAreExact(t *testing.T) {
	f := newFabric(t, sim.Config{Seed: 21, Mice: 50, ServerAgents: true, IPv6: true,
		ElephantEvery: 5 * time.Second, ElephantDuration: 4 * time.Second}, flows.Config{})
	f.run(30 * time.Second)
	checked := 0
	for _, tf := range f.sim.Truth().Flows {
		if !tf.Elephant {
			continue
		}
		ps, err := f.eng.Paths(api.PathQuery{Src: tf.Src, Dst: tf.Dst, Proto: tf.Proto, SrcPort: tf.SrcPort, DstPort: tf.DstPort})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps.Paths) != 1 {
			t.Errorf("elephant %d: %d paths", tf.ID, len(ps.Paths))
			continue
		}
		// Servers' in and out: the container side is internal, which has no name.
		if got, want := gotHops(ps.Paths[0]), trueHops(tf, nil); got != want {
			t.Errorf("elephant %d\n got %s\nwant %s", tf.ID, got, want)
		}
		if !ps.Paths[0].Complete {
			t.Errorf("elephant %d path not complete", tf.ID)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d elephants checked", checked)
	}
}

// A hop that exports nothing is inferred from the topology's links, and
// marked so.
func TestUnsampledHopIsInferred(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.12"), netip.MustParseAddr("172.16.1.33")
	f := newFabric(t, sim.Config{Seed: 4, Mice: -1, Elephants: []sim.Elephant{{Src: src, Dst: dst, Rate: 400e6,
		Duration: time.Minute}}}, flows.Config{})
	if err := f.eng.SetTopology(api.Topology{Links: fabricLinks()}); err != nil {
		t.Fatal(err)
	}
	f.dropAgents = func(a netip.Addr) bool { return strings.HasPrefix(a.String(), "10.255.0.") } // spines send nothing
	f.run(5 * time.Second)
	ps, err := f.eng.Paths(api.PathQuery{Src: src, Dst: dst})
	if err != nil {
		t.Fatal(err)
	}
	var tf sim.TruthFlow
	for _, x := range f.sim.Truth().Flows {
		if x.Elephant {
			tf = x
		}
	}
	spine := tf.Hops[2].Node
	got := ps.Paths[0].Hops
	if len(got) != 3 || got[1].Node != spine || got[1].Kind != "inferred" || got[1].TTL != 63 || !ps.Paths[0].Complete {
		t.Errorf("path %+v, want leaf02 then %s inferred at TTL 63, then leaf03", got, spine)
	}
}

// A pair's 5-tuples spread over both spines; the shares match the truth.
func TestECMPSharesMatchTheTruth(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.21"), netip.MustParseAddr("172.16.1.41")
	var elephants []sim.Elephant
	for i := range 8 {
		elephants = append(elephants, sim.Elephant{Src: src, Dst: dst, SrcPort: uint16(41000 + i), Rate: 200e6,
			Duration: time.Minute})
	}
	f := newFabric(t, sim.Config{Seed: 6, Mice: -1, Elephants: elephants}, flows.Config{})
	f.run(20 * time.Second)
	ps, err := f.eng.Paths(api.PathQuery{Src: src, Dst: dst, DstPort: 5201})
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]float64{}
	var total float64
	for _, tf := range f.sim.Truth().Flows {
		if tf.Src == src && tf.Dst == dst && tf.DstPort == 5201 {
			truth[tf.Hops[1].Node+"/"+tf.Hops[2].Node] += float64(tf.Bytes)
			total += float64(tf.Bytes)
		}
	}
	if len(ps.Split) != 1 || ps.Split[0].TTL != 63 {
		t.Fatalf("splits %+v, want one at the spines (TTL 63)", ps.Split)
	}
	for node, share := range ps.Split[0].Shares {
		want := truth["leaf02/"+node] / total
		if math.Abs(share-want) > 0.05 {
			t.Errorf("%s carries %.2f of the pair, truth %.2f", node, share, want)
		}
	}
}

// fabricLinks are the default simulated fabric's leaf-spine links.
func fabricLinks() map[string]api.TopologyLink {
	links := map[string]api.TopologyLink{}
	for l := 1; l <= 4; l++ {
		for s := 1; s <= 2; s++ {
			links[fmt.Sprintf("leaf%02d-spine%02d", l, s)] = api.TopologyLink{Node1: fmt.Sprintf("leaf%02d", l),
				Port1: fmt.Sprintf("swp%d", 50+s), Node2: fmt.Sprintf("spine%02d", s), Port2: fmt.Sprintf("swp%d", l)}
		}
	}
	return links
}

// A forced rehash moves a flow to the other spine: a pathchange event
// gives the old and new path, and the path shows only the new one.
func TestRehashRaisesPathChange(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.42")
	f := newFabric(t, sim.Config{Seed: 2, Mice: -1, Elephants: []sim.Elephant{{Src: src, Dst: dst, SrcPort: 40001,
		Rate: 400e6, Duration: time.Hour}}}, flows.Config{})
	f.run(5 * time.Second)
	before, _ := f.eng.Paths(api.PathQuery{Src: src, Dst: dst, DstPort: 5201})
	oldSpine := before.Paths[0].Hops[1].Node
	for moved := 0; moved == 0; {
		var err error
		if moved, err = f.sim.Rehash("leaf01"); err != nil {
			t.Fatal(err)
		}
	}
	f.run(5 * time.Second)
	evs := f.eng.Events(t.Context(), -1, api.EventPathChange, 10, 0)
	if len(evs) != 1 {
		t.Fatalf("%d pathchange events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.FlowKey != "172.16.1.11,172.16.1.42,6,40001,5201" || len(ev.OldPath) != 3 || len(ev.NewPath) != 3 ||
		ev.OldPath[1] != oldSpine+"@63" || ev.NewPath[1] == ev.OldPath[1] || !strings.HasPrefix(ev.NewPath[1], "spine") {
		t.Errorf("pathchange %+v (old spine %s)", ev, oldSpine)
	}
	after, _ := f.eng.Paths(api.PathQuery{Src: src, Dst: dst, DstPort: 5201})
	if len(after.Paths) != 1 || after.Paths[0].Hops[1].Node == oldSpine || len(after.Paths[0].Hops) != 3 {
		t.Errorf("path after the change: %+v", after.Paths)
	}
}

// A link failure under export delay (agents hold datagrams for 1 s, so the
// old spine's last samples arrive after the new spine's first): the move
// and the move back are each one pathchange, raised within 3 s, with the
// old and new path and the time of the change; the path shows only the
// live spine, complete; the history has all three paths with their times.
func TestLinkFailureUnderExportDelay(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.42")
	f := newFabric(t, sim.Config{Seed: 9, Mice: 50, ServerAgents: true, ExportDelay: time.Second,
		Elephants: []sim.Elephant{{Src: src, Dst: dst, SrcPort: 40001, Rate: 200e6, Duration: time.Hour}}}, flows.Config{})
	q := api.PathQuery{Src: src, Dst: dst, DstPort: 5201}
	f.run(6 * time.Second)
	before, _ := f.eng.Paths(q)
	if len(before.Paths) != 1 || !before.Paths[0].Complete || len(before.Paths[0].Hops) != 5 {
		t.Fatalf("before the failure: %+v", before.Paths)
	}
	oldSpine := before.Paths[0].Hops[2].Node
	epoch := time.Unix(1_700_000_000, 0)
	const key = "172.16.1.11,172.16.1.42,6,40001,5201" // its ACKs move too, with events of their own
	changes := func() []api.Event {
		var out []api.Event
		for _, ev := range f.eng.Events(t.Context(), -1, api.EventPathChange, 100, 0) {
			if ev.FlowKey == key {
				out = append(out, ev)
			}
		}
		return out
	}
	move := func(up bool, from, to string) {
		t.Helper()
		at := epoch.Add(f.sim.Now() - 100*time.Millisecond) // the engine's clock runs a step behind
		n0 := len(changes())
		if moved, err := f.sim.SetLink("leaf01", oldSpine, up); err != nil || moved == 0 {
			t.Fatalf("link leaf01-%s up=%v moved %d flows (%v), want some", oldSpine, up, moved, err)
		}
		// Every 100 ms until the change is raised, at most 3 s.
		var evs []api.Event
		for range 30 {
			f.run(100 * time.Millisecond)
			if evs = changes(); len(evs) > n0 {
				break
			}
		}
		if len(evs) != n0+1 {
			t.Fatalf("%d pathchange events 3 s after the link went up=%v, want %d", len(evs), up, n0+1)
		}
		ev := evs[0] // newest first
		if len(ev.OldPath) != 5 || len(ev.NewPath) != 5 ||
			ev.OldPath[2] != from+"@63" || ev.NewPath[2] != to+"@63" {
			t.Errorf("pathchange %+v, want %s -> %s", ev, from, to)
		}
		if d := time.UnixMilli(ev.ChangedAt).Sub(at); d < -time.Second || d > 1500*time.Millisecond {
			t.Errorf("change estimated at %v from the truth", d)
		}
		// The next second: still one path, on the live spine, complete.
		f.run(time.Second)
		now, _ := f.eng.Paths(q)
		if len(now.Paths) != 1 || now.Paths[0].Hops[2].Node != to || !now.Paths[0].Complete || len(now.Split) != 0 {
			t.Errorf("after the move to %s: %d paths %+v, split %+v", to, len(now.Paths), now.Paths, now.Split)
		}
		if evs := changes(); len(evs) != n0+1 {
			t.Errorf("%d pathchange events a second later, want %d", len(evs), n0+1)
		}
	}
	other := "spine01"
	if oldSpine == other {
		other = "spine02"
	}
	move(false, oldSpine, other)
	f.run(5 * time.Second)
	move(true, other, oldSpine) // rendezvous hashing: back to the spine it prefers
	h, _ := f.eng.Paths(api.PathQuery{Src: src, Dst: dst, DstPort: 5201, History: true})
	var spines []string
	for _, ep := range h.History {
		spines = append(spines, ep.Hops[2].Node)
		if ep.From == 0 || (ep.To != 0) == (len(spines) == 3) {
			t.Errorf("epoch %+v", ep)
		}
	}
	if strings.Join(spines, " ") != oldSpine+" "+other+" "+oldSpine {
		t.Errorf("history %v, want %s %s %s", spines, oldSpine, other, oldSpine)
	}
	// Bytes: the flow's own, once, not a sum over its five hops.
	var truth sim.TruthFlow
	for _, tf := range f.sim.Truth().Flows {
		if tf.Elephant {
			truth = tf
		}
	}
	got := h.Paths[0].Flows[0].Total
	want := float64(truth.Bytes) * 1518 / 1500
	if math.Abs(got/want-1) > 0.15 {
		t.Errorf("flow bytes %.3g, truth %.3g", got, want)
	}
}

// Two elephants hashed onto one uplink: a collision event names the link
// and both flows.
func TestCollisionOnOneUplink(t *testing.T) {
	f := newFabric(t, sim.Config{Seed: 11, Mice: -1, ElephantEvery: time.Minute, Collision: true}, flows.Config{})
	if err := f.eng.SetTopology(api.Topology{Links: fabricLinks()}); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.SetFlow("elephant", keys.Definition{Keys: "node:inputifindex,ipsource,ipdestination,ipttl"}); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	f.run(8 * time.Second)
	evs := f.eng.Events(t.Context(), -1, api.EventCollision, 10, 0)
	var up string
	for _, tf := range f.sim.Truth().Flows {
		if tf.Elephant {
			up = tf.Hops[1].Node + "-" + tf.Hops[2].Node
		}
	}
	if len(evs) != 1 || evs[0].FlowKey != up || len(evs[0].Flows) != 2 || evs[0].Start == 0 || evs[0].End != 0 {
		t.Fatalf("collision events %+v, want one on %s with two flows", evs, up)
	}
	if live := f.eng.Collisions(); len(live) != 1 || live[0].FlowKey != up {
		t.Errorf("live collisions %+v, want the one on %s", live, up)
	}
	// The elephants end (30 s, then their threshold's timeout): the
	// collision ends, once, with its start and its end.
	f.run(40 * time.Second)
	evs = f.eng.Events(t.Context(), -1, api.EventCollision, 10, 0)
	if len(evs) != 2 || evs[0].End == 0 || evs[0].Start != evs[1].Start || evs[0].FlowKey != up {
		t.Fatalf("collision events after the elephants ended: %+v", evs)
	}
	if live := f.eng.Collisions(); len(live) != 0 {
		t.Errorf("live collisions %+v after both elephants ended", live)
	}
}

// A 5-tuple sampled at only one hop of another's path is on that path, not
// a path of its own.
func TestPartialPathsFoldIntoTheirPath(t *testing.T) {
	e := flows.New(flows.Config{})
	var dec decode.Decoder
	hop := func(agent string, ttl uint8, in, out uint32, sport uint16, seq uint32) {
		f := sflowtest.SynAckFrame()
		f.TTL, f.SrcPort = ttl, sport
		d := sflowtest.Datagram{Agent: netip.MustParseAddr(agent), Sequence: seq, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
			Sequence: seq, Source: decode.DataSource{Index: in}, SamplingRate: 100, SamplePool: 100 * seq,
			Input: decode.Port{Value: in}, Output: decode.Port{Value: out},
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1000, Header: f.Bytes()}}}}}
		dec.Decode(d.Bytes(), e)
	}
	hop("10.255.1.1", 64, 1, 51, 1000, 1)
	hop("10.255.0.1", 63, 1, 4, 1000, 1)
	hop("10.255.1.4", 62, 51, 1, 1000, 1)
	hop("10.255.0.1", 63, 1, 4, 2000, 2) // another 5-tuple, seen only at the spine
	ps, err := e.Paths(api.PathQuery{Src: netip.MustParseAddr("10.1.1.2"), Dst: netip.MustParseAddr("10.2.2.3")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Paths) != 1 || len(ps.Paths[0].Flows) != 2 || len(ps.Paths[0].Hops) != 3 || len(ps.Split) != 0 {
		t.Errorf("paths %+v, splits %+v: want one path of three hops with two flows", ps.Paths, ps.Split)
	}
}

// The quality the tracker is held to: at 1-in-1000 sampling, the fraction
// of elephants whose full path is right within 2 s of their start, on the
// default fabric with ECMP, hosts exporting and background traffic. The
// goal is at least 99 %.
func TestElephantPathsRightWithinTwoSeconds(t *testing.T) {
	f := newFabric(t, sim.Config{Seed: 31, Mice: 100, ServerAgents: true, IPv6: true,
		ElephantEvery: 2 * time.Second, ElephantDuration: 6 * time.Second, ElephantRate: 200e6}, flows.Config{})
	rightAt := map[int]time.Duration{} // elephant id -> when its path was first right
	for f.sim.Now() < 3*time.Minute {
		f.run(100 * time.Millisecond)
		for _, tf := range f.sim.Truth().Flows {
			if !tf.Elephant || !tf.Active {
				continue
			}
			if _, done := rightAt[tf.ID]; done {
				continue
			}
			ps, _ := f.eng.Paths(api.PathQuery{Src: tf.Src, Dst: tf.Dst, Proto: tf.Proto, SrcPort: tf.SrcPort, DstPort: tf.DstPort})
			if len(ps.Paths) == 1 && gotHops(ps.Paths[0]) == trueHops(tf, nil) {
				rightAt[tf.ID] = f.sim.Now() - time.Duration(tf.Start*float64(time.Second))
			}
		}
	}
	elephants, inTime := 0, 0
	for _, tf := range f.sim.Truth().Flows {
		if !tf.Elephant || tf.Start > 170 { // started late enough to have had 2 s
			continue
		}
		elephants++
		if d, ok := rightAt[tf.ID]; ok && d <= 2*time.Second {
			inTime++
		}
	}
	frac := float64(inTime) / float64(elephants)
	t.Logf("%d of %d elephants (%.1f%%) had their full path right within 2 s of starting, at 1 in 1000", inTime, elephants, 100*frac)
	if elephants < 50 || frac < 0.99 {
		t.Errorf("%.1f%% of %d elephants right within 2 s; the goal is 99%%", 100*frac, elephants)
	}
}
