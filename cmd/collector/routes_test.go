package main

import (
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// A flow keyed ipdestination,bgpdestinationpeer names, for every container
// the simulator sends to, the leaf that announced it; the other bgp keys
// name its server, its leaf's AS and its community; asn: its origin AS.
func TestBGPKeysNameTheOwner(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	routes, err := rib.Start(t.Context(), rib.Config{Listen: addr.String(), Logger: quiet,
		Accept: []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	defer routes.Close()
	s, err := sim.New(sim.Config{Seed: 8, Mice: 200, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sim.StartSpeakers(t.Context(), s, addr, 65000, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	deadline := time.After(20 * time.Second)
	for next := routes.Published(); routes.Len() < 24; next = routes.Published() {
		select {
		case <-next:
		case <-deadline:
			t.Fatalf("%d routes learned", routes.Len())
		}
	}

	e := mustEngine(t, flows.Config{Routes: ribRoutes{routes}})
	if err := e.SetFlow("owner", keys.Definition{
		Keys: "or:ipdestination:ip6destination,bgpdestinationpeer,bgpnexthop,bgpdestinationas,bgpcommunities,bgpdestinationprefix," +
			"asn:[or:ipdestination:ip6destination]"}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	s.RunFor(20*time.Second, func(b []byte) {
		if _, err := dec.Decode(b, e); err != nil {
			t.Fatal(err)
		}
	})
	e.Flush() // the shards' writers have taken every sample
	owners := map[netip.Addr]*sim.Container{}
	for _, c := range s.Containers() {
		owners[c.Addr], owners[c.Addr6] = c, c
	}
	rows, err := e.ActiveFlows("owner", func(netip.Addr) bool { return true }, 1000, 0, "max")
	if err != nil {
		t.Fatal(err)
	}
	v6 := 0
	for _, row := range rows {
		k := strings.Split(row.Key, ",")
		dst := netip.MustParseAddr(k[0])
		c := owners[dst]
		if c == nil {
			t.Errorf("%s: a destination with a route that is no container", row.Key)
			continue
		}
		hop := c.Server.Agent
		if dst.Is6() {
			hop, v6 = c.Server.Agent6, v6+1
		}
		leaf := c.Server.Leaf
		want := strings.Join([]string{dst.String(), leaf.BGPSource.String(), hop.String(),
			itoa(leaf.ASN), itoa(leaf.ASN) + ":1", netip.PrefixFrom(dst, dst.BitLen()).String(), itoa(leaf.ASN)}, ",")
		if row.Key != want {
			t.Errorf("key %s, want %s", row.Key, want)
		}
	}
	if len(rows) < 12 || v6 == 0 {
		t.Errorf("%d destinations (%d IPv6) keyed; want every container", len(rows), v6)
	}
	if n := testing.AllocsPerRun(100, func() { ribRoutes{routes}.RouteOf(netip.MustParseAddr("172.16.1.22")) }); n != 0 {
		t.Errorf("RouteOf allocates %.1f times", n)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// An elephant names where its destination lives; when that container's
// route is withdrawn its record says it is gone, and what it was; when it
// is announced again, an ownerback update gives the owner back.
func TestElephantOwnerAndGone(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	var eng *engine.Engine
	routes, err := rib.Start(t.Context(), rib.Config{Listen: addr.String(), Logger: quiet,
		Accept: []netip.Prefix{netip.MustParsePrefix("127.0.1.0/24")},
		Gone:   func(p netip.Prefix) { eng.Withdrawn(p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer routes.Close()
	eng = mustEngine(t, flows.Config{Routes: ribRoutes{routes}})
	if err := eng.SetTopology(api.Topology{Nodes: map[string]api.TopologyNode{
		"leaf09": {Agent: "10.255.1.9"}, "server09": {Agent: "10.0.0.9"}}}); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("127.0.1.9")
	sp, err := sim.NewSpeaker(t.Context(), 65109, netip.MustParseAddr("10.255.1.9"), src, addr, 65000, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	container := netip.MustParsePrefix("172.16.1.99/32")
	if err := sp.Announce(t.Context(), container, netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for next := routes.Published(); routes.Lookup(container.Addr()) == nil; next = routes.Published() {
		select {
		case <-next:
		case <-deadline:
			t.Fatal("route never learned")
		}
	}

	if err := eng.SetFlow("pair", keys.Definition{Keys: "ipsource,ipdestination"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetThreshold("big", thresholds.Threshold{Metric: "pair", Value: 1e6, ByFlow: true}); err != nil {
		t.Fatal(err)
	}
	frame := (&sflowtest.Frame{Src: netip.MustParseAddr("172.16.1.11"), Dst: container.Addr(),
		Protocol: sflowtest.ProtoTCP, SrcPort: 40000, DstPort: 443, Pad: 100}).Bytes()
	var dec decode.Decoder
	for seq := uint32(1); seq <= 10; seq++ {
		d := sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.1.1"), Sequence: seq, Samples: []sflowtest.Sample{
			&sflowtest.FlowSample{Sequence: seq, Source: decode.DataSource{Index: 1}, SamplingRate: 1000, SamplePool: 1000 * seq,
				Input: decode.Port{Value: 1}, Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: frame}}}}}
		dec.Decode(d.Bytes(), eng)
	}
	eng.Flush() // the shards' writers have taken every sample
	recs := eng.Elephants(t.Context(), 0, 10, 0)
	if len(recs) != 1 || recs[0].Owner == nil {
		t.Fatalf("elephants %+v", recs)
	}
	if o := recs[0].Owner; o.AnnouncedBy != "leaf09" || o.Host != "server09" || o.Prefix != container || o.Gone != 0 {
		t.Errorf("owner %+v, want leaf09 and server09", o)
	}

	if err := sp.Withdraw(t.Context(), container, netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatal(err)
	}
	got := eng.Elephants(t.Context(), recs[0].UpdateID, 10, 20*time.Second)
	if len(got) != 1 || got[0].Owner == nil || got[0].Owner.Gone == 0 || !got[0].Active || got[0].Update != "gone" {
		t.Fatalf("after the withdrawal: %+v", got)
	}
	if w := got[0].Owner.Was; w == nil || w.AnnouncedBy != "leaf09" || w.Prefix != container {
		t.Errorf("withdrawn owner %+v: want what it was (leaf09, %s)", got[0].Owner, container)
	}
	// Its path says so too: the destination is gone, since when.
	ps, err := eng.Paths(api.PathQuery{Src: netip.MustParseAddr("172.16.1.11"), Dst: container.Addr()})
	if err != nil || len(ps.Paths) != 1 || ps.DstEnd == nil || ps.DstEnd.Gone != got[0].Owner.Gone || ps.DstEnd.Prefix != container {
		t.Errorf("path after the withdrawal: %+v (err %v)", ps, err)
	}

	// Announced again: the sweep gives the owner back, and says so once.
	if err := sp.Announce(t.Context(), container, netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatal(err)
	}
	for next := routes.Published(); routes.Lookup(container.Addr()) == nil; next = routes.Published() {
		select {
		case <-next:
		case <-time.After(20 * time.Second):
			t.Fatal("route never learned again")
		}
	}
	eng.Sweep()
	eng.Sweep()
	back := eng.Elephants(t.Context(), got[0].UpdateID, 10, 0)
	if len(back) != 1 || back[0].Update != "ownerback" || back[0].Owner == nil || back[0].Owner.Gone != 0 || back[0].Owner.AnnouncedBy != "leaf09" {
		t.Fatalf("after the re-announcement: %+v", back)
	}
	// One record per elephant, in its current state, not the update log.
	one := eng.ElephantRecords(100)
	if len(one) != 1 || one[0].Owner.Gone != 0 || !one[0].Active || one[0].Duration <= 0 {
		t.Errorf("records %+v, want the one elephant, owner back", one)
	}
}
