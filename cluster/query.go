package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/flows"
)

// QuerySubject is where api nodes ask engines: every engine node answers
// each request (NATS request with many replies), with what it holds and
// the partitions it reads, and the api node merges the answers.
const QuerySubject = "fabrictrace.query"

// maxAnswer bounds one engine's answer: a larger one is refused, as a
// fault, rather than sent.
const maxAnswer = 8 << 20

// query is one request to the engines.
type query struct {
	Op       string         `json:"op"` // activeflows, flowlocations, paths, flowkeys, elephants, collisions, stats, agents, dump
	Name     string         `json:"name,omitempty"`
	All      bool           `json:"all,omitempty"` // every agent; else Agents
	Agents   []netip.Addr   `json:"agents,omitempty"`
	MaxFlows int            `json:"maxFlows,omitempty"`
	MinValue float64        `json:"minValue,omitempty"`
	AggMode  string         `json:"aggMode,omitempty"`
	Key      string         `json:"key,omitempty"`
	Path     *api.PathQuery `json:"path,omitempty"`
	Metrics  []string       `json:"metrics,omitempty"`
}

// answer is one engine node's reply.
type answer struct {
	Node     string          `json:"node"`
	Parts    []int           `json:"parts"`
	Result   json.RawMessage `json:"result,omitempty"`
	Err      string          `json:"err,omitempty"`
	NotFound bool            `json:"notFound,omitempty"` // Err is flows.ErrNotFound's
	Invalid  bool            `json:"invalid,omitempty"`  // Err is flows.ErrInvalid's
}

// Answerer is what an engine node answers from: its engine (package
// engine's Engine is one).
type Answerer interface {
	ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error)
	FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error)
	Paths(q api.PathQuery) (api.Paths, error)
	FlowKeys() map[string]int64
	ActiveElephants() []api.Elephant
	Collisions() []api.Event
	Stats() flows.Stats
	Agents() []netip.Addr
	Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error)
}

// ServeQueries answers the api nodes' queries from eng, as node, until ctx
// ends; parts says which partitions the node reads now.
func ServeQueries(ctx context.Context, nc *nats.Conn, node string, eng Answerer, parts func() []int) error {
	sub, err := nc.Subscribe(QuerySubject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		b, _ := json.Marshal(answerOf(node, parts(), eng, m.Data)) // its fields marshal
		if len(b) > maxAnswer {
			b, _ = json.Marshal(answer{Node: node, Parts: parts(), Err: fmt.Sprintf("answer of %d bytes is past the %d a node sends: ask for fewer (maxFlows)", len(b), maxAnswer)})
		}
		m.Respond(b)
	})
	if err != nil {
		return fmt.Errorf("answering %s: %w", QuerySubject, err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

// answerOf answers one request.
func answerOf(node string, parts []int, eng Answerer, req []byte) answer {
	a := answer{Node: node, Parts: parts}
	var q query
	if err := json.Unmarshal(req, &q); err != nil {
		a.Err = fmt.Sprintf("query: %v", err)
		return a
	}
	agents := func(netip.Addr) bool { return true }
	if !q.All {
		in := map[netip.Addr]bool{}
		for _, x := range q.Agents {
			in[x] = true
		}
		agents = func(x netip.Addr) bool { return in[x] }
	}
	var res any
	var err error
	switch q.Op {
	case "activeflows":
		res, err = eng.ActiveFlows(q.Name, agents, q.MaxFlows, q.MinValue, q.AggMode)
	case "flowlocations":
		res, err = eng.FlowLocations(q.Name, agents, q.Key)
	case "paths":
		if q.Path == nil {
			err = errors.New("paths: no pair")
			break
		}
		res, err = eng.Paths(*q.Path)
	case "flowkeys":
		res = eng.FlowKeys()
	case "elephants":
		res = eng.ActiveElephants()
	case "collisions":
		res = eng.Collisions()
	case "stats":
		res = eng.Stats()
	case "agents":
		res = eng.Agents()
	case "dump":
		res, err = eng.Dump(agents, q.Metrics)
	default:
		err = fmt.Errorf("query %q: unknown", q.Op)
	}
	if err != nil {
		a.Err, a.NotFound, a.Invalid = err.Error(), errors.Is(err, flows.ErrNotFound), errors.Is(err, flows.ErrInvalid)
		return a
	}
	a.Result, err = json.Marshal(res)
	if err != nil {
		a.Err = err.Error()
	}
	return a
}

// Fanout asks every engine node and gathers their answers, until every
// partition is answered for or the deadline passes.
type Fanout struct {
	nc       *nats.Conn
	parts    int
	deadline time.Duration

	mu      sync.Mutex
	missing []int // the partitions the last answer lacked

	Partial atomic.Uint64 // answers given without every partition
}

// NewFanout asks over nc, for a stream of parts partitions, waiting up to
// deadline for the engines.
func NewFanout(nc *nats.Conn, parts int, deadline time.Duration) *Fanout {
	return &Fanout{nc: nc, parts: parts, deadline: deadline}
}

// remoteError is an engine's error, with its kind.
func remoteError(a answer) error {
	switch {
	case a.NotFound:
		return fmt.Errorf("%w (engine %s: %s)", flows.ErrNotFound, a.Node, a.Err)
	case a.Invalid:
		return fmt.Errorf("%w (engine %s: %s)", flows.ErrInvalid, a.Node, a.Err)
	}
	return fmt.Errorf("engine %s: %s", a.Node, a.Err)
}

// Missing lists the partitions no engine answered for in the last ask.
func (f *Fanout) Missing() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int{}, f.missing...)
}

// ask sends q to every engine and returns their answers, one per node.
// An engine's error is returned as the answer's error.
func (f *Fanout) ask(ctx context.Context, q query) ([]answer, error) {
	req, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	inbox := f.nc.NewRespInbox()
	sub, err := f.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := f.nc.PublishRequest(QuerySubject, inbox, req); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.deadline)
	defer cancel()
	covered := make([]bool, f.parts)
	left := f.parts
	var out []answer
	seen := map[string]bool{}
	for left > 0 {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break // the deadline: a partial answer
		}
		var a answer
		if json.Unmarshal(m.Data, &a) != nil || seen[a.Node] {
			continue
		}
		seen[a.Node] = true
		if a.Err != "" {
			return nil, remoteError(a)
		}
		out = append(out, a)
		for _, p := range a.Parts {
			if p >= 0 && p < f.parts && !covered[p] {
				covered[p] = true
				left--
			}
		}
	}
	var missing []int
	for p, ok := range covered {
		if !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		f.Partial.Add(1)
	}
	f.mu.Lock()
	f.missing = missing
	f.mu.Unlock()
	return out, nil
}

// gather asks q and decodes each answer's result into a T.
func gather[T any](ctx context.Context, f *Fanout, q query) ([]T, []string, error) {
	answers, err := f.ask(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, 0, len(answers))
	nodes := make([]string, 0, len(answers))
	for _, a := range answers {
		var v T
		if err := json.Unmarshal(a.Result, &v); err != nil {
			return nil, nil, fmt.Errorf("engine %s: answer to %s: %w", a.Node, q.Op, err)
		}
		out = append(out, v)
		nodes = append(nodes, a.Node)
	}
	return out, nodes, nil
}
