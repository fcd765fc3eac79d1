package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Taker is what a Consumer feeds: an engine that takes flow samples with
// the weights ingest gave them, and hears every datagram's header
// (package engine's Engine is one, made with flows.Config's HeardApart).
type Taker interface {
	decode.Visitor
	// TakeWeightedAt takes samples that arrived at at: the zero time for
	// now, a time past for a partition replayed.
	TakeWeightedAt(dg *decode.Datagram, samples []decode.FlowSample, weights []float64, at time.Time)
	Heard(dg *decode.Datagram)
}

// Consumer is the engine role's reader: it reads its partitions' batches
// and the counters from the stream, in the stream's order, decodes each
// datagram and feeds the engine with each flow sample's weight.
type Consumer struct {
	eng       Taker
	dec       decode.Decoder
	rec       record
	taken     int       // weights of rec used so far
	badWeight bool      // rec had a weight no sample can have: the rest of it is dropped
	at        time.Time // when the message being taken arrived, if it is replayed; zero: now

	last                      atomic.Uint64 // stream sequence of the last message taken
	messages, samples, faults atomic.Uint64
	replayed                  atomic.Uint64 // samples taken at their time past
	progress                  chan struct{} // a token after each message taken
	ready                     atomic.Bool   // its JetStream consumer is made: what is published from now on, it reads
}

// ConsumerStats count what a consumer took and refused.
type ConsumerStats struct {
	Messages, Samples uint64
	Faults            uint64 // malformed messages or datagrams, dropped
	Replayed          uint64 // samples of a partition read back by its new owner, at their time
	LastSequence      uint64 // the stream sequence of the last message taken
}

// NewConsumer feeds eng.
func NewConsumer(eng Taker) *Consumer { return &Consumer{eng: eng, progress: make(chan struct{}, 1)} }

// WaitFor waits until the consumer has taken the stream's message seq (or
// one after it), or ctx ends.
func (c *Consumer) WaitFor(ctx context.Context, seq uint64) error {
	for c.last.Load() < seq {
		select {
		case <-c.progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// maxWeight bounds a sample's weight: a sampling rate (at most 2^32-1)
// times the largest renormalising correction (100).
const maxWeight = 100 * (1<<32 - 1)

// subjects are the subjects an engine owning parts reads: theirs and the
// counters.
func subjects(parts []int) []string {
	out := []string{CountersSubject}
	for _, p := range parts {
		out = append(out, SamplesSubject(p))
	}
	return out
}

// Run reads parts and the counters from the start of what the stream
// holds until ctx ends.
func (c *Consumer) Run(ctx context.Context, js jetstream.JetStream, parts []int) error {
	return c.consume(ctx, js, subjects(parts), jetstream.DeliverAllPolicy)
}

// RunCounters reads the counters published from now on until ctx ends:
// an api node's engine keeps what /metric, /dump and /table serve.
func (c *Consumer) RunCounters(ctx context.Context, js jetstream.JetStream) error {
	return c.consume(ctx, js, []string{CountersSubject}, jetstream.DeliverNewPolicy)
}

// consume reads subjects in stream order, on an ordered consumer, from
// where deliver says, until ctx ends.
func (c *Consumer) consume(ctx context.Context, js jetstream.JetStream, subjects []string, deliver jetstream.DeliverPolicy) error {
	return c.consumeFrom(ctx, js, jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: deliver}, 0)
}

// Replay reads subject from the messages stored since from, each taken at
// the time it was stored, up to the newest stored when it begins; then on,
// live, until ctx ends: a partition's new owner rebuilds its flows' rates,
// thresholds, elephants and paths as they were.
func (c *Consumer) Replay(ctx context.Context, js jetstream.JetStream, subject string, from time.Time) error {
	var upTo uint64
	if st, err := js.Stream(ctx, StreamName); err == nil {
		if m, err := st.GetLastMsgForSubject(ctx, subject); err == nil {
			upTo = m.Sequence
		}
	}
	return c.consumeFrom(ctx, js, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from}, upTo)
}

// consumeFrom reads as cfg says until ctx ends, messages up to sequence
// upTo at the time they were stored.
func (c *Consumer) consumeFrom(ctx context.Context, js jetstream.JetStream, cfg jetstream.OrderedConsumerConfig, upTo uint64) error {
	subjects := cfg.FilterSubjects
	cons, err := js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return fmt.Errorf("consumer of %s: %w", strings.Join(subjects, ", "), err)
	}
	c.ready.Store(true)
	defer c.ready.Store(false)
	return eachMessage(ctx, cons, func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		c.at = time.Time{}
		if err == nil && md.Sequence.Stream <= upTo {
			c.at = md.Timestamp
		}
		c.Take(msg.Data())
		if err == nil {
			c.last.Store(md.Sequence.Stream)
		}
		select {
		case c.progress <- struct{}{}:
		default:
		}
	})
}

// eachMessage hands take each message cons delivers, in order, until ctx
// ends (nil) or the consumer fails (its error).
func eachMessage(ctx context.Context, cons jetstream.Consumer, take func(jetstream.Msg)) error {
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		take(msg)
	}
}

// Take feeds the engine one message's datagrams. A malformed message or
// datagram is dropped, counted; the records before it are kept.
func (c *Consumer) Take(msg []byte) {
	c.messages.Add(1)
	err := walk(msg, func(r record) error {
		c.rec, c.taken, c.badWeight = r, 0, false
		dg, err := c.dec.Decode(r.datagram, c)
		if err != nil {
			return err
		}
		if dg.NumSamples == 0 { // a datagram's header alone: it arrived
			c.eng.Heard(dg)
		}
		if c.badWeight {
			return fmt.Errorf("%w: a weight outside 0 to %g", ErrMessage, float64(maxWeight))
		}
		if c.taken != r.numWeights() {
			return fmt.Errorf("%w: %d weights for %d flow samples", ErrMessage, r.numWeights(), c.taken)
		}
		return nil
	})
	if err != nil {
		c.faults.Add(1)
	}
}

// FlowBatch hands the engine decoded flow samples with their weights
// (decode.FlowBatcher).
func (c *Consumer) FlowBatch(dg *decode.Datagram, samples []decode.FlowSample) {
	if c.taken+len(samples) > c.rec.numWeights() {
		c.taken += len(samples) // counted as a fault by Take
		return
	}
	var ws [decode.MaxFlowBatch]float64
	for i := range samples {
		ws[i] = c.rec.weight(c.taken + i)
		if !(ws[i] >= 0 && ws[i] <= maxWeight) { // NaN too
			c.badWeight = true
			c.taken += len(samples)
			return
		}
	}
	c.taken += len(samples)
	c.samples.Add(uint64(len(samples)))
	if !c.at.IsZero() {
		c.replayed.Add(uint64(len(samples)))
	}
	c.eng.TakeWeightedAt(dg, samples, ws[:len(samples)], c.at)
}

// Flow takes one flow sample (decode.Visitor).
func (c *Consumer) Flow(dg *decode.Datagram, fs *decode.FlowSample) {
	c.FlowBatch(dg, []decode.FlowSample{*fs})
}

// Counter hands the engine a counter sample.
func (c *Consumer) Counter(dg *decode.Datagram, cs *decode.CounterSample) { c.eng.Counter(dg, cs) }

// Ready says whether the consumer reads the stream now.
func (c *Consumer) Ready() bool { return c.ready.Load() }

// Stats returns what the consumer took.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Messages: c.messages.Load(), Samples: c.samples.Load(), Faults: c.faults.Load(),
		Replayed: c.replayed.Load(), LastSequence: c.last.Load()}
}
