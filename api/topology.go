package api

import (
	"net/netip"
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

// Node is a node the collector knows: named by the topology document or by
// its agent's host_descr.
type Node struct {
	Name  string     `json:"name"`
	Agent netip.Addr `json:"agent,omitzero"`
}
