package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/internal/ring"
)

// The results streams: engines publish their events and elephant updates;
// api nodes read them, in the stream's order, into the logs that
// /events/json and /elephants/json long-poll. An item's id there is its
// sequence in its stream, so ids grow across engines and stay the same
// whichever api node serves them, and after an api node restarts.
const (
	EventsStream     = "FABRICTRACE_EVENTS"
	EventsSubject    = "fabrictrace.events"
	ElephantsStream  = "FABRICTRACE_ELEPHANTS"
	ElephantsSubject = "fabrictrace.elephants"
	FlowsStream      = "FABRICTRACE_FLOWS" // the flow log, /flows/json
	FlowsSubject     = "fabrictrace.flows"
)

// ResultsConfig bounds the results streams.
type ResultsConfig struct {
	MaxAge  time.Duration // 0: a day
	MaxMsgs int64         // each stream; 0: 100,000
}

// EnsureResults makes (or updates) the results streams.
func EnsureResults(ctx context.Context, js jetstream.JetStream, c ResultsConfig) error {
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.MaxMsgs == 0 {
		c.MaxMsgs = 100_000
	}
	for _, s := range [][2]string{{EventsStream, EventsSubject}, {ElephantsStream, ElephantsSubject}, {FlowsStream, FlowsSubject}} {
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: s[0], Subjects: []string{s[1]},
			Storage: jetstream.FileStorage, MaxAge: c.MaxAge, MaxMsgs: c.MaxMsgs, Discard: jetstream.DiscardOld,
			Description: "fabrictrace results: what engines tell api nodes"}); err != nil {
			return fmt.Errorf("results stream %s: %w", s[0], err)
		}
	}
	return nil
}

// result is a results message: one event, elephant update or logged
// flow, and the engine node it comes from.
type result struct {
	Node     string          `json:"node"`
	Event    *api.Event      `json:"event,omitempty"`
	Elephant *api.Elephant   `json:"elephant,omitempty"`
	Flow     *api.FlowRecord `json:"flow,omitempty"`
}

// ResultSource is the engine a node publishes the results of.
type ResultSource interface {
	Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event
	Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant
	FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord
}

// ResultsPublisher publishes an engine node's events and elephant updates,
// in order, as they happen.
type ResultsPublisher struct {
	js   jetstream.JetStream
	node string
	src  ResultSource

	Published, Lost, Failed atomic.Uint64 // lost: past what one read of the log holds
}

// NewResultsPublisher publishes src's results as node.
func NewResultsPublisher(js jetstream.JetStream, node string, src ResultSource) *ResultsPublisher {
	return &ResultsPublisher{js: js, node: node, src: src}
}

// readBatch is the most items one read of an engine's log takes.
const readBatch = 1000

// Run publishes until ctx ends: the events and elephant updates made from
// now on.
func (p *ResultsPublisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		after := tail(func(after int64, timeout time.Duration) []api.FlowRecord {
			return p.src.FlowLog(ctx, after, "", readBatch, timeout)
		}, func(r *api.FlowRecord) int64 { return r.FlowID })
		follow(ctx, p, after, func(after int64) []api.FlowRecord {
			return p.src.FlowLog(ctx, after, "", readBatch, 5*time.Second)
		}, func(r *api.FlowRecord) int64 { return r.FlowID }, FlowsSubject,
			func(r api.FlowRecord) result { return result{Node: p.node, Flow: &r} })
	}()
	go func() {
		defer wg.Done()
		after := tail(func(after int64, timeout time.Duration) []api.Event {
			return p.src.Events(ctx, after, "", readBatch, timeout)
		}, func(e *api.Event) int64 { return e.EventID })
		follow(ctx, p, after, func(after int64) []api.Event {
			return p.src.Events(ctx, after, "", readBatch, 5*time.Second)
		}, func(e *api.Event) int64 { return e.EventID }, EventsSubject,
			func(e api.Event) result { return result{Node: p.node, Event: &e} })
	}()
	go func() {
		defer wg.Done()
		after := tail(func(after int64, timeout time.Duration) []api.Elephant {
			return p.src.Elephants(ctx, after, readBatch, timeout)
		}, func(e *api.Elephant) int64 { return e.UpdateID })
		follow(ctx, p, after, func(after int64) []api.Elephant {
			return p.src.Elephants(ctx, after, readBatch, 5*time.Second)
		}, func(e *api.Elephant) int64 { return e.UpdateID }, ElephantsSubject,
			func(e api.Elephant) result { return result{Node: p.node, Elephant: &e} })
	}()
	wg.Wait()
	return nil
}

// tail is the id of the newest item a log holds now: what was there before
// the node published is not published.
func tail[T any](read func(after int64, timeout time.Duration) []T, id func(*T) int64) int64 {
	if got := read(-1, 0); len(got) > 0 {
		return id(&got[0])
	}
	return 0
}

// follow long-polls a log from after and publishes each item, oldest
// first, until ctx ends.
func follow[T any](ctx context.Context, p *ResultsPublisher, after int64, read func(after int64) []T, id func(*T) int64, subject string, wrap func(T) result) {
	for ctx.Err() == nil {
		got := read(after) // newest first
		if len(got) == 0 {
			continue
		}
		if oldest := id(&got[len(got)-1]); oldest > after+1 && after > 0 {
			p.Lost.Add(uint64(oldest - after - 1))
		}
		for i := len(got) - 1; i >= 0; i-- {
			b, err := json.Marshal(wrap(got[i]))
			if err == nil {
				_, err = p.js.Publish(ctx, subject, b)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.Failed.Add(1)
				continue
			}
			p.Published.Add(1)
		}
		after = id(&got[0])
	}
}

// ResultsReader is an api node's copy of the results: the events and the
// elephant updates of every engine, in the streams' order, with global
// ids. An elephant's id is the sequence of the first update the reader
// saw of it (its start, unless the stream had dropped that).
type ResultsReader struct {
	events    *ring.Log[api.Event]
	elephants *ring.Log[api.Elephant]
	flows     *ring.Log[api.FlowRecord]

	size int // items each log keeps

	mu    sync.Mutex
	ids   map[elephantRef]int64 // engine node's elephant id -> global
	open  map[flowRef]openFlow  // the elephants not ended, by flow: one that moves keeps its id
	maxID int                   // the most ids held

	Faults, Refused atomic.Uint64 // undecodable messages; elephant ids past maxID
	ready           atomic.Int32  // streams whose backlog is read
}

type elephantRef struct {
	node string
	id   int64
}

// flowRef names an elephant whichever node holds it.
type flowRef struct{ threshold, flowKey string }

// openFlow is the node that holds an elephant not ended, its global id,
// and when the api node last read an update of it.
type openFlow struct {
	node  string
	id    int64
	seen  time.Time
	ended time.Time // its node ended it: it may have moved (the node let its partition go)
}

// moveWithin is how long after its last update an elephant whose node
// stopped telling of it (it died, or let its partition go) may start again
// on another node and keep its id: a replayed partition's elephant starts
// anew at its new owner within seconds.
const moveWithin = time.Minute

// endedMoveWithin is how long after its node ended it an elephant that
// starts on another node keeps its id: a node that lets a partition go
// ends its elephants there, and the new owner starts them again within
// its lease tick and replay.
const endedMoveWithin = 15 * time.Second

// NewResultsReader keeps the newest size events and elephant updates.
func NewResultsReader(size int) *ResultsReader {
	return &ResultsReader{events: ring.New[api.Event](size), elephants: ring.New[api.Elephant](size), flows: ring.New[api.FlowRecord](size),
		size: size, ids: map[elephantRef]int64{}, open: map[flowRef]openFlow{}, maxID: 100_000}
}

// resultsStreams are what a ResultsReader reads.
var resultsStreams = []string{EventsStream, ElephantsStream, FlowsStream}

// Run reads the results streams from their start until ctx ends.
func (r *ResultsReader) Run(ctx context.Context, js jetstream.JetStream) error {
	errs := make(chan error, len(resultsStreams))
	for _, s := range resultsStreams {
		go func() { errs <- r.read(ctx, js, s) }()
	}
	var all []error
	for range resultsStreams {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// Ready says whether every stream's backlog, as it was when Run began, has
// been read.
func (r *ResultsReader) Ready() bool { return int(r.ready.Load()) == len(resultsStreams) }

func (r *ResultsReader) read(ctx context.Context, js jetstream.JetStream, stream string) error {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("reading %s: %w", stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", stream, err)
	}
	backlog := info.NumPending
	if backlog == 0 {
		r.ready.Add(1)
	}
	var n uint64
	return eachMessage(ctx, cons, func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			r.Faults.Add(1)
			return
		}
		r.take(msg.Data(), int64(md.Sequence.Stream))
		if n++; n == backlog {
			r.ready.Add(1)
		}
	})
}

// take files one results message as id.
func (r *ResultsReader) take(data []byte, id int64) { r.takeAt(data, id, time.Now()) }

// takeAt is take at now.
func (r *ResultsReader) takeAt(data []byte, id int64, now time.Time) {
	var m result
	if err := json.Unmarshal(data, &m); err != nil {
		r.Faults.Add(1)
		return
	}
	switch {
	case m.Event != nil && m.Elephant == nil && m.Flow == nil:
		r.events.AddAt(*m.Event, id, func(e *api.Event, id int64) { e.EventID = id })
		return
	case m.Flow != nil && m.Event == nil && m.Elephant == nil:
		r.flows.AddAt(*m.Flow, id, func(f *api.FlowRecord, id int64) { f.FlowID = id })
		return
	case m.Elephant == nil || m.Event != nil || m.Flow != nil:
		r.Faults.Add(1)
		return
	}
	e := *m.Elephant
	e.ElephantID = r.globalID(m.Node, &e, id, now)
	r.elephants.AddAt(e, id, func(e *api.Elephant, id int64) { e.UpdateID = id })
}

// globalID is the global id of node's elephant e; seq names it when it is
// new. An elephant that moved (its flow's elephant not ended, last heard
// of on another node within moveWithin) keeps the id it had. An id is
// forgotten once its elephant ends.
func (r *ResultsReader) globalID(node string, e *api.Elephant, seq int64, now time.Time) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, flow := elephantRef{node, e.ElephantID}, flowRef{e.ThresholdID, e.FlowKey}
	id, ok := r.ids[ref]
	if !ok {
		id = seq
		if o, ok := r.open[flow]; ok && o.node != node &&
			(o.ended.IsZero() && now.Sub(o.seen) < moveWithin || !o.ended.IsZero() && now.Sub(o.ended) < endedMoveWithin) {
			id = o.id // moved here
		}
		if len(r.ids) < r.maxID {
			r.ids[ref] = id
		} else {
			r.Refused.Add(1)
		}
	}
	o, ok := r.open[flow]
	if !ok && len(r.open) >= r.maxID {
		r.sweepOpen(now)
	}
	switch {
	case e.Update == "end":
		delete(r.ids, ref)
		if ok && o.node == node && o.id == id {
			o.ended = now
			r.open[flow] = o
		}
	case !ok || o.node == node || o.id == id || !o.ended.IsZero():
		if ok || len(r.open) < r.maxID {
			r.open[flow] = openFlow{node: node, id: id, seen: now}
		}
	}
	return id
}

// sweepOpen forgets the elephants that can no longer move with their id.
func (r *ResultsReader) sweepOpen(now time.Time) {
	for f, o := range r.open {
		if !o.ended.IsZero() && now.Sub(o.ended) >= endedMoveWithin || now.Sub(o.seen) >= moveWithin {
			delete(r.open, f)
		}
	}
}

// lookup is the global id of node's elephant local, if the reader has seen
// an update of it.
func (r *ResultsReader) lookup(node string, local int64) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.ids[elephantRef{node, local}]
	return id, ok
}

// Events long-polls the events, filtered by threshold when thresholdID is
// set.
func (r *ResultsReader) Events(ctx context.Context, after int64, keep func(*api.Event) bool, max int, timeout time.Duration) []api.Event {
	return r.events.Wait(ctx, after, max, timeout, keep)
}

// Elephants long-polls the elephant updates.
func (r *ResultsReader) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return r.elephants.Wait(ctx, after, max, timeout, nil)
}

// FlowLog long-polls the logged flows, of one flow when name is set.
func (r *ResultsReader) FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord {
	var keep func(*api.FlowRecord) bool
	if name != "" {
		keep = func(f *api.FlowRecord) bool { return f.Name == name }
	}
	return r.flows.Wait(ctx, after, max, timeout, keep)
}

// Last is the newest event id and elephant update id.
func (r *ResultsReader) Last() (events, elephants int64) {
	return r.events.Last(), r.elephants.Last()
}

// sortElephants orders by id, oldest first.
func sortElephants(es []api.Elephant) {
	slices.SortFunc(es, func(a, b api.Elephant) int { return cmp.Compare(a.ElephantID, b.ElephantID) })
}
