// Command fabricsim simulates a leaf/spine container fabric against a
// fabrictrace collector: every switch sends sFlow to -sflow, every leaf
// announces its containers over BGP to -bgp, and -truth writes what really
// happened. It sends to nothing but those two addresses.
//
// It runs in real time until interrupted, or for -duration of simulated time;
// with -fast it steps as fast as it can. SIGUSR1 starts an elephant now;
// SIGUSR2 rehashes every leaf's ECMP, as a reboot would, so flows move.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fabrictrace/fabrictrace/sim"
)

type options struct {
	sflow, bgp   string
	bgpASN       uint
	cfg          sim.Config
	elephants    elephantList
	duration     time.Duration
	fast         bool
	truth        string
	truthListen  string
	progress     time.Duration
	logLevel     string
	elephantMbps float64
	mixMbps      float64
}

// elephantList is the repeatable -elephant flag: SRC,DST,MBPS,START,DURATION.
type elephantList []sim.Elephant

func (l *elephantList) String() string { return "" }

func (l *elephantList) Set(v string) error {
	f := strings.Split(v, ",")
	if len(f) != 5 {
		return fmt.Errorf("want SRC,DST,MBPS,START,DURATION, got %q", v)
	}
	var e sim.Elephant
	var err error
	if e.Src, err = netip.ParseAddr(f[0]); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if e.Dst, err = netip.ParseAddr(f[1]); err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	mbps, err := strconv.ParseFloat(f[2], 64)
	if err != nil || mbps <= 0 {
		return fmt.Errorf("rate %q: want Mbit/s above 0", f[2])
	}
	e.Rate = mbps * 1e6
	if e.Start, err = time.ParseDuration(f[3]); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if e.Duration, err = time.ParseDuration(f[4]); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*l = append(*l, e)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	c := &o.cfg
	fs := flag.NewFlagSet("fabricsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sflow, "sflow", "127.0.0.1:6343", "the collector's sFlow `HOST:PORT`; several, comma-separated (ingest nodes), share the agents, each agent sending to one")
	fs.StringVar(&o.bgp, "bgp", "127.0.0.1:179", "the collector's BGP `HOST:PORT`; empty for no BGP")
	fs.UintVar(&o.bgpASN, "bgp-asn", 65000, "the collector's AS")
	fs.IntVar(&c.Topology.Spines, "spines", 2, "spine switches")
	fs.IntVar(&c.Topology.Leaves, "leaves", 4, "leaf switches")
	fs.IntVar(&c.Topology.ServersPerLeaf, "servers-per-leaf", 1, "servers in each leaf's rack")
	fs.IntVar(&c.Topology.ContainersPerServer, "containers", 3, "containers per server")
	fs.Func("sampling", "switches sample 1 in `N` packets (default 1000)", func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("want a whole number above 0")
		}
		c.SamplingRate = uint32(n)
		return nil
	})
	fs.BoolVar(&c.ServerAgents, "server-agents", true, "servers export sFlow too, as hsflowd would")
	fs.DurationVar(&c.CounterInterval, "counter-interval", 10*time.Second, "counter polling interval")
	fs.IntVar(&c.Mice, "mice", 100, "mean concurrent background flows (0 for none)")
	fs.BoolVar(&c.IPv6, "ipv6", true, "a share of container traffic uses IPv6")
	fs.Var(&o.elephants, "elephant", "schedule an elephant: `SRC,DST,MBPS,START,DURATION` (repeatable)")
	fs.DurationVar(&c.ElephantEvery, "elephant-every", 20*time.Second, "start a random elephant this often (0 for never)")
	fs.Float64Var(&o.elephantMbps, "elephant-mbps", 400, "rate of random elephants, Mbit/s")
	fs.DurationVar(&c.ElephantDuration, "elephant-duration", 30*time.Second, "duration of random elephants")
	fs.BoolVar(&c.Collision, "collision", false, "hash a second elephant onto the first one's uplink")
	fs.DurationVar(&c.MixEvery, "elephant-mix", 0, "start a flow this often whose rate straddles -mix-threshold-mbps: log-uniform from 0.25 to 4 times it (0 for never)")
	fs.Float64Var(&o.mixMbps, "mix-threshold-mbps", 100, "the threshold the -elephant-mix flows straddle, Mbit/s")
	fs.DurationVar(&c.ChurnEvery, "churn", time.Minute, "destroy a container and create another this often (0 for never)")
	fs.DurationVar(&c.ExportDelay, "export-delay", time.Second, "agents hold a datagram that is not full this long, as Open vSwitch does (0 sends every tick)")
	fs.BoolVar(&c.LinkFailures, "link-failures", false, "take random leaf-spine links down and up; routing moves their flows to the other spines and back")
	fs.DurationVar(&c.LinkFailEvery, "link-fail-every", 30*time.Second, "with -link-failures, a link fails every 1 to 2 times this")
	fs.DurationVar(&c.LinkDownFor, "link-down-for", 10*time.Second, "with -link-failures, a failed link stays down 1 to 3 times this")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed: one seed, one run")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this much simulated time (0 runs until interrupted)")
	fs.BoolVar(&o.fast, "fast", false, "step as fast as possible instead of in real time (needs -duration)")
	fs.StringVar(&o.truth, "truth", "", "write the ground truth as JSON to `FILE` on exit")
	fs.StringVar(&o.truthListen, "truth-listen", "", "serve the live ground truth over HTTP on this loopback `HOST:PORT` (GET /truth?elephants=1&active=1), and take links down and up (POST /link?leaf=leaf01&spine=spine01&up=false)")
	fs.DurationVar(&o.progress, "progress", 10*time.Second, "how often to log progress (0 disables)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: fabricsim [flags]\n\nSimulates a leaf/spine container fabric that sends sFlow and BGP to a collector.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Mice == 0 {
		c.Mice = -1
	}
	c.ElephantRate = o.elephantMbps * 1e6
	if o.mixMbps <= 0 {
		return o, fmt.Errorf("-mix-threshold-mbps %g: want above 0", o.mixMbps)
	}
	c.MixThreshold = o.mixMbps * 1e6
	c.Elephants = o.elephants
	if o.fast && o.duration <= 0 {
		return o, errors.New("-fast needs -duration")
	}
	if o.truthListen != "" {
		ap, err := netip.ParseAddrPort(o.truthListen)
		if err != nil || !ap.Addr().IsLoopback() {
			return o, fmt.Errorf("-truth-listen %q: want a loopback HOST:PORT such as 127.0.0.1:8009", o.truthListen)
		}
	}
	if c.ExportDelay < 0 || c.LinkFailEvery <= 0 || c.LinkDownFor <= 0 {
		return o, errors.New("-export-delay, -link-fail-every and -link-down-for: want a positive duration")
	}
	if o.bgpASN == 0 || o.bgpASN > 1<<32-1 {
		return o, fmt.Errorf("-bgp-asn %d: want 1 to 4294967295", o.bgpASN)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fabricsim:", err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "fabricsim: -log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, logger); err != nil {
		logger.Error("fabricsim stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, logger *slog.Logger) error {
	s, err := sim.New(o.cfg)
	if err != nil {
		return err
	}
	// Several collectors (ingest nodes): each agent sends to one of them,
	// always the same, as a real fabric's switches are configured.
	var conns []net.Conn
	for addr := range strings.SplitSeq(o.sflow, ",") {
		conn, err := net.Dial("udp", strings.TrimSpace(addr))
		if err != nil {
			return fmt.Errorf("-sflow %s: %w (want HOST:PORT, or several, comma-separated)", addr, err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	var sent, sendErrs atomic.Uint64
	send := func(b []byte) {
		conn := conns[0]
		if len(conns) > 1 {
			conn = conns[agentHash(b)%uint32(len(conns))]
		}
		// A collector that is not up yet refuses: count it and go on.
		if _, err := conn.Write(b); err != nil {
			sendErrs.Add(1)
			return
		}
		sent.Add(1)
	}
	f := s.Fabric()
	logger.Info("fabric up", "spines", len(f.Spines), "leaves", len(f.Leaves), "servers", len(f.Servers),
		"containers", len(s.Containers()), "sampling", s.SamplingRate(), "sflow_to", o.sflow, "seed", o.cfg.Seed)

	if o.bgp != "" {
		collector, err := netip.ParseAddrPort(o.bgp)
		if err != nil {
			return fmt.Errorf("-bgp %q: want IP:PORT: %w", o.bgp, err)
		}
		sp, err := sim.StartSpeakers(ctx, s, collector, uint32(o.bgpASN), logger)
		if err != nil {
			return err
		}
		defer sp.Stop()
		logger.Info("leaves peering", "bgp_to", collector, "from", f.Leaves[0].BGPSource.String()+"..",
			"collector_asn", o.bgpASN)
	}

	if o.truthListen != "" {
		stopTruth, err := serveTruth(o.truthListen, s)
		if err != nil {
			return err
		}
		defer stopTruth()
		logger.Info("serving the live truth", "url", "http://"+o.truthListen+"/truth")
	}
	go logLinks(ctx, s, logger)

	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(usr)
	go func() {
		for sig := range usr {
			if sig == syscall.SIGUSR1 {
				s.TriggerElephant()
				logger.Info("elephant requested (SIGUSR1)")
				continue
			}
			moved := 0
			for _, leaf := range f.Leaves {
				n, _ := s.Rehash(leaf.Name)
				moved += n
			}
			logger.Info("every leaf rehashed (SIGUSR2)", "flows_moved", moved)
		}
	}()

	progress := func() {
		elephants := 0
		for _, fl := range s.Truth().Flows {
			if fl.Active && fl.Elephant {
				elephants++
			}
		}
		logger.Info("progress", "sim_time", s.Now().Round(time.Second), "datagrams", sent.Load(),
			"refused", sendErrs.Load(), "elephants_active", elephants, "containers", len(s.Containers()))
	}
	if o.fast {
		s.RunFor(o.duration, send)
	} else {
		runCtx := ctx
		if o.duration > 0 {
			var cancel context.CancelFunc
			runCtx, cancel = context.WithTimeout(ctx, o.duration)
			defer cancel()
		}
		done := make(chan struct{})
		go func() { s.Run(runCtx, send); close(done) }()
		var tick <-chan time.Time
		if o.progress > 0 {
			t := time.NewTicker(o.progress)
			defer t.Stop()
			tick = t.C
		}
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-tick:
				progress()
			}
		}
	}
	progress()
	if o.truth != "" {
		if err := writeTruth(o.truth, s.Truth()); err != nil {
			return err
		}
		logger.Info("ground truth written", "file", o.truth)
	}
	return nil
}

func writeTruth(name string, t sim.Truth) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("-truth: %w", err)
	}
	if err := t.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("-truth %s: %w", name, err)
	}
	return f.Close()
}

// serveTruth serves the live ground truth on a loopback address, for
// scoring the collector while the simulation runs (make quality).
func serveTruth(addr string, s *sim.Sim) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-truth-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /truth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		t := s.TruthOf(sim.TruthFilter{Elephants: q.Get("elephants") != "", Active: q.Get("active") != ""})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(t)
	})
	// A test's hand on the fabric: take a leaf-spine link down or up now.
	mux.HandleFunc("POST /link", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		up, err := strconv.ParseBool(q.Get("up"))
		if err != nil {
			http.Error(w, "up: want true or false", http.StatusBadRequest)
			return
		}
		moved, err := s.SetLink(q.Get("leaf"), q.Get("spine"), up)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]int{"moved": moved})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// logLinks logs each link failure and repair as it happens.
func logLinks(ctx context.Context, s *sim.Sim, logger *slog.Logger) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	seen := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		evs := s.LinkEvents()
		for _, ev := range evs[min(seen, len(evs)):] {
			state := "down"
			if ev.Up {
				state = "up"
			}
			logger.Info("link "+state, "leaf", ev.Leaf, "spine", ev.Spine, "flows_moved", ev.Moved, "sim_time", ev.At.Round(100*time.Millisecond))
		}
		seen = len(evs)
	}
}

// agentHash is FNV-1a of a datagram's agent address (after the version,
// its type: 1 for IPv4's 4 bytes, 2 for IPv6's 16), which picks its
// collector.
func agentHash(dg []byte) uint32 {
	end := 12
	if len(dg) >= 8 && dg[7] == 2 {
		end = 24
	}
	h := uint32(2166136261)
	for _, c := range dg[min(8, len(dg)):min(end, len(dg))] {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}
