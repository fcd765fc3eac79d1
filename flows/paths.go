package flows

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/decode"
)

// The path tracker keeps, for each sampled 5-tuple, where its samples were
// taken: agent, ports and the TTL each switch saw. Ordered by TTL, highest
// first, those observations are the flow's hop-by-hop path, since each
// routed hop takes one off the TTL.

type tuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

type pair struct{ src, dst netip.Addr }

// hopSeen is one place a 5-tuple was sampled.
type hopSeen struct {
	agent   netip.Addr
	in, out decode.Port
	ttl     uint8
	samples uint32
	bytes   float64
	first   float64
	last    float64
}

type tracked struct {
	hash  uint64 // t's, under the tracker's seed
	t     tuple
	hops  []hopSeen // in inline while they fit: one allocation and one cache miss fewer
	bytes float64
	last  float64
	first float64
	slot  int // in the tracker's ring
	// inline holds the first hops: a fabric path is a few hops, and a
	// switch that samples a flow at ingress and egress sees it twice.
	inline [2]hopSeen
}

// maxHopsSeen bounds the observations of one 5-tuple: a path longer than
// this is no fabric path.
const maxHopsSeen = 32

type pathTracker struct {
	seed    maphash.Seed
	flows   hashIndex[tracked]  // by hash
	byPair  map[pair][]*tracked // a pair's 5-tuples: few, so a slice
	ring    []*tracked          // every 5-tuple, for the eviction clock
	hand    int
	max     int
	evicted uint64
}

func (pt *pathTracker) init(max int) {
	pt.seed = maphash.MakeSeed()
	pt.byPair = map[pair][]*tracked{}
	pt.max = max
}

// tupleHash is a sample's 5-tuple and its hash; ok is false when the
// sample has no IP header.
type tupleHash struct {
	t    tuple
	hash uint64
	ok   bool
}

func (pt *pathTracker) hashTuple(fs *decode.FlowSample) tupleHash {
	p := &fs.RawHeader.Packet
	if p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return tupleHash{}
	}
	t := tuple{src: p.Src, dst: p.Dst, proto: p.Protocol}
	if p.Layers&(decode.LayerTCP|decode.LayerUDP) != 0 {
		t.sport, t.dport = p.SrcPort, p.DstPort
	}
	return tupleHash{t, t.hash(pt.seed), true}
}

// observe records a sample's hop. Only a new 5-tuple allocates.
func (pt *pathTracker) observe(dg *decode.Datagram, fs *decode.FlowSample, th tupleHash, frameBytes, now float64) {
	if !th.ok {
		return
	}
	p := &fs.RawHeader.Packet
	t, h := th.t, th.hash
	var tr *tracked
	for i, mask := pt.flows.probe(h); pt.flows.slots[i].item != nil; i = (i + 1) & mask {
		if s := &pt.flows.slots[i]; s.hash == h && s.item.t == t {
			tr = s.item
			break
		}
	}
	if tr == nil {
		if pt.flows.len() >= pt.max {
			pt.evict()
		}
		tr = &tracked{t: t, hash: h, first: now, slot: len(pt.ring)}
		tr.hops = tr.inline[:0]
		pt.flows.insert(h, tr)
		pr := pair{t.src, t.dst}
		pt.byPair[pr] = append(pt.byPair[pr], tr)
		pt.ring = append(pt.ring, tr)
	}
	tr.last = now
	tr.bytes += frameBytes
	for i := range tr.hops {
		h := &tr.hops[i]
		if h.agent == dg.Agent && h.ttl == p.TTL && h.in == fs.Input && h.out == fs.Output {
			h.samples++
			h.bytes += frameBytes
			h.last = now
			return
		}
	}
	if len(tr.hops) < maxHopsSeen {
		tr.hops = append(tr.hops, hopSeen{agent: dg.Agent, in: fs.Input, out: fs.Output, ttl: p.TTL,
			samples: 1, bytes: frameBytes, first: now, last: now})
	}
}

// evict drops the stalest of the next few 5-tuples under the clock hand:
// a fixed cost however many are tracked.
func (pt *pathTracker) evict() {
	var victim *tracked
	for range min(16, len(pt.ring)) {
		pt.hand = (pt.hand + 1) % len(pt.ring)
		if tr := pt.ring[pt.hand]; victim == nil || tr.last < victim.last {
			victim = tr
		}
	}
	if victim != nil {
		pt.remove(victim)
		pt.evicted++
	}
}

func (pt *pathTracker) remove(tr *tracked) {
	pt.flows.remove(tr.hash, tr)
	pr := pair{tr.t.src, tr.t.dst}
	list := pt.byPair[pr]
	for i, x := range list {
		if x == tr {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(pt.byPair, pr)
	} else {
		pt.byPair[pr] = list
	}
	last := pt.ring[len(pt.ring)-1]
	pt.ring[tr.slot], last.slot = last, tr.slot
	pt.ring[len(pt.ring)-1] = nil
	pt.ring = pt.ring[:len(pt.ring)-1]
}

// expire drops 5-tuples not sampled for maxAge seconds.
func (pt *pathTracker) expire(now, maxAge float64) {
	// Backwards, since a removal moves the ring's last 5-tuple, already
	// seen, into the gap.
	for i := len(pt.ring) - 1; i >= 0; i-- {
		if tr := pt.ring[i]; now-tr.last > maxAge {
			pt.remove(tr)
		}
	}
}

// hash is the tuple's hash under seed, over a pointer-free copy: hashing
// netip.Addr itself would move it to the heap.
func (t tuple) hash(seed maphash.Seed) uint64 {
	var b [37]byte
	*(*[16]byte)(b[0:]) = t.src.As16()
	*(*[16]byte)(b[16:]) = t.dst.As16()
	b[32] = t.proto
	b[33], b[34], b[35], b[36] = byte(t.sport>>8), byte(t.sport), byte(t.dport>>8), byte(t.dport)
	return maphash.Comparable(seed, b)
}

// Event names of fabrictrace's own events, raised through /events/json.
const (
	EventPathChange = "pathchange"
	EventCollision  = "collision"
)

// pathChangeQuiet is how long a 5-tuple's old hop must have been silent,
// while a new node took its TTL, before the path counts as changed.
const pathChangeQuiet = 1.0

// detectChanges raises a pathchange event for each 5-tuple whose node at
// some TTL was replaced by another: the old one fell silent before the new
// one was first sampled. It then forgets the old path's observations.
func (e *Engine) detectChanges(now float64) {
	for _, tr := range e.paths.ring {
		if len(tr.hops) < 2 {
			continue
		}
		var stale float64 = -1 // the last sample of the replaced path
		for i := range tr.hops {
			a := &tr.hops[i]
			if a.in.Value == decode.IfIndexInternal {
				continue // a host's egress sample shares its leaf's TTL
			}
			for j := range tr.hops {
				b := &tr.hops[j]
				if b.ttl == a.ttl && b.agent != a.agent && b.in.Value != decode.IfIndexInternal &&
					a.last < b.first && now-a.last >= pathChangeQuiet {
					stale = max(stale, a.last)
				}
			}
		}
		if stale < 0 {
			continue
		}
		var gone, kept []hopSeen
		for _, h := range tr.hops {
			if h.last > stale {
				kept = append(kept, h)
			} else {
				gone = append(gone, h)
			}
		}
		tr.hops = gone
		before, _ := e.assemble(tr)
		tr.hops = kept
		after, _ := e.assemble(tr)
		t := tr.t
		ev := Event{Timestamp: e.wall(now), ThresholdID: EventPathChange, Metric: "path",
			FlowKey: fmt.Sprintf("%s,%s,%d,%d,%d", t.src, t.dst, t.proto, t.sport, t.dport),
			OldPath: nodeNames(before), NewPath: nodeNames(after)}
		if len(after) > 0 {
			ev.Agent = after[0].Agent
		}
		e.events.add(ev, func(ev *Event, id int64) { ev.EventID = id })
	}
}

func nodeNames(hops []PathHop) []string {
	out := make([]string, len(hops))
	for i, h := range hops {
		out[i] = fmt.Sprintf("%s@%d", h.Node, h.TTL)
	}
	return out
}

// PathHop is one hop of a path.
type PathHop struct {
	TTL        uint8   `json:"ttl"`
	Node       string  `json:"node"`
	Agent      string  `json:"agent,omitempty"`
	In         string  `json:"in,omitempty"`
	Out        string  `json:"out,omitempty"`
	InIfIndex  string  `json:"inIfIndex,omitempty"`
	OutIfIndex string  `json:"outIfIndex,omitempty"`
	Samples    uint32  `json:"samples"`
	Bytes      float64 `json:"bytes"`
	// How the hop is known: "sampled"; "inferred" (not sampled, but a
	// topology link says which node must sit there); "missing" (not sampled
	// and not inferable); "l2" (a second node at one TTL: bridged, or a
	// conflict); "attributed" (the destination's host, from its BGP next
	// hop, when it exports no sFlow).
	Kind string `json:"kind"`
}

// PathFlow is one 5-tuple that took a path.
type PathFlow struct {
	Proto    uint8   `json:"proto"`
	SrcPort  uint16  `json:"srcPort"`
	DstPort  uint16  `json:"dstPort"`
	Bytes    float64 `json:"bytes"`
	LastSeen int64   `json:"lastSeen"` // ms ago
}

// Path is one path a pair's traffic takes, with the 5-tuples on it.
type Path struct {
	Hops     []PathHop  `json:"hops"`
	Flows    []PathFlow `json:"flows"`
	Bytes    float64    `json:"bytes"`
	Share    float64    `json:"share"`    // of the pair's bytes
	Complete bool       `json:"complete"` // no TTL unaccounted for between the first and last hop
}

// Paths is the answer for a src/dst pair: every path, biggest first, and
// where each end lives.
type Paths struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	Paths []Path     `json:"paths"`
	// ECMP: for each TTL where the paths part, the nodes and their shares.
	Split  []Split `json:"split,omitempty"`
	SrcEnd *Owner  `json:"srcOwner,omitempty"`
	DstEnd *Owner  `json:"dstOwner,omitempty"`
}

// Split is where a pair's paths part: the nodes at one TTL and their shares.
type Split struct {
	TTL    uint8              `json:"ttl"`
	Shares map[string]float64 `json:"shares"`
	// Skewed is set when one node carries most (over 80 %) of the pair.
	Skewed bool `json:"skewed"`
}

// PathQuery selects a pair's 5-tuples: zero fields match any.
type PathQuery struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// Paths returns the paths of a src/dst pair's sampled 5-tuples.
func (e *Engine) Paths(q PathQuery) (Paths, error) {
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return Paths{}, fmt.Errorf("%w: want a source and a destination address", ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topo.refresh(e.clock(), true)
	return e.pathsLocked(q), nil
}

// pairPath is the biggest path of a pair, or nil.
func (e *Engine) pairPath(src, dst netip.Addr) []PathHop {
	if !src.IsValid() || !dst.IsValid() {
		return nil
	}
	ps := e.pathsLocked(PathQuery{Src: src, Dst: dst})
	if len(ps.Paths) == 0 {
		return nil
	}
	return ps.Paths[0].Hops
}

// pathsLocked answers Paths with the engine locked.
func (e *Engine) pathsLocked(q PathQuery) Paths {
	now := e.clock()
	out := Paths{Src: q.Src, Dst: q.Dst, SrcEnd: e.owner(q.Src), DstEnd: e.owner(q.Dst), Paths: []Path{}}
	groups := map[string]*Path{}
	var order []string
	total := 0.0
	for _, tr := range e.paths.byPair[pair{q.Src, q.Dst}] {
		t := tr.t
		if q.Proto != 0 && t.proto != q.Proto || q.SrcPort != 0 && t.sport != q.SrcPort || q.DstPort != 0 && t.dport != q.DstPort {
			continue
		}
		hops, complete := e.assemble(tr)
		sig := signature(hops)
		g := groups[sig]
		if g == nil {
			g = &Path{Hops: hops, Complete: complete}
			groups[sig] = g
			order = append(order, sig)
		} else {
			mergeHops(g.Hops, hops)
		}
		g.Flows = append(g.Flows, PathFlow{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport, Bytes: tr.bytes,
			LastSeen: int64((now - tr.last) * 1000)})
		g.Bytes += tr.bytes
		total += tr.bytes
	}
	// A 5-tuple sampled at only some of the hops of another path, and
	// agreeing with it at each, took that path: fold it in.
	for _, sig := range order {
		small := groups[sig]
		for _, other := range order {
			big := groups[other]
			if other == sig || big == nil || small == nil || len(big.Hops) <= len(small.Hops) || !within(small.Hops, big.Hops) {
				continue
			}
			big.Flows = append(big.Flows, small.Flows...)
			big.Bytes += small.Bytes
			groups[sig] = nil
			break
		}
	}
	for _, sig := range order {
		g := groups[sig]
		if g == nil {
			continue
		}
		if total > 0 {
			g.Share = g.Bytes / total
		}
		sort.Slice(g.Flows, func(i, j int) bool { return g.Flows[i].Bytes > g.Flows[j].Bytes })
		out.Paths = append(out.Paths, *g)
	}
	sort.Slice(out.Paths, func(i, j int) bool { return out.Paths[i].Bytes > out.Paths[j].Bytes })
	out.Split = splits(out.Paths)
	for i := range out.Paths {
		out.Paths[i].Hops = endAtHost(out.Paths[i].Hops, out.DstEnd)
	}
	return out
}

// endAtHost ends a path at the destination's host, as BGP names it (the
// next hop of its /32), when the host exports no sFlow of its own.
func endAtHost(hops []PathHop, dst *Owner) []PathHop {
	if dst == nil || !dst.NextHop.IsValid() || len(hops) == 0 {
		return hops
	}
	last := hops[len(hops)-1]
	if last.Agent == dst.NextHop.String() || dst.Host != "" && last.Node == dst.Host || last.TTL == 0 {
		return hops
	}
	host := dst.Host
	if host == "" {
		host = dst.NextHop.String()
	}
	return append(hops, PathHop{TTL: last.TTL - 1, Node: host, Kind: "attributed"})
}

// assemble orders a 5-tuple's observations into hops by TTL, highest
// first, and marks what is missing.
func (e *Engine) assemble(tr *tracked) ([]PathHop, bool) {
	// One observation per (agent, TTL): the most sampled ports.
	type key struct {
		agent netip.Addr
		ttl   uint8
	}
	best := map[key]*hopSeen{}
	for i := range tr.hops {
		h := &tr.hops[i]
		k := key{h.agent, h.ttl}
		if b := best[k]; b == nil || h.samples > b.samples {
			best[k] = h
		}
	}
	seen := make([]*hopSeen, 0, len(best))
	for _, h := range best {
		seen = append(seen, h)
	}
	// Highest TTL first; at one TTL, a host's own egress sample (its input
	// is internal) comes before the switch it sends to.
	sort.Slice(seen, func(i, j int) bool {
		a, b := seen[i], seen[j]
		if a.ttl != b.ttl {
			return a.ttl > b.ttl
		}
		ai, bi := a.in.Value == decode.IfIndexInternal, b.in.Value == decode.IfIndexInternal
		if ai != bi {
			return ai
		}
		return a.agent.Less(b.agent)
	})
	var hops []PathHop
	complete := true
	for i, h := range seen {
		hop := e.pathHop(h)
		if i > 0 {
			prev := seen[i-1]
			switch {
			case prev.ttl == h.ttl && prev.in.Value != decode.IfIndexInternal:
				hop.Kind = "l2"
			case prev.ttl > h.ttl+1:
				// Unsampled hops: what the previous hop's output link reaches,
				// if the topology says, then unknowns.
				for ttl := int(prev.ttl) - 1; ttl > int(h.ttl); ttl-- {
					gap := PathHop{TTL: uint8(ttl), Node: "?", Kind: "missing"}
					if ttl == int(prev.ttl)-1 {
						if node := e.topo.peerNode(prev.agent, prev.out); node != "" {
							gap.Node, gap.Kind = node, "inferred"
						}
					}
					if gap.Kind == "missing" {
						complete = false
					}
					hops = append(hops, gap)
				}
			}
		}
		hops = append(hops, hop)
	}
	return hops, complete
}

func (e *Engine) pathHop(h *hopSeen) PathHop {
	hop := PathHop{TTL: h.ttl, Node: e.topo.nodeName(h.agent), Agent: h.agent.String(), Samples: h.samples,
		Bytes: h.bytes, Kind: "sampled"}
	if hop.Node == "" {
		hop.Node = hop.Agent
	}
	hop.In, hop.InIfIndex = e.portName(h.agent, h.in)
	hop.Out, hop.OutIfIndex = e.portName(h.agent, h.out)
	return hop
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
	return e.topo.portName(agent, uint32(v.n)), index
}

func signature(hops []PathHop) string {
	var b strings.Builder
	for _, h := range hops {
		fmt.Fprintf(&b, "%d:%s/%s>%s;", h.TTL, h.Node, h.InIfIndex, h.OutIfIndex)
	}
	return b.String()
}

// within reports whether every sampled hop of small is on big, alike.
func within(small, big []PathHop) bool {
	for _, h := range small {
		found := false
		for _, b := range big {
			if b.TTL == h.TTL && b.Node == h.Node && b.InIfIndex == h.InIfIndex && b.OutIfIndex == h.OutIfIndex {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func mergeHops(into, from []PathHop) {
	for i := range into {
		into[i].Samples += from[i].Samples
		into[i].Bytes += from[i].Bytes
	}
}

// splits finds the TTLs where a pair's paths go through different nodes,
// and each node's share of the pair's bytes there. A host and its leaf at
// one TTL on every path are no split.
func splits(paths []Path) []Split {
	type atTTL struct {
		sets  map[string]bool // the node sets the paths have at this TTL
		bytes map[string]float64
	}
	by := map[uint8]*atTTL{}
	var total float64
	for _, p := range paths {
		total += p.Bytes
		nodes := map[uint8][]string{}
		for _, h := range p.Hops {
			if h.Kind != "missing" {
				nodes[h.TTL] = append(nodes[h.TTL], h.Node)
			}
		}
		for ttl, ns := range nodes {
			a := by[ttl]
			if a == nil {
				a = &atTTL{sets: map[string]bool{}, bytes: map[string]float64{}}
				by[ttl] = a
			}
			sort.Strings(ns)
			a.sets[strings.Join(ns, ",")] = true
			for _, n := range ns {
				a.bytes[n] += p.Bytes
			}
		}
	}
	var out []Split
	for ttl, a := range by {
		if len(a.sets) < 2 || total == 0 {
			continue
		}
		s := Split{TTL: ttl, Shares: map[string]float64{}}
		for n, b := range a.bytes {
			s.Shares[n] = b / total
			s.Skewed = s.Skewed || b/total > 0.8
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TTL > out[j].TTL })
	return out
}

// detectCollisions raises a collision event when two or more elephants
// enter a switch through the same port of a topology link: they share that
// link in that direction, as an ECMP hash collision puts them. It raises one
// event per link and set of elephants, again only when the set changes.
func (e *Engine) detectCollisions(now float64) {
	if len(e.topo.links) == 0 {
		return
	}
	at := map[portRef]map[string]bool{}
	for _, el := range e.elephants.active {
		for ent := range el.entries {
			k := portRef{ent.src.key.agent, ent.src.key.index}
			if ent.src.key.class != 0 || !e.topo.onLink(k.agent, k.ifIndex) {
				continue
			}
			if at[k] == nil {
				at[k] = map[string]bool{}
			}
			at[k][el.rec.FlowKey] = true
		}
	}
	if e.collisions == nil {
		e.collisions = map[portRef]string{}
	}
	for k, set := range at {
		if len(set) < 2 {
			continue
		}
		keys := make([]string, 0, len(set))
		for fk := range set {
			keys = append(keys, fk)
		}
		sort.Strings(keys)
		sig := strings.Join(keys, "|")
		if e.collisions[k] == sig {
			continue
		}
		e.collisions[k] = sig
		ev := Event{Timestamp: e.wall(now), ThresholdID: EventCollision, Metric: "link", Agent: k.agent.String(),
			DataSource: fmt.Sprint(k.ifIndex), FlowKey: e.topo.links[k], Flows: keys}
		e.events.add(ev, func(ev *Event, id int64) { ev.EventID = id })
	}
	for k := range e.collisions {
		if len(at[k]) < 2 {
			delete(e.collisions, k)
		}
	}
}
