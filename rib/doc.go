// Package rib is fabrictrace's passive BGP peer: an embedded GoBGP speaker
// that accepts sessions from leaves and hosts, learns the container /32s and
// /128s they announce, never announces anything, and answers longest-prefix
// lookups (owner, next hop, AS path, peer) for the flow engine.
//
// It arrives with the RIB issue.
package rib
