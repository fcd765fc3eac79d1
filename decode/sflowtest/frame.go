package sflowtest

import (
	"encoding/binary"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/decode"
)

// IP protocol numbers a Frame can carry.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Frame describes an Ethernet frame to write as a sampled header: Ethernet
// with up to two VLAN tags, IPv4 or IPv6 (by Src's family), and TCP, UDP,
// ICMP or ICMPv6. Fields left zero take plain defaults.
type Frame struct {
	SrcMAC, DstMAC decode.MAC
	VLANs          []uint16 // outer first; two tags make a QinQ frame
	Priority       uint8    // outer 802.1p priority

	Src, Dst   netip.Addr
	Protocol   uint8
	TTL        uint8
	DSCP, ECN  uint8
	FragFlags  uint8   // decode.FlagMoreFragments, decode.FlagDontFragment
	FragOffset uint16  // in 8-byte units
	IPOptions  []byte  // IPv4 options, a multiple of 4 bytes
	ExtHeaders []uint8 // IPv6 extension headers to insert, by type (0, 43, 60; 44 uses FragOffset)
	FlowLabel  uint32
	IPLength   uint16 // the IP length to claim; 0 means what is written

	SrcPort, DstPort   uint16
	TCPFlags           uint16
	ICMPType, ICMPCode uint8

	VNI   uint32 // with Inner: a VXLAN header with this VNI on UDP 4789
	Inner *Frame
	Pad   int // payload bytes after the transport header
}

// Append writes the frame onto b.
func (f *Frame) Append(b []byte) []byte {
	b = append(b, f.DstMAC[:]...)
	b = append(b, f.SrcMAC[:]...)
	for i, v := range f.VLANs {
		tpid := uint16(0x8100)
		if i == 0 && len(f.VLANs) > 1 {
			tpid = 0x88A8
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		tci := v & 0x0FFF
		if i == 0 {
			tci |= uint16(f.Priority) << 13
		}
		b = binary.BigEndian.AppendUint16(b, tci)
	}
	if f.Src.Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		return f.appendIPv4(b)
	}
	b = binary.BigEndian.AppendUint16(b, 0x86DD)
	return f.appendIPv6(b)
}

// Bytes writes the frame into a new slice.
func (f *Frame) Bytes() []byte { return f.Append(nil) }

func (f *Frame) ttl() uint8 {
	if f.TTL == 0 {
		return 64
	}
	return f.TTL
}

func (f *Frame) appendIPv4(b []byte) []byte {
	at := len(b)
	ihl := 5 + len(f.IPOptions)/4
	b = append(b, byte(0x40|ihl), f.DSCP<<2|f.ECN&3, 0, 0, 0x12, 0x34)
	b = binary.BigEndian.AppendUint16(b, uint16(f.FragFlags&3)<<13|f.FragOffset&0x1FFF)
	b = append(b, f.ttl(), f.Protocol, 0, 0)
	s, d := f.Src.As4(), f.Dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = append(b, f.IPOptions...)
	if f.FragOffset == 0 {
		b = f.appendL4(b)
	}
	b = append(b, make([]byte, f.Pad)...)
	n := f.IPLength
	if n == 0 {
		n = uint16(len(b) - at)
	}
	binary.BigEndian.PutUint16(b[at+2:], n)
	binary.BigEndian.PutUint16(b[at+10:], checksum(b[at:at+ihl*4]))
	return b
}

func (f *Frame) appendIPv6(b []byte) []byte {
	at := len(b)
	tc := uint32(f.DSCP<<2 | f.ECN&3)
	b = binary.BigEndian.AppendUint32(b, 6<<28|tc<<20|f.FlowLabel&0xFFFFF)
	b = append(b, 0, 0, 0, f.ttl())
	s, d := f.Src.As16(), f.Dst.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	next := &b[at+6]
	for _, t := range f.ExtHeaders {
		*next = t
		h := len(b)
		b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
		if t == 44 {
			mf := uint16(0)
			if f.FragFlags&decode.FlagMoreFragments != 0 {
				mf = 1
			}
			binary.BigEndian.PutUint16(b[h+2:], f.FragOffset<<3|mf)
		}
		next = &b[h]
	}
	*next = f.Protocol
	if f.FragOffset == 0 {
		b = f.appendL4(b)
	}
	b = append(b, make([]byte, f.Pad)...)
	n := f.IPLength
	if n == 0 {
		n = uint16(len(b) - at)
	}
	binary.BigEndian.PutUint16(b[at+4:], n-40)
	return b
}

func (f *Frame) appendL4(b []byte) []byte {
	switch f.Protocol {
	case ProtoTCP:
		b = binary.BigEndian.AppendUint16(b, f.SrcPort)
		b = binary.BigEndian.AppendUint16(b, f.DstPort)
		b = append(b, 0, 0, 0, 1, 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, 5<<12|f.TCPFlags&0x01FF)
		b = append(b, 0xFF, 0xFF, 0, 0, 0, 0)
	case ProtoUDP:
		dport := f.DstPort
		if f.Inner != nil {
			dport = 4789
		}
		b = binary.BigEndian.AppendUint16(b, f.SrcPort)
		b = binary.BigEndian.AppendUint16(b, dport)
		b = append(b, 0, 8, 0, 0)
		if f.Inner != nil {
			b = append(b, 0x08, 0, 0, 0)
			b = binary.BigEndian.AppendUint32(b, f.VNI<<8)
			b = f.Inner.Append(b)
		}
	case ProtoICMP, ProtoICMPv6:
		b = append(b, f.ICMPType, f.ICMPCode, 0, 0, 0, 0, 0, 0)
	}
	return b
}

func checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xFFFF {
		sum = sum>>16 + sum&0xFFFF
	}
	return ^uint16(sum)
}

// SynAckFrame is the tests' everyday packet: 10.1.1.2:40000 ->
// 10.2.2.3:443, a TCP SYN ACK, TTL 62, DSCP 46 (ef), in VLAN 10, from a
// locally administered MAC.
func SynAckFrame() *Frame {
	return &Frame{SrcMAC: decode.MAC{0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}, DstMAC: decode.MAC{2, 0, 0, 0, 0, 1},
		VLANs: []uint16{10}, Src: netip.MustParseAddr("10.1.1.2"), Dst: netip.MustParseAddr("10.2.2.3"),
		Protocol: ProtoTCP, TTL: 62, DSCP: 46, SrcPort: 40000, DstPort: 443, TCPFlags: 0x12, Pad: 40}
}
