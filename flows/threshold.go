package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/fabrictrace/fabrictrace/keys"
	"math"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
)

// Threshold is a threshold as sFlow-RT takes it on PUT /threshold/{name}/json.
type Threshold struct {
	Metric  string           `json:"metric"`
	Value   float64          `json:"value"`
	ByFlow  bool             `json:"byFlow"`
	Timeout int              `json:"timeout"`
	Filter  map[string][]any `json:"filter,omitempty"`
	// Confidence, fabrictrace's own (0.5 to 0.9999, 0 for none), makes a
	// byFlow threshold judge a flow on the evidence of every hop that saw
	// it: it fires when the lower bound of the merged rate, at this
	// confidence, is over the value, and re-arms on the upper bound.
	Confidence float64 `json:"confidence,omitempty"`
}

// ParseThreshold reads a PUT body, naming any bad field.
func ParseThreshold(body []byte) (Threshold, error) {
	var t Threshold
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return t, fmt.Errorf("threshold: %w", err)
	}
	t.Timeout = -1
	for field, v := range raw {
		var err error
		switch field {
		case "metric":
			err = json.Unmarshal(v, &t.Metric)
		case "value":
			err = json.Unmarshal(v, &t.Value)
		case "byFlow":
			err = json.Unmarshal(v, &t.ByFlow)
		case "timeout":
			err = json.Unmarshal(v, &t.Timeout)
		case "filter":
			err = json.Unmarshal(v, &t.Filter)
		case "confidence":
			if err = json.Unmarshal(v, &t.Confidence); err == nil && (t.Confidence < 0.5 || t.Confidence > 0.9999) {
				err = fmt.Errorf("%v: want 0.5 to 0.9999, such as 0.99", t.Confidence)
			}
		default:
			err = fmt.Errorf("unknown field")
		}
		if err != nil {
			return t, fmt.Errorf("threshold field %q: %w", field, err)
		}
	}
	if t.Metric == "" {
		return t, fmt.Errorf("threshold field %q: required", "metric")
	}
	if _, ok := raw["value"]; !ok {
		return t, fmt.Errorf("threshold field %q: required", "value")
	}
	if t.Timeout < 0 {
		t.Timeout = 60
	}
	if t.Confidence != 0 && !t.ByFlow {
		return t, fmt.Errorf("threshold field %q: applies to byFlow thresholds only", "confidence")
	}
	for attr := range t.Filter {
		if _, ok := sourceAttrs[attr]; !ok && !counters.IsCounter(attr) {
			return t, fmt.Errorf("threshold field %q: attribute %q: want agent, host_name or a counter metric (ifspeed, ifindex, ifname, iftype, ifoperstatus...)", "filter", attr)
		}
	}
	return t, nil
}

// threshold is a threshold's arm state: which flows (byFlow) or data
// sources (not byFlow) have fired and not yet re-armed.
type threshold struct {
	counter  bool // on a counter metric, not a flow
	name     string
	def      Threshold
	byEntry  map[*entry]struct{} // each holds its firedBy
	bySource map[*source]*firing
	// With a confidence: the evidence of each identity, its members by
	// entry, and the confidence's normal quantile.
	evidence map[string]*evidence
	members  map[*entry]*member
	z        float64 // for the interval reported and the mirror rule
	zSplit   float64 // for firing: the confidence split over the windows
}

// firing is one fired data source, waiting to re-arm: the value must stay
// under the threshold for the timeout.
type firing struct {
	below float64 // when the value went under, or -1 while over
}

func (th *threshold) reset() {
	th.byEntry = map[*entry]struct{}{}
	th.bySource = map[*source]*firing{}
	th.evidence = map[string]*evidence{}
	th.members = map[*entry]*member{}
}

func (th *threshold) confident() bool { return th.def.ByFlow && th.def.Confidence > 0 }

// update runs after a sample raised a flow entry's value.
func (th *threshold) update(e *Engine, p *plan, tb *table, ent *entry, s *keys.Sample, now float64) {
	if !th.applies(e, ent.Src) {
		return
	}
	if th.confident() {
		th.updateConfident(e, p, ent, s, now)
		return
	}
	v := ent.Value // just updated: no decay to apply
	if th.def.ByFlow {
		if f := firingOf(ent, th); f != nil {
			if v > th.def.Value {
				f.below = -1
			}
			f.elephant.seen(ent, v)
			return
		}
		if v <= th.def.Value {
			return
		}
		th.byEntry[ent] = struct{}{}
		th.fire(e, p, ent, v)
		fireOn(ent, firedBy{th: th, below: -1, elephant: e.elephants.start(e, th, p, ent, v)})
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
	th.fire(e, p, largest, lv)
}

func (th *threshold) fire(e *Engine, p *plan, ent *entry, v float64) {
	ev := api.Event{Timestamp: e.wall(e.clock()), ThresholdID: th.name, Metric: th.def.Metric,
		Agent: ent.Src.key.agent.String(), DataSource: ent.Src.key.dataSource(), Value: v,
		Threshold: th.def.Value, FlowKey: e.formatKey(p, ent.Key())}
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
	e.events.Add(ev, func(ev *api.Event, id int64) { ev.EventID = id })
}

// sweep re-arms fired flows that stayed under the threshold for timeout.
func (th *threshold) sweep(e *Engine, now float64) {
	p := e.plans[th.def.Metric]
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
		th.sweepConfident(e, now)
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
			th.rearm(e, ent)
		}
	}
	for src, f := range th.bySource {
		over := false
		for o := e.tables[th.def.Metric].AtSource(src); o != nil && !over; o = o.NextAtSource() {
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

// forget drops the state of an entry the table let go.
func (th *threshold) forget(e *Engine, ent *entry) {
	if firingOf(ent, th) != nil {
		th.rearm(e, ent)
	}
	th.leaveEvidence(ent)
}

// rearm clears a fired entry: its elephant loses a location.
func (th *threshold) rearm(e *Engine, ent *entry) {
	el := firingOf(ent, th).elephant
	delete(th.byEntry, ent)
	unfireOn(ent, th)
	el.leave(e, ent)
}

// firedBy is one byFlow threshold an entry fired, waiting to re-arm: the
// value must stay under the threshold for the timeout. The entry holds it
// (the first in place), so a sample of an elephant reaches its record with
// one pointer from the entry, and looks nothing up.
type firedBy struct {
	th       *threshold // nil: none
	below    float64    // when the value went under, or -1 while over
	elephant *elephant
}

// firing returns th's firedBy in the entry, or nil.
func firingOf(ent *entry, th *threshold) *firedBy {
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

func fireOn(ent *entry, f firedBy) {
	if ent.Fired.th == nil {
		ent.Fired = f
		return
	}
	ent.MoreFired = append(ent.MoreFired, f)
}

func unfireOn(ent *entry, th *threshold) {
	if ent.Fired.th == th {
		ent.Fired = firedBy{}
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

// sourceAttrs are the data-source attributes a threshold filter can test.
var sourceAttrs = map[string]func(e *Engine, src *source) any{
	"ifspeed":   func(_ *Engine, src *source) any { return float64(src.counters.Speed) },
	"ifindex":   func(_ *Engine, src *source) any { return float64(src.key.index) },
	"agent":     func(_ *Engine, src *source) any { return src.key.agent.String() },
	"host_name": func(e *Engine, src *source) any { h, _ := e.nodeCache.snap.Host(src.key.agent); return h },
}

// applies checks the threshold's filter against the data source: every
// attribute (one of sourceAttrs, or any counter metric of the source) must
// equal one of its listed values.
func (th *threshold) applies(e *Engine, src *source) bool {
	for attr, want := range th.def.Filter {
		var got any
		if f, ok := sourceAttrs[attr]; ok {
			got = f(e, src)
		} else if v, ok := e.metric(src, attr); ok {
			got = v
		}
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

// SetThreshold defines or replaces a threshold.
func (e *Engine) SetThreshold(name string, t Threshold) error {
	if err := validName(name); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	th := &threshold{name: name, def: t, counter: counters.IsCounter(t.Metric)}
	if t.Confidence > 0 {
		th.z = zOf(t.Confidence)
		th.zSplit = zOf(1 - (1-t.Confidence)/windows)
	}
	th.reset()
	e.thresholds[name] = th
	e.rewire()
	return nil
}

// ThresholdDefinition returns a threshold.
func (e *Engine) ThresholdDefinition(name string) (Threshold, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	th, ok := e.thresholds[name]
	if !ok {
		return Threshold{}, fmt.Errorf("threshold %q: %w", name, ErrNotFound)
	}
	return th.def, nil
}

// ThresholdDefinitions returns every threshold.
func (e *Engine) ThresholdDefinitions() map[string]Threshold {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]Threshold, len(e.thresholds))
	for n, th := range e.thresholds {
		out[n] = th.def
	}
	return out
}

// DeleteThreshold removes a threshold.
func (e *Engine) DeleteThreshold(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.thresholds[name]; !ok {
		return fmt.Errorf("threshold %q: %w", name, ErrNotFound)
	}
	delete(e.thresholds, name)
	e.rewire()
	return nil
}

// Events returns events with ids above after, newest first, at most max,
// only thresholdID's when it is set. With a timeout it waits for one.
func (e *Engine) Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event {
	var keep func(*api.Event) bool
	if thresholdID != "" {
		keep = func(ev *api.Event) bool { return ev.ThresholdID == thresholdID }
	}
	return e.events.Wait(ctx, after, max, timeout, keep)
}

// UserEvents is Events of every threshold but the built-in ones (path
// changes, collisions): what an sFlow-RT client that asks for all events
// knows how to read, since it defined every threshold it will see.
func (e *Engine) UserEvents(ctx context.Context, after int64, max int, timeout time.Duration) []api.Event {
	return e.events.Wait(ctx, after, max, timeout, func(ev *api.Event) bool { return !Builtin(ev.ThresholdID) })
}

// Builtin says whether a threshold id names one of fabrictrace's own events.
func Builtin(thresholdID string) bool {
	return thresholdID == api.EventPathChange || thresholdID == api.EventCollision
}
