package decode_test

import (
	"net/netip"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// countVisitor reads what a collector reads from every sample: the 5-tuple
// and the TTL of its parsed header.
type countVisitor struct {
	samples, counters int
	ttlSum            int
	ports             uint32
	last              netip.Addr
}

func (v *countVisitor) Flow(_ *decode.Datagram, s *decode.FlowSample) {
	v.samples++
	p := &s.RawHeader.Packet
	v.ttlSum += int(p.TTL)
	v.ports += uint32(p.SrcPort) + uint32(p.DstPort)
	v.last = p.Dst
}

func (v *countVisitor) Counter(*decode.Datagram, *decode.CounterSample) { v.counters++ }

// benchDatagram is the reference load: 1372 bytes, 7 compact flow samples,
// each a raw-header record of 128 bytes of Ethernet/IPv4/TCP.
func benchDatagram() []byte {
	d := &sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.0.11"), Sequence: 1}
	for i := range 7 {
		f := tcpFlow
		f.SrcPort = uint16(40000 + i)
		f.Pad = 1400
		d.Samples = append(d.Samples, &sflowtest.FlowSample{Sequence: uint32(i), Source: decode.DataSource{Index: 3},
			SamplingRate: 1024, SamplePool: uint32(i) * 1024, Input: decode.Port{Value: 3}, Output: decode.Port{Value: 52},
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Stripped: 4, Header: header(f, 128)}}})
	}
	return d.Bytes()
}

func TestBenchDatagramShape(t *testing.T) {
	if n := len(benchDatagram()); n != 1372 {
		t.Fatalf("reference datagram is %d bytes, want 1372", n)
	}
}

// BenchmarkDecode is the yardstick: the 7-sample datagram decoded
// with every header parsed. It reports ns per sample beside ns per datagram.
func BenchmarkDecode(b *testing.B) {
	buf := benchDatagram()
	var dec decode.Decoder
	var v countVisitor
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(buf, &v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*7), "ns/sample")
}

// BenchmarkWalkBaseline is the floor the decoder is measured against in the
// same run: reading the sample headers and each header's TTL byte with no
// record decoding or header parsing at all.
func BenchmarkWalkBaseline(b *testing.B) {
	buf := benchDatagram()
	b.SetBytes(int64(len(buf)))
	var sum int
	for b.Loop() {
		off := 28
		for range 7 {
			l := int(be32(buf[off+4:]))
			sum += int(buf[off+8+32+8+16+22]) // the TTL byte of the sampled IPv4 header
			off += 8 + l
		}
	}
	if sum == 0 {
		b.Fatal("walk read nothing")
	}
}

func BenchmarkParsePacket(b *testing.B) {
	hdr := header(tcpFlow, 128)
	var p, inner decode.Packet
	for b.Loop() {
		decode.ParsePacket(decode.HeaderEthernet, hdr, &p, &inner)
	}
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
