package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
)

// Subjects and the stream that holds them.
const (
	StreamName      = "FABRICTRACE_SAMPLES"
	SamplesPrefix   = "fabrictrace.samples."
	CountersSubject = "fabrictrace.counters"
)

// SamplesSubject is partition p's subject.
func SamplesSubject(p int) string { return SamplesPrefix + strconv.Itoa(p) }

// StreamConfig says how the samples stream is made.
type StreamConfig struct {
	Partitions int           // P: fixed when the stream is made
	MaxAge     time.Duration // how far back a new owner can replay a partition
	MaxBytes   int64         // and the most the stream holds (-1: no cap)
}

// EnsureStream makes the samples stream, or checks that the one there has
// the same number of partitions: P is fixed at creation, since a pair's
// partition is its hash modulo P. P is kept in the stream's description,
// which every JetStream server keeps (metadata needs 2.10; Debian has
// 2.9).
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) (jetstream.Stream, error) {
	if c.Partitions < 1 || c.Partitions > 256 {
		return nil, fmt.Errorf("partitions %d: want 1 to 256", c.Partitions)
	}
	desc := fmt.Sprintf(streamDescription, c.Partitions)
	s, err := js.Stream(ctx, StreamName)
	if err == nil {
		var got int
		if _, err := fmt.Sscanf(s.CachedInfo().Config.Description, streamDescription, &got); err != nil || got != c.Partitions {
			return nil, fmt.Errorf("stream %s says %q, not %d partitions: P is fixed when the stream is made; "+
				"use its P, or delete the stream (nats stream rm %s) to make it anew", StreamName, s.CachedInfo().Config.Description, c.Partitions, StreamName)
		}
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return js.CreateStream(ctx, jetstream.StreamConfig{Name: StreamName, Description: desc,
		Subjects: []string{SamplesPrefix + "*", CountersSubject},
		Storage:  jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		MaxAge: c.MaxAge, MaxBytes: maxBytes, Discard: jetstream.DiscardOld})
}

// streamDescription says what the stream is, and its P.
const streamDescription = "fabrictrace samples by address pair: %d partitions"

// Publisher is the ingest role's visitor: it renormalises each flow sample
// over all of its data source's samples, finds the partition of its
// address pair, and appends it, as the agent sent it, to that partition's
// batch; a batch is published when it reaches MaxBatch bytes, or by Flush.
// Counter samples go to the counters subject. Safe for concurrent use by
// decoding workers.
type Publisher struct {
	js       jetstream.JetStream
	subjects []string
	pools    *flows.Pools
	// MaxBatch is the size at which a partition's batch is published.
	MaxBatch int

	mu       sync.Mutex
	batches  partitioned
	counters batch
	inFlight []sent   // published, oldest first, until known acknowledged
	spare    [][]byte // buffers of messages acknowledged, for the next batches

	published, bytes, samples, errs atomic.Uint64
}

// PublisherStats count what a publisher sent.
type PublisherStats struct {
	Messages, Bytes, Samples uint64
	Errors                   uint64 // publishes that could not be sent
}

// NewPublisher publishes to parts partitions through js, following at
// most maxSources data sources' sample pools.
func NewPublisher(js jetstream.JetStream, parts, maxSources int) *Publisher {
	p := &Publisher{js: js, pools: flows.NewPools(maxSources), MaxBatch: 32 << 10,
		batches: partitioned{batches: make([]batch, parts)}}
	for i := range parts {
		p.subjects = append(p.subjects, SamplesSubject(i))
	}
	return p
}

// FlowBatch takes a datagram's flow samples (decode.FlowBatcher).
func (p *Publisher) FlowBatch(dg *decode.Datagram, samples []decode.FlowSample) {
	var weights [decode.MaxFlowBatch]float64
	p.pools.Weights(dg.Agent, samples, weights[:len(samples)])
	p.mu.Lock()
	defer p.mu.Unlock()
	// Every engine hears the datagram, whichever partitions its samples
	// are in: its header goes with the counters, which are published
	// before any samples after them, so that an engine hears a datagram
	// before it takes its samples, as a collector does.
	p.counters.add(dg, nil, nil)
	if len(p.counters.buf) >= p.MaxBatch {
		p.publish(CountersSubject, &p.counters)
	}
	p.batches.add(dg, samples, weights[:len(samples)], p.MaxBatch, func(part int, b *batch) {
		if p.counters.records > 0 {
			p.publish(CountersSubject, &p.counters)
		}
		p.publish(p.subjects[part], b)
	})
	p.samples.Add(uint64(len(samples)))
}

// Flow takes one flow sample (decode.Visitor).
func (p *Publisher) Flow(dg *decode.Datagram, fs *decode.FlowSample) {
	p.FlowBatch(dg, []decode.FlowSample{*fs})
}

// Counter takes a counter sample: whole, once (not each part of a split
// one), for every engine.
func (p *Publisher) Counter(dg *decode.Datagram, cs *decode.CounterSample) {
	if cs.Continued {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counters.add(dg, [][]byte{cs.Raw}, nil)
	if len(p.counters.buf) >= p.MaxBatch {
		p.publish(CountersSubject, &p.counters)
	}
}

// publish sends b (with p.mu held) and starts a new one: the message keeps
// b's buffer until it is acknowledged.
func (p *Publisher) publish(subject string, b *batch) {
	msg := b.buf
	// The next batch's buffer, at its size: one whose message the stream
	// acknowledged, or a new one. Grown from nothing by append, and
	// allocated anew each time, buffers were half a sample's cost.
	b.buf, b.records = p.buffer(), 0
	f, err := p.js.PublishAsync(subject, msg)
	if err != nil {
		p.errs.Add(1)
		p.spare = append(p.spare, msg[:0])
		return
	}
	p.inFlight = append(p.inFlight, sent{f, msg})
	p.published.Add(1)
	p.bytes.Add(uint64(len(msg)))
}

// sent is a message published and not yet known acknowledged: its buffer
// is the message's until then (it is sent again if need be).
type sent struct {
	f   jetstream.PubAckFuture
	buf []byte
}

// buffer is an empty buffer for a batch (p.mu held): from a message the
// stream acknowledged or refused, oldest first, if there is one.
func (p *Publisher) buffer() []byte {
	for len(p.inFlight) > 0 {
		done := false
		select {
		case <-p.inFlight[0].f.Ok():
			done = true
		case <-p.inFlight[0].f.Err():
			done = true
		default:
		}
		if !done {
			break
		}
		p.spare = append(p.spare, p.inFlight[0].buf[:0])
		p.inFlight[0] = sent{}
		p.inFlight = p.inFlight[1:]
	}
	if n := len(p.spare); n > 0 {
		buf := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return buf
	}
	return make([]byte, 0, p.MaxBatch+8<<10)
}

// Flush publishes every batch begun, and waits until the stream has
// acknowledged all that was published, or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.counters.records > 0 { // first: the datagrams' headers
		p.publish(CountersSubject, &p.counters)
	}
	for part := range p.batches.batches {
		if b := &p.batches.batches[part]; b.records > 0 {
			p.publish(p.subjects[part], b)
		}
	}
	p.mu.Unlock()
	select {
	case <-p.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run flushes every interval until ctx ends, so that a quiet partition's
// samples wait no longer than that.
func (p *Publisher) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.Flush(ctx)
		}
	}
}

// Stats returns what the publisher sent.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Messages: p.published.Load(), Bytes: p.bytes.Load(), Samples: p.samples.Load(), Errors: p.errs.Load()}
}
