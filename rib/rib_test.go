package rib_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/sim"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func startRIB(t *testing.T, cfg rib.Config) (*rib.RIB, netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	cfg.Listen = addr.String()
	if cfg.Accept == nil {
		cfg.Accept = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	cfg.Logger = quiet
	r, err := rib.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, addr
}

// Tests with several peers at once name them (Neighbors, or one PeerASN)
// rather than take any AS from a range: GoBGP v4.8.0 races when a peer of
// any AS goes down while another's routes move (handleFSMMessage publishes
// a pointer to a local copy of the peer's config, then overwrites it). The
// collector runs with that race; the tests must not.

// leafPeers are the simulator's leaves as configured neighbours.
func leafPeers(s *sim.Sim) []rib.Neighbor {
	var out []rib.Neighbor
	for _, leaf := range s.Fabric().Leaves {
		out = append(out, rib.Neighbor{Address: leaf.BGPSource, ASN: leaf.ASN})
	}
	return out
}

// waitFor waits, woken by each published batch, until ok holds.
func waitFor(t *testing.T, r *rib.RIB, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		next := r.Published()
		if ok() {
			return
		}
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; neighbours %+v, %d prefixes", what, r.Neighbors(), r.Len())
		}
	}
}

func speaker(t *testing.T, asn uint32, source string, collector netip.AddrPort) *sim.Speaker {
	t.Helper()
	src := netip.MustParseAddr(source)
	sp, err := sim.NewSpeaker(t.Context(), asn, src, src, collector, 65000, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Stop)
	return sp
}

// The simulator's leaves announce every container's /32 and /128 with its
// server as next hop; a lookup names the server, the leaf and its AS.
func TestLearnsContainerRoutesFromTheFabric(t *testing.T) {
	s, err := sim.New(sim.Config{Seed: 1, Mice: -1, ChurnEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r, addr := startRIB(t, rib.Config{Accept: []netip.Prefix{}, Neighbors: leafPeers(s)})
	sp, err := sim.StartSpeakers(t.Context(), s, addr, 65000, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	waitFor(t, r, "24 container routes", func() bool { return r.Len() == 24 })
	for _, c := range s.Containers() {
		for _, a := range []netip.Addr{c.Addr, c.Addr6} {
			e := r.Lookup(a)
			if e == nil {
				t.Fatalf("no route to %s", a)
			}
			best := e.Best()
			wantHop := c.Server.Agent
			if a.Is6() {
				wantHop = c.Server.Agent6
			}
			if best.NextHop != wantHop || best.Peer != c.Server.Leaf.BGPSource ||
				len(best.ASPath) != 1 || best.ASPath[0] != c.Server.Leaf.ASN || e.Prefix.Bits() != a.BitLen() {
				t.Errorf("%s: %+v; want next hop %s from %s AS %d", a, best, wantHop, c.Server.Leaf.BGPSource, c.Server.Leaf.ASN)
			}
			if len(best.Communities) != 1 || best.Communities[0] != c.Server.Leaf.ASN<<16|sim.ContainerCommunity {
				t.Errorf("%s communities %v", a, best.Communities)
			}
		}
	}
	if r.Lookup(netip.MustParseAddr("172.16.1.99")) != nil {
		t.Error("a lookup of an unannounced address found a route")
	}

	// Churn: the destroyed container's routes go, the new one's arrive.
	var changes []sim.RouteChange
	s.OnRouteChange(func(rc sim.RouteChange) { changes = append(changes, rc) })
	s.RunFor(time.Second+100*time.Millisecond, func([]byte) {})
	gone, born := changes[0].Container, changes[1].Container
	waitFor(t, r, "churn", func() bool {
		return r.Lookup(gone.Addr) == nil && r.Lookup(gone.Addr6) == nil &&
			r.Lookup(born.Addr) != nil && r.Lookup(born.Addr).Best().NextHop == born.Server.Agent
	})

	// Each leaf's session goes down: exactly its routes go with it. One at
	// a time (GoBGP v4.8.0 races when two of its peers go down at once).
	sp.Each(func(leaf *sim.Node, speaker *sim.Speaker) {
		speaker.Stop()
		waitFor(t, r, leaf.Name+"'s routes gone", func() bool {
			for _, n := range r.Neighbors() {
				if n.Address == leaf.BGPSource {
					return n.State != "established" && n.Accepted == 0
				}
			}
			return false
		})
	})
	sp.Stop()
	waitFor(t, r, "every route gone", func() bool { return r.Len() == 0 })
	for _, n := range r.Neighbors() {
		if n.State == "established" || n.Accepted != 0 {
			t.Errorf("after the speakers stopped: %+v", n)
		}
	}
}

// Two peers announce one prefix: both are kept, the shorter AS path wins,
// and when the winner goes the other takes over.
func TestTwoPeersOnePrefix(t *testing.T) {
	r, addr := startRIB(t, rib.Config{Accept: []netip.Prefix{}, Neighbors: []rib.Neighbor{
		{Address: netip.MustParseAddr("127.0.2.1"), ASN: 65001}, {Address: netip.MustParseAddr("127.0.2.2"), ASN: 65002}}})
	a := speaker(t, 65001, "127.0.2.1", addr)
	b := speaker(t, 65002, "127.0.2.2", addr)
	p := netip.MustParsePrefix("172.16.9.9/32")
	ctx := context.Background()
	if err := a.Announce(ctx, p, netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, p, netip.MustParseAddr("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "both candidates", func() bool { e := r.Lookup(p.Addr()); return e != nil && len(e.Routes) == 2 })
	e := r.Lookup(p.Addr())
	// Equal AS paths: the earlier learned wins, so either may; what matters
	// is that the other is the fallback.
	first := e.Best().Peer
	loser := e.Routes[1].Peer
	if first == loser {
		t.Fatalf("one peer twice: %+v", e.Routes)
	}
	winner := map[netip.Addr]*sim.Speaker{netip.MustParseAddr("127.0.2.1"): a, netip.MustParseAddr("127.0.2.2"): b}[first]
	winner.Stop()
	waitFor(t, r, "the other peer taking over", func() bool {
		e := r.Lookup(p.Addr())
		return e != nil && len(e.Routes) == 1 && e.Best().Peer == loser
	})
}

func TestKeepsHostRoutesUnlessAskedForAll(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("all=", all), func(t *testing.T) {
			r, addr := startRIB(t, rib.Config{AllPrefixes: all})
			sp := speaker(t, 65001, "127.0.3.1", addr)
			ctx := context.Background()
			for _, p := range []string{"10.9.0.0/16", "10.9.1.7/32"} {
				if err := sp.Announce(ctx, netip.MustParsePrefix(p), netip.MustParseAddr("10.0.0.1")); err != nil {
					t.Fatal(err)
				}
			}
			// Received counts what the watch saw; the table applies it in a
			// batch after: wait for what is read below, the host route (and
			// the /16 when it is kept). One never kept cannot be waited for.
			waitFor(t, r, "both prefixes received and applied", func() bool {
				n := r.Neighbors()
				return len(n) == 1 && n[0].Received == 2 && r.Lookup(netip.MustParseAddr("10.9.1.7")) != nil &&
					(!all || r.Lookup(netip.MustParseAddr("10.9.2.2")) != nil)
			})
			covered := r.Lookup(netip.MustParseAddr("10.9.2.2"))
			host := r.Lookup(netip.MustParseAddr("10.9.1.7"))
			if host == nil || host.Prefix.Bits() != 32 {
				t.Fatalf("host route: %+v", host)
			}
			if all != (covered != nil) {
				t.Errorf("AllPrefixes %v: lookup inside the /16 gave %+v", all, covered)
			}
			if n := r.Neighbors()[0]; all && n.Ignored != 0 || !all && n.Ignored != 1 {
				t.Errorf("ignored %d", n.Ignored)
			}
		})
	}
}

func TestPrivilegedPortSaysUseAHighPort(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may bind port 179")
	}
	_, err := rib.Start(t.Context(), rib.Config{Listen: "127.0.0.1:179", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "use a high port") {
		t.Fatalf("err %v", err)
	}
}

// A neighbour configured by address, with no accept range, is taken.
func TestExplicitNeighbor(t *testing.T) {
	r, addr := startRIB(t, rib.Config{Accept: []netip.Prefix{},
		Neighbors: []rib.Neighbor{{Address: netip.MustParseAddr("127.0.6.1"), ASN: 65401}}})
	sp := speaker(t, 65401, "127.0.6.1", addr)
	if err := sp.Announce(context.Background(), netip.MustParsePrefix("172.16.7.1/32"), netip.MustParseAddr("10.0.0.7")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "the neighbour's route", func() bool { return r.Lookup(netip.MustParseAddr("172.16.7.1")) != nil })
	if n := r.Neighbors(); len(n) != 1 || n[0].ASN != 65401 || n[0].State != "established" {
		t.Errorf("neighbours %+v", n)
	}
}
