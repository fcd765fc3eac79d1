// Package sflowtest writes sFlow v5 datagrams and sampled packet frames. It is
// the one source of truth for every datagram that tests, the fabric simulator
// and the load benchmark send, so the decoder is checked against what the
// spec says rather than against itself.
//
// Append methods write into a caller's buffer and allocate nothing once the
// buffer has room, so a load generator can reuse one buffer per datagram.
package sflowtest

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Datagram is an sFlow v5 datagram to encode.
type Datagram struct {
	Agent      netip.Addr
	SubAgentID uint32
	Sequence   uint32
	Uptime     uint32
	Samples    []Sample
}

// Sample is a sample that can be encoded into a datagram.
type Sample interface {
	format() uint32
	appendBody(b []byte) []byte
}

// Record is a flow or counter record that can be encoded into a sample.
type Record interface {
	Format() uint32
	AppendBody(b []byte) []byte
}

// Append encodes the datagram onto b.
func (d *Datagram) Append(b []byte) []byte {
	b = d.AppendHeader(b, len(d.Samples))
	for _, s := range d.Samples {
		b = AppendSample(b, s)
	}
	return b
}

// AppendHeader encodes the datagram header for a body of n samples, ignoring
// d.Samples: with AppendSample it lets a sender pack samples into a datagram
// one at a time and cut it at the size it wants.
func (d *Datagram) AppendHeader(b []byte, n int) []byte {
	b = u32(b, 5)
	b = appendAddr(b, d.Agent)
	b = u32(b, d.SubAgentID)
	b = u32(b, d.Sequence)
	b = u32(b, d.Uptime)
	return u32(b, uint32(n))
}

// AppendSample encodes one sample, with its format and length, onto b.
func AppendSample(b []byte, s Sample) []byte {
	b = u32(b, s.format())
	return withLength(b, s.appendBody)
}

// Bytes encodes the datagram into a new slice.
func (d *Datagram) Bytes() []byte { return d.Append(make([]byte, 0, 1500)) }

// FlowSample is a flow sample (0:1), or an expanded one (0:3) when Expanded.
type FlowSample struct {
	Expanded     bool
	Sequence     uint32
	Source       decode.DataSource
	SamplingRate uint32
	SamplePool   uint32
	Drops        uint32
	Input        decode.Port
	Output       decode.Port
	Records      []Record
}

func (s *FlowSample) format() uint32 {
	if s.Expanded {
		return decode.FormatExpandedFlowSample
	}
	return decode.FormatFlowSample
}

func (s *FlowSample) appendBody(b []byte) []byte {
	b = u32(b, s.Sequence)
	if s.Expanded {
		b = u32(b, s.Source.Class)
		b = u32(b, s.Source.Index)
	} else {
		b = u32(b, s.Source.Class<<24|s.Source.Index&0x00FFFFFF)
	}
	b = u32(b, s.SamplingRate)
	b = u32(b, s.SamplePool)
	b = u32(b, s.Drops)
	for _, p := range []decode.Port{s.Input, s.Output} {
		if s.Expanded {
			b = u32(b, uint32(p.Format))
			b = u32(b, p.Value)
		} else {
			b = u32(b, uint32(p.Format)<<30|p.Value&0x3FFFFFFF)
		}
	}
	return appendRecords(b, s.Records)
}

// CounterSample is a counter sample (0:2), or an expanded one (0:4).
type CounterSample struct {
	Expanded bool
	Sequence uint32
	Source   decode.DataSource
	Records  []Record
}

func (s *CounterSample) format() uint32 {
	if s.Expanded {
		return decode.FormatExpandedCounterSample
	}
	return decode.FormatCounterSample
}

func (s *CounterSample) appendBody(b []byte) []byte {
	b = u32(b, s.Sequence)
	if s.Expanded {
		b = u32(b, s.Source.Class)
		b = u32(b, s.Source.Index)
	} else {
		b = u32(b, s.Source.Class<<24|s.Source.Index&0x00FFFFFF)
	}
	return appendRecords(b, s.Records)
}

// DiscardSample is a discarded-packet event (0:5).
type DiscardSample struct {
	Sequence uint32
	Source   decode.DataSource
	Drops    uint32
	Input    uint32
	Output   uint32
	Reason   uint32
	Records  []Record
}

func (s *DiscardSample) format() uint32 { return decode.FormatDiscardedPacket }

func (s *DiscardSample) appendBody(b []byte) []byte {
	for _, v := range []uint32{s.Sequence, s.Source.Class, s.Source.Index, s.Drops, s.Input, s.Output, s.Reason} {
		b = u32(b, v)
	}
	return appendRecords(b, s.Records)
}

// RawSample is a sample of any format with a body given as bytes, for
// unknown formats and deliberately broken input.
type RawSample struct {
	DataFormat uint32
	Body       []byte
}

func (s *RawSample) format() uint32             { return s.DataFormat }
func (s *RawSample) appendBody(b []byte) []byte { return append(b, s.Body...) }

func appendRecords(b []byte, rs []Record) []byte {
	b = u32(b, uint32(len(rs)))
	for _, r := range rs {
		b = u32(b, r.Format())
		b = withLength(b, r.AppendBody)
	}
	return b
}

// withLength writes a length word, then the body fn appends, padded to 4.
func withLength(b []byte, fn func([]byte) []byte) []byte {
	at := len(b)
	b = u32(b, 0)
	b = fn(b)
	b = pad(b, len(b)-at-4)
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
	return b
}

// RawHeader is the raw packet header record (0:1).
type RawHeader struct {
	Protocol    uint32 // decode.HeaderEthernet by default
	FrameLength uint32
	Stripped    uint32
	Header      []byte
}

func (r *RawHeader) Format() uint32 { return decode.RecordRawHeader }

func (r *RawHeader) AppendBody(b []byte) []byte {
	p := r.Protocol
	if p == 0 {
		p = decode.HeaderEthernet
	}
	b = u32(b, p)
	b = u32(b, r.FrameLength)
	b = u32(b, r.Stripped)
	return appendOpaque(b, r.Header)
}

// SampledEthernet is the sampled Ethernet record (0:2).
type SampledEthernet decode.SampledEthernet

func (r *SampledEthernet) Format() uint32 { return decode.RecordSampledEthernet }

func (r *SampledEthernet) AppendBody(b []byte) []byte {
	b = u32(b, r.Length)
	b = append(b, r.SrcMAC[:]...)
	b = append(b, 0, 0)
	b = append(b, r.DstMAC[:]...)
	b = append(b, 0, 0)
	return u32(b, r.EtherType)
}

// SampledIP is the sampled IPv4 (0:3) or IPv6 (0:4) record, by Src's family.
type SampledIP decode.SampledIP

func (r *SampledIP) Format() uint32 {
	if r.Src.Is4() {
		return decode.RecordSampledIPv4
	}
	return decode.RecordSampledIPv6
}

func (r *SampledIP) AppendBody(b []byte) []byte {
	b = u32(b, r.Length)
	b = u32(b, r.Protocol)
	b = appendIP(b, r.Src)
	b = appendIP(b, r.Dst)
	for _, v := range []uint32{r.SrcPort, r.DstPort, r.TCPFlags, r.TOS} {
		b = u32(b, v)
	}
	return b
}

// ExtendedSwitch is the extended switch record (0:1001).
type ExtendedSwitch decode.ExtendedSwitch

func (r *ExtendedSwitch) Format() uint32 { return decode.RecordExtendedSwitch }

func (r *ExtendedSwitch) AppendBody(b []byte) []byte {
	for _, v := range []uint32{r.SrcVLAN, r.SrcPriority, r.DstVLAN, r.DstPriority} {
		b = u32(b, v)
	}
	return b
}

// ExtendedRouter is the extended router record (0:1002).
type ExtendedRouter decode.ExtendedRouter

func (r *ExtendedRouter) Format() uint32 { return decode.RecordExtendedRouter }

func (r *ExtendedRouter) AppendBody(b []byte) []byte {
	b = appendAddr(b, r.NextHop)
	b = u32(b, r.SrcMaskLen)
	return u32(b, r.DstMaskLen)
}

// Segment is one AS path segment of an extended gateway record.
type Segment struct {
	Type uint32 // decode.ASSet or decode.ASSequence
	ASNs []uint32
}

// ExtendedGateway is the extended gateway record (0:1003).
type ExtendedGateway struct {
	NextHop     netip.Addr
	AS          uint32
	SrcAS       uint32
	SrcPeerAS   uint32
	Path        []Segment
	Communities []uint32
	LocalPref   uint32
}

func (r *ExtendedGateway) Format() uint32 { return decode.RecordExtendedGateway }

func (r *ExtendedGateway) AppendBody(b []byte) []byte {
	b = appendAddr(b, r.NextHop)
	b = u32(b, r.AS)
	b = u32(b, r.SrcAS)
	b = u32(b, r.SrcPeerAS)
	b = u32(b, uint32(len(r.Path)))
	for _, s := range r.Path {
		b = u32(b, s.Type)
		b = u32(b, uint32(len(s.ASNs)))
		for _, a := range s.ASNs {
			b = u32(b, a)
		}
	}
	b = u32(b, uint32(len(r.Communities)))
	for _, c := range r.Communities {
		b = u32(b, c)
	}
	return u32(b, r.LocalPref)
}

// GenericInterface is the generic interface counters record (0:1).
type GenericInterface decode.GenericInterface

func (r *GenericInterface) Format() uint32 { return decode.RecordGenericInterface }

func (r *GenericInterface) AppendBody(b []byte) []byte {
	b = u32(b, r.IfIndex)
	b = u32(b, r.IfType)
	b = u64(b, r.IfSpeed)
	b = u32(b, r.IfDirection)
	b = u32(b, r.IfStatus)
	b = u64(b, r.InOctets)
	for _, v := range []uint32{r.InUcastPkts, r.InMulticastPkts, r.InBroadcastPkts, r.InDiscards, r.InErrors, r.InUnknownProtos} {
		b = u32(b, v)
	}
	b = u64(b, r.OutOctets)
	for _, v := range []uint32{r.OutUcastPkts, r.OutMulticastPkts, r.OutBroadcastPkts, r.OutDiscards, r.OutErrors, r.PromiscuousMode} {
		b = u32(b, v)
	}
	return b
}

// EthernetCounters is the Ethernet interface counters record (0:2).
type EthernetCounters decode.EthernetCounters

func (r *EthernetCounters) Format() uint32 { return decode.RecordEthernetCounters }

func (r *EthernetCounters) AppendBody(b []byte) []byte {
	for _, v := range []uint32{r.AlignmentErrors, r.FCSErrors, r.SingleCollisionFrames,
		r.MultipleCollisionFrames, r.SQETestErrors, r.DeferredTransmissions, r.LateCollisions,
		r.ExcessiveCollisions, r.InternalMacTransmitErrors, r.CarrierSenseErrors, r.FrameTooLongs,
		r.InternalMacReceiveErrors, r.SymbolErrors} {
		b = u32(b, v)
	}
	return b
}

// Processor is the processor counters record (0:1001).
type Processor decode.Processor

func (r *Processor) Format() uint32 { return decode.RecordProcessor }

func (r *Processor) AppendBody(b []byte) []byte {
	b = u32(b, r.CPU5s)
	b = u32(b, r.CPU1m)
	b = u32(b, r.CPU5m)
	b = u64(b, r.TotalMemory)
	return u64(b, r.FreeMemory)
}

// PortName is the port name counters record (0:1005).
type PortName string

func (r PortName) Format() uint32 { return decode.RecordPortName }

func (r PortName) AppendBody(b []byte) []byte { return appendOpaque(b, []byte(r)) }

// HostDescription is the host description counters record (0:2000).
type HostDescription struct {
	Hostname    string
	UUID        [16]byte
	MachineType uint32
	OSName      uint32
	OSRelease   string
}

func (r *HostDescription) Format() uint32 { return decode.RecordHostDescription }

func (r *HostDescription) AppendBody(b []byte) []byte {
	b = appendOpaque(b, []byte(r.Hostname))
	b = append(b, r.UUID[:]...)
	b = u32(b, r.MachineType)
	b = u32(b, r.OSName)
	return appendOpaque(b, []byte(r.OSRelease))
}

// HostCPU is the host CPU counters record (0:2003); the longer form, with
// steal and guest times, when HasSteal is set.
type HostCPU decode.HostCPU

func (r *HostCPU) Format() uint32 { return decode.RecordHostCPU }

func (r *HostCPU) AppendBody(b []byte) []byte {
	for _, f := range []float32{r.LoadOne, r.LoadFive, r.LoadFifteen} {
		b = u32(b, math.Float32bits(f))
	}
	for _, v := range []uint32{r.ProcRun, r.ProcTotal, r.CPUNum, r.CPUSpeed, r.Uptime, r.User, r.Nice,
		r.System, r.Idle, r.WIO, r.Intr, r.SoftIntr, r.Interrupts, r.Contexts} {
		b = u32(b, v)
	}
	if r.HasSteal {
		b = u32(u32(u32(b, r.Steal), r.Guest), r.GuestNice)
	}
	return b
}

// HostMemory is the host memory counters record (0:2004).
type HostMemory decode.HostMemory

func (r *HostMemory) Format() uint32 { return decode.RecordHostMemory }

func (r *HostMemory) AppendBody(b []byte) []byte {
	for _, v := range []uint64{r.Total, r.Free, r.Shared, r.Buffers, r.Cached, r.SwapTotal, r.SwapFree} {
		b = u64(b, v)
	}
	for _, v := range []uint32{r.PageIn, r.PageOut, r.SwapIn, r.SwapOut} {
		b = u32(b, v)
	}
	return b
}

// HostDiskIO is the host disk I/O counters record (0:2005).
type HostDiskIO decode.HostDiskIO

func (r *HostDiskIO) Format() uint32 { return decode.RecordHostDiskIO }

func (r *HostDiskIO) AppendBody(b []byte) []byte {
	b = u64(u64(b, r.Total), r.Free)
	b = u32(u32(b, uint32(r.PartMaxUsed)), r.Reads)
	b = u32(u64(b, r.BytesRead), r.ReadTime)
	b = u32(b, r.Writes)
	return u32(u64(b, r.BytesWritten), r.WriteTime)
}

// HostNetIO is the host network I/O counters record (0:2006).
type HostNetIO decode.HostNetIO

func (r *HostNetIO) Format() uint32 { return decode.RecordHostNetIO }

func (r *HostNetIO) AppendBody(b []byte) []byte {
	b = u32(u32(u32(u64(b, r.BytesIn), r.PktsIn), r.ErrsIn), r.DropsIn)
	return u32(u32(u32(u64(b, r.BytesOut), r.PktsOut), r.ErrsOut), r.DropsOut)
}

// Opaque is a record of any enterprise and format with a body given as bytes:
// an unknown record, or one of Open vSwitch's.
type Opaque struct {
	Enterprise uint32
	DataFormat uint32
	Body       []byte
}

func (r *Opaque) Format() uint32             { return r.Enterprise<<12 | r.DataFormat&0xFFF }
func (r *Opaque) AppendBody(b []byte) []byte { return append(b, r.Body...) }

func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func pad(b []byte, n int) []byte {
	for ; n%4 != 0; n++ {
		b = append(b, 0)
	}
	return b
}

func appendOpaque(b, data []byte) []byte {
	b = u32(b, uint32(len(data)))
	b = append(b, data...)
	return pad(b, len(data))
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		b = u32(b, 1)
	} else {
		b = u32(b, 2)
	}
	return appendIP(b, a)
}

// appendIP writes the address's 4 or 16 bytes, with no zone.
func appendIP(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}
