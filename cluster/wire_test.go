package cluster

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
)

// message is a batch of two datagrams of the load's samples, the first
// with weights 1000.5, 1001.5... and the second of IPv6 agent with none.
func message(t testing.TB) []byte {
	var b batch
	var dec decode.Decoder
	var raws [][]byte
	var ws []float64
	col := collect{f: func(dg *decode.Datagram, s []decode.FlowSample) {
		for i := range s {
			raws = append(raws, s[i].Raw)
			ws = append(ws, 1000.5+float64(len(ws)))
		}
		b.add(dg, raws, ws)
	}}
	if _, err := dec.Decode(sflowtest.LoadDatagrams(7)[0], col); err != nil {
		t.Fatal(err)
	}
	six := decode.Datagram{Agent: netip.MustParseAddr("2001:db8::1"), SubAgentID: 2, Sequence: 9, Uptime: 1000}
	b.add(&six, nil, nil)
	return b.buf
}

type collect struct {
	f func(*decode.Datagram, []decode.FlowSample)
}

func (c collect) FlowBatch(dg *decode.Datagram, s []decode.FlowSample) { c.f(dg, s) }
func (c collect) Flow(dg *decode.Datagram, fs *decode.FlowSample)      { c.f(dg, []decode.FlowSample{*fs}) }
func (collect) Counter(*decode.Datagram, *decode.CounterSample)        {}

// A batch's datagrams decode as the originals did, their headers kept,
// each flow sample with its weight.
func TestBatchRoundTrip(t *testing.T) {
	msg := message(t)
	var got []string
	n := 0
	err := walk(msg, func(r record) error {
		var dec decode.Decoder
		k := 0
		dg, err := dec.Decode(r.datagram, collect{f: func(dg *decode.Datagram, s []decode.FlowSample) {
			for i := range s {
				if w := r.weight(k); w != 1000.5+float64(k) {
					t.Errorf("weight %d: %v", k, w)
				}
				got = append(got, s[i].RawHeader.Packet.Src.String())
				k++
			}
		}})
		if err != nil {
			return err
		}
		if k != r.numWeights() {
			t.Errorf("record %d: %d samples, %d weights", n, k, r.numWeights())
		}
		if n == 1 && (dg.Agent != netip.MustParseAddr("2001:db8::1") || dg.SubAgentID != 2 || dg.Sequence != 9 || dg.Uptime != 1000) {
			t.Errorf("header: %+v", dg)
		}
		n++
		return nil
	})
	if err != nil || n != 2 || len(got) != 7 || got[0] != "172.16.0.0" {
		t.Errorf("%d records, samples from %v: %v", n, got, err)
	}
	// Cut anywhere, it is refused, saying where, and the records before the
	// cut are kept.
	for cut := len(magic); cut < len(msg)-1; cut++ {
		records := 0
		err := walk(msg[:cut], func(record) error { records++; return nil })
		if err == nil && records == 2 {
			t.Fatalf("cut at %d of %d: no error", cut, len(msg))
		}
		if err != nil && !errors.Is(err, ErrMessage) {
			t.Fatalf("cut at %d: %v", cut, err)
		}
	}
}

// A weight no sample can have (NaN, infinite, negative, past a sampling
// rate's bound) drops its datagram, counted, and the engine takes nothing
// of it.
func TestBadWeightsAreRefused(t *testing.T) {
	msg := message(t)
	at := len(magic) + 4 + int(uint32(msg[len(magic)])<<24|uint32(msg[len(magic)+1])<<16|uint32(msg[len(magic)+2])<<8|uint32(msg[len(magic)+3])) + 2
	for _, bits := range []uint64{0x7FF8000000000001, 0x7FF0000000000000, 0xBFF0000000000000, 0x7FE0000000000000} {
		bad := append([]byte(nil), msg...)
		for i := range 8 {
			bad[at+i] = byte(bits >> (56 - 8*i))
		}
		eng, err := engine.New(flows.Config{HeardApart: true}, 1)
		if err != nil {
			t.Fatal(err)
		}
		c := NewConsumer(eng)
		c.Take(bad)
		if st := c.Stats(); st.Faults != 1 || eng.Stats().Samples != 0 {
			t.Errorf("weight bits %#x: %+v, the engine took %d samples", bits, st, eng.Stats().Samples)
		}
		c.Take(msg)
		if st := c.Stats(); st.Faults != 1 || eng.Stats().Samples != 7 {
			t.Errorf("then a good one: %+v, the engine took %d samples", st, eng.Stats().Samples)
		}
	}
}

// FuzzTake feeds an engine node arbitrary messages: nothing panics, and a
// malformed one is counted.
func FuzzTake(f *testing.F) {
	f.Add(message(f))
	f.Add([]byte(magic))
	eng, err := engine.New(flows.Config{HeardApart: true}, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := NewConsumer(eng)
		done := make(chan struct{})
		go func() { c.Take(msg); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("a message of %d bytes took over 5 s", len(msg))
		}
		if st := c.Stats(); st.Messages != 1 {
			t.Fatalf("%+v", st)
		}
	})
}
