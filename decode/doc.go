// Package decode walks sFlow v5 datagrams in place, without allocating, and
// hands each sample to a Visitor through structs that the Decoder reuses.
//
// It decodes the datagram header (IPv4 or IPv6 agent), flow samples (0:1),
// counter samples (0:2), expanded flow and counter samples (0:3, 0:4) and
// discarded-packet events (0:5). Flow records: raw packet header (1), sampled
// Ethernet (2), sampled IPv4 (3) and IPv6 (4), extended switch (1001), router
// (1002) and gateway (1003). Counter records: generic interface (1), Ethernet
// (2), processor (1001), port name (1005) and host description (2000).
// Anything else is skipped by its length and counted, never guessed at.
//
// Raw packet headers are parsed in place by ParsePacket: Ethernet with 802.1Q
// and QinQ, IPv4 with options, IPv6 with extension headers, TCP, UDP, ICMP,
// ICMPv6, and the inner frame of VXLAN.
//
// Every length and count is checked against the bytes that remain before it is
// used, so hostile input can cost neither memory nor loops. A fault ends the
// sample it is in; samples before it, and samples after it whose framing is
// intact, are still delivered, and Decode reports the first fault as an *Error
// that names the structure and offset.
//
// Slices in the structs handed to a Visitor (raw header bytes, names, AS paths)
// alias the datagram buffer and are valid only during the callback. A
// Visitor that is also a FlowBatcher gets a datagram's flow samples together,
// after they are decoded, which lets it overlap their memory loads.
package decode
