package keys

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/oui"
)

// Sample is what key extractors read: one flow sample and where it came from.
type Sample struct {
	Datagram *decode.Datagram
	Flow     *decode.FlowSample
	Env      *Env
	Packet   [2]*decode.Packet // outer, and the VXLAN inner frame
	Scaled   float64           // this sample's weight in packets
}

// Extractor reads one key field from a sample.
type Extractor func(s *Sample) Value

// Token is a compiled key: the extractor and whether it names where a flow
// was seen (node, port, TTL...) rather than what the flow is.
type Token struct {
	Text     string
	Get      Extractor
	Location bool
	Slot     int // in the engine's per-sample memo; the engine sets it
}

// baseKeys are the keys read straight from a sample. Those that take the
// ".1" suffix read the VXLAN inner frame instead.
var baseKeys = map[string]struct {
	layered  bool
	location bool
	get      func(s *Sample, p *decode.Packet) Value
}{
	"agent":        {location: true, get: func(s *Sample, _ *decode.Packet) Value { return AddrValue(s.Datagram.Agent) }},
	"inputifindex": {location: true, get: func(s *Sample, _ *decode.Packet) Value { return s.Env.PortValue(s.Flow.Input) }},
	"outputifindex": {location: true, get: func(s *Sample, _ *decode.Packet) Value {
		return s.Env.PortValue(s.Flow.Output)
	}},
	"direction": {location: true, get: func(s *Sample, _ *decode.Packet) Value {
		switch ds := s.Flow.Source.Index; {
		case s.Flow.Input.Format == decode.PortIfIndex && s.Flow.Input.Value == ds:
			return s.Env.StrValue("ingress")
		case s.Flow.Output.Format == decode.PortIfIndex && s.Flow.Output.Value == ds:
			return s.Env.StrValue("egress")
		}
		return Value{}
	}},
	// reason is a discarded-packet event's drop reason (dropped flows only).
	"reason": {get: func(s *Sample, _ *decode.Packet) Value {
		if s.Flow.Format != decode.FormatDiscardedPacket {
			return Value{}
		}
		return s.Env.StrValue(dropReason(s.Flow.DropReason))
	}},
	"bytes": {get: func(s *Sample, _ *decode.Packet) Value {
		if s.Flow.Records&decode.HasRawHeader == 0 {
			return Value{}
		}
		return NumValue(uint64(s.Flow.RawHeader.FrameLength))
	}},
	"macsource": {layered: true, get: func(_ *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerEthernet == 0 {
			return Value{}
		}
		return Value{Kind: MAC, N: macBits(p.SrcMAC)}
	}},
	"macdestination": {layered: true, get: func(_ *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerEthernet == 0 {
			return Value{}
		}
		return Value{Kind: MAC, N: macBits(p.DstMAC)}
	}},
	"ethernetprotocol": {layered: true, get: func(_ *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerEthernet == 0 {
			return Value{}
		}
		return NumValue(uint64(p.EtherType))
	}},
	"vlan": {layered: true, get: func(_ *Sample, p *decode.Packet) Value {
		if p.VLAN == 0 {
			return Value{}
		}
		return NumValue(uint64(p.VLAN))
	}},
	"priority": {layered: true, get: func(_ *Sample, p *decode.Packet) Value {
		if p.VLAN == 0 {
			return Value{}
		}
		return NumValue(uint64(p.Priority))
	}},
	"ipsource":      {layered: true, get: ip4(func(p *decode.Packet) Value { return AddrValue(p.Src) })},
	"ipdestination": {layered: true, get: ip4(func(p *decode.Packet) Value { return AddrValue(p.Dst) })},
	"ipprotocol":    {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.Protocol)) })},
	"ipttl":         {layered: true, location: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.TTL)) })},
	"iptos":         {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.DSCP<<2 | p.ECN)) })},
	"ipdscp":        {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.DSCP)) })},
	"ipecn":         {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.ECN)) })},
	"ipbytes":       {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.IPLength)) })},
	"ipfragoffset":  {layered: true, get: ip4(func(p *decode.Packet) Value { return NumValue(uint64(p.FragOffset)) })},
	"ip6source":     {layered: true, get: ip6(func(p *decode.Packet) Value { return AddrValue(p.Src) })},
	"ip6destination": {layered: true, get: ip6(func(p *decode.Packet) Value {
		return AddrValue(p.Dst)
	})},
	"ip6nexthdr": {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.Protocol)) })},
	"ip6ttl":     {layered: true, location: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.TTL)) })},
	"ip6tos":     {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.DSCP<<2 | p.ECN)) })},
	"ip6dscp":    {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.DSCP)) })},
	"ip6ecn":     {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.ECN)) })},
	"ip6bytes":   {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.IPLength)) })},
	"tcpsourceport": {layered: true, get: layer(decode.LayerTCP, func(p *decode.Packet) Value {
		return NumValue(uint64(p.SrcPort))
	})},
	"tcpdestinationport": {layered: true, get: layer(decode.LayerTCP, func(p *decode.Packet) Value {
		return NumValue(uint64(p.DstPort))
	})},
	"tcpflags": {layered: true, get: func(s *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerTCP == 0 {
			return Value{}
		}
		// A bit string, NS first, as sFlow-RT prints it: tcpflags~.......1. is SYN.
		b := s.Env.scratch[:0]
		for i := 8; i >= 0; i-- {
			b = append(b, '0'+byte(p.TCPFlags>>i&1))
		}
		s.Env.scratch = b
		return s.Env.strBytes(b)
	}},
	"udpsourceport": {layered: true, get: layer(decode.LayerUDP, func(p *decode.Packet) Value {
		return NumValue(uint64(p.SrcPort))
	})},
	"udpdestinationport": {layered: true, get: layer(decode.LayerUDP, func(p *decode.Packet) Value {
		return NumValue(uint64(p.DstPort))
	})},
	"icmptype": {layered: true, get: layer(decode.LayerICMP|decode.LayerICMPv6, func(p *decode.Packet) Value {
		return NumValue(uint64(p.ICMPType))
	})},
	"icmpcode": {layered: true, get: layer(decode.LayerICMP|decode.LayerICMPv6, func(p *decode.Packet) Value {
		return NumValue(uint64(p.ICMPCode))
	})},
	"vni": {get: func(s *Sample, _ *decode.Packet) Value {
		if p := s.Packet[0]; p != nil && p.Layers&decode.LayerVXLAN != 0 {
			return NumValue(uint64(p.VNI))
		}
		return Value{}
	}},
	"stack": {layered: true, get: func(s *Sample, p *decode.Packet) Value { return s.Env.stack(p) }},
	"stripped": {get: func(s *Sample, _ *decode.Packet) Value {
		return NumValue(uint64(s.Flow.RawHeader.Stripped))
	}},
	"isbroadcast": {layered: true, get: func(s *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerEthernet == 0 {
			return Value{}
		}
		return s.Env.boolValue(p.DstMAC == decode.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}},
	"ipflags": {layered: true, get: func(s *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerIPv4 == 0 {
			return Value{}
		}
		// Three bits, reserved first, as sFlow-RT prints them: 010 is DF.
		b := append(s.Env.scratch[:0], '0', '0'+p.FragFlags>>1&1, '0'+p.FragFlags&1)
		s.Env.scratch = b
		return s.Env.strBytes(b)
	}},
	"ipdscpname":    {layered: true, get: ip4Name},
	"ip6dscpname":   {layered: true, get: ip6Name},
	"ip6fragoffset": {layered: true, get: ip6(func(p *decode.Packet) Value { return NumValue(uint64(p.FragOffset)) })},
	"ip6fragm": {layered: true, get: func(s *Sample, p *decode.Packet) Value {
		if p.Layers&decode.LayerIPv6 == 0 {
			return Value{}
		}
		return s.Env.boolValue(p.FragFlags&decode.FlagMoreFragments != 0)
	}},
	"icmpseqno": {layered: true, get: func(s *Sample, p *decode.Packet) Value {
		if p.Layers&(decode.LayerICMP|decode.LayerICMPv6) == 0 || !isEcho(p) {
			return Value{}
		}
		return NumValue(uint64(p.ICMPSeq))
	}},
	"icmpunreachablenet":      {get: unreachable(0, 0)},
	"icmpunreachablehost":     {get: unreachable(1, 3)},
	"icmpunreachableprotocol": {get: unreachable(2, -1)},
	"icmpunreachableport":     {get: unreachable(3, 4)},
	// From the extended switch and router records.
	"vlansource":          {get: switchField(func(w *decode.ExtendedSwitch) uint32 { return w.SrcVLAN })},
	"vlandestination":     {get: switchField(func(w *decode.ExtendedSwitch) uint32 { return w.DstVLAN })},
	"prioritysource":      {get: switchField(func(w *decode.ExtendedSwitch) uint32 { return w.SrcPriority })},
	"prioritydestination": {get: switchField(func(w *decode.ExtendedSwitch) uint32 { return w.DstPriority })},
	"ipnexthoprouter": {get: func(s *Sample, _ *decode.Packet) Value {
		if s.Flow.Records&decode.HasExtendedRouter == 0 {
			return Value{}
		}
		return AddrValue(s.Flow.Router.NextHop)
	}},
	"ipsourcemaskbits":      {get: routerField(func(r *decode.ExtendedRouter) uint32 { return r.SrcMaskLen })},
	"ipdestinationmaskbits": {get: routerField(func(r *decode.ExtendedRouter) uint32 { return r.DstMaskLen })},
}

func isEcho(p *decode.Packet) bool {
	if p.Layers&decode.LayerICMP != 0 {
		return p.ICMPType == 0 || p.ICMPType == 8
	}
	return p.ICMPType == 128 || p.ICMPType == 129
}

// unreachable reads an ICMP destination unreachable of the given code
// (ICMPv6 code code6; -1 for none) from the outer header: the quoted
// packet's destination address, or protocol for code 2, or port for code 3.
func unreachable(code4, code6 int) func(*Sample, *decode.Packet) Value {
	return func(s *Sample, _ *decode.Packet) Value {
		p := s.Packet[0] // the outer packet: its raw bytes hold the quote
		v4 := p.Layers&decode.LayerICMP != 0 && p.ICMPType == 3 && int(p.ICMPCode) == code4
		v6 := p.Layers&decode.LayerICMPv6 != 0 && p.ICMPType == 1 && int(p.ICMPCode) == code6
		quoted := s.Flow.RawHeader.Bytes
		if !v4 && !v6 || p.L4Offset+8 > len(quoted) {
			return Value{}
		}
		proto := decode.HeaderIPv4
		if v6 {
			proto = decode.HeaderIPv6
		}
		q := &s.Env.quoted
		decode.ParsePacket(uint32(proto), quoted[p.L4Offset+8:], q, nil)
		switch code4 {
		case 2:
			if q.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
				return Value{}
			}
			return NumValue(uint64(q.Protocol))
		case 3:
			if q.Layers&(decode.LayerTCP|decode.LayerUDP) == 0 {
				return Value{}
			}
			return NumValue(uint64(q.DstPort))
		}
		return AddrValue(q.Dst)
	}
}

func switchField(f func(*decode.ExtendedSwitch) uint32) func(*Sample, *decode.Packet) Value {
	return func(s *Sample, _ *decode.Packet) Value {
		if s.Flow.Records&decode.HasExtendedSwitch == 0 {
			return Value{}
		}
		return NumValue(uint64(f(&s.Flow.Switch)))
	}
}

func routerField(f func(*decode.ExtendedRouter) uint32) func(*Sample, *decode.Packet) Value {
	return func(s *Sample, _ *decode.Packet) Value {
		if s.Flow.Records&decode.HasExtendedRouter == 0 {
			return Value{}
		}
		return NumValue(uint64(f(&s.Flow.Router)))
	}
}

// dscpNames are the standard code points' names (RFC 2474, 2597, 3246, 5865).
var dscpNames = map[uint8]string{0: "be", 8: "cs1", 10: "af11", 12: "af12", 14: "af13", 16: "cs2", 18: "af21",
	20: "af22", 22: "af23", 24: "cs3", 26: "af31", 28: "af32", 30: "af33", 32: "cs4", 34: "af41", 36: "af42",
	38: "af43", 40: "cs5", 44: "va", 46: "ef", 48: "cs6", 56: "cs7"}

func dscpName(s *Sample, p *decode.Packet) Value {
	if n, ok := dscpNames[p.DSCP]; ok {
		return s.Env.StrValue(n)
	}
	return NumValue(uint64(p.DSCP)) // no name: the number
}

func ip4Name(s *Sample, p *decode.Packet) Value {
	if p.Layers&decode.LayerIPv4 == 0 {
		return Value{}
	}
	return dscpName(s, p)
}

func ip6Name(s *Sample, p *decode.Packet) Value {
	if p.Layers&decode.LayerIPv6 == 0 {
		return Value{}
	}
	return dscpName(s, p)
}

func init() { baseKeys["vxlanvni"] = baseKeys["vni"] }

func macBits(m decode.MAC) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func ip4(f func(p *decode.Packet) Value) func(*Sample, *decode.Packet) Value {
	return layer(decode.LayerIPv4, f)
}

func ip6(f func(p *decode.Packet) Value) func(*Sample, *decode.Packet) Value {
	return layer(decode.LayerIPv6, f)
}

func layer(l decode.Layers, f func(p *decode.Packet) Value) func(*Sample, *decode.Packet) Value {
	return func(_ *Sample, p *decode.Packet) Value {
		if p.Layers&l == 0 {
			return Value{}
		}
		return f(p)
	}
}

// stack names the layers of a frame, as sFlow-RT does: eth.ip.tcp.
func (e *Env) stack(p *decode.Packet) Value {
	b := e.scratch[:0]
	add := func(name string) {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, name...)
	}
	l := p.Layers
	if l&decode.LayerEthernet != 0 {
		add("eth")
	}
	if l&decode.LayerIPv4 != 0 {
		add("ip")
	}
	if l&decode.LayerIPv6 != 0 {
		add("ip6")
	}
	switch {
	case l&decode.LayerTCP != 0:
		add("tcp")
	case l&decode.LayerUDP != 0:
		add("udp")
	case l&decode.LayerICMP != 0:
		add("icmp")
	case l&decode.LayerICMPv6 != 0:
		add("icmp6")
	}
	if l&decode.LayerVXLAN != 0 {
		add("vxlan")
	}
	e.scratch = b
	return e.strBytes(b)
}

// portValue reads an input or output port: an ifIndex, or one of sFlow-RT's
// words for the special values.
func (e *Env) PortValue(p decode.Port) Value {
	switch {
	case p.Format == decode.PortDiscard:
		return e.StrValue("discard")
	case p.Format == decode.PortMultiple:
		return e.StrValue("multiple")
	case p.Value == decode.IfIndexInternal:
		return e.StrValue("internal")
	case p.Value == 0:
		return e.StrValue("unknown")
	}
	return NumValue(uint64(p.Value))
}

func (e *Env) StrValue(s string) Value {
	id, _, ok := e.Strings.IDString(s)
	if !ok {
		return Value{}
	}
	return Value{Kind: Str, N: uint64(id)}
}

func (e *Env) strBytes(b []byte) Value {
	id, _, ok := e.Strings.ID(b)
	if !ok {
		return Value{}
	}
	return Value{Kind: Str, N: uint64(id)}
}

// text renders a value to a string value, through the scratch buffer.
func (e *Env) Text(v Value) Value {
	if v.Kind == Str || v.Kind == Missing {
		return v
	}
	b := v.AppendText(e.scratch[:0], e.Strings)
	e.scratch = b
	return e.strBytes(b)
}

// undecoded names the sFlow record that sFlow-RT reads a key from, for
// keys of records fabrictrace does not decode: a user learns why, not
// merely that the key is unknown.
func undecoded(key string) (string, bool) {
	const (
		tcpInfo = "extended TCP info records (0:2209, from hsflowd's tcp module)"
		http    = "HTTP request records (0:2206, from an HTTP server's sFlow module)"
		queue   = "extended egress queue records (0:1036)"
	)
	switch {
	case strings.HasPrefix(key, "tcprtt"), key == "tcpunacked", key == "tcplost", key == "tcpretrans",
		key == "tcppmtu", key == "tcprcvmss", key == "tcpsndmss", key == "tcpdelivered", key == "tcpdirection":
		return tcpInfo, true
	case strings.HasPrefix(key, "http"), strings.HasPrefix(key, "uri:"):
		return http, true
	case key == "queuedepth":
		return queue, true
	}
	return "", false
}

// CompileKey compiles one key expression: a base key (with an optional ".1"
// for the inner frame) or a key function such as node:inputifindex.
func CompileKey(text string) (Token, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Token{}, fmt.Errorf("empty key")
	}
	if len(text) > MaxExprLen {
		return Token{}, fmt.Errorf("key of %d bytes: %w", len(text), ErrTooLong)
	}
	depth := 0
	for i := 0; i < len(text); i++ {
		switch text[i] {
		case '[':
			if depth++; depth > MaxExprDepth {
				return Token{}, fmt.Errorf("key %.40q...: [ at %d: %w", text, i, ErrTooDeep)
			}
		case ']':
			depth--
		}
	}
	if name, args, ok := splitFunc(text); ok {
		return compileFunc(text, name, args)
	}
	name, layerIndex := text, 0
	if i := strings.LastIndexByte(text, '.'); i > 0 {
		if n, err := strconv.Atoi(text[i+1:]); err == nil {
			name, layerIndex = text[:i], n
		}
	}
	if get, ok := bgpKeys[text]; ok {
		return Token{Text: text, Get: get}, nil
	}
	bk, ok := baseKeys[name]
	if !ok {
		if need, ok := undecoded(text); ok {
			return Token{}, fmt.Errorf("key %q needs %s, which fabrictrace does not decode", text, need)
		}
		return Token{}, fmt.Errorf("unknown key %q", text)
	}
	if layerIndex > 1 || layerIndex == 1 && !bk.layered {
		return Token{}, fmt.Errorf("key %q: only .1 (the VXLAN inner frame) of a header key is supported", text)
	}
	get := bk.get
	return Token{Text: text, Location: bk.location, Get: func(s *Sample) Value {
		p := s.Packet[layerIndex]
		if p == nil {
			return Value{}
		}
		return get(s, p)
	}}, nil
}

// splitFunc splits "fn:a:[b:c]:d" into fn and its arguments, keeping
// bracketed arguments whole.
func splitFunc(text string) (string, []string, bool) {
	i := strings.IndexByte(text, ':')
	if i <= 0 {
		return "", nil, false
	}
	name := text[:i]
	if _, ok := keyFuncs[name]; !ok {
		return "", nil, false
	}
	var args []string
	depth, start := 0, i+1
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '[':
			depth++
		case ']':
			depth--
		case '\\':
			j++ // an escaped character, such as concat's "\:"
		case ':':
			if depth == 0 {
				args = append(args, text[start:j])
				start = j + 1
			}
		}
	}
	args = append(args, text[start:])
	for k, a := range args {
		if len(a) >= 2 && a[0] == '[' && a[len(a)-1] == ']' {
			args[k] = a[1 : len(a)-1]
		}
		args[k] = strings.ReplaceAll(args[k], `\:`, ":")
	}
	return name, args, true
}

// keyFuncs compile the key functions. Each gets its raw arguments. (Filled
// in init: the functions compile their arguments, which may use keyFuncs.)
var keyFuncs map[string]func(args []string) (Extractor, bool, error)

func init() {
	keyFuncs = map[string]func(args []string) (Extractor, bool, error){
		"node":    nodeFunc,
		"link":    linkFunc,
		"or":      orFunc,
		"null":    nullFunc,
		"first":   firstFunc,
		"prefix":  affixFunc(true),
		"suffix":  affixFunc(false),
		"range":   rangeFunc,
		"eq":      eqFunc,
		"concat":  concatFunc,
		"group":   groupFunc,
		"country": countryFunc,
		"oui":     ouiFunc,
		"map":     mapFunc,
		"asn":     asnFunc,
	}
}

func compileFunc(text, name string, args []string) (Token, error) {
	get, location, err := keyFuncs[name](args)
	if err != nil {
		return Token{}, fmt.Errorf("key %q: %w", text, err)
	}
	return Token{Text: text, Get: get, Location: location}, nil
}

func compileArgs(args []string) ([]Token, error) {
	toks := make([]Token, len(args))
	for i, a := range args {
		t, err := CompileKey(a)
		if err != nil {
			return nil, err
		}
		toks[i] = t
	}
	return toks, nil
}

func needArgs(args []string, min int, usage string) error {
	if len(args) < min {
		return fmt.Errorf("want %s", usage)
	}
	return nil
}

// node:K names the topology node that (agent, K's ifIndex) belongs to: the
// switch that saw the sample. Without a topology entry it is the agent's
// host_descr hostname, or else its address.
func nodeFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 1, "node:inputifindex or node:outputifindex"); err != nil {
		return nil, false, err
	}
	if _, err := CompileKey(args[0]); err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		return s.Env.node(s.Datagram.Agent)
	}, true, nil
}

// link:K names the topology link (agent, K's ifIndex) is on; missing for a
// port that is on no declared link, so only fabric links count.
func linkFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 1, "link:inputifindex or link:outputifindex"); err != nil {
		return nil, false, err
	}
	port, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		return s.Env.link(s.Datagram.Agent, port.Get(s))
	}, true, nil
}

func orFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 2, "or:key1:key2[:...]"); err != nil {
		return nil, false, err
	}
	toks, err := compileArgs(args)
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		for _, t := range toks {
			if v := t.Get(s); v.Kind != Missing {
				return v
			}
		}
		return Value{}
	}, anyLocation(toks), nil
}

func anyLocation(toks []Token) bool {
	for _, t := range toks {
		if t.Location {
			return true
		}
	}
	return false
}

func nullFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 1, "null:key[:default]"); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	def := "null"
	if len(args) > 1 {
		def = args[1]
	}
	return func(s *Sample) Value {
		if v := t.Get(s); v.Kind != Missing {
			return v
		}
		return s.Env.StrValue(def)
	}, t.Location, nil
}

// first:K:SEP:A:B... splits K's text on SEP and returns the first token
// that is one of A, B...
func firstFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 3, "first:key:separator:value[:value...]"); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	sep, want := args[1], args[2:]
	return func(s *Sample) Value {
		v := s.Env.Text(t.Get(s))
		if v.Kind == Missing {
			return Value{}
		}
		for rest, more := s.Env.Strings.Lookup(uint32(v.N)), true; more; {
			var part string
			part, rest, more = strings.Cut(rest, sep)
			for _, w := range want {
				if part == w {
					return s.Env.StrValue(w)
				}
			}
		}
		return Value{}
	}, t.Location, nil
}

// prefix:K:SEP:N and suffix:K:SEP:N keep K's first or last N tokens.
func affixFunc(front bool) func(args []string) (Extractor, bool, error) {
	return func(args []string) (Extractor, bool, error) {
		if err := needArgs(args, 3, "prefix|suffix:key:separator:count"); err != nil {
			return nil, false, err
		}
		t, err := CompileKey(args[0])
		if err != nil {
			return nil, false, err
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 {
			return nil, false, fmt.Errorf("count %q: want a whole number above 0", args[2])
		}
		sep := args[1]
		return func(s *Sample) Value {
			v := s.Env.Text(t.Get(s))
			if v.Kind == Missing {
				return Value{}
			}
			vs := s.Env.Strings.Lookup(uint32(v.N))
			if front {
				cut := 0
				for k := 0; k < n; k++ {
					i := strings.Index(vs[cut:], sep)
					if i < 0 {
						return v
					}
					cut += i + len(sep)
				}
				return s.Env.StrValue(vs[:cut-len(sep)])
			}
			cut := len(vs)
			for k := 0; k < n; k++ {
				i := strings.LastIndex(vs[:cut], sep)
				if i < 0 {
					return v
				}
				cut = i
			}
			return s.Env.StrValue(vs[cut+len(sep):])
		}, t.Location, nil
	}
}

// range:K:LO[:HI] is "true" when K's number lies in [LO, HI].
func rangeFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 2, "range:key:low[:high]"); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	lo, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return nil, false, fmt.Errorf("low %q: want a number", args[1])
	}
	hi := uint64(1<<64 - 1)
	if len(args) > 2 {
		if hi, err = strconv.ParseUint(args[2], 10, 64); err != nil {
			return nil, false, fmt.Errorf("high %q: want a number", args[2])
		}
	}
	return func(s *Sample) Value {
		v := t.Get(s)
		if v.Kind != Num {
			return Value{}
		}
		return s.Env.boolValue(v.N >= lo && v.N <= hi)
	}, t.Location, nil
}

func (e *Env) boolValue(b bool) Value {
	if b {
		return e.StrValue("true")
	}
	return e.StrValue("false")
}

func eqFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 2, "eq:key1:key2"); err != nil {
		return nil, false, err
	}
	toks, err := compileArgs(args[:2])
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		a, b := toks[0].Get(s), toks[1].Get(s)
		if a.Kind == Missing || b.Kind == Missing {
			return Value{}
		}
		return s.Env.boolValue(a == b)
	}, anyLocation(toks), nil
}

// concat:SEP:K1:K2... joins the keys' texts with SEP.
func concatFunc(args []string) (Extractor, bool, error) {
	if err := needArgs(args, 3, "concat:separator:key1:key2[:...]"); err != nil {
		return nil, false, err
	}
	sep := args[0]
	toks, err := compileArgs(args[1:])
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		b := s.Env.concat[:0]
		for i, t := range toks {
			v := t.Get(s)
			if v.Kind == Missing {
				return Value{}
			}
			if i > 0 {
				b = append(b, sep...)
			}
			b = v.AppendText(b, s.Env.Strings)
		}
		s.Env.concat = b
		return s.Env.strBytes(b)
	}, anyLocation(toks), nil
}

// labelFunc compiles a key function K:NAME[:NAME...] that labels K's value
// from the first of the named tables (groups, maps) that has it; missing
// when none does.
func labelFunc(args []string, usage string, lookup func(s *Sample, v Value, name string) (string, bool)) (Extractor, bool, error) {
	if err := needArgs(args, 2, usage); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	names := args[1:]
	return func(s *Sample) Value {
		v := t.Get(s)
		if v.Kind == Missing {
			return Value{}
		}
		for _, n := range names {
			if label, ok := lookup(s, v, n); ok {
				return s.Env.StrValue(label)
			}
		}
		return Value{}
	}, t.Location, nil
}

// country:K is the ISO 3166 code of address K's country, from the GeoIP
// database the engine was given (Config.Countries); missing for private
// space and where the database has none. SetFlow refuses a definition that
// uses it when the engine has no database.
func countryFunc(args []string) (Extractor, bool, error) {
	return addrFunc(args, "country:ipsource or country:ipdestination", func(s *Sample, a netip.Addr) Value {
		if s.Env.Countries == nil {
			return Value{}
		}
		if code, ok := s.Env.Countries.Country(a); ok {
			return s.Env.StrValue(code)
		}
		return Value{}
	})
}

// oui:K names the organization the IEEE assigned MAC K's first three
// bytes to (the table package oui ships); missing for locally
// administered and unassigned ones. sFlow-RT's optional third part,
// oui:K:name, is the same.
func ouiFunc(args []string) (Extractor, bool, error) {
	if len(args) == 2 && args[1] == "name" {
		args = args[:1]
	}
	if err := needArgs(args, 1, "oui:macsource or oui:macdestination"); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		if v := t.Get(s); v.Kind == MAC {
			if name, ok := oui.Name(v.N); ok {
				return s.Env.StrValue(name)
			}
		}
		return Value{}
	}, t.Location, nil
}

// addrFunc compiles a key function of one address key: f reads the
// address's value, missing where K has no address.
func addrFunc(args []string, usage string, f func(s *Sample, a netip.Addr) Value) (Extractor, bool, error) {
	if err := needArgs(args, 1, usage); err != nil {
		return nil, false, err
	}
	t, err := CompileKey(args[0])
	if err != nil {
		return nil, false, err
	}
	return func(s *Sample) Value {
		if v := t.Get(s); v.IsAddr() {
			return f(s, v.Addr())
		}
		return Value{}
	}, false, nil
}

// UsesCountry says whether a definition's keys or filter call country:.
func UsesCountry(exprs ...string) bool {
	for _, x := range exprs {
		for i := strings.Index(x, "country:"); i >= 0; {
			if i == 0 || !isKeyChar(x[i-1]) {
				return true
			}
			j := strings.Index(x[i+1:], "country:")
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return false
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
}
