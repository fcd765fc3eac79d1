package sim

import (
	"encoding/json"
	"io"
	"net/netip"
	"time"
)

// Truth is what really happened in a simulation, for tests and benchmarks to
// score the collector against. Times are seconds since the start.
type Truth struct {
	Seed              uint64           `json:"seed"`
	SamplingRate      uint32           `json:"samplingRate"`
	Elapsed           float64          `json:"elapsed"`
	Nodes             []TruthNode      `json:"nodes"`
	Containers        []TruthContainer `json:"containers"`
	Flows             []TruthFlow      `json:"flows"`
	EndedFlowsDropped uint64           `json:"endedFlowsDropped"` // mice let go under MaxEndedFlows
	LinkEvents        []TruthLinkEvent `json:"linkEvents,omitempty"`
	PathChanges       int              `json:"pathChanges"` // over every flow, ended ones let go included
}

// TruthLinkEvent is a leaf-spine link going down or up.
type TruthLinkEvent struct {
	Time  float64 `json:"time"`
	Leaf  string  `json:"leaf"`
	Spine string  `json:"spine"`
	Up    bool    `json:"up"`
	Moved int     `json:"moved"` // flows that changed spine
}

// TruthChange is a flow moving from one spine to another.
type TruthChange struct {
	Time float64 `json:"time"`
	From string  `json:"from"`
	To   string  `json:"to"`
}

// TruthFilter selects the flows a Truth holds.
type TruthFilter struct {
	Elephants bool // only elephants and the mix
	Active    bool // only flows running now
}

// TruthNode is a switch or server and its ports.
type TruthNode struct {
	Name   string      `json:"name"`
	Kind   Kind        `json:"kind"`
	Agent  netip.Addr  `json:"agent"`
	Leaf   string      `json:"leaf,omitempty"`
	ASN    uint32      `json:"asn,omitempty"`
	Ports  []TruthPort `json:"ports"`
	Export bool        `json:"sflow"` // whether it sends sFlow
}

// TruthPort is a port and what its link reaches.
type TruthPort struct {
	IfIndex uint32 `json:"ifIndex"`
	Name    string `json:"name"`
	Speed   uint64 `json:"speed"`
	Peer    string `json:"peer"`
}

// TruthContainer is a container's life.
type TruthContainer struct {
	Name      string     `json:"name"`
	Server    string     `json:"server"`
	Leaf      string     `json:"leaf"`
	Addr      netip.Addr `json:"address"`
	Addr6     netip.Addr `json:"address6"`
	Created   float64    `json:"created"`
	Destroyed *float64   `json:"destroyed,omitempty"`
}

// TruthFlow is one direction of a flow, with its path.
type TruthFlow struct {
	ID         int        `json:"id"`
	Src        netip.Addr `json:"src"`
	Dst        netip.Addr `json:"dst"`
	Proto      uint8      `json:"proto"`
	SrcPort    uint16     `json:"srcPort"`
	DstPort    uint16     `json:"dstPort"`
	Rate       float64    `json:"rate"` // bytes per second
	PacketSize int        `json:"packetSize"`
	Start      float64    `json:"start"`
	End        float64    `json:"end"` // planned while it runs
	Active     bool       `json:"active"`
	Elephant   bool       `json:"elephant"`
	Mix        bool       `json:"mix,omitempty"` // of the mix that straddles the threshold
	Packets    uint64     `json:"packets"`
	Bytes      uint64     `json:"bytes"`
	Hops       []TruthHop `json:"hops"`
	// Changes are the path changes, oldest first; Hops is the path now.
	Changes []TruthChange `json:"changes,omitempty"`
}

// TruthHop is a node on a flow's path.
type TruthHop struct {
	Node       string `json:"node"`
	In         string `json:"in,omitempty"`
	Out        string `json:"out,omitempty"`
	InIfIndex  uint32 `json:"inIfIndex"`
	OutIfIndex uint32 `json:"outIfIndex"`
	TTL        uint8  `json:"ttl"`
	Samples    uint64 `json:"samples"`
}

// Truth returns the ground truth so far: every active flow, ended flows up to
// MaxEndedFlows, every container that ever lived.
func (s *Sim) Truth() Truth { return s.TruthOf(TruthFilter{}) }

// TruthOf returns the ground truth so far, with only the flows that sel
// selects: a light one to read every second.
func (s *Sim) TruthOf(sel TruthFilter) Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Truth{Seed: s.cfg.Seed, SamplingRate: s.cfg.SamplingRate, Elapsed: secs(s.now),
		EndedFlowsDropped: s.endedDrop, PathChanges: s.changes}
	for _, ev := range s.linkEvents {
		t.LinkEvents = append(t.LinkEvents, TruthLinkEvent{Time: secs(ev.At), Leaf: ev.Leaf, Spine: ev.Spine, Up: ev.Up, Moved: ev.Moved})
	}
	for _, n := range s.fab.Nodes() {
		tn := TruthNode{Name: n.Name, Kind: n.Kind, Agent: n.Agent, ASN: n.ASN, Export: s.agents[n] != nil}
		if n.Leaf != nil {
			tn.Leaf = n.Leaf.Name
		}
		for _, p := range n.Ports {
			tn.Ports = append(tn.Ports, TruthPort{IfIndex: p.IfIndex, Name: p.Name, Speed: p.Speed, Peer: p.Peer.Name})
		}
		t.Nodes = append(t.Nodes, tn)
	}
	for _, c := range s.containers {
		tc := TruthContainer{Name: c.Name, Server: c.Server.Name, Leaf: c.Server.Leaf.Name,
			Addr: c.Addr, Addr6: c.Addr6, Created: secs(c.Created)}
		if !c.Alive {
			d := secs(c.Destroyed)
			tc.Destroyed = &d
		}
		t.Containers = append(t.Containers, tc)
	}
	if !sel.Active {
		for _, f := range s.ended {
			if f.Elephant || f.Mix || !sel.Elephants {
				t.Flows = append(t.Flows, truthFlow(f, false))
			}
		}
	}
	for _, f := range s.flows {
		if f.Elephant || f.Mix || !sel.Elephants {
			t.Flows = append(t.Flows, truthFlow(f, true))
		}
	}
	return t
}

func truthFlow(f *Flow, active bool) TruthFlow {
	tf := TruthFlow{ID: f.ID, Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort,
		Rate: f.Rate, PacketSize: f.PacketSize, Start: secs(f.Start), End: secs(f.End), Active: active,
		Elephant: f.Elephant, Mix: f.Mix, Packets: f.Packets, Bytes: f.Bytes}
	for _, h := range f.Hops {
		th := TruthHop{Node: h.Node.Name, InIfIndex: ifIndex(h.In), OutIfIndex: ifIndex(h.Out), TTL: h.TTL, Samples: h.Samples}
		if h.In != nil {
			th.In = h.In.Name
		}
		if h.Out != nil {
			th.Out = h.Out.Name
		}
		tf.Hops = append(tf.Hops, th)
	}
	for _, c := range f.Changes {
		tf.Changes = append(tf.Changes, TruthChange{Time: secs(c.At), From: c.From, To: c.To})
	}
	return tf
}

// WriteJSON writes the truth as indented JSON.
func (t Truth) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

func secs(d time.Duration) float64 { return d.Seconds() }
