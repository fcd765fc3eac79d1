package flows

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
)

// counterState is a data source's last counters, and the rates between its
// last two counter samples, in sFlow-RT's metric names.
type counterState struct {
	at    float64 // when the last counter sample came, 0 for never
	speed uint64
	raw   [nCounters]uint64
	rate  [nCounters]float64 // per second, between the last two samples
	have  bool
	// Static attributes of the interface.
	ifType, direction, status uint32
	name                      string
}

// The counters that become per-second rate metrics.
const (
	cInOctets = iota
	cOutOctets
	cInPkts
	cOutPkts
	cInDiscards
	cOutDiscards
	cInErrors
	cOutErrors
	nCounters
)

var counterNames = [nCounters]string{"ifinoctets", "ifoutoctets", "ifinpkts", "ifoutpkts",
	"ifindiscards", "ifoutdiscards", "ifinerrors", "ifouterrors"}

func (c *counterState) update(g *decode.GenericInterface, now float64) {
	raw := [nCounters]uint64{g.InOctets, g.OutOctets,
		uint64(g.InUcastPkts) + uint64(g.InMulticastPkts) + uint64(g.InBroadcastPkts),
		uint64(g.OutUcastPkts) + uint64(g.OutMulticastPkts) + uint64(g.OutBroadcastPkts),
		uint64(g.InDiscards), uint64(g.OutDiscards), uint64(g.InErrors), uint64(g.OutErrors)}
	if c.have && now > c.at {
		dt := now - c.at
		for i := range raw {
			if raw[i] >= c.raw[i] { // a counter that went back (reset) gives no rate this time
				c.rate[i] = float64(raw[i]-c.raw[i]) / dt
			}
		}
	}
	c.at, c.speed, c.raw, c.have = now, g.IfSpeed, raw, true
	c.ifType, c.direction, c.status = g.IfType, g.IfDirection, g.IfStatus
}

// metric returns one counter metric of the data source: a number, or a
// string for ifname and host_name, and whether it has it.
func (e *Engine) metric(src *source, name string) (any, bool) {
	c := &src.counters
	if name == "host_name" {
		if h, ok := e.nodeCache.snap.Host(src.key.agent); ok {
			return h, true
		}
		return nil, false
	}
	if hostMetricSet[name] {
		if src.host == nil {
			return nil, false
		}
		return src.host.metric(name)
	}
	if !c.have {
		return nil, false
	}
	for i, n := range counterNames {
		if n == name {
			return c.rate[i], true
		}
	}
	util := func(rate float64) float64 {
		if c.speed == 0 {
			return 0
		}
		return math.Min(100*rate*8/float64(c.speed), 100)
	}
	switch name {
	case "ifindex":
		return float64(src.key.index), true
	case "ifspeed":
		return float64(c.speed), true
	case "iftype":
		return float64(c.ifType), true
	case "ifdirection":
		return float64(c.direction), true
	case "ifadminstatus":
		return updown(c.status&1 != 0), true
	case "ifoperstatus":
		return updown(c.status&2 != 0), true
	case "ifinutilization":
		return util(c.rate[cInOctets]), true
	case "ifoututilization":
		return util(c.rate[cOutOctets]), true
	case "ifname":
		if c.name != "" {
			return c.name, true
		}
	}
	return nil, false
}

// countersAt is when the data source's last counters came.
func (src *source) countersAt() float64 {
	if src.host != nil && src.host.at > src.counters.at {
		return src.host.at
	}
	return src.counters.at
}

func updown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// counterMetrics lists every counter metric name: an interface's, then a
// host's.
var counterMetrics = append(append(counterNames[:], "ifindex", "ifspeed", "iftype", "ifdirection", "ifadminstatus",
	"ifoperstatus", "ifinutilization", "ifoututilization", "ifname", "host_name"), hostMetrics...)

var (
	counterMetricSet = setOf(counterMetrics)
	hostMetricSet    = setOf(hostMetrics)
)

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func isCounterMetric(name string) bool { return counterMetricSet[name] }

// metricRef is a requested metric: "[agg:][ds.]name".
type metricRef struct {
	text, agg, ds, name string
}

func parseMetricRef(text string) (metricRef, error) {
	r := metricRef{text: text, agg: "max"}
	rest := text
	if agg, name, ok := strings.Cut(rest, ":"); ok {
		switch agg {
		case "max", "min", "sum", "avg", "any", "var", "sdev", "med", "q1", "q2", "q3", "iqr":
		default:
			return r, fmt.Errorf("%w: metric %q: aggregate %q: want max, min, sum, avg, var, sdev, med, q1, q2, q3, iqr or any", ErrInvalid, text, agg)
		}
		r.agg, rest = agg, name
	}
	// A data source prefix is "N." or "N.M." before the name.
	if i := strings.LastIndexByte(rest, '.'); i > 0 && strings.Trim(rest[:i], "0123456789.") == "" {
		r.ds, rest = rest[:i], rest[i+1:]
	}
	r.name = rest
	if r.name == "" {
		return r, fmt.Errorf("%w: metric %q: no name", ErrInvalid, text)
	}
	return r, nil
}

// errNoSuchMetric is a metric name that is neither a counter metric nor a
// flow: not found, and skipped in a list of several.
var errNoSuchMetric = fmt.Errorf("%w (neither a counter metric nor a flow)", ErrNotFound)

// forEachMetric calls fn for every data source of the selected agents that
// has the metric: counter metrics, or a flow's top keys.
func (e *Engine) forEachMetric(agents func(netip.Addr) bool, ref metricRef, now float64, fn func(api.Metric, float64)) error {
	if p, ok := e.plans[ref.name]; ok {
		for src, head := range e.tables[ref.name].bySource {
			if !agents(src.key.agent) || ref.ds != "" && src.key.dataSource() != ref.ds {
				continue
			}
			keys := e.topKeys(p, head, now)
			if len(keys) == 0 {
				continue
			}
			fn(api.Metric{Agent: src.key.agent.String(), DataSource: src.key.dataSource(), MetricName: ref.name,
				TopKeys: keys, LastUpdate: keys[0].LastUpdate}, keys[0].Value)
		}
		return nil
	}
	if !isCounterMetric(ref.name) {
		return fmt.Errorf("metric %q: %w", ref.text, errNoSuchMetric)
	}
	for _, src := range e.sources {
		if !agents(src.key.agent) || ref.ds != "" && src.key.dataSource() != ref.ds {
			continue
		}
		v, ok := e.metric(src, ref.name)
		if !ok {
			continue
		}
		f, _ := v.(float64)
		fn(api.Metric{Agent: src.key.agent.String(), DataSource: src.key.dataSource(), MetricName: ref.name,
			MetricValue: v, LastUpdate: int64((now - src.countersAt()) * 1000)}, f)
	}
	return nil
}

// topKeys returns a data source's n largest flows.
func (e *Engine) topKeys(p *plan, head *entry, now float64) []api.TopKey {
	var out []api.TopKey
	for ent := head; ent != nil; ent = ent.srcNext {
		if v := ent.valueAt(p, now); v > 0 {
			out = append(out, api.TopKey{Key: e.formatKey(p, ent.key()), Value: v, LastUpdate: int64((now - ent.last) * 1000)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value > out[j].Value })
	if len(out) > p.def.N {
		out = out[:p.def.N]
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
		metrics = append([]string(nil), counterMetrics...)
		for name := range e.plans {
			metrics = append(metrics, name)
		}
	}
	out := []api.Metric{}
	for _, m := range metrics {
		ref, err := parseMetricRef(m)
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
		ref, err := parseMetricRef(m)
		if err != nil {
			return nil, err
		}
		var sb statBuilder
		sb.ref = ref
		if err := e.forEachMetric(agents, ref, now, sb.add); err != nil {
			return nil, err
		}
		out = append(out, sb.finish())
	}
	return out, nil
}

// MetricFlow is the name a metric reads (as /metric takes it, with an
// aggregate and a data source: a flow's or a counter's) and the data
// source it is limited to, if any; "" for a malformed one.
func MetricFlow(metric string) (name, dataSource string) {
	ref, err := parseMetricRef(metric)
	if err != nil {
		return "", ""
	}
	return ref.name, ref.ds
}

// Summarise is Metrics over rows already gathered (as Dump returns them):
// for metrics gathered from several engines.
func Summarise(metric string, rows []api.Metric) (api.Statistic, error) {
	ref, err := parseMetricRef(metric)
	if err != nil {
		return api.Statistic{}, err
	}
	sb := statBuilder{ref: ref}
	for _, mt := range rows {
		v, _ := mt.MetricValue.(float64)
		if len(mt.TopKeys) > 0 {
			v = mt.TopKeys[0].Value
		}
		sb.add(mt, v)
	}
	return sb.finish(), nil
}

// statBuilder summarises one metric over the data sources that have it.
type statBuilder struct {
	ref        metricRef
	st         api.Statistic
	sum, taken float64   // taken: the value of the source max or min took
	all        []float64 // for the spread and the quantiles
}

func (sb *statBuilder) add(mt api.Metric, v float64) {
	st, ref := &sb.st, sb.ref
	st.MetricN++
	sb.sum += v
	if _, isNum := mt.MetricValue.(float64); isNum || mt.TopKeys != nil {
		sb.all = append(sb.all, v)
	}
	if st.MetricN == 1 {
		st.LastUpdateMin, st.LastUpdateMax = mt.LastUpdate, mt.LastUpdate
	}
	st.LastUpdateMin = min(st.LastUpdateMin, mt.LastUpdate)
	st.LastUpdateMax = max(st.LastUpdateMax, mt.LastUpdate)
	take := st.MetricN == 1 || ref.agg == "max" && v > sb.taken || ref.agg == "min" && v < sb.taken
	if take {
		sb.taken, st.Agent, st.DataSource, st.LastUpdate = v, mt.Agent, mt.DataSource, mt.LastUpdate
		st.MetricValue = mt.MetricValue
		if mt.TopKeys != nil {
			st.MetricValue = mt.TopKeys
		}
	}
}

func (sb *statBuilder) finish() api.Statistic {
	st := sb.st
	st.MetricName = sb.ref.text
	switch sb.ref.agg {
	case "sum":
		st.MetricValue, st.Agent, st.DataSource = sb.sum, "", ""
	case "avg":
		if st.MetricN > 0 {
			st.MetricValue, st.Agent, st.DataSource = sb.sum/float64(st.MetricN), "", ""
		}
	case "var", "sdev", "med", "q1", "q2", "q3", "iqr":
		if len(sb.all) > 0 {
			st.MetricValue, st.Agent, st.DataSource = spread(sb.ref.agg, sb.all), "", ""
		}
	}
	if st.Agent == "" && st.MetricN > 0 {
		st.LastUpdate = st.LastUpdateMin // of no one source: the freshest
	}
	return st
}

// counterThresholds checks thresholds on counter metrics against a data
// source's new counters.
func (e *Engine) counterThresholds(src *source, now float64) {
	for _, th := range e.thresholds {
		if !th.counter || e.plans[th.def.Metric] != nil || !th.applies(e, src) {
			continue
		}
		v, ok := e.metric(src, th.def.Metric)
		f, isNum := v.(float64)
		if !ok || !isNum {
			continue
		}
		if fired := th.bySource[src]; fired != nil {
			if f > th.def.Value {
				fired.below = -1
			} else if fired.below < 0 {
				fired.below = now
			}
			continue
		}
		if f > th.def.Value {
			th.bySource[src] = &firing{below: -1}
			ev := api.Event{Timestamp: e.wall(now), ThresholdID: th.name, Metric: th.def.Metric,
				Agent: src.key.agent.String(), DataSource: src.key.dataSource(), Value: f, Threshold: th.def.Value}
			e.events.Add(ev, func(ev *api.Event, id int64) { ev.EventID = id })
		}
	}
}

// spread summarizes values as /metric's var: (population variance), sdev:,
// med: and q2: (the median), q1:, q3: (quartiles, interpolated between
// the sorted values) and iqr: (q3 - q1).
func spread(agg string, vs []float64) float64 {
	if agg == "var" || agg == "sdev" {
		var mean, sq float64
		for _, v := range vs {
			mean += v
		}
		mean /= float64(len(vs))
		for _, v := range vs {
			sq += (v - mean) * (v - mean)
		}
		if agg == "sdev" {
			return math.Sqrt(sq / float64(len(vs)))
		}
		return sq / float64(len(vs))
	}
	sort.Float64s(vs)
	q := func(p float64) float64 {
		x := p * float64(len(vs)-1)
		i := int(x)
		if i+1 >= len(vs) {
			return vs[len(vs)-1]
		}
		return vs[i] + (x-float64(i))*(vs[i+1]-vs[i])
	}
	switch agg {
	case "q1":
		return q(0.25)
	case "q3":
		return q(0.75)
	case "iqr":
		return q(0.75) - q(0.25)
	}
	return q(0.5)
}
