// Command pathtrace prints the path a src/dst pair's traffic takes across
// the fabric, hop by hop, the way traceroute would, from what a fabrictrace
// collector has sampled: each routed hop takes one off the TTL, so the
// switches that sampled the flow, ordered by the TTL they saw, are its path.
//
// Exit codes: 0 a path was found; 1 no samples for the pair yet; 2 bad
// usage; 3 the collector is unreachable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
)

const (
	exitFound       = 0
	exitNoSamples   = 1
	exitUsage       = 2
	exitUnreachable = 3
)

const usage = `Usage: pathtrace [flags] SRC DST

Prints the hop-by-hop path of SRC -> DST traffic that a fabrictrace
collector has sampled, with each end's BGP owner. SRC and DST are addresses,
or names of nodes the collector knows (a host stands for its address).

Examples:
  pathtrace 172.16.1.11 172.16.1.42
  pathtrace server01 server04
  pathtrace -proto tcp -dport 443 172.16.1.11 172.16.1.42
  pathtrace -json 172.16.1.11 172.16.1.42 | jq .split
  pathtrace -history 172.16.1.11 172.16.1.42   # the paths it took before, with when
  pathtrace -watch -collector http://10.0.0.5:8008 fd00:172:16:1::1:1 fd00:172:16:1::4:2

Flags:
`

type options struct {
	collector    string
	proto        string
	sport, dport uint
	json, watch  bool
	history      bool
	src, dst     string // addresses, or names of nodes the collector knows
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("pathtrace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("FABRICTRACE_URL")
	if def == "" {
		def = "http://127.0.0.1:8008"
	}
	fs.StringVar(&o.collector, "collector", def, "the collector's REST `URL` (default $FABRICTRACE_URL, then http://127.0.0.1:8008)")
	fs.StringVar(&o.proto, "proto", "", "only this protocol: tcp, udp, icmp, icmp6 or a number")
	fs.UintVar(&o.sport, "sport", 0, "only this source port")
	fs.UintVar(&o.dport, "dport", 0, "only this destination port")
	fs.BoolVar(&o.json, "json", false, "print the collector's JSON answer")
	fs.BoolVar(&o.watch, "watch", false, "redraw every second until interrupted")
	fs.BoolVar(&o.history, "history", false, "also print every path each 5-tuple took, with when")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 2 {
		return o, errors.New("want SRC and DST")
	}
	o.src, o.dst = fs.Arg(0), fs.Arg(1)
	for _, a := range []string{o.src, o.dst} {
		if strings.TrimSpace(a) == "" || strings.ContainsAny(a, " /?&") {
			return o, fmt.Errorf("%q: want an address or a node name", a)
		}
	}
	if o.sport > 65535 || o.dport > 65535 {
		return o, errors.New("-sport and -dport: want 1 to 65535")
	}
	if _, err := url.ParseRequestURI(o.collector); err != nil {
		return o, fmt.Errorf("-collector %q: %w", o.collector, err)
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitFound
	}
	if err != nil {
		fmt.Fprintln(stderr, "pathtrace:", err)
		return exitUsage
	}
	for {
		code := once(ctx, o, stdout, stderr)
		if !o.watch || code == exitUnreachable || code == exitUsage {
			return code
		}
		select {
		case <-ctx.Done():
			return code
		case <-time.After(time.Second):
			fmt.Fprint(stdout, "\033[H\033[2J") // clear the screen for the redraw
		}
	}
}

func once(ctx context.Context, o options, stdout, stderr io.Writer) int {
	q := url.Values{"src": {o.src}, "dst": {o.dst}}
	if o.proto != "" {
		q.Set("proto", o.proto)
	}
	if o.sport != 0 {
		q.Set("sport", strconv.FormatUint(uint64(o.sport), 10))
	}
	if o.dport != 0 {
		q.Set("dport", strconv.FormatUint(uint64(o.dport), 10))
	}
	if o.history {
		q.Set("history", "true")
	}
	u := strings.TrimSuffix(o.collector, "/") + "/paths/json?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "pathtrace: cannot reach the collector at %s: %v\n(is it running? set -collector or $FABRICTRACE_URL)\n", o.collector, err)
		return exitUnreachable
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		fmt.Fprintf(stderr, "pathtrace: the collector at %s says %s: %s\n", o.collector, resp.Status, e.Error)
		if resp.StatusCode == http.StatusBadRequest {
			return exitUsage
		}
		return exitUnreachable
	}
	var ps api.Paths
	if err := json.Unmarshal(body, &ps); err != nil {
		fmt.Fprintf(stderr, "pathtrace: the collector at %s answered what is not a path: %v\n", o.collector, err)
		return exitUnreachable
	}
	if o.json {
		stdout.Write(body)
	} else {
		render(stdout, ps)
	}
	if len(ps.Paths) == 0 {
		fmt.Fprintf(stderr, "pathtrace: no samples of %s -> %s yet. Is the pair sending? Do the switches on its path export sFlow to the collector (see %s/agents/json)?\n",
			o.src, o.dst, strings.TrimSuffix(o.collector, "/"))
		return exitNoSamples
	}
	return exitFound
}

// render prints paths as traceroute would: a line per hop.
func render(w io.Writer, ps api.Paths) {
	fmt.Fprintf(w, "pathtrace %s -> %s\n", ps.Src, ps.Dst)
	for _, end := range []struct {
		name string
		o    *api.Owner
	}{{"src", ps.SrcEnd}, {"dst", ps.DstEnd}} {
		if end.o == nil {
			continue
		}
		if end.o.Gone != 0 {
			// Withdrawn: say when, and what it was, never a route it no longer has.
			fmt.Fprintf(w, "  %s %s: withdrawn at %s", end.name, end.o.Address, time.UnixMilli(end.o.Gone).UTC().Format(time.RFC3339))
			if was := end.o.Was; was != nil {
				fmt.Fprintf(w, " (was %s via %s, host %s)", was.Prefix, or(was.AnnouncedBy, was.Peer.String()), or(was.Host, was.NextHop.String()))
			} else {
				fmt.Fprintf(w, " (was %s)", end.o.Prefix)
			}
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "  %s %s: %s announced by %s", end.name, end.o.Address, end.o.Prefix, or(end.o.AnnouncedBy, end.o.Peer.String()))
		fmt.Fprintf(w, ", host %s (next hop %s)\n", or(end.o.Host, "?"), end.o.NextHop)
	}
	for _, el := range ps.Elephants {
		fmt.Fprintf(w, "  elephant: %s", rate(el.Rate, el.Value))
		if el.Samples > 0 {
			fmt.Fprintf(w, " (interval %s to %s, from %.0f samples)", rate(el.RateLow, el.Value), rate(el.RateHigh, el.Value), el.Samples)
		}
		fmt.Fprintf(w, ", over its threshold %q of %s\n", el.ThresholdID, rate(el.Threshold, el.Value))
	}
	for i, p := range ps.Paths {
		state := "complete"
		if !p.Complete {
			state = "incomplete: it does not reach from the source's first hop to the destination"
			for _, h := range p.Hops {
				if h.Kind == "missing" {
					state = "incomplete: unsampled hops marked ?"
				}
			}
		}
		fmt.Fprintf(w, "\npath %d of %d: %.0f%% of bytes, %d flow%s, %s\n", i+1, len(ps.Paths), 100*p.Share,
			len(p.Flows), plural(len(p.Flows)), state)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, " ttl\tnode\tin\t\tout\tsamples")
		for _, h := range p.Hops {
			node := h.Node
			switch h.Kind {
			case "inferred":
				node = "? " + node + " (inferred)"
			case "missing":
				node = "?"
			case "l2":
				node += " (same TTL: bridged or conflict)"
			case "attributed":
				node += " (host, by BGP next hop)"
			}
			samples := "-"
			if h.Samples > 0 {
				samples = strconv.FormatUint(uint64(h.Samples), 10)
			}
			fmt.Fprintf(tw, " %d\t%s\t%s\t->\t%s\t%s\n", h.TTL, node, port(h.In, h.InIfIndex), port(h.Out, h.OutIfIndex), samples)
		}
		tw.Flush()
	}
	for _, s := range ps.Split {
		var parts []string
		for _, n := range sortedKeys(s.Shares) {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", n, 100*s.Shares[n]))
		}
		skew := ""
		if s.Skewed {
			skew = " (skewed: one node carries most of the pair)"
		}
		fmt.Fprintf(w, "\nECMP at TTL %d: %s%s\n", s.TTL, strings.Join(parts, ", "), skew)
	}
	if len(ps.History) > 0 {
		fmt.Fprintf(w, "\nhistory, oldest first (UTC):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, ep := range ps.History {
			to := "now"
			if ep.To != 0 {
				to = clock(ep.To)
			}
			var hops []string
			for _, h := range ep.Hops {
				hops = append(hops, fmt.Sprintf("%s@%d", h.Node, h.TTL))
			}
			fmt.Fprintf(tw, " %s %d -> %d\t%s - %s\t%s\n", protoName(ep.Proto), ep.SrcPort, ep.DstPort, clock(ep.From), to, strings.Join(hops, " "))
		}
		tw.Flush()
	}
}

// rate renders a rate in a flow's value units: bits for bytes and bps.
func rate(v float64, units string) string {
	unit := units + "/s"
	switch units {
	case "bytes":
		v, unit = v*8, "bit/s"
	case "bps":
		unit = "bit/s"
	case "frames", "fps":
		unit = "frames/s"
	}
	for _, p := range []struct {
		scale  float64
		prefix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= p.scale {
			return fmt.Sprintf("%.1f %s%s", v/p.scale, p.prefix, unit)
		}
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04:05.0") }

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmp6"
	}
	return strconv.Itoa(int(p))
}

func port(name, index string) string {
	switch {
	case name != "":
		return name
	case index != "":
		return index
	}
	return "-"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
