package flows

import (
	"fmt"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/keys"
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
	out.Elephants = e.elephants.Pair(q.Src, q.Dst)
	return out, nil
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
	v := e.env.PortValue(p)
	if v.Kind != keys.Num {
		return "", string(v.AppendText(nil, e.env.Strings))
	}
	index = fmt.Sprint(v.N)
	if src := e.sources[sourceKey{agent: agent, index: uint32(v.N)}]; src != nil && src.counters.Name != "" {
		return src.counters.Name, index
	}
	return e.nodeCache.snap.PortName(agent, uint32(v.N)), index
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
