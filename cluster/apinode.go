package cluster

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
	"github.com/fabrictrace/fabrictrace/elephants"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// API is the api role's view of the engines: what REST serves of flows,
// paths, events and elephants, gathered from every engine node. Events and
// elephant updates come from the results streams (ResultsReader); the
// rest is asked of the engines at the time (Fanout) and merged as the
// in-process shards merge. Definitions, the topology and counters are the
// api node's own engine's, which the caller serves beside these.
type API struct {
	fan     *Fanout
	results *ResultsReader
	local   Local

	mu       sync.Mutex
	agents   []netip.Addr // every engine's agents, as last asked
	agentsAt time.Time
}

// Local is the api node's own engine, which keeps the definitions and
// the counters (every counter goes to every node), and no flow.
type Local interface {
	FlowDefinitions() map[string]keys.Definition
	Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error)
	Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error)
}

// NewAPI serves what fan gathers and results reads, and local's counters.
func NewAPI(fan *Fanout, results *ResultsReader, local Local) *API {
	return &API{fan: fan, results: results, local: local}
}

// Dump is every selected metric of every selected data source: counters
// from the node's own engine, a flow's top keys from every engine's,
// merged per data source (a key's values summed) to the flow's n.
func (a *API) Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error) {
	defs := a.local.FlowDefinitions()
	var own, remote []string
	if len(metrics) == 1 && metrics[0] == "ALL" {
		own = metrics
		for name := range defs {
			remote = append(remote, name)
		}
		slices.Sort(remote)
	} else {
		for _, m := range metrics {
			if ref, err := counters.ParseRef(m); err == nil && hasFlow(defs, ref.Name) {
				remote = append(remote, m)
			} else {
				own = append(own, m) // a counter, or the own engine's error
			}
		}
	}
	out := []api.Metric{}
	if len(own) > 0 {
		rows, err := a.local.Dump(agents, own)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.TopKeys == nil {
				out = append(out, r)
			}
		}
	}
	if len(remote) > 0 {
		rows, err := a.dumpFlows(agents, remote, defs)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	slices.SortStableFunc(out, func(x, y api.Metric) int {
		return cmp.Or(cmp.Compare(x.Agent, y.Agent), cmp.Compare(x.DataSource, y.DataSource))
	})
	return out, nil
}

func hasFlow(defs map[string]keys.Definition, name string) bool {
	_, ok := defs[name]
	return ok
}

// dumpFlows asks every engine for flows' top keys and merges them.
func (a *API) dumpFlows(agents func(netip.Addr) bool, metrics []string, defs map[string]keys.Definition) ([]api.Metric, error) {
	ctx := context.Background()
	q := query{Op: "dump", Metrics: metrics}
	a.selection(ctx, agents, &q)
	dumps, _, err := gather[[]api.Metric](ctx, a.fan, q)
	if err != nil {
		return nil, err
	}
	var rows []api.Metric
	for _, d := range dumps {
		rows = append(rows, d...) // a counter's rows, the node's own, are left out by the merge
	}
	return flows.MergeTopKeys(rows, func(name string) int { return defs[name].N }), nil
}

// Metrics summarises each metric over the selected agents, in request
// order: a counter by the node's own engine, a flow from its top keys
// merged over the engines.
func (a *API) Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error) {
	defs := a.local.FlowDefinitions()
	out := make([]api.Statistic, 0, len(metrics))
	for _, m := range metrics {
		ref, err := counters.ParseRef(m)
		if err != nil || !hasFlow(defs, ref.Name) {
			st, err := a.local.Metrics(agents, []string{m})
			if err != nil {
				return nil, err
			}
			out = append(out, st...)
			continue
		}
		plain := ref.Name
		if ref.DS != "" {
			plain = ref.DS + "." + ref.Name
		}
		rows, err := a.dumpFlows(agents, []string{plain}, defs)
		if err != nil {
			return nil, err
		}
		out = append(out, counters.Summarise(ref, rows))
	}
	return out, nil
}

// selection is a query's agents: all of them, or those of the engines'
// agents that pass.
func (a *API) selection(ctx context.Context, agents func(netip.Addr) bool, q *query) {
	if agents(netip.Addr{}) { // only "every agent" passes the zero address
		q.All = true
		return
	}
	a.mu.Lock()
	stale := time.Since(a.agentsAt) > time.Second
	a.mu.Unlock()
	if stale {
		lists, _, err := gather[[]netip.Addr](ctx, a.fan, query{Op: "agents"})
		if err == nil {
			var all []netip.Addr
			for _, l := range lists {
				all = append(all, l...)
			}
			slices.SortFunc(all, func(x, y netip.Addr) int { return x.Compare(y) })
			a.mu.Lock()
			a.agents, a.agentsAt = slices.Compact(all), time.Now()
			a.mu.Unlock()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	q.Agents = []netip.Addr{}
	for _, x := range a.agents {
		if agents(x) {
			q.Agents = append(q.Agents, x)
		}
	}
}

// ActiveFlows merges every engine's top: a key's values at one data source
// summed (a flow keyed by address pair has each key in one engine, whole),
// then the largest maxFlows.
func (a *API) ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error) {
	ctx := context.Background()
	q := query{Op: "activeflows", Name: name, MaxFlows: maxFlows, MinValue: minValue, AggMode: aggMode}
	a.selection(ctx, agents, &q)
	tops, _, err := gather[[]api.ActiveFlow](ctx, a.fan, q)
	if err != nil {
		return nil, err
	}
	type at struct{ key, agent, ds string }
	sum := map[at]int{}
	var out []api.ActiveFlow
	for _, top := range tops {
		for _, f := range top {
			k := at{f.Key, f.Agent, f.DataSource}
			if i, ok := sum[k]; ok { // a flow spread over engines
				out[i].Value += f.Value
				out[i].FlowN = max(out[i].FlowN, f.FlowN)
				continue
			}
			sum[k] = len(out)
			out = append(out, f)
		}
	}
	if out == nil {
		out = []api.ActiveFlow{}
	}
	return flows.TopFlows(out, maxFlows), nil
}

// FlowLocations gathers where every engine sees the key (one data source's
// values summed).
func (a *API) FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error) {
	ctx := context.Background()
	q := query{Op: "flowlocations", Name: name, Key: key}
	a.selection(ctx, agents, &q)
	parts, _, err := gather[[]api.FlowLocation](ctx, a.fan, q)
	if err != nil {
		return nil, err
	}
	out := []api.FlowLocation{}
	for _, p := range parts {
		out = append(out, p...)
	}
	return flows.SortLocations(out), nil
}

// Paths is the pair's paths from the engine that holds them: a pair is in
// one partition, so one engine has it (the one with the most, while a
// partition moves).
func (a *API) Paths(q api.PathQuery) (api.Paths, error) {
	answers, nodes, err := gather[api.Paths](context.Background(), a.fan, query{Op: "paths", Path: &q})
	if err != nil {
		return api.Paths{}, err
	}
	best := api.Paths{Src: q.Src, Dst: q.Dst, Paths: []api.Path{}}
	bestNode, size := "", -1
	for i, p := range answers {
		if n := len(p.Paths) + len(p.History); n > size {
			best, bestNode, size = p, nodes[i], n
		}
	}
	for i := range best.Elephants {
		if id, ok := a.results.lookup(bestNode, best.Elephants[i].ElephantID); ok {
			best.Elephants[i].ElephantID = id
		}
	}
	return best, nil
}

// FlowKeys merges every engine's keys, the freshest time of each.
func (a *API) FlowKeys() map[string]int64 {
	maps, _, _ := gather[map[string]int64](context.Background(), a.fan, query{Op: "flowkeys"})
	out := map[string]int64{}
	for _, m := range maps {
		for k, ago := range m {
			if was, ok := out[k]; !ok || ago < was {
				out[k] = ago
			}
		}
	}
	return out
}

// ActiveElephants gathers every engine's live elephants, with their global
// ids, oldest first. One whose start the api node has not read yet is
// left out of this answer.
func (a *API) ActiveElephants() []api.Elephant {
	lists, nodes, _ := gather[[]api.Elephant](context.Background(), a.fan, query{Op: "elephants"})
	out := []api.Elephant{}
	for i, l := range lists {
		for _, e := range l {
			if id, ok := a.results.lookup(nodes[i], e.ElephantID); ok {
				e.ElephantID = id
				out = append(out, e)
			}
		}
	}
	sortElephants(out)
	return out
}

// ElephantRecords is up to max elephants, newest first: the active ones as
// they are now, the ended ones as their last update left them.
func (a *API) ElephantRecords(max int) []api.Elephant {
	return elephants.Records(a.ActiveElephants(), a.results.elephants, a.results.size, max)
}

// Collisions gathers every engine's live collisions.
func (a *API) Collisions() []api.Event {
	lists, _, _ := gather[[]api.Event](context.Background(), a.fan, query{Op: "collisions"})
	out := []api.Event{}
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Events long-polls the events of every engine; thresholdID "" gives all.
func (a *API) Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event {
	var keep func(*api.Event) bool
	if thresholdID != "" {
		keep = func(e *api.Event) bool { return e.ThresholdID == thresholdID }
	}
	return a.results.Events(ctx, after, keep, max, timeout)
}

// UserEvents long-polls the events of user thresholds.
func (a *API) UserEvents(ctx context.Context, after int64, max int, timeout time.Duration) []api.Event {
	return a.results.Events(ctx, after, func(e *api.Event) bool { return !thresholds.Builtin(e.ThresholdID) }, max, timeout)
}

// Elephants long-polls every engine's elephant updates.
func (a *API) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return a.results.Elephants(ctx, after, max, timeout)
}

// FlowLog long-polls every engine's logged flows.
func (a *API) FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord {
	return a.results.FlowLog(ctx, after, name, max, timeout)
}

// Stats sums the engines' counters; Events and Waiters are the api node's.
func (a *API) Stats() flows.Stats {
	all, _, _ := gather[flows.Stats](context.Background(), a.fan, query{Op: "stats"})
	var out flows.Stats
	for _, st := range all {
		out.Samples += st.Samples
		out.Flows += st.Flows
		out.FlowsEvicted += st.FlowsEvicted
		out.SourcesEvicted += st.SourcesEvicted
		out.StringsRefused += st.StringsRefused
		out.StringsReleased += st.StringsReleased
		out.PathsTracked += st.PathsTracked
		out.PathsEvicted += st.PathsEvicted
		out.BatchesDropped += st.BatchesDropped
	}
	ev, _ := a.results.Last()
	out.Events = uint64(ev)
	out.Waiters = a.results.events.Waiters() + a.results.elephants.Waiters()
	return out
}
