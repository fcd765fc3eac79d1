package api

import (
	"net/netip"
)

// Paths is the answer for a src/dst pair: every path, biggest first, and
// where each end lives.
type Paths struct {
	Src   netip.Addr `json:"src"`
	Dst   netip.Addr `json:"dst"`
	Paths []Path     `json:"paths"`
	// ECMP: for each TTL where the paths part, the nodes and their shares.
	Split  []Split `json:"split,omitempty"`
	SrcEnd *Owner  `json:"srcOwner,omitempty"`
	DstEnd *Owner  `json:"dstOwner,omitempty"`
	// Elephants are the pair's live elephants: their rate now, with its
	// interval when their threshold has a confidence.
	Elephants []PairElephant `json:"elephants,omitempty"`
	// History (with PathQuery.History): every path each 5-tuple took, with
	// when, oldest first.
	History []PathEpoch `json:"history,omitempty"`
}

// Path is one path a pair's traffic takes, with the 5-tuples on it.
type Path struct {
	Hops  []PathHop  `json:"hops"`
	Flows []PathFlow `json:"flows"`
	Bytes float64    `json:"bytes"` // the flows' bytes on it, each estimated once
	Share float64    `json:"share"` // of the pair's bytes
	// Complete: from the pair's first TTL to its destination with no hop
	// unaccounted for, and every hop live.
	Complete bool `json:"complete"`
}

// PathHop is one hop of a path.
type PathHop struct {
	TTL        uint8   `json:"ttl"`
	Node       string  `json:"node"`
	Agent      string  `json:"agent,omitempty"`
	In         string  `json:"in,omitempty"`
	Out        string  `json:"out,omitempty"`
	InIfIndex  string  `json:"inIfIndex,omitempty"`
	OutIfIndex string  `json:"outIfIndex,omitempty"`
	Samples    uint32  `json:"samples"`
	Bytes      float64 `json:"bytes"`
	// How the hop is known: "sampled"; "inferred" (not sampled, but a
	// topology link says which node must sit there); "missing" (not sampled
	// and not inferable); "l2" (a second node at one TTL: bridged, or a
	// conflict); "attributed" (the destination's host, from its BGP next
	// hop, when it exports no sFlow).
	Kind string `json:"kind"`
}

// PathFlow is one 5-tuple that took a path.
type PathFlow struct {
	Proto     uint8   `json:"proto"`
	SrcPort   uint16  `json:"srcPort"`
	DstPort   uint16  `json:"dstPort"`
	Bytes     float64 `json:"bytes"`     // on this path
	Total     float64 `json:"total"`     // over its life, earlier paths included
	LastSeen  int64   `json:"lastSeen"`  // ms ago
	FirstSeen int64   `json:"firstSeen"` // its first sample's arrival, ms since the epoch
}

// PairElephant is an elephant of a pair, as /paths/json reports it.
type PairElephant struct {
	ElephantID  int64   `json:"elephantID"`
	ThresholdID string  `json:"thresholdID"`
	Threshold   float64 `json:"threshold"`
	Value       string  `json:"value"` // what the rates count: the flow's value (bytes, bps, frames, fps)
	Estimate
}

// PathEpoch is a path one 5-tuple took from one time to another.
type PathEpoch struct {
	Proto   uint8     `json:"proto"`
	SrcPort uint16    `json:"srcPort"`
	DstPort uint16    `json:"dstPort"`
	From    int64     `json:"from"`         // ms since the epoch
	To      int64     `json:"to,omitempty"` // absent while it is the path now
	Hops    []PathHop `json:"hops"`
}

// Split is where a pair's paths part: the nodes at one TTL and their shares.
type Split struct {
	TTL    uint8              `json:"ttl"`
	Shares map[string]float64 `json:"shares"`
	// Skewed is set when one node carries most (over 80 %) of the pair.
	Skewed bool `json:"skewed"`
}

// PathQuery selects a pair's 5-tuples (/paths/json's query): zero fields
// match any.
type PathQuery struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	History          bool // add every path each 5-tuple took
}
