// Package keys compiles sFlow-RT flow definitions and reads their keys from
// samples. A definition (keys, value, filter...) compiles once into a Plan:
// one Extractor per key (the base keys of headers and records, and key
// functions such as node:, group:, map:, asn: and the bgp* keys), a Filter,
// and what a sample counts. An Extractor reads a Sample into a Value: 24
// bytes of number, address, MAC, prefix or interned string, which a flow
// key holds in binary (AppendKey) and renders as sFlow-RT does (AppendText).
//
// What key functions read besides the sample (the string table, the RIB,
// the GeoIP database, the topology, the groups and maps) is an Env, which
// the engine owns and fills; keys imports neither the engine nor its
// tables. Extraction allocates nothing once a string has been interned.
//
// Seen records which headers and records samples carried lately: the keys
// /flowkeys/json lists.
package keys
