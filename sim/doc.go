// Package sim simulates a leaf/spine container fabric that exports real sFlow
// v5 and announces its container routes over real BGP, and records the ground
// truth of every flow it carries.
//
// It is the embedded default behind `make demo` and the reference that the
// quality tests and benchmarks score the collector against. A Sim steps in
// fixed ticks of simulated time from a seed, so the same seed and the same
// number of steps give the same datagrams byte for byte; Run paces those
// steps in real time for the demo, while tests step as fast as they like.
//
// Forwarding follows a routed fabric: a leaf spreads flows over the spines by
// a hash of the 5-tuple, and every routed hop decrements the TTL. Each switch
// (and optionally each server, as hsflowd would) samples 1 in N packets on
// ingress with a random skip, and sends flow samples with 128-byte raw
// headers and periodic counter samples. Leaves announce each container's /32
// and /128 over BGP with its server as next hop (see Speakers), withdraw it
// when the container is destroyed, and never send anywhere but the collector.
package sim
