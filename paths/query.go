package paths

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/topology"
)

// View is what answers and events are rendered with: the topology names
// nodes, links and ports, Port names a port as the engine knows it (its
// port_name counters), and Wall turns the tracker's clock (seconds) into
// ms since the epoch.
type View struct {
	Topo *topology.Snapshot
	Port func(agent netip.Addr, p decode.Port) (name, index string)
	Wall func(t float64) int64
}

// maxHistoryAnswer bounds the history one answer carries, newest kept.
const maxHistoryAnswer = 200

// Paths answers a query for a pair's paths as of now; src and dst are
// where its ends live, as BGP says (nil when unknown).
func (pt *Tracker) Paths(q api.PathQuery, now float64, v View, src, dst *api.Owner) api.Paths {
	out := api.Paths{Src: q.Src, Dst: q.Dst, SrcEnd: src, DstEnd: dst, Paths: []api.Path{}}
	type group struct {
		api.Path
		sampled int // hops sampled or inferred
		gaps    bool
	}
	groups := map[string]*group{}
	var order []string
	total := 0.0
	top, bottom := -1, 256 // the TTLs the pair is seen at, live
	// While any 5-tuple of the pair is live, the paths are theirs: one that
	// went quiet is history, not a path the pair takes now. When none is,
	// each keeps the path it had last.
	type candidate struct {
		tr    *Tracked
		ended bool
	}
	var tuples []candidate
	anyLive := false
	for _, tr := range pt.byPair[pair{q.Src, q.Dst}] {
		t := tr.t
		if q.Proto != 0 && t.proto != q.Proto || q.SrcPort != 0 && t.sport != q.SrcPort || q.DstPort != 0 && t.dport != q.DstPort {
			continue
		}
		ended := pt.ended(tr, now)
		tuples = append(tuples, candidate{tr, ended})
		anyLive = anyLive || !ended
	}
	for _, c := range tuples {
		tr, t := c.tr, c.tr.t
		if q.History {
			for _, ep := range tr.history {
				hops, _ := v.assemble(ptrs(ep.hops))
				out.History = append(out.History, api.PathEpoch{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport,
					From: v.Wall(ep.from), To: v.Wall(ep.to), Hops: hops})
			}
		}
		at := now
		if c.ended {
			if anyLive {
				continue
			}
			at = tr.last
		}
		live := pt.live(tr, at)
		if len(live) == 0 {
			continue
		}
		hops, gaps := v.assemble(live)
		if q.History {
			out.History = append(out.History, api.PathEpoch{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport,
				From: v.Wall(tr.epoch), Hops: hops})
		}
		for _, h := range live {
			top, bottom = max(top, int(h.ttl)), min(bottom, int(h.ttl))
		}
		sig := signature(hops)
		g := groups[sig]
		if g == nil {
			g = &group{Path: api.Path{Hops: hops}}
			for _, h := range hops {
				if h.Kind == "sampled" || h.Kind == "inferred" || h.Kind == "l2" {
					g.sampled++
				}
			}
			groups[sig] = g
			order = append(order, sig)
		} else {
			mergeHops(g.Hops, hops)
		}
		g.gaps = g.gaps || gaps
		cur, life := tr.bytes()
		g.Flows = append(g.Flows, api.PathFlow{Proto: t.proto, SrcPort: t.sport, DstPort: t.dport, Bytes: cur, Total: life,
			LastSeen: int64((now - tr.last) * 1000), FirstSeen: v.Wall(tr.first)})
		g.Bytes += cur
		total += cur
	}
	// A 5-tuple sampled at only some of the hops of other paths, and
	// agreeing with them at each, took one of them: fold it in, its bytes
	// shared among them as theirs are. It is no path of its own.
	for _, sig := range order {
		small := groups[sig]
		var into []*group
		var intoBytes float64
		for _, other := range order {
			big := groups[other]
			if other == sig || big == nil || big.sampled <= small.sampled || !within(small.Hops, big.Hops) {
				continue
			}
			into = append(into, big)
			intoBytes += big.Bytes
		}
		if len(into) == 0 {
			continue
		}
		sort.Slice(into, func(i, j int) bool { return into[i].Bytes > into[j].Bytes })
		into[0].Flows = append(into[0].Flows, small.Flows...)
		add := small.Bytes
		for _, big := range into {
			if intoBytes > 0 {
				big.Bytes += add * big.Bytes / intoBytes
			} else {
				big.Bytes += add / float64(len(into))
			}
		}
		groups[sig] = nil
	}
	for _, sig := range order {
		g := groups[sig]
		if g == nil {
			continue
		}
		if total > 0 {
			g.Share = g.Bytes / total
		}
		g.Hops, g.Complete = v.endAtHost(g.Hops, out.DstEnd)
		g.Complete = g.Complete && !g.gaps && len(g.Hops) > 0 && int(g.Hops[0].TTL) == top &&
			(out.DstEnd != nil || int(g.Hops[len(g.Hops)-1].TTL) <= bottom)
		sort.Slice(g.Flows, func(i, j int) bool { return g.Flows[i].Bytes > g.Flows[j].Bytes })
		out.Paths = append(out.Paths, g.Path)
	}
	sort.Slice(out.Paths, func(i, j int) bool { return out.Paths[i].Bytes > out.Paths[j].Bytes })
	out.Split = splits(out.Paths)
	sort.Slice(out.History, func(i, j int) bool { return out.History[i].From < out.History[j].From })
	if n := len(out.History); n > maxHistoryAnswer {
		out.History = out.History[n-maxHistoryAnswer:]
	}
	return out
}

// endAtHost ends a path at the destination's host, as BGP names it (the
// next hop of its /32), when the host exports no sFlow of its own: right
// after the leaf that announced the route, or after that leaf inferred
// from the topology when the last hop's link reaches it. It says whether
// the path reaches the destination: a path whose last hop is neither the
// host nor a way to it stops short, and no host is placed at a TTL that
// cannot be known.
func (v View) endAtHost(hops []api.PathHop, dst *api.Owner) ([]api.PathHop, bool) {
	if dst == nil || len(hops) == 0 {
		return hops, true
	}
	last := hops[len(hops)-1]
	host := dst.Host
	if host == "" && dst.NextHop.IsValid() {
		host = dst.NextHop.String()
	}
	switch {
	case last.InIfIndex != "internal" && last.OutIfIndex == "internal",
		dst.NextHop.IsValid() && last.Agent == dst.NextHop.String(), host != "" && last.Node == host:
		return hops, true // the host itself sampled it
	case dst.Gone != 0 || !dst.NextHop.IsValid():
		return hops, false // withdrawn: where it ended is unknown
	case last.TTL < 2:
		return hops, false
	case dst.AnnouncedBy != "" && last.Node == dst.AnnouncedBy, dst.Peer.IsValid() && last.Agent == dst.Peer.String():
		// The last hop announced the route (named, or its session comes
		// from its agent address): the host is next.
		return append(hops, api.PathHop{TTL: last.TTL - 1, Node: host, Kind: "attributed"}), true
	case dst.AnnouncedBy != "" && last.TTL >= 3 && v.Topo.PeerName(last.Agent, last.OutIfIndex) == dst.AnnouncedBy:
		return append(hops, api.PathHop{TTL: last.TTL - 1, Node: dst.AnnouncedBy, Kind: "inferred"},
			api.PathHop{TTL: last.TTL - 2, Node: host, Kind: "attributed"}), true
	}
	return hops, false
}

// assemble orders a 5-tuple's observations into hops by TTL, highest
// first, and marks what is missing; gaps says whether any TTL between the
// first hop and the last has no node.
func (v View) assemble(obs []*hopSeen) (hops []api.PathHop, gaps bool) {
	// One observation per (agent, TTL): the most sampled ports.
	type key struct {
		agent netip.Addr
		ttl   uint8
	}
	best := map[key]*hopSeen{}
	for _, h := range obs {
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
		ai, bi := internal(a), internal(b)
		if ai != bi {
			return ai
		}
		return a.agent.Less(b.agent)
	})
	for i, h := range seen {
		hop := v.pathHop(h)
		if i > 0 {
			prev := seen[i-1]
			switch {
			case prev.ttl == h.ttl && !internal(prev):
				hop.Kind = "l2"
			case prev.ttl > h.ttl+1:
				// Unsampled hops: what the previous hop's output link reaches,
				// if the topology says, then unknowns.
				for ttl := int(prev.ttl) - 1; ttl > int(h.ttl); ttl-- {
					gap := api.PathHop{TTL: uint8(ttl), Node: "?", Kind: "missing"}
					if ttl == int(prev.ttl)-1 {
						if node := v.Topo.PeerNode(prev.agent, prev.out); node != "" {
							gap.Node, gap.Kind = node, "inferred"
						}
					}
					if gap.Kind == "missing" {
						gaps = true
					}
					hops = append(hops, gap)
				}
			}
		}
		hops = append(hops, hop)
	}
	return hops, gaps
}

func (v View) pathHop(h *hopSeen) api.PathHop {
	hop := api.PathHop{TTL: h.ttl, Node: v.Topo.NodeName(h.agent), Agent: h.agent.String(), Samples: h.samples,
		Bytes: h.bytes, Kind: "sampled"}
	if hop.Node == "" {
		hop.Node = hop.Agent
	}
	hop.In, hop.InIfIndex = v.Port(h.agent, h.in)
	hop.Out, hop.OutIfIndex = v.Port(h.agent, h.out)
	return hop
}

func signature(hops []api.PathHop) string {
	var b strings.Builder
	for _, h := range hops {
		fmt.Fprintf(&b, "%d:%s/%s>%s;", h.TTL, h.Node, h.InIfIndex, h.OutIfIndex)
	}
	return b.String()
}

// within reports whether every sampled hop of small is on big, alike: the
// same node at the same TTL, through the same ports where both know them
// (an inferred hop knows none).
func within(small, big []api.PathHop) bool {
	same := func(a, b string) bool { return a == "" || b == "" || a == b }
	for _, h := range small {
		if h.Kind != "sampled" && h.Kind != "l2" {
			continue
		}
		found := false
		for _, b := range big {
			if b.TTL == h.TTL && b.Node == h.Node && same(b.InIfIndex, h.InIfIndex) && same(b.OutIfIndex, h.OutIfIndex) {
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

func mergeHops(into, from []api.PathHop) {
	for i := range min(len(into), len(from)) {
		into[i].Samples += from[i].Samples
		into[i].Bytes += from[i].Bytes
	}
}

// splits finds the TTLs where a pair's paths go through different nodes,
// and each node's share of the pair's bytes there. A host and its leaf at
// one TTL on every path are no split.
func splits(paths []api.Path) []api.Split {
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
			// A host's own egress shares its TTL with its leaf: consecutive
			// hops, not a split. Unknown and attributed hops part nothing.
			if h.Kind != "missing" && h.Kind != "attributed" && h.InIfIndex != "internal" {
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
	var out []api.Split
	for ttl, a := range by {
		if len(a.sets) < 2 || total == 0 {
			continue
		}
		s := api.Split{TTL: ttl, Shares: map[string]float64{}}
		for n, b := range a.bytes {
			s.Shares[n] = b / total
			s.Skewed = s.Skewed || b/total > 0.8
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TTL > out[j].TTL })
	return out
}
