package decode

import (
	"encoding/hex"
	"math"
	"net/netip"
)

// MAC is an Ethernet address held by value, so a Packet needs no allocation.
type MAC [6]byte

// String formats the MAC as sFlow-RT does: twelve lower-case hex digits.
func (m MAC) String() string { return hex.EncodeToString(m[:]) }

// Layers reports which headers of a Packet were found and parsed whole.
type Layers uint8

// The layers a Packet can hold.
const (
	LayerEthernet Layers = 1 << iota
	LayerIPv4
	LayerIPv6
	LayerTCP
	LayerUDP
	LayerICMP
	LayerICMPv6
	LayerVXLAN
)

// IP fragment flags, as in the IPv4 header's flags field.
const (
	FlagMoreFragments = 1
	FlagDontFragment  = 2
)

// Packet is a sampled packet header, parsed in place. Fields of layers not in
// Layers are zero.
type Packet struct {
	Layers    Layers
	Truncated bool // a header was cut short by the snap length

	SrcMAC, DstMAC MAC
	VLAN           uint16 // outer 802.1Q (or 802.1ad) VLAN id; 0 if untagged
	InnerVLAN      uint16 // inner VLAN id of a QinQ frame
	Priority       uint8  // outer 802.1p priority
	EtherType      uint16 // the ethertype after any VLAN tags

	Src, Dst    netip.Addr
	Protocol    uint8 // IPv4 protocol or IPv6 next header after extension headers
	TTL         uint8 // IPv4 TTL or IPv6 hop limit
	DSCP, ECN   uint8
	FragFlags   uint8  // FlagMoreFragments, FlagDontFragment
	FragOffset  uint16 // in 8-byte units; non-zero means no L4 header here
	IPLength    uint16 // IPv4 total length, or IPv6 payload length + 40
	FlowLabel   uint32 // IPv6 only
	SrcPort     uint16
	DstPort     uint16
	TCPFlags    uint16 // including NS, CWR, ECE
	ICMPType    uint8
	ICMPCode    uint8
	ICMPSeq     uint16 // echo request and reply only
	L4Offset    int    // where the transport header starts in the bytes parsed; 0 without one
	VNI         uint32 // VXLAN network identifier, when LayerVXLAN is set
	PayloadSize int    // bytes of the header left after the last parsed layer
}

// Ethertypes and IP protocols the parser follows.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86DD
	etherVLAN  = 0x8100
	etherQinQ  = 0x88A8
	etherQinQ2 = 0x9100

	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
	protoICMPv6   = 58
	ipv6HopByHop  = 0
	ipv6Routing   = 43
	ipv6Fragment  = 44
	ipv6DestOpts  = 60
	vxlanUDPPort  = 4789
	maxIPv6ExtHdr = 8 // extension headers followed before giving up
)

// ParsePacket parses a sampled header of the given header protocol
// (HeaderEthernet, HeaderIPv4 or HeaderIPv6) into p, and the frame a VXLAN
// header carries, if any, into inner. It never fails: it fills what the bytes
// hold and sets Truncated when a header is cut short.
func ParsePacket(protocol uint32, b []byte, p, inner *Packet) {
	*p = Packet{}
	var rest []byte
	switch protocol {
	case HeaderEthernet:
		rest = p.parseEthernet(b)
	case HeaderIPv4:
		rest = p.parseIPv4(b)
	case HeaderIPv6:
		rest = p.parseIPv6(b)
	default:
		p.PayloadSize = len(b)
		return
	}
	p.L4Offset = l4Offset(p.L4Offset, b)
	if p.Layers&LayerVXLAN != 0 && inner != nil {
		*inner = Packet{}
		inner.parseEthernet(rest)
		inner.L4Offset = l4Offset(inner.L4Offset, rest)
	}
}

func (p *Packet) parseEthernet(b []byte) []byte {
	if len(b) < 14 {
		p.Truncated = true
		p.PayloadSize = len(b)
		return nil
	}
	copy(p.DstMAC[:], b[0:6])
	copy(p.SrcMAC[:], b[6:12])
	p.Layers |= LayerEthernet
	et := be16(b[12:])
	b = b[14:]
	for tags := 0; (et == etherVLAN || et == etherQinQ || et == etherQinQ2) && tags < 2; tags++ {
		if len(b) < 4 {
			p.Truncated = true
			p.PayloadSize = len(b)
			return nil
		}
		tci := be16(b)
		if tags == 0 {
			p.VLAN = tci & 0x0FFF
			p.Priority = uint8(tci >> 13)
		} else {
			p.InnerVLAN = tci & 0x0FFF
		}
		et = be16(b[2:])
		b = b[4:]
	}
	p.EtherType = et
	switch et {
	case etherIPv4:
		return p.parseIPv4(b)
	case etherIPv6:
		return p.parseIPv6(b)
	}
	p.PayloadSize = len(b)
	return nil
}

func (p *Packet) parseIPv4(b []byte) []byte {
	if len(b) < 20 || b[0]>>4 != 4 {
		p.Truncated = len(b) < 20
		p.PayloadSize = len(b)
		return nil
	}
	ihl := int(b[0]&0x0F) * 4
	if ihl < 20 || len(b) < ihl {
		p.Truncated = len(b) < ihl
		p.PayloadSize = len(b)
		return nil
	}
	p.Layers |= LayerIPv4
	p.DSCP = b[1] >> 2
	p.ECN = b[1] & 3
	p.IPLength = be16(b[2:])
	frag := be16(b[6:])
	p.FragFlags = uint8(frag>>13) & 3
	p.FragOffset = frag & 0x1FFF
	p.TTL = b[8]
	p.Protocol = b[9]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	return p.parseL4(b[ihl:])
}

func (p *Packet) parseIPv6(b []byte) []byte {
	if len(b) < 40 || b[0]>>4 != 6 {
		p.Truncated = len(b) < 40
		p.PayloadSize = len(b)
		return nil
	}
	p.Layers |= LayerIPv6
	tc := uint8(be16(b) >> 4)
	p.DSCP = tc >> 2
	p.ECN = tc & 3
	p.FlowLabel = be32(b) & 0x000FFFFF
	p.IPLength = be16(b[4:]) + 40
	p.TTL = b[7]
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	next := b[6]
	b = b[40:]
walk:
	for i := 0; i < maxIPv6ExtHdr; i++ {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
			if len(b) < 8 || len(b) < 8+int(b[1])*8 {
				p.Protocol = next
				p.Truncated = true
				p.PayloadSize = len(b)
				return nil
			}
			next, b = b[0], b[8+int(b[1])*8:]
			continue
		case ipv6Fragment:
			if len(b) < 8 {
				p.Protocol = next
				p.Truncated = true
				p.PayloadSize = len(b)
				return nil
			}
			off := be16(b[2:])
			p.FragOffset = off >> 3
			p.FragFlags = uint8(off & 1) // M flag
			next, b = b[0], b[8:]
			continue
		}
		break walk
	}
	p.Protocol = next
	return p.parseL4(b)
}

// parseL4 reads the transport header; it returns a VXLAN payload if one follows.
// isEcho reports ICMP echo request or reply (ICMPv6: 128, 129).
func isEcho(proto, typ uint8) bool {
	if proto == protoICMP {
		return typ == 0 || typ == 8
	}
	return typ == 128 || typ == 129
}

// l4Offset turns what parseL4 left in L4Offset, minus the capacity of the
// transport header's slice, into its offset in b, of which it is a tail.
func l4Offset(mark int, b []byte) int {
	if mark >= 0 {
		return 0
	}
	return cap(b) + mark
}

func (p *Packet) parseL4(b []byte) []byte {
	p.PayloadSize = len(b)
	if p.FragOffset != 0 {
		return nil // a later fragment carries no transport header
	}
	p.L4Offset = -cap(b)
	switch p.Protocol {
	case protoTCP:
		if len(b) < 20 {
			p.Truncated = true
			return nil
		}
		p.Layers |= LayerTCP
		p.SrcPort, p.DstPort = be16(b), be16(b[2:])
		p.TCPFlags = be16(b[12:]) & 0x01FF
		if off := int(b[12]>>4) * 4; off >= 20 && off <= len(b) {
			p.PayloadSize = len(b) - off
		} else {
			p.PayloadSize = 0
		}
	case protoUDP:
		if len(b) < 8 {
			p.Truncated = true
			return nil
		}
		p.Layers |= LayerUDP
		p.SrcPort, p.DstPort = be16(b), be16(b[2:])
		p.PayloadSize = len(b) - 8
		if p.DstPort == vxlanUDPPort && len(b) >= 16 && b[8]&0x08 != 0 {
			p.Layers |= LayerVXLAN
			p.VNI = be32(b[12:]) >> 8
			return b[16:]
		}
	case protoICMP, protoICMPv6:
		if len(b) < 4 {
			p.Truncated = true
			return nil
		}
		if p.Protocol == protoICMP {
			p.Layers |= LayerICMP
		} else {
			p.Layers |= LayerICMPv6
		}
		p.ICMPType, p.ICMPCode = b[0], b[1]
		p.PayloadSize = len(b) - 4
		if isEcho(p.Protocol, p.ICMPType) && len(b) >= 8 {
			p.ICMPSeq = be16(b[6:])
		}
	}
	return nil
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

// bef32 reads an XDR float: an IEEE 754 single, big-endian.
func bef32(b []byte) float32 { return math.Float32frombits(be32(b)) }
