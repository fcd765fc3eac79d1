package thresholds

import (
	"iter"
	"math"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
	"github.com/fabrictrace/fabrictrace/elephants"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/tables"
)

// Env is what thresholds read from the engine that owns the tables.
type Env[S any] interface {
	elephants.Env
	// Where names a data source: its agent and its sFlow-RT data source
	// ("3", "2.17").
	Where(src *S) (agent netip.Addr, dataSource string)
	// Attr is a data source's attribute or counter metric (agent,
	// host_name, ifspeed, ifindex, any counters.IsCounter name), and
	// whether it has it.
	Attr(src *S, name string) (any, bool)
	// Clock is an agent's clock, as its datagrams tell it; nil if unknown.
	Clock(agent netip.Addr) *paths.Clock
	// Strings renders keys' interned strings.
	Strings() *keys.Interner
	// Event raises an event.
	Event(ev api.Event)
}

// State is a threshold's arm state: which flows (byFlow) or data sources
// (not byFlow) have fired and not yet re-armed.
type State[S any] struct {
	env      Env[S]
	log      *elephants.Log[S, Fired[S]]
	counter  bool // on a counter metric, not a flow
	name     string
	def      Threshold
	byEntry  map[*tables.Entry[S, Fired[S]]]struct{} // each holds its Fired
	bySource map[*S]*firing
	// With a confidence: the evidence of each identity, its members by
	// entry, and the confidence's normal quantile.
	evidence map[string]*evidence[S]
	members  map[*tables.Entry[S, Fired[S]]]*member[S]
	z        float64 // for the interval reported and the mirror rule
	zSplit   float64 // for firing: the confidence split over the windows
}

// New returns threshold name's state, raising its events through env and
// its elephants into log.
func New[S any](name string, def Threshold, env Env[S], log *elephants.Log[S, Fired[S]]) *State[S] {
	th := &State[S]{env: env, log: log, name: name, def: def, counter: counters.IsCounter(def.Metric)}
	if def.Confidence > 0 {
		th.z = zOf(def.Confidence)
		th.zSplit = zOf(1 - (1-def.Confidence)/windows)
	}
	th.Reset()
	return th
}

// Name is the threshold's name.
func (th *State[S]) Name() string { return th.name }

// Def is the threshold's definition.
func (th *State[S]) Def() Threshold { return th.def }

// firing is one fired data source, waiting to re-arm: the value must stay
// under the threshold for the timeout.
type firing struct {
	below float64 // when the value went under, or -1 while over
}

// Reset forgets what fired: its flow was replaced or deleted.
func (th *State[S]) Reset() {
	th.byEntry = map[*tables.Entry[S, Fired[S]]]struct{}{}
	th.bySource = map[*S]*firing{}
	th.evidence = map[string]*evidence[S]{}
	th.members = map[*tables.Entry[S, Fired[S]]]*member[S]{}
}

func (th *State[S]) confident() bool { return th.def.ByFlow && th.def.Confidence > 0 }

// Update runs after a sample raised a flow entry's value; p is the flow's
// definition and tb its table.
func (th *State[S]) Update(p *keys.Plan, tb *tables.Table[S, Fired[S]], ent *tables.Entry[S, Fired[S]], s *keys.Sample, now float64) {
	if !th.applies(ent.Src) {
		return
	}
	if th.confident() {
		th.updateConfident(p, ent, s, now)
		return
	}
	v := ent.Value // just updated: no decay to apply
	if th.def.ByFlow {
		if f := firingOf(ent, th); f != nil {
			if v > th.def.Value {
				f.below = -1
			}
			f.elephant.Seen(ent, v)
			return
		}
		if v <= th.def.Value {
			return
		}
		th.byEntry[ent] = struct{}{}
		th.fire(p, ent, v)
		fireOn(ent, Fired[S]{th: th, below: -1, elephant: th.start(p, ent, v)})
		return
	}
	if f := th.bySource[ent.Src]; f != nil {
		if v > th.def.Value {
			f.below = -1
		}
		return
	}
	if v <= th.def.Value {
		return
	}
	th.bySource[ent.Src] = &firing{below: -1}
	// One event for the largest flow at this data source.
	largest, lv := ent, v
	for o := tb.AtSource(ent.Src); o != nil; o = o.NextAtSource() {
		if ov := o.ValueAt(p.Tau, now); ov > lv {
			largest, lv = o, ov
		}
	}
	th.fire(p, largest, lv)
}

// start starts an elephant (or a location of one) of an entry that
// crossed the threshold, with its merged evidence when it has one.
func (th *State[S]) start(p *keys.Plan, ent *tables.Entry[S, Fired[S]], v float64) *elephants.Elephant[S, Fired[S]] {
	in := th.env.Strings()
	ident := p.Ident(ent.Key())
	agent, ds := th.env.Where(ent.Src)
	st := elephants.Start{Threshold: th.name, Metric: th.def.Metric, Value: th.def.Value,
		Ident: string(ident), FlowKey: string(p.AppendIdent(nil, ident, in)), Tau: p.Tau, Measure: p.Def.Value,
		Location: api.Location{Agent: agent.String(), DataSource: ds, FlowKey: string(p.AppendKey(nil, ent.Key(), in))}}
	st.Src, st.Dst = p.Endpoints(ident)
	if m := th.members[ent]; m != nil { // fired on merged evidence: its estimate
		st.Est, st.Z = m.ev, th.z
	}
	return th.log.Start(&st, ent, v)
}

func (th *State[S]) fire(p *keys.Plan, ent *tables.Entry[S, Fired[S]], v float64) {
	agent, ds := th.env.Where(ent.Src)
	ev := api.Event{Timestamp: th.env.Wall(th.env.Now()), ThresholdID: th.name, Metric: th.def.Metric,
		Agent: agent.String(), DataSource: ds, Value: v,
		Threshold: th.def.Value, FlowKey: string(p.AppendKey(nil, ent.Key(), th.env.Strings()))}
	for i, xv := range p.Values {
		x := ent.Values.Extras[i]
		if xv.Count != nil {
			x = ent.Values.Sketches[i].Estimate()
		}
		if xv.Avg != nil {
			x = x / math.Max(ent.Values.AvgN[i], 1)
		}
		ev.Values = append(ev.Values, x)
	}
	th.env.Event(ev)
}

// Counter checks a threshold on a counter metric against a data source's
// new counters.
func (th *State[S]) Counter(src *S, now float64) {
	if !th.counter || !th.applies(src) {
		return
	}
	v, ok := th.env.Attr(src, th.def.Metric)
	f, isNum := v.(float64)
	if !ok || !isNum {
		return
	}
	if fired := th.bySource[src]; fired != nil {
		if f > th.def.Value {
			fired.below = -1
		} else if fired.below < 0 {
			fired.below = now
		}
		return
	}
	if f > th.def.Value {
		th.bySource[src] = &firing{below: -1}
		agent, ds := th.env.Where(src)
		th.env.Event(api.Event{Timestamp: th.env.Wall(now), ThresholdID: th.name, Metric: th.def.Metric,
			Agent: agent.String(), DataSource: ds, Value: f, Threshold: th.def.Value})
	}
}

// Sweep re-arms fired flows that stayed under the threshold for timeout.
// p and tb are its flow's definition and table, nil for a threshold on a
// counter metric.
func (th *State[S]) Sweep(p *keys.Plan, tb *tables.Table[S, Fired[S]], now float64) {
	if p == nil {
		// A counter threshold: counter samples say when it went under.
		for src, f := range th.bySource {
			if f.below >= 0 && now-f.below >= float64(th.def.Timeout) {
				delete(th.bySource, src)
			}
		}
		return
	}
	if th.confident() {
		th.sweepConfident(now)
		return
	}
	for ent := range th.byEntry {
		f := firingOf(ent, th)
		if ent.ValueAt(p.Tau, now) > th.def.Value {
			f.below = -1
			continue
		}
		if f.below < 0 {
			f.below = now
		}
		if now-f.below >= float64(th.def.Timeout) {
			th.rearm(ent)
		}
	}
	for src, f := range th.bySource {
		over := false
		for o := tb.AtSource(src); o != nil && !over; o = o.NextAtSource() {
			over = o.ValueAt(p.Tau, now) > th.def.Value
		}
		if over {
			f.below = -1
			continue
		}
		if f.below < 0 {
			f.below = now
		}
		if now-f.below >= float64(th.def.Timeout) {
			delete(th.bySource, src)
		}
	}
}

// Forget drops the state of an entry the table let go.
func (th *State[S]) Forget(ent *tables.Entry[S, Fired[S]]) {
	if firingOf(ent, th) != nil {
		th.rearm(ent)
	}
	th.leaveEvidence(ent)
}

// Idents yields the identities (binary keys) the threshold holds evidence
// of.
func (th *State[S]) Idents() iter.Seq[string] {
	return func(yield func(string) bool) {
		for ident := range th.evidence {
			if !yield(ident) {
				return
			}
		}
	}
}

// rearm clears a fired entry: its elephant loses a location.
func (th *State[S]) rearm(ent *tables.Entry[S, Fired[S]]) {
	el := firingOf(ent, th).elephant
	delete(th.byEntry, ent)
	unfireOn(ent, th)
	th.log.Leave(el, ent)
}

// Fired is one byFlow threshold an entry fired, waiting to re-arm: the
// value must stay under the threshold for the timeout. The entry holds it
// (the first in place), so a sample of an elephant reaches its record with
// one pointer from the entry, and looks nothing up.
type Fired[S any] struct {
	th       *State[S] // nil: none
	below    float64   // when the value went under, or -1 while over
	elephant *elephants.Elephant[S, Fired[S]]
}

// Elephant is the elephant an entry fired, or nil.
func (f *Fired[S]) Elephant() *elephants.Elephant[S, Fired[S]] { return f.elephant }

// firingOf returns th's Fired in the entry, or nil.
func firingOf[S any](ent *tables.Entry[S, Fired[S]], th *State[S]) *Fired[S] {
	if ent.Fired.th == th {
		return &ent.Fired
	}
	for i := range ent.MoreFired {
		if ent.MoreFired[i].th == th {
			return &ent.MoreFired[i]
		}
	}
	return nil
}

func fireOn[S any](ent *tables.Entry[S, Fired[S]], f Fired[S]) {
	if ent.Fired.th == nil {
		ent.Fired = f
		return
	}
	ent.MoreFired = append(ent.MoreFired, f)
}

func unfireOn[S any](ent *tables.Entry[S, Fired[S]], th *State[S]) {
	if ent.Fired.th == th {
		ent.Fired = Fired[S]{}
		if n := len(ent.MoreFired); n > 0 {
			ent.Fired = ent.MoreFired[n-1]
			ent.MoreFired = ent.MoreFired[:n-1]
		}
	} else {
		for i := range ent.MoreFired {
			if ent.MoreFired[i].th == th {
				ent.MoreFired = append(ent.MoreFired[:i], ent.MoreFired[i+1:]...)
				break
			}
		}
	}
	if len(ent.MoreFired) == 0 {
		ent.MoreFired = nil
	}
}

// applies checks the threshold's filter against the data source: every
// attribute (a data-source attribute or any counter metric of the source)
// must equal one of its listed values.
func (th *State[S]) applies(src *S) bool {
	for attr, want := range th.def.Filter {
		got, _ := th.env.Attr(src, attr)
		ok := false
		for _, w := range want {
			if w == got {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
