package keys

import (
	"math"
	"math/bits"
	"strings"

	"github.com/fabrictrace/fabrictrace/decode"
)

// What /flowkeys/json lists: the base keys that recent samples could give,
// known from which headers, records and sample kinds the engine last saw
// and when. A batch ORs its samples' kinds into one mask, so this costs a
// few instructions a sample.
const (
	seenOuter   = 0  // bits 0-7: the outer frame's decode.Layers
	seenInner   = 8  // bits 8-15: the VXLAN inner frame's
	seenSwitch  = 16 // an extended switch record
	seenRouter  = 17 // an extended router record
	seenGateway = 18 // an extended gateway record
	seenSample  = 19 // any packet sample
	seenDrop    = 20 // a discarded-packet event
	nSeen       = 21
)

// SampleKinds is what one sample shows of the kinds above.
func SampleKinds(fs *decode.FlowSample) uint32 {
	k := uint32(1) << seenSample
	if fs.Format == decode.FormatDiscardedPacket {
		k = 1 << seenDrop
	}
	if fs.Records&decode.HasRawHeader != 0 {
		k |= uint32(fs.RawHeader.Packet.Layers)<<seenOuter | uint32(fs.RawHeader.Inner.Layers)<<seenInner
	}
	if fs.Records&decode.HasExtendedSwitch != 0 {
		k |= 1 << seenSwitch
	}
	if fs.Records&decode.HasExtendedRouter != 0 {
		k |= 1 << seenRouter
	}
	if fs.Records&decode.HasExtendedGateway != 0 {
		k |= 1 << seenGateway
	}
	return k
}

// Seen is when each kind of header, record and sample was last seen.
type Seen struct {
	at   [nSeen]float64
	ever uint32 // the kinds seen at all
}

// Note records that the kinds in mask (SampleKinds') were seen now.
func (e *Seen) Note(mask uint32, now float64) {
	e.ever |= mask
	for mask != 0 {
		b := bits.TrailingZeros32(mask)
		e.at[b] = now
		mask &^= 1 << b
	}
}

// keyKinds says which kinds give a base key (any of them will do); the
// ".1" keys read the inner frame.
func keyKinds(name string) uint32 {
	base, inner := strings.CutSuffix(name, ".1")
	layer := func(l decode.Layers) uint32 {
		if inner {
			return uint32(l) << seenInner
		}
		return uint32(l) << seenOuter
	}
	if inner && !baseKeys[base].layered {
		return 0 // only header keys have an inner-frame form
	}
	switch base {
	case "agent", "inputifindex", "outputifindex", "direction", "bytes", "stack", "stripped":
		return 1<<seenSample | 1<<seenDrop
	case "reason":
		return 1 << seenDrop
	case "vlansource", "vlandestination", "prioritysource", "prioritydestination":
		return 1 << seenSwitch
	case "ipnexthoprouter", "ipsourcemaskbits", "ipdestinationmaskbits":
		return 1 << seenRouter
	case "vni":
		return layer(decode.LayerVXLAN)
	}
	switch {
	case strings.HasPrefix(base, "mac"), strings.HasPrefix(base, "ethernet"), base == "vlan", base == "priority",
		base == "isbroadcast":
		return layer(decode.LayerEthernet)
	case strings.HasPrefix(base, "ip6"):
		return layer(decode.LayerIPv6)
	case strings.HasPrefix(base, "ip"):
		return layer(decode.LayerIPv4)
	case strings.HasPrefix(base, "tcp"):
		return layer(decode.LayerTCP)
	case strings.HasPrefix(base, "udp"):
		return layer(decode.LayerUDP)
	case strings.HasPrefix(base, "icmp"):
		return layer(decode.LayerICMP | decode.LayerICMPv6)
	}
	return 0
}

// Keys adds to out the base keys (and their ".1" forms) that the kinds
// seen could give, with the ms since the freshest of their kinds was seen.
func (e *Seen) Keys(out map[string]int64, now float64) {
	for name := range baseKeys {
		for _, key := range []string{name, name + ".1"} {
			mask, last := keyKinds(key)&e.ever, math.Inf(-1)
			if mask == 0 {
				continue
			}
			for mask != 0 {
				b := bits.TrailingZeros32(mask)
				last = max(last, e.at[b])
				mask &^= 1 << b
			}
			ago := int64((now - last) * 1000)
			if was, ok := out[key]; !ok || ago < was {
				out[key] = ago
			}
		}
	}
}
