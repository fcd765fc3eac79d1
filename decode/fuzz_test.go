package decode_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
)

// FuzzDecode feeds the decoder arbitrary bytes. Seeds: every record type,
// the benchmark datagram, random datagrams, and datagrams captured from Open
// vSwitch and pmacctd (testdata/captures). Found inputs are kept in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(everything(agent4).Bytes())
	f.Add(everything(agent6).Bytes())
	f.Add(benchDatagram())
	r := rand.New(rand.NewPCG(3, 4))
	for range 16 {
		f.Add(randomDatagram(r))
	}
	files, _ := filepath.Glob("testdata/captures/*.sflow")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var dec decode.Decoder
		var c canon
		dg, err := dec.Decode(b, &c)
		delivered := dg.FlowSamples + dg.CounterSamples + dg.DiscardSamples
		if int(delivered) != len(c.lines)-c.continued {
			t.Fatalf("datagram counts %d samples, visitor saw %d and %d continuations", delivered, len(c.lines), c.continued)
		}
		if delivered+dg.UnknownSamples+dg.Faults > dg.NumSamples && dg.NumSamples != 0 {
			t.Fatalf("%d delivered + %d unknown + %d faults > %d declared", delivered, dg.UnknownSamples, dg.Faults, dg.NumSamples)
		}
		if err == nil && dg.Faults != 0 || err != nil && !errors.As(err, new(*decode.Error)) {
			t.Fatalf("err %v with %d faults", err, dg.Faults)
		}
		// Decoding is a pure function of the bytes.
		var again canon
		dec.Decode(b, &again)
		if len(again.lines) != len(c.lines) {
			t.Fatalf("second decode delivered %d samples, first %d", len(again.lines), len(c.lines))
		}
		for i := range c.lines {
			if c.lines[i] != again.lines[i] {
				t.Fatalf("second decode differs at sample %d", i)
			}
		}
		checkBatchedLikeOneByOne(t, b)
	})
}

// FuzzParsePacket feeds the header parser arbitrary bytes under each header
// protocol; it must never panic or claim more payload than it was given.
func FuzzParsePacket(f *testing.F) {
	f.Add(uint8(0), header(tcpFlow, 128))
	f.Add(uint8(1), header(tcpFlow, 128)[14:])
	f.Add(uint8(2), make([]byte, 60))
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		proto := []uint32{decode.HeaderEthernet, decode.HeaderIPv4, decode.HeaderIPv6}[which%3]
		var p, inner decode.Packet
		decode.ParsePacket(proto, b, &p, &inner)
		if p.PayloadSize < 0 || p.PayloadSize > len(b) || inner.PayloadSize < 0 || inner.PayloadSize > len(b) {
			t.Fatalf("payload %d/%d of %d bytes", p.PayloadSize, inner.PayloadSize, len(b))
		}
	})
}
