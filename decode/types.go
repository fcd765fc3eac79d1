package decode

import (
	"net/netip"
	"strconv"
)

// Sample formats (enterprise 0), as they appear in the sample's data_format.
const (
	FormatFlowSample            = 1
	FormatCounterSample         = 2
	FormatExpandedFlowSample    = 3
	FormatExpandedCounterSample = 4
	FormatDiscardedPacket       = 5
)

// Flow record formats (enterprise 0).
const (
	RecordRawHeader       = 1
	RecordSampledEthernet = 2
	RecordSampledIPv4     = 3
	RecordSampledIPv6     = 4
	RecordExtendedSwitch  = 1001
	RecordExtendedRouter  = 1002
	RecordExtendedGateway = 1003
)

// Counter record formats (enterprise 0).
const (
	RecordGenericInterface = 1
	RecordEthernetCounters = 2
	RecordProcessor        = 1001
	RecordPortName         = 1005
	RecordHostDescription  = 2000
	RecordHostCPU          = 2003
	RecordHostMemory       = 2004
	RecordHostDiskIO       = 2005
	RecordHostNetIO        = 2006
)

// Header protocols of the raw packet header record.
const (
	HeaderEthernet = 1  // ETHERNET-ISO88023
	HeaderIPv4     = 11 // IPv4
	HeaderIPv6     = 12 // IPv6
)

// Records is a set of record kinds found in one sample. Only the fields of the
// kinds in the set are valid; the others hold what an earlier sample left.
type Records uint16

// The record kinds a Records set can hold.
const (
	HasRawHeader Records = 1 << iota
	HasSampledEthernet
	HasSampledIPv4
	HasSampledIPv6
	HasExtendedSwitch
	HasExtendedRouter
	HasExtendedGateway
	HasGenericInterface
	HasEthernetCounters
	HasProcessor
	HasPortName
	HasHostDescription
	HasHostCPU
	HasHostMemory
	HasHostDiskIO
	HasHostNetIO
)

// Datagram is the sFlow v5 datagram header plus what the walk counted.
type Datagram struct {
	Version    uint32
	Agent      netip.Addr
	SubAgentID uint32
	Sequence   uint32
	Uptime     uint32 // milliseconds since the agent started
	NumSamples uint32 // as declared in the header

	FlowSamples    uint32 // flow and expanded flow samples delivered
	CounterSamples uint32 // counter and expanded counter samples delivered, each once however many parts
	DiscardSamples uint32 // discarded-packet events delivered
	UnknownSamples uint32 // samples of other formats, skipped by length
	UnknownRecords uint32 // records of other formats, skipped by length
	Faults         uint32 // samples lost to malformed input
}

// DataSource identifies what a sample describes: class 0 is an ifIndex, 1 a
// smonVlanDataSource, 2 an entPhysicalEntry.
type DataSource struct {
	Class uint32
	Index uint32
}

// String formats the data source as sFlow-RT does: "3" for an interface,
// "2.1000" for other classes.
func (s DataSource) String() string {
	if s.Class == 0 {
		return strconv.FormatUint(uint64(s.Index), 10)
	}
	return strconv.FormatUint(uint64(s.Class), 10) + "." + strconv.FormatUint(uint64(s.Index), 10)
}

// PortFormat says how to read a Port's value.
type PortFormat uint8

// Port formats, from the top two bits of a compact interface field or the
// format word of an expanded one.
const (
	PortIfIndex  PortFormat = 0 // Value is an ifIndex
	PortDiscard  PortFormat = 1 // Value is the discard reason
	PortMultiple PortFormat = 2 // Value is the number of output interfaces, 0 if unknown
)

// IfIndexInternal is the ifIndex value for traffic that starts or ends in the
// device itself rather than crossing it.
const IfIndexInternal = 0x3FFFFFFF

// Port is a flow sample's input or output interface.
type Port struct {
	Format PortFormat
	Value  uint32
}

// IfIndex returns the interface index and whether the port names one real
// interface (not internal, unknown, discard or multiple).
func (p Port) IfIndex() (uint32, bool) {
	ok := p.Format == PortIfIndex && p.Value != 0 && p.Value != IfIndexInternal
	return p.Value, ok
}

// String formats the port as sFlow-RT's inputifindex and outputifindex keys
// do: the ifIndex, or one of "internal", "unknown", "discard", "multiple".
func (p Port) String() string {
	switch p.Format {
	case PortDiscard:
		return "discard"
	case PortMultiple:
		return "multiple"
	case PortIfIndex:
		switch p.Value {
		case 0:
			return "unknown"
		case IfIndexInternal:
			return "internal"
		}
		return strconv.FormatUint(uint64(p.Value), 10)
	}
	return "unknown"
}

func compactPort(v uint32) Port {
	return Port{Format: PortFormat(v >> 30), Value: v & 0x3FFFFFFF}
}

// FlowSample is a flow sample, an expanded flow sample or a discarded-packet
// event (Format says which). Records says which record fields are valid.
type FlowSample struct {
	Format       uint32
	Sequence     uint32
	Source       DataSource
	SamplingRate uint32 // 0 for discarded-packet events, which are not sampled
	SamplePool   uint32
	Drops        uint32
	Input        Port
	Output       Port
	DropReason   uint32 // discarded-packet events only
	NumRecords   uint32

	Records         Records
	RawHeader       RawHeader
	SampledEthernet SampledEthernet
	SampledIPv4     SampledIP
	SampledIPv6     SampledIP
	Switch          ExtendedSwitch
	Router          ExtendedRouter
	Gateway         ExtendedGateway
	UnknownRecords  uint32
	// Raw is the sample as it came: its format, length and body, aliasing
	// the datagram, for forwarding it whole (package cluster). Detach
	// leaves it nil.
	Raw []byte
}

// RawHeader is the raw packet header record (0:1), with the header parsed.
type RawHeader struct {
	Protocol    uint32
	FrameLength uint32 // length of the original frame
	Stripped    uint32 // bytes removed from the frame before the header was taken
	Bytes       []byte // the sampled header; aliases the datagram
	Packet      Packet // the parsed header; Inner holds a VXLAN payload
	Inner       Packet
}

// SampledEthernet is the sampled Ethernet record (0:2).
type SampledEthernet struct {
	Length    uint32
	SrcMAC    MAC
	DstMAC    MAC
	EtherType uint32
}

// SampledIP is the sampled IPv4 (0:3) or IPv6 (0:4) record.
type SampledIP struct {
	Length   uint32
	Protocol uint32
	Src      netip.Addr
	Dst      netip.Addr
	SrcPort  uint32
	DstPort  uint32
	TCPFlags uint32
	TOS      uint32 // IPv4 type of service, or IPv6 priority
}

// ExtendedSwitch is the extended switch record (0:1001).
type ExtendedSwitch struct {
	SrcVLAN, SrcPriority uint32
	DstVLAN, DstPriority uint32
}

// ExtendedRouter is the extended router record (0:1002).
type ExtendedRouter struct {
	NextHop    netip.Addr
	SrcMaskLen uint32
	DstMaskLen uint32
}

// ExtendedGateway is the extended gateway record (0:1003). Its AS path and
// communities stay in their wire form; the Append methods read them out.
type ExtendedGateway struct {
	NextHop     netip.Addr
	AS          uint32 // the router's own AS
	SrcAS       uint32
	SrcPeerAS   uint32
	LocalPref   uint32
	Segments    uint32 // AS path segments
	Communities uint32 // community count
	path        []byte // validated dst_as_path segments
	comms       []byte // validated communities
}

// AS path segment types.
const (
	ASSet      = 1
	ASSequence = 2
)

// AppendASPath appends every AS number of the destination AS path, in order,
// to dst. Segment types are not kept; use EachSegment for them.
func (g *ExtendedGateway) AppendASPath(dst []uint32) []uint32 {
	g.EachSegment(func(_ uint32, asns []byte) {
		for i := 0; i+4 <= len(asns); i += 4 {
			dst = append(dst, be32(asns[i:]))
		}
	})
	return dst
}

// EachSegment calls fn for each AS path segment with its type and its AS
// numbers in wire form (4 bytes each, big-endian).
func (g *ExtendedGateway) EachSegment(fn func(segType uint32, asns []byte)) {
	b := g.path
	for len(b) >= 8 {
		t, n := be32(b), int(be32(b[4:]))
		fn(t, b[8:8+4*n])
		b = b[8+4*n:]
	}
}

// DstAS returns the last AS of the destination path (the origin), or 0.
func (g *ExtendedGateway) DstAS() uint32 {
	var last uint32
	g.EachSegment(func(_ uint32, asns []byte) {
		if len(asns) >= 4 {
			last = be32(asns[len(asns)-4:])
		}
	})
	return last
}

// AppendCommunities appends the communities to dst.
func (g *ExtendedGateway) AppendCommunities(dst []uint32) []uint32 {
	for i := 0; i+4 <= len(g.comms); i += 4 {
		dst = append(dst, be32(g.comms[i:]))
	}
	return dst
}

// CounterSample is a counter sample or an expanded counter sample.
type CounterSample struct {
	Format     uint32
	Sequence   uint32
	Source     DataSource
	NumRecords uint32
	// Raw is the whole sample as it came (format, length, body), aliasing
	// the datagram, as FlowSample.Raw; the same for each part of a split
	// sample.
	Raw []byte

	Records         Records
	Generic         GenericInterface
	Ethernet        EthernetCounters
	Processor       Processor
	PortName        []byte // aliases the datagram
	HostDescription HostDescription
	HostCPU         HostCPU
	HostMemory      HostMemory
	HostDiskIO      HostDiskIO
	HostNetIO       HostNetIO
	UnknownRecords  uint32

	// Continued marks a second (third, ...) delivery from one counter
	// sample that holds several records of one kind, such as one generic
	// interface record per port: same sequence number, other records.
	Continued bool
}

// GenericInterface is the generic interface counters record (0:1).
type GenericInterface struct {
	IfIndex          uint32
	IfType           uint32
	IfSpeed          uint64
	IfDirection      uint32 // 0 unknown, 1 full duplex, 2 half, 3 in, 4 out
	IfStatus         uint32 // bit 0 admin up, bit 1 oper up
	InOctets         uint64
	InUcastPkts      uint32
	InMulticastPkts  uint32
	InBroadcastPkts  uint32
	InDiscards       uint32
	InErrors         uint32
	InUnknownProtos  uint32
	OutOctets        uint64
	OutUcastPkts     uint32
	OutMulticastPkts uint32
	OutBroadcastPkts uint32
	OutDiscards      uint32
	OutErrors        uint32
	PromiscuousMode  uint32
}

// EthernetCounters is the Ethernet interface counters record (0:2).
type EthernetCounters struct {
	AlignmentErrors           uint32
	FCSErrors                 uint32
	SingleCollisionFrames     uint32
	MultipleCollisionFrames   uint32
	SQETestErrors             uint32
	DeferredTransmissions     uint32
	LateCollisions            uint32
	ExcessiveCollisions       uint32
	InternalMacTransmitErrors uint32
	CarrierSenseErrors        uint32
	FrameTooLongs             uint32
	InternalMacReceiveErrors  uint32
	SymbolErrors              uint32
}

// Processor is the processor counters record (0:1001). CPU figures are in
// hundredths of a percent.
type Processor struct {
	CPU5s, CPU1m, CPU5m uint32
	TotalMemory         uint64
	FreeMemory          uint64
}

// HostDescription is the host description record (0:2000).
type HostDescription struct {
	Hostname    []byte // aliases the datagram
	UUID        [16]byte
	MachineType uint32
	OSName      uint32
	OSRelease   []byte // aliases the datagram
}

// HostCPU is the host CPU record (0:2003), as hsflowd sends it: load
// averages, process counts, and cumulative CPU times in milliseconds.
// Steal, Guest and GuestNice are in the longer form only (HasSteal).
type HostCPU struct {
	LoadOne, LoadFive, LoadFifteen float32
	ProcRun, ProcTotal             uint32
	CPUNum, CPUSpeed               uint32 // CPUs; MHz
	Uptime                         uint32 // seconds
	User, Nice, System, Idle       uint32 // ms
	WIO, Intr, SoftIntr            uint32 // ms
	Interrupts, Contexts           uint32
	Steal, Guest, GuestNice        uint32 // ms
	HasSteal                       bool
}

// HostMemory is the host memory record (0:2004): sizes in bytes and
// cumulative page and swap counts.
type HostMemory struct {
	Total, Free, Shared, Buffers, Cached, SwapTotal, SwapFree uint64
	PageIn, PageOut, SwapIn, SwapOut                          uint32
}

// HostDiskIO is the host disk I/O record (0:2005). PartMaxUsed is the
// fullest partition's use in hundredths of a percent; times are in ms.
type HostDiskIO struct {
	Total, Free  uint64
	PartMaxUsed  int32
	Reads        uint32
	BytesRead    uint64
	ReadTime     uint32
	Writes       uint32
	BytesWritten uint64
	WriteTime    uint32
}

// HostNetIO is the host network I/O record (0:2006), cumulative over every
// interface of the host.
type HostNetIO struct {
	BytesIn                    uint64
	PktsIn, ErrsIn, DropsIn    uint32
	BytesOut                   uint64
	PktsOut, ErrsOut, DropsOut uint32
}

// Detach copies what the sample aliases of its datagram (the raw header's
// bytes, a gateway record's AS path and communities) to the end of buf and
// points the sample there, so that it outlives the datagram's buffer. It
// returns buf grown; a buf with room allocates nothing.
func (fs *FlowSample) Detach(buf []byte) []byte {
	move := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	fs.RawHeader.Bytes = move(fs.RawHeader.Bytes)
	fs.Gateway.path = move(fs.Gateway.path)
	fs.Gateway.comms = move(fs.Gateway.comms)
	fs.Raw = nil
	return buf
}
