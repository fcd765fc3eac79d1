package web_test

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/web"
)

func TestRIBEndpoints(t *testing.T) {
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
	s, err := sim.New(sim.Config{Seed: 1, Mice: -1, ServerAgents: true})
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
	// The agents' host_descr counters name the nodes (all within a second).
	eng := flows.New(flows.Config{})
	var dec decode.Decoder
	s.RunFor(time.Second, func(b []byte) { dec.Decode(b, eng) })
	srv := httptest.NewServer(web.New(web.Config{Engine: eng, RIB: routes}))
	defer srv.Close()
	r := &rig{t: t, srv: srv}

	var look struct {
		Prefix string
		Best   struct {
			Peer, Nexthop string
			Aspath        []uint32
			Communities   []string
		}
		Routes []any
		Owner  struct{ AnnouncedBy, Host string }
	}
	json.Unmarshal([]byte(r.must("GET", "/rib/lookup/json?address=172.16.1.22", "", 200)), &look)
	if look.Prefix != "172.16.1.22/32" || look.Best.Nexthop != "10.0.0.2" || look.Best.Peer != "127.0.1.2" ||
		len(look.Best.Aspath) != 1 || look.Best.Aspath[0] != 65102 || len(look.Best.Communities) != 1 ||
		look.Best.Communities[0] != "65102:1" || len(look.Routes) != 1 ||
		look.Owner.AnnouncedBy != "leaf02" || look.Owner.Host != "server02" {
		t.Errorf("lookup of 172.16.1.22: %+v", look)
	}
	r.must("GET", "/rib/lookup/json?address=192.0.2.1", "", 404)
	r.must("GET", "/rib/lookup/json?address=banana", "", 400)

	var page struct {
		Total   int
		Entries []struct{ Prefix string }
	}
	json.Unmarshal([]byte(r.must("GET", "/rib/json?prefix=172.16.1.0/24&limit=5&start=10", "", 200)), &page)
	if page.Total != 12 || len(page.Entries) != 2 || page.Entries[0].Prefix != "172.16.1.42/32" {
		t.Errorf("page: %+v", page)
	}
	json.Unmarshal([]byte(r.must("GET", "/rib/json?community=65102:1", "", 200)), &page)
	if page.Total != 6 {
		t.Errorf("community 65102:1 matched %d entries, want leaf02's 3 /32s and 3 /128s", page.Total)
	}
	var nbrs []rib.Neighbor
	json.Unmarshal([]byte(r.must("GET", "/bgp/neighbors/json", "", 200)), &nbrs)
	if len(nbrs) != 4 || nbrs[0].State != "established" || nbrs[0].Accepted != 6 || nbrs[0].ASN != 65101 {
		t.Errorf("neighbours %+v", nbrs)
	}

	off := httptest.NewServer(web.New(web.Config{Engine: flows.New(flows.Config{})}))
	defer off.Close()
	r2 := &rig{t: t, srv: off}
	if out := r2.must("GET", "/bgp/neighbors/json", "", 404); !strings.Contains(out, "-bgp-accept") {
		t.Errorf("BGP off: %s", out)
	}
}
