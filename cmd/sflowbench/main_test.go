package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
)

// The smoke test of make test: 1,000 datagrams/s for 2 s into the collector,
// no loss, and exactly 7 samples counted per datagram sent.
func TestSmoke(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "collector")
	if out, err := exec.Command("go", "build", "-o", bin, "../collector").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	o := options{collector: bin, define: "../../scripts/demo.json", step: 2 * time.Second, tuples: 1000}
	s, err := measure(context.Background(), o, newLoad(o.tuples), "fabrictrace", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if s.sent < 1900 || s.received != s.sent || s.samples != samplesPerDatagram*s.sent || s.kernelDrops+s.behindDrops != 0 {
		t.Errorf("sent %d, received %d, samples %d (want %d), drops %d and %d", s.sent, s.received, s.samples,
			samplesPerDatagram*s.sent, s.kernelDrops, s.behindDrops)
	}
	// After a warm-up the step counts its own datagrams only.
	o.warmup = time.Second
	s, err = measure(context.Background(), o, newLoad(o.tuples), "fabrictrace", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if s.sent < 1900 || s.received != s.sent || s.samples != samplesPerDatagram*s.sent {
		t.Errorf("after a warm-up: sent %d, received %d, samples %d (want %d)", s.sent, s.received, s.samples, samplesPerDatagram*s.sent)
	}
}

// The load decodes to what it says: 7 samples, 128-byte headers, TTLs 62-64.
func TestLoadDecodes(t *testing.T) {
	l := newLoad(700)
	var dec decode.Decoder
	ttls := map[uint8]bool{}
	for i := range len(l.datagrams) {
		dg, err := dec.Decode(l.next(i), visitor(func(s *decode.FlowSample) { ttls[s.RawHeader.Packet.TTL] = true }))
		if err != nil || dg.FlowSamples != samplesPerDatagram || len(l.datagrams[i]) != 1372 {
			t.Fatalf("datagram %d: %d samples, %d bytes, %v", i, dg.FlowSamples, len(l.datagrams[i]), err)
		}
	}
	if len(ttls) != 3 {
		t.Errorf("TTLs %v, want 62, 63 and 64", ttls)
	}
}

type visitor func(*decode.FlowSample)

func (v visitor) Flow(_ *decode.Datagram, s *decode.FlowSample) { v(s) }
func (visitor) Counter(*decode.Datagram, *decode.CounterSample) {}

// The table names each run, and the summary gives each target's best rate
// under 0.1 % loss per run, with its ratio to the ceiling and the peers.
func TestReportComparesRuns(t *testing.T) {
	o := options{modes: "pinned,unpinned,unpinned-1p", step: time.Second, tuples: 10, retries: 2, busy: 0.15}
	rows := []step{
		{target: "bare", mode: "pinned", samples: 2_000_000, sent: 1, received: 1, tries: 1},
		{target: "sfcapd", mode: "pinned", samples: 1_000_000, tries: 1},
		{target: "fabrictrace", mode: "pinned", samples: 500_000, tries: 1},
		{target: "fabrictrace", mode: "pinned", samples: 800_000, loss: 0.01, tries: 3, others: 0.4}, // past the knee
		{target: "fabrictrace", mode: "unpinned", samples: 700_000, tries: 1},
		{target: "sfcapd", mode: "unpinned", samples: 350_000, tries: 1},
		{target: "fabrictrace", mode: "unpinned-1p", samples: 875_000, tries: 1},
	}
	var b strings.Builder
	report(&b, o, rows)
	out := b.String()
	for _, want := range []string{
		"fabrictrace, pinned: sustains 500000 samples/s under 0.1 % loss (0.25 of the bare ceiling, 0.50 of sfcapd)",
		"fabrictrace, unpinned: sustains 700000 samples/s",
		// The C peers' unpinned run stands for their one-P run.
		"fabrictrace, unpinned-1p: sustains 875000 samples/s under 0.1 % loss (2.50 of sfcapd)",
		"0.40", // the busy step's other load is shown
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// busyTicks counts the machine's CPU time, so it moves while this process
// works.
func TestBusyTicksMoves(t *testing.T) {
	before := busyTicks()
	spins := 0
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		spins++
	}
	if after := busyTicks(); before <= 0 || after <= before {
		t.Errorf("busy time %v then %v, over %d spins", before, after, spins)
	}
}

// udpSocket reads the kernel's queue and drops of a socket: what is sent
// and not read is queued, and past a small buffer, dropped.
func TestUDPSocketCounters(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(4096); err != nil { // the kernel doubles it, and takes a few datagrams
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	if q, d, err := udpSocket(addr); err != nil || q != 0 || d != 0 {
		t.Fatalf("a new socket: queued %d, drops %d, %v", q, d, err)
	}
	out, err := net.Dial("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for range 100 {
		out.Write(make([]byte, 1000))
	}
	q, d, err := udpSocket(addr)
	if err != nil || q == 0 || d == 0 || d >= 100 {
		t.Fatalf("100 datagrams unread into a small buffer: queued %d bytes, drops %d, %v", q, d, err)
	}
	buf := make([]byte, 2000)
	c.SetReadDeadline(time.Now().Add(time.Second))
	for read := uint64(0); read < 100-d; read++ {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("read %d of %d queued: %v", read, 100-d, err)
		}
	}
	if q, _, err := udpSocket(addr); err != nil || q != 0 {
		t.Errorf("read empty: queued %d, %v", q, err)
	}
	if _, _, err := udpSocket("[::1]:9"); err == nil {
		t.Error("an IPv6 address: no error")
	}
}

// A peer's step after a warm-up counts its own datagrams only, though the
// peer can be counted only once it stops. Skipped where sfcapd is not
// installed (scripts/bench-setup.sh installs it).
func TestPeerAfterWarmUp(t *testing.T) {
	for _, bin := range []string{"sfcapd", "nfdump"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed: run scripts/bench-setup.sh as root", bin)
		}
	}
	o := options{step: 2 * time.Second, warmup: time.Second, tuples: 1000}
	s, err := measure(context.Background(), o, newLoad(o.tuples), "sfcapd", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if s.sent < 1900 || s.received != s.sent || s.samples != samplesPerDatagram*s.sent || s.kernelDrops != 0 {
		t.Errorf("sent %d, received %d, samples %d (want %d), kernel drops %d", s.sent, s.received, s.samples,
			samplesPerDatagram*s.sent, s.kernelDrops)
	}
}

// treeUsage charges a target for its children: a child that spins shows
// in its parent's tree, and not in the parent alone.
func TestTreeUsageCountsChildren(t *testing.T) {
	// The child spins for a bounded count (seconds), and is stopped once seen.
	sh := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 20000000 ]; do i=$((i+1)); done' & wait`)
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	defer func() {
		for _, p := range pids { // the child, then the shell: both started here
			syscall.Kill(p, syscall.SIGKILL)
		}
		sh.Wait()
	}()
	var own, all float64
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && all < 0.2; time.Sleep(20 * time.Millisecond) {
		own = cpuTicks(sh.Process.Pid)
		all, _ = treeUsage(sh.Process.Pid)
	}
	pids = tree(sh.Process.Pid)
	slices.Reverse(pids)
	if len(pids) != 2 || all < 0.2 || own > 0.05 {
		t.Errorf("tree %v: parent alone %.2f s, with its child %.2f s; want the child's spin in the tree only", pids, own, all)
	}
}
