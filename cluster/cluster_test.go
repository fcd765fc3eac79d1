package cluster_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// natsServer runs a real NATS server with JetStream in the test's temp
// dir, on a free loopback port, and returns its URL.
func natsServer(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready in 10 s")
	}
	return ns.ClientURL()
}

// dial connects to url, until the test ends.
func dial(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// jetStream runs a server and returns a function that connects to it.
func jetStream(t *testing.T) func() jetstream.JetStream {
	url := natsServer(t)
	return func() jetstream.JetStream {
		_, js := dial(t, url)
		return js
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// define gives an engine the demo's flows, a confident elephant threshold
// and the simulated fabric's links.
func define(t testing.TB, e *engine.Engine) {
	t.Helper()
	for name, ks := range map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"pairs":    "ipsource,ipdestination",
		"ports":    "node:inputifindex,inputifindex",
	} {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks), Value: "bytes"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 10, Confidence: 0.99}); err != nil {
		t.Fatal(err)
	}
	links := map[string]api.TopologyLink{}
	for l := 1; l <= 4; l++ {
		for s := 1; s <= 2; s++ {
			links[fmt.Sprintf("leaf%02d-spine%02d", l, s)] = api.TopologyLink{Node1: fmt.Sprintf("leaf%02d", l),
				Port1: fmt.Sprintf("swp%d", 50+s), Node2: fmt.Sprintf("spine%02d", s), Port2: fmt.Sprintf("swp%d", l)}
		}
	}
	if err := e.SetTopology(api.Topology{Links: links}); err != nil {
		t.Fatal(err)
	}
}

// view is what the answers are compared by. Events and elephant records
// keep their time apart: see timed.
type view struct {
	flows, paths      []string
	events, elephants []timed
	samples           uint64
}

// timed is an answer and the time (ms) it names.
type timed struct {
	what string
	at   int64
}

// answers is what look reads: an engine, or an api node's view of several.
type answers interface {
	Stats() flows.Stats
	ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error)
	Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event
	ElephantRecords(max int) []api.Elephant
	Paths(q api.PathQuery) (api.Paths, error)
}

func look(t *testing.T, e answers) view {
	t.Helper()
	all := func(netip.Addr) bool { return true }
	v := view{samples: e.Stats().Samples}
	for _, name := range []string{"elephant", "pairs", "ports"} {
		afs, err := e.ActiveFlows(name, all, 50, 0, "max")
		if err != nil {
			t.Fatal(err)
		}
		for _, af := range afs {
			v.flows = append(v.flows, fmt.Sprintf("%s %s=%.6g@%s/%s n%d", name, af.Key, af.Value, af.Agent, af.DataSource, af.FlowN))
		}
	}
	for _, ev := range e.Events(context.Background(), 0, "", 10_000, 0) {
		v.events = append(v.events, timed{fmt.Sprintf("%s %s %s/%s %v>%v", ev.ThresholdID, ev.FlowKey,
			ev.Agent, ev.DataSource, ev.OldPath, ev.NewPath), ev.Timestamp})
	}
	pairs := map[[2]netip.Addr]bool{}
	for _, r := range e.ElephantRecords(1000) {
		v.elephants = append(v.elephants, timed{fmt.Sprintf("%s %s start %d active %v rate %.6g",
			r.ThresholdID, r.FlowKey, r.Start, r.Active, r.Rate), r.Detected})
		pairs[[2]netip.Addr{r.Src, r.Dst}] = true
	}
	for p := range pairs {
		ps, err := e.Paths(api.PathQuery{Src: p[0], Dst: p[1]})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range ps.Paths {
			var hops []string
			for _, h := range path.Hops {
				hops = append(hops, fmt.Sprintf("%s@%d", h.Node, h.TTL))
			}
			v.paths = append(v.paths, fmt.Sprintf("%s>%s %s %.3f", p[0], p[1], strings.Join(hops, " "), path.Share))
		}
	}
	sort.Strings(v.paths)
	return v
}

// The samples of two ingest nodes, published to JetStream by partition and
// read back by an engine node, give the answers one collector fed the
// same datagrams gives: top flows, events (thresholds and path changes),
// elephants and paths, over a minute of a fabric whose links fail, with
// mice, 1 Gbit/s elephants and agents that hold datagrams 1 s.
func TestOverJetStreamAsOneCollector(t *testing.T) {
	connect := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const parts = 16
	stream, err := cluster.EnsureStream(ctx, connect(), cluster.StreamConfig{Partitions: parts, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.EnsureStream(ctx, connect(), cluster.StreamConfig{Partitions: 8}); err == nil ||
		!strings.Contains(err.Error(), "16 partitions\", not 8 partitions") {
		t.Errorf("a stream of 16 partitions taken as 8: %v", err)
	}

	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	one, err := engine.New(flows.Config{Now: clock.now}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	far, err := engine.New(flows.Config{Now: clock.now, HeardApart: true}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer far.Close()
	define(t, one)
	define(t, far)

	ingest := []*cluster.Publisher{cluster.NewPublisher(connect(), parts, 10_000), cluster.NewPublisher(connect(), parts, 10_000)}
	var allParts []int
	for p := range parts {
		allParts = append(allParts, p)
	}
	cons := cluster.NewConsumer(far)
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx, connect(), allParts) }()

	s, err := sim.New(sim.Config{Seed: 7, Mice: 100, ServerAgents: true, ExportDelay: time.Second,
		LinkFailures: true, LinkFailEvery: 15 * time.Second, LinkDownFor: 5 * time.Second,
		ElephantEvery: 10 * time.Second, ElephantRate: 1e9, ElephantDuration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var direct decode.Decoder
	decs := make([]decode.Decoder, len(ingest))
	for step := 1; s.Now() < 60*time.Second; step++ {
		s.Step(func(b []byte) {
			dg, err := direct.Decode(b, one)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			n := int(dg.Agent.As16()[15]) % len(ingest) // an agent's datagrams go to one ingest node
			if _, err := decs[n].Decode(b, ingest[n]); err != nil {
				t.Fatal(err)
			}
		})
		for _, p := range ingest {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.WaitFor(ctx, info.State.LastSeq); err != nil {
			t.Fatalf("step %d: the engine node reached %d of %d: %v", step, cons.Stats().LastSequence, info.State.LastSeq, err)
		}
		far.Flush()
		clock.t = clock.t.Add(100 * time.Millisecond)
		for _, e := range []*engine.Engine{one, far} {
			if step%10 == 0 {
				e.Sweep()
			} else if step%2 == 0 {
				e.SweepPaths()
			}
		}
	}
	want, got := look(t, one), look(t, far)
	if len(want.elephants) < 3 || len(want.events) < 5 || len(want.paths) < 3 {
		t.Fatalf("too little to compare: %d elephants, %d events, %d paths", len(want.elephants), len(want.events), len(want.paths))
	}
	if got.samples != want.samples {
		t.Errorf("samples: %d over JetStream, %d in one collector", got.samples, want.samples)
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{{"flows", got.flows, want.flows}, {"paths", got.paths, want.paths}} {
		if g, w := strings.Join(c.got, "\n"), strings.Join(c.want, "\n"); g != w {
			t.Errorf("%s differ:\n%s\nwant\n%s", c.what, g, w)
		}
	}
	// Two ingest nodes' datagrams meet at the engine node in another order
	// than at one collector's socket, though within the same 100 ms step,
	// and a confident detection can fall on the sample before or after:
	// an event or elephant may come one step apart, no more.
	moved := 0
	for _, c := range []struct {
		what      string
		got, want []timed
	}{{"events", got.events, want.events}, {"elephants", got.elephants, want.elephants}} {
		unmatched, n := matchWithin(c.got, c.want, 100)
		moved += n
		for _, u := range unmatched {
			t.Errorf("%s: %s", c.what, u)
		}
	}
	var sent cluster.PublisherStats
	for _, p := range ingest {
		st := p.Stats()
		sent.Messages, sent.Bytes, sent.Samples, sent.Errors = sent.Messages+st.Messages, sent.Bytes+st.Bytes, sent.Samples+st.Samples, sent.Errors+st.Errors
	}
	if st := cons.Stats(); st.Faults != 0 || sent.Errors != 0 || st.Samples != sent.Samples {
		t.Errorf("published %+v, consumed %+v", sent, st)
	}
	t.Logf("%d samples in %d messages, %.1f bytes a sample on the wire; compared %d elephants, %d events (%d a step apart), %d paths, %d flows",
		sent.Samples, sent.Messages, float64(sent.Bytes)/float64(sent.Samples), len(want.elephants), len(want.events), moved, len(want.paths), len(want.flows))
	cancel()
	if err := <-done; err != nil {
		t.Errorf("consumer: %v", err)
	}
}

// matchWithin pairs each wanted answer with a got one of the same text at
// most slack ms apart, one to one. It returns what found no pair (got and
// wanted), and how many pairs were apart at all.
func matchWithin(got, want []timed, slack int64) (unmatched []string, moved int) {
	used := make([]bool, len(got))
	sort.Slice(want, func(i, j int) bool { return want[i].at < want[j].at })
	for _, w := range want {
		best := -1
		for i, g := range got {
			if used[i] || g.what != w.what || g.at < w.at-slack || g.at > w.at+slack {
				continue
			}
			if best < 0 || abs(g.at-w.at) < abs(got[best].at-w.at) {
				best = i
			}
		}
		if best < 0 {
			unmatched = append(unmatched, fmt.Sprintf("missing at %d: %s", w.at, w.what))
			continue
		}
		used[best] = true
		if got[best].at != w.at {
			moved++
		}
	}
	for i, g := range got {
		if !used[i] {
			unmatched = append(unmatched, fmt.Sprintf("extra at %d: %s", g.at, g.what))
		}
	}
	return unmatched, moved
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
