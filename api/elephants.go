package api

import (
	"net/netip"
)

// Elephant is an elephant's life, from the first sample of the flow to the
// last, as /elephants/json serves it. One elephant seen at several switches
// (its key differing only in location fields such as node or ipttl) is one
// record, with every location listed.
type Elephant struct {
	UpdateID   int64 `json:"updateID"` // grows with every change, for long polls
	ElephantID int64 `json:"elephantID"`
	// Update says what changed, in the update log: start, location (seen
	// at one more place), gone (its destination's route was withdrawn),
	// ownerback (announced again), owner (its owner's leaf or host named,
	// once the topology knew them), end.
	Update      string     `json:"update,omitempty"`
	ThresholdID string     `json:"thresholdID"`
	Metric      string     `json:"metric"`
	FlowKey     string     `json:"flowKey"`      // the flow's key without location fields
	Src         netip.Addr `json:"src,omitzero"` // when the flow's keys hold them
	Dst         netip.Addr `json:"dst,omitzero"`
	Active      bool       `json:"active"`
	Start       int64      `json:"start"`         // ms since the epoch: the flow's first sample
	End         int64      `json:"end,omitempty"` // its last sample, once it has cleared
	Duration    float64    `json:"duration"`      // seconds: its age while active, its life once ended
	Rate        float64    `json:"rate"`          // now, in the flow's value units per second: merged over its hops with a confidence, else at its busiest location
	// With a threshold's confidence: the interval of the merged rate, and
	// the samples (decayed, over every hop) behind it.
	RateLow   float64    `json:"rateLow,omitempty"`
	RateHigh  float64    `json:"rateHigh,omitempty"`
	Samples   float64    `json:"samples,omitempty"`
	Detected  int64      `json:"detected"`        // ms since the epoch: when it was declared an elephant
	Peak      float64    `json:"peak"`            // highest rate, in the flow's value units per second
	Total     float64    `json:"total"`           // in value units, over the life so far
	Bytes     float64    `json:"bytes"`           // frame bytes, over the life so far
	Threshold float64    `json:"threshold"`       // the threshold it crossed
	Locations []Location `json:"locations"`       // where it was seen over the threshold
	Owner     *Owner     `json:"owner,omitempty"` // where its destination lives, from the RIB
	// Path is the largest path its addresses' 5-tuples take, when the flow's
	// keys hold both addresses.
	Path []PathHop `json:"path,omitempty"`
}

// Owner is where an address lives: its route, and the topology's names for
// the leaf (or host) that announced it and the host its next hop is.
type Owner struct {
	Address     netip.Addr   `json:"address"`
	Prefix      netip.Prefix `json:"prefix"`
	NextHop     netip.Addr   `json:"nexthop"`
	Peer        netip.Addr   `json:"peer"`
	AnnouncedBy string       `json:"announcedBy,omitempty"`
	Host        string       `json:"host,omitempty"`
	Gone        int64        `json:"gone,omitempty"` // ms since the epoch: when its route was withdrawn
	// Was is the route it had before it was withdrawn, when known.
	Was *Owner `json:"was,omitempty"`
}

// Location is one place an elephant was seen.
type Location struct {
	Agent      string `json:"agent"`
	DataSource string `json:"dataSource"`
	FlowKey    string `json:"flowKey"`
}

// Estimate is a rate estimate with its interval, from the samples behind it.
type Estimate struct {
	Rate     float64 `json:"rate"`
	RateLow  float64 `json:"rateLow"`
	RateHigh float64 `json:"rateHigh"`
	Samples  float64 `json:"samples"` // decayed, merged over hops
}
