package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// twoPaths is an answer with ECMP over two spines, an inferred hop and both
// ends attributed.
func twoPaths() api.Paths {
	hop := func(ttl uint8, node, in, out string, samples uint32, kind string) api.PathHop {
		return api.PathHop{TTL: ttl, Node: node, In: in, Out: out, Samples: samples, Kind: kind}
	}
	return api.Paths{Src: netip.MustParseAddr("172.16.1.11"), Dst: netip.MustParseAddr("172.16.1.42"),
		SrcEnd: &api.Owner{Address: netip.MustParseAddr("172.16.1.11"), Prefix: netip.MustParsePrefix("172.16.1.11/32"),
			NextHop: netip.MustParseAddr("10.0.0.1"), Peer: netip.MustParseAddr("127.0.1.1"), AnnouncedBy: "leaf01", Host: "server01"},
		DstEnd: &api.Owner{Address: netip.MustParseAddr("172.16.1.42"), Prefix: netip.MustParsePrefix("172.16.1.42/32"),
			NextHop: netip.MustParseAddr("10.0.0.4"), Peer: netip.MustParseAddr("127.0.1.4"), AnnouncedBy: "leaf04", Host: "server04"},
		Paths: []api.Path{
			{Share: 0.625, Complete: true, Flows: make([]api.PathFlow, 5), Hops: []api.PathHop{
				hop(64, "leaf01", "swp1", "swp51", 120, "sampled"), hop(63, "spine01", "swp1", "swp4", 118, "sampled"),
				hop(62, "leaf04", "swp51", "swp1", 121, "sampled")}},
			{Share: 0.375, Complete: true, Flows: make([]api.PathFlow, 3), Hops: []api.PathHop{
				hop(64, "leaf01", "swp1", "swp52", 70, "sampled"), hop(63, "spine02", "", "", 0, "inferred"),
				hop(62, "leaf04", "swp52", "swp1", 69, "sampled")}},
		},
		Split: []api.Split{{TTL: 63, Shares: map[string]float64{"spine01": 0.625, "spine02": 0.375}}},
	}
}

func TestTextOutputMatchesGolden(t *testing.T) {
	var b bytes.Buffer
	render(&b, twoPaths())
	matchGolden(t, "testdata/two-paths.golden", b.String())
}

// matchGolden compares output with a golden file (go test -update rewrites it).
func matchGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", golden, got)
	}
}

// A path that changed: the engine, fed by the simulator with a 1 s export
// delay, after leaf01's link to the flow's spine failed and came back; its
// destination then withdrawn. The output shows the elephant's rate with its
// 99 % interval, one live path, complete, the history with times, and the
// withdrawn owner as what it was.
func TestChangedPathMatchesGolden(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.42")
	s, err := sim.New(sim.Config{Seed: 9, Mice: 50, ServerAgents: true, ExportDelay: time.Second,
		Elephants: []sim.Elephant{{Src: src, Dst: dst, SrcPort: 40001, Rate: 200e6, Duration: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	eng := flows.New(flows.Config{Now: func() time.Time { return now }})
	if err := eng.SetFlow("elephant", keys.Definition{Keys: "node:inputifindex,ipsource,ipdestination,ipttl"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 10, Confidence: 0.99}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	step := func(d time.Duration) {
		for end := s.Now() + d; s.Now() < end; {
			s.Step(func(b []byte) { dec.Decode(b, eng) })
			now = now.Add(100 * time.Millisecond)
			eng.SweepPaths()
		}
	}
	q := api.PathQuery{Src: src, Dst: dst, DstPort: 5201, History: true}
	step(6 * time.Second)
	first, _ := eng.Paths(q)
	spine := first.Paths[0].Hops[2].Node
	if _, err := s.SetLink("leaf01", spine, false); err != nil {
		t.Fatal(err)
	}
	step(6 * time.Second)
	s.SetLink("leaf01", spine, true)
	step(6 * time.Second)
	ps, _ := eng.Paths(q)
	ps.DstEnd = &api.Owner{Address: dst, Prefix: netip.MustParsePrefix("172.16.1.42/32"), Gone: now.UnixMilli(),
		Was: &api.Owner{Address: dst, Prefix: netip.MustParsePrefix("172.16.1.42/32"), AnnouncedBy: "leaf04", Host: "server04"}}
	if len(ps.Paths) != 1 || !ps.Paths[0].Complete || len(ps.History) != 3 || len(ps.Split) != 0 || len(ps.Elephants) != 1 {
		t.Errorf("%d paths, complete %v, %d in history, split %v: want 1 path, complete, 3 in history, no split",
			len(ps.Paths), len(ps.Paths) > 0 && ps.Paths[0].Complete, len(ps.History), ps.Split)
	}
	// Its rate, merged over its hops across the change, holds the truth.
	if truth := 200e6 / 8 * 1518 / 1500; len(ps.Elephants) == 1 && !(ps.Elephants[0].RateLow < truth && truth < ps.Elephants[0].RateHigh) {
		t.Errorf("elephant %+v: the interval misses the true %g bytes/s", ps.Elephants[0], truth)
	}
	var b bytes.Buffer
	render(&b, ps)
	matchGolden(t, "testdata/changed-path.golden", b.String())
}

func collector(t *testing.T, status int, answer any) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/paths/json" || r.URL.Query().Get("src") != "172.16.1.11" {
			t.Errorf("asked %s", r.URL)
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestExitCodes(t *testing.T) {
	found := collector(t, 200, twoPaths())
	none := collector(t, 200, api.Paths{Paths: []api.Path{}})
	bad := collector(t, 400, map[string]string{"error": "proto \"sctp\": want tcp, udp"})
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"-collector", found, "172.16.1.11", "172.16.1.42"}, 0, "ECMP at TTL 63"},
		{[]string{"-collector", found, "-json", "172.16.1.11", "172.16.1.42"}, 0, `"split"`},
		{[]string{"-collector", none, "172.16.1.11", "172.16.1.42"}, 1, "Is the pair sending?"},
		{[]string{"-collector", bad, "-proto", "sctp", "172.16.1.11", "172.16.1.42"}, 2, "want tcp, udp"},
		{[]string{"-collector", goneURL, "172.16.1.11", "172.16.1.42"}, 3, "cannot reach the collector at " + goneURL},
		{[]string{"172.16.1.11"}, 2, "want SRC and DST"},
		{[]string{"172.16.1.11", "a b"}, 2, `"a b": want an address or a node name`},
		{[]string{"-sport", "70000", "172.16.1.11", "172.16.1.42"}, 2, "-sport"},
		{[]string{"-h"}, 0, "Examples:"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.says) {
			t.Errorf("%v: exit %d, want %d saying %q\nstdout: %s\nstderr: %s", c.args, code, c.code, c.says, out.String(), errb.String())
		}
	}
}
