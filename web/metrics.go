package web

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fabrictrace/fabrictrace/api"
)

// metricList splits a metric list: sFlow-RT separates ordered lists with ','
// and unordered ones with ';', and either reads the same here.
func metricList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' })
}

// attrFilter narrows an agent selection by the query's attribute filters,
// as sFlow-RT's /metric takes them: ?host_name=leaf0*&os_name=linux keeps
// the agents one of whose data sources has each attribute matching one of
// its values (a comma list; * and ? match as in a shell). Without a query
// it is the selection itself.
func (s *Server) attrFilter(agents func(netip.Addr) bool, r *http.Request) (func(netip.Addr) bool, error) {
	q := r.URL.Query()
	if len(q) == 0 {
		return agents, nil
	}
	keep := map[string]bool{} // agents passing every filter so far
	first := true
	for attr, values := range q {
		var patterns []string
		for _, v := range values {
			patterns = append(patterns, strings.Split(v, ",")...)
		}
		for _, p := range patterns {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("filter %s=%q: %w", attr, p, err)
			}
		}
		dump, err := s.cfg.Engine.Dump(agents, []string{attr})
		if err != nil {
			return nil, fmt.Errorf("filter %s: %v", attr, err) // a 400: the query is wrong
		}
		pass := map[string]bool{}
		for _, m := range dump {
			var text string
			switch v := m.MetricValue.(type) {
			case string:
				text = v
			case float64:
				text = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				continue
			}
			for _, p := range patterns {
				if ok, _ := path.Match(p, text); ok && (first || keep[m.Agent]) {
					pass[m.Agent] = true
				}
			}
		}
		keep, first = pass, false
	}
	return func(a netip.Addr) bool { return keep[a.String()] }, nil
}

// metric serves /metric/{agents}/{metrics}/json: one Statistic per metric,
// in request order, over the agents the query's attribute filters keep.
func (s *Server) metric(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err == nil {
		agents, err = s.attrFilter(agents, r)
	}
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	out, err := s.cfg.Engine.Metrics(agents, metricList(vars["metrics"]))
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, out)
}

// agentMetrics serves /metric/{agent}/json: every metric of one agent, as
// "ds.name": value.
// metricNames is /metrics/json: every metric some data source has now,
// counters and flows, with the ms since the freshest of them was updated.
func (s *Server) metricNames(w http.ResponseWriter, _ *http.Request) {
	dump, err := s.cfg.Engine.Dump(func(netip.Addr) bool { return true }, []string{"ALL"})
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	out := map[string]int64{}
	for _, m := range dump {
		if ago, ok := out[m.MetricName]; !ok || m.LastUpdate < ago {
			out[m.MetricName] = m.LastUpdate
		}
	}
	s.reply(w, out)
}

// license is /license/json: an open source analyzer has no license to
// check, which the shape sFlow-RT's own UI reads says.
func (s *Server) license(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	s.reply(w, map[string]any{
		"license": map[string]any{"type": "open", "host": host, "host_ok": true, "max_bps": 0, "max_bps_ok": true,
			"expires": 0, "expires_ok": true, "license": "", "account": ""},
		"analyzer": map[string]any{"host": host, "bps": 0},
	})
}

func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request) {
	agent := mux.Vars(r)["agent"]
	agents, err := s.agentFilter(agent)
	if err != nil {
		// One agent, by address or name, as sFlow-RT's reference has it:
		// one it does not know is 404.
		s.fail(w, http.StatusNotFound, err)
		return
	}
	dump, err := s.cfg.Engine.Dump(agents, []string{"ALL"})
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	if len(dump) == 0 {
		s.fail(w, http.StatusNotFound, fmt.Errorf("agent %q: no metrics from it", agent))
		return
	}
	out := map[string]any{}
	for _, m := range dump {
		if m.TopKeys != nil {
			out[m.DataSource+"."+m.MetricName] = m.TopKeys
			continue
		}
		out[m.DataSource+"."+m.MetricName] = m.MetricValue
	}
	s.reply(w, out)
}

// dump serves /dump/{agents}/{metrics|ALL}/json: one Metric per data source
// and metric.
func (s *Server) dump(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err == nil {
		agents, err = s.attrFilter(agents, r)
	}
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	out, err := s.cfg.Engine.Dump(agents, metricList(vars["metrics"]))
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, out)
}

// table serves /table/{agents}/{metrics}/json: a row per data source that
// has every metric asked for, the metrics in request order.
func (s *Server) table(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err == nil {
		agents, err = s.attrFilter(agents, r)
	}
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	names := metricList(vars["metrics"])
	// sort:METRIC:N is the column METRIC, and the rows sorted by it: the
	// top N descending for a negative N, the bottom N ascending else.
	sortBy, keep := -1, 0
	for i, n := range names {
		rest, ok := strings.CutPrefix(n, "sort:")
		if !ok {
			continue
		}
		m, count, ok := strings.Cut(rest, ":")
		k, err := strconv.Atoi(count)
		if !ok || err != nil || k == 0 || sortBy >= 0 {
			s.fail(w, http.StatusBadRequest, fmt.Errorf("metric %q: want one sort:METRIC:N, N a non-zero count (-N: the top N)", n))
			return
		}
		names[i], sortBy, keep = m, i, k
	}
	dump, err := s.cfg.Engine.Dump(agents, names)
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	type place struct{ agent, ds string }
	rows := map[place][]api.Metric{}
	var order []place
	for _, m := range dump {
		k := place{m.Agent, m.DataSource}
		if rows[k] == nil {
			order = append(order, k)
		}
		rows[k] = append(rows[k], m)
	}
	out := [][]api.Metric{}
	for _, k := range order {
		if len(rows[k]) == len(names) {
			out = append(out, rows[k])
		}
	}
	if sortBy >= 0 {
		num := func(row []api.Metric) float64 {
			if v, ok := row[sortBy].MetricValue.(float64); ok {
				return v
			}
			return math.NaN()
		}
		sort.SliceStable(out, func(i, j int) bool {
			a, b := num(out[i]), num(out[j])
			if math.IsNaN(b) {
				return !math.IsNaN(a)
			}
			if keep < 0 {
				return a > b
			}
			return a < b
		})
		if n := max(keep, -keep); len(out) > n {
			out = out[:n]
		}
	}
	s.reply(w, out)
}
