package sim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Flow is one direction of a conversation, with its true path.
type Flow struct {
	ID               int
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	Rate             float64 // bytes per second of IP packets
	PacketSize       int     // IP length of every packet
	Start, End       time.Duration
	Elephant         bool
	Hops             []Hop
	Packets, Bytes   uint64       // sent so far
	Changes          []PathChange // the spines it moved between, oldest first
	Mix              bool         // a flow of the threshold-straddling mix (Config.MixEvery)

	srcContainer, dstContainer *Container
	srcEnd, dstEnd             endpoint
	scheduled                  bool    // an Elephant of the Config: churn spares its containers
	carried                    float64 // fraction of a packet owed to the next tick
}

// Hop is one node a flow crosses, with the TTL its packets have on arrival,
// which is what the node's sFlow samples show.
type Hop struct {
	Node                  *Node
	In, Out               *Port // nil for traffic that starts or ends inside a server
	TTL                   uint8
	Samples               uint64 // samples the node took of this flow
	srcMAC, dstMAC        decode.MAC
	sampler               *sampler // nil when the node does not export sFlow
	inCounter, outCounter *portCounters
}

// IfIndex returns a port's ifIndex, or the internal value for none.
func ifIndex(p *Port) uint32 {
	if p == nil {
		return decode.IfIndexInternal
	}
	return p.IfIndex
}

// ecmp picks the spine a leaf sends a flow to: of the spines whose links
// to both leaves are up, the one with the highest hash of the 5-tuple,
// seeded by the leaf (rendezvous hashing). One 5-tuple always takes one
// path, different 5-tuples spread, as a switch's ECMP hash does, and a link
// that fails moves only the flows it carried.
func (s *Sim) ecmp(leaf, dstLeaf *Node, f *Flow) *Node {
	var best *Node
	var bestH uint64
	for _, spine := range s.fab.Spines {
		if s.isDown(leaf, spine) || s.isDown(dstLeaf, spine) {
			continue
		}
		var key [64]byte
		b := append(key[:0], leaf.Name...)
		b = append(b, spine.Name...)
		b = binary.BigEndian.AppendUint32(b, s.salt[leaf])
		b = append(b, f.Src.AsSlice()...)
		b = append(b, f.Dst.AsSlice()...)
		b = append(b, f.Proto)
		b = binary.BigEndian.AppendUint16(b, f.SrcPort)
		b = binary.BigEndian.AppendUint16(b, f.DstPort)
		h := uint64(14695981039346656037) // FNV-1a
		for _, c := range b {
			h ^= uint64(c)
			h *= 1099511628211
		}
		h ^= h >> 29 // FNV's low bits mix poorly on their own
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 32
		if best == nil || h > bestH {
			best, bestH = spine, h
		}
	}
	if best == nil { // every path down: the fabric is partitioned; keep hashing as if up
		best = s.fab.Spines[0]
	}
	return best
}

// Rehash changes a leaf's ECMP hash, as a reboot or a link flap would, and
// moves the flows it carries onto their new paths. It reports how many
// flows changed spine.
func (s *Sim) Rehash(leafName string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	leaf := s.fab.Node(leafName)
	if leaf == nil || leaf.Kind != Leaf {
		return 0, fmt.Errorf("rehash %q: no such leaf", leafName)
	}
	s.salt[leaf]++
	return s.reroute(func(f *Flow) bool { return f.Hops[1].Node == leaf }), nil
}

// reroute lays down again the paths of the flows that cross a spine and
// that pick says may move, records each that changed spine, and reports
// how many did.
func (s *Sim) reroute(pick func(*Flow) bool) int {
	moved := 0
	for _, f := range s.flows {
		if len(f.Hops) < 5 || !pick(f) {
			continue // not crossing a spine
		}
		old := f.Hops[2].Node
		f.Hops = nil
		s.route(f, f.srcEnd, f.dstEnd)
		if now := f.Hops[2].Node; now != old {
			f.Changes = append(f.Changes, PathChange{At: s.now, From: old.Name, To: now.Name})
			s.changes++
			moved++
		}
	}
	return moved
}

// link is a leaf-spine link, named by its two ends.
type link struct{ leaf, spine *Node }

// LinkEvent is a leaf-spine link going down or coming back.
type LinkEvent struct {
	At    time.Duration
	Leaf  string
	Spine string
	Up    bool
	Moved int // flows that changed spine because of it
}

// LinkEvents returns the link failures and repairs so far, oldest first
// (the last 10,000).
func (s *Sim) LinkEvents() []LinkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LinkEvent(nil), s.linkEvents...)
}

// SetLink takes a leaf-spine link down (up false) or brings it back, as
// -link-failures does at random, and reports how many flows moved.
func (s *Sim) SetLink(leafName, spineName string, up bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	leaf, spine := s.fab.Node(leafName), s.fab.Node(spineName)
	if leaf == nil || leaf.Kind != Leaf || spine == nil || spine.Kind != Spine {
		return 0, fmt.Errorf("link %s-%s: want a leaf and a spine of this fabric", leafName, spineName)
	}
	l := link{leaf, spine}
	if _, down := s.down[l]; down == !up {
		return 0, nil // already so
	}
	if up {
		delete(s.down, l)
	} else {
		s.down[l] = 1<<63 - 1 // until brought back
	}
	before := len(s.linkEvents)
	s.linkChanged(l, up)
	return s.linkEvents[before].Moved, nil
}

func (s *Sim) isDown(leaf, spine *Node) bool {
	_, down := s.down[link{leaf, spine}]
	return down
}

// failLinks brings back the links whose time is up, and takes one down when
// the next failure is due: a link that an elephant uses, when one runs,
// since a failure under no elephant shows nothing.
func (s *Sim) failLinks() {
	for l, back := range s.down {
		if s.now >= back {
			delete(s.down, l)
			s.linkChanged(l, true)
		}
	}
	if !s.cfg.LinkFailures || s.now < s.nextFail || len(s.fab.Spines) < 2 {
		return
	}
	every := s.cfg.LinkFailEvery
	s.nextFail = s.now + every + time.Duration(s.rng.Int64N(int64(every)))
	var used []link
	for _, f := range s.flows {
		if f.Elephant && len(f.Hops) == 5 {
			used = append(used, link{f.Hops[1].Node, f.Hops[2].Node}, link{f.Hops[3].Node, f.Hops[2].Node})
		}
	}
	var l link
	if len(used) > 0 {
		l = used[s.rng.IntN(len(used))]
	} else {
		l = link{s.fab.Leaves[s.rng.IntN(len(s.fab.Leaves))], s.fab.Spines[s.rng.IntN(len(s.fab.Spines))]}
	}
	// Keep one path up from every leaf: a fabric that loses a leaf's last
	// uplink is partitioned, not rerouted.
	up := 0
	for _, spine := range s.fab.Spines {
		if spine != l.spine && !s.isDown(l.leaf, spine) {
			up++
		}
	}
	if _, already := s.down[l]; already || up == 0 {
		return
	}
	s.down[l] = s.now + s.cfg.LinkDownFor + time.Duration(s.rng.Int64N(int64(2*s.cfg.LinkDownFor)))
	s.linkChanged(l, false)
}

// linkChanged moves the flows whose best spine changed with the link, and
// records the event.
func (s *Sim) linkChanged(l link, up bool) {
	moved := s.reroute(func(f *Flow) bool { return f.Hops[1].Node == l.leaf || f.Hops[3].Node == l.leaf })
	s.linkEvents = append(s.linkEvents, LinkEvent{At: s.now, Leaf: l.leaf.Name, Spine: l.spine.Name, Up: up, Moved: moved})
	if len(s.linkEvents) > maxLinkEvents {
		s.linkEvents = append(s.linkEvents[:0], s.linkEvents[len(s.linkEvents)-maxLinkEvents:]...)
	}
}

const maxLinkEvents = 10_000

// PathChange is a flow moving from one spine to another, and when.
type PathChange struct {
	At       time.Duration
	From, To string // spine names
}

func (s *Sim) route(f *Flow, src, dst endpoint) {
	f.srcEnd, f.dstEnd = src, dst
	type step struct {
		node    *Node
		in, out *Port
	}
	srv, dsrv := src.server, dst.server
	l1, l2 := srv.Leaf, dsrv.Leaf
	var steps []step
	steps = append(steps, step{srv, nil, srv.Ports[0]})
	if l1 == l2 {
		steps = append(steps, step{l1, l1.PortTo(srv), l1.PortTo(dsrv)})
	} else {
		spine := s.ecmp(l1, l2, f)
		steps = append(steps,
			step{l1, l1.PortTo(srv), l1.PortTo(spine)},
			step{spine, spine.PortTo(l1), spine.PortTo(l2)},
			step{l2, l2.PortTo(spine), l2.PortTo(dsrv)})
	}
	steps = append(steps, step{dsrv, dsrv.Ports[0], nil})

	ttl := uint8(64)
	prevMAC := endpointMAC(src)
	for i, st := range steps {
		if i > 1 {
			ttl-- // the node before this one routed the packet
		}
		h := Hop{Node: st.node, In: st.in, Out: st.out, TTL: ttl, srcMAC: prevMAC, dstMAC: nodeMAC(st.node)}
		if i == 0 {
			h.dstMAC = nodeMAC(l1) // the container's gateway
		}
		if i == len(steps)-1 {
			h.dstMAC = endpointMAC(dst) // macvlan: the container's own MAC
		}
		if i > 0 {
			prevMAC = nodeMAC(st.node)
		}
		if a := s.agents[st.node]; a != nil {
			if st.node.Kind == Server {
				// hsflowd samples both directions on the server's NIC.
				port := st.out
				if port == nil {
					port = st.in
				}
				h.sampler = a.sampler(port.IfIndex, s.cfg.ServerSamplingRate, s.rng)
			} else {
				h.sampler = a.sampler(st.in.IfIndex, s.cfg.SamplingRate, s.rng)
			}
		}
		if a := s.agents[st.node]; a != nil {
			if st.in != nil {
				h.inCounter = a.ports[st.in.IfIndex]
			}
			if st.out != nil {
				h.outCounter = a.ports[st.out.IfIndex]
			}
		}
		f.Hops = append(f.Hops, h)
	}
}

func nodeMAC(n *Node) decode.MAC {
	a := n.Agent.As4()
	return decode.MAC{0x02, 0x00, a[0], a[1], a[2], a[3]}
}

func endpointMAC(e endpoint) decode.MAC {
	if e.container == nil {
		return nodeMAC(e.server)
	}
	a := e.container.Addr.As4()
	return decode.MAC{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// carry moves one tick of a flow's packets across its hops: counters count
// them all, samplers take 1 in N.
func (s *Sim) carry(f *Flow, dt time.Duration) {
	run := dt
	if f.End > 0 && f.End < s.now+dt {
		run = max(f.End-s.now, 0)
	}
	want := f.Rate*run.Seconds()/float64(f.PacketSize) + f.carried
	pkts := uint64(want)
	f.carried = want - float64(pkts)
	if pkts == 0 {
		return
	}
	f.Packets += pkts
	f.Bytes += pkts * uint64(f.PacketSize)
	frameBytes := pkts * uint64(f.PacketSize+14)
	for i := range f.Hops {
		h := &f.Hops[i]
		if h.inCounter != nil {
			h.inCounter.inOctets += frameBytes
			h.inCounter.inPkts += uint32(pkts)
		}
		if h.outCounter != nil {
			h.outCounter.outOctets += frameBytes
			h.outCounter.outPkts += uint32(pkts)
		}
		if h.sampler != nil {
			h.sampler.offer(s, f, h, pkts)
		}
	}
}
