package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// Version is fabrictrace's own version, on /analyzer/json.
const Version = "fabrictrace-0.1"

// APIVersion is what /version answers: sFlow-RT's shape (N.N-N), naming
// the sFlow-RT API level fabrictrace follows, for scripts that parse it.
const APIVersion = "3.0-1"

// Agent is one agent as /agents/json serves it, in sFlow-RT's field names.
type Agent struct {
	// Agent keys the agent in /agents/json and its ?agent= filter: the
	// address alone for sub-agent 0, as sFlow-RT has it, and address:id
	// ([address]:id for IPv6) for any other sub-agent of the address.
	Agent                    string   `json:"-"`
	SubAgentID               uint32   `json:"sFlowSubAgentId"`
	DatagramsReceived        uint64   `json:"sFlowDatagramsReceived"`
	DatagramsLost            uint64   `json:"sFlowDatagramsLost"`
	DatagramsOutOfOrder      uint64   `json:"sFlowDatagramsOutOfOrder"`
	DatagramsDuplicates      uint64   `json:"sFlowDatagramsDuplicates"`
	DatagramSource           []string `json:"sFlowDatagramSource"`
	FlowSamples              uint64   `json:"sFlowFlowSamples"`
	FlowLostSamples          uint64   `json:"sFlowFlowLostSamples"`
	FlowDuplicateSamples     uint64   `json:"sFlowFlowDuplicateSamples"`
	FlowOutOfOrderSamples    uint64   `json:"sFlowFlowOutOfOrderSamples"`
	FlowDrops                uint64   `json:"sFlowFlowDrops"`
	FlowDatasources          int      `json:"sFlowFlowDatasources"`
	CounterSamples           uint64   `json:"sFlowCounterSamples"`
	CounterLostSamples       uint64   `json:"sFlowCounterLostSamples"`
	CounterDuplicateSamples  uint64   `json:"sFlowCounterDuplicateSamples"`
	CounterOutOfOrderSamples uint64   `json:"sFlowCounterOutOfOrderSamples"`
	CounterDatasources       int      `json:"sFlowCounterDatasources"`
	FirstSeen                int64    `json:"firstSeen"` // ms ago
	LastSeen                 int64    `json:"lastSeen"`  // ms ago
	Uptime                   int64    `json:"uptime"`    // ms, as the agent reports it
	Restarts                 uint64   `json:"restarts"`
	Malformed                uint64   `json:"malformedDatagrams"`
	SamplesFaulted           uint64   `json:"faultedSamples"`
	UnknownRecords           uint64   `json:"unknownRecords"`
	LastError                string   `json:"lastError,omitempty"`
	BytesReceived            uint64   `json:"sFlowBytesReceived"`
}

// Engine is what the server serves from: a flows.Engine, or package
// engine's shards of them.
type Engine interface {
	SetFlow(name string, d keys.Definition) error
	DeleteFlow(name string) error
	FlowDefinition(name string) (keys.Definition, error)
	FlowDefinitions() map[string]keys.Definition
	SetThreshold(name string, t thresholds.Threshold) error
	DeleteThreshold(name string) error
	ThresholdDefinition(name string) (thresholds.Threshold, error)
	ThresholdDefinitions() map[string]thresholds.Threshold
	SetGroup(name string, body []byte) error
	DeleteGroup(name string) error
	Group(name string) (map[string][]string, error)
	Groups() map[string]map[string][]string
	SetMap(name string, body []byte) error
	DeleteMap(name string) error
	Map(name string) (map[string][]string, error)
	Maps() map[string]map[string][]string
	SetTopology(doc api.Topology) error
	Topology() api.Topology
	NodeName(a netip.Addr) string
	Nodes() []api.Node
	EdgeAgents(nodes map[netip.Addr]bool) (edge, core map[netip.Addr]bool)
	NodeAddress(name string) (netip.Addr, bool)
	Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event
	UserEvents(ctx context.Context, after int64, max int, timeout time.Duration) []api.Event
	FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord
	Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant
	ActiveElephants() []api.Elephant
	ElephantRecords(max int) []api.Elephant
	Collisions() []api.Event
	Paths(q api.PathQuery) (api.Paths, error)
	ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error)
	FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error)
	FlowKeys() map[string]int64
	Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error)
	Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error)
	Stats() flows.Stats
}

// Config wires a server to what it serves.
type Config struct {
	Engine Engine
	Agents func() []Agent // from ingest's accounting
	// BuiltinEvents puts path changes and collisions in /events/json
	// without a thresholdID too (they are always there by their id).
	BuiltinEvents bool
	RIB           *rib.RIB // nil when BGP is off
	// Saver, if set, keeps what writes define (flows, thresholds, groups,
	// topology), so they survive a restart.
	Saver Saver
	// History, if set, serves /history/events/json and /history/elephants/json.
	History History
	// Metrics, if set, serves /metrics (Prometheus).
	Metrics http.Handler
	// Debug, if set, serves /debug/pprof/ (profiles of the running collector).
	Debug http.Handler
	// Ingest, if set, adds the front door's own counters to /analyzer/json:
	// kernel drops, datagrams dropped while the engine was behind.
	Ingest   func() map[string]any
	ReadOnly bool // refuse writes with 403, as sFlow-RT's http.readonly
	// MaxExportFlows bounds the flows the Prometheus app's export defines
	// for its scrapes (a GET creates one per distinct key and filter); past
	// it the least recently scraped is replaced [16].
	MaxExportFlows int
	Token          string // when set, writes need "Authorization: Bearer" it
	Logger         *slog.Logger
}

// Saver keeps definitions: kind is flow, threshold, group or topology.
type Saver interface {
	PutDefinition(kind, name string, body []byte) error
	DeleteDefinition(kind, name string) error
}

// History answers questions about the past: times are ms since the epoch,
// 0 for open; answers are newest first.
type History interface {
	HistoryEvents(ctx context.Context, since, until int64, threshold string, limit int) ([]json.RawMessage, error)
	HistoryElephants(ctx context.Context, since, until int64, src, dst string, limit int) ([]json.RawMessage, error)
}

// Server is the sFlow-RT compatible REST API.
type Server struct {
	cfg    Config
	router *mux.Router
	prom   promFlows
}

// New builds the routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Agents == nil {
		cfg.Agents = func() []Agent { return nil }
	}
	if cfg.MaxExportFlows <= 0 {
		cfg.MaxExportFlows = 16
	}
	s := &Server{cfg: cfg, router: mux.NewRouter()}
	r := s.router
	r.HandleFunc("/flow/json", s.listFlows).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flow/{name}/json", s.getFlow).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flow/{name}/json", s.write("flow", s.putFlow)).Methods(http.MethodPut, http.MethodPost)
	r.HandleFunc("/flow/{name}/json", s.write("flow", s.deleteFlow)).Methods(http.MethodDelete)
	r.HandleFunc("/threshold/json", s.listThresholds).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/threshold/{name}/json", s.getThreshold).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/threshold/{name}/json", s.write("threshold", s.putThreshold)).Methods(http.MethodPut, http.MethodPost)
	r.HandleFunc("/threshold/{name}/json", s.write("threshold", s.deleteThreshold)).Methods(http.MethodDelete)
	r.HandleFunc("/group/json", s.listGroups).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/group/{name}/json", s.getGroup).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/group/{name}/json", s.write("group", s.putGroup)).Methods(http.MethodPut, http.MethodPost)
	r.HandleFunc("/group/{name}/json", s.write("group", s.deleteGroup)).Methods(http.MethodDelete)
	r.HandleFunc("/map/json", s.listMaps).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/map/{name}/json", s.getMap).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/map/{name}/json", s.write("map", s.putMap)).Methods(http.MethodPut, http.MethodPost)
	r.HandleFunc("/map/{name}/json", s.write("map", s.deleteMap)).Methods(http.MethodDelete)
	r.HandleFunc("/events/json", s.events).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flows/json", s.flowLog).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/elephants/json", s.elephants).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/activeflows/{agent}/{name}/json", s.activeFlows).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flowlocations/{agent}/{name}/json", s.flowLocations).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flowvalue/{agent}/{metric}/json", s.flowValue).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/flowkeys/json", s.flowKeys).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/agents/json", s.agents).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/topology/json", s.getTopology).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/topology/json", s.write("topology", s.putTopology)).Methods(http.MethodPut, http.MethodPost)
	r.HandleFunc("/history/events/json", s.history(s.historyEvents)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/history/elephants/json", s.history(s.historyElephants)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/analyzer/json", s.analyzer).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/metrics/json", s.metricNames).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/license/json", s.license).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/metric/{agent}/json", s.agentMetrics).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/metric/{agent}/{metrics}/json", s.metric).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/dump/{agent}/{metrics}/json", s.dump).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/table/{agent}/{metrics}/json", s.table).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/paths/json", s.paths).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/collisions/json", func(w http.ResponseWriter, r *http.Request) {
		s.reply(w, s.cfg.Engine.Collisions())
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/nodes/json", s.nodes).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/app/prometheus/scripts/export.js/flows/{agent}/txt", s.promFlowExport).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/prometheus/metrics/{agent}/{metrics}/txt", s.promMetrics).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/prometheus/analyzer/txt", s.promAnalyzer).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/app/prometheus/scripts/export.js/statistics/{group}/{agent}/{metrics}/txt", s.promStatistics).Methods(http.MethodGet, http.MethodHead)
	if cfg.Metrics != nil {
		r.Handle("/metrics", cfg.Metrics).Methods(http.MethodGet, http.MethodHead)
	}
	if cfg.Debug != nil {
		r.PathPrefix("/debug/pprof/").Handler(cfg.Debug)
	}
	r.PathPrefix("/ui/").Handler(s.ui()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", http.RedirectHandler("/ui/", http.StatusFound)).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/path/json", s.path).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/bgp/neighbors/json", s.neighbors).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/rib/json", s.ribList).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/rib/lookup/json", s.ribLookup).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, APIVersion)
	}).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusNotFound, fmt.Errorf("no such endpoint: %s", r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusMethodNotAllowed, fmt.Errorf("%s not allowed on %s", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// maxBody bounds a PUT body: definitions and topologies are small.
const maxBody = 4 << 20

// write wraps a handler that changes state: 403 when read-only, 204 on
// success (kept by the Saver, if any), the error's status otherwise.
func (s *Server) write(kind string, h func(r *http.Request, name string, body []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.ReadOnly {
			s.fail(w, http.StatusForbidden, errors.New("read-only: writes are disabled"))
			return
		}
		if s.cfg.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fabrictrace"`)
				s.fail(w, http.StatusUnauthorized, errors.New("writes need Authorization: Bearer TOKEN"))
				return
			}
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
			return
		}
		if len(body) > maxBody {
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", maxBody))
			return
		}
		name := mux.Vars(r)["name"]
		if err := h(r, name, body); err != nil {
			s.fail(w, statusOf(err), err)
			return
		}
		if s.cfg.Saver != nil {
			var err error
			if r.Method == http.MethodDelete {
				err = s.cfg.Saver.DeleteDefinition(kind, name)
			} else {
				err = s.cfg.Saver.PutDefinition(kind, name, body)
			}
			if err != nil {
				// Applied but not kept: say so, rather than lose it at the next restart.
				s.fail(w, http.StatusInternalServerError, fmt.Errorf("applied, but not saved: %w", err))
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, flows.ErrNotFound):
		return http.StatusNotFound
	default:
		return http.StatusBadRequest
	}
}

func (s *Server) fail(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func (s *Server) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.cfg.Logger.Debug("http reply cut short", "err", err)
	}
}

func (s *Server) listFlows(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.FlowDefinitions())
}

func (s *Server) getFlow(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Engine.FlowDefinition(mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, d)
}

func (s *Server) putFlow(_ *http.Request, name string, body []byte) error {
	d, err := keys.ParseDefinition(body)
	if err != nil {
		return err
	}
	return s.cfg.Engine.SetFlow(name, d)
}

func (s *Server) deleteFlow(_ *http.Request, name string, _ []byte) error {
	return s.cfg.Engine.DeleteFlow(name)
}

func (s *Server) listThresholds(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.ThresholdDefinitions())
}

func (s *Server) getThreshold(w http.ResponseWriter, r *http.Request) {
	t, err := s.cfg.Engine.ThresholdDefinition(mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, t)
}

func (s *Server) putThreshold(_ *http.Request, name string, body []byte) error {
	t, err := thresholds.Parse(body)
	if err != nil {
		return err
	}
	return s.cfg.Engine.SetThreshold(name, t)
}

func (s *Server) deleteThreshold(_ *http.Request, name string, _ []byte) error {
	return s.cfg.Engine.DeleteThreshold(name)
}

func (s *Server) listGroups(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.Groups())
}

func (s *Server) putGroup(_ *http.Request, name string, body []byte) error {
	return s.cfg.Engine.SetGroup(name, body)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.cfg.Engine.Group(mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, g)
}

func (s *Server) deleteGroup(_ *http.Request, name string, _ []byte) error {
	return s.cfg.Engine.DeleteGroup(name)
}

func (s *Server) listMaps(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.Maps())
}

func (s *Server) putMap(_ *http.Request, name string, body []byte) error {
	return s.cfg.Engine.SetMap(name, body)
}

func (s *Server) getMap(w http.ResponseWriter, r *http.Request) {
	m, err := s.cfg.Engine.Map(mux.Vars(r)["name"])
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, m)
}

func (s *Server) deleteMap(_ *http.Request, name string, _ []byte) error {
	return s.cfg.Engine.DeleteMap(name)
}

func (s *Server) getTopology(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.Topology())
}

func (s *Server) putTopology(_ *http.Request, _ string, body []byte) error {
	var doc api.Topology
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	return s.cfg.Engine.SetTopology(doc)
}

// query reads the common long-poll and limit parameters.
type query struct {
	r   *http.Request
	err error
}

func (q *query) int(name string, def int64) int64 {
	v := q.r.URL.Query().Get(name)
	if v == "" || q.err != nil {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		q.err = fmt.Errorf("query parameter %s=%q: want a whole number", name, v)
	}
	return n
}

func (q *query) float(name string, def float64) float64 {
	v := q.r.URL.Query().Get(name)
	if v == "" || q.err != nil {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		q.err = fmt.Errorf("query parameter %s=%q: want a number", name, v)
	}
	return f
}

// maxWait bounds a long poll.
const maxWait = 600 * time.Second

// timeout reads a long poll's timeout, in seconds, capped at maxWait (a
// huge or infinite one is the cap, not an overflow that returns at once).
func (q *query) timeout() time.Duration {
	t := q.float("timeout", 0)
	if t < 0 {
		q.err = fmt.Errorf("query parameter timeout=%v: want seconds, 0 or more", t)
		return 0
	}
	if t >= maxWait.Seconds() {
		return maxWait
	}
	return time.Duration(t * float64(time.Second))
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	after := q.int("eventID", -1)
	max := q.int("maxEvents", 100)
	timeout := q.timeout()
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	extendWrite(w, timeout)
	// Without a thresholdID, sFlow-RT's clients get the events of the
	// thresholds they defined: a built-in one (pathchange, collision) would
	// be a threshold they never heard of. -builtin-events, or fabrictrace's
	// own builtin=true (the dashboard's), adds them.
	v := r.URL.Query()
	id, n := v.Get("thresholdID"), int(min(max, 10_000))
	if id == "" && !s.cfg.BuiltinEvents && v.Get("builtin") != "true" {
		s.reply(w, s.cfg.Engine.UserEvents(r.Context(), after, n, timeout))
		return
	}
	s.reply(w, s.cfg.Engine.Events(r.Context(), after, id, n, timeout))
}

// flowLog serves /flows/json: the records of definitions with log:true,
// ids above flowID, newest first, long-polled as events are.
func (s *Server) flowLog(w http.ResponseWriter, r *http.Request) {
	q := &query{r: r}
	after := q.int("flowID", -1)
	max := q.int("maxFlows", 100)
	timeout := q.timeout()
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	extendWrite(w, timeout)
	s.reply(w, s.cfg.Engine.FlowLog(r.Context(), after, r.URL.Query().Get("name"), int(min(max, 10_000)), timeout))
}

// extendWrite lets a long poll's answer go out after its timeout, past the
// server's write timeout.
func extendWrite(w http.ResponseWriter, timeout time.Duration) {
	if timeout > 0 {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + 30*time.Second))
	}
}

// elephants serves /elephants/json: one record per elephant, newest first
// (active=true: only the live ones); with updateID (or eventID) or timeout,
// the update log after that id, long-polled as events are.
func (s *Server) elephants(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if v.Get("active") == "true" {
		s.reply(w, s.cfg.Engine.ActiveElephants())
		return
	}
	q := &query{r: r}
	max := q.int("maxElephants", 100)
	if !v.Has("updateID") && !v.Has("eventID") && !v.Has("timeout") {
		if q.err != nil {
			s.fail(w, http.StatusBadRequest, q.err)
			return
		}
		s.reply(w, s.cfg.Engine.ElephantRecords(int(min(max, 10_000))))
		return
	}
	name := "updateID"
	if !v.Has(name) && v.Has("eventID") {
		name = "eventID"
	}
	after := q.int(name, -1)
	timeout := q.timeout()
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	extendWrite(w, timeout)
	s.reply(w, s.cfg.Engine.Elephants(r.Context(), after, int(min(max, 10_000)), timeout))
}

// agentFilter reads an {agent} selector: ALL, TOPOLOGY, EDGE or CORE,
// one address or node name, or a ;-separated list.
func (s *Server) agentFilter(sel string) (func(netip.Addr) bool, error) {
	switch sel {
	case "ALL":
		return func(netip.Addr) bool { return true }, nil
	case "TOPOLOGY", "EDGE", "CORE":
		in := s.topologyAgents()
		if sel != "TOPOLOGY" {
			edge, core := s.cfg.Engine.EdgeAgents(in)
			if in = edge; sel == "CORE" {
				in = core
			}
		}
		return func(a netip.Addr) bool { return in[a] }, nil
	}
	in := map[netip.Addr]bool{}
	for part := range strings.SplitSeq(sel, ";") {
		a, err := netip.ParseAddr(part)
		if err != nil {
			// A node's name, as the topology or its host_descr gives it.
			var ok bool
			if a, ok = s.cfg.Engine.NodeAddress(part); !ok {
				return nil, fmt.Errorf("agent %q: want ALL, TOPOLOGY, EDGE, CORE, an address, a node's name or a ;-separated list of them", part)
			}
		}
		in[a] = true
	}
	return func(a netip.Addr) bool { return in[a] }, nil
}

// topologyAgents are the agents of the topology's nodes, whether the
// document names their agents or only links them (their names then
// resolve as /nodes/json does).
func (s *Server) topologyAgents() map[netip.Addr]bool {
	topo := s.cfg.Engine.Topology()
	named := map[string]bool{}
	for name := range topo.Nodes {
		named[name] = true
	}
	for _, l := range topo.Links {
		named[l.Node1], named[l.Node2] = true, true
	}
	in := map[netip.Addr]bool{}
	for _, n := range s.cfg.Engine.Nodes() {
		if named[n.Name] && n.Agent.IsValid() {
			in[n.Agent] = true
		}
	}
	return in
}

func (s *Server) activeFlows(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	agents, err := s.agentFilter(vars["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	q := &query{r: r}
	maxFlows := q.int("maxFlows", 100)
	minValue := q.float("minValue", 0)
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	out, err := s.cfg.Engine.ActiveFlows(vars["name"], agents, int(min(maxFlows, 100_000)), minValue, r.URL.Query().Get("aggMode"))
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, out)
}

// flowLocations is /flowlocations/{agent}/{name}/json?key=K: the data
// sources where the flow has key K now, largest first.
func (s *Server) flowLocations(w http.ResponseWriter, r *http.Request) {
	if out, ok := s.locations(w, r, mux.Vars(r)["name"]); ok {
		s.reply(w, out)
	}
}

// flowValue is /flowvalue/{agent}/{ds}.{name}/json?key=K: the flow's value
// for key K at one data source, 0 when it has none there (as sFlow-RT's
// flowValue() answers).
func (s *Server) flowValue(w http.ResponseWriter, r *http.Request) {
	metric := mux.Vars(r)["metric"]
	ref, err := counters.ParseRef(metric)
	if err != nil || ref.DS == "" {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("metric %q: want DATASOURCE.FLOW, e.g. 3.tcp or 2.1.tcp", metric))
		return
	}
	locs, ok := s.locations(w, r, ref.Name)
	if !ok {
		return
	}
	v := 0.0
	for _, l := range locs {
		if l.DataSource == ref.DS {
			v += l.Value
		}
	}
	s.reply(w, v)
}

// locations reads the {agent} selector and ?key= and asks where the flow
// has the key; on a bad request it has answered the client already.
func (s *Server) locations(w http.ResponseWriter, r *http.Request, name string) ([]api.FlowLocation, bool) {
	agents, err := s.agentFilter(mux.Vars(r)["agent"])
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return nil, false
	}
	key, ok := flowKeyParam(r)
	if !ok {
		s.fail(w, http.StatusBadRequest, errors.New("key: missing; give the flow's key, e.g. ?key=10.0.0.1,10.0.0.2"))
		return nil, false
	}
	out, err := s.cfg.Engine.FlowLocations(name, agents, key)
	if err != nil {
		s.fail(w, statusOf(err), err)
		return nil, false
	}
	return out, true
}

// flowKeyParam reads ?key=: repeated, its values are the key's fields.
func flowKeyParam(r *http.Request) (string, bool) {
	ks := r.URL.Query()["key"]
	if len(ks) == 0 || len(ks) == 1 && ks[0] == "" {
		return "", false
	}
	return strings.Join(ks, ","), true
}

func (s *Server) flowKeys(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.FlowKeys())
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query()["agent"]
	out := map[string]Agent{}
	for _, a := range s.cfg.Agents() {
		if len(want) > 0 && !contains(want, a.Agent) {
			continue
		}
		out[a.Agent] = a
	}
	s.reply(w, out)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (s *Server) analyzer(w http.ResponseWriter, _ *http.Request) { s.reply(w, s.analyzerStats()) }

// analyzerStats are the figures /analyzer/json serves.
func (s *Server) analyzerStats() map[string]any {
	var datagrams, bytes uint64
	agents := s.cfg.Agents()
	for _, a := range agents {
		datagrams += a.DatagramsReceived
		bytes += a.BytesReceived
	}
	st := s.cfg.Engine.Stats()
	out := map[string]any{
		"version": Version, "sFlowAgents": len(agents), "sFlowDatagramsReceived": datagrams,
		"sFlowBytesReceived": bytes, "flowSamples": st.Samples, "flows": st.Flows,
		"flowsEvicted": st.FlowsEvicted, "sourcesEvicted": st.SourcesEvicted,
		"stringsRefused": st.StringsRefused, "stringsReleased": st.StringsReleased, "events": st.Events,
		"pathsTracked": st.PathsTracked, "pathsEvicted": st.PathsEvicted, "batchesDropped": st.BatchesDropped,
	}
	ex := s.ExportStats()
	out["exportFlows"], out["exportFlowsCreated"], out["exportFlowsReplaced"] = ex.Flows, ex.Created, ex.Replaced
	if s.cfg.Ingest != nil {
		for k, v := range s.cfg.Ingest() {
			out[k] = v
		}
	}
	return out
}
