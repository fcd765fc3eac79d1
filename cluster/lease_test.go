package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/cluster"
)

// owners checks that no partition has two owners and returns how many
// are owned, and by whom.
func owners(t *testing.T, nodes map[string]*cluster.Leases) (int, map[string]int) {
	t.Helper()
	by := map[int]string{}
	counts := map[string]int{}
	for name, l := range nodes {
		for _, p := range l.Owned() {
			if was, ok := by[p]; ok {
				t.Fatalf("partition %d owned by %s and %s", p, was, name)
			}
			by[p] = name
			counts[name]++
		}
	}
	return len(by), counts
}

// Engine nodes share the partitions evenly; a node that dies loses its
// partitions to the others within 10 s (its leases' 6 s TTL and a tick);
// a node that comes back is given its share again; one that stops
// gracefully hands its partitions over at once. No partition ever has
// two owners.
func TestLeasesMoveWhenANodeDies(t *testing.T) {
	connect := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const parts = 16
	open := func(name string) *cluster.Leases {
		l, err := cluster.OpenLeases(ctx, connect(), name, parts, cluster.DefaultLeaseTTL)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	nodes := map[string]*cluster.Leases{"a": open("a"), "b": open("b"), "c": open("c")}
	tick := func(names ...string) {
		for _, n := range names {
			if _, err := nodes[n].Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Rounds until every partition is owned and the shares are even.
	settle := func(names ...string) map[string]int {
		for round := 0; round < 6; round++ {
			tick(names...)
			if n, counts := owners(t, nodes); n == parts && even(counts, len(names)) {
				return counts
			}
		}
		n, counts := owners(t, nodes)
		t.Fatalf("after 6 rounds: %d of %d partitions owned: %v", n, parts, counts)
		return nil
	}
	t.Logf("three nodes: %v", settle("a", "b", "c"))

	// a dies: it ticks no more and releases nothing.
	dead := nodes["a"]
	delete(nodes, "a")
	start := time.Now()
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		tick("b", "c")
		if n, _ := owners(t, nodes); n == parts {
			break
		}
		if time.Since(start) > 10*time.Second {
			n, counts := owners(t, nodes)
			t.Fatalf("10 s after a died, b and c own %d of %d: %v", n, parts, counts)
		}
		<-tk.C
	}
	took := time.Since(start)
	_, counts := owners(t, nodes)
	t.Logf("a died: b and c own all %d after %.1f s: %v", parts, took.Seconds(), counts)
	if len(dead.Owned()) == 0 {
		t.Fatal("a owned nothing before it died")
	}

	// a comes back, and is given its share as b and c release theirs.
	nodes["a"] = open("a")
	t.Logf("a back: %v", settle("a", "b", "c"))

	// b stops gracefully: a and c take its partitions at once.
	nodes["b"].Close()
	delete(nodes, "b")
	t.Logf("b stopped: %v", settle("a", "c"))
}

// even: every node has P over the nodes, or one more.
func even(counts map[string]int, nodes int) bool {
	if len(counts) != nodes {
		return false
	}
	for _, c := range counts {
		if c < 16/nodes || c > 16/nodes+1 {
			return false
		}
	}
	return true
}
