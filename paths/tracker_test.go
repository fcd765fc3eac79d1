package paths_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/topology"
)

var (
	src, dst = netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.42")
	leaf1    = netip.MustParseAddr("10.0.0.1")
	spine1   = netip.MustParseAddr("10.0.0.11")
	spine2   = netip.MustParseAddr("10.0.0.12")
	leaf4    = netip.MustParseAddr("10.0.0.4")
)

// fabric feeds a tracker one 5-tuple's samples as agents export them: each
// agent a datagram every tick with the samples it took, its uptime moving
// with the clock.
type fabric struct {
	t    *testing.T
	pt   *paths.Tracker
	now  float64
	seqs map[netip.Addr]uint32
	view paths.View
}

func newFabric(t *testing.T) *fabric {
	topo := topology.New()
	for a, name := range map[netip.Addr]string{leaf1: "leaf01", spine1: "spine01", spine2: "spine02", leaf4: "leaf04"} {
		topo.LearnHost(a, name)
	}
	return &fabric{t: t, pt: paths.New(1000), seqs: map[netip.Addr]uint32{},
		view: paths.View{Topo: topo.Snapshot(0, true),
			Port: func(_ netip.Addr, p decode.Port) (string, string) { return "", fmt.Sprint(p.Value) },
			Wall: func(t float64) int64 { return int64(t * 1000) }}}
}

// tick moves the clock 100 ms and has each hop (agent, TTL seen) export a
// datagram with one sample of the 5-tuple.
func (f *fabric) tick(hops map[netip.Addr]uint8) {
	f.now += 0.1
	for agent, ttl := range hops {
		f.seqs[agent]++
		dg := &decode.Datagram{Agent: agent, Sequence: f.seqs[agent], Uptime: uint32(f.now * 1000)}
		fs := &decode.FlowSample{SamplingRate: 1000, Input: decode.Port{Value: 1}, Output: decode.Port{Value: 2}}
		fs.RawHeader.FrameLength = 1514
		fs.RawHeader.Packet = decode.Packet{Layers: decode.LayerIPv4 | decode.LayerTCP, Src: src, Dst: dst,
			Protocol: 6, TTL: ttl, SrcPort: 40000, DstPort: 5201}
		f.pt.Heard(dg, f.now)
		f.pt.Observe(dg, fs, f.pt.Hash(fs), 1514*1000, f.now)
	}
}

func (f *fabric) path() string {
	ps := f.pt.Paths(api.PathQuery{Src: src, Dst: dst}, f.now, f.view, nil, nil)
	var out []string
	for _, p := range ps.Paths {
		var hops []string
		for _, h := range p.Hops {
			hops = append(hops, fmt.Sprintf("%s@%d", h.Node, h.TTL))
		}
		out = append(out, strings.Join(hops, " "))
	}
	return strings.Join(out, " | ")
}

// The tracker orders a 5-tuple's hops by TTL into its path, names them from
// the topology, fills a hop no agent sampled with a missing one, and when
// the flow moves from one spine to the other raises one pathchange, with
// the old path and the new, and keeps the old in the history.
func TestPathAndItsChange(t *testing.T) {
	f := newFabric(t)
	via1 := map[netip.Addr]uint8{leaf1: 64, spine1: 63, leaf4: 62}
	for range 30 {
		f.tick(via1)
	}
	if got, want := f.path(), "leaf01@64 spine01@63 leaf04@62"; got != want {
		t.Fatalf("path %q, want %q", got, want)
	}
	var events []api.Event
	emit := func(ev api.Event) { events = append(events, ev) }
	via2 := map[netip.Addr]uint8{leaf1: 64, spine2: 63, leaf4: 62}
	for range 50 {
		f.tick(via2)
		f.pt.DetectChanges(f.now, f.view, emit)
	}
	if got, want := f.path(), "leaf01@64 spine02@63 leaf04@62"; got != want {
		t.Errorf("after the move: path %q, want %q", got, want)
	}
	if len(events) != 1 {
		t.Fatalf("%d pathchange events, want 1: %+v", len(events), events)
	}
	ev := events[0]
	if strings.Join(ev.OldPath, " ") != "leaf01@64 spine01@63 leaf04@62" || strings.Join(ev.NewPath, " ") != "leaf01@64 spine02@63 leaf04@62" {
		t.Errorf("event %v -> %v", ev.OldPath, ev.NewPath)
	}
	if ev.ThresholdID != api.EventPathChange || ev.FlowKey != "172.16.1.11,172.16.1.42,6,40000,5201" {
		t.Errorf("event %s %s", ev.ThresholdID, ev.FlowKey)
	}
	if at := float64(ev.ChangedAt) / 1000; at < 3.0 || at > 3.2 {
		t.Errorf("changed at %.2f s, want between the last sample on spine01 (3.0 s) and the first on spine02 (3.1 s)", at)
	}
	ps := f.pt.Paths(api.PathQuery{Src: src, Dst: dst, History: true}, f.now, f.view, nil, nil)
	if len(ps.History) != 2 || ps.History[0].Hops[1].Node != "spine01" || ps.History[1].Hops[1].Node != "spine02" {
		t.Errorf("history %+v, want spine01 then spine02", ps.History)
	}
	// The spine stops being sampled: its TTL is a missing hop.
	for range 50 {
		f.tick(map[netip.Addr]uint8{leaf1: 64, leaf4: 62})
	}
	if got, want := f.path(), "leaf01@64 ?@63 leaf04@62"; got != want {
		t.Errorf("with the spine unsampled: path %q, want %q", got, want)
	}
	if f.pt.Len() != 1 {
		t.Errorf("%d 5-tuples tracked, want 1", f.pt.Len())
	}
	f.pt.Expire(f.now + paths.MaxAge + 1)
	if f.pt.Len() != 0 {
		t.Errorf("%d 5-tuples after they aged out, want 0", f.pt.Len())
	}
}

// An agent's clock says how long its latest datagram held its samples,
// up to the window no agent holds one longer; unknown, the window.
func TestClockHeldSince(t *testing.T) {
	pt := paths.New(10)
	if got := pt.Clock(leaf1).HeldSince(5); got != 5-paths.WindowFloor {
		t.Errorf("unknown agent: held since %g, want %g", got, 5-paths.WindowFloor)
	}
	pt.Heard(&decode.Datagram{Agent: leaf1, Sequence: 1, Uptime: 10_000}, 1)
	pt.Heard(&decode.Datagram{Agent: leaf1, Sequence: 2, Uptime: 10_700}, 2)
	if got := pt.Clock(leaf1).HeldSince(2); got < 1.29 || got > 1.31 {
		t.Errorf("held since %g, want 1.3 (the agent's clock moved 0.7 s)", got)
	}
	pt.Heard(&decode.Datagram{Agent: leaf1, Sequence: 3, Uptime: 20_000}, 3)
	if got := pt.Clock(leaf1).HeldSince(3); got != 3-paths.WindowFloor {
		t.Errorf("held since %g, want the window's %g", got, 3-paths.WindowFloor)
	}
	if pt.Clock(leaf1).Last() != 3 {
		t.Errorf("last heard %g, want 3", pt.Clock(leaf1).Last())
	}
}
