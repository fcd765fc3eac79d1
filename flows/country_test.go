package flows_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
)

// countries is a country table by prefix, as a GeoIP database answers.
type countries map[netip.Prefix]string

func (c countries) Country(a netip.Addr) (string, bool) {
	for p, code := range c {
		if p.Contains(a) {
			return code, true
		}
	}
	return "", false
}

func TestCountryKey(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.41")
	cfg := sim.Config{Seed: 2, Mice: -1, Elephants: []sim.Elephant{{Src: src, Dst: dst, Rate: 1e9, Duration: time.Hour}}}

	// Without a database, country: is refused, saying what to install.
	bare := newFabric(t, cfg, flows.Config{})
	filter := "country:ipdestination=US"
	for _, d := range []keys.Definition{{Keys: "country:ipsource", Value: "bps"}, {Keys: "ipsource", Value: "bps", Filter: &filter}} {
		err := bare.eng.SetFlow("geo", d)
		if !errors.Is(err, flows.ErrInvalid) || !strings.Contains(err.Error(), "geoip-database") {
			t.Errorf("%+v without a database: %v", d, err)
		}
	}
	if err := bare.eng.SetFlow("ok", keys.Definition{Keys: "ipsource", Value: "bps"}); err != nil {
		t.Errorf("a flow without country: %v", err)
	}

	f := newFabric(t, cfg, flows.Config{Countries: countries{
		netip.MustParsePrefix("172.16.1.11/32"): "NL", netip.MustParsePrefix("172.16.1.41/32"): "JP"}})
	if err := f.eng.SetFlow("geo", keys.Definition{Keys: "country:ipsource,country:ipdestination", Value: "bps"}); err != nil {
		t.Fatal(err)
	}
	nl := "country:ipsource=NL"
	if err := f.eng.SetFlow("fromnl", keys.Definition{Keys: "ipdestination", Value: "bps", Filter: &nl}); err != nil {
		t.Fatal(err)
	}
	f.run(5 * time.Second)
	all := func(netip.Addr) bool { return true }
	top, err := f.eng.ActiveFlows("geo", all, 5, 0, "max")
	want := 1e9 * 1514 / 1500
	// The elephant from NL to JP, and its ACKs back.
	if err != nil || len(top) != 2 || top[0].Key != "NL,JP" || top[1].Key != "JP,NL" || top[0].Value < want*0.9 || top[0].Value > want*1.1 {
		t.Errorf("geo: %v %+v, want NL,JP at about %.3g, then JP,NL", err, top, want)
	}
	top, err = f.eng.ActiveFlows("fromnl", all, 5, 0, "max")
	if err != nil || len(top) != 1 || top[0].Key != "172.16.1.41" {
		t.Errorf("fromnl: %v %+v, want only the elephant's destination", err, top)
	}
}
