package topology_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/topology"
)

var (
	leaf1 = netip.MustParseAddr("10.0.0.1")
	spine = netip.MustParseAddr("10.0.0.9")
)

func fabric() api.Topology {
	return api.Topology{
		Nodes: map[string]api.TopologyNode{
			"leaf1":  {Agent: leaf1.String(), Ports: map[string]api.TopologyPort{"swp1": {IfIndex: "3"}}},
			"spine1": {Agent: spine.String(), Ports: map[string]api.TopologyPort{"swp7": {IfIndex: "7"}}},
		},
		Links: map[string]api.TopologyLink{"l1": {Node1: "leaf1", Port1: "swp1", Node2: "spine1", Port2: "swp7"}},
	}
}

// The document names nodes, ports and links at once, both ends of a link
// find each other, and every Set puts the version up by one.
func TestDocumentLookups(t *testing.T) {
	m := topology.New()
	if err := m.Set(fabric()); err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot(0, false)
	if got := s.NodeName(leaf1); got != "leaf1" {
		t.Errorf("NodeName = %q, want leaf1", got)
	}
	if name, ok := s.Link(spine, 7); !ok || name != "l1" {
		t.Errorf("Link(spine, 7) = %q %v, want l1", name, ok)
	}
	if _, ok := s.Link(spine, 8); ok {
		t.Error("a port on no link has a link")
	}
	if got := s.PeerNode(leaf1, decode.Port{Format: decode.PortIfIndex, Value: 3}); got != "spine1" {
		t.Errorf("PeerNode(leaf1, 3) = %q, want spine1", got)
	}
	if got := s.PeerName(spine.String(), "7"); got != "leaf1" {
		t.Errorf("PeerName(spine, 7) = %q, want leaf1", got)
	}
	if got := s.PortName(leaf1, 3); got != "swp1" {
		t.Errorf("PortName = %q, want swp1", got)
	}
	if a, ok := s.NodeAddress("spine1"); !ok || a != spine {
		t.Errorf("NodeAddress(spine1) = %v %v", a, ok)
	}
	if err := m.Set(fabric()); err != nil {
		t.Fatal(err)
	}
	if v := m.Doc().Version; v != 2 {
		t.Errorf("version after two Sets = %d, want 2", v)
	}
}

// A bad document is refused with the field at fault, and the one before
// stays.
func TestBadDocumentsAreRefused(t *testing.T) {
	m := topology.New()
	if err := m.Set(fabric()); err != nil {
		t.Fatal(err)
	}
	bad := fabric()
	bad.Nodes["leaf1"] = api.TopologyNode{Agent: "10.0.0.300"}
	for _, c := range []struct {
		doc  api.Topology
		want string
	}{
		{bad, "nodes.leaf1.agent"},
		{api.Topology{Nodes: map[string]api.TopologyNode{"x": {Ports: map[string]api.TopologyPort{"p": {IfIndex: "eth0"}}}}}, `nodes.x.ports.p.ifindex "eth0"`},
		{api.Topology{Links: map[string]api.TopologyLink{"l": {Node1: "a"}}}, "links.l: want node1, port1, node2 and port2"},
	} {
		err := m.Set(c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Set: %v, want an error naming %s", err, c.want)
		}
	}
	if got := m.Snapshot(0, true).NodeName(leaf1); got != "leaf1" || m.Doc().Version != 1 {
		t.Errorf("after refusals: node %q version %d, want leaf1 and 1", got, m.Doc().Version)
	}
}

// What counters teach is folded in at most once a second, unless forced;
// a hostname names its node at once (flow keys would split otherwise).
func TestCountersFoldInOnceASecond(t *testing.T) {
	m := topology.New()
	before := m.Snapshot(0, false)
	m.LearnHost(leaf1, "leaf1")
	m.LearnPort(leaf1, "swp1", 3)
	if s := m.Snapshot(0.5, false); s != before || s.PortName(leaf1, 3) != "" {
		t.Fatal("a lesson folded in within the second")
	}
	if got := before.NodeName(leaf1); got != "leaf1" {
		t.Errorf("a hostname just learned names %q, want leaf1 at once", got)
	}
	s := m.Snapshot(1.5, false)
	if s.NodeName(leaf1) != "leaf1" || s.PortName(leaf1, 3) != "swp1" {
		t.Errorf("after a second: node %q port %q, want leaf1 and swp1", s.NodeName(leaf1), s.PortName(leaf1, 3))
	}
	if h, ok := s.Host(leaf1); !ok || h != "leaf1" {
		t.Errorf("Host = %q %v", h, ok)
	}
	if before.PortName(leaf1, 3) != "" {
		t.Error("a held snapshot changed")
	}
	m.LearnHost(spine, "spine1")
	if m.Snapshot(1.6, true).NodeName(spine) != "spine1" {
		t.Error("force did not fold in at once")
	}
	if m.Snapshot(1.7, false) != m.Snapshot(1.8, false) {
		t.Error("a snapshot rebuilt with nothing learned")
	}
	if n := len(m.Snapshot(2, true).Nodes()); n != 2 {
		t.Errorf("%d nodes, want 2", n)
	}
}
