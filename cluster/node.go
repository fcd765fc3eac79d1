package cluster

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/nats-io/nats.go/jetstream"
)

// EngineNode is the engine role: it holds leases on partitions (Leases)
// and runs a consumer for each partition it owns, and one for the
// counters, all feeding one engine. A partition it gains is read back
// from Replay ago (or from when this node last let it go, if later), each
// sample at its time, then live: a moved flow carries on with its rate,
// elephant and path. Without Replay it is read from when it was gained.
type EngineNode struct {
	// Replay is how far back a partition gained is read: at most what the
	// stream keeps. Set before Run.
	Replay time.Duration

	js     jetstream.JetStream
	eng    Taker
	leases *Leases

	mu       sync.Mutex
	running  map[int]*partition
	released map[int]time.Time // when this node let each partition go
	ctx      context.Context
	wg       sync.WaitGroup
	counters *Consumer
	gone     ConsumerStats // what the consumers of partitions let go took

	forgot struct{ entries, tuples atomic.Uint64 } // dropped with the partitions let go

	// OnChange, when set before Run, is told what the node owns whenever
	// that changes (to log it).
	OnChange func(owned []int)
}

type partition struct {
	c      *Consumer
	cancel context.CancelFunc
	done   chan struct{} // closed once its consumer has stopped
}

// Forgetter is an engine that can drop what it holds of address pairs
// (package engine's Engine is one): a node forgets the partitions it lets
// go, whose new owner reads them back.
type Forgetter interface {
	Forget(drop func(src, dst netip.Addr) bool) (entries, tuples int)
}

// NewEngineNode feeds eng with the partitions leases gives it.
func NewEngineNode(js jetstream.JetStream, leases *Leases, eng Taker) *EngineNode {
	return &EngineNode{js: js, eng: eng, leases: leases, running: map[int]*partition{}, released: map[int]time.Time{}}
}

// Run holds leases, ticking every interval, and consumes what they give
// until ctx ends; then it releases them and stops its consumers.
func (n *EngineNode) Run(ctx context.Context, interval time.Duration) error {
	n.mu.Lock()
	n.ctx = ctx
	n.counters = NewConsumer(n.eng)
	n.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.counters.consume(ctx, n.js, []string{CountersSubject}, jetstream.DeliverNewPolicy)
	}()
	err := n.leases.Run(ctx, interval, func(owned []int) {
		n.own(owned)
		if n.OnChange != nil {
			n.OnChange(owned)
		}
	})
	n.own(nil)
	n.wg.Wait()
	return err
}

// own starts a consumer for each partition newly owned and stops those of
// partitions let go.
func (n *EngineNode) own(parts []int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	keep := map[int]bool{}
	for _, p := range parts {
		keep[p] = true
		if n.running[p] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(n.ctx)
		pr := &partition{c: NewConsumer(n.eng), cancel: cancel, done: make(chan struct{})}
		n.running[p] = pr
		n.wg.Add(1)
		from := time.Now().Add(-n.Replay)
		if r, ok := n.released[p]; ok && r.After(from) {
			from = r // what it holds of p is up to then
		}
		go func() {
			defer n.wg.Done()
			if n.Replay > 0 {
				pr.c.Replay(ctx, n.js, SamplesSubject(p), from)
			} else {
				pr.c.consume(ctx, n.js, []string{SamplesSubject(p)}, jetstream.DeliverNewPolicy)
			}
			n.mu.Lock()
			n.gone = sum(n.gone, pr.c.Stats())
			n.mu.Unlock()
			close(pr.done)
		}()
	}
	for p, pr := range n.running {
		if !keep[p] {
			pr.cancel() // its goroutine adds what it took to gone
			delete(n.running, p)
			n.released[p] = time.Now()
			n.wg.Add(1)
			go n.forget(p, pr)
		}
	}
}

// forget drops what the engine holds of partition p, once its consumer
// has stopped, unless the node owns p again by then.
func (n *EngineNode) forget(p int, pr *partition) {
	defer n.wg.Done()
	<-pr.done
	f, ok := n.eng.(Forgetter)
	if !ok || n.ctx.Err() != nil { // stopping: nothing to give back
		return
	}
	n.mu.Lock()
	again := n.running[p] != nil
	parts := n.leases.parts
	n.mu.Unlock()
	if again {
		return
	}
	entries, tuples := f.Forget(func(src, dst netip.Addr) bool { return int(flows.PairOf(src, dst, parts)) == p })
	n.forgot.entries.Add(uint64(entries))
	n.forgot.tuples.Add(uint64(tuples))
}

// Consuming lists the partitions the node reads now (their consumers
// made), in order, and says whether it reads the counters.
func (n *EngineNode) Consuming() (parts []int, counters bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for p, pr := range n.running {
		if pr.c.Ready() {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	return parts, n.counters != nil && n.counters.Ready()
}

// Forgot is how many flow entries and 5-tuples the node dropped with the
// partitions it let go.
func (n *EngineNode) Forgot() (entries, tuples uint64) {
	return n.forgot.entries.Load(), n.forgot.tuples.Load()
}

// Stats sums what the node's consumers took (LastSequence is left 0).
func (n *EngineNode) Stats() ConsumerStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.gone
	for _, pr := range n.running {
		out = sum(out, pr.c.Stats())
	}
	if n.counters != nil {
		out = sum(out, n.counters.Stats())
	}
	return out
}

func sum(a, b ConsumerStats) ConsumerStats {
	return ConsumerStats{Messages: a.Messages + b.Messages, Samples: a.Samples + b.Samples, Faults: a.Faults + b.Faults,
		Replayed: a.Replayed + b.Replayed}
}
