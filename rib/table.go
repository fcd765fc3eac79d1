package rib

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Route is one peer's route to a prefix.
type Route struct {
	Prefix      netip.Prefix `json:"prefix"`
	Peer        netip.Addr   `json:"peer"`
	PeerASN     uint32       `json:"peerAS"`
	NextHop     netip.Addr   `json:"nexthop"`
	ASPath      []uint32     `json:"aspath"`
	Communities []uint32     `json:"-"`
	LocalPref   uint32       `json:"localpref,omitempty"`
	MED         uint32       `json:"med,omitempty"`
	Learned     time.Time    `json:"learned"`
}

// Entry is every peer's route to one prefix, best first. Entries belong to
// a published snapshot and never change: readers may keep them.
type Entry struct {
	Prefix netip.Prefix
	Routes []Route
}

// Best returns the entry's best route.
func (e *Entry) Best() Route { return e.Routes[0] }

// better orders candidate routes: shortest AS path, then highest local
// preference, lowest MED, earliest learned, lowest peer address: a
// deterministic cut of BGP's decision process.
func better(a, b Route) bool {
	if len(a.ASPath) != len(b.ASPath) {
		return len(a.ASPath) < len(b.ASPath)
	}
	if a.LocalPref != b.LocalPref {
		return a.LocalPref > b.LocalPref
	}
	if a.MED != b.MED {
		return a.MED < b.MED
	}
	if !a.Learned.Equal(b.Learned) {
		return a.Learned.Before(b.Learned)
	}
	return a.Peer.Less(b.Peer)
}

const shardCount = 256

// snapshot is an immutable longest-prefix-match table. A batch of updates
// copies only the shards it touches, then swaps the snapshot in; lookups
// read whatever snapshot is current without a lock.
type snapshot struct {
	shards [shardCount]map[netip.Prefix]*Entry
	lens4  []int // prefix lengths present, longest first
	lens6  []int
	per4   [33]int // prefixes of each length
	per6   [129]int
	count  int
}

func shardOf(p netip.Prefix) int {
	a := p.Addr().As16()
	h := uint32(2166136261)
	for _, c := range a {
		h = (h ^ uint32(c)) * 16777619
	}
	return int((h ^ uint32(p.Bits())) % shardCount)
}

// lookup finds the longest prefix holding a. It allocates nothing.
func (s *snapshot) lookup(a netip.Addr) *Entry {
	lens := s.lens6
	if a.Is4() {
		lens = s.lens4
	} else if a.Is4In6() {
		a, lens = a.Unmap(), s.lens4
	}
	for _, l := range lens {
		p, err := a.Prefix(l)
		if err != nil {
			continue
		}
		if e := s.shards[shardOf(p)][p]; e != nil {
			return e
		}
	}
	return nil
}

// table is the writer's side: the current snapshot and how to change it.
type table struct {
	current   atomic.Pointer[snapshot]
	mu        sync.Mutex
	published chan struct{} // closed at the next publish
}

func newTable() *table {
	t := &table{published: make(chan struct{})}
	s := &snapshot{}
	for i := range s.shards {
		s.shards[i] = map[netip.Prefix]*Entry{}
	}
	t.current.Store(s)
	return t
}

// change is one update to apply: a route from a peer, or its withdrawal.
type change struct {
	route    Route
	withdraw bool
}

// apply makes and publishes a snapshot with the changes applied. Only the
// applier goroutine calls it.
func (t *table) apply(changes []change) {
	old := t.current.Load()
	next := *old
	copied := [shardCount]bool{}
	count := old.count
	for _, c := range changes {
		p := c.route.Prefix
		i := shardOf(p)
		if !copied[i] {
			next.shards[i] = cloneMap(old.shards[i])
			copied[i] = true
		}
		m := next.shards[i]
		prev := m[p]
		var routes []Route
		if prev != nil {
			routes = make([]Route, 0, len(prev.Routes)+1)
			for _, r := range prev.Routes {
				if r.Peer != c.route.Peer {
					routes = append(routes, r)
				}
			}
		}
		if !c.withdraw {
			routes = append(routes, c.route)
			sort.SliceStable(routes, func(a, b int) bool { return better(routes[a], routes[b]) })
		}
		switch {
		case len(routes) == 0:
			if prev != nil {
				delete(m, p)
				count--
				next.countLength(p, -1)
			}
		default:
			if prev == nil {
				count++
				next.countLength(p, 1)
			}
			m[p] = &Entry{Prefix: p, Routes: routes}
		}
	}
	next.count = count
	next.lens4, next.lens6 = nil, nil
	for l := 32; l >= 0; l-- {
		if next.per4[l] > 0 {
			next.lens4 = append(next.lens4, l)
		}
	}
	for l := 128; l >= 0; l-- {
		if next.per6[l] > 0 {
			next.lens6 = append(next.lens6, l)
		}
	}
	t.current.Store(&next)
	t.mu.Lock()
	close(t.published)
	t.published = make(chan struct{})
	t.mu.Unlock()
}

// next returns a channel closed when the next snapshot is published.
func (t *table) next() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.published
}

func (s *snapshot) countLength(p netip.Prefix, d int) {
	if p.Addr().Is4() {
		s.per4[p.Bits()] += d
	} else {
		s.per6[p.Bits()] += d
	}
}

func cloneMap(m map[netip.Prefix]*Entry) map[netip.Prefix]*Entry {
	out := make(map[netip.Prefix]*Entry, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
