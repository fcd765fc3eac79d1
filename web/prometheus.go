package web

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/fabrictrace/fabrictrace/flows"
)

// The sflow-rt/prometheus app's flow export, so scrape configs written for
// sFlow-RT work unchanged: /app/prometheus/scripts/export.js/flows/{agents}/txt
// ?metric=&key=&label=&value=&filter=&n=&t=&aggMode=&maxFlows=&minValue=&scale=
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
	keys, labels := splitLists(v["key"]), splitLists(v["label"])
	if metric == "" || len(keys) == 0 {
		s.fail(w, http.StatusBadRequest, errors.New("metric and at least one key are required"))
		return
	}
	for i := len(labels); i < len(keys); i++ {
		labels = append(labels, keys[i])
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
	aggMode := v.Get("aggMode")
	if aggMode == "" {
		aggMode = "max"
	}
	// One backing flow per distinct definition.
	def := flows.Definition{Keys: flows.KeyList(strings.Join(keys, ",")), Value: value, N: int(n), T: t, FS: "_SEP_"}
	if f := v.Get("filter"); f != "" {
		def.Filter = &f
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%v|%d|%v", def.Keys, def.Value, v.Get("filter"), n, t)
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
func (s *Server) promBacking(name string, def flows.Definition) error {
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
