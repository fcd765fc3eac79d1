package cluster_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/keys"
)

// The routes an api node's BGP peer learned reach an engine node's table
// through the bucket: longest match, IPv4 and IPv6, changes and
// withdrawals (told to the engine), lookups without allocating.
func TestRoutesReachEngines(t *testing.T) {
	connect := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api, err := cluster.OpenRoutes(ctx, connect())
	if err != nil {
		t.Fatal(err)
	}
	route := func(p, nh, peer string) keys.Route {
		return keys.Route{Prefix: netip.MustParsePrefix(p), NextHop: netip.MustParseAddr(nh), Peer: netip.MustParseAddr(peer),
			PeerID: netip.MustParseAddr(peer), ASPath: []uint32{65001}}
	}
	rib := map[netip.Prefix]keys.Route{}
	for _, r := range []keys.Route{
		route("172.16.1.11/32", "10.0.0.1", "10.255.1.1"),
		route("172.16.1.0/24", "10.255.1.4", "10.255.1.4"),
		route("fd00:172:16:1::1:1/128", "fd00::1", "10.255.1.1"),
	} {
		rib[r.Prefix] = r
	}
	shared := map[netip.Prefix]keys.Route{}
	if err := api.Share(ctx, rib, shared); err != nil {
		t.Fatal(err)
	}

	eng, err := cluster.OpenRoutes(ctx, connect())
	if err != nil {
		t.Fatal(err)
	}
	table := cluster.NewRouteTable()
	gone := make(chan netip.Prefix, 10)
	ready := make(chan struct{})
	go eng.Watch(ctx, table, 20*time.Millisecond, func(p netip.Prefix) { gone <- p }, func() { close(ready) })
	<-ready
	lookup := func(a string) string {
		rt, ok := table.RouteOf(netip.MustParseAddr(a))
		if !ok {
			return "none"
		}
		return rt.Prefix.String() + " via " + rt.NextHop.String()
	}
	for a, want := range map[string]string{
		"172.16.1.11":        "172.16.1.11/32 via 10.0.0.1",
		"172.16.1.12":        "172.16.1.0/24 via 10.255.1.4",
		"172.16.2.1":         "none",
		"fd00:172:16:1::1:1": "fd00:172:16:1::1:1/128 via fd00::1",
		"fd00:172:16:1::1:2": "none",
	} {
		if got := lookup(a); got != want {
			t.Errorf("%s: %s, want %s", a, got, want)
		}
	}
	a := netip.MustParseAddr("172.16.1.11")
	if n := testing.AllocsPerRun(100, func() { table.RouteOf(a) }); n != 0 {
		t.Errorf("RouteOf allocates %.0f", n)
	}

	// The container moves: withdrawn, then announced by another leaf.
	delete(rib, netip.MustParsePrefix("172.16.1.11/32"))
	if err := api.Share(ctx, rib, shared); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-gone:
		if p.String() != "172.16.1.11/32" {
			t.Errorf("withdrawn %s", p)
		}
	case <-ctx.Done():
		t.Fatal("no withdrawal told")
	}
	if got := lookup("172.16.1.11"); got != "172.16.1.0/24 via 10.255.1.4" {
		t.Errorf("after the withdrawal: %s", got)
	}
	moved := route("172.16.1.11/32", "10.0.0.2", "10.255.1.2")
	rib[moved.Prefix] = moved
	if err := api.Share(ctx, rib, shared); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the move", func() bool { return lookup("172.16.1.11") == "172.16.1.11/32 via 10.0.0.2" })
	if table.Len() != 3 || len(shared) != 3 {
		t.Errorf("%d routes in the table, %d shared, want 3", table.Len(), len(shared))
	}
}
