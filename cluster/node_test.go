package cluster_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/sim"
)

// waitUntil checks cond every 100 ms until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tk.C
	}
	return time.Since(start)
}

// pairsOf lists the address pairs an engine's "pairs" flow holds.
func pairsOf(t *testing.T, e *engine.Engine) []string {
	t.Helper()
	afs, err := e.ActiveFlows("pairs", func(netip.Addr) bool { return true }, 0, 0, "max")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, af := range afs {
		out = append(out, af.Key)
	}
	slices.Sort(out)
	return out
}

// node is an engine node of a test, with its own connection to NATS.
type node struct {
	conn   interface{ Close() }
	eng    *engine.Engine
	node   *cluster.EngineNode
	cancel context.CancelFunc
	done   chan error
}

// startNode runs an engine node named name over parts partitions, with
// the demo's definitions, reading partitions it gains back from replay ago
// (0: from then on), until ctx ends or its cancel is called.
func startNode(ctx context.Context, t *testing.T, url, name string, parts int, replay time.Duration) *node {
	t.Helper()
	nc, js := dial(t, url)
	eng, err := engine.New(flows.Config{HeardApart: true, Past: replay}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	define(t, eng)
	leases, err := cluster.OpenLeases(ctx, js, name, parts, cluster.DefaultLeaseTTL)
	if err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithCancel(ctx)
	n := &node{conn: nc, eng: eng, node: cluster.NewEngineNode(js, leases, eng), cancel: ncancel, done: make(chan error, 1)}
	n.node.Replay = replay
	go func() { n.done <- n.node.Run(nctx, time.Second) }()
	return n
}

// Two engine nodes split the partitions and so the address pairs; when
// one dies (its connection to NATS gone, as after kill -9), the other
// owns all of them within 10 s and takes their samples from then on.
func TestEngineNodeTakesOverADeadOnesPartitions(t *testing.T) {
	url := natsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const parts = 8
	_, ijs := dial(t, url)
	if _, err := cluster.EnsureStream(ctx, ijs, cluster.StreamConfig{Partitions: parts, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	pub := cluster.NewPublisher(ijs, parts, 10_000)

	start := func(name string) *node { return startNode(ctx, t, url, name, parts, 0) }
	a, b := start("a"), start("b")
	consuming := func(ns ...*node) (all []int) {
		for _, n := range ns {
			ps, counters := n.node.Consuming()
			if !counters {
				return nil
			}
			all = append(all, ps...)
		}
		slices.Sort(all)
		return all
	}
	everyPart := func(ns ...*node) func() bool {
		return func() bool { return len(consuming(ns...)) == parts && len(slices.Compact(consuming(ns...))) == parts }
	}
	waitUntil(t, 10*time.Second, "a and b read half the partitions each", func() bool {
		pa, _ := a.node.Consuming()
		pb, _ := b.node.Consuming()
		return everyPart(a, b)() && len(pa) == parts/2 && len(pb) == parts/2
	})
	pa, _ := a.node.Consuming()
	pb, _ := b.node.Consuming()
	t.Logf("a reads %v, b %v", pa, pb)

	s, err := sim.New(sim.Config{Seed: 3, Mice: 100, ServerAgents: true})
	if err != nil {
		t.Fatal(err)
	}
	var dec, refDec decode.Decoder
	var ref *engine.Engine // one collector, fed what is published after a dies
	feed := func(until time.Duration) {
		for s.Now() < until {
			s.Step(func(b []byte) {
				if _, err := dec.Decode(b, pub); err != nil {
					t.Fatal(err)
				}
				if ref != nil {
					refDec.Decode(b, ref)
				}
			})
		}
		if err := pub.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	taken := func(ns ...*node) uint64 {
		var n uint64
		for _, x := range ns {
			n += x.node.Stats().Samples
		}
		return n
	}
	feed(5 * time.Second)
	waitUntil(t, 10*time.Second, "a and b take every sample published", func() bool { return taken(a, b) == pub.Stats().Samples })
	a.eng.Flush()
	b.eng.Flush()
	onA, onB := pairsOf(t, a.eng), pairsOf(t, b.eng)
	if len(onA) == 0 || len(onB) == 0 {
		t.Fatalf("pairs: %d on a, %d on b", len(onA), len(onB))
	}
	for _, p := range onA {
		if _, ok := slices.BinarySearch(onB, p); ok {
			t.Fatalf("pair %s on both nodes", p)
		}
	}

	// a dies: its connection drops, so it renews and releases nothing.
	a.conn.Close()
	a.cancel()
	<-a.done
	took := waitUntil(t, 10*time.Second, "b reads every partition after a died", everyPart(b))
	t.Logf("a died: b reads all %d partitions after %.1f s", parts, took.Seconds())
	before := taken(b)
	published := pub.Stats().Samples
	if ref, err = engine.New(flows.Config{}, 1); err != nil {
		t.Fatal(err)
	}
	define(t, ref)
	feed(10 * time.Second)
	waitUntil(t, 10*time.Second, "b takes every sample published after a died", func() bool {
		return taken(b)-before == pub.Stats().Samples-published
	})
	b.eng.Flush()
	// Every pair the one collector saw since is on b, a's among them.
	now, moved := pairsOf(t, b.eng), 0
	for _, p := range pairsOf(t, ref) {
		if _, ok := slices.BinarySearch(now, p); !ok {
			t.Errorf("pair %s, seen since a died, is not on b", p)
		}
		if _, ok := slices.BinarySearch(onA, p); ok {
			moved++
		}
	}
	if moved == 0 {
		t.Error("none of a's pairs was seen after it died: the takeover is untested")
	}
	t.Logf("%d of a's pairs are on b now", moved)
	b.cancel()
	if err := <-b.done; err != nil {
		t.Error(err)
	}
}
