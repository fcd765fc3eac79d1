package flows

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Topology is sFlow-RT's topology document: nodes (optional: host_descr and
// port_name counters fill them in) and links between node ports.
type Topology struct {
	Nodes   map[string]TopologyNode `json:"nodes,omitempty"`
	Links   map[string]TopologyLink `json:"links,omitempty"`
	Version int64                   `json:"version"`
}

// TopologyNode is a switch or host and its ports.
type TopologyNode struct {
	Agent string                  `json:"agent,omitempty"`
	Ports map[string]TopologyPort `json:"ports,omitempty"`
	Tags  map[string]any          `json:"tags,omitempty"`
}

// TopologyPort is a port; ifindex is a string, as sFlow-RT has it.
type TopologyPort struct {
	IfIndex string         `json:"ifindex"`
	Tags    map[string]any `json:"tags,omitempty"`
}

// TopologyLink joins two node ports.
type TopologyLink struct {
	Node1 string         `json:"node1"`
	Port1 string         `json:"port1"`
	Node2 string         `json:"node2"`
	Port2 string         `json:"port2"`
	Tags  map[string]any `json:"tags,omitempty"`
}

type portRef struct {
	agent   netip.Addr
	ifIndex uint32
}

type namedPort struct {
	node, port string
}

// topology is the compiled document plus what counters taught.
type topology struct {
	doc       Topology
	agentNode map[netip.Addr]string // from the document, else host_descr
	hosts     map[netip.Addr]string // host_descr hostnames
	portIndex map[namedPort]uint32  // from the document, else port_name (derived)
	learned   map[portRef]string    // port_name counters, by agent and ifIndex
	links     map[portRef]string    // link name of each linked port
	portNames map[portRef]string    // port name of each known port
	nodes     map[netip.Addr]value  // node: values by agent, made on first use
	lastAgent netip.Addr
	lastNode  value
	version   int64
	// What counters teach is folded in by rebuild at most once a second
	// (refresh), so a fabric of thousands of ports costs a few rebuilds, not
	// one per port.
	dirty   bool
	builtAt float64
}

// refresh rebuilds what counters changed, unless it did less than a second
// ago (force skips the wait).
func (t *topology) refresh(now float64, force bool) {
	if t.dirty && (force || now-t.builtAt >= 1) {
		t.rebuild()
		t.builtAt = now
	}
}

func (t *topology) init() {
	t.agentNode = map[netip.Addr]string{}
	t.hosts = map[netip.Addr]string{}
	t.portIndex = map[namedPort]uint32{}
	t.learned = map[portRef]string{}
	t.links = map[portRef]string{}
	t.nodes = map[netip.Addr]value{}
	t.portNames = map[portRef]string{}
}

// maxLearned caps what counters can teach the topology, per map.
const maxLearned = 100_000

func (t *topology) learnHost(agent netip.Addr, hostname string) {
	if t.hosts[agent] == hostname || len(t.hosts) >= maxLearned {
		return
	}
	t.hosts[agent] = hostname
	t.dirty = true
}

// learnPort keeps a port_name by agent and ifIndex: the agent's name may
// come later, in its host_descr, and rebuild joins the two.
func (t *topology) learnPort(agent netip.Addr, name string, ifIndex uint32) {
	k := portRef{agent, ifIndex}
	if t.learned[k] == name || len(t.learned) >= maxLearned {
		return
	}
	t.learned[k] = name
	t.dirty = true
}

func (t *topology) nodeName(agent netip.Addr) string {
	if n, ok := t.agentNode[agent]; ok {
		return n
	}
	return t.hosts[agent]
}

// set validates and installs a document.
func (t *topology) set(doc Topology) error {
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
	t.version++
	doc.Version = t.version
	t.doc = doc
	t.rebuild()
	return nil
}

// rebuild derives the lookup maps: the document first, counters for the rest.
func (t *topology) rebuild() {
	t.dirty = false
	t.agentNode = map[netip.Addr]string{}
	t.portIndex = map[namedPort]uint32{}
	agentOf := map[string]netip.Addr{}
	for agent, host := range t.hosts {
		agentOf[host] = agent
	}
	for name, n := range t.doc.Nodes {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			t.agentNode[a] = name
		}
	}
	for k, port := range t.learned {
		if node := t.nodeName(k.agent); node != "" {
			t.portIndex[namedPort{node, port}] = k.ifIndex
		}
	}
	for name, n := range t.doc.Nodes {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			t.agentNode[a] = name
			agentOf[name] = a
		}
		for pname, p := range n.Ports {
			i, _ := strconv.ParseUint(p.IfIndex, 10, 32)
			t.portIndex[namedPort{name, pname}] = uint32(i)
		}
	}
	t.links = map[portRef]string{}
	t.nodes = map[netip.Addr]value{}
	t.lastNode = value{}
	t.portNames = map[portRef]string{}
	for np, i := range t.portIndex {
		if a, ok := agentOf[np.node]; ok {
			t.portNames[portRef{a, i}] = np.port
		}
	}
	for name, l := range t.doc.Links {
		for _, end := range []namedPort{{l.Node1, l.Port1}, {l.Node2, l.Port2}} {
			a, okA := agentOf[end.node]
			i, okI := t.portIndex[end]
			if okA && okI {
				t.links[portRef{a, i}] = name
			}
		}
	}
}

// node names the node of (agent, port): the document's or host_descr's
// name for the agent, else the agent address itself.
func (t *topology) node(e *Engine, agent netip.Addr, port value) value {
	if t.lastNode.kind != missing && t.lastAgent == agent {
		return t.lastNode // a datagram's samples share an agent
	}
	if v, ok := t.nodes[agent]; ok {
		t.lastAgent, t.lastNode = agent, v
		return v
	}
	v := e.text(addrValue(agent))
	if n := t.nodeName(agent); n != "" {
		v = e.strValue(n)
	}
	if len(t.nodes) < maxLearned {
		t.nodes[agent] = v
	}
	return v
}

func (t *topology) link(e *Engine, agent netip.Addr, port value) value {
	if port.kind != num {
		return value{}
	}
	if name, ok := t.links[portRef{agent, uint32(port.n)}]; ok {
		return e.strValue(name)
	}
	return value{}
}

// peerNode names the node at the far end of the link on (agent, port), or "".
func (t *topology) peerNode(agent netip.Addr, p decode.Port) string {
	if p.Format != decode.PortIfIndex {
		return ""
	}
	name, ok := t.links[portRef{agent, p.Value}]
	if !ok {
		return ""
	}
	l := t.doc.Links[name]
	if l.Node1 == t.nodeName(agent) {
		return l.Node2
	}
	return l.Node1
}

// peerName is peerNode for a hop as PathHop renders it: the agent's
// address and the ifIndex as text.
func (t *topology) peerName(agent, ifIndex string) string {
	a, err := netip.ParseAddr(agent)
	if err != nil {
		return ""
	}
	n, err := strconv.ParseUint(ifIndex, 10, 32)
	if err != nil {
		return ""
	}
	return t.peerNode(a, decode.Port{Format: decode.PortIfIndex, Value: uint32(n)})
}

func (t *topology) portName(agent netip.Addr, ifIndex uint32) string {
	return t.portNames[portRef{agent, ifIndex}]
}

func (t *topology) onLink(agent netip.Addr, ifIndex uint32) bool {
	_, ok := t.links[portRef{agent, ifIndex}]
	return ok
}

// NodeName names the node whose agent address is a: from the topology
// document, else from its host_descr counters; "" when unknown.
func (e *Engine) NodeName(a netip.Addr) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topo.refresh(e.clock(), true)
	return e.topo.nodeName(a)
}

// Node is a node the collector knows: named by the topology document or by
// its agent's host_descr.
type Node struct {
	Name  string     `json:"name"`
	Agent netip.Addr `json:"agent,omitzero"`
}

// Nodes lists the nodes the collector knows, by name.
func (e *Engine) Nodes() []Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topo.refresh(e.clock(), true)
	byName := map[string]netip.Addr{}
	for a, host := range e.topo.hosts {
		byName[host] = a
	}
	for name, n := range e.topo.doc.Nodes {
		a, _ := netip.ParseAddr(n.Agent)
		byName[name] = a
	}
	for _, l := range e.topo.doc.Links {
		for _, n := range []string{l.Node1, l.Node2} {
			if _, ok := byName[n]; !ok {
				byName[n] = netip.Addr{}
			}
		}
	}
	out := make([]Node, 0, len(byName))
	for n, a := range byName {
		out = append(out, Node{Name: n, Agent: a})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NodeAddress finds a node's agent address by its name: from the topology
// document, else from host_descr counters.
func (e *Engine) NodeAddress(name string) (netip.Addr, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n, ok := e.topo.doc.Nodes[name]; ok {
		if a, err := netip.ParseAddr(n.Agent); err == nil {
			return a, true
		}
	}
	for a, host := range e.topo.hosts {
		if host == name {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// SetTopology installs a topology document; its version goes up by one.
func (e *Engine) SetTopology(doc Topology) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.topo.set(doc); err != nil {
		return fmt.Errorf("%w: topology: %w", ErrInvalid, err)
	}
	return nil
}

// Topology returns the topology document with its version.
func (e *Engine) Topology() Topology {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.topo.refresh(e.clock(), true)
	doc := e.topo.doc
	doc.Version = e.topo.version
	return doc
}

// groups are sFlow-RT's address groups: group name -> label -> CIDRs.
type groups struct {
	byName map[string][]labelled // longest prefix first
	doc    map[string]map[string][]string
}

type labelled struct {
	prefix netip.Prefix
	label  string
}

func (g *groups) init() {
	g.byName = map[string][]labelled{}
	g.doc = map[string]map[string][]string{}
}

func (g *groups) lookup(name string, a netip.Addr) (string, bool) {
	for _, l := range g.byName[name] {
		if l.prefix.Contains(a) {
			return l.label, true
		}
	}
	return "", false
}

// SetGroup installs an address group: {"label":["10.0.0.0/8",...],...}.
func (e *Engine) SetGroup(name string, body []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	var doc map[string][]string
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%w: group: want {\"label\":[\"CIDR\",...]}: %w", ErrInvalid, err)
	}
	var list []labelled
	for label, cidrs := range doc {
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				a, aerr := netip.ParseAddr(c)
				if aerr != nil {
					return fmt.Errorf("%w: group %s label %s: %w", ErrInvalid, name, label, err)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			list = append(list, labelled{p.Masked(), label})
		}
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].prefix.Bits() > list[j].prefix.Bits() })
	e.mu.Lock()
	defer e.mu.Unlock()
	e.groups.byName[name] = list
	e.groups.doc[name] = doc
	return nil
}

// Group returns one address group's document.
func (e *Engine) Group(name string) (map[string][]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	doc, ok := e.groups.doc[name]
	if !ok {
		return nil, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return doc, nil
}

// DeleteGroup removes an address group; group: keys on it go missing.
func (e *Engine) DeleteGroup(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.groups.doc[name]; !ok {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	delete(e.groups.doc, name)
	delete(e.groups.byName, name)
	return nil
}

// Groups returns every address group.
func (e *Engine) Groups() map[string]map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]map[string][]string, len(e.groups.doc))
	for k, v := range e.groups.doc {
		out[k] = v
	}
	return out
}
