//go:build e2e

package e2e

import (
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/geoip"
)

// The country: key's reader agrees with libGeoIP's geoiplookup on Debian's
// geoip-database, address by address.
func TestGeoIPAgreesWithGeoiplookup(t *testing.T) {
	const v4, v6 = "/usr/share/GeoIP/GeoIP.dat", "/usr/share/GeoIP/GeoIPv6.dat"
	db, err := geoip.Open(v4, v6)
	if err != nil {
		t.Fatalf("%v (e2e/setup.sh installs geoip-database)", err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	found := 0
	for i := range 400 {
		var a netip.Addr
		tool, file := "geoiplookup", v4
		if i%4 == 3 { // IPv6, mostly in the allocated 2000::/4
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			b[0] = 0x20 | b[0]&0x0F
			a, tool, file = netip.AddrFrom16(b), "geoiplookup6", v6
		} else {
			a = netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		}
		out, err := exec.Command(tool, "-f", file, a.String()).Output()
		if err != nil {
			t.Fatalf("%s %s: %v", tool, a, err)
		}
		// "GeoIP Country Edition: US, United States", or "... IP Address not found".
		_, answer, _ := strings.Cut(strings.TrimSpace(string(out)), ": ")
		want, _, ok := strings.Cut(answer, ", ")
		if !ok {
			want = ""
		}
		got, _ := db.Country(a)
		if got != want {
			t.Errorf("%s: %q, %s says %q", a, got, tool, strings.TrimSpace(string(out)))
		}
		if got != "" {
			found++
		}
	}
	if found < 100 {
		t.Errorf("only %d of 400 random addresses had a country: the comparison says little", found)
	}
}
