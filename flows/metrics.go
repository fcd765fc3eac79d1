package flows

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
)

// metric returns one counter metric of the data source: a number, or a
// string for ifname, host_name and the host's description, and whether
// it has it.
func (e *Engine) metric(src *source, name string) (any, bool) {
	switch {
	case name == "host_name":
		if h, ok := e.nodeCache.snap.Host(src.key.agent); ok {
			return h, true
		}
		return nil, false
	case counters.IsHost(name):
		if src.host == nil {
			return nil, false
		}
		return src.host.Metric(name)
	}
	return src.counters.Metric(name, src.key.index)
}

// countersAt is when the data source's last counters came.
func (src *source) countersAt() float64 {
	if src.host != nil && src.host.At > src.counters.At {
		return src.host.At
	}
	return src.counters.At
}

// parseRef reads a metric reference; a bad one is ErrInvalid.
func parseRef(text string) (counters.Ref, error) {
	ref, err := counters.ParseRef(text)
	if err != nil {
		return ref, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return ref, nil
}

// errNoSuchMetric is a metric name that is neither a counter metric nor a
// flow: not found, and skipped in a list of several.
var errNoSuchMetric = fmt.Errorf("%w (neither a counter metric nor a flow)", ErrNotFound)

// forEachMetric calls fn for every data source of the selected agents that
// has the metric: counter metrics, or a flow's top keys.
func (e *Engine) forEachMetric(agents func(netip.Addr) bool, ref counters.Ref, now float64, fn func(api.Metric, float64)) error {
	if p, ok := e.plans[ref.Name]; ok {
		for src, head := range e.tables[ref.Name].Sources() {
			if !agents(src.key.agent) || ref.DS != "" && src.key.dataSource() != ref.DS {
				continue
			}
			keys := e.topKeys(p, head, now)
			if len(keys) == 0 {
				continue
			}
			fn(api.Metric{Agent: src.key.agent.String(), DataSource: src.key.dataSource(), MetricName: ref.Name,
				TopKeys: keys, LastUpdate: keys[0].LastUpdate}, keys[0].Value)
		}
		return nil
	}
	if !counters.IsCounter(ref.Name) {
		return fmt.Errorf("metric %q: %w", ref.Text, errNoSuchMetric)
	}
	for _, src := range e.sources {
		if !agents(src.key.agent) || ref.DS != "" && src.key.dataSource() != ref.DS {
			continue
		}
		v, ok := e.metric(src, ref.Name)
		if !ok {
			continue
		}
		f, _ := v.(float64)
		fn(api.Metric{Agent: src.key.agent.String(), DataSource: src.key.dataSource(), MetricName: ref.Name,
			MetricValue: v, LastUpdate: int64((now - src.countersAt()) * 1000)}, f)
	}
	return nil
}

// topKeys returns a data source's n largest flows.
func (e *Engine) topKeys(p *plan, head *entry, now float64) []api.TopKey {
	var out []api.TopKey
	for ent := head; ent != nil; ent = ent.NextAtSource() {
		if v := ent.ValueAt(p.Tau, now); v > 0 {
			out = append(out, api.TopKey{Key: e.formatKey(p, ent.Key()), Value: v, LastUpdate: int64((now - ent.Last) * 1000)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value > out[j].Value })
	if len(out) > p.Def.N {
		out = out[:p.Def.N]
	}
	return out
}

// Dump returns every selected metric of every selected data source.
func (e *Engine) Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	e.topoNow(now, true)
	if len(metrics) == 1 && metrics[0] == "ALL" {
		metrics = append([]string(nil), counters.Names...)
		for name := range e.plans {
			metrics = append(metrics, name)
		}
	}
	out := []api.Metric{}
	for _, m := range metrics {
		ref, err := parseRef(m)
		if err != nil {
			return nil, err
		}
		err = e.forEachMetric(agents, ref, now, func(mt api.Metric, _ float64) { out = append(out, mt) })
		if err != nil && !(len(metrics) > 1 && errors.Is(err, errNoSuchMetric)) {
			return nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].DataSource < out[j].DataSource
	})
	return out, nil
}

// Metrics summarises each requested metric over the selected agents, in
// request order: max by default, or the aggregate its prefix names.
func (e *Engine) Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	out := make([]api.Statistic, 0, len(metrics))
	for _, m := range metrics {
		ref, err := parseRef(m)
		if err != nil {
			return nil, err
		}
		sb := counters.NewSummary(ref)
		if err := e.forEachMetric(agents, ref, now, sb.Add); err != nil {
			return nil, err
		}
		out = append(out, sb.Finish())
	}
	return out, nil
}

// counterThresholds checks thresholds on counter metrics against a data
// source's new counters (a flow of the same name hides one).
func (e *Engine) counterThresholds(src *source, now float64) {
	for _, th := range e.thresholds {
		if e.plans[th.Def().Metric] == nil {
			th.Counter(src, now)
		}
	}
}
