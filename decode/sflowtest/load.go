package sflowtest

import (
	"net/netip"

	"github.com/fabrictrace/fabrictrace/decode"
)

// LoadSamplesPerDatagram is how many flow samples each LoadDatagrams
// datagram holds: 1372 bytes in all.
const LoadSamplesPerDatagram = 7

// LoadDatagrams is the rate ladder's load (cmd/sflowbench), also run in
// process by the flow engine's benchmarks: datagrams of 7 flow samples with
// 128-byte Ethernet/IPv4/TCP headers, over tuples 5-tuples (at least 448),
// from 4 agents (datagram i is agent i%4's) with 7 data sources each and
// TTLs 62 to 64, sampled 1 in 1000 at 1518 bytes. Sequence numbers are 0:
// a sender stamps its own.
func LoadDatagrams(tuples int) [][]byte {
	var out [][]byte
	for i := range max(tuples/LoadSamplesPerDatagram, 64) {
		d := Datagram{Agent: netip.AddrFrom4([4]byte{10, 255, 1, byte(i%4 + 1)})}
		for s := range LoadSamplesPerDatagram {
			t := i*LoadSamplesPerDatagram + s
			f := Frame{Src: netip.AddrFrom4([4]byte{172, 16, byte(t >> 8), byte(t)}),
				Dst: netip.AddrFrom4([4]byte{172, 17, byte(t >> 16), byte(t >> 4)}), Protocol: ProtoTCP,
				TTL: uint8(64 - t%3), SrcPort: uint16(1024 + t%50000), DstPort: 443, Pad: 128}
			d.Samples = append(d.Samples, &FlowSample{Source: decode.DataSource{Index: uint32(1 + s)},
				SamplingRate: 1000, Input: decode.Port{Value: uint32(1 + s)}, Output: decode.Port{Value: 51},
				Records: []Record{&RawHeader{FrameLength: 1518, Stripped: 4, Header: f.Bytes()[:128]}}})
		}
		out = append(out, d.Bytes())
	}
	return out
}
