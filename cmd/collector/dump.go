package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/fabrictrace/fabrictrace/decode"
)

// dumpSink prints every sample as one JSON line, for looking at what agents
// really send. It allocates per sample, which is fine for a debugging aid and
// is why it is not the default.
type dumpSink struct {
	mu sync.Mutex
	w  io.Writer
}

type packetJSON struct {
	SrcMAC    string     `json:"srcMAC,omitempty"`
	DstMAC    string     `json:"dstMAC,omitempty"`
	VLAN      uint16     `json:"vlan,omitempty"`
	InnerVLAN uint16     `json:"innerVlan,omitempty"`
	EtherType string     `json:"etherType,omitempty"`
	Src       netip.Addr `json:"ipSource,omitzero"`
	Dst       netip.Addr `json:"ipDestination,omitzero"`
	Protocol  uint8      `json:"ipProtocol,omitempty"`
	TTL       uint8      `json:"ipTTL,omitempty"`
	DSCP      uint8      `json:"ipDSCP,omitempty"`
	IPLength  uint16     `json:"ipLength,omitempty"`
	SrcPort   uint16     `json:"srcPort,omitempty"`
	DstPort   uint16     `json:"dstPort,omitempty"`
	TCPFlags  uint16     `json:"tcpFlags,omitempty"`
	ICMPType  uint8      `json:"icmpType,omitempty"`
	VNI       uint32     `json:"vni,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
}

func packetOf(p *decode.Packet) *packetJSON {
	if p.Layers == 0 {
		return nil
	}
	j := &packetJSON{VLAN: p.VLAN, InnerVLAN: p.InnerVLAN, Src: p.Src, Dst: p.Dst, Protocol: p.Protocol, TTL: p.TTL,
		DSCP: p.DSCP, IPLength: p.IPLength, SrcPort: p.SrcPort, DstPort: p.DstPort, TCPFlags: p.TCPFlags,
		ICMPType: p.ICMPType, VNI: p.VNI, Truncated: p.Truncated}
	if p.Layers&decode.LayerEthernet != 0 {
		j.SrcMAC, j.DstMAC, j.EtherType = p.SrcMAC.String(), p.DstMAC.String(), fmt.Sprintf("0x%04x", p.EtherType)
	}
	return j
}

type flowJSON struct {
	Type         string      `json:"type"`
	Agent        netip.Addr  `json:"agent"`
	SubAgentID   uint32      `json:"subAgentId"`
	DatagramSeq  uint32      `json:"datagramSeq"`
	Seq          uint32      `json:"seq"`
	DataSource   string      `json:"dataSource"`
	SamplingRate uint32      `json:"samplingRate"`
	SamplePool   uint32      `json:"samplePool"`
	Drops        uint32      `json:"drops"`
	Input        string      `json:"inputifindex"`
	Output       string      `json:"outputifindex"`
	Reason       uint32      `json:"reason,omitempty"`
	FrameLength  uint32      `json:"frameLength,omitempty"`
	HeaderBytes  int         `json:"headerBytes,omitempty"`
	Packet       *packetJSON `json:"packet,omitempty"`
	Inner        *packetJSON `json:"inner,omitempty"`
	NextHop      netip.Addr  `json:"nextHop,omitzero"`
	ASPath       []uint32    `json:"asPath,omitempty"`
	Communities  []uint32    `json:"communities,omitempty"`
}

type counterJSON struct {
	Type        string     `json:"type"`
	Agent       netip.Addr `json:"agent"`
	SubAgentID  uint32     `json:"subAgentId"`
	DatagramSeq uint32     `json:"datagramSeq"`
	Seq         uint32     `json:"seq"`
	DataSource  string     `json:"dataSource"`
	IfIndex     uint32     `json:"ifIndex,omitempty"`
	IfSpeed     uint64     `json:"ifSpeed,omitempty"`
	IfStatus    uint32     `json:"ifStatus,omitempty"`
	InOctets    uint64     `json:"ifInOctets,omitempty"`
	OutOctets   uint64     `json:"ifOutOctets,omitempty"`
	InPkts      uint32     `json:"ifInUcastPkts,omitempty"`
	OutPkts     uint32     `json:"ifOutUcastPkts,omitempty"`
	PortName    string     `json:"ifName,omitempty"`
	Hostname    string     `json:"hostName,omitempty"`
	CPU1m       uint32     `json:"cpu1m,omitempty"`
	Unknown     uint32     `json:"unknownRecords,omitempty"`
}

func (s *dumpSink) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.w.Write(append(b, '\n'))
	s.mu.Unlock()
}

func (s *dumpSink) Flow(d *decode.Datagram, f *decode.FlowSample) {
	j := flowJSON{Type: "flow", Agent: d.Agent, SubAgentID: d.SubAgentID, DatagramSeq: d.Sequence, Seq: f.Sequence,
		DataSource: f.Source.String(), SamplingRate: f.SamplingRate, SamplePool: f.SamplePool, Drops: f.Drops,
		Input: f.Input.String(), Output: f.Output.String()}
	if f.Format == decode.FormatDiscardedPacket {
		j.Type, j.Reason = "discard", f.DropReason
	}
	if f.Records&decode.HasRawHeader != 0 {
		j.FrameLength, j.HeaderBytes = f.RawHeader.FrameLength, len(f.RawHeader.Bytes)
		j.Packet = packetOf(&f.RawHeader.Packet)
		if f.RawHeader.Packet.Layers&decode.LayerVXLAN != 0 {
			j.Inner = packetOf(&f.RawHeader.Inner)
		}
	}
	if f.Records&decode.HasExtendedRouter != 0 {
		j.NextHop = f.Router.NextHop
	}
	if f.Records&decode.HasExtendedGateway != 0 {
		j.NextHop = f.Gateway.NextHop
		j.ASPath = f.Gateway.AppendASPath(nil)
		j.Communities = f.Gateway.AppendCommunities(nil)
	}
	s.write(j)
}

func (s *dumpSink) Counter(d *decode.Datagram, c *decode.CounterSample) {
	j := counterJSON{Type: "counter", Agent: d.Agent, SubAgentID: d.SubAgentID, DatagramSeq: d.Sequence, Seq: c.Sequence,
		DataSource: c.Source.String(), Unknown: c.UnknownRecords}
	// Fields of records the sample did not carry are stale: the decoder
	// reuses its sample, and PortName aliases a receive buffer since reused.
	if c.Records&decode.HasPortName != 0 {
		j.PortName = string(c.PortName) // a copy
	}
	if c.Records&decode.HasGenericInterface != 0 {
		g := &c.Generic
		j.IfIndex, j.IfSpeed, j.IfStatus = g.IfIndex, g.IfSpeed, g.IfStatus
		j.InOctets, j.OutOctets, j.InPkts, j.OutPkts = g.InOctets, g.OutOctets, g.InUcastPkts, g.OutUcastPkts
	}
	if c.Records&decode.HasHostDescription != 0 {
		j.Hostname = string(c.HostDescription.Hostname)
	}
	if c.Records&decode.HasProcessor != 0 {
		j.CPU1m = c.Processor.CPU1m
	}
	s.write(j)
}
