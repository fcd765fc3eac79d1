package flows

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/paths"
)

// Paths returns the paths of a src/dst pair's sampled 5-tuples.
func (e *Engine) Paths(q api.PathQuery) (api.Paths, error) {
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return api.Paths{}, fmt.Errorf("%w: want a source and a destination address", ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topoNow(e.clock(), true)
	out := e.pathsLocked(q)
	out.Elephants = e.pairElephants(q.Src, q.Dst)
	return out, nil
}

// pairElephants are a pair's live elephants with their rates. It walks
// every active elephant, so only a query asks it, not each record.
func (e *Engine) pairElephants(src, dst netip.Addr) []api.PairElephant {
	now := e.clock()
	var out []api.PairElephant
	for _, el := range e.elephants.active {
		if el.src != src || el.dst != dst {
			continue
		}
		out = append(out, api.PairElephant{ElephantID: el.rec.ElephantID, ThresholdID: el.rec.ThresholdID,
			Threshold: el.threshold, Value: el.plan.def.Value, Estimate: el.rateNow(now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	return out
}

// pairPath is the biggest path of a pair, or nil.
func (e *Engine) pairPath(src, dst netip.Addr) []api.PathHop {
	if !src.IsValid() || !dst.IsValid() {
		return nil
	}
	ps := e.pathsLocked(api.PathQuery{Src: src, Dst: dst})
	if len(ps.Paths) == 0 {
		return nil
	}
	return ps.Paths[0].Hops
}

// portName names a port: its port_name (or topology) name, and its ifIndex
// as text, or internal, unknown, multiple, discard.
func (e *Engine) portName(agent netip.Addr, p decode.Port) (name, index string) {
	v := e.portValue(p)
	if v.kind != num {
		return "", string(v.appendText(nil, e.strings))
	}
	index = fmt.Sprint(v.n)
	if src := e.sources[sourceKey{agent: agent, index: uint32(v.n)}]; src != nil && src.counters.name != "" {
		return src.counters.name, index
	}
	return e.nodeCache.snap.PortName(agent, uint32(v.n)), index
}

// pathsLocked answers Paths with the engine locked.
func (e *Engine) pathsLocked(q api.PathQuery) api.Paths {
	return e.paths.Paths(q, e.clock(), e.pathView(), e.owner(q.Src), e.owner(q.Dst))
}

// pathView is what the tracker renders paths and events with.
func (e *Engine) pathView() paths.View {
	return paths.View{Topo: e.nodeCache.snap, Port: e.portName, Wall: e.wall}
}

// detectChanges raises the pathchange events of 5-tuples that moved.
func (e *Engine) detectChanges(now float64) {
	e.paths.DetectChanges(now, e.pathView(), func(ev api.Event) {
		e.events.Add(ev, func(ev *api.Event, id int64) { ev.EventID = id })
	})
}

// collision is a link two or more elephants share, as reported.
type collision struct {
	sig   string   // its elephants' keys, joined
	flows []string // and apart
	start float64
}

// detectCollisions raises a collision event when two or more elephants
// enter a switch through the same port of a topology link: they share that
// link in that direction, as an ECMP hash collision puts them. It raises one
// event per link and set of elephants, and another, with its end, when the
// set breaks up (an elephant ended or moved off the link) or changes.
func (e *Engine) detectCollisions(now float64) {
	at := map[portRef]map[string]bool{}
	if e.nodeCache.snap.HasLinks() {
		for _, el := range e.elephants.active {
			for ent := range el.entries {
				k := portRef{ent.src.key.agent, ent.src.key.index}
				if ent.src.key.class != 0 || !e.onLink(k.agent, k.ifIndex) {
					continue
				}
				if el.plan != nil && ent.valueAt(el.plan, now) < el.threshold {
					continue // no longer over the threshold here: it ended or moved
				}
				if at[k] == nil {
					at[k] = map[string]bool{}
				}
				at[k][el.rec.FlowKey] = true
			}
		}
	}
	if e.collisions == nil {
		e.collisions = map[portRef]*collision{}
	}
	raise := func(k portRef, c *collision, end float64) {
		ev := api.Event{Timestamp: e.wall(now), ThresholdID: api.EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: e.linkName(k), Flows: c.flows, Start: e.wall(c.start)}
		if end > 0 {
			ev.End = e.wall(end)
		}
		e.events.Add(ev, func(ev *api.Event, id int64) { ev.EventID = id })
	}
	// Ends first, so that a feed reads end, then the new set.
	for k, c := range e.collisions {
		set := at[k]
		if len(set) < 2 || sigOf(set) != c.sig {
			raise(k, c, now)
			delete(e.collisions, k)
		}
	}
	for k, set := range at {
		if len(set) < 2 || e.collisions[k] != nil {
			continue
		}
		c := &collision{sig: sigOf(set), start: now}
		for fk := range set {
			c.flows = append(c.flows, fk)
		}
		sort.Strings(c.flows)
		e.collisions[k] = c
		raise(k, c, 0)
	}
}

func sigOf(set map[string]bool) string {
	keys := make([]string, 0, len(set))
	for fk := range set {
		keys = append(keys, fk)
	}
	sort.Strings(keys)
	return strings.Join(keys, "|")
}

// Collisions returns the collisions live now, as their start events have
// them.
func (e *Engine) Collisions() []api.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []api.Event{}
	for k, c := range e.collisions {
		out = append(out, api.Event{ThresholdID: api.EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: e.linkName(k), Flows: c.flows, Start: e.wall(c.start)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FlowKey < out[j].FlowKey })
	return out
}
