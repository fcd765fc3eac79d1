package flows

import (
	"container/heap"
	"fmt"
	"net/netip"
	"sort"

	"github.com/fabrictrace/fabrictrace/api"
)

// ActiveFlows returns a flow's largest entries over the agents that match,
// merged across data sources by aggMode: max (the default), sum, edge
// (only ports on no topology link) or core (only ports on one).
//
// It ranks keys by their binary form and renders only the ones it returns
// (and any tied with the last), so asking for the top 100 of 100k flows
// formats 100, not 100k; merging by max, it keeps only the largest entries
// as it goes, and counts the chosen keys' data sources in a second pass.
// Like FlowRows it holds the lock for a slice of RowsPerLock entries at a
// time, so a big table never stalls ingest.
//
// The answer is this engine's alone: an engine that holds all of each
// key's entries (the flow is not split, or split by address pair) gives
// the whole answer for its keys.
func (e *Engine) ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error) {
	mode := aggModeOf(aggMode)
	if mode < 0 {
		return nil, fmt.Errorf("%w: aggMode %q: want max, sum, edge or core", ErrInvalid, aggMode)
	}
	s := &scan{e: e, name: name, agents: agents, mode: mode, minValue: minValue, seen: map[*source]*where{}}
	var keys map[string]*ranked
	if mode != aggSum && maxFlows > 0 {
		var err error
		if keys, err = s.largest(maxFlows); err != nil {
			return nil, err
		}
	}
	if keys == nil {
		keys = map[string]*ranked{}
	}
	only := len(keys) > 0 // count the chosen keys, not every key
	err := s.each(func(ent *entry, w *where, v float64) {
		k := keys[string(ent.Key())]
		if k == nil {
			if only {
				return
			}
			k = &ranked{}
			keys[string(ent.Key())] = k
		}
		k.add(ent, w, v, mode)
	})
	if err != nil {
		return nil, err
	}
	all := make([]*ranked, 0, len(keys))
	for _, k := range keys {
		if k.best != nil {
			all = append(all, k)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].value > all[j].value })
	if maxFlows > 0 && len(all) > maxFlows {
		cut := maxFlows // and any tied with the last: the rendered keys order them
		for cut < len(all) && all[cut].value == all[maxFlows-1].value {
			cut++
		}
		all = all[:cut]
	}
	out := make([]api.ActiveFlow, 0, len(all))
	for start := 0; start < len(all); start += RowsPerLock {
		e.mu.Lock()
		for _, k := range all[start:min(start+RowsPerLock, len(all))] {
			// A key's strings are the interner's while some entry holds
			// them: once the sweep has freed any, render only keys whose
			// entry is still in the table.
			t := s.t
			if e.env.Strings.Freed != s.released && (k.best.Slot >= len(t.Ring) || t.Ring[k.best.Slot] != k.best) {
				continue
			}
			out = append(out, api.ActiveFlow{Key: e.formatKey(s.p, k.best.Key()), Agent: k.at.agent, DataSource: k.at.ds,
				Value: k.value, FlowN: k.n})
		}
		e.mu.Unlock()
	}
	return TopFlows(out, maxFlows), nil
}

// where is a data source as a query sees it.
type where struct {
	ok, onLink bool
	agent, ds  string
}

// ranked is one key in a query: its value so far and the entry that names it.
type ranked struct {
	value, top float64 // top: the largest part, for aggSum
	n          int
	best       *entry
	at         *where // best's source
}

func (k *ranked) add(ent *entry, w *where, v float64, mode int) {
	k.n++
	better := k.best == nil || v == k.top && w.agent+"/"+w.ds < k.at.agent+"/"+k.at.ds
	if mode == aggSum {
		// The sum names the source of its largest part.
		if v > k.top || better {
			k.top, k.best, k.at = v, ent, w
		}
		k.value += v
	} else if v > k.value || better {
		k.value, k.top, k.best, k.at = v, v, ent, w
	}
}

// scan walks one flow's table in slices of RowsPerLock entries under the
// lock, handing on each entry that the query's agents, aggMode and
// minValue keep, with its value now.
type scan struct {
	e        *Engine
	name     string
	agents   func(netip.Addr) bool
	mode     int
	minValue float64
	seen     map[*source]*where
	// Set by the first pass: the table and plan the query reads (a flow
	// redefined under it ends it), and the interner's frees then.
	t        *table
	p        *plan
	released uint64
}

func (s *scan) each(f func(ent *entry, w *where, v float64)) error {
	e := s.e
	for next := 0; ; {
		e.mu.Lock()
		q, ok := e.plans[s.name]
		if !ok || s.t != nil && (e.tables[s.name] != s.t || q != s.p) {
			e.mu.Unlock()
			if s.t != nil {
				return fmt.Errorf("flow %q was redefined during the query; ask again: %w", s.name, ErrNotFound)
			}
			return fmt.Errorf("flow %q: %w", s.name, ErrNotFound)
		}
		if s.t == nil {
			s.t, s.p, s.released = e.tables[s.name], q, e.env.Strings.Freed
		}
		now := e.clock()
		topo := e.topoNow(now, true)
		end := min(next+RowsPerLock, len(s.t.Ring))
		for _, ent := range s.t.Ring[next:end] {
			w := s.seen[ent.Src]
			if w == nil {
				_, onLink := topo.Link(ent.Src.key.agent, ent.Src.key.index)
				w = &where{ok: s.agents(ent.Src.key.agent), onLink: onLink}
				if (s.mode == aggEdge || s.mode == aggCore) && onLink != (s.mode == aggCore) {
					w.ok = false
				}
				if w.ok {
					w.agent, w.ds = ent.Src.key.agent.String(), ent.Src.key.dataSource()
				}
				s.seen[ent.Src] = w
			}
			if !w.ok {
				continue
			}
			if v := ent.ValueAt(s.p.Tau, now); v >= s.minValue && v > 0 {
				f(ent, w, v)
			}
		}
		next = end
		done := next >= len(s.t.Ring)
		e.mu.Unlock()
		if done {
			return nil
		}
		betweenSlices()
	}
}

// largest finds the n keys with the largest entries, and any tied with
// the last, merging by max: the first n distinct keys among the entries
// largest first. It keeps 4n entries as it goes; nil when those do not
// settle it (many entries of a few keys, or ties past them), for the
// caller to rank every key.
func (s *scan) largest(n int) (map[string]*ranked, error) {
	h := &entryHeap{}
	keep := max(4*n, 64)
	seen := 0
	err := s.each(func(ent *entry, _ *where, v float64) {
		seen++
		if len(*h) < keep {
			heap.Push(h, valued{ent, v})
		} else if v > (*h)[0].v {
			(*h)[0] = valued{ent, v}
			heap.Fix(h, 0)
		}
	})
	if err != nil {
		return nil, err
	}
	floor := -1.0 // every entry is in the heap
	if seen > len(*h) {
		floor = (*h)[0].v // entries this small may be missing from it
	}
	byValue := []valued(*h)
	sort.Slice(byValue, func(i, j int) bool { return byValue[i].v > byValue[j].v })
	keys := map[string]*ranked{}
	last := 0.0
	for _, x := range byValue {
		k := string(x.ent.Key())
		if keys[k] != nil {
			continue
		}
		if len(keys) >= n && x.v < last {
			break
		}
		if x.v <= floor {
			return nil, nil // the n-th key, or one tied with it, may lie below the heap
		}
		keys[k], last = &ranked{}, x.v
	}
	if len(keys) < n && floor >= 0 {
		return nil, nil
	}
	return keys, nil
}

type valued struct {
	ent *entry
	v   float64
}

// entryHeap is a min-heap of entries by value.
type entryHeap []valued

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].v < h[j].v }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(valued)) }
func (h *entryHeap) Pop() any          { x := (*h)[len(*h)-1]; *h = (*h)[:len(*h)-1]; return x }

// FlowLocations lists the data sources of the agents that match where a
// flow has the key now, largest value first: where the flow passes (what
// sFlow-RT's /flowlocations serves). Like ActiveFlows it reads the table a
// slice at a time; it formats each entry's key into one buffer to compare.
func (e *Engine) FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error) {
	s := &scan{e: e, name: name, agents: agents, mode: aggMax, seen: map[*source]*where{}}
	var buf []byte
	out := []api.FlowLocation{}
	err := s.each(func(ent *entry, w *where, v float64) {
		if buf = s.p.AppendKey(buf[:0], ent.Key(), e.env.Strings); string(buf) == key {
			out = append(out, api.FlowLocation{Agent: w.agent, DataSource: w.ds, Value: v})
		}
	})
	if err != nil {
		return nil, err
	}
	return SortLocations(out), nil
}

// SortLocations puts a flow's locations largest first (then by agent and
// data source), those of one data source from several engines summed.
func SortLocations(locs []api.FlowLocation) []api.FlowLocation {
	sort.Slice(locs, func(i, j int) bool {
		a, b := locs[i], locs[j]
		if a.Agent != b.Agent {
			return a.Agent < b.Agent
		}
		return a.DataSource < b.DataSource
	})
	out := locs[:0]
	for _, l := range locs {
		if n := len(out); n > 0 && out[n-1].Agent == l.Agent && out[n-1].DataSource == l.DataSource {
			out[n-1].Value += l.Value
			continue
		}
		out = append(out, l)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Value > out[j].Value })
	return out
}

// MergeTopKeys merges the top keys of a flow's rows gathered from several
// engines or shards: the rows of one agent, data source and metric become
// one, a key's values summed (its freshest update kept), largest first,
// at most limit(metric) keys (none: all). Rows without top keys (counters)
// are left out.
func MergeTopKeys(rows []api.Metric, limit func(metric string) int) []api.Metric {
	type at struct{ agent, ds, name string }
	merged := map[at]map[string]*api.TopKey{}
	var order []at
	for _, r := range rows {
		if r.TopKeys == nil {
			continue
		}
		k := at{r.Agent, r.DataSource, r.MetricName}
		if merged[k] == nil {
			merged[k] = map[string]*api.TopKey{}
			order = append(order, k)
		}
		for _, tk := range r.TopKeys {
			if have := merged[k][tk.Key]; have != nil {
				have.Value += tk.Value
				have.LastUpdate = min(have.LastUpdate, tk.LastUpdate)
			} else {
				c := tk
				merged[k][tk.Key] = &c
			}
		}
	}
	out := make([]api.Metric, 0, len(order))
	for _, k := range order {
		m := api.Metric{Agent: k.agent, DataSource: k.ds, MetricName: k.name}
		for _, tk := range merged[k] {
			m.TopKeys = append(m.TopKeys, *tk)
		}
		sort.Slice(m.TopKeys, func(i, j int) bool {
			if m.TopKeys[i].Value != m.TopKeys[j].Value {
				return m.TopKeys[i].Value > m.TopKeys[j].Value
			}
			return m.TopKeys[i].Key < m.TopKeys[j].Key
		})
		if n := limit(k.name); n > 0 && len(m.TopKeys) > n {
			m.TopKeys = m.TopKeys[:n]
		}
		m.LastUpdate = m.TopKeys[0].LastUpdate
		out = append(out, m)
	}
	return out
}
