package decode

import (
	"errors"
	"fmt"
	"net/netip"
)

// Errors that a *Error wraps. Test them with errors.Is.
var (
	ErrVersion      = errors.New("unsupported sFlow version")
	ErrAddressType  = errors.New("unknown address type")
	ErrTruncated    = errors.New("truncated")
	ErrLength       = errors.New("length exceeds the bytes that remain")
	ErrCount        = errors.New("count exceeds what the bytes that remain can hold")
	ErrSamplingRate = errors.New("sampling rate is 0")
)

// Error is a fault in a datagram: the structure it was found in, its offset
// from the start of the datagram, and what was wrong.
type Error struct {
	Structure string
	Offset    int
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("decode %s at offset %d: %v", e.Structure, e.Offset, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func fault(structure string, offset int, err error, format string, args ...any) *Error {
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{err}, args...)...)
	}
	return &Error{Structure: structure, Offset: offset, Err: err}
}

// Visitor receives each sample as it is decoded. The structs are reused for
// the next sample, and the slices in them alias the datagram: copy what must
// outlive the call.
type Visitor interface {
	Flow(d *Datagram, s *FlowSample)
	Counter(d *Datagram, s *CounterSample)
}

// FlowBatcher is a Visitor that takes a datagram's flow samples together:
// the Decoder decodes them all, then hands them over in order, at most
// MaxFlowBatch at a time (counter samples still go to Counter as they come).
// With several samples at hand a visitor can start the memory loads of all
// of them before it works on any, so their cache misses overlap. The
// samples are reused and alias the datagram, as with Flow.
type FlowBatcher interface {
	Visitor
	FlowBatch(d *Datagram, samples []FlowSample)
}

// MaxFlowBatch is the most flow samples in one FlowBatch call.
const MaxFlowBatch = 16

// DeliverFlows hands samples to v: in one call if v is a FlowBatcher, else
// one by one. It is for visitors that pass samples on to another.
func DeliverFlows(v Visitor, d *Datagram, samples []FlowSample) {
	if b, ok := v.(FlowBatcher); ok {
		b.FlowBatch(d, samples)
		return
	}
	for i := range samples {
		v.Flow(d, &samples[i])
	}
}

// Decoder decodes datagrams into reusable structs. It is not safe for
// concurrent use; give each goroutine its own.
type Decoder struct {
	dgram   Datagram
	flow    FlowSample
	batch   []FlowSample // a FlowBatcher's samples, decoded and not yet handed over
	counter CounterSample
}

// Decode walks one datagram and calls v for every sample decoded whole. The
// returned Datagram belongs to the Decoder and is valid until the next call.
// The error, if any, is the first fault; samples whose framing survived it
// are still delivered, and Datagram.Faults counts the samples lost.
func (d *Decoder) Decode(b []byte, v Visitor) (*Datagram, error) {
	dg := &d.dgram
	*dg = Datagram{}
	if len(b) < 8 {
		return dg, fault("datagram header", 0, ErrTruncated, "%d bytes", len(b))
	}
	dg.Version = be32(b)
	if dg.Version != 5 {
		return dg, fault("datagram header", 0, ErrVersion, "version %d, want 5", dg.Version)
	}
	agent, off, err := address(b, 4, "datagram header")
	if err != nil {
		return dg, err
	}
	dg.Agent = agent
	if len(b)-off < 16 {
		return dg, fault("datagram header", off, ErrTruncated, "")
	}
	dg.SubAgentID = be32(b[off:])
	dg.Sequence = be32(b[off+4:])
	dg.Uptime = be32(b[off+8:])
	dg.NumSamples = be32(b[off+12:])
	off += 16
	if int64(dg.NumSamples)*8 > int64(len(b)-off) {
		dg.Faults = 1
		return dg, fault("datagram header", off-4, ErrCount, "%d samples in %d bytes", dg.NumSamples, len(b)-off)
	}

	batcher, _ := v.(FlowBatcher)
	if batcher != nil && d.batch == nil {
		d.batch = make([]FlowSample, 0, MaxFlowBatch)
	}
	err = d.samples(b, off, batcher, v)
	if len(d.batch) > 0 {
		batcher.FlowBatch(dg, d.batch)
		d.batch = d.batch[:0]
	}
	return dg, err
}

// samples decodes the datagram's samples, which start at off, and hands
// them to v, or batches flow samples for batcher when it is not nil.
func (d *Decoder) samples(b []byte, off int, batcher FlowBatcher, v Visitor) error {
	dg := &d.dgram
	var first error
	for i := uint32(0); i < dg.NumSamples; i++ {
		if len(b)-off < 8 {
			dg.Faults += dg.NumSamples - i
			return firstOf(first, fault("sample header", off, ErrTruncated, "sample %d of %d", i+1, dg.NumSamples))
		}
		format, length := be32(b[off:]), be32(b[off+4:])
		start, body := off, off+8
		if uint64(length) > uint64(len(b)-body) {
			dg.Faults += dg.NumSamples - i
			return firstOf(first, fault("sample header", off+4, ErrLength, "sample %d of %d: length %d, %d bytes left", i+1, dg.NumSamples, length, len(b)-body))
		}
		sb := b[body : body+int(length)]
		off = body + int(length)
		raw := b[start:off:off]
		var err error
		switch {
		case format>>12 != 0:
			dg.UnknownSamples++
		case format == FormatFlowSample || format == FormatExpandedFlowSample || format == FormatDiscardedPacket:
			s := &d.flow
			if batcher != nil {
				s = &d.batch[:len(d.batch)+1][len(d.batch)]
			}
			if err = d.flowSample(s, sb, body, format); err == nil {
				s.Raw = raw
				if format == FormatDiscardedPacket {
					dg.DiscardSamples++
				} else {
					dg.FlowSamples++
				}
				dg.UnknownRecords += s.UnknownRecords
				if batcher == nil {
					v.Flow(dg, s)
				} else if d.batch = d.batch[:len(d.batch)+1]; len(d.batch) == MaxFlowBatch {
					batcher.FlowBatch(dg, d.batch)
					d.batch = d.batch[:0]
				}
			}
		case format == FormatCounterSample || format == FormatExpandedCounterSample:
			d.counter.Raw = raw
			err = d.counterSample(sb, body, format, v)
		default:
			dg.UnknownSamples++
		}
		if err != nil {
			dg.Faults++
			first = firstOf(first, err)
		}
	}
	return first
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// address reads an sFlow address (type, then 4 or 16 bytes) at off.
func address(b []byte, off int, structure string) (netip.Addr, int, error) {
	if len(b)-off < 4 {
		return netip.Addr{}, off, fault(structure, off, ErrTruncated, "address type")
	}
	switch t := be32(b[off:]); t {
	case 1:
		if len(b)-off < 8 {
			return netip.Addr{}, off, fault(structure, off, ErrTruncated, "IPv4 address")
		}
		return netip.AddrFrom4([4]byte(b[off+4 : off+8])), off + 8, nil
	case 2:
		if len(b)-off < 20 {
			return netip.Addr{}, off, fault(structure, off, ErrTruncated, "IPv6 address")
		}
		return netip.AddrFrom16([16]byte(b[off+4 : off+20])), off + 20, nil
	default:
		return netip.Addr{}, off, fault(structure, off, ErrAddressType, "%d", t)
	}
}

// record reads a record header at off within the sample body b.
func record(b []byte, off int, base int, structure string) (format uint32, body []byte, next int, err error) {
	if len(b)-off < 8 {
		return 0, nil, off, fault(structure, base+off, ErrTruncated, "record header")
	}
	format, length := be32(b[off:]), be32(b[off+4:])
	if uint64(length) > uint64(len(b)-off-8) {
		return 0, nil, off, fault(structure, base+off+4, ErrLength, "record %d:%d length %d, %d bytes left", format>>12, format&0xFFF, length, len(b)-off-8)
	}
	next = off + 8 + int(length)
	return format, b[off+8 : next], next, nil
}

func recordCount(n uint32, left int, structure string, at int) error {
	if int64(n)*8 > int64(left) {
		return fault(structure, at, ErrCount, "%d records in %d bytes", n, left)
	}
	return nil
}

func (d *Decoder) flowSample(s *FlowSample, b []byte, base int, format uint32) error {
	s.Format = format
	s.Records = 0
	s.UnknownRecords = 0
	s.DropReason = 0
	var off int
	var structure string
	switch format {
	case FormatFlowSample:
		structure = "flow sample"
		if len(b) < 32 {
			return fault(structure, base, ErrTruncated, "%d bytes", len(b))
		}
		s.Sequence = be32(b)
		src := be32(b[4:])
		s.Source = DataSource{Class: src >> 24, Index: src & 0x00FFFFFF}
		s.SamplingRate, s.SamplePool, s.Drops = be32(b[8:]), be32(b[12:]), be32(b[16:])
		s.Input, s.Output = compactPort(be32(b[20:])), compactPort(be32(b[24:]))
		s.NumRecords = be32(b[28:])
		off = 32
	case FormatExpandedFlowSample:
		structure = "expanded flow sample"
		if len(b) < 44 {
			return fault(structure, base, ErrTruncated, "%d bytes", len(b))
		}
		s.Sequence = be32(b)
		s.Source = DataSource{Class: be32(b[4:]), Index: be32(b[8:])}
		s.SamplingRate, s.SamplePool, s.Drops = be32(b[12:]), be32(b[16:]), be32(b[20:])
		s.Input = Port{Format: PortFormat(min(be32(b[24:]), 3)), Value: be32(b[28:])}
		s.Output = Port{Format: PortFormat(min(be32(b[32:]), 3)), Value: be32(b[36:])}
		s.NumRecords = be32(b[40:])
		off = 44
	default: // FormatDiscardedPacket
		structure = "discarded packet event"
		if len(b) < 32 {
			return fault(structure, base, ErrTruncated, "%d bytes", len(b))
		}
		s.Sequence = be32(b)
		s.Source = DataSource{Class: be32(b[4:]), Index: be32(b[8:])}
		s.SamplingRate, s.SamplePool = 0, 0
		s.Drops = be32(b[12:])
		s.Input = Port{Format: PortIfIndex, Value: be32(b[16:])}
		s.Output = Port{Format: PortIfIndex, Value: be32(b[20:])}
		s.DropReason = be32(b[24:])
		s.NumRecords = be32(b[28:])
		off = 32
	}
	if format != FormatDiscardedPacket && s.SamplingRate == 0 {
		return fault(structure, base+8, ErrSamplingRate, "sequence %d", s.Sequence)
	}
	if err := recordCount(s.NumRecords, len(b)-off, structure, base+off-4); err != nil {
		return err
	}
	for i := uint32(0); i < s.NumRecords; i++ {
		rf, body, next, err := record(b, off, base, structure)
		if err != nil {
			return err
		}
		if err := d.flowRecord(s, rf, body, base+off+8); err != nil {
			return err
		}
		off = next
	}
	return nil
}

// flowRecord decodes one flow record; the first record of each kind wins.
func (d *Decoder) flowRecord(s *FlowSample, format uint32, b []byte, base int) error {
	var has Records
	switch format {
	case RecordRawHeader:
		has = HasRawHeader
	case RecordSampledEthernet:
		has = HasSampledEthernet
	case RecordSampledIPv4:
		has = HasSampledIPv4
	case RecordSampledIPv6:
		has = HasSampledIPv6
	case RecordExtendedSwitch:
		has = HasExtendedSwitch
	case RecordExtendedRouter:
		has = HasExtendedRouter
	case RecordExtendedGateway:
		has = HasExtendedGateway
	default:
		s.UnknownRecords++
		return nil
	}
	if s.Records&has != 0 {
		s.UnknownRecords++ // a second record of a kind: the first one stands
		return nil
	}
	switch format {
	case RecordRawHeader:
		if len(b) < 16 {
			return fault("raw packet header record", base, ErrTruncated, "%d bytes", len(b))
		}
		h := &s.RawHeader
		h.Protocol, h.FrameLength, h.Stripped = be32(b), be32(b[4:]), be32(b[8:])
		n := be32(b[12:])
		if uint64(n) > uint64(len(b)-16) {
			return fault("raw packet header record", base+12, ErrLength, "header length %d, %d bytes left", n, len(b)-16)
		}
		h.Bytes = b[16 : 16+n]
		ParsePacket(h.Protocol, h.Bytes, &h.Packet, &h.Inner)
	case RecordSampledEthernet:
		if len(b) < 24 {
			return fault("sampled Ethernet record", base, ErrTruncated, "%d bytes", len(b))
		}
		e := &s.SampledEthernet
		e.Length = be32(b)
		copy(e.SrcMAC[:], b[4:10])
		copy(e.DstMAC[:], b[12:18])
		e.EtherType = be32(b[20:])
	case RecordSampledIPv4:
		if len(b) < 32 {
			return fault("sampled IPv4 record", base, ErrTruncated, "%d bytes", len(b))
		}
		ip := &s.SampledIPv4
		ip.Length, ip.Protocol = be32(b), be32(b[4:])
		ip.Src = netip.AddrFrom4([4]byte(b[8:12]))
		ip.Dst = netip.AddrFrom4([4]byte(b[12:16]))
		ip.SrcPort, ip.DstPort, ip.TCPFlags, ip.TOS = be32(b[16:]), be32(b[20:]), be32(b[24:]), be32(b[28:])
	case RecordSampledIPv6:
		if len(b) < 56 {
			return fault("sampled IPv6 record", base, ErrTruncated, "%d bytes", len(b))
		}
		ip := &s.SampledIPv6
		ip.Length, ip.Protocol = be32(b), be32(b[4:])
		ip.Src = netip.AddrFrom16([16]byte(b[8:24]))
		ip.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		ip.SrcPort, ip.DstPort, ip.TCPFlags, ip.TOS = be32(b[40:]), be32(b[44:]), be32(b[48:]), be32(b[52:])
	case RecordExtendedSwitch:
		if len(b) < 16 {
			return fault("extended switch record", base, ErrTruncated, "%d bytes", len(b))
		}
		s.Switch = ExtendedSwitch{SrcVLAN: be32(b), SrcPriority: be32(b[4:]), DstVLAN: be32(b[8:]), DstPriority: be32(b[12:])}
	case RecordExtendedRouter:
		nh, off, err := address(b, 0, "extended router record")
		if err != nil {
			return rebase(err, base)
		}
		if len(b)-off < 8 {
			return fault("extended router record", base+off, ErrTruncated, "mask lengths")
		}
		s.Router = ExtendedRouter{NextHop: nh, SrcMaskLen: be32(b[off:]), DstMaskLen: be32(b[off+4:])}
	case RecordExtendedGateway:
		if err := gateway(&s.Gateway, b, base); err != nil {
			return err
		}
	}
	s.Records |= has
	return nil
}

// rebase moves an *Error's offset from record-relative to datagram-relative.
func rebase(err error, base int) error {
	var e *Error
	if errors.As(err, &e) {
		e.Offset += base
	}
	return err
}

func gateway(g *ExtendedGateway, b []byte, base int) error {
	const structure = "extended gateway record"
	nh, off, err := address(b, 0, structure)
	if err != nil {
		return rebase(err, base)
	}
	if len(b)-off < 16 {
		return fault(structure, base+off, ErrTruncated, "AS fields")
	}
	g.NextHop = nh
	g.AS, g.SrcAS, g.SrcPeerAS = be32(b[off:]), be32(b[off+4:]), be32(b[off+8:])
	g.Segments = be32(b[off+12:])
	off += 16
	if err := recordCount(g.Segments, len(b)-off, structure, base+off-4); err != nil {
		return err
	}
	start := off
	for i := uint32(0); i < g.Segments; i++ {
		if len(b)-off < 8 {
			return fault(structure, base+off, ErrTruncated, "AS path segment %d", i+1)
		}
		n := be32(b[off+4:])
		if uint64(n)*4 > uint64(len(b)-off-8) {
			return fault(structure, base+off+4, ErrCount, "AS path segment of %d ASNs, %d bytes left", n, len(b)-off-8)
		}
		off += 8 + int(n)*4
	}
	g.path = b[start:off]
	if len(b)-off < 4 {
		return fault(structure, base+off, ErrTruncated, "communities")
	}
	g.Communities = be32(b[off:])
	off += 4
	if uint64(g.Communities)*4 > uint64(len(b)-off) {
		return fault(structure, base+off-4, ErrCount, "%d communities, %d bytes left", g.Communities, len(b)-off)
	}
	g.comms = b[off : off+int(g.Communities)*4]
	off += int(g.Communities) * 4
	if len(b)-off < 4 {
		return fault(structure, base+off, ErrTruncated, "local preference")
	}
	g.LocalPref = be32(b[off:])
	return nil
}

func (d *Decoder) counterSample(b []byte, base int, format uint32, v Visitor) error {
	s := &d.counter
	s.Format = format
	s.Records = 0
	s.UnknownRecords = 0
	s.Continued = false
	structure := "counter sample"
	off := 12
	if format == FormatExpandedCounterSample {
		structure = "expanded counter sample"
		off = 16
	}
	if len(b) < off {
		return fault(structure, base, ErrTruncated, "%d bytes", len(b))
	}
	s.Sequence = be32(b)
	if format == FormatCounterSample {
		src := be32(b[4:])
		s.Source = DataSource{Class: src >> 24, Index: src & 0x00FFFFFF}
	} else {
		s.Source = DataSource{Class: be32(b[4:]), Index: be32(b[8:])}
	}
	s.NumRecords = be32(b[off-4:])
	if err := recordCount(s.NumRecords, len(b)-off, structure, base+off-4); err != nil {
		return err
	}
	// A second record of a kind already held describes something else
	// (pmacctd's sfprobe sends one generic interface record per port in one
	// sample): such a sample is delivered in parts, each a continuation of
	// the one before. The first pass finds any fault before a part goes out,
	// so a faulty sample delivers nothing, as a faulty flow sample does.
	split := false
	for pass := 0; pass < 2; pass++ {
		at := off
		for i := uint32(0); i < s.NumRecords; i++ {
			rf, body, next, err := record(b, at, base, structure)
			if err != nil {
				return err
			}
			if has := counterRecordKind(rf); has != 0 && s.Records&has != 0 {
				split = true
				if pass == 1 {
					d.deliverCounter(v)
					s.Records, s.UnknownRecords, s.Continued = 0, 0, true
				}
			}
			if err := d.counterRecord(rf, body, base+at+8); err != nil {
				return err
			}
			at = next
		}
		if pass == 1 || !split {
			break // unsplit, the records held are the whole sample
		}
		s.Records, s.UnknownRecords = 0, 0
	}
	d.deliverCounter(v)
	return nil
}

func (d *Decoder) deliverCounter(v Visitor) {
	if !d.counter.Continued {
		d.dgram.CounterSamples++
	}
	d.dgram.UnknownRecords += d.counter.UnknownRecords
	v.Counter(&d.dgram, &d.counter)
}

func counterRecordKind(format uint32) Records {
	switch format {
	case RecordGenericInterface:
		return HasGenericInterface
	case RecordEthernetCounters:
		return HasEthernetCounters
	case RecordProcessor:
		return HasProcessor
	case RecordPortName:
		return HasPortName
	case RecordHostDescription:
		return HasHostDescription
	case RecordHostCPU:
		return HasHostCPU
	case RecordHostMemory:
		return HasHostMemory
	case RecordHostDiskIO:
		return HasHostDiskIO
	case RecordHostNetIO:
		return HasHostNetIO
	}
	return 0
}

func (d *Decoder) counterRecord(format uint32, b []byte, base int) error {
	s := &d.counter
	has := counterRecordKind(format)
	if has == 0 {
		s.UnknownRecords++ // includes Open vSwitch's 1004, 2203 and 2207
		return nil
	}
	switch format {
	case RecordGenericInterface:
		if len(b) < 88 {
			return fault("generic interface counters", base, ErrTruncated, "%d bytes", len(b))
		}
		s.Generic = GenericInterface{
			IfIndex: be32(b), IfType: be32(b[4:]), IfSpeed: be64(b[8:]),
			IfDirection: be32(b[16:]), IfStatus: be32(b[20:]),
			InOctets: be64(b[24:]), InUcastPkts: be32(b[32:]), InMulticastPkts: be32(b[36:]),
			InBroadcastPkts: be32(b[40:]), InDiscards: be32(b[44:]), InErrors: be32(b[48:]),
			InUnknownProtos: be32(b[52:]),
			OutOctets:       be64(b[56:]), OutUcastPkts: be32(b[64:]), OutMulticastPkts: be32(b[68:]),
			OutBroadcastPkts: be32(b[72:]), OutDiscards: be32(b[76:]), OutErrors: be32(b[80:]),
			PromiscuousMode: be32(b[84:]),
		}
	case RecordEthernetCounters:
		if len(b) < 52 {
			return fault("Ethernet counters", base, ErrTruncated, "%d bytes", len(b))
		}
		s.Ethernet = EthernetCounters{
			AlignmentErrors: be32(b), FCSErrors: be32(b[4:]), SingleCollisionFrames: be32(b[8:]),
			MultipleCollisionFrames: be32(b[12:]), SQETestErrors: be32(b[16:]),
			DeferredTransmissions: be32(b[20:]), LateCollisions: be32(b[24:]),
			ExcessiveCollisions: be32(b[28:]), InternalMacTransmitErrors: be32(b[32:]),
			CarrierSenseErrors: be32(b[36:]), FrameTooLongs: be32(b[40:]),
			InternalMacReceiveErrors: be32(b[44:]), SymbolErrors: be32(b[48:]),
		}
	case RecordProcessor:
		if len(b) < 28 {
			return fault("processor counters", base, ErrTruncated, "%d bytes", len(b))
		}
		s.Processor = Processor{CPU5s: be32(b), CPU1m: be32(b[4:]), CPU5m: be32(b[8:]),
			TotalMemory: be64(b[12:]), FreeMemory: be64(b[20:])}
	case RecordPortName:
		name, _, err := xdrString(b, 0, "port name", base)
		if err != nil {
			return err
		}
		s.PortName = name
	case RecordHostDescription:
		const structure = "host description"
		h := &s.HostDescription
		name, off, err := xdrString(b, 0, structure, base)
		if err != nil {
			return err
		}
		if len(b)-off < 24 {
			return fault(structure, base+off, ErrTruncated, "uuid and OS")
		}
		h.Hostname = name
		copy(h.UUID[:], b[off:off+16])
		h.MachineType, h.OSName = be32(b[off+16:]), be32(b[off+20:])
		if h.OSRelease, _, err = xdrString(b, off+24, structure, base); err != nil {
			return err
		}
	case RecordHostCPU:
		if len(b) < 68 {
			return fault("host CPU", base, ErrTruncated, "%d bytes, want 68 or 80", len(b))
		}
		c := &s.HostCPU
		*c = HostCPU{LoadOne: bef32(b), LoadFive: bef32(b[4:]), LoadFifteen: bef32(b[8:]),
			ProcRun: be32(b[12:]), ProcTotal: be32(b[16:]), CPUNum: be32(b[20:]), CPUSpeed: be32(b[24:]),
			Uptime: be32(b[28:]), User: be32(b[32:]), Nice: be32(b[36:]), System: be32(b[40:]),
			Idle: be32(b[44:]), WIO: be32(b[48:]), Intr: be32(b[52:]), SoftIntr: be32(b[56:]),
			Interrupts: be32(b[60:]), Contexts: be32(b[64:])}
		if len(b) >= 80 {
			c.Steal, c.Guest, c.GuestNice, c.HasSteal = be32(b[68:]), be32(b[72:]), be32(b[76:]), true
		}
	case RecordHostMemory:
		if len(b) < 72 {
			return fault("host memory", base, ErrTruncated, "%d bytes, want 72", len(b))
		}
		s.HostMemory = HostMemory{Total: be64(b), Free: be64(b[8:]), Shared: be64(b[16:]),
			Buffers: be64(b[24:]), Cached: be64(b[32:]), SwapTotal: be64(b[40:]), SwapFree: be64(b[48:]),
			PageIn: be32(b[56:]), PageOut: be32(b[60:]), SwapIn: be32(b[64:]), SwapOut: be32(b[68:])}
	case RecordHostDiskIO:
		if len(b) < 52 {
			return fault("host disk I/O", base, ErrTruncated, "%d bytes, want 52", len(b))
		}
		s.HostDiskIO = HostDiskIO{Total: be64(b), Free: be64(b[8:]), PartMaxUsed: int32(be32(b[16:])),
			Reads: be32(b[20:]), BytesRead: be64(b[24:]), ReadTime: be32(b[32:]),
			Writes: be32(b[36:]), BytesWritten: be64(b[40:]), WriteTime: be32(b[48:])}
	case RecordHostNetIO:
		if len(b) < 40 {
			return fault("host net I/O", base, ErrTruncated, "%d bytes, want 40", len(b))
		}
		s.HostNetIO = HostNetIO{BytesIn: be64(b), PktsIn: be32(b[8:]), ErrsIn: be32(b[12:]), DropsIn: be32(b[16:]),
			BytesOut: be64(b[20:]), PktsOut: be32(b[28:]), ErrsOut: be32(b[32:]), DropsOut: be32(b[36:])}
	}
	s.Records |= has
	return nil
}

// xdrString reads a length-prefixed, 4-byte padded string at off.
func xdrString(b []byte, off int, structure string, base int) ([]byte, int, error) {
	if len(b)-off < 4 {
		return nil, off, fault(structure, base+off, ErrTruncated, "string length")
	}
	n := be32(b[off:])
	if uint64(n) > uint64(len(b)-off-4) {
		return nil, off, fault(structure, base+off, ErrLength, "string of %d bytes, %d left", n, len(b)-off-4)
	}
	s := b[off+4 : off+4+int(n)]
	next := min(off+4+(int(n)+3)&^3, len(b))
	return s, next, nil
}
