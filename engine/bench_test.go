package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// BenchmarkShards: the ladder's load (10,000 5-tuples, the demo's three
// flows, the confident elephant threshold and path tracking) decoded and
// taken by W workers into K shards. shards1-workers1 is the engine as it
// was (one lock, one worker); shards1-workers2 is two workers on that one
// lock; shards2-workers2 is the split. independent2 is the bound: two
// engines that share nothing, each fed half the datagrams by its own
// worker (no pair kept together). Compare samples/s within one run: the
// machine is shared.
func BenchmarkShards(b *testing.B) {
	for _, c := range []struct{ shards, workers int }{{1, 1}, {2, 1}, {1, 2}, {2, 2}} {
		b.Run(fmt.Sprintf("shards%d-workers%d", c.shards, c.workers), func(b *testing.B) { shards(b, c.shards, c.workers) })
	}
	b.Run("independent2", independent)
}

// demoEngine is a flows.Engine with the benchmark's flows and threshold.
func demoEngine(b *testing.B) *flows.Engine {
	e := flows.New(flows.Config{})
	for name, ks := range map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"pairs":    "ipsource,ipdestination",
		"ports":    "node:inputifindex,inputifindex",
	} {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 12_500_000, ByFlow: true, Timeout: 10, Confidence: 0.99}); err != nil {
		b.Fatal(err)
	}
	return e
}

func independent(b *testing.B) {
	dgs := sflowtest.LoadDatagrams(10_000)
	engs := []*flows.Engine{demoEngine(b), demoEngine(b)}
	var dec decode.Decoder
	for i, dg := range dgs { // datagram i is engine i%2's
		dec.Decode(dg, engs[i%2])
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan struct{})
	for w := range engs {
		go func() {
			defer func() { done <- struct{}{} }()
			var dec decode.Decoder
			for i := w; i < b.N; i += len(engs) {
				dec.Decode(dgs[i%len(dgs)], engs[w])
			}
		}()
	}
	for range engs {
		<-done
	}
	b.StopTimer()
	perSample := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / sflowtest.LoadSamplesPerDatagram
	b.ReportMetric(perSample, "ns/sample")
	b.ReportMetric(1e9/perSample, "samples/s")
}

func shards(b *testing.B, k, workers int) {
	dgs := sflowtest.LoadDatagrams(10_000)
	e, err := engine.New(flows.Config{}, k)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	e.Wait = true // what the shards sustain, not what they drop
	for name, ks := range map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"pairs":    "ipsource,ipdestination",
		"ports":    "node:inputifindex,inputifindex",
	} {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 12_500_000, ByFlow: true, Timeout: 10, Confidence: 0.99}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, time.Second)
	var dec decode.Decoder
	for _, dg := range dgs { // every flow and path exists before timing
		dec.Decode(dg, e)
		e.Flush()
	}
	b.ReportAllocs()
	var next atomic.Int64
	b.ResetTimer()
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			var dec decode.Decoder
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				dec.Decode(dgs[int(i)%len(dgs)], e)
			}
		}()
	}
	for range workers {
		<-done
	}
	e.Flush() // what was queued is part of the work
	b.StopTimer()
	if d := e.Stats().BatchesDropped; d > 0 {
		b.Fatalf("%d batches dropped", d)
	}
	perSample := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / sflowtest.LoadSamplesPerDatagram
	b.ReportMetric(perSample, "ns/sample")
	b.ReportMetric(1e9/perSample, "samples/s")
}

// BenchmarkOneProcess: two engines that share nothing, each taking the
// whole load of 300 5-tuples (no threshold) on its own goroutine, against
// one. built-together: one goroutine built and filled both, so their small
// heap objects come from the same spans of Go's allocator; built-apart:
// each was built and filled on its own goroutine, at once. Two such
// engines in two processes run at full speed each: what the one-process
// cases lose is cache lines the engines share.
func BenchmarkOneProcess(b *testing.B) {
	for _, c := range []struct {
		name    string
		engines int
		apart   bool
	}{{"one", 1, false}, {"two-built-together", 2, false}, {"two-built-apart", 2, true}} {
		b.Run(c.name, func(b *testing.B) {
			dgs := sflowtest.LoadDatagrams(300)
			engs := make([]*flows.Engine, c.engines)
			build := func(i int) {
				e := flows.New(flows.Config{})
				for name, ks := range map[string]string{
					"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
					"pairs":    "ipsource,ipdestination",
					"ports":    "node:inputifindex,inputifindex",
				} {
					if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
						panic(err)
					}
				}
				var dec decode.Decoder
				for _, dg := range dgs {
					dec.Decode(dg, e)
				}
				engs[i] = e
			}
			ready := make(chan struct{})
			for i := range engs {
				if c.apart {
					go func() { build(i); ready <- struct{}{} }()
				} else {
					build(i)
				}
			}
			if c.apart {
				for range engs {
					<-ready
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan struct{})
			for _, e := range engs {
				go func() {
					defer func() { done <- struct{}{} }()
					var dec decode.Decoder
					for i := range b.N {
						dec.Decode(dgs[i%len(dgs)], e)
					}
				}()
			}
			for range engs {
				<-done
			}
			b.StopTimer()
			perSample := float64(b.Elapsed().Nanoseconds()) / float64(b.N*len(engs)) / sflowtest.LoadSamplesPerDatagram
			b.ReportMetric(perSample, "ns/sample")
		})
	}
}
