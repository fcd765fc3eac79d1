package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
)

type discard struct{}

func (discard) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (discard) FlowBatch(*decode.Datagram, []decode.FlowSample) {}
func (discard) Counter(*decode.Datagram, *decode.CounterSample) {}

// BenchmarkPublish: what an ingest node spends per sample, the ladder's
// load (10,000 5-tuples) decoded and published to 64 partitions of an
// embedded JetStream server, every message acknowledged; decode is the
// same load decoded alone, the baseline of the same run.
func BenchmarkPublish(b *testing.B) {
	dgs := sflowtest.LoadDatagrams(10_000)
	b.Run("decode", func(b *testing.B) {
		var dec decode.Decoder
		for i := 0; b.Loop(); i++ {
			dec.Decode(dgs[i%len(dgs)], discard{})
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sflowtest.LoadSamplesPerDatagram, "ns/sample")
	})
	b.Run("publish", func(b *testing.B) {
		_, js := dial(b, natsServer(b))
		ctx := context.Background()
		if _, err := cluster.EnsureStream(ctx, js, cluster.StreamConfig{Partitions: 64, MaxAge: time.Minute}); err != nil {
			b.Fatal(err)
		}
		pub := cluster.NewPublisher(js, 64, 100_000)
		var dec decode.Decoder
		for i := 0; b.Loop(); i++ {
			dec.Decode(dgs[i%len(dgs)], pub)
		}
		if err := pub.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		st := pub.Stats()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Samples), "ns/sample")
		b.ReportMetric(float64(st.Bytes)/float64(st.Samples), "wire-bytes/sample")
	})
}

// BenchmarkTake: what an engine node spends per sample on the wire's
// batches (decoding them again, then the engine), against the collector's
// engine fed the datagrams themselves, in the same run; one shard, the
// demo's flows and threshold.
func BenchmarkTake(b *testing.B) {
	dgs := sflowtest.LoadDatagrams(10_000)
	b.Run("direct", func(b *testing.B) {
		eng := benchEngine(b)
		var dec decode.Decoder
		for i := 0; b.Loop(); i++ {
			dec.Decode(dgs[i%len(dgs)], eng)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sflowtest.LoadSamplesPerDatagram, "ns/sample")
	})
	b.Run("from-batches", func(b *testing.B) {
		msgs := cluster.BatchesOf(dgs, 64)
		eng := benchEngine(b)
		c := cluster.NewConsumer(eng)
		for i := 0; b.Loop(); i++ {
			c.Take(msgs[i%len(msgs)])
		}
		if st := c.Stats(); st.Faults != 0 {
			b.Fatalf("%+v", st)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(c.Stats().Samples), "ns/sample")
	})
}

func benchEngine(b *testing.B) *engine.Engine {
	eng, err := engine.New(flows.Config{HeardApart: true}, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Close)
	define(b, eng)
	return eng
}
