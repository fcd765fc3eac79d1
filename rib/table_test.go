package rib

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func host(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>16), byte(i >> 8), byte(i)}), 32)
}

func TestLongestPrefixMatch(t *testing.T) {
	tb := newTable()
	peer := netip.MustParseAddr("127.0.1.1")
	add := func(p string, nh string) change {
		return change{prefix: netip.MustParsePrefix(p), route: &Route{Peer: peer, NextHop: netip.MustParseAddr(nh)}}
	}
	tb.apply([]change{add("10.0.0.0/8", "1.1.1.1"), add("10.1.0.0/16", "2.2.2.2"), add("10.1.2.3/32", "3.3.3.3"),
		add("fd00::/8", "::1"), add("fd00::5/128", "::5")})
	for a, want := range map[string]string{"10.1.2.3": "3.3.3.3", "10.1.2.4": "2.2.2.2", "10.9.9.9": "1.1.1.1",
		"fd00::5": "::5", "fd00::6": "::1", "::ffff:10.1.2.3": "3.3.3.3", "11.0.0.1": "", "2001:db8::1": ""} {
		e := tb.current.Load().lookup(netip.MustParseAddr(a))
		got := ""
		if e != nil {
			got = e.Best().NextHop.String()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", a, got, want)
		}
	}
	tb.apply([]change{{prefix: netip.MustParsePrefix("10.1.0.0/16"), route: &Route{Peer: peer}, withdraw: true}})
	if e := tb.current.Load().lookup(netip.MustParseAddr("10.1.2.4")); e == nil || e.Best().NextHop.String() != "1.1.1.1" {
		t.Errorf("after withdrawing the /16: %+v", e)
	}
	if n := tb.current.Load().count; n != 4 {
		t.Errorf("%d prefixes held, want 4", n)
	}
}

// BenchmarkLookup: a hit among 100,000 container /32s, with a covering
// /12 as well, reading the best route's next hop as the flow engine does
// (1024 addresses in turn, and one over and over); beside it the baseline, the same addresses in a plain Go map (exact
// match only, no snapshot), measured in the same run.
func BenchmarkLookup(b *testing.B) {
	tb := newTable()
	peer := netip.MustParseAddr("127.0.1.1")
	var cs []change
	for i := range 100_000 {
		cs = append(cs, change{prefix: host(i), route: &Route{Peer: peer, NextHop: peer}})
	}
	cs = append(cs, change{prefix: netip.MustParsePrefix("172.16.0.0/12"), route: &Route{Peer: peer}})
	tb.apply(cs)
	s := tb.current.Load()
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = host(i * 97).Addr()
	}
	b.Run("rib", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := s.lookup(addrs[i&1023])
			if e == nil || !e.Routes[0].NextHop.IsValid() {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("rib-one-address", func(b *testing.B) { // the entry stays in cache
		b.ReportAllocs()
		for b.Loop() {
			if e := s.lookup(addrs[7]); e == nil || !e.Routes[0].NextHop.IsValid() {
				b.Fatal("miss")
			}
		}
	})
	b.Run("map-baseline", func(b *testing.B) {
		m := map[netip.Addr]*Entry{}
		s.each(func(e *Entry) {
			if e.Prefix.IsSingleIP() {
				m[e.Prefix.Addr()] = e
			}
		})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e := m[addrs[i&1023]]
			if e == nil || !e.Routes[0].NextHop.IsValid() {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// TestTableFollowsAModel: random batches of announcements and withdrawals
// from three peers, over /32s, /128s and a few shorter prefixes, checked
// after every batch against a plain map; and every earlier snapshot must
// still answer as it did when it was published.
func TestTableFollowsAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	peers := []netip.Addr{netip.MustParseAddr("127.0.1.1"), netip.MustParseAddr("127.0.1.2"), netip.MustParseAddr("127.0.1.3")}
	prefixes := make([]netip.Prefix, 0, 3000)
	for i := range 2000 {
		prefixes = append(prefixes, host(i))
	}
	for i := range 900 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(i >> 8), 15: byte(i)}), 128))
	}
	for i := range 100 {
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16+i%9))
	}
	type model map[netip.Prefix]map[netip.Addr]bool
	snapshotOf := func(m model) map[netip.Prefix]int {
		out := map[netip.Prefix]int{}
		for p, ps := range m {
			if len(ps) > 0 {
				out[p] = len(ps)
			}
		}
		return out
	}
	check := func(s *snapshot, want map[netip.Prefix]int, when string) {
		t.Helper()
		if s.count != len(want) {
			t.Fatalf("%s: %d prefixes, want %d", when, s.count, len(want))
		}
		seen := 0
		s.each(func(e *Entry) {
			seen++
			if len(e.Routes) != want[e.Prefix] {
				t.Fatalf("%s: %s has %d routes, want %d", when, e.Prefix, len(e.Routes), want[e.Prefix])
			}
		})
		if seen != len(want) {
			t.Fatalf("%s: walked %d entries, want %d", when, seen, len(want))
		}
		for _, p := range prefixes {
			e := s.getOrNil(p)
			if (e != nil) != (want[p] > 0) {
				t.Fatalf("%s: %s held %v, want %v", when, p, e != nil, want[p] > 0)
			}
		}
	}
	tb := newTable()
	m := model{}
	type published struct {
		s    *snapshot
		want map[netip.Prefix]int
	}
	var history []published
	for batch := range 60 {
		var cs []change
		for range 1 + rng.IntN(400) {
			p := prefixes[rng.IntN(len(prefixes))]
			peer := peers[rng.IntN(len(peers))]
			withdraw := rng.IntN(3) == 0
			cs = append(cs, change{prefix: p, route: &Route{Peer: peer, NextHop: peer}, withdraw: withdraw})
			if m[p] == nil {
				m[p] = map[netip.Addr]bool{}
			}
			if withdraw {
				delete(m[p], peer)
			} else {
				m[p][peer] = true
			}
		}
		tb.apply(cs)
		want := snapshotOf(m)
		check(tb.current.Load(), want, fmt.Sprintf("batch %d", batch))
		history = append(history, published{tb.current.Load(), want})
	}
	for i, h := range history {
		check(h.s, h.want, fmt.Sprintf("snapshot %d, later", i))
	}
}

func (s *snapshot) getOrNil(p netip.Prefix) *Entry {
	if s.dir == nil {
		return nil
	}
	return s.get(p, keyOf(p).hash())
}
