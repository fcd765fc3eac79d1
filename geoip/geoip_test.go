package geoip

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// build writes a legacy country database of the given prefixes (country
// ids by prefix), the way MaxMind's tree is laid out: node 0 the root,
// each node two 3-byte little-endian records, a record past countryBegin
// a leaf. Nested prefixes go in shortest first.
func build(edition byte, prefixes []netip.Prefix, ids []int) []byte {
	nodes := [][2]int{{countryBegin, countryBegin}}
	for i, p := range prefixes {
		a := p.Addr().As16()
		off := 0
		if p.Addr().Is4() && edition == editionCountry {
			b := p.Addr().As4()
			copy(a[:], b[:])
		}
		for depth := 0; depth < p.Bits(); depth++ {
			bit := int(a[depth/8]>>(7-depth%8)) & 1
			if depth == p.Bits()-1 {
				nodes[off][bit] = countryBegin + ids[i]
				break
			}
			next := nodes[off][bit]
			if next >= countryBegin { // a leaf: split it, both halves keep its country
				nodes = append(nodes, [2]int{next, next})
				next = len(nodes) - 1
				nodes[off][bit] = next
			}
			off = next
		}
	}
	var b []byte
	for _, n := range nodes {
		for _, r := range n {
			b = append(b, byte(r), byte(r>>8), byte(r>>16))
		}
	}
	return append(b, 0, 0xFF, 0xFF, 0xFF, edition)
}

func write(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "GeoIP.dat")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Lookups agree with a longest match over the prefixes the tree was built
// from, for random addresses in and around them.
func TestCountryIsTheLongestMatch(t *testing.T) {
	v4 := []netip.Prefix{netip.MustParsePrefix("1.0.0.0/8"), netip.MustParsePrefix("1.1.1.0/24"),
		netip.MustParsePrefix("8.8.8.0/24"), netip.MustParsePrefix("193.0.0.0/11"), netip.MustParsePrefix("193.0.6.139/32")}
	v4ids := []int{16, 31, 225, 161, 56} // AU, BR, US, NL, DE
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:4860::/32"), netip.MustParsePrefix("2a00:1450:4001::/48")}
	v6ids := []int{225, 56}
	db, err := Open(write(t, build(editionCountry, v4, v4ids)), write(t, build(editionCountryV6, v6, v6ids)))
	if err != nil {
		t.Fatal(err)
	}
	model := func(a netip.Addr) (string, bool) {
		best, id := -1, 0
		ps, ids := v4, v4ids
		if a.Is6() {
			ps, ids = v6, v6ids
		}
		for i, p := range ps {
			if p.Contains(a) && p.Bits() > best {
				best, id = p.Bits(), ids[i]
			}
		}
		if best < 0 {
			return "", false
		}
		return codes[id], true
	}
	r := rand.New(rand.NewPCG(1, 2))
	checked := map[bool]int{}
	for range 20000 {
		var a netip.Addr
		if r.IntN(2) == 0 {
			base := v4[r.IntN(len(v4))].Addr().As4()
			base[3-r.IntN(3)] = byte(r.Uint32()) // near a prefix, in it or not
			a = netip.AddrFrom4(base)
		} else {
			base := v6[r.IntN(len(v6))].Addr().As16()
			base[5+r.IntN(11)] = byte(r.Uint32())
			a = netip.AddrFrom16(base)
		}
		got, ok := db.Country(a)
		want, wok := model(a)
		if got != want || ok != wok {
			t.Fatalf("%s: %q %v, want %q %v", a, got, ok, want, wok)
		}
		checked[ok]++
	}
	if checked[true] < 1000 || checked[false] < 1000 {
		t.Errorf("the addresses tried did not cover both cases: %v", checked)
	}
	if c, ok := db.Country(netip.MustParseAddr("::ffff:8.8.8.8")); c != "US" || !ok {
		t.Errorf("an IPv4-mapped address: %q %v", c, ok)
	}
}

func TestBadFiles(t *testing.T) {
	good := build(editionCountry, []netip.Prefix{netip.MustParsePrefix("8.8.8.0/24")}, []int{225})
	if _, err := Open(write(t, build(2, nil, nil))); !errors.Is(err, ErrFormat) { // the city edition
		t.Errorf("city edition: %v", err)
	}
	if _, err := Open(write(t, good), write(t, good)); err == nil {
		t.Error("two IPv4 databases: no error")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.dat")); err == nil {
		t.Error("a missing file: no error")
	}
	// A tree cut short answers nothing for what it lost, and never panics.
	db, err := Open(write(t, good[:20]))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := db.Country(netip.MustParseAddr("8.8.8.8")); ok {
		t.Errorf("a cut tree found %q", c)
	}
	if _, ok := db.Country(netip.MustParseAddr("2001:db8::1")); ok {
		t.Error("an IPv6 address answered without an IPv6 database")
	}
}

// Any bytes make a database or an error; lookups in it never panic.
func FuzzLookup(f *testing.F) {
	f.Add(build(editionCountry, []netip.Prefix{netip.MustParsePrefix("8.8.8.0/24")}, []int{225}), []byte{8, 8, 8, 8})
	f.Add(build(editionCountryV6, []netip.Prefix{netip.MustParsePrefix("2001:4860::/32")}, []int{225}),
		netip.MustParseAddr("2001:4860::1").AsSlice())
	f.Fuzz(func(t *testing.T, file, addr []byte) {
		tab, err := parse(file)
		if err != nil {
			return
		}
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		if id, ok := tab.lookup(a.Unmap()); ok && id < 0 {
			t.Fatalf("negative id %d", id)
		}
	})
}
