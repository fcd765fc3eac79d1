package flows

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/internal/ring"
	"github.com/fabrictrace/fabrictrace/topology"
)

// LinkUse is an elephant entering a switch through a port of a topology
// link: it uses that link in that direction.
type LinkUse struct {
	Agent   netip.Addr
	IfIndex uint32
	FlowKey string // the elephant's, without location fields
}

// ElephantLinks lists the links the active elephants use now, for
// collisions found across shards.
func (e *Engine) ElephantLinks() []LinkUse {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	e.topoNow(now, false)
	return e.elephantLinks(now)
}

func (e *Engine) elephantLinks(now float64) []LinkUse {
	var out []LinkUse
	if !e.nodeCache.snap.HasLinks() {
		return nil
	}
	for ent, flowKey := range e.elephants.Locations(now) {
		k := ent.Src.key
		if k.class != 0 || !e.onLink(k.agent, k.index) {
			continue
		}
		out = append(out, LinkUse{Agent: k.agent, IfIndex: k.index, FlowKey: flowKey})
	}
	return out
}

// Collisions finds links that two or more elephants share, as an ECMP hash
// collision puts them, and raises a collision event for each link and set
// of elephants, and another, with its end, when the set breaks up (an
// elephant ended or moved off the link) or changes. It is safe for
// concurrent use.
type Collisions struct {
	mu     sync.Mutex
	live   map[portRef]*collision
	events *ring.Log[api.Event]
	topo   *topology.Map
	wall   func(float64) int64
}

// NewCollisions returns a tracker that raises its events into events,
// names links from topo and turns times (seconds on the engines' clock)
// into ms since the epoch with wall.
func NewCollisions(events *ring.Log[api.Event], topo *topology.Map, wall func(float64) int64) *Collisions {
	return &Collisions{live: map[portRef]*collision{}, events: events, topo: topo, wall: wall}
}

// collision is a link two or more elephants share, as reported.
type collision struct {
	sig   string   // its elephants' keys, joined
	flows []string // and apart
	start float64
}

// Update takes the links the elephants use now.
func (c *Collisions) Update(uses []LinkUse, now float64) {
	at := map[portRef]map[string]bool{}
	for _, u := range uses {
		k := portRef{u.Agent, u.IfIndex}
		if at[k] == nil {
			at[k] = map[string]bool{}
		}
		at[k][u.FlowKey] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := c.topo.Snapshot(now, false)
	raise := func(k portRef, col *collision, end float64) {
		name, _ := snap.Link(k.agent, k.ifIndex)
		ev := api.Event{Timestamp: c.wall(now), ThresholdID: api.EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: name, Flows: col.flows, Start: c.wall(col.start)}
		if end > 0 {
			ev.End = c.wall(end)
		}
		c.events.Add(ev, func(ev *api.Event, id int64) { ev.EventID = id })
	}
	// Ends first, so that a feed reads end, then the new set.
	for k, col := range c.live {
		set := at[k]
		if len(set) < 2 || sigOf(set) != col.sig {
			raise(k, col, now)
			delete(c.live, k)
		}
	}
	for k, set := range at {
		if len(set) < 2 || c.live[k] != nil {
			continue
		}
		col := &collision{sig: sigOf(set), start: now}
		for fk := range set {
			col.flows = append(col.flows, fk)
		}
		sort.Strings(col.flows)
		c.live[k] = col
		raise(k, col, 0)
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

// Live returns the collisions live now, as their start events have them.
func (c *Collisions) Live() []api.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := c.topo.Snapshot(0, false)
	out := []api.Event{}
	for k, col := range c.live {
		name, _ := snap.Link(k.agent, k.ifIndex)
		out = append(out, api.Event{ThresholdID: api.EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: name, Flows: col.flows, Start: c.wall(col.start)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FlowKey != out[j].FlowKey {
			return out[i].FlowKey < out[j].FlowKey
		}
		return out[i].Agent < out[j].Agent
	})
	return out
}

// detectCollisions is Collisions' work for an engine alone.
func (e *Engine) detectCollisions(now float64) {
	if e.collisions == nil {
		e.collisions = NewCollisions(e.events, e.topo, e.wall)
	}
	e.collisions.Update(e.elephantLinks(now), now)
}

// Collisions returns the collisions live now, as their start events have
// them (an engine alone; shards' are package engine's).
func (e *Engine) Collisions() []api.Event {
	e.mu.Lock()
	c := e.collisions
	e.mu.Unlock()
	if c == nil {
		return []api.Event{}
	}
	return c.Live()
}
