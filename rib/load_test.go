package rib_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/sim"
)

// The load speaker runs in its own process (this test binary, re-executed),
// so the benchmark's memory is the learner's alone.
const speakerEnv = "FABRICTRACE_LOAD_SPEAKER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(speakerEnv); spec != "" {
		os.Exit(loadSpeaker(spec))
	}
	os.Exit(m.Run())
}

// loadSpeaker: "N COLLECTOR": announce N /32s from 10.0.0.0/8 before the
// session exists (GoBGP then sends them packed in one table dump), say
// "ready", and hold until stdin closes.
func loadSpeaker(spec string) int {
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[0])
	collector := netip.MustParseAddrPort(f[1])
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx := context.Background()
	// Paths first, then the peer: nothing to send until the table is whole.
	built := time.Now()
	src := netip.MustParseAddr("127.0.5.1")
	sp, err := sim.NewSpeakerPaused(ctx, 65301, src, src, quiet)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	sp.HoldTime = 90 // BGP's default: the dump of a big table keeps it busy
	nh := netip.MustParseAddr("10.2.2.1")
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if err := sp.Announce(ctx, netip.PrefixFrom(a, 32), nh); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "speaker: %d paths in %v\n", n, time.Since(built).Round(time.Millisecond))
	if err := sp.Connect(ctx, collector, 65000); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	sp.Stop()
	return 0
}

// BenchmarkLearnRoutes: one peer's full table of FABRICTRACE_ROUTES (default
// 1,000,000) /32s. Reports seconds from the session's start to the last
// route visible to lookups, and the learner's memory. Run with -benchtime 1x.
func BenchmarkLearnRoutes(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("FABRICTRACE_ROUTES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for b.Loop() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := netip.MustParseAddrPort(ln.Addr().String())
		ln.Close()

		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		// GOMEMLIMIT is for the learner under test, not the speaker.
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "GOMEMLIMIT=") }),
			speakerEnv+"="+strconv.Itoa(n)+" "+addr.String())
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		setup := time.Now()
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			b.Fatalf("speaker: %q", line)
		}
		b.Logf("speaker built %d paths in %v", n, time.Since(setup).Round(time.Millisecond))

		runtime.GC()
		before := rss("VmRSS")
		start := time.Now()
		r, err := rib.Start(context.Background(), rib.Config{Listen: addr.String(),
			Accept: []netip.Prefix{netip.MustParsePrefix("127.0.5.0/24")},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
		if err != nil {
			b.Fatal(err)
		}
		// The session's start is seen with the first batch of routes: peer
		// events publish nothing.
		var established time.Duration
		deadline := time.After(5 * time.Minute)
		for next := r.Published(); r.Len() < n; next = r.Published() {
			if established == 0 {
				for _, nb := range r.Neighbors() {
					if nb.State == "established" {
						established = time.Since(start)
					}
				}
			}
			select {
			case <-next:
			case <-deadline:
				b.Fatalf("%d of %d routes after 5 minutes", r.Len(), n)
			}
		}
		learned := time.Since(start)
		b.ReportMetric(learned.Seconds(), "s-to-learn")
		b.ReportMetric((learned - established).Seconds(), "s-after-first-routes")
		b.ReportMetric(float64(rss("VmHWM"))/(1<<20), "MiB-peak-RSS")
		b.ReportMetric(float64(rss("VmRSS")-before)/(1<<20), "MiB-RSS-added")
		b.ReportMetric(float64(n)/(learned-established).Seconds(), "routes/s")
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live-heap")
		if f := os.Getenv("FABRICTRACE_HEAPPROFILE"); f != "" {
			out, _ := os.Create(f)
			pprof.WriteHeapProfile(out)
			out.Close()
		}
		stdin.Close()
		cmd.Wait()
		r.Close()
	}
}

// rss reads a memory figure of this process from /proc/self/status, in bytes.
func rss(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
