package decode_test

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// keep copies every flow sample, as a visitor that holds them past the
// datagram does.
type keep struct{ samples []decode.FlowSample }

func (k *keep) Flow(_ *decode.Datagram, fs *decode.FlowSample)  { k.samples = append(k.samples, *fs) }
func (k *keep) Counter(*decode.Datagram, *decode.CounterSample) {}

// A detached sample reads the same after its datagram's buffer is reused:
// its header bytes, AS path and communities were copied out.
func TestDetachOutlivesTheDatagram(t *testing.T) {
	hdr := (&sflowtest.Frame{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Protocol: sflowtest.ProtoTCP,
		SrcPort: 40000, DstPort: 443, TTL: 64}).Bytes()
	d := sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.0.1"), Samples: []sflowtest.Sample{
		&sflowtest.FlowSample{SamplingRate: 1000, Records: []sflowtest.Record{
			&sflowtest.RawHeader{FrameLength: 1518, Header: hdr},
			&sflowtest.ExtendedGateway{NextHop: netip.MustParseAddr("10.0.1.1"), AS: 65000,
				Path:        []sflowtest.Segment{{Type: decode.ASSequence, ASNs: []uint32{65001, 65102}}},
				Communities: []uint32{65000<<16 | 100}},
		}}}}
	b := d.Bytes()
	var k keep
	var dec decode.Decoder
	if _, err := dec.Decode(b, &k); err != nil {
		t.Fatal(err)
	}
	fs := &k.samples[0]
	wantPath := fs.Gateway.AppendASPath(nil)
	wantComms := fs.Gateway.AppendCommunities(nil)
	buf := make([]byte, 0, 2048)
	buf = fs.Detach(buf)
	clear(b) // the datagram's buffer, reused
	if !bytes.Equal(fs.RawHeader.Bytes, hdr[:len(fs.RawHeader.Bytes)]) || len(fs.RawHeader.Bytes) == 0 {
		t.Errorf("header bytes changed with the datagram's buffer")
	}
	if got := fs.Gateway.AppendASPath(nil); !slices.Equal(got, wantPath) || len(got) != 2 {
		t.Errorf("AS path %v, want %v", got, wantPath)
	}
	if got := fs.Gateway.AppendCommunities(nil); !slices.Equal(got, wantComms) {
		t.Errorf("communities %v, want %v", got, wantComms)
	}
	if n := testing.AllocsPerRun(100, func() { fs.Detach(buf[:0]) }); n != 0 {
		t.Errorf("Detach into a buffer with room allocates %v times", n)
	}
}
