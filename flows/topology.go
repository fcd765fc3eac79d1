package flows

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/topology"
)

type portRef struct {
	agent   netip.Addr
	ifIndex uint32
}

// nodeCache holds node: key values by agent, made on first use, for one
// topology snapshot.
type nodeCache struct {
	snap      *topology.Snapshot
	nodes     map[netip.Addr]value
	lastAgent netip.Addr
	lastNode  value
}

// topoNow is the topology for the sample being taken, or a query: what
// counters taught is folded in at most once a second unless force.
func (e *Engine) topoNow(now float64, force bool) *topology.Snapshot {
	s := e.topo.Snapshot(now, force)
	if s != e.nodeCache.snap {
		e.nodeCache = nodeCache{snap: s, nodes: map[netip.Addr]value{}}
	}
	return s
}

// node names the node of (agent, port): the document's or host_descr's
// name for the agent, else the agent address itself.
func (e *Engine) node(agent netip.Addr) value {
	c := &e.nodeCache
	if c.lastNode.kind != missing && c.lastAgent == agent {
		return c.lastNode // a datagram's samples share an agent
	}
	if v, ok := c.nodes[agent]; ok {
		c.lastAgent, c.lastNode = agent, v
		return v
	}
	v := e.text(addrValue(agent))
	if n := c.snap.NodeName(agent); n != "" {
		v = e.strValue(n)
	}
	if len(c.nodes) < topology.MaxLearned {
		c.nodes[agent] = v
	}
	return v
}

func (e *Engine) link(agent netip.Addr, port value) value {
	if port.kind != num {
		return value{}
	}
	if name, ok := e.nodeCache.snap.Link(agent, uint32(port.n)); ok {
		return e.strValue(name)
	}
	return value{}
}

func (e *Engine) onLink(agent netip.Addr, ifIndex uint32) bool {
	_, ok := e.nodeCache.snap.Link(agent, ifIndex)
	return ok
}

// NodeName names the node whose agent address is a: from the topology
// document, else from its host_descr counters; "" when unknown.
func (e *Engine) NodeName(a netip.Addr) string {
	return e.topo.Snapshot(e.clock(), true).NodeName(a)
}

// Nodes lists the nodes the collector knows, by name.
func (e *Engine) Nodes() []api.Node {
	return e.topo.Snapshot(e.clock(), true).Nodes()
}

// NodeAddress finds a node's agent address by its name: from the topology
// document, else from host_descr counters.
func (e *Engine) NodeAddress(name string) (netip.Addr, bool) {
	return e.topo.Snapshot(e.clock(), true).NodeAddress(name)
}

// EdgeAgents sorts the agents of the given topology nodes into the edge
// (an agent with an interface, known from its counters, on no topology
// link: leaves with their servers' ports) and the core (every interface
// it reports on a link: spines), for the EDGE and CORE selectors.
func (e *Engine) EdgeAgents(nodes map[netip.Addr]bool) (edge, core map[netip.Addr]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	topo := e.topoNow(e.clock(), true)
	edge, core = map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for k, src := range e.sources {
		if !nodes[k.agent] || k.class != 0 || !src.counters.Have {
			continue
		}
		if _, onLink := topo.Link(k.agent, k.index); !onLink {
			edge[k.agent] = true
		}
	}
	for a := range nodes {
		if !edge[a] {
			core[a] = true
		}
	}
	return edge, core
}

// SetTopology installs a topology document; its version goes up by one.
func (e *Engine) SetTopology(doc api.Topology) error {
	if err := e.topo.Set(doc); err != nil {
		return fmt.Errorf("%w: topology: %w", ErrInvalid, err)
	}
	return nil
}

// Topology returns the topology document with its version.
func (e *Engine) Topology() api.Topology { return e.topo.Doc() }

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
