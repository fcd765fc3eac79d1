package keys_test

import (
	"net/netip"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/keys"
)

// rib is a RIB of a few routes, longest match by a walk.
type rib []keys.Route

func (r rib) RouteOf(a netip.Addr) (keys.Route, bool) {
	best, ok := keys.Route{}, false
	for _, rt := range r {
		if rt.Prefix.Contains(a) && (!ok || rt.Prefix.Bits() > best.Prefix.Bits()) {
			best, ok = rt, true
		}
	}
	return best, ok
}

// places names agent 192.0.2.1 leaf1 and its port 3 link leaf1-spine1.
type places struct{ env *keys.Env }

func (p places) Node(a netip.Addr) keys.Value {
	if a == agent {
		return p.env.StrValue("leaf1")
	}
	return p.env.Text(keys.AddrValue(a))
}

func (p places) Link(a netip.Addr, port keys.Value) keys.Value {
	if a == agent && port == keys.NumValue(3) {
		return p.env.StrValue("leaf1-spine1")
	}
	return keys.Value{}
}

// The key functions that read the environment: the RIB, the topology, the
// groups and maps; and what they give without them.
func TestKeysFromTheEnvironment(t *testing.T) {
	env := keys.NewEnv()
	env.Routes = rib{
		{Prefix: netip.MustParsePrefix("10.2.0.0/16"), NextHop: netip.MustParseAddr("172.16.0.1"), Peer: netip.MustParseAddr("172.16.0.1"),
			ASPath: []uint32{65001, 65002}, Communities: []uint32{65001<<16 | 7}},
		{Prefix: netip.MustParsePrefix("10.2.2.3/32"), NextHop: netip.MustParseAddr("172.16.0.9"), Peer: netip.MustParseAddr("172.16.0.2"),
			ASPath: []uint32{65003}},
	}
	env.Places = places{env}
	g, err := keys.CompileGroup("zones", []byte(`{"web":["10.2.0.0/16"],"db":["10.2.2.3"],"lan":["10.0.0.0/8"]}`))
	if err != nil {
		t.Fatal(err)
	}
	env.Groups.Put("zones", g)
	m, err := keys.CompileMap("svc", []byte(`{"https":["443","8443"]}`))
	if err != nil {
		t.Fatal(err)
	}
	env.Maps.Put("svc", m)
	b := oneSample(sflowtest.SynAckFrame().Bytes(), decode.Port{Value: 5})
	for _, c := range []struct{ keys, want string }{
		{"bgpdestinationprefix,bgpnexthop,bgpdestinationpeer", "10.2.2.3/32,172.16.0.9,172.16.0.2"},
		{"bgpdestinationas,asn:ipdestination", "65003,65003"},
		{"bgpsourceprefix", ""}, // 10.1.1.2: no route
		{"node:inputifindex,link:inputifindex", "leaf1,leaf1-spine1"},
		{"link:outputifindex", ""},
		{"group:ipdestination:zones,group:ipsource:zones", "db,lan"}, // the longest prefix wins
		{"map:tcpdestinationport:svc", "https"},
		{"map:tcpsourceport:svc", ""},
	} {
		if got := keyOf(t, env, c.keys, b); got != c.want {
			t.Errorf("%s: %q, want %q", c.keys, got, c.want)
		}
	}
	// Without a RIB, topology, groups or maps: node: is the agent, the rest
	// are missing.
	bare := keys.NewEnv()
	for _, c := range []struct{ keys, want string }{
		{"node:inputifindex", "192.0.2.1"}, {"bgpdestinationas", ""}, {"asn:ipdestination", ""},
		{"group:ipdestination:zones", ""}, {"map:tcpdestinationport:svc", ""},
	} {
		if got := keyOf(t, bare, c.keys, b); got != c.want {
			t.Errorf("bare %s: %q, want %q", c.keys, got, c.want)
		}
	}
	if _, err := keys.CompileMap("dup", []byte(`{"a":["1"],"b":["1"]}`)); err == nil {
		t.Error("a value under two labels: no error")
	}
	if _, err := keys.CompileGroup("bad", []byte(`{"a":["10.0.0.0/33"]}`)); err == nil {
		t.Error("a /33: no error")
	}
}

// Values go through the binary key and back unchanged, and their text is
// sFlow-RT's.
func TestValueRoundTrip(t *testing.T) {
	in := keys.NewInterner()
	id, _, _ := in.IDString("leaf1")
	pfx := keys.AddrValue(netip.MustParseAddr("2001:db8::"))
	pfx.Kind, pfx.Bits = keys.PrefixKind(pfx.Kind), 32
	for _, c := range []struct {
		v    keys.Value
		text string
	}{
		{keys.NumValue(443), "443"},
		{keys.AddrValue(netip.MustParseAddr("10.1.1.2")), "10.1.1.2"},
		{keys.AddrValue(netip.MustParseAddr("2001:db8::1")), "2001:db8::1"},
		{keys.Value{Kind: keys.MAC, N: 0x0a0b0c0d0e0f}, "0A0B0C0D0E0F"},
		{keys.Value{Kind: keys.Str, N: uint64(id)}, "leaf1"},
		{pfx, "2001:db8::/32"},
	} {
		b := c.v.AppendKey([]byte{0xEE})
		got, rest := keys.ReadKey(b[1:])
		if got != c.v || len(rest) != 0 {
			t.Errorf("%s: read back %+v (%d left), want %+v", c.text, got, len(rest), c.v)
		}
		if txt := string(got.AppendText(nil, in)); txt != c.text {
			t.Errorf("text %q, want %q", txt, c.text)
		}
	}
}
