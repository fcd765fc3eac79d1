package rib

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
)

// Route is one peer's route to a prefix. A million of them may be held, so
// it stays small: the prefix lives in its Entry, identical AS paths and
// community lists share one array.
type Route struct {
	Peer        netip.Addr `json:"peer"`
	RouterID    netip.Addr `json:"routerId,omitzero"` // the peer's, often its loopback and sFlow agent address
	NextHop     netip.Addr `json:"nexthop"`
	ASPath      []uint32   `json:"aspath"`
	Communities []uint32   `json:"-"`
	PeerASN     uint32     `json:"peerAS"`
	LocalPref   uint32     `json:"localpref,omitempty"`
	MED         uint32     `json:"med,omitempty"`
	Learned     int64      `json:"learned"` // ms since the epoch
}

// Entry is every peer's route to one prefix, best first. Entries belong to
// a published snapshot and never change: readers may keep them.
type Entry struct {
	Prefix netip.Prefix
	Routes []Route
	one    [1]Route // Routes' backing when there is one, the common case: one allocation
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
	if a.Learned != b.Learned {
		return a.Learned < b.Learned
	}
	return a.Peer.Less(b.Peer)
}

const shardCount = 256

// pkey is a prefix as a map key: the 16-byte form of its masked address and
// its length in that form (IPv4 lengths plus 96). It holds no pointer, so it
// hashes faster than a netip.Prefix.
type pkey struct {
	hi, lo uint64
	bits   uint8
}

func keyOf(p netip.Prefix) pkey {
	b := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return pkey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: uint8(bits)}
}

// masked is the key of the length-bits prefix holding (hi, lo).
func masked(hi, lo uint64, bits int) pkey {
	switch {
	case bits >= 128:
		return pkey{hi, lo, 128}
	case bits > 64:
		return pkey{hi, lo &^ (1<<(128-bits) - 1), uint8(bits)}
	case bits == 64:
		return pkey{hi, 0, 64}
	case bits > 0:
		return pkey{hi &^ (1<<(64-bits) - 1), 0, uint8(bits)}
	}
	return pkey{}
}

func (k pkey) shard() int {
	return int(((k.hi ^ k.lo ^ uint64(k.bits)<<56) * 0x9E3779B97F4A7C15) >> 56)
}

// snapshot is an immutable longest-prefix-match table. A batch of updates
// copies only the shards it touches, then swaps the snapshot in; lookups
// read whatever snapshot is current without a lock.
type snapshot struct {
	shards [shardCount]map[pkey]*Entry
	lens4  []int // prefix lengths present, longest first
	lens6  []int
	per4   [33]int // prefixes of each length
	per6   [129]int
	count  int
}

// lookup finds the longest prefix holding a. It allocates nothing.
func (s *snapshot) lookup(a netip.Addr) *Entry {
	a = a.Unmap()
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lens, offset := s.lens6, 0
	if a.Is4() {
		lens, offset = s.lens4, 96
	}
	for _, l := range lens {
		k := masked(hi, lo, l+offset)
		if e := s.shards[k.shard()][k]; e != nil {
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
		s.shards[i] = map[pkey]*Entry{}
	}
	t.current.Store(s)
	return t
}

// change is one update to apply: a route from a peer, or its withdrawal.
type change struct {
	prefix   netip.Prefix
	route    Route
	withdraw bool
}

// apply makes and publishes a snapshot with the changes applied, and
// returns the prefixes that lost their last route. Only the applier
// goroutine calls it.
func (t *table) apply(changes []change) []netip.Prefix {
	var gone []netip.Prefix
	old := t.current.Load()
	next := *old
	copied := [shardCount]bool{}
	count := old.count
	for _, c := range changes {
		p := c.prefix
		k := keyOf(p)
		i := k.shard()
		if !copied[i] {
			next.shards[i] = cloneMap(old.shards[i])
			copied[i] = true
		}
		m := next.shards[i]
		prev := m[k]
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
				delete(m, k)
				count--
				next.countLength(p, -1)
				gone = append(gone, p)
			}
		default:
			if prev == nil {
				count++
				next.countLength(p, 1)
			}
			e := &Entry{Prefix: p}
			if len(routes) == 1 {
				e.one[0] = routes[0]
				e.Routes = e.one[:]
			} else {
				e.Routes = routes
			}
			m[k] = e
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
	return gone
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

func cloneMap(m map[pkey]*Entry) map[pkey]*Entry {
	out := make(map[pkey]*Entry, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
