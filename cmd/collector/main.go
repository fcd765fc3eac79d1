// Command collector is the fabrictrace collector: it receives sFlow v5 from
// the fabric's switches and hosts, accounts for every agent, turns the
// samples into flows, thresholds, events and elephants, and serves them over
// an sFlow-RT compatible REST API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // only reachable with -pprof
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/geoip"
	"github.com/fabrictrace/fabrictrace/ingest"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/store"
	"github.com/fabrictrace/fabrictrace/web"
)

type options struct {
	geoip         string
	sflow         string
	sockets       int
	shards        int
	rcvbuf        int
	maxAgents     int
	dump          bool
	statsInterval time.Duration
	logLevel      string
	http          string
	httpMaxConns  int
	maxExport     int
	readOnly      bool
	maxFlows      int
	define        string
	db            string
	token         string
	allow         string
	config        string
	printConfig   bool
	configDefs    map[string]any // the -config file's [flows], [thresholds] and [groups]
	builtinEvents bool
	fs            *flag.FlagSet
	retain        time.Duration
	retainRows    int
	bgp           string
	bgpASN        uint
	bgpRouterID   string
	bgpAccept     string
	bgpPeerASN    uint
	bgpAll        bool
	bgpNeighbors  string
	pprof         bool
	nats          string        // JetStream URL for scale-out; empty: one process
	role          string        // ingest or engine, with -nats
	natsParts     int           // partitions of the samples stream
	node          string        // this engine node's name in the leases
	natsRetention time.Duration // how long the stream keeps samples
	natsReplay    time.Duration // how far back an engine node reads a partition it gains
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sflow, "sflow", ":6343", "UDP `address` to receive sFlow on (IPv4 or IPv6)")
	fs.IntVar(&o.sockets, "sflow-sockets", 1, "SO_REUSEPORT sockets (and decoding workers) for sFlow")
	fs.IntVar(&o.shards, "engine-shards", min(runtime.GOMAXPROCS(0), flows.MaxShards), "engine shards, each with its own writer goroutine, the flows split by address pair (1 to 64; default: one per core); with -sflow-sockets as many, workers take shards in parallel")
	fs.IntVar(&o.rcvbuf, "sflow-rcvbuf", 32<<20, "socket receive buffer to request, in `bytes` (capped by net.core.rmem_max)")
	fs.IntVar(&o.maxAgents, "max-agents", 10000, "sFlow agents to track; beyond it the least recently seen are forgotten")
	fs.StringVar(&o.http, "http", ":8008", "TCP `address` for the REST API (empty disables it)")
	fs.IntVar(&o.httpMaxConns, "http-max-conns", 1000, "REST connections open at once; past it a client gets 503 at once, counted")
	fs.IntVar(&o.maxExport, "max-export-flows", 16, "flows the Prometheus app's export may define for its scrapes (a GET defines one per distinct key and filter); past it the least recently scraped is replaced, counted")
	fs.BoolVar(&o.readOnly, "readonly", false, "refuse REST writes (flows, thresholds, topology) with 403")
	fs.IntVar(&o.maxFlows, "max-flows", 100000, "flow entries kept per flow definition; beyond it the smallest are evicted")
	fs.StringVar(&o.bgp, "bgp", ":179", "TCP `address` for passive BGP (empty disables it); ports below 1024 need root")
	fs.UintVar(&o.bgpASN, "bgp-asn", 65000, "the collector's AS")
	fs.StringVar(&o.bgpRouterID, "bgp-router-id", "", "BGP router id (default: the -bgp address, or 10.255.255.254)")
	fs.StringVar(&o.bgpAccept, "bgp-accept", "", "`CIDR[,CIDR...]` from which any peer may connect; BGP starts only with some")
	fs.UintVar(&o.bgpPeerASN, "bgp-peer-asn", 0, "the only AS accepted from peers (0 accepts any)")
	fs.StringVar(&o.bgpNeighbors, "bgp-neighbors", "", "peers configured one by one, `ADDR=ASN[,ADDR=ASN...]`")
	fs.StringVar(&o.geoip, "geoip", defaultGeoIP, "legacy GeoIP country database `files` (IPv4 and IPv6, comma-separated) for the country: key; the default is Debian's geoip-database, skipped when not installed; empty disables country:")
	fs.BoolVar(&o.bgpAll, "bgp-all-prefixes", false, "keep every prefix, not only host routes (/32, /128)")
	fs.StringVar(&o.db, "db", "fabrictrace.db", "SQLite `file` keeping definitions and history (\":memory:\" for none on disk; empty disables)")
	fs.DurationVar(&o.retain, "retain", 30*24*time.Hour, "keep history this long")
	fs.IntVar(&o.retainRows, "retain-rows", 1_000_000, "keep at most this many events, and elephants")
	fs.StringVar(&o.define, "define", "", "load flows, thresholds, groups and topology from this JSON `file` at start")
	fs.StringVar(&o.token, "token", os.Getenv("FABRICTRACE_TOKEN"), "REST writes need `Authorization: Bearer TOKEN` (default $FABRICTRACE_TOKEN)")
	fs.StringVar(&o.allow, "sflow-allow", "", "take sFlow only from these sources, `CIDR[,CIDR...]`; others are dropped and counted")
	fs.StringVar(&o.config, "config", "", "TOML `file` of settings named as these flags, plus [flows], [thresholds], [groups]; flags win")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective settings as TOML and exit")
	fs.BoolVar(&o.builtinEvents, "builtin-events", false, "put path changes and collisions in /events/json without a thresholdID too (sFlow-RT clients expect only their own thresholds' events there)")
	fs.BoolVar(&o.pprof, "pprof", false, "serve /debug/pprof/ on the REST address, for profiling")
	fs.StringVar(&o.nats, "nats", "", "NATS `URL` with JetStream, for scale-out over several processes (see the README's Scale-out); empty: one process")
	fs.StringVar(&o.role, "role", "", "with -nats: ingest (receive sFlow, publish samples by address pair), engine (own partitions, keep their flows), api (serve REST from every engine) or all (the three in one process, to test the wiring)")
	fs.IntVar(&o.natsParts, "nats-partitions", 64, "partitions of the samples stream, fixed when the stream is made (1 to 256)")
	fs.StringVar(&o.node, "node", hostname(), "this engine node's `name` among the partitions' owners")
	fs.DurationVar(&o.natsRetention, "nats-retention", 10*time.Minute, "how long the samples stream keeps samples")
	fs.DurationVar(&o.natsReplay, "nats-replay", 10*time.Second, "how far back an engine node reads a partition it gains (from a node that died or left), so that its flows, elephants and paths carry on; 0: from then on (at most -nats-retention)")
	fs.BoolVar(&o.dump, "dump", false, "print every decoded sample to stdout as a JSON line (like sflowtool)")
	fs.DurationVar(&o.statsInterval, "stats-interval", time.Minute, "how often to log ingest totals (0 disables)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: collector [flags]\n\nReceives sFlow v5, keeps sFlow-RT style flows, thresholds and events, and serves them over REST.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.fs = fs
	if o.config != "" {
		defs, err := applyConfigFile(fs, o.config)
		if err != nil {
			return o, err
		}
		o.configDefs = defs
	}
	if o.bgpASN == 0 || o.bgpASN > 1<<32-1 || o.bgpPeerASN > 1<<32-1 {
		return o, fmt.Errorf("-bgp-asn %d, -bgp-peer-asn %d: want 1 to 4294967295 (0 for any peer)", o.bgpASN, o.bgpPeerASN)
	}
	if o.shards < 1 || o.shards > flows.MaxShards {
		return o, fmt.Errorf("-engine-shards %d: want 1 to %d", o.shards, flows.MaxShards)
	}
	if o.sockets < 1 || o.sockets > 64 {
		return o, fmt.Errorf("-sflow-sockets %d: want 1 to 64", o.sockets)
	}
	switch {
	case o.nats == "" && o.role != "":
		return o, fmt.Errorf("-role %s needs -nats URL: the roles talk through NATS JetStream", o.role)
	case o.nats != "" && o.role != "ingest" && o.role != "engine" && o.role != "api" && o.role != "all":
		return o, fmt.Errorf("-role %q: want ingest, engine, api or all with -nats (see the README's Scale-out)", o.role)
	case o.natsReplay < 0:
		return o, fmt.Errorf("-nats-replay %s: want 0 or more", o.natsReplay)
	case o.natsParts < 1 || o.natsParts > 256:
		return o, fmt.Errorf("-nats-partitions %d: want 1 to 256", o.natsParts)
	}
	return o, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "engine"
	}
	return strings.NewReplacer(".", "-", " ", "-", "*", "-", ">", "-").Replace(h)
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(2)
	}
	if o.printConfig {
		printConfig(os.Stdout, o.fs, o.configDefs)
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "collector: -log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, logger, os.Stdout); err != nil {
		logger.Error("collector stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, logger *slog.Logger, stdout io.Writer) error {
	// The RIB tells the eng of withdrawn containers; the eng is made
	// second, so the hook reaches it through this variable.
	var eng *engine.Engine
	var routes *rib.RIB // an engine node's routes come from the api node's, an ingest node needs none
	if o.role == "" || o.has("api") {
		var err error
		if routes, err = startBGP(ctx, o, logger, func(p netip.Prefix) {
			if eng != nil && o.role == "" { // an engine node hears of it through the routes bucket
				eng.Withdrawn(p)
			}
		}); err != nil {
			return err
		}
	}
	var routeTable *cluster.RouteTable
	if o.has("engine") {
		routeTable = cluster.NewRouteTable()
	}
	// An engine node hears every datagram's header apart from its samples.
	// Counter thresholds are the api node's: each engine node sees every counter.
	ecfg := flows.Config{MaxFlows: o.maxFlows, HeardApart: o.has("engine"), CountersElsewhere: o.has("engine")}
	if o.has("engine") { // it reads partitions back from -nats-replay ago
		ecfg.Past = min(o.natsReplay, o.natsRetention)
	}
	countries, err := openGeoIP(o.geoip, logger)
	if err != nil {
		return err
	}
	if countries != nil {
		ecfg.Countries = countries
	}
	if routes != nil {
		defer routes.Close()
		ecfg.Routes = ribRoutes{routes}
	}
	if routeTable != nil {
		ecfg.Routes = routeTable
	}
	if eng, err = engine.New(ecfg, o.shards); err != nil {
		return fmt.Errorf("-engine-shards: %w", err)
	}
	defer eng.Close()
	eng.Gather = o.has("engine") // an engine node is handed a partition's sample or two at a time
	logger.Debug("engine", "shards", eng.Shards())
	switch {
	case o.define != "":
		if err := loadDefinitions(o.define, eng); err != nil {
			return err
		}
		logger.Info("definitions loaded", "file", o.define, "flows", len(eng.FlowDefinitions()),
			"thresholds", len(eng.ThresholdDefinitions()))
		if len(o.configDefs) > 0 {
			logger.Warn("-define wins over the -config file's definitions, which are not loaded", "config", o.config)
		}
	case len(o.configDefs) > 0:
		if err := applyDefinitions("-config "+o.config, configDefinitions(o.configDefs), eng); err != nil {
			return err
		}
		logger.Info("definitions loaded", "file", o.config, "flows", len(eng.FlowDefinitions()),
			"thresholds", len(eng.ThresholdDefinitions()))
	}
	// What users PUT outlives -define: the store's definitions apply last.
	var st *store.Store
	if o.db != "" {
		if err := checkDB(o.db); err != nil {
			return err
		}
		if st, err = store.Open(store.Config{Path: o.db, RetainAge: o.retain, RetainRows: o.retainRows}); err != nil {
			return err
		}
		defer st.Close()
		if err := restore(st, eng, logger); err != nil {
			return err
		}
	}
	allow, err := prefixes(o.allow)
	if err != nil {
		return fmt.Errorf("-sflow-allow: %w", err)
	}
	var l *ingest.Listener // none on an engine or api node: its samples come over NATS
	if (o.role == "" || o.has("ingest")) && o.sflow != "" {
		l, err = ingest.Listen(ctx, ingest.Config{Addr: o.sflow, Sockets: o.sockets, ReadBuffer: o.rcvbuf,
			MaxAgents: o.maxAgents, Allow: allow, Logger: logger})
		if err != nil {
			if errors.Is(err, syscall.EACCES) {
				return fmt.Errorf("%w (ports below 1024 need root or CAP_NET_BIND_SERVICE; try -sflow :16343)", err)
			}
			return err
		}
	}
	switch {
	case (o.role == "engine" || o.role == "ingest") && (o.bgpAccept != "" || o.bgpNeighbors != ""):
		logger.Warn("BGP is the api node's: -bgp-accept and -bgp-neighbors are ignored on an " + o.role + " node")
	case routes == nil && o.bgp != "" && (o.role == "" || o.has("api")):
		logger.Info("BGP off: no -bgp-accept ranges or -bgp-neighbors to take peers from")
	}
	var sink decode.Visitor = eng
	var webEngine web.Engine = eng        // an api node's serves every engine's
	var saver web.Saver                   // where REST writes are kept (an api node's go to the cluster's bucket too)
	var fan *cluster.Fanout               // an api node's questions to the engines
	var results *cluster.ResultsPublisher // an engine node's events, elephants and logged flows
	if st != nil {
		saver = st
	}
	g, ctx := errgroup.WithContext(ctx)
	if o.nats != "" {
		js, closeNATS, err := joinCluster(ctx, o, logger)
		if err != nil {
			return err
		}
		defer closeNATS()
		if o.has("ingest") {
			sink = startIngest(ctx, g, js, o)
		}
		if o.has("engine") {
			if results, err = startEngineNode(ctx, g, js, o, eng, routeTable, logger); err != nil {
				return err
			}
		}
		if o.has("api") {
			local := eng // the api node's own engine: definitions and counters
			if o.role == "all" {
				if local, err = engine.New(flows.Config{MaxFlows: o.maxFlows, Countries: ecfg.Countries}, 1); err != nil {
					return err
				}
				defer local.Close()
				g.Go(func() error { return local.Run(ctx, time.Second) })
			}
			if webEngine, fan, err = startAPINode(ctx, g, js, o, local, routes, logger); err != nil {
				return err
			}
		}
	}
	if o.dump {
		sink = tee{sink, &dumpSink{w: stdout}}
	}
	if l != nil {
		g.Go(func() error { return l.Serve(ctx, sink) })
	}
	g.Go(func() error { return eng.Run(ctx, time.Second) })
	g.Go(func() error { return logElephants(ctx, eng, logger) })
	g.Go(func() error { return logPathChanges(ctx, eng, logger) })
	if st != nil {
		g.Go(func() error { return record(ctx, eng, st) })
	}
	if o.http != "" {
		ln, err := net.Listen("tcp", o.http)
		if err != nil {
			if errors.Is(err, syscall.EACCES) {
				err = fmt.Errorf("%w (ports below 1024 need root; try -http :8008)", err)
			}
			return fmt.Errorf("-http: %w", err)
		}
		limited := newLimitListener(ln, o.httpMaxConns)
		load := newLoadGauge()
		ln = limited
		logger.Info("serving REST API", "http", ln.Addr().String(), "readonly", o.readOnly, "max_conns", o.httpMaxConns)
		if o.token == "" && !o.readOnly {
			logger.Warn("REST writes are open to anyone who can reach -http; set -token (or $FABRICTRACE_TOKEN), or -readonly")
		}
		wcfg := web.Config{Engine: webEngine, Saver: saver, Agents: agentsJSON(l), RIB: routes, ReadOnly: o.readOnly, Token: o.token,
			BuiltinEvents:  o.builtinEvents,
			MaxExportFlows: o.maxExport,
			Ingest: func() map[string]any {
				var is ingest.Stats
				if l != nil {
					is = l.Stats()
				}
				out := map[string]any{"kernelDrops": is.Kernel.SocketDrops, "rcvbufErrors": is.Kernel.RcvbufErrors,
					"droppedBehind": is.DroppedBehind, "undecodable": is.Undecodable,
					"sFlowDatagramsDenied": is.Denied, "sFlowAgentsEvicted": is.AgentsEvicted,
					"httpConnectionsRefused": limited.refused.Load(), "httpConnectionsCurrent": limited.open.Load(),
					"httpConnectionsTotal": limited.accepted.Load()}
				for k, v := range load.figures() {
					out[k] = v
				}
				if fan != nil { // answers that lacked partitions: engines down or slow
					out["clusterPartialAnswers"], out["clusterPartitionsMissing"] = fan.Partial.Load(), fan.Missing()
				}
				if results != nil { // lost: more at once than one read of a log holds; failed: NATS refused
					out["clusterResultsPublished"], out["clusterResultsLost"], out["clusterResultsFailed"] =
						results.Published.Load(), results.Lost.Load(), results.Failed.Load()
				}
				return out
			},
			Logger: logger}
		if st != nil {
			wcfg.History = history{st}
		}
		reg := prometheus.NewRegistry()
		var ws *web.Server // made below, once /metrics is in its config; served after
		reg.MustRegister(selfMetrics{ingest: l, engine: eng, rib: routes, store: st, http: limited,
			export: func() web.ExportStats { return ws.ExportStats() }},
			collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if o.pprof {
			wcfg.Debug = http.DefaultServeMux // net/http/pprof registers there
		}
		wcfg.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)})
		// Requests live in ctx: a stop ends the long polls at once, so
		// waiters are released and Shutdown does not wait out their timeouts.
		// Every connection is timed: a request has 30 s to arrive, an answer
		// 60 s to go out (a long poll extends its own, up to its timeout),
		// an idle keep-alive 2 minutes; headers are capped at 64 KiB.
		ws = web.New(wcfg)
		srv := &http.Server{Handler: ws, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			BaseContext: func(net.Listener) context.Context { return ctx }}
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			// Long polls end with the context of their request, so this is quick.
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shut)
		})
	}
	if o.statsInterval > 0 {
		g.Go(func() error {
			t := time.NewTicker(o.statsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					if l != nil {
						logStats(logger, "ingest totals", l.Stats(), routes)
					}
				}
			}
		})
	}
	err = g.Wait()
	if l != nil {
		logStats(logger, "stopped; ingest totals", l.Stats(), routes)
	}
	return err
}

func logStats(logger *slog.Logger, msg string, s ingest.Stats, routes *rib.RIB) {
	var faults []string
	for i, n := range s.Faults {
		if n > 0 {
			faults = append(faults, fmt.Sprintf("%s=%d", ingest.ErrorKinds[i], n))
		}
	}
	attrs := []any{"agents", s.Agents, "datagrams", s.Datagrams, "samples", s.Samples, "denied", s.Denied,
		"dropped_behind", s.DroppedBehind, "kernel_drops", s.Kernel.SocketDrops,
		"undecodable", s.Undecodable, "faults", strings.Join(faults, ",")}
	if s.KernelErr != nil {
		attrs = append(attrs, "kernel_stats_err", s.KernelErr)
	}
	if routes != nil {
		up := 0
		for _, n := range routes.Neighbors() {
			if n.State == "established" {
				up++
			}
		}
		attrs = append(attrs, "bgp_peers_up", up, "bgp_prefixes", routes.Len())
	}
	logger.Info(msg, attrs...)
}

// prefixes reads a comma-separated CIDR list; "" is none.
func prefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(list, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// startBGP starts the passive BGP peer when there is someone to accept.
func startBGP(ctx context.Context, o options, logger *slog.Logger, gone func(netip.Prefix)) (*rib.RIB, error) {
	if o.bgp == "" {
		return nil, nil
	}
	if o.bgpAccept == "" && o.bgpNeighbors == "" {
		return nil, nil // run says so once sFlow is listening
	}
	cfg := rib.Config{Listen: o.bgp, ASN: uint32(o.bgpASN), PeerASN: uint32(o.bgpPeerASN),
		AllPrefixes: o.bgpAll, Gone: gone, Logger: logger}
	accept, err := prefixes(o.bgpAccept)
	if err != nil {
		return nil, fmt.Errorf("-bgp-accept: %w", err)
	}
	cfg.Accept = accept
	for part := range strings.SplitSeq(o.bgpNeighbors, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		addr, asn, ok := strings.Cut(part, "=")
		a, err := netip.ParseAddr(addr)
		n, nerr := strconv.ParseUint(asn, 10, 32)
		if !ok || err != nil || nerr != nil {
			return nil, fmt.Errorf("-bgp-neighbors %q: want ADDR=ASN", part)
		}
		cfg.Neighbors = append(cfg.Neighbors, rib.Neighbor{Address: a, ASN: uint32(n)})
	}
	if o.bgpRouterID != "" {
		id, err := netip.ParseAddr(o.bgpRouterID)
		if err != nil || !id.Is4() {
			return nil, fmt.Errorf("-bgp-router-id %q: want an IPv4 address", o.bgpRouterID)
		}
		cfg.RouterID = id
	}
	return rib.Start(ctx, cfg)
}

// tee hands every sample to two visitors.
type tee [2]decode.Visitor

func (t tee) Flow(d *decode.Datagram, s *decode.FlowSample) {
	t[0].Flow(d, s)
	t[1].Flow(d, s)
}

func (t tee) FlowBatch(d *decode.Datagram, samples []decode.FlowSample) {
	decode.DeliverFlows(t[0], d, samples)
	decode.DeliverFlows(t[1], d, samples)
}

func (t tee) Counter(d *decode.Datagram, s *decode.CounterSample) {
	t[0].Counter(d, s)
	t[1].Counter(d, s)
}

// agentsJSON turns ingest's accounting into /agents/json rows.
// agentKey names an agent (an address and a sub-agent id): the address for
// sub-agent 0, else address:id, as an address and port are written.
func agentKey(a netip.Addr, sub uint32) string {
	if sub == 0 {
		return a.String()
	}
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.FormatUint(uint64(sub), 10)
	}
	return a.String() + ":" + strconv.FormatUint(uint64(sub), 10)
}

func agentsJSON(l *ingest.Listener) func() []web.Agent {
	return func() []web.Agent {
		now := time.Now()
		var out []web.Agent
		if l == nil {
			return out
		}
		for _, a := range l.Agents() {
			out = append(out, web.Agent{Agent: agentKey(a.Agent, a.SubAgentID), SubAgentID: a.SubAgentID,
				DatagramsReceived: a.Datagrams, DatagramsLost: a.DatagramsLost,
				DatagramsOutOfOrder: a.DatagramsOutOfOrder, DatagramsDuplicates: a.DatagramsDuplicate,
				DatagramSource: []string{a.Source.Addr().String()},
				FlowSamples:    a.Flow.Samples, FlowLostSamples: a.Flow.Lost, FlowDuplicateSamples: a.Flow.Duplicate,
				FlowOutOfOrderSamples: a.Flow.OutOfOrder, FlowDrops: a.Flow.Drops, FlowDatasources: a.Flow.Sources,
				CounterSamples: a.Counter.Samples, CounterLostSamples: a.Counter.Lost,
				CounterDuplicateSamples: a.Counter.Duplicate, CounterOutOfOrderSamples: a.Counter.OutOfOrder,
				CounterDatasources: a.Counter.Sources,
				FirstSeen:          now.Sub(a.FirstSeen).Milliseconds(), LastSeen: now.Sub(a.LastSeen).Milliseconds(),
				Uptime: a.Uptime.Milliseconds(), Restarts: a.Restarts, Malformed: a.Malformed,
				SamplesFaulted: a.SamplesFaulted, UnknownRecords: a.UnknownRecords, LastError: a.LastError,
				BytesReceived: a.Bytes})
		}
		return out
	}
}

// defaultGeoIP is where Debian's geoip-database installs its files.
const defaultGeoIP = "/usr/share/GeoIP/GeoIP.dat,/usr/share/GeoIP/GeoIPv6.dat"

// openGeoIP opens the -geoip files: any of the default ones that are
// installed, and every one named otherwise (a missing one is an error).
// Nil, with no error, when there are none.
func openGeoIP(files string, logger *slog.Logger) (*geoip.DB, error) {
	var paths []string
	for _, f := range strings.Split(files, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil && files == defaultGeoIP {
			continue
		}
		paths = append(paths, f)
	}
	if len(paths) == 0 {
		logger.Info("no GeoIP database, so the country: key is refused; apt-get install geoip-database, or give -geoip")
		return nil, nil
	}
	db, err := geoip.Open(paths...)
	if err != nil {
		return nil, fmt.Errorf("-geoip: %w", err)
	}
	logger.Debug("geoip", "files", db.Files)
	return db, nil
}
