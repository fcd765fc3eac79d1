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
	Packets, Bytes   uint64 // sent so far

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

// ecmp picks the spine a leaf sends a flow to: a hash of the 5-tuple seeded
// by the leaf, so one 5-tuple always takes one path and different 5-tuples
// spread, as a switch's ECMP hash does.
func (s *Sim) ecmp(leaf *Node, f *Flow) *Node {
	var key [48]byte
	b := append(key[:0], leaf.Name...)
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
	return s.fab.Spines[h%uint64(len(s.fab.Spines))]
}

// route lays down a flow's hops: TTL 64 leaves the container, and every
// routed hop (leaf, spine, leaf) takes one off.
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
	moved := 0
	for _, f := range s.flows {
		if len(f.Hops) < 5 || f.Hops[1].Node != leaf {
			continue // not crossing a spine from this leaf
		}
		old := f.Hops[2].Node
		f.Hops = nil
		s.route(f, f.srcEnd, f.dstEnd)
		if f.Hops[2].Node != old {
			moved++
		}
	}
	return moved, nil
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
		spine := s.ecmp(l1, f)
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
