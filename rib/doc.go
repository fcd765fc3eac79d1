// Package rib is fabrictrace's passive BGP peer: an embedded GoBGP speaker
// that accepts sessions from leaves and hosts, learns the container /32s and
// /128s they announce, never announces anything, and answers longest-prefix
// lookups (owner, next hop, AS path, peer) for the flow engine.
//
// Routes are read from each peer's Adj-RIB-In as GoBGP receives them (its
// own global table is kept empty by an import policy that rejects all) and
// applied in batches to a persistent hash trie: lookups read the current
// snapshot without a lock, and a batch copies only the nodes it changes.
package rib
