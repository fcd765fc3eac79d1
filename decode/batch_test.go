package decode_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// batchCanon takes flow samples a batch at a time, as the flow engine does.
type batchCanon struct {
	canon
	batches  int
	oversize int // batches empty or over MaxFlowBatch
}

func (c *batchCanon) FlowBatch(d *decode.Datagram, samples []decode.FlowSample) {
	c.batches++
	if len(samples) == 0 || len(samples) > decode.MaxFlowBatch {
		c.oversize++
	}
	for i := range samples {
		c.Flow(d, &samples[i])
	}
}

// byKind splits canon lines into flow samples (and discards) and counter
// samples: a batcher gets the same of each, in the same order, but its
// flow samples come after the counter samples beside them.
func byKind(lines []string) (flows, counters []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "C ") {
			counters = append(counters, l)
		} else {
			flows = append(flows, l)
		}
	}
	return flows, counters
}

// checkBatchedLikeOneByOne decodes b for a plain visitor and for a
// FlowBatcher: both must get the same samples, counts and error.
func checkBatchedLikeOneByOne(t *testing.T, b []byte) *batchCanon {
	t.Helper()
	var dec decode.Decoder
	var one canon
	dg, err := dec.Decode(b, &one)
	want := *dg
	var batched batchCanon
	dg, errB := dec.Decode(b, &batched)
	if *dg != want || (err == nil) != (errB == nil) || err != nil && err.Error() != errB.Error() {
		t.Fatalf("batched decode: %+v, %v; one by one: %+v, %v", *dg, errB, want, err)
	}
	if batched.oversize != 0 {
		t.Fatalf("%d batches empty or over %d samples", batched.oversize, decode.MaxFlowBatch)
	}
	f1, c1 := byKind(one.lines)
	f2, c2 := byKind(batched.lines)
	if strings.Join(f1, "\n") != strings.Join(f2, "\n") || strings.Join(c1, "\n") != strings.Join(c2, "\n") {
		t.Fatalf("batched delivery differs:\n%s\none by one:\n%s", strings.Join(batched.lines, "\n"), strings.Join(one.lines, "\n"))
	}
	return &batched
}

func TestFlowBatchDeliversWhatFlowDoes(t *testing.T) {
	checkBatchedLikeOneByOne(t, everything(agent4).Bytes())
	b := everything(agent6).Bytes()
	for n := range len(b) {
		checkBatchedLikeOneByOne(t, b[:n])
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 500 {
		checkBatchedLikeOneByOne(t, randomDatagram(r))
	}
	// 40 flow samples with a counter sample after every tenth: three
	// batches (16, 16, 8), every sample once.
	d := sflowtest.Datagram{Agent: agent4}
	for i := range 40 {
		d.Samples = append(d.Samples, &sflowtest.FlowSample{Sequence: uint32(i), SamplingRate: 100,
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 100, Header: header(tcpFlow, 64)}}})
		if i%10 == 9 {
			d.Samples = append(d.Samples, &sflowtest.CounterSample{Sequence: uint32(i)})
		}
	}
	got := checkBatchedLikeOneByOne(t, d.Bytes())
	if got.batches != 3 || len(got.lines) != 44 {
		t.Fatalf("%d batches, %d samples; want 3 and 44", got.batches, len(got.lines))
	}
}
