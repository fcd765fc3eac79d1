package rib

import (
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
		return change{prefix: netip.MustParsePrefix(p), route: Route{Peer: peer, NextHop: netip.MustParseAddr(nh)}}
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
	tb.apply([]change{{prefix: netip.MustParsePrefix("10.1.0.0/16"), route: Route{Peer: peer}, withdraw: true}})
	if e := tb.current.Load().lookup(netip.MustParseAddr("10.1.2.4")); e == nil || e.Best().NextHop.String() != "1.1.1.1" {
		t.Errorf("after withdrawing the /16: %+v", e)
	}
	if n := tb.current.Load().count; n != 4 {
		t.Errorf("%d prefixes held, want 4", n)
	}
}

// BenchmarkLookup: a hit among 100,000 container /32s, with covering /16s
// as well.
func BenchmarkLookup(b *testing.B) {
	tb := newTable()
	peer := netip.MustParseAddr("127.0.1.1")
	var cs []change
	for i := range 100_000 {
		cs = append(cs, change{prefix: host(i), route: Route{Peer: peer}})
	}
	cs = append(cs, change{prefix: netip.MustParsePrefix("172.16.0.0/12"), route: Route{Peer: peer}})
	tb.apply(cs)
	s := tb.current.Load()
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = host(i * 97).Addr()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s.lookup(addrs[i&1023]) == nil {
			b.Fatal("miss")
		}
		i++
	}
}
