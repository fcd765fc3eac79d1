package flows_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// benchDatagram: 7 flow samples with 128-byte headers, 7 different flows.
func benchDatagram() []byte {
	d := sflowtest.Datagram{Agent: agent, Sequence: 1}
	for i := range 7 {
		f := sflowtest.SynAckFrame()
		f.Src = netip.AddrFrom4([4]byte{10, 1, 1, byte(i)})
		f.Pad = 128
		hdr := f.Bytes()[:128]
		d.Samples = append(d.Samples, &sflowtest.FlowSample{Sequence: uint32(i), Source: decode.DataSource{Index: 3},
			SamplingRate: 1000, SamplePool: uint32(1000 * i), Input: decode.Port{Value: 3}, Output: decode.Port{Value: 5},
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Stripped: 4, Header: hdr}}})
	}
	return d.Bytes()
}

type nop struct{}

func (nop) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (nop) Counter(*decode.Datagram, *decode.CounterSample) {}

// BenchmarkDecodeOnly is the baseline for BenchmarkDecodeAndEngine: the same
// datagram, decoded with its headers parsed, handed to nobody.
func BenchmarkDecodeOnly(b *testing.B) {
	dg := benchDatagram()
	var dec decode.Decoder
	b.SetBytes(int64(len(dg)))
	for b.Loop() {
		dec.Decode(dg, nop{})
	}
}

// BenchmarkDecodeAndEngine: decode plus the engine with the elephant-path
// flow, a 5-tuple flow and a node:inputifindex flow, and a threshold.
func BenchmarkDecodeAndEngine(b *testing.B) {
	e := runningEngine(b, map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"tuple":    "ipsource,ipdestination,ipprotocol,or:tcpsourceport:udpsourceport,or:tcpdestinationport:udpdestinationport",
		"ports":    "node:inputifindex",
	}, thresholds.Threshold{Metric: "elephant", Value: 1e15, ByFlow: true})
	dg := benchDatagram()
	var dec decode.Decoder
	dec.Decode(dg, e)
	b.SetBytes(int64(len(dg)))
	b.ReportAllocs()
	for b.Loop() {
		dec.Decode(dg, e)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/7/3, "ns/sample/definition")
	// 7 flows in each of the first two definitions, 1 in node:inputifindex.
	if n := e.Stats().Flows; n != 15 {
		b.Fatalf("engine holds %d flows, want 15", n)
	}
}

// runningEngine is an engine with the given flows (name to keys) and one
// threshold named "elephant", kept running (Run keeps its clock, as in the
// collector) until the benchmark ends.
func runningEngine(b *testing.B, defs map[string]string, th thresholds.Threshold) *flows.Engine {
	e := flows.New(flows.Config{})
	for name, ks := range defs {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.SetThreshold("elephant", th); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go e.Run(ctx, time.Second)
	return e
}

// BenchmarkEventFanOut: one event wakes 100 long-poll waiters.
func BenchmarkEventFanOut(b *testing.B) {
	now := time.Unix(0, 0)
	e := flows.New(flows.Config{Now: func() time.Time { return now }})
	if err := e.SetFlow("f", keys.Definition{Keys: "ipsource", Value: "frames"}); err != nil {
		b.Fatal(err)
	}
	var dec decode.Decoder
	f := sflowtest.SynAckFrame()
	for i := 0; b.Loop(); i++ {
		if err := e.SetThreshold("t", thresholds.Threshold{Metric: "f", Value: 1, ByFlow: true}); err != nil {
			b.Fatal(err)
		}
		last := e.Events(context.Background(), -1, "", 1, 0)
		after := int64(-1)
		if len(last) > 0 {
			after = last[0].EventID
		}
		var ready, done sync.WaitGroup
		for range 100 {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				if evs := e.Events(context.Background(), after, "", 10, 10*time.Second); len(evs) == 0 {
					b.Error("waiter timed out")
				}
			}()
		}
		ready.Wait()
		f.Src = netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)})
		dec.Decode(datagram(f, decode.Port{Value: 5}, uint32(i+1)), e)
		done.Wait()
	}
}

// BenchmarkFlood: FABRICTRACE_FLOOD (default 10,000,000) samples, each a
// new random 5-tuple, against the default cap of 100,000 flows per
// definition. The table must stay at the cap and memory with it; run with
// -benchtime 1x.
func BenchmarkFlood(b *testing.B) {
	n := 10_000_000
	if v := os.Getenv("FABRICTRACE_FLOOD"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	f := sflowtest.SynAckFrame()
	frame := f.Bytes()
	dg := datagram(f, decode.Port{Value: 5}, 1)
	at := bytes.Index(dg, frame)
	src, sport := at+30, at+38 // after Ethernet with one VLAN tag: IPv4 source, TCP source port
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		e := flows.New(flows.Config{})
		if err := e.SetFlow("tuple", keys.Definition{Keys: "ipsource,ipdestination,ipprotocol,tcpsourceport,tcpdestinationport"}); err != nil {
			b.Fatal(err)
		}
		var dec decode.Decoder
		start := time.Now()
		for range n {
			binary.BigEndian.PutUint32(dg[src:], rng.Uint32())
			binary.BigEndian.PutUint16(dg[sport:], uint16(rng.Uint32()))
			dec.Decode(dg, e)
		}
		st := e.Stats()
		if st.Flows > 100_000 || st.FlowsEvicted < uint64(n)-100_000 {
			b.Fatalf("%d flows held, %d evicted", st.Flows, st.FlowsEvicted)
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "ns/sample")
		b.ReportMetric(float64(st.Flows), "flows-held")
		b.ReportMetric(float64(peakRSS())/(1<<20), "MiB-peak-RSS")
	}
}

func peakRSS() int64 {
	s, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkPathQuery: a pair's paths with 100,000 5-tuples tracked, over
// 1,000 pairs of 100 5-tuples crossing three hops. Reports the p99 of the
// queries' times beside the mean.
func BenchmarkPathQuery(b *testing.B) {
	e := flows.New(flows.Config{})
	var dec decode.Decoder
	f := sflowtest.SynAckFrame()
	hops := []struct {
		agent   netip.Addr
		ttl     uint8
		in, out uint32
	}{{netip.MustParseAddr("10.255.1.1"), 64, 1, 51}, {netip.MustParseAddr("10.255.0.1"), 63, 1, 4},
		{netip.MustParseAddr("10.255.1.4"), 62, 51, 1}}
	seq := uint32(0)
	for pair := range 1000 {
		f.Src = netip.AddrFrom4([4]byte{10, 1, byte(pair >> 8), byte(pair)})
		for port := range 100 {
			f.SrcPort = uint16(10000 + port)
			for _, h := range hops {
				seq++
				f.TTL = h.ttl
				d := sflowtest.Datagram{Agent: h.agent, Sequence: seq, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
					Sequence: seq, Source: decode.DataSource{Index: h.in}, SamplingRate: 1000, SamplePool: 1000 * seq,
					Input: decode.Port{Value: h.in}, Output: decode.Port{Value: h.out},
					Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: f.Bytes()}}}}}
				dec.Decode(d.Bytes(), e)
			}
		}
	}
	if st := e.Stats(); st.PathsTracked != 100_000 {
		b.Fatalf("%d 5-tuples tracked", st.PathsTracked)
	}
	var took []time.Duration
	i := 0
	for b.Loop() {
		pair := i % 1000
		i++
		start := time.Now()
		ps, err := e.Paths(api.PathQuery{Src: netip.AddrFrom4([4]byte{10, 1, byte(pair >> 8), byte(pair)}),
			Dst: f.Dst})
		took = append(took, time.Since(start))
		if err != nil || len(ps.Paths) != 1 || len(ps.Paths[0].Flows) != 100 {
			b.Fatalf("pair %d: %v %+v", pair, err, ps)
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
}

// BenchmarkLadderLoad: the end-to-end rate ladder's load (cmd/sflowbench,
// sflowtest.LoadDatagrams) in process: 10,000 5-tuples over 4 agents and 7
// data sources each, every flow over the elephant threshold, against the
// demo's definitions (scripts/demo.json: three flows and a byFlow
// threshold) and the path tracker. Beside BenchmarkDecodeOnly it says what
// the engine costs per sample when its tables do not fit in cache;
// FABRICTRACE_LADDER_TUPLES=500 gives the cost with them in cache.
func BenchmarkLadderLoad(b *testing.B) {
	for _, c := range []struct {
		name       string
		confidence float64
	}{{"sflow-rt", 0}, {"confidence", 0.99}} {
		b.Run(c.name, func(b *testing.B) { ladderLoad(b, c.confidence) })
	}
}

// ladderLoad is BenchmarkLadderLoad with the threshold's confidence (0 for
// sFlow-RT's rule; scripts/demo.json has 0.99).
func ladderLoad(b *testing.B, confidence float64) {
	tuples := 10_000
	if v := os.Getenv("FABRICTRACE_LADDER_TUPLES"); v != "" {
		tuples, _ = strconv.Atoi(v)
	}
	dgs := sflowtest.LoadDatagrams(tuples)
	e := runningEngine(b, map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"pairs":    "ipsource,ipdestination",
		"ports":    "node:inputifindex,inputifindex",
	}, thresholds.Threshold{Metric: "elephant", Value: 12_500_000, ByFlow: true, Timeout: 10, Confidence: confidence})
	var dec decode.Decoder
	for _, dg := range dgs { // every flow and path exists before timing
		dec.Decode(dg, e)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dec.Decode(dgs[i%len(dgs)], e)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sflowtest.LoadSamplesPerDatagram, "ns/sample")
	// One flow per 5-tuple in each of elephant and pairs, and the ports.
	if st := e.Stats(); st.Flows < 2*uint64(len(dgs)*sflowtest.LoadSamplesPerDatagram) {
		b.Fatalf("engine holds %d flows", st.Flows)
	}
}

// BenchmarkActiveFlowsTop: /activeflows/ALL/elephant/json?maxFlows=100
// over 100k flows (the ladder's load, 100,000 5-tuples, a tenth of them
// sampled again and again), beside the whole table rendered and merged
// (FlowRows and ActiveFromRows: what ActiveFlows did before it ranked
// binary keys, and what a flow spread over shards still does). The engine
// reads the system clock at each sample, so no two flows tie.
func BenchmarkActiveFlowsTop(b *testing.B) {
	dgs := sflowtest.LoadDatagrams(100_000)
	e := flows.New(flows.Config{})
	if err := e.SetFlow("elephant", keys.Definition{Keys: "node:inputifindex,ipsource,ipdestination,ipttl", Value: "bytes"}); err != nil {
		b.Fatal(err)
	}
	var dec decode.Decoder
	for i, dg := range dgs {
		for range 1 + i%10/9*(i%7) {
			dec.Decode(dg, e)
		}
	}
	all := func(netip.Addr) bool { return true }
	b.Run("top100", func(b *testing.B) {
		for b.Loop() {
			if top, err := e.ActiveFlows("elephant", all, 100, 0, "max"); err != nil || len(top) != 100 {
				b.Fatal(len(top), err)
			}
		}
	})
	// What ActiveFlows did before it ranked binary keys: every row
	// rendered, then merged.
	b.Run("rows-merged", func(b *testing.B) {
		for b.Loop() {
			rows, err := e.FlowRows("elephant", all)
			if err != nil || len(rows) < 99_000 {
				b.Fatal(len(rows), err)
			}
			if top, err := flows.ActiveFromRows(rows, 100, 0, "max"); err != nil || len(top) != 100 {
				b.Fatal(len(top), err)
			}
		}
	})
}
