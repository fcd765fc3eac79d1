// Package topology knows the fabric's shape: the topology document (what
// sFlow-RT's PUT /topology/json installs) and what counters taught
// (host_descr hostnames, port_name ports), joined into lookups by agent
// and ifIndex. Readers hold an immutable Snapshot and take no lock;
// changes publish a new one, at most once a second for what counters
// teach, so that a fabric of thousands of ports costs a few rebuilds.
package topology

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
)

// MaxLearned caps what counters can teach, per map (hostnames, ports).
const MaxLearned = 100_000

type portRef struct {
	agent   netip.Addr
	ifIndex uint32
}

type namedPort struct {
	node, port string
}

// Map is the topology: safe for concurrent use.
type Map struct {
	mu      sync.Mutex
	doc     api.Topology
	version int64                 // the document's, up by one each Set
	hosts   map[netip.Addr]string // host_descr hostnames
	learned map[portRef]string    // port_name counters, by agent and ifIndex
	dirty   atomic.Bool           // counters taught something since the last build
	builtAt float64               // when, on the caller's clock
	cur     atomic.Pointer[Snapshot]
}

// New returns an empty topology.
func New() *Map {
	m := &Map{hosts: map[netip.Addr]string{}, learned: map[portRef]string{}}
	m.cur.Store(m.build())
	return m
}

// Snapshot is the topology at one moment, compiled for lookups.
type Snapshot struct {
	doc       api.Topology
	version   int64
	agentNode map[netip.Addr]string // from the document, else host_descr
	hosts     map[netip.Addr]string
	agentOf   map[string]netip.Addr
	links     map[portRef]string // link name of each linked port
	portNames map[portRef]string // port name of each known port
	// m answers for hostnames learned since the build: a name is used from
	// the moment its host_descr arrives, as the flow keys it names would
	// otherwise split in two.
	m *Map
}

// Snapshot returns the topology now. What counters taught is folded in when
// the last build is a second old (at now, on the caller's clock), or at
// once with force.
func (m *Map) Snapshot(now float64, force bool) *Snapshot {
	if m.dirty.Load() {
		m.mu.Lock()
		if m.dirty.Load() && (force || now-m.builtAt >= 1) {
			m.cur.Store(m.build())
			m.builtAt = now
		}
		m.mu.Unlock()
	}
	return m.cur.Load()
}

// LearnHost keeps an agent's host_descr hostname.
func (m *Map) LearnHost(agent netip.Addr, hostname string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosts[agent] == hostname || len(m.hosts) >= MaxLearned {
		return
	}
	m.hosts[agent] = hostname
	m.dirty.Store(true)
}

// LearnPort keeps a port_name by agent and ifIndex: the agent's name may
// come later, in its host_descr, and the build joins the two.
func (m *Map) LearnPort(agent netip.Addr, name string, ifIndex uint32) {
	k := portRef{agent, ifIndex}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.learned[k] == name || len(m.learned) >= MaxLearned {
		return
	}
	m.learned[k] = name
	m.dirty.Store(true)
}

// Set validates and installs a document; its version goes up by one. The
// error names the field at fault.
func (m *Map) Set(doc api.Topology) error {
	for name, n := range doc.Nodes {
		if n.Agent != "" {
			if _, err := netip.ParseAddr(n.Agent); err != nil {
				return fmt.Errorf("nodes.%s.agent: %w", name, err)
			}
		}
		for pname, p := range n.Ports {
			if _, err := strconv.ParseUint(p.IfIndex, 10, 32); err != nil {
				return fmt.Errorf("nodes.%s.ports.%s.ifindex %q: want a number in a string", name, pname, p.IfIndex)
			}
		}
	}
	for name, l := range doc.Links {
		if l.Node1 == "" || l.Node2 == "" || l.Port1 == "" || l.Port2 == "" {
			return fmt.Errorf("links.%s: want node1, port1, node2 and port2", name)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.version++
	doc.Version = m.version
	m.doc = doc
	m.cur.Store(m.build())
	return nil
}

// Doc returns the installed document, with its version.
func (m *Map) Doc() api.Topology {
	m.mu.Lock()
	defer m.mu.Unlock()
	doc := m.doc
	doc.Version = m.version
	return doc
}

// build compiles the lookups, the document first and counters for the
// rest. m.mu is held.
func (m *Map) build() *Snapshot {
	m.dirty.Store(false)
	s := &Snapshot{m: m, doc: m.doc, version: m.version, agentNode: map[netip.Addr]string{},
		hosts: make(map[netip.Addr]string, len(m.hosts)), agentOf: map[string]netip.Addr{},
		links: map[portRef]string{}, portNames: map[portRef]string{}}
	for agent, host := range m.hosts {
		s.hosts[agent] = host
		s.agentOf[host] = agent
	}
	for name, n := range m.doc.Nodes {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			s.agentNode[a] = name
		}
	}
	portIndex := map[namedPort]uint32{}
	for k, port := range m.learned {
		if node := s.NodeName(k.agent); node != "" {
			portIndex[namedPort{node, port}] = k.ifIndex
		}
	}
	for name, n := range m.doc.Nodes {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			s.agentOf[name] = a
		}
		for pname, p := range n.Ports {
			i, _ := strconv.ParseUint(p.IfIndex, 10, 32)
			portIndex[namedPort{name, pname}] = uint32(i)
		}
	}
	for np, i := range portIndex {
		if a, ok := s.agentOf[np.node]; ok {
			s.portNames[portRef{a, i}] = np.port
		}
	}
	for name, l := range m.doc.Links {
		for _, end := range []namedPort{{l.Node1, l.Port1}, {l.Node2, l.Port2}} {
			a, okA := s.agentOf[end.node]
			i, okI := portIndex[end]
			if okA && okI {
				s.links[portRef{a, i}] = name
			}
		}
	}
	return s
}

// NodeName names the node whose agent is agent: the document's name, else
// its host_descr hostname; "" when unknown.
func (s *Snapshot) NodeName(agent netip.Addr) string {
	if n, ok := s.agentNode[agent]; ok {
		return n
	}
	h, _ := s.Host(agent)
	return h
}

// Host is the agent's host_descr hostname, learned by the build or since.
func (s *Snapshot) Host(agent netip.Addr) (string, bool) {
	if h, ok := s.hosts[agent]; ok || s.m == nil || !s.m.dirty.Load() {
		return h, ok
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	h, ok := s.m.hosts[agent]
	return h, ok
}

// NodeAddress finds a node's agent address by its name: from the
// document, else from host_descr counters.
func (s *Snapshot) NodeAddress(name string) (netip.Addr, bool) {
	if n, ok := s.doc.Nodes[name]; ok {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			return a, true
		}
	}
	for a, host := range s.hosts {
		if host == name {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// Nodes lists the nodes known, by name: the document's, its links' ends
// and the hosts counters named.
func (s *Snapshot) Nodes() []api.Node {
	byName := map[string]netip.Addr{}
	for a, host := range s.hosts {
		byName[host] = a
	}
	for name, n := range s.doc.Nodes {
		a, _ := netip.ParseAddr(n.Agent)
		byName[name] = a
	}
	for _, l := range s.doc.Links {
		for _, n := range []string{l.Node1, l.Node2} {
			if _, ok := byName[n]; !ok {
				byName[n] = netip.Addr{}
			}
		}
	}
	out := make([]api.Node, 0, len(byName))
	for n, a := range byName {
		out = append(out, api.Node{Name: n, Agent: a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Link names the link on (agent, ifIndex).
func (s *Snapshot) Link(agent netip.Addr, ifIndex uint32) (string, bool) {
	name, ok := s.links[portRef{agent, ifIndex}]
	return name, ok
}

// HasLinks says whether any link is known.
func (s *Snapshot) HasLinks() bool { return len(s.links) > 0 }

// PortName names the port (agent, ifIndex): from the document, else from
// port_name counters; "" when unknown.
func (s *Snapshot) PortName(agent netip.Addr, ifIndex uint32) string {
	return s.portNames[portRef{agent, ifIndex}]
}

// PeerNode names the node at the far end of the link on (agent, port), or "".
func (s *Snapshot) PeerNode(agent netip.Addr, p decode.Port) string {
	if p.Format != decode.PortIfIndex {
		return ""
	}
	name, ok := s.links[portRef{agent, p.Value}]
	if !ok {
		return ""
	}
	l := s.doc.Links[name]
	if l.Node1 == s.NodeName(agent) {
		return l.Node2
	}
	return l.Node1
}

// PeerName is PeerNode for a hop as api.PathHop renders it: the agent's
// address and the ifIndex as text.
func (s *Snapshot) PeerName(agent, ifIndex string) string {
	a, err := netip.ParseAddr(agent)
	if err != nil {
		return ""
	}
	n, err := strconv.ParseUint(ifIndex, 10, 32)
	if err != nil {
		return ""
	}
	return s.PeerNode(a, decode.Port{Format: decode.PortIfIndex, Value: uint32(n)})
}
