package engine

import (
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
)

// writer is a shard's one writer: a goroutine that takes the batches
// workers hand it, in order, over a bounded queue.
type writer struct {
	shard   *flows.Engine
	index   uint8
	queue   chan *batch
	free    chan *batch // batches to reuse
	dropped atomic.Uint64
}

// queueLen bounds a shard's queue: about 3 MiB of batches, a few ms of
// samples at a million a second.
const queueLen = 256

// batch is one datagram's samples for one shard, copied out of it.
type batch struct {
	dg      decode.Datagram
	samples []decode.FlowSample
	home    []uint8
	weights []float64
	buf     []byte        // what the samples alias, copied
	at      time.Time     // when they arrived, if in the past (a replay); zero: now
	flushed chan struct{} // a flush marker: closed when reached
}

func newWriter(shard *flows.Engine, index int) *writer {
	return &writer{shard: shard, index: uint8(index), queue: make(chan *batch, queueLen), free: make(chan *batch, queueLen+16)}
}

// hand queues the samples of a datagram that are the shard's (all of them
// for the primary), or drops them, counted, when the shard is behind.
func (w *writer) hand(dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64, primary, wait bool, at time.Time) {
	var b *batch
	select {
	case b = <-w.free:
	default:
		b = &batch{buf: make([]byte, 0, 2048)}
	}
	b.dg, b.at = *dg, at
	b.samples, b.home, b.weights, b.buf = b.samples[:0], b.home[:0], b.weights[:0], b.buf[:0]
	for i := range samples {
		if home[i] != w.index && !primary {
			continue
		}
		b.samples = append(b.samples, samples[i])
		b.buf = b.samples[len(b.samples)-1].Detach(b.buf)
		b.home = append(b.home, home[i])
		b.weights = append(b.weights, weights[i])
	}
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
			w.shard.TakeShardAt(&b.dg, b.samples, b.home, b.weights, b.at)
			w.recycle(b)
		}
	}
}

// flush waits until the writer has taken every batch queued before it.
func (w *writer) flush() {
	done := make(chan struct{})
	w.queue <- &batch{flushed: done}
	<-done
}
