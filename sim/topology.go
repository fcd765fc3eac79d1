package sim

import (
	"fmt"
	"net/netip"
)

// Kind says what a node is.
type Kind string

// Node kinds.
const (
	Spine  Kind = "spine"
	Leaf   Kind = "leaf"
	Server Kind = "server"
)

// Topology sizes a leaf/spine fabric. The zero value of a field takes the
// seed demo's default.
type Topology struct {
	Spines              int // default 2
	Leaves              int // default 4
	ServersPerLeaf      int // default 1
	ContainersPerServer int // default 3
}

func (t Topology) withDefaults() Topology {
	if t.Spines == 0 {
		t.Spines = 2
	}
	if t.Leaves == 0 {
		t.Leaves = 4
	}
	if t.ServersPerLeaf == 0 {
		t.ServersPerLeaf = 1
	}
	if t.ContainersPerServer == 0 {
		t.ContainersPerServer = 3
	}
	return t
}

// Limits that keep every address inside its range and every port number
// below the uplinks' swp51.
const (
	maxSpines         = 48
	maxLeaves         = 200
	maxServersPerLeaf = 48
	maxContainers     = 99
)

func (t Topology) validate() error {
	switch {
	case t.Spines < 1 || t.Spines > maxSpines:
		return fmt.Errorf("spines %d: want 1..%d", t.Spines, maxSpines)
	case t.Leaves < 1 || t.Leaves > maxLeaves:
		return fmt.Errorf("leaves %d: want 1..%d", t.Leaves, maxLeaves)
	case t.ServersPerLeaf < 1 || t.ServersPerLeaf > maxServersPerLeaf:
		return fmt.Errorf("servers per leaf %d: want 1..%d", t.ServersPerLeaf, maxServersPerLeaf)
	case t.ContainersPerServer < 1 || t.ContainersPerServer > maxContainers:
		return fmt.Errorf("containers per server %d: want 1..%d", t.ContainersPerServer, maxContainers)
	case t.Leaves*t.ServersPerLeaf > 250:
		return fmt.Errorf("%d servers: at most 250 fit the server range 10.0.0.0/24", t.Leaves*t.ServersPerLeaf)
	}
	return nil
}

// Port is a named switch or server port.
type Port struct {
	IfIndex uint32
	Name    string
	Speed   uint64 // bits per second
	Peer    *Node  // the node on the far end of the link
}

// Node is a spine, leaf or server. Every node is an sFlow agent, although
// servers only send when the simulator runs with server agents.
type Node struct {
	Name  string
	Kind  Kind
	Agent netip.Addr // sFlow agent address, and the loopback
	Ports []*Port
	Leaf  *Node // a server's leaf
	ASN   uint32

	// BGPSource is the loopback address a leaf's BGP speaker connects from:
	// GoBGP matches incoming sessions by peer address alone.
	BGPSource netip.Addr
	// Agent6 is a server's IPv6 loopback, the next hop of its containers' /128s.
	Agent6 netip.Addr
}

// PortTo returns the node's port that faces peer.
func (n *Node) PortTo(peer *Node) *Port {
	for _, p := range n.Ports {
		if p.Peer == peer {
			return p
		}
	}
	return nil
}

// Fabric is a built topology.
type Fabric struct {
	Topology Topology
	Spines   []*Node
	Leaves   []*Node
	Servers  []*Node
}

// Nodes lists every node: spines, leaves, then servers.
func (f *Fabric) Nodes() []*Node {
	all := make([]*Node, 0, len(f.Spines)+len(f.Leaves)+len(f.Servers))
	all = append(all, f.Spines...)
	all = append(all, f.Leaves...)
	return append(all, f.Servers...)
}

// Node finds a node by name.
func (f *Fabric) Node(name string) *Node {
	for _, n := range f.Nodes() {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Port speeds: 10G to servers, 100G between leaves and spines.
const (
	serverLinkSpeed = 10_000_000_000
	fabricLinkSpeed = 100_000_000_000
)

// BaseASN is the AS of leaf01; leaf N is BaseASN+N-1, as in an eBGP fabric
// where every leaf has its own AS.
const BaseASN = 65101

// Build lays out the fabric: spines 10.255.0.N, leaves 10.255.1.N, servers
// 10.0.0.N. Leaves number their server ports swp1.. and their uplinks
// swp51.., spines number their leaf ports swp1.., servers have eth0.
func Build(t Topology) (*Fabric, error) {
	t = t.withDefaults()
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	f := &Fabric{Topology: t}
	for i := range t.Spines {
		f.Spines = append(f.Spines, &Node{Name: fmt.Sprintf("spine%02d", i+1), Kind: Spine,
			Agent: netip.AddrFrom4([4]byte{10, 255, 0, byte(i + 1)})})
	}
	for i := range t.Leaves {
		f.Leaves = append(f.Leaves, &Node{Name: fmt.Sprintf("leaf%02d", i+1), Kind: Leaf,
			Agent:     netip.AddrFrom4([4]byte{10, 255, 1, byte(i + 1)}),
			ASN:       BaseASN + uint32(i),
			BGPSource: netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})})
	}
	for li, leaf := range f.Leaves {
		for s := range t.ServersPerLeaf {
			n := len(f.Servers) + 1
			srv := &Node{Name: fmt.Sprintf("server%02d", n), Kind: Server, Leaf: leaf,
				Agent:  netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}),
				Agent6: netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(n)}),
			}
			srv.Ports = []*Port{{IfIndex: 2, Name: "eth0", Speed: serverLinkSpeed, Peer: leaf}}
			leaf.Ports = append(leaf.Ports, &Port{IfIndex: uint32(s + 1), Name: fmt.Sprintf("swp%d", s+1),
				Speed: serverLinkSpeed, Peer: srv})
			f.Servers = append(f.Servers, srv)
		}
		for si, spine := range f.Spines {
			leaf.Ports = append(leaf.Ports, &Port{IfIndex: uint32(51 + si), Name: fmt.Sprintf("swp%d", 51+si),
				Speed: fabricLinkSpeed, Peer: spine})
			spine.Ports = append(spine.Ports, &Port{IfIndex: uint32(li + 1), Name: fmt.Sprintf("swp%d", li+1),
				Speed: fabricLinkSpeed, Peer: leaf})
		}
	}
	return f, nil
}

// Container address plan: server N's containers are 172.16.1.(10N+1).. in one
// shared /24 while that fits (the seed demo's .11-.13, .21-.23, ...), and
// 172.16.N.1.. otherwise; their IPv6 twins are fd00:172:16:1::N:C.
func containerAddr(server, slot int, t Topology) netip.Addr {
	if t.ContainersPerServer <= 9 && t.Leaves*t.ServersPerLeaf <= 24 {
		return netip.AddrFrom4([4]byte{172, 16, 1, byte(10*server + slot)})
	}
	return netip.AddrFrom4([4]byte{172, 16, byte(server), byte(slot)})
}

func containerAddr6(server, slot int) netip.Addr {
	return netip.AddrFrom16([16]byte{0xfd, 0, 0x01, 0x72, 0, 0x16, 0, 1, 0, 0, 0, 0, 0, byte(server), 0, byte(slot)})
}
