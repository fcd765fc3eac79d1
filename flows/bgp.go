package flows

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
var bgpKeys = map[string]func(s *sample) value{
	"bgpnexthop": func(s *sample) value {
		if s.fs.Records&decode.HasExtendedGateway != 0 && s.fs.Gateway.NextHop.IsValid() {
			return addrValue(s.fs.Gateway.NextHop)
		}
		if r, ok := s.route(true); ok {
			return addrValue(r.NextHop)
		}
		return value{}
	},
	"bgpdestinationprefix": func(s *sample) value { return s.prefix(true) },
	"bgpsourceprefix":      func(s *sample) value { return s.prefix(false) },
	"bgpdestinationas": func(s *sample) value {
		if s.fs.Records&decode.HasExtendedGateway != 0 {
			if as := s.fs.Gateway.DstAS(); as != 0 {
				return numValue(uint64(as))
			}
		}
		return s.originAS(true)
	},
	"bgpsourceas": func(s *sample) value {
		if s.fs.Records&decode.HasExtendedGateway != 0 && s.fs.Gateway.SrcAS != 0 {
			return numValue(uint64(s.fs.Gateway.SrcAS))
		}
		return s.originAS(false)
	},
	"bgpdestinationaspath": func(s *sample) value {
		path := s.e.u32[:0]
		if s.fs.Records&decode.HasExtendedGateway != 0 {
			path = s.fs.Gateway.AppendASPath(path)
		} else if r, ok := s.route(true); ok {
			path = append(path, r.ASPath...)
		} else {
			return value{}
		}
		s.e.u32 = path
		return s.e.joinUint32(path, ' ', false)
	},
	"bgpcommunities": func(s *sample) value {
		comms := s.e.u32[:0]
		if s.fs.Records&decode.HasExtendedGateway != 0 {
			comms = s.fs.Gateway.AppendCommunities(comms)
		} else if r, ok := s.route(true); ok {
			comms = append(comms, r.Communities...)
		} else {
			return value{}
		}
		s.e.u32 = comms
		if len(comms) == 0 {
			return value{}
		}
		return s.e.joinUint32(comms, ' ', true)
	},
	"bgpdestinationpeer": func(s *sample) value {
		if r, ok := s.route(true); ok {
			return addrValue(r.Peer)
		}
		return value{}
	},
	"bgpsourcepeer": func(s *sample) value {
		if r, ok := s.route(false); ok {
			return addrValue(r.Peer)
		}
		return value{}
	},
}

// route looks up the sample's destination (or source) address.
func (s *sample) route(dst bool) (Route, bool) {
	if s.e.cfg.Routes == nil {
		return Route{}, false
	}
	p := s.packet[0]
	if p == nil || p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return Route{}, false
	}
	a := p.Src
	if dst {
		a = p.Dst
	}
	return s.e.cfg.Routes.RouteOf(a)
}

func (s *sample) prefix(dst bool) value {
	r, ok := s.route(dst)
	if !ok {
		return value{}
	}
	v := addrValue(r.Prefix.Addr())
	v.kind = prefixKind(v.kind)
	v.bits = uint8(r.Prefix.Bits())
	return v
}

func (s *sample) originAS(dst bool) value {
	r, ok := s.route(dst)
	if !ok || len(r.ASPath) == 0 {
		return value{}
	}
	return numValue(uint64(r.ASPath[len(r.ASPath)-1]))
}

// joinUint32 renders AS numbers ("65101 65000") or communities
// ("65101:1 65101:2") as an interned string.
func (e *Engine) joinUint32(list []uint32, sep byte, community bool) value {
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
