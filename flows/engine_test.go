package flows_test

import (
	"context"
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

// fakeClock is the engine's clock, stepped with the simulator.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// fabric drives an engine from a simulator, step by step on one clock.
type fabric struct {
	// dropAgents, when set, loses the datagrams of the agents it picks.
	dropAgents func(netip.Addr) bool
	// stall, when over 1, holds the datagrams of that many steps and takes
	// them at once, as a collector that fell behind does: their arrival
	// times bunch up.
	stall   int
	pending [][]byte
	t       *testing.T
	sim     *sim.Sim
	eng     *flows.Engine
	clock   *fakeClock
	dec     decode.Decoder
	steps   int
}

func newFabric(t *testing.T, cfg sim.Config, ecfg flows.Config) *fabric {
	t.Helper()
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ecfg.Now = clock.now
	return &fabric{t: t, sim: s, eng: flows.New(ecfg), clock: clock}
}

func (f *fabric) run(d time.Duration) {
	f.t.Helper()
	for end := f.sim.Now() + d; f.sim.Now() < end; {
		f.sim.Step(func(b []byte) {
			if f.dropAgents != nil && f.dropAgents(netip.AddrFrom4([4]byte(b[8:12]))) {
				return
			}
			if f.stall > 1 {
				f.pending = append(f.pending, append([]byte(nil), b...))
				return
			}
			if _, err := f.dec.Decode(b, f.eng); err != nil {
				f.t.Fatalf("decode: %v", err)
			}
		})
		if f.stall > 1 && (f.steps+1)%f.stall == 0 {
			for _, b := range f.pending {
				if _, err := f.dec.Decode(b, f.eng); err != nil {
					f.t.Fatalf("decode: %v", err)
				}
			}
			f.pending = f.pending[:0]
		}
		f.clock.t = f.clock.t.Add(100 * time.Millisecond)
		if f.steps++; f.steps%10 == 0 {
			f.eng.Sweep()
		} else if f.steps%2 == 0 {
			f.eng.SweepPaths() // Run's 250 ms, near enough
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	src = netip.MustParseAddr("172.16.1.11")
	dst = netip.MustParseAddr("172.16.1.42")
)

// The classic elephant-path loop: a flow keyed by node, addresses and TTL,
// a byFlow threshold at 100 Mbit/s, events per hop, and one elephant record.
func TestElephantPathLoop(t *testing.T) {
	const rate = 400e6 // bits per second
	f := newFabric(t, sim.Config{Seed: 42, Mice: 60, Elephants: []sim.Elephant{
		{Src: src, Dst: dst, Rate: rate, Start: 12 * time.Second, Duration: 20 * time.Second}}}, flows.Config{})
	must(t, f.eng.SetFlow("elephant", keys.Definition{Keys: "node:inputifindex,ipsource,ipdestination,ipttl", Value: "bytes"}))
	must(t, f.eng.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 2}))
	f.run(22 * time.Second)

	// Mid-life: the rate at each hop within sampling error of the truth.
	var truth sim.TruthFlow
	for _, fl := range f.sim.Truth().Flows {
		if fl.Elephant {
			truth = fl
		}
	}
	frameRate := rate / 8 * 1518 / 1500 // what sFlow sees: frames, not IP packets
	active, err := f.eng.ActiveFlows("elephant", func(netip.Addr) bool { return true }, 10, 5e6, "max")
	must(t, err)
	hops := map[string]bool{}
	for _, af := range active {
		k := strings.Split(af.Key, ",")
		if k[1] != src.String() || k[2] != dst.String() {
			t.Errorf("active flow %q over 5 MB/s is not the elephant", af.Key)
			continue
		}
		hops[k[0]+":"+k[3]] = true
		// Samples in one time constant (2 s) set the error.
		n := frameRate * 8 / 8 * 2 / 1518 / float64(f.sim.SamplingRate())
		if bound := 1.96 / math.Sqrt(n) * 1.5; math.Abs(af.Value-frameRate)/frameRate > bound {
			t.Errorf("%s at %.0f B/s, truth %.0f B/s (bound %.0f%%)", af.Key, af.Value, frameRate, 100*bound)
		}
	}
	spine := truth.Hops[2].Node
	for _, want := range []string{"leaf01:64", spine + ":63", "leaf04:62"} {
		if !hops[want] {
			t.Errorf("no active flow at %s; got %v", want, hops)
		}
	}

	f.run(15 * time.Second) // past the end, the 2 s timeout and then some
	events := f.eng.Events(context.Background(), -1, "elephant", 100, 0)
	got := map[string]bool{}
	for _, ev := range events {
		got[ev.FlowKey] = true
		if ev.Value <= 100e6/8 || ev.Threshold != 100e6/8 || ev.Metric != "elephant" {
			t.Errorf("event %+v", ev)
		}
	}
	for _, want := range []string{"leaf01,172.16.1.11,172.16.1.42,64", spine + ",172.16.1.11,172.16.1.42,63",
		"leaf04,172.16.1.11,172.16.1.42,62"} {
		if !got[want] {
			t.Errorf("no event for %s; got %v", want, got)
		}
	}
	if len(events) != 3 {
		t.Errorf("%d events, want one per hop: 3 (no mice, no repeats)", len(events))
	}

	// One elephant, not three: its life matches the truth.
	recs := f.eng.Elephants(context.Background(), 0, 100, 0)
	var ended []api.Elephant
	for _, r := range recs {
		if !r.Active {
			ended = append(ended, r)
		}
	}
	if len(ended) != 1 {
		t.Fatalf("%d ended elephant records, want 1: %+v", len(ended), recs)
	}
	el := ended[0]
	var path []string
	for _, h := range el.Path {
		path = append(path, fmt.Sprintf("%s@%d", h.Node, h.TTL))
	}
	if want := "leaf01@64 " + spine + "@63 leaf04@62"; strings.Join(path, " ") != want {
		t.Errorf("elephant path %v, want %s", path, want)
	}
	if el.FlowKey != "172.16.1.11,172.16.1.42" || len(el.Locations) != 3 {
		t.Errorf("elephant %q at %d locations, want 172.16.1.11,172.16.1.42 at 3", el.FlowKey, len(el.Locations))
	}
	if math.Abs(el.Duration-20) > 0.5 {
		t.Errorf("elephant lasted %.2f s, truth 20 s", el.Duration)
	}
	for _, fl := range f.sim.Truth().Flows {
		if fl.Elephant {
			truth = fl
		}
	}
	trueBytes := float64(truth.Bytes) * 1518 / 1500
	samples := trueBytes / 1518 / float64(f.sim.SamplingRate())
	if bound := 1.96 / math.Sqrt(samples); math.Abs(el.Bytes-trueBytes)/trueBytes > bound {
		t.Errorf("elephant bytes %.0f, truth %.0f (bound %.1f%%)", el.Bytes, trueBytes, 100*bound)
	}
	if len(f.eng.ActiveElephants()) != 0 {
		t.Errorf("elephant still active after it ended")
	}
}

// A dropped flow counts discarded-packet events (0:5), one packet each,
// keyed by their reason; packet samples stay out of it, and the events
// stay out of every other flow and of the paths.
func TestDroppedFlowCountsDiscards(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	e := flows.New(flows.Config{Now: func() time.Time { return now }})
	must(t, e.SetFlow("drops", keys.Definition{Keys: "agent,reason,ipdestination", Value: "frames", Dropped: true}))
	must(t, e.SetFlow("pkts", keys.Definition{Keys: "ipdestination", Value: "frames"}))
	frame := (&sflowtest.Frame{Src: netip.MustParseAddr("10.1.1.1"), Dst: netip.MustParseAddr("10.2.2.2"),
		Protocol: sflowtest.ProtoTCP, SrcPort: 40000, DstPort: 443, TTL: 9}).Bytes()
	agent := netip.MustParseAddr("10.255.0.1")
	var dec decode.Decoder
	for seq := uint32(1); seq <= 20; seq++ {
		d := sflowtest.Datagram{Agent: agent, Sequence: seq, Samples: []sflowtest.Sample{
			&sflowtest.DiscardSample{Sequence: seq, Source: decode.DataSource{Index: 3}, Input: 3, Reason: 258, // acl
				Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: frame}}},
			&sflowtest.DiscardSample{Sequence: seq, Source: decode.DataSource{Index: 3}, Input: 3, Reason: 999},
			&sflowtest.FlowSample{Sequence: seq, Source: decode.DataSource{Index: 3}, SamplingRate: 100, SamplePool: 100 * seq,
				Input: decode.Port{Value: 3}, Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: frame}}},
		}}
		if _, err := dec.Decode(d.Bytes(), e); err != nil {
			t.Fatal(err)
		}
		now = now.Add(100 * time.Millisecond)
	}
	all := func(netip.Addr) bool { return true }
	drops, err := e.ActiveFlows("drops", all, 10, 0, "sum")
	if err != nil {
		t.Fatal(err)
	}
	// The event with no header has no destination: it keys nothing here.
	if len(drops) != 1 || drops[0].Key != "10.255.0.1,acl,10.2.2.2" {
		t.Fatalf("dropped flows %+v, want one, by acl", drops)
	}
	pkts, err := e.ActiveFlows("pkts", all, 10, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	// 20 events against 20 samples of 100 packets each: the packet flow
	// is a hundred times the drops, so the events did not count in it.
	if len(pkts) != 1 || math.Abs(pkts[0].Value/drops[0].Value-100) > 1 {
		t.Errorf("packet flow %+v against drops %+v, want 100 times them", pkts, drops)
	}
	if st := e.Stats(); st.Samples != 20 || st.PathsTracked != 1 {
		t.Errorf("%d samples, %d paths, want 20 and 1: events are neither", st.Samples, st.PathsTracked)
	}
	must(t, e.SetFlow("why", keys.Definition{Keys: "reason", Value: "frames", Dropped: true}))
	for seq := uint32(21); seq <= 22; seq++ {
		d := sflowtest.Datagram{Agent: agent, Sequence: seq, Samples: []sflowtest.Sample{
			&sflowtest.DiscardSample{Sequence: seq, Source: decode.DataSource{Index: 3}, Input: 3, Reason: 999}}}
		dec.Decode(d.Bytes(), e)
	}
	why, _ := e.ActiveFlows("why", all, 10, 0, "")
	if len(why) != 1 || why[0].Key != "999" {
		t.Errorf("a reason with no name: %+v, want its number", why)
	}
}
