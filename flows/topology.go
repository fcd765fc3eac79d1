package flows

import (
	"fmt"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/topology"
)

type portRef struct {
	agent   netip.Addr
	ifIndex uint32
}

// nodeCache holds node: key values by agent, made on first use, for one
// topology snapshot: it is the engine's keys.Places.
type nodeCache struct {
	snap      *topology.Snapshot
	env       *keys.Env
	nodes     map[netip.Addr]keys.Value
	lastAgent netip.Addr
	lastNode  keys.Value
}

// topoNow is the topology for the sample being taken, or a query: what
// counters taught is folded in at most once a second unless force.
func (e *Engine) topoNow(now float64, force bool) *topology.Snapshot {
	s := e.topo.Snapshot(now, force)
	if s != e.nodeCache.snap {
		e.nodeCache = nodeCache{snap: s, env: &e.env, nodes: map[netip.Addr]keys.Value{}}
	}
	return s
}

// Node names the node of (agent, port): the document's or host_descr's
// name for the agent, else the agent address itself.
func (c *nodeCache) Node(agent netip.Addr) keys.Value {
	if c.lastNode.Kind != keys.Missing && c.lastAgent == agent {
		return c.lastNode // a datagram's samples share an agent
	}
	if v, ok := c.nodes[agent]; ok {
		c.lastAgent, c.lastNode = agent, v
		return v
	}
	v := c.env.Text(keys.AddrValue(agent))
	if n := c.snap.NodeName(agent); n != "" {
		v = c.env.StrValue(n)
	}
	if len(c.nodes) < topology.MaxLearned {
		c.nodes[agent] = v
	}
	return v
}

// Link names the topology link (agent, port) is on; missing for a port on
// no declared link.
func (c *nodeCache) Link(agent netip.Addr, port keys.Value) keys.Value {
	if port.Kind != keys.Num {
		return keys.Value{}
	}
	if name, ok := c.snap.Link(agent, uint32(port.N)); ok {
		return c.env.StrValue(name)
	}
	return keys.Value{}
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
