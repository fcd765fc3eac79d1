package rib

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Route is one peer's route to a prefix. Routes are shared: the prefixes of
// one UPDATE point at one Route, so a million container /32s from a leaf
// cost about a thousand Routes, not a million. Routes never change once
// published.
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
	Routes []*Route
	one    [1]*Route // Routes' backing when there is one, the common case: one allocation
}

// Best returns the entry's best route.
func (e *Entry) Best() Route { return *e.Routes[0] }

// better orders candidate routes: shortest AS path, then highest local
// preference, lowest MED, earliest learned, lowest peer address: a
// deterministic cut of BGP's decision process.
func better(a, b *Route) bool {
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

// pkey is a prefix in the 16-byte form of its masked address, with its
// length in that form (IPv4 lengths plus 96).
type pkey struct {
	hi, lo uint64
	bits   int
}

func keyOf(p netip.Prefix) pkey {
	b := p.Masked().Addr().As16()
	n := p.Bits()
	if p.Addr().Is4() {
		n += 96
	}
	return pkey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), bits: n}
}

// masked is the key of the length-n prefix holding (hi, lo).
func masked(hi, lo uint64, n int) pkey {
	switch {
	case n >= 128:
		return pkey{hi, lo, 128}
	case n > 64:
		return pkey{hi, lo &^ (1<<(128-n) - 1), n}
	case n == 64:
		return pkey{hi, 0, 64}
	case n > 0:
		return pkey{hi &^ (1<<(64-n) - 1), 0, n}
	}
	return pkey{}
}

// hash spreads a key over 64 bits (the finaliser of MurmurHash3, twice).
func (k pkey) hash() uint64 {
	return mix(k.lo ^ mix(k.hi^uint64(k.bits)<<56))
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// The table is a hash array mapped trie: each level takes fanBits of the
// key's hash, and a node holds only the slots in use (a bitmap and a
// popcount find them). A million prefixes sit four levels deep. It is
// persistent: a batch of updates copies the nodes on the paths it
// changes, once per batch (nodes made in the batch are changed in place),
// and the old snapshot stays whole for readers still in it.
//
// The first dirBits of the hash pick a subtrie from a directory of two
// levels (64 by 64), so a probe starts two levels down; the subtries use
// the hash from the low end. A batch copies the directory's top and the
// parts it touches, not all 4,096 slots: a peer withdrawing one prefix to
// an UPDATE makes batches of a few changes each.
const (
	dirBits  = 12
	dirTop   = 6 // of dirBits
	fanBits  = 5
	maxShift = 64 - dirBits - fanBits // past this, colliding hashes share a bucket
)

type directory [1 << dirTop]*[1 << (dirBits - dirTop)]*node

// slotOf is where a hash's subtrie hangs: the top index and the index in
// its part.
func slotOf(h uint64) (top, low uint64) {
	return h >> (64 - dirTop), h >> (64 - dirBits) & (1<<(dirBits-dirTop) - 1)
}

type node struct {
	gen     uint64 // the batch that made the node: only it may change it
	leafMap uint32
	kidMap  uint32
	leaves  []*Entry // in slot order; at the bottom, every colliding entry
	kids    []*node
}

// snapshot is an immutable longest-prefix-match table: lookups read
// whatever snapshot is current without a lock.
type snapshot struct {
	dir   *directory // nil while empty
	lens4 []int      // prefix lengths present, longest first
	lens6 []int
	per4  [33]int // prefixes of each length
	per6  [129]int
	count int
}

// lookup finds the longest prefix holding a. It allocates nothing.
func (s *snapshot) lookup(a netip.Addr) *Entry {
	if s.dir == nil {
		return nil
	}
	var hi, lo uint64
	lens, offset := s.lens6, 0
	if a = a.Unmap(); a.Is4() {
		b := a.As4()
		lo = 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
		lens, offset = s.lens4, 96
	} else {
		b := a.As16()
		hi, lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	}
	full := a.BitLen()
	for _, l := range lens {
		want := netip.PrefixFrom(a, l)
		if l < full {
			want = want.Masked()
		}
		if e := s.get(want, masked(hi, lo, l+offset).hash()); e != nil {
			return e
		}
	}
	return nil
}

func (s *snapshot) get(p netip.Prefix, h uint64) *Entry {
	top, low := slotOf(h)
	if part := s.dir[top]; part != nil {
		if n := part[low]; n != nil {
			return n.get(p, h)
		}
	}
	return nil
}

func (n *node) get(p netip.Prefix, h uint64) *Entry {
	for shift := 0; ; shift += fanBits {
		if shift > maxShift {
			for _, e := range n.leaves {
				if e.Prefix == p {
					return e
				}
			}
			return nil
		}
		bit := uint32(1) << (h >> shift & (1<<fanBits - 1))
		if n.leafMap&bit != 0 {
			if e := n.leaves[bits.OnesCount32(n.leafMap&(bit-1))]; e.Prefix == p {
				return e
			}
			return nil
		}
		if n.kidMap&bit == 0 {
			return nil
		}
		n = n.kids[bits.OnesCount32(n.kidMap&(bit-1))]
	}
}

// each calls f for every entry, in no order.
func (n *node) each(f func(*Entry)) {
	for _, e := range n.leaves {
		f(e)
	}
	for _, k := range n.kids {
		k.each(f)
	}
}

// editor changes a trie within one batch.
type editor struct{ gen uint64 }

// own returns n if this batch made it, or a copy this batch owns.
func (ed editor) own(n *node) *node {
	if n == nil {
		return &node{gen: ed.gen}
	}
	if n.gen == ed.gen {
		return n
	}
	return &node{gen: ed.gen, leafMap: n.leafMap, kidMap: n.kidMap,
		leaves: append([]*Entry(nil), n.leaves...), kids: append([]*node(nil), n.kids...)}
}

// put sets p's entry to e (nil removes it) below n at shift, and returns
// the node that replaces n (nil when it is left empty). h is p's hash.
func (ed editor) put(n *node, p netip.Prefix, h uint64, shift int, e *Entry) *node {
	if shift > maxShift {
		n = ed.own(n)
		for i, old := range n.leaves {
			if old.Prefix == p {
				if e == nil {
					n.leaves = slices.Delete(n.leaves, i, i+1)
				} else {
					n.leaves[i] = e
				}
				return n.orNil()
			}
		}
		if e != nil {
			n.leaves = append(n.leaves, e)
		}
		return n.orNil()
	}
	bit := uint32(1) << (h >> shift & (1<<fanBits - 1))
	switch {
	case n != nil && n.leafMap&bit != 0:
		i := bits.OnesCount32(n.leafMap & (bit - 1))
		old := n.leaves[i]
		if old.Prefix == p {
			n = ed.own(n)
			if e == nil {
				n.leafMap &^= bit
				n.leaves = slices.Delete(n.leaves, i, i+1)
				return n.orNil()
			}
			n.leaves[i] = e
			return n
		}
		if e == nil {
			return n // not held
		}
		// Two prefixes in one slot: push both a level down.
		n = ed.own(n)
		n.leafMap &^= bit
		n.leaves = slices.Delete(n.leaves, i, i+1)
		kid := ed.put(nil, old.Prefix, keyOf(old.Prefix).hash(), shift+fanBits, old)
		kid = ed.put(kid, p, h, shift+fanBits, e)
		n.kidMap |= bit
		n.kids = slices.Insert(n.kids, bits.OnesCount32(n.kidMap&(bit-1)), kid)
		return n
	case n != nil && n.kidMap&bit != 0:
		i := bits.OnesCount32(n.kidMap & (bit - 1))
		kid := ed.put(n.kids[i], p, h, shift+fanBits, e)
		if kid == n.kids[i] {
			return n
		}
		n = ed.own(n)
		if kid == nil {
			n.kidMap &^= bit
			n.kids = slices.Delete(n.kids, i, i+1)
			return n.orNil()
		}
		n.kids[i] = kid
		return n
	}
	if e == nil {
		return n // not held
	}
	n = ed.own(n)
	n.leafMap |= bit
	n.leaves = slices.Insert(n.leaves, bits.OnesCount32(n.leafMap&(bit-1)), e)
	return n
}

func (n *node) orNil() *node {
	if len(n.leaves) == 0 && len(n.kids) == 0 {
		return nil
	}
	return n
}

// table is the writer's side: the current snapshot and how to change it.
type table struct {
	current   atomic.Pointer[snapshot]
	gen       uint64
	routesBuf []*Route // apply's scratch
	mu        sync.Mutex
	published chan struct{} // closed at the next publish
}

func newTable() *table {
	t := &table{published: make(chan struct{})}
	t.current.Store(&snapshot{})
	return t
}

// insertRoute adds r to routes, kept best first; equals keep their order.
func insertRoute(routes []*Route, r *Route) []*Route {
	i := len(routes)
	for i > 0 && better(r, routes[i-1]) {
		i--
	}
	return slices.Insert(routes, i, r)
}

// change is one update to apply: a route from a peer, or its withdrawal
// (whose route says only the peer). Changes from one UPDATE share a Route.
type change struct {
	prefix   netip.Prefix
	route    *Route
	withdraw bool
	peerDown netip.Addr // instead, in the queue: a session left Established, so drop its routes
}

// apply makes and publishes a snapshot with the changes applied, and
// returns the prefixes that lost their last route. Only the applier
// goroutine calls it.
func (t *table) apply(changes []change) []netip.Prefix {
	var gone []netip.Prefix
	old := t.current.Load()
	next := *old
	t.gen++
	ed := editor{gen: t.gen}
	dir := new(directory)
	if old.dir != nil {
		*dir = *old.dir
	}
	var copied [1 << dirTop]bool // parts of dir this batch owns
	for _, c := range changes {
		p := c.prefix.Masked()
		h := keyOf(p).hash()
		top, low := slotOf(h)
		if !copied[top] {
			part := new([1 << (dirBits - dirTop)]*node)
			if dir[top] != nil {
				*part = *dir[top]
			}
			dir[top], copied[top] = part, true
		}
		slot := &dir[top][low]
		var prev *Entry
		if *slot != nil {
			prev = (*slot).get(p, h)
		}
		routes := t.routesBuf[:0]
		if prev != nil {
			for _, r := range prev.Routes {
				if r.Peer != c.route.Peer {
					routes = append(routes, r)
				}
			}
		}
		if !c.withdraw {
			routes = insertRoute(routes, c.route)
		}
		t.routesBuf = routes
		switch {
		case len(routes) == 0:
			if prev != nil {
				*slot = ed.put(*slot, p, h, 0, nil)
				next.count--
				next.countLength(p, -1)
				gone = append(gone, p)
			}
		default:
			if prev == nil {
				next.count++
				next.countLength(p, 1)
			}
			e := &Entry{Prefix: p}
			if len(routes) == 1 {
				e.one[0] = routes[0]
				e.Routes = e.one[:]
			} else {
				e.Routes = append([]*Route(nil), routes...)
			}
			*slot = ed.put(*slot, p, h, 0, e)
		}
	}
	next.dir = dir
	if next.count == 0 {
		next.dir = nil
	}
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

// each calls f for every entry of the snapshot, in no order.
func (s *snapshot) each(f func(*Entry)) {
	if s.dir == nil {
		return
	}
	for _, part := range s.dir {
		if part == nil {
			continue
		}
		for _, n := range part {
			if n != nil {
				n.each(f)
			}
		}
	}
}
