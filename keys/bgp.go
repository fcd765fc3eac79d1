package keys

import (
	"net/netip"
	"strconv"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Route is what a RIB says of an address, for the bgp* keys. Its slices
// belong to the RIB and are only read.
type Route struct {
	Prefix      netip.Prefix
	NextHop     netip.Addr
	Peer        netip.Addr // the neighbour that announced it: a container's leaf or host
	PeerID      netip.Addr // the neighbour's router id, often its sFlow agent address
	ASPath      []uint32
	Communities []uint32
}

// Routes looks addresses up in a RIB. It must not allocate or block: it is
// called on the hot path, once per sample per bgp key.
type Routes interface {
	RouteOf(a netip.Addr) (Route, bool)
}

// Countries answers the country: key: an address's ISO 3166 code
// (package geoip's DB is one).
type Countries interface {
	Country(a netip.Addr) (string, bool)
}

// bgpKeys read the RIB's view of a sample's source or destination. Where a
// sample carries an extended gateway record, its values win, as in sFlow-RT.
var bgpKeys = map[string]func(s *Sample) Value{
	"bgpnexthop": func(s *Sample) Value {
		if s.Flow.Records&decode.HasExtendedGateway != 0 && s.Flow.Gateway.NextHop.IsValid() {
			return AddrValue(s.Flow.Gateway.NextHop)
		}
		if r, ok := s.route(true); ok {
			return AddrValue(r.NextHop)
		}
		return Value{}
	},
	"bgpdestinationprefix": func(s *Sample) Value { return s.prefix(true) },
	"bgpsourceprefix":      func(s *Sample) Value { return s.prefix(false) },
	"bgpdestinationas": func(s *Sample) Value {
		if s.Flow.Records&decode.HasExtendedGateway != 0 {
			if as := s.Flow.Gateway.DstAS(); as != 0 {
				return NumValue(uint64(as))
			}
		}
		return s.originAS(true)
	},
	"bgpsourceas": func(s *Sample) Value {
		if s.Flow.Records&decode.HasExtendedGateway != 0 && s.Flow.Gateway.SrcAS != 0 {
			return NumValue(uint64(s.Flow.Gateway.SrcAS))
		}
		return s.originAS(false)
	},
	"bgpdestinationaspath": func(s *Sample) Value {
		path := s.Env.u32[:0]
		if s.Flow.Records&decode.HasExtendedGateway != 0 {
			path = s.Flow.Gateway.AppendASPath(path)
		} else if r, ok := s.route(true); ok {
			path = append(path, r.ASPath...)
		} else {
			return Value{}
		}
		s.Env.u32 = path
		return s.Env.joinUint32(path, ' ', false)
	},
	"bgpcommunities": func(s *Sample) Value {
		comms := s.Env.u32[:0]
		if s.Flow.Records&decode.HasExtendedGateway != 0 {
			comms = s.Flow.Gateway.AppendCommunities(comms)
		} else if r, ok := s.route(true); ok {
			comms = append(comms, r.Communities...)
		} else {
			return Value{}
		}
		s.Env.u32 = comms
		if len(comms) == 0 {
			return Value{}
		}
		return s.Env.joinUint32(comms, ' ', true)
	},
	"bgpdestinationpeer": func(s *Sample) Value {
		if r, ok := s.route(true); ok {
			return AddrValue(r.Peer)
		}
		return Value{}
	},
	"bgpsourcepeer": func(s *Sample) Value {
		if r, ok := s.route(false); ok {
			return AddrValue(r.Peer)
		}
		return Value{}
	},
}

// route looks up the sample's destination (or source) address.
func (s *Sample) route(dst bool) (Route, bool) {
	if s.Env.Routes == nil {
		return Route{}, false
	}
	p := s.Packet[0]
	if p == nil || p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return Route{}, false
	}
	a := p.Src
	if dst {
		a = p.Dst
	}
	return s.Env.Routes.RouteOf(a)
}

func (s *Sample) prefix(dst bool) Value {
	r, ok := s.route(dst)
	if !ok {
		return Value{}
	}
	v := AddrValue(r.Prefix.Addr())
	v.Kind = PrefixKind(v.Kind)
	v.Bits = uint8(r.Prefix.Bits())
	return v
}

func (s *Sample) originAS(dst bool) Value {
	r, ok := s.route(dst)
	if !ok || len(r.ASPath) == 0 {
		return Value{}
	}
	return NumValue(uint64(r.ASPath[len(r.ASPath)-1]))
}

// joinUint32 renders AS numbers ("65101 65000") or communities
// ("65101:1 65101:2") as an interned string.
func (e *Env) joinUint32(list []uint32, sep byte, community bool) Value {
	b := e.scratch[:0]
	for i, n := range list {
		if i > 0 {
			b = append(b, sep)
		}
		if community {
			b = strconv.AppendUint(b, uint64(n>>16), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(n&0xFFFF), 10)
			continue
		}
		b = strconv.AppendUint(b, uint64(n), 10)
	}
	e.scratch = b
	return e.strBytes(b)
}
