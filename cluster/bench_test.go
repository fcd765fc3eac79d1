package cluster_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	b.Run("from-batches", func(b *testing.B) { fromBatches(b, dgs, 1) })
	// An engine node's default on 2 cores: its engine in two shards, each
	// handed a sample or two of each record.
	b.Run("from-batches-2-shards", func(b *testing.B) { fromBatches(b, dgs, 2) })
}

// fromBatches is what an engine of k shards takes from the wire's batches.
func fromBatches(b *testing.B, dgs [][]byte, k int) {
	{
		msgs := cluster.BatchesOf(dgs, 64)
		eng, err := engine.New(flows.Config{HeardApart: true}, k)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(eng.Close)
		eng.Wait, eng.Gather = true, true // as an engine node's
		define(b, eng)
		c := cluster.NewConsumer(eng)
		b.ResetTimer()
		for i := range b.N {
			c.Take(msgs[i%len(msgs)])
		}
		eng.Flush() // what was queued is part of the work
		b.StopTimer()
		if st := c.Stats(); st.Faults != 0 {
			b.Fatalf("%+v", st)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(c.Stats().Samples), "ns/sample")
	}
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

// BenchmarkEventLatency: from a datagram handed to the collector to the
// event it raises in /events/json: directly into one engine, and through
// ingest, JetStream, an engine node and the results stream to an api
// node's log (an embedded server, the same machine). Each datagram is a
// new flow over a byFlow threshold of one frame a second, so each raises
// one event; reported as the median and the 99th percentile.
func BenchmarkEventLatency(b *testing.B) {
	newEngine := func(heardApart bool) *engine.Engine {
		eng, err := engine.New(flows.Config{HeardApart: heardApart}, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(eng.Close)
		if err := eng.SetFlow("pairs", keys.Definition{Keys: keys.KeyList("ipsource,ipdestination"), Value: "frames"}); err != nil {
			b.Fatal(err)
		}
		if err := eng.SetThreshold("pairs", thresholds.Threshold{Metric: "pairs", Value: 1, ByFlow: true}); err != nil {
			b.Fatal(err)
		}
		return eng
	}
	datagram := func(i int) []byte {
		f := sflowtest.Frame{Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			Dst: netip.MustParseAddr("172.16.1.20"), Protocol: sflowtest.ProtoUDP, TTL: 64, SrcPort: 40000, DstPort: 9999}
		return (&sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.1.1"), Sequence: uint32(i + 1), Samples: []sflowtest.Sample{
			&sflowtest.FlowSample{Sequence: uint32(i + 1), SamplingRate: 1000, Input: decode.Port{Value: 1}, Output: decode.Port{Value: 2},
				Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1518, Header: f.Bytes()}}}}}).Bytes()
	}
	report := func(b *testing.B, took []time.Duration) {
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("direct", func(b *testing.B) {
		eng := newEngine(false)
		var dec decode.Decoder
		var took []time.Duration
		for i := 0; b.Loop(); i++ {
			dg := datagram(i)
			start := time.Now()
			dec.Decode(dg, eng)
			if got := eng.Events(context.Background(), int64(i), "pairs", 1, 5*time.Second); len(got) != 1 {
				b.Fatalf("datagram %d: %d events", i, len(got))
			}
			took = append(took, time.Since(start))
		}
		report(b, took)
	})
	b.Run("nats", func(b *testing.B) {
		url := natsServer(b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, js := dial(b, url)
		if _, err := cluster.EnsureStream(ctx, js, cluster.StreamConfig{Partitions: 4, MaxAge: time.Minute}); err != nil {
			b.Fatal(err)
		}
		if err := cluster.EnsureResults(ctx, js, cluster.ResultsConfig{}); err != nil {
			b.Fatal(err)
		}
		eng := newEngine(true)
		_, ejs := dial(b, url)
		cons := cluster.NewConsumer(eng)
		go cons.Run(ctx, ejs, []int{0, 1, 2, 3})
		go cluster.NewResultsPublisher(ejs, "e1", eng).Run(ctx)
		_, ajs := dial(b, url)
		reader := cluster.NewResultsReader(1000)
		go reader.Run(ctx, ajs)
		for !cons.Ready() || !reader.Ready() {
			time.Sleep(time.Millisecond) // until both read: what is measured begins after
		}
		pub := cluster.NewPublisher(js, 4, 1000)
		var dec decode.Decoder
		var took []time.Duration
		last := int64(0)
		for i := 0; b.Loop(); i++ {
			dg := datagram(i)
			start := time.Now()
			dec.Decode(dg, pub)
			if err := pub.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			got := reader.Events(ctx, last, func(e *api.Event) bool { return e.ThresholdID == "pairs" }, 1, 5*time.Second)
			if len(got) != 1 {
				b.Fatalf("datagram %d: %d events", i, len(got))
			}
			last = got[0].EventID
			took = append(took, time.Since(start))
		}
		report(b, took)
	})
}

// BenchmarkEngineNodes: what engine nodes take from the wire's batches
// (the ladder's load, 64 partitions): one engine taking every partition,
// against two each taking its half (even and odd partitions) on its own
// goroutine: two nodes in one process, as the in-process shards of #19
// are, in the same run. No NATS: its cost is BenchmarkPublish's.
func BenchmarkEngineNodes(b *testing.B) {
	msgs, part := cluster.BatchesByPartition(sflowtest.LoadDatagrams(10_000), 64)
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes%d", nodes), func(b *testing.B) {
			mine := make([][][]byte, nodes) // each node's messages, in order
			for i, m := range msgs {
				mine[part[i]%nodes] = append(mine[part[i]%nodes], m)
			}
			cons := make([]*cluster.Consumer, nodes)
			for n := range cons {
				cons[n] = cluster.NewConsumer(benchEngine(b))
				for _, m := range mine[n] { // every flow and path exists before timing
					cons[n].Take(m)
				}
			}
			before := uint64(0)
			for _, c := range cons {
				before += c.Stats().Samples
			}
			var next atomic.Int64 // messages taken, over the nodes
			b.ResetTimer()
			done := make(chan struct{})
			for n := range nodes {
				go func() {
					defer func() { done <- struct{}{} }()
					for j := 0; next.Add(1) <= int64(b.N); j++ {
						cons[n].Take(mine[n][j%len(mine[n])])
					}
				}()
			}
			for range nodes {
				<-done
			}
			b.StopTimer()
			samples := uint64(0)
			for _, c := range cons {
				samples += c.Stats().Samples
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(samples-before), "ns/sample")
		})
	}
}

// BenchmarkPublishToServer: the ingest role's own CPU a sample, apart from
// the server's: the ladder's load published to Debian's nats-server in a
// process of its own (file storage in a temp dir, loopback), every message
// acknowledged. Reported: this process's CPU (the ingest node: decode,
// renormalise, batch, publish) and the server's, a sample each, from
// getrusage and /proc. Skipped where nats-server is not installed
// (e2e/setup.sh installs it).
func BenchmarkPublishToServer(b *testing.B) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		b.Skip("nats-server is not installed: run e2e/setup.sh as root")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-sd", b.TempDir())
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }() // the server this benchmark started, by its PID
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	for try := 0; ; try++ {
		if nc, err = nats.Connect(url); err == nil {
			break
		}
		if try == 100 {
			b.Fatalf("nats-server on %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond) // until it listens
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cluster.EnsureStream(ctx, js, cluster.StreamConfig{Partitions: 64, MaxAge: time.Minute}); err != nil {
		b.Fatal(err)
	}
	dgs := sflowtest.LoadDatagrams(10_000)
	pub := cluster.NewPublisher(js, 64, 100_000)
	cpu := func() (self, server time.Duration) {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", srv.Process.Pid)); err == nil {
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			server = time.Duration(ut+st) * 10 * time.Millisecond // clock ticks of 100 Hz
		}
		return self, server
	}
	var dec decode.Decoder
	self0, server0 := cpu()
	b.ResetTimer()
	for i := range b.N {
		dec.Decode(dgs[i%len(dgs)], pub)
	}
	if err := pub.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	self1, server1 := cpu()
	st := pub.Stats()
	n := float64(st.Samples)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/sample")
	b.ReportMetric(float64((self1-self0).Nanoseconds())/n, "ingest-cpu-ns/sample")
	b.ReportMetric(float64((server1-server0).Nanoseconds())/n, "server-cpu-ns/sample")
}
