package web

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/fabrictrace/fabrictrace/flows"
)

// metricList splits a metric list: sFlow-RT separates ordered lists with ','
// and unordered ones with ';', and either reads the same here.
func metricList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' })
}

// metric serves /metric/{agents}/{metrics}/json: one Statistic per metric,
// in request order.
func (s *Server) metric(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
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
func (s *Server) agentMetrics(w http.ResponseWriter, r *http.Request) {
	agents, err := s.agentFilter(mux.Vars(r)["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	dump, err := s.cfg.Engine.Dump(agents, []string{"ALL"})
	if err != nil {
		s.fail(w, statusOf(err), err)
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
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
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
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	names := metricList(vars["metrics"])
	dump, err := s.cfg.Engine.Dump(agents, names)
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	type place struct{ agent, ds string }
	rows := map[place][]flows.Metric{}
	var order []place
	for _, m := range dump {
		k := place{m.Agent, m.DataSource}
		if rows[k] == nil {
			order = append(order, k)
		}
		rows[k] = append(rows[k], m)
	}
	out := [][]flows.Metric{}
	for _, k := range order {
		if len(rows[k]) == len(names) {
			out = append(out, rows[k])
		}
	}
	s.reply(w, out)
}
