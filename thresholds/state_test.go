package thresholds

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/elephants"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/tables"
)

// source is a data source as an engine keeps one: where it is, and its
// counters.
type source struct {
	agent    netip.Addr
	index    int
	counters map[string]any
}

// env is the engine's side: a clock, an interner, events into a slice.
type env struct {
	now    float64
	in     *keys.Interner
	events []api.Event
}

func (e *env) Now() float64                         { return e.now }
func (e *env) Wall(t float64) int64                 { return int64(t * 1000) }
func (e *env) Owner(netip.Addr) *api.Owner          { return nil }
func (e *env) Path(_, _ netip.Addr) []api.PathHop   { return nil }
func (e *env) Clock(netip.Addr) *paths.Clock        { return nil }
func (e *env) Strings() *keys.Interner              { return e.in }
func (e *env) Event(ev api.Event)                   { e.events = append(e.events, ev) }
func (e *env) Where(s *source) (netip.Addr, string) { return s.agent, string(rune('0' + s.index)) }
func (e *env) Attr(s *source, name string) (any, bool) {
	if name == "agent" {
		return s.agent.String(), true
	}
	v, ok := s.counters[name]
	return v, ok
}

// rig is one flow keyed by address pair, its table, and thresholds on it.
type rig struct {
	env *env
	p   *keys.Plan
	tb  *tables.Table[source, Fired[source]]
	log *elephants.Log[source, Fired[source]]
	th  []*State[source]
}

func newRig(t *testing.T, defs ...Threshold) *rig {
	t.Helper()
	p, err := keys.Compile("pair", keys.Definition{Keys: "ipsource,ipdestination", T: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{env: &env{in: keys.NewInterner()}, p: p, tb: tables.NewTable[source, Fired[source]](1, 1000)}
	r.log = elephants.NewLog[source, Fired[source]](r.env, 100)
	for i, d := range defs {
		r.th = append(r.th, New("t"+string(rune('a'+i)), d, Env[source](r.env), r.log))
	}
	r.tb.OnRemove = func(ent *tables.Entry[source, Fired[source]], _ bool) {
		for _, th := range r.th {
			th.Forget(ent)
		}
	}
	return r
}

// sample counts one sample of bytes of the pair src->dst at a data source,
// as an engine's update does, and runs the thresholds on it.
func (r *rig) sample(at *source, src, dst string, bytes uint32, scaled float64) {
	key := keys.AddrValue(netip.MustParseAddr(src)).AppendKey(nil)
	key = keys.AddrValue(netip.MustParseAddr(dst)).AppendKey(key)
	fs := &decode.FlowSample{SamplingRate: uint32(scaled)}
	fs.RawHeader.FrameLength = bytes
	s := &keys.Sample{Datagram: &decode.Datagram{Agent: at.agent}, Flow: fs, Scaled: scaled}
	ent := r.tb.Upsert(at, key, uint64(len(src)*31+len(dst))^uint64(at.index), r.env.now, false)
	ent.Add(r.p.Tau, 0, r.p.Amount(r.p.Value, s), float64(bytes)*scaled, r.env.now)
	for _, th := range r.th {
		th.Update(r.p, r.tb, ent, s, r.env.now)
	}
}

func (r *rig) sweep() {
	for _, th := range r.th {
		th.Sweep(r.p, r.tb, r.env.now)
	}
}

// run sends a pair at rate bytes a second in 1000-byte samples at 1-in-10
// from each data source, for d seconds in 10 ms steps, sweeping each second.
func (r *rig) run(at []*source, src, dst string, rate, d float64) {
	end := r.env.now + d
	for ; r.env.now < end; r.env.now += 0.01 {
		for _, a := range at {
			if rate > 0 {
				r.sample(a, src, dst, 1000, rate*0.01/1000)
			}
		}
		if int(r.env.now*100)%100 == 0 {
			r.sweep()
		}
	}
}

func updates(l *elephants.Log[source, Fired[source]]) []string {
	var out []string
	ch := l.Changes(context.Background(), 0, 100, 0)
	for i := len(ch) - 1; i >= 0; i-- {
		out = append(out, ch[i].Update)
	}
	return out
}

var (
	leaf  = &source{agent: netip.MustParseAddr("192.0.2.1"), index: 1}
	spine = &source{agent: netip.MustParseAddr("192.0.2.2"), index: 2}
)

// A byFlow threshold: an event per hop that crossed it, one elephant over
// both hops, nothing more while it stays over, and the end once it has
// stayed under for the timeout.
func TestByFlowFiresOncePerHopAndRearms(t *testing.T) {
	r := newRig(t, Threshold{Metric: "pair", Value: 1e5, ByFlow: true, Timeout: 2})
	r.run([]*source{leaf, spine}, "10.0.0.1", "10.1.0.1", 2e5, 5)
	if len(r.env.events) != 2 {
		t.Fatalf("%d events, want one per hop", len(r.env.events))
	}
	for _, ev := range r.env.events {
		if ev.FlowKey != "10.0.0.1,10.1.0.1" || ev.Value <= 1e5 || ev.ThresholdID != "ta" {
			t.Fatalf("event %+v", ev)
		}
	}
	if got := updates(r.log); strings.Join(got, " ") != "start location" {
		t.Fatalf("updates %v, want start location", got)
	}
	r.run([]*source{leaf, spine}, "10.0.0.1", "10.1.0.1", 1e4, 1) // under, not yet the timeout
	if len(r.log.Active()) != 1 {
		t.Fatal("ended before its timeout")
	}
	r.run(nil, "", "", 0, 5)
	if got := updates(r.log); strings.Join(got, " ") != "start location end" {
		t.Fatalf("updates %v, want start location end", got)
	}
	// Re-armed: crossing again is a new event and a new elephant.
	r.run([]*source{leaf}, "10.0.0.1", "10.1.0.1", 2e5, 3)
	if len(r.env.events) != 3 || len(r.log.Active()) != 1 || r.log.Active()[0].ElephantID != 2 {
		t.Fatalf("after re-arming: %d events, active %+v", len(r.env.events), r.log.Active())
	}
}

// Not byFlow: one event per data source, for its largest flow.
func TestPerSourceFiresForTheLargestFlow(t *testing.T) {
	r := newRig(t, Threshold{Metric: "pair", Value: 1e5, Timeout: 2})
	for range 300 {
		r.sample(leaf, "10.0.0.1", "10.1.0.1", 1000, 1)
		r.sample(leaf, "10.0.0.2", "10.1.0.2", 1000, 3)
		r.env.now += 0.01
	}
	if len(r.env.events) != 1 {
		t.Fatalf("%d events, want one for the data source", len(r.env.events))
	}
	if ev := r.env.events[0]; ev.FlowKey != "10.0.0.2,10.1.0.2" || ev.DataSource != "1" {
		t.Fatalf("event %+v, want the larger flow at data source 1", ev)
	}
	if len(r.log.Active()) != 0 {
		t.Fatal("a per-source threshold started an elephant")
	}
}

// A filter on a data-source attribute; a threshold on a counter metric.
func TestFilterAndCounter(t *testing.T) {
	r := newRig(t, Threshold{Metric: "pair", Value: 1e5, ByFlow: true, Filter: map[string][]any{"agent": {"192.0.2.2"}}})
	r.run([]*source{leaf, spine}, "10.0.0.1", "10.1.0.1", 2e5, 3)
	if len(r.env.events) != 1 || r.env.events[0].Agent != "192.0.2.2" {
		t.Fatalf("events %+v, want the spine's only", r.env.events)
	}

	c := newRig(t, Threshold{Metric: "ifinutilization", Value: 80, Timeout: 2})
	port := &source{agent: leaf.agent, index: 3, counters: map[string]any{"ifinutilization": 50.0}}
	c.th[0].Counter(port, 0)
	port.counters["ifinutilization"] = 90.0
	c.th[0].Counter(port, 1)
	c.th[0].Counter(port, 2)
	if len(c.env.events) != 1 || c.env.events[0].Value != 90 {
		t.Fatalf("events %+v, want one at 90", c.env.events)
	}
	port.counters["ifinutilization"] = 10.0
	c.th[0].Counter(port, 3)
	c.th[0].Sweep(nil, nil, 4) // under for 1 s of 2: still fired
	port.counters["ifinutilization"] = 95.0
	c.th[0].Counter(port, 4.5)
	if len(c.env.events) != 1 {
		t.Fatal("fired again before re-arming")
	}
	port.counters["ifinutilization"] = 10.0
	c.th[0].Counter(port, 5)
	c.th[0].Sweep(nil, nil, 7)
	port.counters["ifinutilization"] = 95.0
	c.th[0].Counter(port, 8)
	if len(c.env.events) != 2 {
		t.Fatalf("%d events, want a second after re-arming", len(c.env.events))
	}
}

// With a confidence, the hops' evidence is merged: a flow at twice the
// threshold fires and its elephant's rate is the merged estimate with its
// interval; one at half never fires.
func TestConfidenceMergesHops(t *testing.T) {
	r := newRig(t, Threshold{Metric: "pair", Value: 1e5, ByFlow: true, Timeout: 2, Confidence: 0.99})
	r.run([]*source{leaf, spine}, "10.0.0.9", "10.1.0.9", 0.5e5, 10)
	if len(r.env.events) != 0 {
		t.Fatalf("a flow at half the threshold fired: %+v", r.env.events)
	}
	// With no agent clock known, a hop's exposure starts as long before
	// its first sample as an agent may hold one: the estimate is low at
	// first, and converges as the flow goes on.
	r.run([]*source{leaf, spine}, "10.0.0.1", "10.1.0.1", 2e5, 30)
	act := r.log.Active()
	if len(act) != 1 || len(r.env.events) != 2 {
		t.Fatalf("active %d, events %d: want one elephant, an event per hop", len(act), len(r.env.events))
	}
	el := act[0]
	if !(el.RateLow < 2e5 && 2e5 < el.RateHigh) || el.Samples == 0 {
		t.Fatalf("estimate %g [%g, %g] of %g samples, want an interval about 2e5", el.Rate, el.RateLow, el.RateHigh, el.Samples)
	}
	idents := 0
	for range r.th[0].Idents() {
		idents++
	}
	if idents == 0 {
		t.Fatal("no evidence held for the elephant")
	}
	// Let go by the table: its evidence and its elephant go too.
	r.env.now += 100
	r.tb.Expire(r.env.now)
	r.sweep()
	if len(r.log.Active()) != 0 {
		t.Fatal("the elephant outlived its entries")
	}
	for id := range r.th[0].Idents() {
		t.Fatalf("evidence %q outlived its entries", id)
	}
}

// Parse names the field at fault, and says what it wants.
func TestParseNamesTheField(t *testing.T) {
	for body, want := range map[string]string{
		`{"value":1}`:                                           `"metric": required`,
		`{"metric":"x"}`:                                        `"value": required`,
		`{"metric":"x","value":"big"}`:                          `"value"`,
		`{"metric":"x","value":1,"bogus":1}`:                    `"bogus": unknown field`,
		`{"metric":"x","value":1,"confidence":0.99}`:            `applies to byFlow thresholds only`,
		`{"metric":"x","value":1,"byFlow":true,"confidence":2}`: `want 0.5 to 0.9999`,
		`{"metric":"x","value":1,"filter":{"colour":["red"]}}`:  `attribute "colour"`,
		`[1]`: `threshold:`,
	} {
		_, err := Parse([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one with %s", body, err, want)
		}
	}
	th, err := Parse([]byte(`{"metric":"x","value":1,"byFlow":true,"confidence":0.99,"filter":{"ifspeed":[1e9]}}`))
	if err != nil || th.Timeout != 60 || th.Confidence != 0.99 {
		t.Fatalf("%+v, %v: want the default timeout 60", th, err)
	}
}
