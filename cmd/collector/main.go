// Command collector is the fabrictrace collector: it receives sFlow v5 from
// the fabric's switches and hosts, accounts for every agent, and (as the
// flow engine, RIB and web front end land) turns the samples into flows,
// elephants and paths.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/ingest"
)

type options struct {
	sflow         string
	sockets       int
	rcvbuf        int
	maxAgents     int
	dump          bool
	statsInterval time.Duration
	logLevel      string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sflow, "sflow", ":6343", "UDP `address` to receive sFlow on (IPv4 or IPv6)")
	fs.IntVar(&o.sockets, "sflow-sockets", 1, "SO_REUSEPORT sockets (and decoding workers) for sFlow")
	fs.IntVar(&o.rcvbuf, "sflow-rcvbuf", 32<<20, "socket receive buffer to request, in `bytes` (capped by net.core.rmem_max)")
	fs.IntVar(&o.maxAgents, "max-agents", 10000, "sFlow agents to track; beyond it the least recently seen are forgotten")
	fs.BoolVar(&o.dump, "dump", false, "print every decoded sample to stdout as a JSON line (like sflowtool)")
	fs.DurationVar(&o.statsInterval, "stats-interval", time.Minute, "how often to log ingest totals (0 disables)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: collector [flags]\n\nReceives sFlow v5 and accounts for every agent.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.sockets < 1 || o.sockets > 64 {
		return o, fmt.Errorf("-sflow-sockets %d: want 1 to 64", o.sockets)
	}
	return o, nil
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
	l, err := ingest.Listen(ctx, ingest.Config{Addr: o.sflow, Sockets: o.sockets, ReadBuffer: o.rcvbuf,
		MaxAgents: o.maxAgents, Logger: logger})
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("%w (ports below 1024 need root or CAP_NET_BIND_SERVICE; try -sflow :16343)", err)
		}
		return err
	}
	var sink decode.Visitor = discard{}
	if o.dump {
		sink = &dumpSink{w: stdout}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.Serve(ctx, sink) })
	if o.statsInterval > 0 {
		g.Go(func() error {
			t := time.NewTicker(o.statsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					logStats(logger, "ingest totals", l.Stats())
				}
			}
		})
	}
	err = g.Wait()
	logStats(logger, "stopped; ingest totals", l.Stats())
	return err
}

func logStats(logger *slog.Logger, msg string, s ingest.Stats) {
	var faults []string
	for i, n := range s.Faults {
		if n > 0 {
			faults = append(faults, fmt.Sprintf("%s=%d", ingest.ErrorKinds[i], n))
		}
	}
	attrs := []any{"agents", s.Agents, "datagrams", s.Datagrams, "samples", s.Samples,
		"dropped_behind", s.DroppedBehind, "kernel_drops", s.Kernel.SocketDrops,
		"undecodable", s.Undecodable, "faults", strings.Join(faults, ",")}
	if s.KernelErr != nil {
		attrs = append(attrs, "kernel_stats_err", s.KernelErr)
	}
	logger.Info(msg, attrs...)
}

// discard is the sink until the flow engine takes the samples.
type discard struct{}

func (discard) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (discard) Counter(*decode.Datagram, *decode.CounterSample) {}
