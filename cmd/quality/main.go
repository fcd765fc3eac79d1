// Command quality scores a running collector against the simulator's ground
// truth over minutes of a fabric that keeps failing: it starts bin/collector
// and bin/fabricsim (link failures, 1 s export delay, container churn, a
// rehash of every leaf now and then) on loopback, probes /paths/json for
// every live elephant every second, follows the pathchange events, and
// prints one summary line, last:
//
//	quality: paths exact P% of N probes, pathchange recall R% precision Q% (K changes), detection p50 A s p99 B s, ECMP share error max E pt, elephants recall X% precision Y%
//
// Before it, a line on detection against the threshold-straddling mix:
//
//	elephants at 1-in-N: recall R% of K flows >= 2x, precision P% against flows <= 0.5x, detected after the flow started (after its first sample arrived): 2x p50 A s p99 B s (a, b), 10x p50 C s p99 D s (c, d)
//
// It exits 1 when a figure misses its goal (-min-exact and the rest), 2 on
// bad usage, 3 when the run itself failed. make quality runs it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/sim"
)

type options struct {
	bin, define, logs string
	duration          time.Duration
	seed              uint64
	linkEvery         time.Duration
	rehashEvery       time.Duration
	sampling          int
	scorePaths        bool
	goals             goals
}

// goals are the figures a run must meet.
type goals struct {
	exact, recall, precision float64 // percent
	p99                      float64 // seconds
	shareErr                 float64 // points
	elRecall, elPrecision    float64 // percent
	lat2x, lat10x            float64 // seconds, p99, from the first sample's arrival
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quality", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin", "`DIR` holding collector and fabricsim")
	fs.StringVar(&o.define, "define", "scripts/demo.json", "definitions for the collector (`FILE`)")
	fs.StringVar(&o.logs, "logs", "", "keep the collector's and fabricsim's logs in `DIR` (default a temporary one, printed)")
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to run")
	fs.Uint64Var(&o.seed, "seed", 1, "the simulator's seed")
	fs.DurationVar(&o.linkEvery, "link-fail-every", 20*time.Second, "a link fails every 1 to 2 times this")
	fs.DurationVar(&o.rehashEvery, "rehash-every", 45*time.Second, "rehash every leaf's ECMP this often (0 never)")
	fs.IntVar(&o.sampling, "sampling", 1000, "switches and servers sample 1 in `N`")
	fs.BoolVar(&o.scorePaths, "score-paths", true, "hold the path figures to their goals (false: print them only, as at sparse sampling)")
	fs.Float64Var(&o.goals.lat2x, "max-2x-p99", 1, "goal: a 2x flow declared within this many seconds of its first sample, p99")
	fs.Float64Var(&o.goals.lat10x, "max-10x-p99", 0.3, "goal: a 10x flow declared within this many seconds of its first sample, p99")
	fs.Float64Var(&o.goals.exact, "min-exact", 99, "goal: percent of probes whose path is exact")
	fs.Float64Var(&o.goals.recall, "min-recall", 99, "goal: pathchange recall, percent")
	fs.Float64Var(&o.goals.precision, "min-precision", 99, "goal: pathchange precision, percent")
	fs.Float64Var(&o.goals.p99, "max-p99", 3, "goal: pathchange detection p99, seconds")
	fs.Float64Var(&o.goals.shareErr, "max-share-error", 5, "goal: ECMP share error, points")
	fs.Float64Var(&o.goals.elRecall, "min-elephant-recall", 99, "goal: elephant recall, percent")
	fs.Float64Var(&o.goals.elPrecision, "min-elephant-precision", 99, "goal: elephant precision, percent")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.sampling < 1 {
		return o, fmt.Errorf("-sampling %d: want 1 or more", o.sampling)
	}
	if o.duration < 30*time.Second {
		return o, fmt.Errorf("-duration %v: want at least 30s, for elephants to start and links to fail", o.duration)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sc, err := run(ctx, o, logger)
	if err != nil {
		logger.Error("quality run failed", "err", err)
		os.Exit(3)
	}
	fmt.Println(sc.elephantLine(o.sampling))
	fmt.Println(sc.line())
	if miss := sc.misses(o.goals, o.scorePaths); len(miss) > 0 {
		fmt.Fprintln(os.Stderr, "quality: goals missed:", strings.Join(miss, "; "))
		os.Exit(1)
	}
}

// freePorts finds loopback ports nobody holds now.
func freePorts(n int, network string) ([]int, error) {
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for range n {
		if network == "udp" {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			closers = append(closers, pc)
			ports = append(ports, pc.LocalAddr().(*net.UDPAddr).Port)
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// proc is a process the run started, stopped by its PID.
type proc struct {
	cmd  *exec.Cmd
	name string
	done chan struct{} // closed once it exited
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func start(name, logDir string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (run make build first?)", bin, err)
	}
	p := &proc{cmd, name, make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func run(ctx context.Context, o options, logger *slog.Logger) (*score, error) {
	logs := o.logs
	if logs == "" {
		var err error
		if logs, err = os.MkdirTemp("", "fabrictrace-quality."); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	udp, err := freePorts(1, "udp")
	if err != nil {
		return nil, err
	}
	tcp, err := freePorts(3, "tcp")
	if err != nil {
		return nil, err
	}
	sflowAddr := fmt.Sprintf("127.0.0.1:%d", udp[0])
	httpAddr := fmt.Sprintf("127.0.0.1:%d", tcp[0])
	bgpAddr := fmt.Sprintf("127.0.0.1:%d", tcp[1])
	truthAddr := fmt.Sprintf("127.0.0.1:%d", tcp[2])
	logger.Info("quality run", "duration", o.duration, "logs", logs, "collector", "http://"+httpAddr)

	col, err := start("collector", logs, filepath.Join(o.bin, "collector"), "-sflow", sflowAddr, "-http", httpAddr,
		"-define", o.define, "-bgp", bgpAddr, "-bgp-accept", "127.0.1.0/24", "-db", ":memory:", "-stats-interval", "0")
	if err != nil {
		return nil, err
	}
	defer col.stop()
	base := "http://" + httpAddr
	if err := waitUp(ctx, base+"/version", 10*time.Second); err != nil {
		return nil, fmt.Errorf("collector: %w (see %s)", err, filepath.Join(logs, "collector.log"))
	}
	simArgs := []string{"-sflow", sflowAddr, "-bgp", bgpAddr, "-seed", fmt.Sprint(o.seed), "-truth-listen", truthAddr,
		"-link-failures", "-link-fail-every", o.linkEvery.String(), "-export-delay", "1s", "-churn", "1m",
		"-elephant-every", "10s", "-elephant-duration", "25s", "-collision", "-progress", "0",
		"-elephant-mbps", "1000", "-elephant-mix", "4s", "-sampling", fmt.Sprint(o.sampling),
		"-duration", (o.duration + 5*time.Second).String(), "-truth", filepath.Join(logs, "truth.json")}
	fsim, err := start("fabricsim", logs, filepath.Join(o.bin, "fabricsim"), simArgs...)
	if err != nil {
		return nil, err
	}
	defer fsim.stop()
	if err := waitUp(ctx, "http://"+truthAddr+"/truth?elephants=1&active=1", 10*time.Second); err != nil {
		return nil, fmt.Errorf("fabricsim: %w (see %s)", err, filepath.Join(logs, "fabricsim.log"))
	}
	p := &prober{base: base, truth: "http://" + truthAddr, sc: &score{}, logger: logger}
	go p.followEvents(ctx)
	go p.followElephants(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.Now().Add(o.duration)
	nextRehash := time.Now().Add(o.rehashEvery)
	nextLog := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if fsim.exited() || col.exited() {
			return nil, fmt.Errorf("a process died early (logs in %s)", logs)
		}
		if err := p.probe(ctx); err != nil {
			logger.Warn("probe", "err", err)
		}
		if o.rehashEvery > 0 && time.Now().After(nextRehash) {
			fsim.cmd.Process.Signal(syscall.SIGUSR2)
			nextRehash = time.Now().Add(o.rehashEvery)
		}
		if time.Now().After(nextLog) {
			logger.Info("progress", "left", time.Until(end).Round(time.Second), "so_far", p.sc.line())
			nextLog = time.Now().Add(30 * time.Second)
		}
	}
	// Changes in the last seconds cannot have been raised yet: score what
	// had time, from the whole truth (mice included, for precision).
	full, err := p.fetchTruth(ctx, false)
	if err != nil {
		return nil, err
	}
	p.finish(ctx, full)
	return p.sc, nil
}

func waitUp(ctx context.Context, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up within %v: %v", u, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prober holds the run's observations.
type prober struct {
	base, truth string
	sc          *score
	logger      *slog.Logger
	offset      float64 // wall seconds (Unix) minus simulated seconds: the least seen
	haveOffset  bool
	mu          sync.Mutex // guards events and starts, which the followers fill
	events      []api.Event
	starts      []started
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 70*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// fetchTruth reads the live truth, and keeps the wall-to-simulated offset:
// the least of (fetch time - simulated time) is the one the least delayed.
func (p *prober) fetchTruth(ctx context.Context, light bool) (sim.Truth, error) {
	var t sim.Truth
	u := p.truth + "/truth"
	if light {
		u += "?elephants=1&active=1"
	}
	if err := getJSON(ctx, u, &t); err != nil {
		return t, err
	}
	at := float64(time.Now().UnixNano()) / 1e9
	if off := at - t.Elapsed; !p.haveOffset || off < p.offset {
		p.offset, p.haveOffset = off, true
	}
	return t, nil
}

// longPoll asks url(after) again and again until ctx ends, handing each
// answer's items to take oldest first (the collector answers newest first)
// and moving after to the newest id that take returns.
func longPoll[T any](ctx context.Context, url func(after int64) string, after int64, take func(T) int64) {
	for ctx.Err() == nil {
		var items []T
		if err := getJSON(ctx, url(after), &items); err != nil {
			time.Sleep(200 * time.Millisecond) // the collector is busy or restarting: ask again shortly
			continue
		}
		for i := len(items) - 1; i >= 0; i-- {
			after = max(after, take(items[i]))
		}
	}
}

// followEvents long-polls /events/json for pathchange events.
func (p *prober) followEvents(ctx context.Context) {
	longPoll(ctx, func(after int64) string {
		return fmt.Sprintf("%s/events/json?thresholdID=pathchange&eventID=%d&maxEvents=1000&timeout=5", p.base, after)
	}, -1, func(ev api.Event) int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.events = append(p.events, ev)
		return ev.EventID
	})
}

// started is an elephant's start, as the update log told it.
type started struct {
	src, dst netip.Addr
	detected float64 // wall seconds
	rec      api.Elephant
	ended    float64 // wall seconds; 0 while active
}

// followElephants long-polls the elephant update log for starts and ends.
func (p *prober) followElephants(ctx context.Context) {
	longPoll(ctx, func(after int64) string {
		return fmt.Sprintf("%s/elephants/json?updateID=%d&maxElephants=1000&timeout=5", p.base, after)
	}, 0, func(r api.Elephant) int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch r.Update {
		case "start":
			p.starts = append(p.starts, started{src: r.Src, dst: r.Dst, detected: float64(r.Detected) / 1000, rec: r})
		case "end":
			for i := range p.starts {
				if p.starts[i].rec.ElephantID == r.ElephantID {
					p.starts[i].ended = float64(time.Now().UnixNano()) / 1e9
				}
			}
		}
		return r.UpdateID
	})
}

// probe checks every live elephant's path against the truth.
func (p *prober) probe(ctx context.Context) error {
	t, err := p.fetchTruth(ctx, true)
	if err != nil {
		return err
	}
	exporting := map[string]bool{}
	for _, n := range t.Nodes {
		exporting[n.Name] = n.Export
	}
	for _, tf := range t.Flows {
		if !tf.Active || !tf.Elephant {
			continue
		}
		since := tf.Start
		for _, c := range tf.Changes {
			since = max(since, c.Time)
		}
		if t.Elapsed-since < 2 {
			continue // too soon after its start or its last change
		}
		q := url.Values{"src": {tf.Src.String()}, "dst": {tf.Dst.String()}, "proto": {fmt.Sprint(tf.Proto)},
			"sport": {fmt.Sprint(tf.SrcPort)}, "dport": {fmt.Sprint(tf.DstPort)}}
		var ps api.Paths
		if err := getJSON(ctx, p.base+"/paths/json?"+q.Encode(), &ps); err != nil {
			return err
		}
		p.sc.probes++
		want := truthNodes(tf, exporting)
		got, share := "", 0.0
		for i, path := range ps.Paths {
			nodes := pathNodes(path)
			if nodes == want {
				share = path.Share
			}
			if i == 0 {
				got = nodes
			}
		}
		if share > 0 { // the true path is there: how far its share is from all of the flow's
			p.sc.shareErr = max(p.sc.shareErr, 100*math.Abs(1-share))
		}
		if len(ps.Paths) == 1 && ps.Paths[0].Complete && got == want {
			p.sc.exact++
		} else if p.sc.logged < 10 {
			p.sc.logged++
			p.logger.Info("probe not exact", "flow", tf.ID, "want", want, "got", describe(ps))
		}
	}
	return nil
}

func truthNodes(tf sim.TruthFlow, exporting map[string]bool) string {
	var b []string
	for _, h := range tf.Hops {
		if exporting[h.Node] {
			b = append(b, fmt.Sprintf("%s@%d", h.Node, h.TTL))
		}
	}
	return strings.Join(b, " ")
}

func pathNodes(p api.Path) string {
	var b []string
	for _, h := range p.Hops {
		if h.Kind == "sampled" {
			b = append(b, fmt.Sprintf("%s@%d", h.Node, h.TTL))
		}
	}
	return strings.Join(b, " ")
}

func describe(ps api.Paths) string {
	var b []string
	for _, p := range ps.Paths {
		var hops []string
		for _, h := range p.Hops {
			hops = append(hops, fmt.Sprintf("%s@%d(%s)", h.Node, h.TTL, h.Kind))
		}
		b = append(b, fmt.Sprintf("[%.0f%% complete=%v %s]", 100*p.Share, p.Complete, strings.Join(hops, " ")))
	}
	return strings.Join(b, " ")
}

// finish scores the path changes and the elephants against the whole truth.
func (p *prober) finish(ctx context.Context, t sim.Truth) {
	p.mu.Lock()
	events := append([]api.Event(nil), p.events...)
	p.mu.Unlock()
	type key struct {
		src, dst     netip.Addr
		proto        uint8
		sport, dport uint16
	}
	type change struct {
		wall     float64
		elephant bool
		scored   bool // counts for recall
		matched  bool
		from, to string
	}
	byFlow := map[key][]*change{}
	for _, tf := range t.Flows {
		k := key{tf.Src, tf.Dst, tf.Proto, tf.SrcPort, tf.DstPort}
		for i, c := range tf.Changes {
			// Scored: an elephant that ran 3 s before and after the change,
			// which came 5 s before the end, to a path it then held 2 s (as
			// a probe counts from 2 s after a change: a briefer path is
			// under the tracker's resolution).
			held := i+1 == len(tf.Changes) || tf.Changes[i+1].Time-c.Time >= 2
			scored := tf.Elephant && held && c.Time-tf.Start >= 3 && tf.End-c.Time >= 3 && t.Elapsed-c.Time >= 5
			byFlow[k] = append(byFlow[k], &change{wall: c.Time + p.offset, elephant: tf.Elephant, scored: scored, from: c.From, to: c.To})
		}
	}
	var latencies []float64
	for _, ev := range events {
		var k key
		f := strings.Split(ev.FlowKey, ",")
		if len(f) != 5 {
			continue
		}
		k.src, _ = netip.ParseAddr(f[0])
		k.dst, _ = netip.ParseAddr(f[1])
		var proto, sport, dport uint64
		fmt.Sscan(f[2], &proto)
		fmt.Sscan(f[3], &sport)
		fmt.Sscan(f[4], &dport)
		k.proto, k.sport, k.dport = uint8(proto), uint16(sport), uint16(dport)
		// The truth's change nearest the event's estimate of it, before the
		// event was raised: a mouse sampled every few seconds is raised long
		// after it moved, and that is no false event.
		raised := float64(ev.Timestamp) / 1000
		est := float64(ev.ChangedAt) / 1000
		var best *change
		for _, c := range byFlow[k] {
			if !c.matched && c.wall <= raised+1 && c.wall >= raised-maxLate &&
				(best == nil || math.Abs(c.wall-est) < math.Abs(best.wall-est)) {
				best = c
			}
		}
		p.sc.events++
		if best == nil {
			p.sc.falseEvents++
			if p.sc.falseLogged < 10 {
				p.sc.falseLogged++
				var truth []string
				for _, c := range byFlow[k] {
					truth = append(truth, fmt.Sprintf("%s matched=%v", time.UnixMilli(int64(c.wall*1000)).Format("15:04:05.000"), c.matched))
				}
				p.logger.Info("pathchange with no change in the truth", "event", ev.FlowKey, "old", ev.OldPath, "new", ev.NewPath,
					"raised", time.UnixMilli(ev.Timestamp).Format("15:04:05.000"), "estimated", time.UnixMilli(ev.ChangedAt).Format("15:04:05.000"),
					"truth", strings.Join(truth, ", "))
			}
			continue
		}
		best.matched = true
		if best.scored {
			latencies = append(latencies, raised-best.wall)
		}
	}
	for k, cs := range byFlow {
		for _, c := range cs {
			if c.scored {
				p.sc.changes++
				if c.matched {
					p.sc.found++
				} else {
					key := fmt.Sprintf("%s,%s,%d,%d,%d", k.src, k.dst, k.proto, k.sport, k.dport)
					var all, evs []string
					for _, o := range cs {
						all = append(all, fmt.Sprintf("%s>%s@%s", o.from, o.to, time.UnixMilli(int64(o.wall*1000)).Format("15:04:05.0")))
					}
					for _, ev := range events {
						if ev.FlowKey == key {
							evs = append(evs, fmt.Sprintf("%v>%v raised %s est %s", ev.OldPath, ev.NewPath,
								time.UnixMilli(ev.Timestamp).Format("15:04:05.0"), time.UnixMilli(ev.ChangedAt).Format("15:04:05.0")))
						}
					}
					p.logger.Info("path change never raised", "flow", key, "from", c.from, "to", c.to,
						"at", time.UnixMilli(int64(c.wall*1000)).Format("15:04:05.000"), "its_moves", strings.Join(all, " "), "its_events", strings.Join(evs, "; "))
				}
			}
		}
	}
	sort.Float64s(latencies)
	p.sc.p50, p.sc.p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
	p.scoreElephants(ctx, t)
}

// scoreElephants scores detection: recall over flows at least twice the
// threshold that ran 5 s; precision against flows at most half of it (a
// start whose pair's flows then came to at most half the threshold
// together is false; between half and the threshold counts for neither); latency for the 2x
// to 4x flows and the 10x ones, from their true start and from their first
// sample's arrival.
func (p *prober) scoreElephants(ctx context.Context, t sim.Truth) {
	const threshold = 100e6 / 8 // bytes/s, scripts/demo.json's
	p.mu.Lock()
	starts := append([]started(nil), p.starts...)
	p.mu.Unlock()
	wall := func(simTime float64) float64 { return simTime + p.offset }
	for _, tf := range t.Flows {
		if !tf.Elephant && !tf.Mix || tf.Rate < 2*threshold || tf.End-tf.Start < 5 || t.Elapsed-tf.Start < 8 || tf.Start < 3 {
			continue
		}
		p.sc.elTruth++
		for _, st := range starts {
			if st.src != tf.Src || st.dst != tf.Dst || st.detected > wall(tf.End)+1 {
				continue
			}
			if st.detected < wall(tf.Start)-1 {
				if st.ended != 0 && st.ended < wall(tf.Start)+2 {
					continue // an earlier elephant of the pair, over before this flow
				}
				// The pair was an elephant already, from a flow before this
				// one, and still is: found, with no latency of its own.
				p.sc.elFound++
				break
			}
			p.sc.elFound++
			// From its first sample's arrival: the path tracker's first
			// sight of its 5-tuple (the record's start may be an earlier
			// flow of the same pair).
			lat, fromSample := st.detected-wall(tf.Start), math.NaN()
			q := url.Values{"src": {tf.Src.String()}, "dst": {tf.Dst.String()}, "proto": {fmt.Sprint(tf.Proto)},
				"sport": {fmt.Sprint(tf.SrcPort)}, "dport": {fmt.Sprint(tf.DstPort)}}
			var ps api.Paths
			if getJSON(ctx, p.base+"/paths/json?"+q.Encode(), &ps) == nil {
				for _, path := range ps.Paths {
					for _, fl := range path.Flows {
						fromSample = st.detected - float64(fl.FirstSeen)/1000
					}
				}
			}
			if fromSample > 2 {
				p.logger.Info("slow detection", "flow", fmt.Sprintf("%s,%s,%d,%d,%d", tf.Src, tf.Dst, tf.Proto, tf.SrcPort, tf.DstPort),
					"times", tf.Rate/threshold, "after_first_sample", fromSample, "after_start", lat, "samples", st.rec.Samples,
					"rate_mbps", st.rec.Rate*8/1e6, "low_mbps", st.rec.RateLow*8/1e6)
			}
			switch times := tf.Rate / threshold; {
			case times >= 8:
				p.sc.lat10 = append(p.sc.lat10, lat)
				if !math.IsNaN(fromSample) {
					p.sc.lat10s = append(p.sc.lat10s, fromSample)
				}
			case times <= 4:
				p.sc.lat2 = append(p.sc.lat2, lat)
				if !math.IsNaN(fromSample) {
					p.sc.lat2s = append(p.sc.lat2s, fromSample)
				}
			}
			break
		}
	}
	// The threshold keys on the address pair: what it measures is every
	// flow of the pair together (a flow, its ACKs of another, mice). An
	// elephant declared in the run's last 2 s is not scored: its flow may
	// start within the wall-to-simulated offset's error of the end.
	for _, st := range starts {
		if st.detected > wall(t.Elapsed)-2 {
			continue
		}
		most := 0.0
		for _, tf := range t.Flows {
			if tf.Src == st.src && tf.Dst == st.dst && st.detected >= wall(tf.Start)-1 && st.detected <= wall(tf.End)+15 {
				most += tf.Rate
			}
		}
		switch {
		case most >= threshold:
			p.sc.elRecords++
			p.sc.elTrue++
		case most <= threshold/2:
			p.sc.elRecords++
			if p.sc.falseLogged < 20 {
				p.sc.falseLogged++
				p.logger.Info("elephant of a pair under half the threshold", "src", st.src, "dst", st.dst, "pair_mbps", most*8/1e6,
					"rate_mbps", st.rec.Rate*8/1e6, "low_mbps", st.rec.RateLow*8/1e6, "samples", st.rec.Samples, "at", st.rec.Locations[0].FlowKey)
			}
		}
	}
	for _, l := range [][]float64{p.sc.lat2, p.sc.lat2s, p.sc.lat10, p.sc.lat10s} {
		sort.Float64s(l)
	}
}

// maxLate is how long after a change its event may come and still be true:
// a mouse sampled once in many seconds is raised late, and rightly so.
const maxLate = 600

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	return xs[min(len(xs)-1, int(math.Ceil(q*float64(len(xs))))-1)]
}

// score is what a run measured.
type score struct {
	probes, exact, logged int
	changes, found        int
	events, falseEvents   int
	falseLogged           int
	p50, p99              float64
	shareErr              float64
	elTruth, elFound      int
	elRecords, elTrue     int
	lat2, lat2s           []float64 // 2x-4x flows: from their start, from their first sample
	lat10, lat10s         []float64 // 10x flows
}

func (s *score) elephantLine(sampling int) string {
	q := func(xs []float64, f float64) float64 { return quantile(xs, f) }
	return fmt.Sprintf("elephants at 1-in-%d: recall %.1f%% of %d flows >= 2x, precision %.1f%% against flows <= 0.5x, "+
		"detected after the flow started (after its first sample arrived): 2x p50 %.2f s p99 %.2f s (%.2f, %.2f), 10x p50 %.2f s p99 %.2f s (%.2f, %.2f)",
		sampling, pct(s.elFound, s.elTruth), s.elTruth, pct(s.elTrue, s.elRecords),
		q(s.lat2, 0.5), q(s.lat2, 0.99), q(s.lat2s, 0.5), q(s.lat2s, 0.99),
		q(s.lat10, 0.5), q(s.lat10, 0.99), q(s.lat10s, 0.5), q(s.lat10s, 0.99))
}

func pct(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return 100 * float64(a) / float64(b)
}

func (s *score) line() string {
	return fmt.Sprintf("quality: paths exact %.1f%% of %d probes, pathchange recall %.1f%% precision %.1f%% (%d changes), "+
		"detection p50 %.2f s p99 %.2f s, ECMP share error max %.1f pt, elephants recall %.1f%% precision %.1f%%",
		pct(s.exact, s.probes), s.probes, pct(s.found, s.changes), pct(s.events-s.falseEvents, s.events), s.changes,
		s.p50, s.p99, s.shareErr, pct(s.elFound, s.elTruth), pct(s.elTrue, s.elRecords))
}

// misses lists the goals a run missed; a figure with nothing behind it
// (no probe, no change) misses too.
func (s *score) misses(g goals, paths bool) []string {
	var out []string
	check := func(name string, v, goal float64, atLeast bool) {
		if math.IsNaN(v) || atLeast && v < goal || !atLeast && v > goal {
			out = append(out, fmt.Sprintf("%s %.2f (goal %s %.2f)", name, v, map[bool]string{true: ">=", false: "<="}[atLeast], goal))
		}
	}
	if paths {
		check("paths exact", pct(s.exact, s.probes), g.exact, true)
		check("pathchange recall", pct(s.found, s.changes), g.recall, true)
		check("pathchange precision", pct(s.events-s.falseEvents, s.events), g.precision, true)
		check("detection p99", s.p99, g.p99, false)
		check("ECMP share error", s.shareErr, g.shareErr, false)
		check("2x declared p99", quantile(s.lat2s, 0.99), g.lat2x, false)
		check("10x declared p99", quantile(s.lat10s, 0.99), g.lat10x, false)
	}
	check("elephant recall", pct(s.elFound, s.elTruth), g.elRecall, true)
	check("elephant precision", pct(s.elTrue, s.elRecords), g.elPrecision, true)
	return out
}
