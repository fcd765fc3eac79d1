package keys_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/keys"
)

var agent = netip.MustParseAddr("192.0.2.1")

// oneSample is a datagram of one packet sample of frame, out of port out.
func oneSample(frame []byte, out decode.Port, records ...sflowtest.Record) []byte {
	d := sflowtest.Datagram{Agent: agent, Sequence: 1, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
		Sequence: 1, Source: decode.DataSource{Index: 3}, SamplingRate: 100, SamplePool: 100,
		Input: decode.Port{Value: 3}, Output: out,
		Records: append([]sflowtest.Record{&sflowtest.RawHeader{FrameLength: uint32(len(frame) + 4), Stripped: 4, Header: frame}}, records...),
	}}}
	return d.Bytes()
}

// sampleOf decodes a datagram of one flow sample into a keys.Sample.
type sampleOf struct {
	s keys.Sample
}

func (v *sampleOf) Flow(dg *decode.Datagram, fs *decode.FlowSample) {
	dgc, fsc := *dg, *fs // the decoder reuses its structs
	v.s = keys.Sample{Datagram: &dgc, Flow: &fsc, Packet: [2]*decode.Packet{&fsc.RawHeader.Packet}}
	if fsc.RawHeader.Inner.Layers != 0 {
		v.s.Packet[1] = &fsc.RawHeader.Inner
	}
}
func (v *sampleOf) Counter(*decode.Datagram, *decode.CounterSample) {}

// keyOf compiles the keys and returns what the datagram's one sample
// gives them, joined by commas, or "" when one is missing (the sample would
// not key the flow).
func keyOf(t *testing.T, env *keys.Env, ks string, b []byte) string {
	t.Helper()
	p, err := keys.Compile("k", keys.Definition{Keys: keys.KeyList(ks)})
	if err != nil {
		t.Fatalf("%s: %v", ks, err)
	}
	var v sampleOf
	var dec decode.Decoder
	if _, err := dec.Decode(b, &v); err != nil {
		t.Fatal(err)
	}
	v.s.Env = env
	var out []string
	for _, tok := range p.Keys {
		val := tok.Get(&v.s)
		if val.Kind == keys.Missing {
			return ""
		}
		out = append(out, string(val.AppendText(nil, env.Strings)))
	}
	return strings.Join(out, ",")
}

func TestKeys(t *testing.T) {
	vxlan := &sflowtest.Frame{Src: netip.MustParseAddr("192.168.0.1"), Dst: netip.MustParseAddr("192.168.0.2"),
		Protocol: sflowtest.ProtoUDP, SrcPort: 5555, VNI: 77, Inner: sflowtest.SynAckFrame()}
	igt := sflowtest.SynAckFrame()
	igt.SrcMAC = decode.MAC{0x00, 0xD0, 0xEF, 1, 2, 3} // an OUI the IEEE assigned to IGT
	for _, c := range []struct {
		keys, want string
		frame      *sflowtest.Frame
		out        decode.Port
	}{
		{keys: "ipsource,ipdestination", want: "10.1.1.2,10.2.2.3"},
		{keys: "ipttl,ipprotocol,ipdscp", want: "62,6,46"},
		{keys: "tcpflags", want: "000010010"},
		{keys: "inputifindex,outputifindex", want: "3,5"},
		{keys: "outputifindex", want: "internal", out: decode.Port{Value: decode.IfIndexInternal}},
		{keys: "outputifindex", want: "discard", out: decode.Port{Format: decode.PortDiscard, Value: 1}},
		{keys: "outputifindex", want: "multiple", out: decode.Port{Format: decode.PortMultiple, Value: 2}},
		{keys: "direction", want: "ingress"},
		{keys: "stack", want: "eth.ip.tcp"},
		{keys: "macsource,vlan", want: "0A0B0C0D0E0F,10"},
		{keys: "agent", want: "192.0.2.1"},
		{keys: "node:inputifindex", want: "192.0.2.1"}, // no topology, no host_descr: the agent
		{keys: "udpsourceport", want: ""},              // missing: the sample is dropped from the flow
		{keys: "or:udpsourceport:tcpsourceport", want: "40000"},
		{keys: "null:udpsourceport:none", want: "none"},
		{keys: "null:udpsourceport", want: "null"},
		{keys: "first:stack:.:ip:ip6", want: "ip"},
		{keys: "prefix:stack:.:2", want: "eth.ip"},
		{keys: "suffix:stack:.:1", want: "tcp"},
		{keys: "range:ipttl:60:64", want: "true"},
		{keys: "range:ipttl:0:10", want: "false"},
		{keys: "eq:ipsource:ipsource", want: "true"},
		{keys: `concat:\::ipsource:tcpdestinationport`, want: "10.1.1.2:443"},
		{keys: "concat:-:[prefix:stack:.:2]:ipttl", want: "eth.ip-62"},
		{keys: "link:inputifindex", want: ""},
		{keys: "ipsource.1,tcpdestinationport.1,vni,ipsource", want: "10.1.1.2,443,77,192.168.0.1", frame: vxlan},
		{keys: "stack", want: "eth.ip.udp.vxlan", frame: vxlan},
		{keys: "ipdscpname,ipflags,isbroadcast,stripped", want: "ef,000,false,4"},
		{keys: "vlansource", want: ""},                                        // no extended switch record in this sample
		{keys: "oui:macsource,oui:macdestination:name", want: "", frame: igt}, // the destination is locally administered
		{keys: "oui:macsource:name", want: "IGT", frame: igt},
		{keys: "oui:macsource", want: ""}, // 0A0B0C: locally administered
	} {
		frame := c.frame
		if frame == nil {
			frame = sflowtest.SynAckFrame()
		}
		out := c.out
		if out == (decode.Port{}) {
			out = decode.Port{Value: 5}
		}
		if got := keyOf(t, keys.NewEnv(), c.keys, oneSample(frame.Bytes(), out)); got != c.want {
			t.Errorf("%s: %q, want %q", c.keys, got, c.want)
		}
	}
}

func TestKeysFromSwitchAndRouterRecords(t *testing.T) {
	d := oneSample(sflowtest.SynAckFrame().Bytes(), decode.Port{Value: 5},
		&sflowtest.ExtendedSwitch{SrcVLAN: 10, DstVLAN: 20, SrcPriority: 3, DstPriority: 5},
		&sflowtest.ExtendedRouter{NextHop: netip.MustParseAddr("10.9.9.9"), SrcMaskLen: 24, DstMaskLen: 16})
	got := keyOf(t, keys.NewEnv(),
		"vlansource,vlandestination,prioritysource,prioritydestination,ipnexthoprouter,ipsourcemaskbits,ipdestinationmaskbits", d)
	if want := "10,20,3,5,10.9.9.9,24,16"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestICMPKeys(t *testing.T) {
	quotedUDP := (&sflowtest.Frame{Src: netip.MustParseAddr("10.1.1.2"), Dst: netip.MustParseAddr("10.9.9.9"),
		Protocol: sflowtest.ProtoUDP, SrcPort: 5000, DstPort: 53}).Bytes()[14 : 14+28]
	for _, c := range []struct {
		typ, code uint8
		keys      string
		want      string
	}{
		{3, 3, "icmpunreachableport,icmpunreachableprotocol", ""}, // one of them is always missing
		{3, 3, "icmpunreachableport", "53"},
		{3, 2, "icmpunreachableprotocol", "17"},
		{3, 1, "icmpunreachablehost", "10.9.9.9"},
		{3, 0, "icmpunreachablenet", "10.9.9.9"},
		{3, 0, "icmpunreachablehost", ""},
		{8, 0, "icmptype,icmpseqno", "8,0"},
	} {
		outer := &sflowtest.Frame{Src: netip.MustParseAddr("10.255.0.1"), Dst: netip.MustParseAddr("10.1.1.2"),
			Protocol: sflowtest.ProtoICMP, ICMPType: c.typ, ICMPCode: c.code}
		hdr := append(outer.Bytes(), quotedUDP...)
		if got := keyOf(t, keys.NewEnv(), c.keys, oneSample(hdr, decode.Port{Value: 5})); got != c.want {
			t.Errorf("type %d code %d %s: %q, want %q", c.typ, c.code, c.keys, got, c.want)
		}
	}
}
