package main

import (
	"net/netip"

	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/rib"
)

// ribRoutes lets the flow engine's bgp* keys read the RIB. The two packages
// stay apart: the collector joins them here.
type ribRoutes struct{ rib *rib.RIB }

func (r ribRoutes) RouteOf(a netip.Addr) (keys.Route, bool) {
	e := r.rib.Lookup(a)
	if e == nil {
		return keys.Route{}, false
	}
	best := e.Routes[0]
	return keys.Route{Prefix: e.Prefix, NextHop: best.NextHop, Peer: best.Peer, PeerID: best.RouterID, ASPath: best.ASPath,
		Communities: best.Communities}, true
}
