// Package flows is fabrictrace's flow engine. It takes decoded samples (it
// is a decode.Visitor) and keeps sFlow-RT style flows: definitions compiled
// by package keys into plans of key extractors and filters, which it wires
// to rate tables (package tables) and thresholds (package thresholds, which
// start elephants, package elephants), and feeds an Env (its strings, RIB,
// topology, groups and maps). It keeps its data sources (sample pools for
// renormalising, interface and host counters), feeds every sample to the
// path tracker (package paths), names nodes and links from package
// topology, attributes addresses to their owners through the RIB, and
// answers in package api's shapes: top-N, flow locations, metrics, the
// flow log, collisions. It knows nothing of sockets or HTTP.
//
// Steady state allocates nothing per sample: keys are written as bytes from
// typed fields, strings are interned, and a key becomes text only when a
// query or an event needs it.
//
// With more flows than the CPU's caches hold, a sample's cost is mostly
// cache and TLB misses, so the engine takes a datagram's samples together
// (it is a decode.FlowBatcher): it hashes every key first, then loads every
// index slot, entry, elephant and path the batch will touch, so that the
// misses overlap, and only then updates them. The indexes are open-addressing
// tables that keep each hash beside its pointer, and an entry keeps what a
// sample reads in its first two cache lines.
package flows
