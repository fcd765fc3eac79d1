package flows

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// threshold is a threshold's state over the engine's data sources.
type threshold = thresholds.State[source]

// hooks is the engine as package thresholds and package elephants see it
// (thresholds.Env): its clock, its RIB, its paths, its data sources and
// its event ring. Their calls come with the engine locked.
type hooks Engine

func (h *hooks) Now() float64                  { return (*Engine)(h).clock() }
func (h *hooks) Wall(t float64) int64          { return (*Engine)(h).wall(t) }
func (h *hooks) Owner(a netip.Addr) *api.Owner { return (*Engine)(h).owner(a) }
func (h *hooks) Path(src, dst netip.Addr) []api.PathHop {
	return (*Engine)(h).pairPath(src, dst)
}
func (h *hooks) Where(src *source) (netip.Addr, string)    { return src.key.agent, src.key.dataSource() }
func (h *hooks) Clock(agent netip.Addr) *paths.Clock       { return h.paths.Clock(agent) }
func (h *hooks) Strings() *keys.Interner                   { return h.env.Strings }
func (h *hooks) Event(ev api.Event)                        { h.events.Add(ev, setEventID) }
func (h *hooks) Attr(src *source, name string) (any, bool) { return (*Engine)(h).attr(src, name) }

func setEventID(ev *api.Event, id int64) { ev.EventID = id }

// attr is a data source's attribute, as a threshold filter tests it: its
// agent, host_name, ifspeed, ifindex, or any of its counter metrics.
func (e *Engine) attr(src *source, name string) (any, bool) {
	switch name {
	case "ifspeed":
		return float64(src.counters.Speed), true
	case "ifindex":
		return float64(src.key.index), true
	case "agent":
		return src.key.agent.String(), true
	case "host_name":
		h, _ := e.nodeCache.snap.Host(src.key.agent)
		return h, true
	}
	return e.metric(src, name)
}

// SetThreshold defines or replaces a threshold.
func (e *Engine) SetThreshold(name string, t thresholds.Threshold) error {
	if err := validName(name); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.thresholds[name] = thresholds.New(name, t, (*hooks)(e), e.elephants)
	e.rewire()
	return nil
}

// ThresholdDefinition returns a threshold.
func (e *Engine) ThresholdDefinition(name string) (thresholds.Threshold, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	th, ok := e.thresholds[name]
	if !ok {
		return thresholds.Threshold{}, fmt.Errorf("threshold %q: %w", name, ErrNotFound)
	}
	return th.Def(), nil
}

// ThresholdDefinitions returns every threshold.
func (e *Engine) ThresholdDefinitions() map[string]thresholds.Threshold {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]thresholds.Threshold, len(e.thresholds))
	for n, th := range e.thresholds {
		out[n] = th.Def()
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
	return e.events.Wait(ctx, after, max, timeout, func(ev *api.Event) bool { return !thresholds.Builtin(ev.ThresholdID) })
}

// Elephants returns elephant starts and ends after update id after, newest
// first, at most max, waiting up to timeout for one.
func (e *Engine) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return e.elephants.Changes(ctx, after, max, timeout)
}

// ElephantRecords returns one record per elephant, newest first, at most
// max: the active ones as of now, and the ended ones the update log still
// holds, each in its last state.
func (e *Engine) ElephantRecords(max int) []api.Elephant {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.elephants.Records(max)
}

// ActiveElephants returns the elephants over their threshold now, with their
// size so far, oldest first.
func (e *Engine) ActiveElephants() []api.Elephant {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.elephants.Active()
}
