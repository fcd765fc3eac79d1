package rib_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
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

// loadSpeaker: "KIND N COLLECTOR": announce N /32s from 10.0.0.0/8 to the
// collector, say "ready" once they are built, and hold the session until
// stdin closes. Each kind says "ready" when the collector may start. KIND
// sim is the simulator's BGP speaker, given the paths before the session
// exists (it sends them as one table dump); KIND raw writes UPDATEs
// encoded in advance, 809 prefixes to a message, so the time measured is
// the learner's alone.
func loadSpeaker(spec string) int {
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[1])
	collector := netip.MustParseAddrPort(f[2])
	src := netip.MustParseAddr("127.0.5.1")
	var stop, withdraw func() error
	var err error
	if f[0] == "raw" {
		stop, withdraw, err = rawSpeaker(n, src, collector)
	} else {
		stop, withdraw, err = simSpeaker(n, src, collector)
	}
	if err != nil {
		fmt.Println("error", err)
		fmt.Fprintln(os.Stderr, "speaker:", err)
		return 1
	}
	// "withdraw" withdraws every route; the end of stdin ends the session.
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			break
		}
		if strings.TrimSpace(line) == "withdraw" {
			if err := withdraw(); err != nil {
				fmt.Fprintln(os.Stderr, "speaker: withdraw:", err)
				return 1
			}
		}
	}
	stop()
	return 0
}

const loadASN = 65301

func loadPrefix(i int) [4]byte { return [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)} }

func simSpeaker(n int, src netip.Addr, collector netip.AddrPort) (stop, withdraw func() error, err error) {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx := context.Background()
	built := time.Now()
	// Paths first, then the peer: nothing to send until the table is whole.
	sp, err := sim.NewSpeakerPaused(ctx, loadASN, src, src, quiet)
	if err != nil {
		return nil, nil, err
	}
	sp.HoldTime = 90 // BGP's default: the dump of a big table keeps it busy
	nh := netip.MustParseAddr("10.2.2.1")
	for i := range n {
		if err := sp.Announce(ctx, netip.PrefixFrom(netip.AddrFrom4(loadPrefix(i)), 32), nh); err != nil {
			return nil, nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "speaker: %d paths in %v\n", n, time.Since(built).Round(time.Millisecond))
	if err := sp.Connect(ctx, collector, 65000); err != nil {
		return nil, nil, err
	}
	fmt.Println("ready") // it connects once the collector listens
	withdraw = func() error {
		for i := range n {
			if err := sp.Withdraw(ctx, netip.PrefixFrom(netip.AddrFrom4(loadPrefix(i)), 32), nh); err != nil {
				return err
			}
		}
		return nil
	}
	return func() error { sp.Stop(); return nil }, withdraw, nil
}

// rawSpeaker is a minimal BGP-4 speaker (RFC 4271): OPEN with the 4-octet
// AS and IPv4 unicast capabilities, KEEPALIVEs, and the UPDATEs.
func rawSpeaker(n int, src netip.Addr, collector netip.AddrPort) (stop, withdraw func() error, err error) {
	msg := sim.BGPMessage
	var updates []byte
	attrs := []byte{
		0x40, 1, 1, 0, // ORIGIN IGP
		0x40, 2, 6, 2, 1, 0, 0, loadASN >> 8, loadASN & 0xff, // AS_PATH: one AS_SEQUENCE of one 4-octet AS
		0x40, 3, 4, 10, 2, 2, 1, // NEXT_HOP
		0xc0, 8, 4, loadASN >> 8, loadASN & 0xff, 0, 1, // COMMUNITIES loadASN:1
	}
	perUpdate := (4096 - 19 - 4 - len(attrs)) / 5 // what fits beside the header, the two lengths and the attributes
	for i := 0; i < n; i += perUpdate {
		body := binary.BigEndian.AppendUint16(nil, 0)
		body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
		body = append(body, attrs...)
		for j := i; j < min(n, i+perUpdate); j++ {
			p := loadPrefix(j)
			body = append(body, 32, p[0], p[1], p[2], p[3])
		}
		updates = append(updates, msg(2, body)...)
	}
	updates = append(updates, msg(2, []byte{0, 0, 0, 0})...) // End-of-RIB
	// Withdrawals one prefix to an UPDATE, as a leaf withdraws containers
	// one by one: the learner's cost per message, not per prefix.
	var withdrawals []byte
	for i := range n {
		p := loadPrefix(i)
		withdrawals = append(withdrawals, msg(2, []byte{0, 5, 32, p[0], p[1], p[2], p[3], 0, 0})...)
	}
	id := src.As4()
	open := []byte{4, loadASN >> 8, loadASN & 0xff, 0, 90, id[0], id[1], id[2], id[3]} // version, AS, hold time, id
	caps := []byte{
		1, 4, 0, 1, 0, 1, // multiprotocol: IPv4 unicast
		65, 4, 0, 0, loadASN >> 8, loadASN & 0xff, // 4-octet AS
	}
	open = append(open, byte(2+len(caps)), 2, byte(len(caps)))
	open = append(open, caps...)
	fmt.Fprintf(os.Stderr, "speaker: %d prefixes in %d bytes of UPDATEs\n", n, len(updates))
	fmt.Println("ready") // the collector starts now: dial until it listens
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
	// By the FSM: OPEN, its OPEN, KEEPALIVE, its KEEPALIVE, and UPDATEs
	// only then (GoBGP v4 resets a session that runs ahead of it). A
	// collector that listens before its accept ranges are set resets the
	// first tries, so they repeat, as a real speaker's connect retry does.
	hdr := make([]byte, 19)
	await := func(conn net.Conn, typ byte) error {
		for {
			if _, err := io.ReadFull(conn, hdr); err != nil {
				return fmt.Errorf("waiting for message type %d: %w", typ, err)
			}
			body := make([]byte, int(binary.BigEndian.Uint16(hdr[16:]))-19)
			if _, err := io.ReadFull(conn, body); err != nil {
				return err
			}
			switch hdr[18] {
			case typ:
				return nil
			case 3:
				return fmt.Errorf("NOTIFICATION %v", body)
			}
		}
	}
	establish := func() (net.Conn, error) {
		conn, err := d.Dial("tcp", collector.String())
		if err != nil {
			return nil, err
		}
		if _, err = conn.Write(msg(1, open)); err == nil {
			if err = await(conn, 1); err == nil {
				if _, err = conn.Write(msg(4, nil)); err == nil {
					err = await(conn, 4)
				}
			}
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	var conn net.Conn
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := establish()
		if err == nil {
			conn = c
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, err
		}
		time.Sleep(20 * time.Millisecond) // the collector starts after "ready"
	}
	go io.Copy(io.Discard, conn) // its KEEPALIVEs
	if _, err := conn.Write(updates); err != nil {
		return nil, nil, err
	}
	quit := make(chan struct{})
	go func() {
		for t := time.NewTicker(20 * time.Second); ; {
			select {
			case <-t.C:
				conn.Write(msg(4, nil))
			case <-quit:
				return
			}
		}
	}()
	withdraw = func() error { _, err := conn.Write(withdrawals); return err }
	return func() error { close(quit); return conn.Close() }, withdraw, nil
}

// BenchmarkLearnRoutes: one peer's full table of FABRICTRACE_ROUTES (default
// 1,000,000) /32s, from the lean raw speaker (the learner's own cost) and
// from the simulator's speaker (its table dump). Reports seconds from the
// session's start to the last route visible to lookups, and the learner's
// memory; then the seconds from the speaker's withdrawal of every route to
// the last one gone, one prefix to an UPDATE, as a leaf withdraws
// containers. Run with
// -benchtime 1x; GOMEMLIMIT, if set, applies to the learner only.
func BenchmarkLearnRoutes(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("FABRICTRACE_ROUTES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for _, kind := range []string{"raw", "sim"} {
		b.Run(kind, func(b *testing.B) { learnRoutes(b, kind, n) })
	}
}

func learnRoutes(b *testing.B, kind string, n int) {
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
			speakerEnv+"="+kind+" "+strconv.Itoa(n)+" "+addr.String())
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

		debug.FreeOSMemory()
		// Peak RSS is the process's: start it afresh, or one sub-benchmark
		// reports the one before it (Linux: 5 resets VmHWM).
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			b.Logf("peak RSS not reset, so it covers the runs before this one: %v", err)
		}
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
		{
			start := time.Now()
			fmt.Fprintln(stdin, "withdraw")
			for next := r.Published(); r.Len() > 0; next = r.Published() {
				select {
				case <-next:
				case <-deadline:
					b.Fatalf("%d of %d routes still held after 5 minutes", r.Len(), n)
				}
			}
			withdrawn := time.Since(start)
			b.ReportMetric(withdrawn.Seconds(), "s-to-withdraw")
			b.ReportMetric(withdrawn.Seconds()/(learned-established).Seconds(), "withdraw/learn")
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
