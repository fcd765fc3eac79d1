package web

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/fabrictrace/fabrictrace/keys"
)

// The sflow-rt/prometheus app's flow export, so scrape configs written for
// sFlow-RT work unchanged: /app/prometheus/scripts/export.js/flows/{agents}/txt
// ?metric=&key=&label=&value=&filter=&n=&t=&aggMode=&maxFlows=&minValue=&scale=&dropped=
// Each parameter set is backed by a flow named prometheus_N (keys joined
// by _SEP_, as the app does), dropped after 5 minutes without a scrape. A
// GET creates it, so there are at most Config.MaxExportFlows: past that,
// the least recently scraped is replaced, and counted.

const promIdle = 5 * time.Minute

type promFlows struct {
	mu                sync.Mutex
	seen              map[string]time.Time // backing flow -> last scrape
	created, replaced uint64
}

// ExportStats counts the Prometheus export's backing flows: held now,
// created, and replaced to stay under the cap.
type ExportStats struct {
	Flows             int
	Created, Replaced uint64
}

// ExportStats returns the export's counts.
func (s *Server) ExportStats() ExportStats {
	p := &s.prom
	p.mu.Lock()
	defer p.mu.Unlock()
	return ExportStats{Flows: len(p.seen), Created: p.created, Replaced: p.replaced}
}

var promName = regexp.MustCompile(`[^A-Za-z0-9_]`)

func (s *Server) promFlowExport(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	metric := promName.ReplaceAllString(v.Get("metric"), "_")
	// key and label take comma lists (the app's blog URLs) as well as
	// repeated parameters, the same thing; a key splits where sFlow-RT
	// splits keys, not inside [ ].
	names, labels := splitLists(v["key"]), splitLists(v["label"])
	if metric == "" || len(names) == 0 {
		s.fail(w, http.StatusBadRequest, errors.New("metric and at least one key are required"))
		return
	}
	for i := len(labels); i < len(names); i++ {
		labels = append(labels, names[i])
	}
	q := &query{r: r}
	n, t := q.int("n", 10), q.float("t", 15)
	maxFlows, minValue, scale := q.int("maxFlows", 20), q.float("minValue", 0.1), q.float("scale", 1)
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	agents, err := s.agentFilter(mux.Vars(r)["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	value := v.Get("value")
	if value == "" {
		value = "bytes"
	}
	// dropped=true counts discarded-packet events, summed over the places
	// that dropped them by default, as the app does.
	dropped := v.Get("dropped") == "true"
	aggMode := v.Get("aggMode")
	if aggMode == "" {
		aggMode = "max"
		if dropped {
			aggMode = "sum"
		}
	}
	// One backing flow per distinct definition.
	def := keys.Definition{Keys: keys.KeyList(strings.Join(names, ",")), Value: value, N: int(n), T: t, FS: "_SEP_", Dropped: dropped}
	if f := v.Get("filter"); f != "" {
		def.Filter = &f
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%v|%d|%v|%v", def.Keys, def.Value, v.Get("filter"), n, t, dropped)
	name := fmt.Sprintf("prometheus_%08x", h.Sum32())
	if err := s.promBacking(name, def); err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	rows, err := s.cfg.Engine.ActiveFlows(name, agents, int(maxFlows), minValue, aggMode)
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, row := range rows {
		parts := strings.Split(row.Key, "_SEP_")
		var lb []string
		for i, l := range labels {
			if i < len(parts) {
				lb = append(lb, promName.ReplaceAllString(l, "_")+"="+strconv.Quote(parts[i]))
			}
		}
		fmt.Fprintf(w, "%s{%s} %s\n", metric, strings.Join(lb, ","), strconv.FormatFloat(row.Value*scale, 'g', -1, 64))
	}
}

// promBacking makes sure the backing flow exists, and drops backing flows
// nobody has scraped for promIdle.
func (s *Server) promBacking(name string, def keys.Definition) error {
	p := &s.prom
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]time.Time{}
	}
	now := time.Now()
	for other, at := range p.seen {
		if other != name && now.Sub(at) > promIdle {
			s.cfg.Engine.DeleteFlow(other)
			delete(p.seen, other)
		}
	}
	if _, ok := p.seen[name]; !ok {
		if _, err := s.cfg.Engine.FlowDefinition(name); err != nil {
			if len(p.seen) >= s.cfg.MaxExportFlows {
				var lru string
				for other, at := range p.seen {
					if lru == "" || at.Before(p.seen[lru]) {
						lru = other
					}
				}
				s.cfg.Engine.DeleteFlow(lru)
				delete(p.seen, lru)
				p.replaced++
			}
			if err := s.cfg.Engine.SetFlow(name, def); err != nil {
				return err
			}
			p.created++
		}
	}
	p.seen[name] = now
	return nil
}

// splitLists splits each value at its top-level commas (not inside [ ])
// and joins the pieces: ["a,b", "c"] and ["a", "b", "c"] are the same.
func splitLists(values []string) []string {
	var out []string
	for _, v := range values {
		depth, start := 0, 0
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '[':
				depth++
			case ']':
				depth = max(depth-1, 0)
			case ',':
				if depth == 0 {
					out = append(out, v[start:i])
					start = i + 1
				}
			}
		}
		out = append(out, v[start:])
	}
	return out
}

// sFlow-RT's own exporter: /prometheus/metrics/{agents}/{metrics or ALL}/txt
// serves counter metrics as sflow_NAME{agent,datasource,host,ifname}, and
// /prometheus/analyzer/txt the analyzer's figures as sflow_analyzer_NAME.

const promPrefix = "sflow_"

func (s *Server) promMetrics(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	dump, err := s.cfg.Engine.Dump(agents, metricList(vars["metrics"]))
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	// The names of each data source, for labels, whatever was asked for.
	named, err := s.cfg.Engine.Dump(agents, []string{"host_name", "ifname"})
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	// A host's name comes with its own data source (hsflowd's host
	// structures), so it names every data source of the agent.
	type place struct{ agent, ds string }
	names := map[place][2]string{} // host, ifname
	hosts := map[string]string{}
	for _, m := range named {
		k := place{m.Agent, m.DataSource}
		n := names[k]
		switch v, _ := m.MetricValue.(string); m.MetricName {
		case "host_name":
			n[0] = v
			hosts[m.Agent] = v
		case "ifname":
			n[1] = v
		}
		names[k] = n
	}
	// One group of lines per metric, each data source once.
	type line struct {
		labels string
		value  float64
	}
	byMetric := map[string][]line{}
	seen := map[string]bool{}
	for _, m := range dump {
		v, ok := m.MetricValue.(float64)
		if !ok || len(m.TopKeys) > 0 {
			continue // text, or a flow's top keys
		}
		name := promPrefix + promName.ReplaceAllString(m.MetricName, "_")
		k := place{m.Agent, m.DataSource}
		labels := "agent=" + strconv.Quote(m.Agent) + ",datasource=" + strconv.Quote(m.DataSource)
		if host := cmp.Or(names[k][0], hosts[m.Agent]); host != "" {
			labels += ",host=" + strconv.Quote(host)
		}
		if n := names[k]; n[1] != "" {
			labels += ",ifname=" + strconv.Quote(n[1])
		}
		if id := name + "{" + labels; !seen[id] {
			seen[id] = true
			byMetric[name] = append(byMetric[name], line{labels, v})
		}
	}
	order := make([]string, 0, len(byMetric))
	for name := range byMetric {
		order = append(order, name)
	}
	sort.Strings(order)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, name := range order {
		for _, l := range byMetric[name] {
			fmt.Fprintf(w, "%s{%s} %s\n", name, l.labels, strconv.FormatFloat(l.value, 'g', -1, 64))
		}
	}
}

func (s *Server) promAnalyzer(w http.ResponseWriter, _ *http.Request) {
	stats := s.analyzerStats()
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, k := range keys {
		var v float64
		switch x := stats[k].(type) {
		case int:
			v = float64(x)
		case int64:
			v = float64(x)
		case uint64:
			v = float64(x)
		case float64:
			v = x
		default:
			continue
		}
		fmt.Fprintf(w, "%sanalyzer_%s %s\n", promPrefix, snake(strings.TrimPrefix(k, "sFlow")), strconv.FormatFloat(v, 'g', -1, 64))
	}
}

// snake writes a camelCase name as snake_case: datagramsReceived is
// datagrams_received, as sFlow-RT names sflow_analyzer_agents.
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// promStatistics serves the app's statistics export,
// /app/prometheus/scripts/export.js/statistics/{group}/{agents}/{metrics}/txt:
// each metric summarized over the agents (max:load_one and the like), as
// sflow_max_load_one{group="..."}; numbers only, each name once.
func (s *Server) promStatistics(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	stats, err := s.cfg.Engine.Metrics(agents, metricList(vars["metrics"]))
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	seen := map[string]bool{}
	for _, st := range stats {
		v, ok := st.MetricValue.(float64)
		name := promPrefix + promName.ReplaceAllString(st.MetricName, "_")
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		fmt.Fprintf(w, "%s{group=%s} %s\n", name, strconv.Quote(vars["group"]), strconv.FormatFloat(v, 'g', -1, 64))
	}
}
