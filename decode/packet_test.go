package decode_test

import (
	"net/netip"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

func TestParsePacket(t *testing.T) {
	a4, b4 := netip.MustParseAddr("10.1.1.2"), netip.MustParseAddr("172.16.1.20")
	outerA, outerB := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	tcp := sflowtest.Frame{SrcMAC: macA, DstMAC: macB, Src: a4, Dst: b4, Protocol: sflowtest.ProtoTCP,
		TTL: 62, DSCP: 46, ECN: 1, SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, FragFlags: decode.FlagDontFragment, Pad: 1000}
	with := func(f sflowtest.Frame, edit func(*sflowtest.Frame)) sflowtest.Frame { edit(&f); return f }

	tests := []struct {
		name  string
		proto uint32
		frame sflowtest.Frame
		snap  int
		want  decode.Packet
		inner *decode.Packet
	}{
		{"ethernet ipv4 tcp", decode.HeaderEthernet, tcp, 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerTCP, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800,
			Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment, IPLength: 1040,
			SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, PayloadSize: 128 - 54}, nil},
		{"802.1Q", decode.HeaderEthernet, with(tcp, func(f *sflowtest.Frame) { f.VLANs = []uint16{100}; f.Priority = 5 }), 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerTCP, SrcMAC: macA, DstMAC: macB, VLAN: 100, Priority: 5,
			EtherType: 0x0800, Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment,
			IPLength: 1040, SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, PayloadSize: 128 - 58}, nil},
		{"QinQ", decode.HeaderEthernet, with(tcp, func(f *sflowtest.Frame) { f.VLANs = []uint16{200, 300} }), 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerTCP, SrcMAC: macA, DstMAC: macB, VLAN: 200, InnerVLAN: 300,
			EtherType: 0x0800, Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment,
			IPLength: 1040, SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, PayloadSize: 128 - 62}, nil},
		{"ipv4 options", decode.HeaderEthernet, with(tcp, func(f *sflowtest.Frame) { f.IPOptions = []byte{1, 1, 1, 0, 1, 1, 1, 0} }), 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerTCP, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800,
			Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment, IPLength: 1048,
			SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, PayloadSize: 128 - 62}, nil},
		{"ipv4 later fragment", decode.HeaderEthernet, with(tcp, func(f *sflowtest.Frame) { f.FragFlags = decode.FlagMoreFragments; f.FragOffset = 185 }), 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800,
			Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagMoreFragments, FragOffset: 185, IPLength: 1020,
			PayloadSize: 128 - 34}, nil},
		{"ipv4 header protocol, udp", decode.HeaderIPv4, sflowtest.Frame{Src: a4, Dst: b4, Protocol: sflowtest.ProtoUDP, TTL: 9, SrcPort: 53, DstPort: 5353, Pad: 20}, 128, decode.Packet{
			Layers: decode.LayerIPv4 | decode.LayerUDP, Src: a4, Dst: b4, Protocol: 17, TTL: 9, IPLength: 48, SrcPort: 53, DstPort: 5353, PayloadSize: 20}, nil},
		{"icmp", decode.HeaderEthernet, sflowtest.Frame{Src: a4, Dst: b4, Protocol: sflowtest.ProtoICMP, ICMPType: 8, Pad: 56}, 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerICMP, EtherType: 0x0800, Src: a4, Dst: b4, Protocol: 1, TTL: 64,
			IPLength: 84, ICMPType: 8, PayloadSize: 60}, nil},
		{"ipv6 extension headers, tcp", decode.HeaderEthernet, sflowtest.Frame{Src: src6, Dst: dst6, Protocol: sflowtest.ProtoTCP, TTL: 61,
			FlowLabel: 0xABCDE, DSCP: 10, ExtHeaders: []uint8{0, 43, 44, 60}, SrcPort: 1, DstPort: 2, TCPFlags: 2}, 200, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv6 | decode.LayerTCP, EtherType: 0x86DD, Src: src6, Dst: dst6, Protocol: 6, TTL: 61,
			DSCP: 10, FlowLabel: 0xABCDE, IPLength: 40 + 32 + 20, SrcPort: 1, DstPort: 2, TCPFlags: 2}, nil},
		{"ipv6 later fragment", decode.HeaderIPv6, sflowtest.Frame{Src: src6, Dst: dst6, Protocol: sflowtest.ProtoUDP, TTL: 5,
			ExtHeaders: []uint8{44}, FragOffset: 100, FragFlags: decode.FlagMoreFragments, Pad: 16}, 128, decode.Packet{
			Layers: decode.LayerIPv6, Src: src6, Dst: dst6, Protocol: 17, TTL: 5, FragOffset: 100, FragFlags: decode.FlagMoreFragments,
			IPLength: 40 + 8 + 16, PayloadSize: 16}, nil},
		{"icmpv6", decode.HeaderEthernet, sflowtest.Frame{Src: src6, Dst: dst6, Protocol: sflowtest.ProtoICMPv6, ICMPType: 128, TTL: 255}, 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv6 | decode.LayerICMPv6, EtherType: 0x86DD, Src: src6, Dst: dst6, Protocol: 58,
			TTL: 255, IPLength: 48, ICMPType: 128, PayloadSize: 4}, nil},
		{"vxlan", decode.HeaderEthernet, sflowtest.Frame{Src: outerA, Dst: outerB, Protocol: sflowtest.ProtoUDP, TTL: 63, SrcPort: 49152,
			VNI: 10100, Inner: &tcp}, 128, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerUDP | decode.LayerVXLAN, EtherType: 0x0800, Src: outerA, Dst: outerB,
			Protocol: 17, TTL: 63, IPLength: 20 + 8 + 8 + 14 + 1040, SrcPort: 49152, DstPort: 4789, VNI: 10100, PayloadSize: 128 - 42},
			&decode.Packet{Layers: decode.LayerEthernet | decode.LayerIPv4 | decode.LayerTCP, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800,
				Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment, IPLength: 1040,
				SrcPort: 40000, DstPort: 9999, TCPFlags: 0x1C2, PayloadSize: 128 - 50 - 54}},
		{"cut in the tcp header", decode.HeaderEthernet, tcp, 14 + 20 + 10, decode.Packet{
			Layers: decode.LayerEthernet | decode.LayerIPv4, Truncated: true, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800,
			Src: a4, Dst: b4, Protocol: 6, TTL: 62, DSCP: 46, ECN: 1, FragFlags: decode.FlagDontFragment, IPLength: 1040, PayloadSize: 10}, nil},
		{"cut in the ip header", decode.HeaderEthernet, tcp, 14 + 12, decode.Packet{
			Layers: decode.LayerEthernet, Truncated: true, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800, PayloadSize: 12}, nil},
		{"cut in the ethernet header", decode.HeaderEthernet, tcp, 10, decode.Packet{Truncated: true, PayloadSize: 10}, nil},
		{"arp", decode.HeaderEthernet, tcp, 0, decode.Packet{}, nil}, // replaced below
	}
	arp := append(append(append([]byte{}, macB[:]...), macA[:]...), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := header(tc.frame, tc.snap)
			if tc.proto != decode.HeaderEthernet {
				b = b[14:] // an IP header protocol starts at the IP header
			}
			want := tc.want
			if tc.name == "arp" {
				b = arp
				want = decode.Packet{Layers: decode.LayerEthernet, SrcMAC: macA, DstMAC: macB, EtherType: 0x0806, PayloadSize: 28}
			}
			var p, inner decode.Packet
			decode.ParsePacket(tc.proto, b, &p, &inner)
			// The transport header sits at L4Offset: its first bytes are the
			// source port, or the ICMP type.
			if l := p.L4Offset; p.Layers&(decode.LayerTCP|decode.LayerUDP) != 0 &&
				(l == 0 || int(b[l])<<8|int(b[l+1]) != int(p.SrcPort)) ||
				p.Layers&(decode.LayerICMP|decode.LayerICMPv6) != 0 && (l == 0 || b[l] != p.ICMPType) {
				t.Errorf("transport header not at L4Offset %d", l)
			}
			p.L4Offset, inner.L4Offset = 0, 0
			if p != want {
				t.Errorf("\n got %+v\nwant %+v", p, want)
			}
			if tc.inner != nil && inner != *tc.inner {
				t.Errorf("inner\n got %+v\nwant %+v", inner, *tc.inner)
			}
		})
	}
}

func TestMACString(t *testing.T) {
	if s := (decode.MAC{0x02, 0xab, 0, 0, 0, 0x0a}).String(); s != "02ab0000000a" {
		t.Errorf("got %q", s)
	}
}

func TestICMPEchoSequence(t *testing.T) {
	for _, tc := range []struct {
		proto, typ byte
		seq        uint16
	}{{1, 8, 0x0102}, {1, 0, 7}, {58, 128, 300}, {1, 3, 0}} {
		ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, tc.proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
		icmp := []byte{tc.typ, 0, 0, 0, 0, 9, byte(tc.seq >> 8), byte(tc.seq)}
		var p decode.Packet
		if tc.proto == 58 {
			ip6 := make([]byte, 40)
			ip6[0], ip6[6], ip6[7] = 0x60, 58, 64
			ip6[5] = 8
			decode.ParsePacket(decode.HeaderIPv6, append(ip6, icmp...), &p, nil)
		} else {
			decode.ParsePacket(decode.HeaderIPv4, append(ip, icmp...), &p, nil)
		}
		if p.ICMPType != tc.typ || p.ICMPSeq != tc.seq {
			t.Errorf("type %d: seq %d, want %d", tc.typ, p.ICMPSeq, tc.seq)
		}
	}
}
