package decode_test

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// flowRecord is a FlowSample as a test keeps it: slices copied, the gateway's
// path and communities read out.
type flowRecord struct {
	Datagram    uint32 // datagram sequence
	Sample      decode.FlowSample
	Header      []byte
	ASPath      []uint32
	Communities []uint32
}

type counterRecord struct {
	Sample    decode.CounterSample
	PortName  string
	Hostname  string
	OSRelease string
}

// recorder is a Visitor that keeps copies of everything it is given.
type recorder struct {
	flows    []flowRecord
	counters []counterRecord
}

func (r *recorder) Flow(d *decode.Datagram, s *decode.FlowSample) {
	rec := flowRecord{Datagram: d.Sequence, Sample: *s, Header: bytes.Clone(s.RawHeader.Bytes)}
	rec.Sample.RawHeader.Bytes = nil
	if s.Records&decode.HasExtendedGateway != 0 {
		rec.ASPath = s.Gateway.AppendASPath(nil)
		rec.Communities = s.Gateway.AppendCommunities(nil)
	}
	rec.Sample.Gateway = decode.ExtendedGateway{}
	if s.Records&decode.HasExtendedGateway != 0 {
		g := s.Gateway
		rec.Sample.Gateway = decode.ExtendedGateway{NextHop: g.NextHop, AS: g.AS, SrcAS: g.SrcAS,
			SrcPeerAS: g.SrcPeerAS, LocalPref: g.LocalPref, Segments: g.Segments, Communities: g.Communities}
	}
	r.flows = append(r.flows, rec)
}

func (r *recorder) Counter(_ *decode.Datagram, s *decode.CounterSample) {
	rec := counterRecord{Sample: *s}
	if s.Records&decode.HasPortName != 0 {
		rec.PortName = string(s.PortName)
	}
	if s.Records&decode.HasHostDescription != 0 {
		rec.Hostname, rec.OSRelease = string(s.HostDescription.Hostname), string(s.HostDescription.OSRelease)
	}
	rec.Sample.PortName, rec.Sample.HostDescription.Hostname, rec.Sample.HostDescription.OSRelease = nil, nil, nil
	r.counters = append(r.counters, rec)
}

var (
	agent4  = netip.MustParseAddr("10.255.0.11")
	agent6  = netip.MustParseAddr("2001:db8::11")
	macA    = decode.MAC{0x02, 0, 0, 0, 0, 0x0a}
	macB    = decode.MAC{0x02, 0, 0, 0, 0, 0x0b}
	srcIP   = netip.MustParseAddr("172.16.1.11")
	dstIP   = netip.MustParseAddr("172.16.1.21")
	src6    = netip.MustParseAddr("fd00:16::11")
	dst6    = netip.MustParseAddr("fd00:16::21")
	tcpFlow = sflowtest.Frame{SrcMAC: macA, DstMAC: macB, Src: srcIP, Dst: dstIP,
		Protocol: sflowtest.ProtoTCP, TTL: 63, SrcPort: 40000, DstPort: 443, TCPFlags: 0x18, Pad: 200}
)

func header(f sflowtest.Frame, snap int) []byte {
	b := f.Bytes()
	return b[:min(snap, len(b))]
}

// everything is a datagram with every sample format and every record type.
func everything(agent netip.Addr) *sflowtest.Datagram {
	hdr := header(tcpFlow, 128)
	return &sflowtest.Datagram{Agent: agent, SubAgentID: 3, Sequence: 77, Uptime: 123456, Samples: []sflowtest.Sample{
		&sflowtest.FlowSample{Sequence: 1, Source: decode.DataSource{Class: 0, Index: 5}, SamplingRate: 64,
			SamplePool: 6400, Drops: 2, Input: decode.Port{Value: 5}, Output: decode.Port{Value: decode.IfIndexInternal},
			Records: []sflowtest.Record{
				&sflowtest.RawHeader{FrameLength: 1518, Stripped: 4, Header: hdr},
				&sflowtest.SampledEthernet{Length: 1518, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800},
				&sflowtest.SampledIP{Length: 1500, Protocol: 6, Src: srcIP, Dst: dstIP, SrcPort: 40000, DstPort: 443, TCPFlags: 0x18, TOS: 0x20},
				&sflowtest.SampledIP{Length: 1500, Protocol: 17, Src: src6, Dst: dst6, SrcPort: 5353, DstPort: 53, TOS: 7},
				&sflowtest.ExtendedSwitch{SrcVLAN: 10, SrcPriority: 1, DstVLAN: 20, DstPriority: 2},
				&sflowtest.ExtendedRouter{NextHop: netip.MustParseAddr("10.0.1.1"), SrcMaskLen: 24, DstMaskLen: 32},
				&sflowtest.ExtendedGateway{NextHop: netip.MustParseAddr("2001:db8::1"), AS: 65000, SrcAS: 65101, SrcPeerAS: 65101,
					Path:        []sflowtest.Segment{{Type: decode.ASSequence, ASNs: []uint32{65001, 65102}}, {Type: decode.ASSet, ASNs: []uint32{64512}}},
					Communities: []uint32{65000<<16 | 100, 0xFFFFFF01}, LocalPref: 200},
				&sflowtest.Opaque{Enterprise: 4413, DataFormat: 7, Body: []byte{1, 2, 3, 4}},
			}},
		&sflowtest.FlowSample{Expanded: true, Sequence: 2, Source: decode.DataSource{Class: 0, Index: 0x01000005}, SamplingRate: 1000,
			SamplePool: 100000, Input: decode.Port{Format: decode.PortIfIndex, Value: 0x01000005},
			Output:  decode.Port{Format: decode.PortMultiple, Value: 3},
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: hdr}}},
		&sflowtest.CounterSample{Sequence: 9, Source: decode.DataSource{Index: 5}, Records: []sflowtest.Record{
			&sflowtest.GenericInterface{IfIndex: 5, IfType: 6, IfSpeed: 10e9, IfDirection: 1, IfStatus: 3,
				InOctets: 1 << 40, InUcastPkts: 1, InMulticastPkts: 2, InBroadcastPkts: 3, InDiscards: 4, InErrors: 5,
				InUnknownProtos: 6, OutOctets: 1<<40 + 1, OutUcastPkts: 7, OutMulticastPkts: 8, OutBroadcastPkts: 9,
				OutDiscards: 10, OutErrors: 11, PromiscuousMode: 1},
			&sflowtest.EthernetCounters{AlignmentErrors: 1, FCSErrors: 2, SingleCollisionFrames: 3, MultipleCollisionFrames: 4,
				SQETestErrors: 5, DeferredTransmissions: 6, LateCollisions: 7, ExcessiveCollisions: 8,
				InternalMacTransmitErrors: 9, CarrierSenseErrors: 10, FrameTooLongs: 11, InternalMacReceiveErrors: 12, SymbolErrors: 13},
			sflowtest.PortName("swp51"),
			&sflowtest.Opaque{DataFormat: 2207, Body: make([]byte, 52)}, // Open vSwitch datapath
		}},
		&sflowtest.CounterSample{Expanded: true, Sequence: 10, Source: decode.DataSource{Class: 2, Index: 1}, Records: []sflowtest.Record{
			&sflowtest.Processor{CPU5s: 150, CPU1m: 250, CPU5m: 350, TotalMemory: 1 << 34, FreeMemory: 1 << 33},
			&sflowtest.HostDescription{Hostname: "leaf1", UUID: [16]byte{1, 2, 3}, MachineType: 3, OSName: 2, OSRelease: "6.1.0-cumulus"},
		}},
		&sflowtest.DiscardSample{Sequence: 4, Source: decode.DataSource{Class: 0, Index: 7}, Drops: 12, Input: 7, Output: 0, Reason: 259,
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: hdr}}},
		&sflowtest.RawSample{DataFormat: 4413<<12 | 1, Body: []byte{0, 0, 0, 0}},
	}}
}

func decodeAll(t testing.TB, b []byte) (*recorder, *decode.Datagram, error) {
	t.Helper()
	var dec decode.Decoder
	r := &recorder{}
	dg, err := dec.Decode(b, r)
	cp := *dg
	return r, &cp, err
}

func TestRoundTripEveryRecordType(t *testing.T) {
	for _, agent := range []netip.Addr{agent4, agent6} {
		t.Run(agent.String(), func(t *testing.T) {
			r, dg, err := decodeAll(t, everything(agent).Bytes())
			if err != nil {
				t.Fatal(err)
			}
			want := decode.Datagram{Version: 5, Agent: agent, SubAgentID: 3, Sequence: 77, Uptime: 123456, NumSamples: 6,
				FlowSamples: 2, CounterSamples: 2, DiscardSamples: 1, UnknownSamples: 1, UnknownRecords: 2}
			if *dg != want {
				t.Errorf("datagram\n got %+v\nwant %+v", *dg, want)
			}
			if len(r.flows) != 3 || len(r.counters) != 2 {
				t.Fatalf("got %d flow and %d counter samples, want 3 and 2", len(r.flows), len(r.counters))
			}

			f := r.flows[0]
			s := f.Sample
			if s.Format != decode.FormatFlowSample || s.Sequence != 1 || s.Source != (decode.DataSource{Index: 5}) ||
				s.SamplingRate != 64 || s.SamplePool != 6400 || s.Drops != 2 || s.NumRecords != 8 || s.UnknownRecords != 1 {
				t.Errorf("flow sample header: %+v", s)
			}
			if s.Input.String() != "5" || s.Output.String() != "internal" {
				t.Errorf("ports: input %s output %s", s.Input, s.Output)
			}
			wantHas := decode.HasRawHeader | decode.HasSampledEthernet | decode.HasSampledIPv4 | decode.HasSampledIPv6 |
				decode.HasExtendedSwitch | decode.HasExtendedRouter | decode.HasExtendedGateway
			if s.Records != wantHas {
				t.Errorf("records %b, want %b", s.Records, wantHas)
			}
			if !bytes.Equal(f.Header, header(tcpFlow, 128)) || s.RawHeader.FrameLength != 1518 || s.RawHeader.Stripped != 4 {
				t.Errorf("raw header: %+v, %d bytes", s.RawHeader, len(f.Header))
			}
			p := s.RawHeader.Packet
			if p.Src != srcIP || p.Dst != dstIP || p.TTL != 63 || p.SrcPort != 40000 || p.DstPort != 443 || p.TCPFlags != 0x18 {
				t.Errorf("parsed header: %+v", p)
			}
			if s.SampledEthernet != (decode.SampledEthernet{Length: 1518, SrcMAC: macA, DstMAC: macB, EtherType: 0x0800}) {
				t.Errorf("sampled ethernet: %+v", s.SampledEthernet)
			}
			if s.SampledIPv4 != (decode.SampledIP{Length: 1500, Protocol: 6, Src: srcIP, Dst: dstIP, SrcPort: 40000, DstPort: 443, TCPFlags: 0x18, TOS: 0x20}) {
				t.Errorf("sampled IPv4: %+v", s.SampledIPv4)
			}
			if s.SampledIPv6 != (decode.SampledIP{Length: 1500, Protocol: 17, Src: src6, Dst: dst6, SrcPort: 5353, DstPort: 53, TOS: 7}) {
				t.Errorf("sampled IPv6: %+v", s.SampledIPv6)
			}
			if s.Switch != (decode.ExtendedSwitch{SrcVLAN: 10, SrcPriority: 1, DstVLAN: 20, DstPriority: 2}) {
				t.Errorf("switch: %+v", s.Switch)
			}
			if s.Router != (decode.ExtendedRouter{NextHop: netip.MustParseAddr("10.0.1.1"), SrcMaskLen: 24, DstMaskLen: 32}) {
				t.Errorf("router: %+v", s.Router)
			}
			g := s.Gateway
			if g.NextHop != netip.MustParseAddr("2001:db8::1") || g.AS != 65000 || g.SrcAS != 65101 || g.SrcPeerAS != 65101 ||
				g.LocalPref != 200 || g.Segments != 2 || g.Communities != 2 {
				t.Errorf("gateway: %+v", g)
			}
			if !reflect.DeepEqual(f.ASPath, []uint32{65001, 65102, 64512}) || !reflect.DeepEqual(f.Communities, []uint32{65000<<16 | 100, 0xFFFFFF01}) {
				t.Errorf("gateway path %v communities %v", f.ASPath, f.Communities)
			}

			x := r.flows[1].Sample
			if x.Format != decode.FormatExpandedFlowSample || x.Source != (decode.DataSource{Index: 0x01000005}) ||
				x.Input.String() != "16777221" || x.Output.String() != "multiple" || x.Output.Value != 3 || x.SamplingRate != 1000 {
				t.Errorf("expanded flow sample: %+v", x)
			}
			ev := r.flows[2].Sample
			if ev.Format != decode.FormatDiscardedPacket || ev.Drops != 12 || ev.DropReason != 259 || ev.Input.String() != "7" ||
				ev.Output.String() != "unknown" || ev.Source.Index != 7 || ev.Records != decode.HasRawHeader {
				t.Errorf("discard event: %+v", ev)
			}

			c := r.counters[0]
			if c.Sample.Format != decode.FormatCounterSample || c.Sample.Sequence != 9 || c.Sample.UnknownRecords != 1 ||
				c.Sample.Records != decode.HasGenericInterface|decode.HasEthernetCounters|decode.HasPortName || c.PortName != "swp51" {
				t.Errorf("counter sample: %+v", c)
			}
			gi := c.Sample.Generic
			if gi.IfIndex != 5 || gi.IfSpeed != 10e9 || gi.InOctets != 1<<40 || gi.OutOctets != 1<<40+1 || gi.OutErrors != 11 || gi.PromiscuousMode != 1 || gi.InUnknownProtos != 6 {
				t.Errorf("generic interface: %+v", gi)
			}
			if c.Sample.Ethernet.SymbolErrors != 13 || c.Sample.Ethernet.AlignmentErrors != 1 || c.Sample.Ethernet.FrameTooLongs != 11 {
				t.Errorf("ethernet counters: %+v", c.Sample.Ethernet)
			}
			h := r.counters[1]
			if h.Sample.Format != decode.FormatExpandedCounterSample || h.Sample.Source != (decode.DataSource{Class: 2, Index: 1}) ||
				h.Sample.Processor != (decode.Processor{CPU5s: 150, CPU1m: 250, CPU5m: 350, TotalMemory: 1 << 34, FreeMemory: 1 << 33}) ||
				h.Hostname != "leaf1" || h.OSRelease != "6.1.0-cumulus" || h.Sample.HostDescription.UUID[2] != 3 ||
				h.Sample.HostDescription.MachineType != 3 || h.Sample.HostDescription.OSName != 2 {
				t.Errorf("host counters: %+v", h)
			}
		})
	}
}

func TestPortSpecialValues(t *testing.T) {
	for _, tc := range []struct {
		port  decode.Port
		want  string
		ifIdx bool
	}{
		{decode.Port{Value: 7}, "7", true},
		{decode.Port{Value: 0}, "unknown", false},
		{decode.Port{Value: decode.IfIndexInternal}, "internal", false},
		{decode.Port{Format: decode.PortDiscard, Value: 256}, "discard", false},
		{decode.Port{Format: decode.PortMultiple, Value: 0}, "multiple", false},
		{decode.Port{Format: decode.PortMultiple, Value: 4}, "multiple", false},
	} {
		// Round-trip through both the compact and the expanded encoding.
		for _, expanded := range []bool{false, true} {
			d := &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
				Expanded: expanded, SamplingRate: 1, Input: tc.port, Output: tc.port}}}
			r, _, err := decodeAll(t, d.Bytes())
			if err != nil || len(r.flows) != 1 {
				t.Fatalf("%v: %v", tc.port, err)
			}
			in, out := r.flows[0].Sample.Input, r.flows[0].Sample.Output
			if in != tc.port || out != tc.port || in.String() != tc.want {
				t.Errorf("expanded=%v: %+v decoded as %+v (%s), want %s", expanded, tc.port, in, in, tc.want)
			}
			if _, ok := in.IfIndex(); ok != tc.ifIdx {
				t.Errorf("%+v IfIndex ok=%v", tc.port, ok)
			}
		}
	}
	// The compact form keeps the format in the top two bits: OVS's "no flows"
	// output 0x40000100 is discard reason 256.
	raw := (&sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{&sflowtest.FlowSample{SamplingRate: 1}}}).Bytes()
	copy(raw[28+8+24:], []byte{0x40, 0x00, 0x01, 0x00})
	r, _, err := decodeAll(t, raw)
	if err != nil || r.flows[0].Sample.Output != (decode.Port{Format: decode.PortDiscard, Value: 256}) {
		t.Errorf("0x40000100: %+v %v", r.flows[0].Sample.Output, err)
	}
}

func TestDataSourceString(t *testing.T) {
	if s := (decode.DataSource{Index: 3}).String(); s != "3" {
		t.Errorf("got %q", s)
	}
	if s := (decode.DataSource{Class: 2, Index: 1000}).String(); s != "2.1000" {
		t.Errorf("got %q", s)
	}
}

func TestBadInput(t *testing.T) {
	good := func() *sflowtest.Datagram {
		return &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{
			&sflowtest.FlowSample{Sequence: 1, SamplingRate: 10, Records: []sflowtest.Record{&sflowtest.RawHeader{Header: header(tcpFlow, 128)}}},
			&sflowtest.FlowSample{Sequence: 2, SamplingRate: 10, Records: []sflowtest.Record{&sflowtest.RawHeader{Header: header(tcpFlow, 128)}}},
			&sflowtest.FlowSample{Sequence: 3, SamplingRate: 10, Records: []sflowtest.Record{&sflowtest.RawHeader{Header: header(tcpFlow, 128)}}},
		}}
	}
	tests := []struct {
		name      string
		mutate    func(d *sflowtest.Datagram, b []byte) []byte
		err       error
		structure string
		offset    int
		delivered []uint32 // sample sequence numbers delivered
		faults    uint32
	}{
		{"version 4", func(_ *sflowtest.Datagram, b []byte) []byte { b[3] = 4; return b }, decode.ErrVersion, "datagram header", 0, nil, 0},
		{"address type 7", func(_ *sflowtest.Datagram, b []byte) []byte { b[7] = 7; return b }, decode.ErrAddressType, "datagram header", 4, nil, 0},
		{"empty", func(_ *sflowtest.Datagram, b []byte) []byte { return b[:0] }, decode.ErrTruncated, "datagram header", 0, nil, 0},
		{"header cut", func(_ *sflowtest.Datagram, b []byte) []byte { return b[:20] }, decode.ErrTruncated, "datagram header", 12, nil, 0},
		{"absurd sample count", func(_ *sflowtest.Datagram, b []byte) []byte { copy(b[24:], []byte{0x7f, 0xff, 0xff, 0xff}); return b },
			decode.ErrCount, "datagram header", 24, nil, 1},
		{"sampling rate 0 in the middle", func(d *sflowtest.Datagram, _ []byte) []byte {
			d.Samples[1].(*sflowtest.FlowSample).SamplingRate = 0
			return d.Bytes()
		}, decode.ErrSamplingRate, "flow sample", 28 + 192 + 8 + 8, []uint32{1, 3}, 1},
		{"absurd record count", func(d *sflowtest.Datagram, b []byte) []byte {
			copy(b[28+8+28:], []byte{0xff, 0xff, 0xff, 0xff})
			return b
		}, decode.ErrCount, "flow sample", 28 + 8 + 28, []uint32{2, 3}, 1},
		{"record length lie", func(d *sflowtest.Datagram, b []byte) []byte {
			copy(b[28+192+8+32+4:], []byte{0, 0, 0x10, 0})
			return b
		}, decode.ErrLength, "flow sample", 28 + 192 + 8 + 32 + 4, []uint32{1, 3}, 1},
		{"raw header length lie", func(d *sflowtest.Datagram, b []byte) []byte {
			copy(b[28+8+32+8+12:], []byte{0, 0, 0, 200})
			return b
		}, decode.ErrLength, "raw packet header record", 28 + 8 + 32 + 8 + 12, []uint32{2, 3}, 1},
		{"sample length lie", func(d *sflowtest.Datagram, b []byte) []byte {
			copy(b[28+192+4:], []byte{0, 1, 0, 0})
			return b
		}, decode.ErrLength, "sample header", 28 + 192 + 4, []uint32{1}, 2},
		{"cut in the last sample", func(d *sflowtest.Datagram, b []byte) []byte { return b[:len(b)-10] },
			decode.ErrLength, "sample header", 28 + 2*192 + 4, []uint32{1, 2}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := good()
			b := tc.mutate(d, d.Bytes())
			r, dg, err := decodeAll(t, b)
			var de *decode.Error
			if !errors.As(err, &de) || !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want a *decode.Error wrapping %v", err, tc.err)
			}
			if de.Structure != tc.structure || de.Offset != tc.offset {
				t.Errorf("fault in %q at %d, want %q at %d (%v)", de.Structure, de.Offset, tc.structure, tc.offset, err)
			}
			if !strings.Contains(err.Error(), tc.structure) {
				t.Errorf("message %q does not name %q", err, tc.structure)
			}
			var got []uint32
			for _, f := range r.flows {
				got = append(got, f.Sample.Sequence)
			}
			if !reflect.DeepEqual(got, tc.delivered) || dg.Faults != tc.faults {
				t.Errorf("delivered %v with %d faults, want %v with %d", got, dg.Faults, tc.delivered, tc.faults)
			}
		})
	}
}

// Every prefix of a valid datagram decodes without panic, delivers only
// samples that were whole, and reports a fault unless it is the whole thing.
func TestEveryTruncation(t *testing.T) {
	b := everything(agent6).Bytes()
	full, _, _ := decodeAll(t, b)
	for n := 0; n < len(b); n++ {
		r, _, err := decodeAll(t, b[:n])
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(b))
		}
		if len(r.flows) > len(full.flows) || len(r.counters) > len(full.counters) {
			t.Fatalf("prefix of %d bytes delivered more than the whole", n)
		}
		for i := range r.flows {
			if !reflect.DeepEqual(r.flows[i], full.flows[i]) {
				t.Fatalf("prefix of %d bytes: flow sample %d differs from the whole datagram's", n, i)
			}
		}
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	b := benchDatagram()
	var dec decode.Decoder
	var v countVisitor
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := dec.Decode(b, &v); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %.1f times per datagram", allocs)
	}
	all := everything(agent6).Bytes()
	if allocs := testing.AllocsPerRun(100, func() { dec.Decode(all, &v) }); allocs != 0 {
		t.Errorf("Decode of every record type allocates %.1f times per datagram", allocs)
	}
}

// pmacctd's sfprobe puts one generic interface record per port into a single
// counter sample; each must reach the visitor, the later ones as
// continuations of the same sample.
func TestCounterSampleWithRepeatedRecords(t *testing.T) {
	d := &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{&sflowtest.CounterSample{Sequence: 7, Source: decode.DataSource{Index: 1},
		Records: []sflowtest.Record{
			&sflowtest.GenericInterface{IfIndex: 1, InOctets: 390},
			&sflowtest.GenericInterface{IfIndex: 2, InOctets: 1384},
			sflowtest.PortName("swp2"),
			&sflowtest.GenericInterface{IfIndex: 3, InOctets: 7},
		}}}}
	r, dg, err := decodeAll(t, d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.counters) != 3 || dg.CounterSamples != 1 {
		t.Fatalf("%d deliveries of %d samples, want 3 of 1", len(r.counters), dg.CounterSamples)
	}
	for i, want := range []struct {
		ifIndex   uint32
		octets    uint64
		port      string
		continued bool
	}{{1, 390, "", false}, {2, 1384, "swp2", true}, {3, 7, "", true}} {
		c := r.counters[i]
		if c.Sample.Generic.IfIndex != want.ifIndex || c.Sample.Generic.InOctets != want.octets || c.PortName != want.port ||
			c.Sample.Continued != want.continued || c.Sample.Sequence != 7 {
			t.Errorf("delivery %d: %+v (port %q)", i, c.Sample, c.PortName)
		}
	}
}

// A split counter sample whose last record is bad delivers no part of itself:
// the fault is found before anything goes out.
func TestSplitCounterSampleWithAFaultDeliversNothing(t *testing.T) {
	d := &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{&sflowtest.CounterSample{Sequence: 7, Source: decode.DataSource{Index: 1},
		Records: []sflowtest.Record{
			&sflowtest.GenericInterface{IfIndex: 1},
			&sflowtest.GenericInterface{IfIndex: 2},
			&sflowtest.Opaque{DataFormat: decode.RecordGenericInterface, Body: make([]byte, 40)}, // too short
		}}}}
	r, dg, err := decodeAll(t, d.Bytes())
	var de *decode.Error
	if !errors.As(err, &de) || de.Structure != "generic interface counters" {
		t.Fatalf("err %v, want a generic interface fault", err)
	}
	if len(r.counters) != 0 || dg.CounterSamples != 0 || dg.Faults != 1 {
		t.Fatalf("%d parts delivered, %d samples, %d faults; want 0, 0, 1", len(r.counters), dg.CounterSamples, dg.Faults)
	}
}
