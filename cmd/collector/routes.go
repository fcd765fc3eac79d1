package main

import (
	"context"
	"log/slog"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/cluster"
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
	return bestRoute(e), true
}

// bestRoute is an entry's best route, as the flow keys read it.
func bestRoute(e *rib.Entry) keys.Route {
	best := e.Routes[0]
	return keys.Route{Prefix: e.Prefix, NextHop: best.NextHop, Peer: best.Peer, PeerID: best.RouterID, ASPath: best.ASPath,
		Communities: best.Communities}
}

// shareRoutes keeps the cluster's routes bucket the RIB's best routes, on
// an api node: after each batch of updates the RIB publishes, what changed
// (every entry is compared: a cost that grows with the RIB).
func shareRoutes(ctx context.Context, r *rib.RIB, bucket *cluster.Routes, logger *slog.Logger) error {
	last := map[netip.Prefix]keys.Route{}
	for {
		next := r.Published()
		entries, _ := r.Entries(nil, 0, 0)
		now := make(map[netip.Prefix]keys.Route, len(entries))
		for _, e := range entries {
			now[e.Prefix] = bestRoute(e)
		}
		if err := bucket.Share(ctx, now, last); err != nil && ctx.Err() == nil {
			logger.Warn("routes not shared with the engines; trying again at the next update", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
		}
	}
}
