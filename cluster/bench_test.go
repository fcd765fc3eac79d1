package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
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

// BenchmarkQuery: /activeflows' top 100 of the ladder's load (10,000
// 5-tuples, the elephant flow: a key per hop, about 40,000 entries) asked
// of an api node, which asks two engine nodes (each holding half the
// partitions) over an embedded NATS server and merges their tops, against
// one engine holding everything asked directly, in the same run; and a
// pair's paths the same two ways.
func BenchmarkQuery(b *testing.B) {
	dgs := sflowtest.LoadDatagrams(10_000)
	const parts = 64
	one := benchEngine(b)
	halves := []*engine.Engine{benchEngine(b), benchEngine(b)}
	var dec decode.Decoder
	for _, dg := range dgs {
		dec.Decode(dg, one)
	}
	for i, msg := range cluster.BatchesOf(dgs, parts) {
		cluster.NewConsumer(halves[i%2]).Take(msg)
	}
	one.Flush()
	for _, h := range halves {
		h.Flush()
	}
	url := natsServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, h := range halves {
		nc, _ := dial(b, url)
		var mine []int
		for p := i; p < parts; p += 2 {
			mine = append(mine, p)
		}
		go cluster.ServeQueries(ctx, nc, fmt.Sprintf("e%d", i), h, func() []int { return mine })
	}
	nc, _ := dial(b, url)
	remote := cluster.NewAPI(cluster.NewFanout(nc, parts, 5*time.Second), cluster.NewResultsReader(16), one)
	all := func(netip.Addr) bool { return true }
	src, dst := netip.MustParseAddr("172.16.0.7"), netip.MustParseAddr("172.17.0.0") // the load's 5-tuple 7
	for _, c := range []struct {
		name string
		ask  func() (int, error)
	}{
		{"activeflows-direct", func() (int, error) { afs, err := one.ActiveFlows("elephant", all, 100, 0, ""); return len(afs), err }},
		{"activeflows-api", func() (int, error) {
			afs, err := remote.ActiveFlows("elephant", all, 100, 0, "")
			return len(afs), err
		}},
		{"paths-direct", func() (int, error) {
			ps, err := one.Paths(api.PathQuery{Src: src, Dst: dst})
			return len(ps.Paths), err
		}},
		{"paths-api", func() (int, error) {
			ps, err := remote.Paths(api.PathQuery{Src: src, Dst: dst})
			return len(ps.Paths), err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := c.ask(); err != nil || n == 0 {
					b.Fatalf("%d answers: %v", n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/query")
		})
	}
}
