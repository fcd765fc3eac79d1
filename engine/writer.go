package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
)

// writer is a shard's one writer: a goroutine that takes the batches
// workers hand it, in order, over a bounded queue. A batch holds the
// shard's samples of one datagram, or, with Engine.Gather, of several:
// while the writer is busy (its queue not empty) workers add to the
// pending batch, up to batchSamples, so that a shard handed a sample or
// two at a time (a cluster's engine node, fed one partition's records) is
// not woken for each; Engine.Run hands a pending batch on every few ms,
// and Flush at once.
type writer struct {
	shard   *flows.Engine
	index   uint8
	queue   chan *batch
	free    chan *batch // batches to reuse
	dropped atomic.Uint64

	mu      sync.Mutex // held by a worker adding to pending
	pending *batch     // being filled, not queued yet
}

// queueLen bounds a shard's queue: about 3 MiB of batches, a few ms of
// samples at a million a second.
const queueLen = 256

// batchSamples is the most samples a batch gathers from several datagrams.
const batchSamples = 64

// batch is samples for one shard, copied out of their datagrams.
type batch struct {
	parts   []part // the datagrams, in order, each with its samples' count
	samples []decode.FlowSample
	home    []uint8
	weights []float64
	buf     []byte        // what the samples alias, copied
	flushed chan struct{} // a flush marker: closed when reached
}

// part is one datagram's share of a batch.
type part struct {
	dg decode.Datagram
	n  int       // its samples in the batch
	at time.Time // when they arrived, if in the past (a replay); zero: now
}

func newWriter(shard *flows.Engine, index int) *writer {
	return &writer{shard: shard, index: uint8(index), queue: make(chan *batch, queueLen), free: make(chan *batch, queueLen+16)}
}

// hand adds the samples of a datagram that are the shard's (all of them
// for the primary) to the pending batch, and queues it if the writer is
// idle or the batch full; a batch the queue has no room for is dropped,
// counted, unless wait.
func (w *writer) hand(dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64, primary, wait, gather bool, at time.Time) {
	if !gather { // a batch of its own, without the lock
		b := w.fresh()
		w.add(b, dg, samples, home, weights, primary, at)
		w.queueBatch(b, wait)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.pending
	if b == nil {
		b = w.fresh()
		w.pending = b
	}
	w.add(b, dg, samples, home, weights, primary, at)
	if len(w.queue) > 0 && len(b.samples) < batchSamples {
		return // the writer is busy: it takes this with what comes next
	}
	w.pending = nil
	w.queueBatch(b, wait)
}

// fresh is an empty batch, reused if one is free.
func (w *writer) fresh() *batch {
	var b *batch
	select {
	case b = <-w.free:
	default:
		b = &batch{buf: make([]byte, 0, 2048)}
	}
	b.parts, b.samples, b.home, b.weights, b.buf = b.parts[:0], b.samples[:0], b.home[:0], b.weights[:0], b.buf[:0]
	return b
}

// add copies the datagram's samples that are the shard's into b.
func (w *writer) add(b *batch, dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64, primary bool, at time.Time) {
	n := 0
	for i := range samples {
		if home[i] != w.index && !primary {
			continue
		}
		b.samples = append(b.samples, samples[i])
		b.buf = b.samples[len(b.samples)-1].Detach(b.buf)
		b.home = append(b.home, home[i])
		b.weights = append(b.weights, weights[i])
		n++
	}
	// A datagram none of whose samples is the shard's still is heard by it
	// (its agent's clock), as a part of none.
	b.parts = append(b.parts, part{dg: *dg, n: n, at: at})
}

// queueBatch queues b, or drops it, counted, if the queue is full and
// not wait.
func (w *writer) queueBatch(b *batch, wait bool) {
	if wait {
		w.queue <- b
		return
	}
	select {
	case w.queue <- b:
	default:
		w.dropped.Add(1)
		w.recycle(b)
	}
}

// handOn queues a pending batch, for Run's tick.
func (w *writer) handOn(wait bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b := w.pending; b != nil {
		w.pending = nil
		w.queueBatch(b, wait)
	}
}

func (w *writer) recycle(b *batch) {
	select {
	case w.free <- b:
	default:
	}
}

// run takes batches until stop closes.
func (w *writer) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case b := <-w.queue:
			if b.flushed != nil {
				close(b.flushed)
				continue
			}
			off := 0
			for i := range b.parts {
				p := &b.parts[i]
				w.shard.TakeShardAt(&p.dg, b.samples[off:off+p.n], b.home[off:off+p.n], b.weights[off:off+p.n], p.at)
				off += p.n
			}
			w.recycle(b)
		}
	}
}

// flush waits until the writer has taken every batch queued before it.
func (w *writer) flush() {
	w.handOn(true)
	done := make(chan struct{})
	w.queue <- &batch{flushed: done}
	<-done
}
