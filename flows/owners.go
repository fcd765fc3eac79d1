package flows

import (
	"net/netip"

	"github.com/fabrictrace/fabrictrace/api"
)

// owner attributes an address through the RIB and the topology; an address
// whose route was withdrawn lately comes back marked gone.
func (e *Engine) owner(a netip.Addr) *api.Owner {
	if !a.IsValid() || e.cfg.Routes == nil {
		return nil
	}
	r, ok := e.cfg.Routes.RouteOf(a)
	if !ok {
		for p, g := range e.gone {
			if p.Contains(a) {
				return &api.Owner{Address: a, Prefix: p, Gone: g.at, Was: g.was}
			}
		}
		return nil
	}
	o := &api.Owner{Address: a, Prefix: r.Prefix, NextHop: r.NextHop, Peer: r.Peer,
		AnnouncedBy: e.nodeCache.snap.NodeName(r.PeerID), Host: e.nodeCache.snap.NodeName(r.NextHop)}
	if o.AnnouncedBy == "" {
		o.AnnouncedBy = e.nodeCache.snap.NodeName(r.Peer)
	}
	e.remember(o)
	return o
}

// goneRoute is a withdrawn prefix: when, and the route it had, if the
// engine had looked it up.
type goneRoute struct {
	at  int64
	was *api.Owner
}

// remember keeps the owners the engine looked up lately, so that a
// withdrawal can say what was withdrawn; a bounded memory, cleared when full.
func (e *Engine) remember(o *api.Owner) {
	if e.owners == nil || len(e.owners) >= maxGone {
		e.owners = map[netip.Prefix]*api.Owner{}
	}
	e.owners[o.Prefix] = o
}

// Withdrawn marks the active elephants whose destination lost its last
// route: the container is gone. Their records say so from now on.
func (e *Engine) Withdrawn(prefix netip.Prefix) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	// Remember it, so paths to it say gone rather than nothing; a bounded
	// memory, oldest forgotten first.
	if len(e.gone) >= maxGone {
		var oldest netip.Prefix
		for p, g := range e.gone {
			if !oldest.IsValid() || g.at < e.gone[oldest].at {
				oldest = p
			}
		}
		delete(e.gone, oldest)
	}
	was := e.owners[prefix]
	if was != nil {
		delete(e.owners, prefix)
		w := *was
		w.Was, w.Gone = nil, 0
		was = &w
	}
	e.gone[prefix] = goneRoute{e.wall(now), was}
	e.elephants.Withdrawn(prefix, e.wall(now))
}

// ownersBack looks again at the active elephants whose destination was
// withdrawn: one announced again gets its owner back, and an ownerback
// update says so. Sweep runs it.
func (e *Engine) ownersBack() {
	if e.cfg.Routes == nil {
		return
	}
	e.elephants.OwnersBack(func(a netip.Addr) *api.Owner {
		if _, ok := e.cfg.Routes.RouteOf(a); !ok {
			return nil
		}
		for p := range e.gone {
			if p.Contains(a) {
				delete(e.gone, p)
			}
		}
		return e.owner(a)
	})
}

// namesBack names the owners of active elephants that started before the
// topology knew their leaf's or host's name. Sweep runs it.
func (e *Engine) namesBack() {
	if e.cfg.Routes == nil {
		return
	}
	e.elephants.NamesBack(e.owner)
}

// maxGone bounds the withdrawn prefixes remembered.
const maxGone = 10_000
