package ingest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

type countingSink struct {
	flows, counters atomic.Uint64
	ttls            sync.Map // agent -> last TTL
}

func (s *countingSink) Flow(d *decode.Datagram, f *decode.FlowSample) {
	s.flows.Add(1)
	s.ttls.Store(d.Agent, f.RawHeader.Packet.TTL)
}
func (s *countingSink) Counter(*decode.Datagram, *decode.CounterSample) { s.counters.Add(1) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start runs a listener on loopback and returns it with a connected sender.
func start(t *testing.T, cfg Config, sink decode.Visitor) (*Listener, *net.UDPConn) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := Listen(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c
}

// waitFor polls the listener's own counter until it reaches n: the counter is
// the synchronisation, the deadline only bounds a failure.
func waitFor(t *testing.T, what string, get func() uint64, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for get() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %d, want %d", what, get(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func flowDatagram(agent netip.Addr, seq, sampleSeq uint32, ttl uint8) []byte {
	f := sflowtest.Frame{Src: netip.MustParseAddr("172.16.1.11"), Dst: netip.MustParseAddr("172.16.1.21"),
		Protocol: sflowtest.ProtoUDP, TTL: ttl, SrcPort: 1, DstPort: 2}
	d := &sflowtest.Datagram{Agent: agent, Sequence: seq, Uptime: 1000 * seq, Samples: []sflowtest.Sample{
		&sflowtest.FlowSample{Sequence: sampleSeq, Source: decode.DataSource{Index: 3}, SamplingRate: 100, Drops: sampleSeq / 10,
			Input: decode.Port{Value: 3}, Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 64, Header: f.Bytes()}}},
		&sflowtest.CounterSample{Sequence: seq, Source: decode.DataSource{Index: 3}, Records: []sflowtest.Record{&sflowtest.GenericInterface{IfIndex: 3}}},
	}}
	return d.Bytes()
}

func TestListenerAccounting(t *testing.T) {
	sink := &countingSink{}
	l, c := start(t, Config{}, sink)
	agent := netip.MustParseAddr("10.255.0.11")
	// Datagram sequence 1..12 with 4 and 7 missing, 9 sent twice, 6 late,
	// and 11 unreadable (so lost too).
	order := []uint32{1, 2, 3, 5, 8, 6, 9, 9, 10}
	for _, seq := range order {
		if _, err := c.Write(flowDatagram(agent, seq, seq, 64)); err != nil {
			t.Fatal(err)
		}
	}
	bad := flowDatagram(agent, 11, 11, 64)
	bad[3] = 4 // sFlow version 4
	c.Write(bad)
	cut := flowDatagram(agent, 12, 12, 64)
	c.Write(cut[:len(cut)-20]) // the counter sample is cut short; the flow sample survives
	waitFor(t, "datagrams", func() uint64 { return l.Stats().Datagrams }, uint64(len(order)+2))

	st := l.Stats()
	if st.Undecodable != 1 || st.Faults[0] != 1 || st.Faults[3] != 1 {
		t.Errorf("undecodable %d, faults %v: want 1 undecodable, one version and one length fault", st.Undecodable, st.Faults)
	}
	agents := l.Agents()
	if len(agents) != 1 {
		t.Fatalf("%d agents, want 1", len(agents))
	}
	a := agents[0]
	if a.Agent != agent || a.Datagrams != uint64(len(order)+1) || a.DatagramsLost != 3 || a.DatagramsOutOfOrder != 1 ||
		a.DatagramsDuplicate != 1 || a.Restarts != 0 {
		t.Errorf("datagram accounting: %+v", a)
	}
	// Sample sequences follow the datagram's, so flow samples show the same.
	if a.Flow.Samples != 10 || a.Flow.Lost != 3 || a.Flow.OutOfOrder != 1 || a.Flow.Duplicate != 1 || a.Flow.Sources != 1 || a.Flow.Drops != 1 {
		t.Errorf("flow sample accounting: %+v", a.Flow)
	}
	if a.Counter.Samples != 9 || a.Malformed != 1 || a.SamplesFaulted != 1 || a.LastError == "" {
		t.Errorf("counter and fault accounting: %+v", a)
	}
	if sink.flows.Load() != 10 || sink.counters.Load() != 9 || st.Samples != 19 {
		t.Errorf("sink saw %d flow and %d counter samples (stats %d), want 10 and 9", sink.flows.Load(), sink.counters.Load(), st.Samples)
	}
	if a.Source.Addr() != netip.MustParseAddr("127.0.0.1") || a.Source.Port() == 0 {
		t.Errorf("source %v", a.Source)
	}

	// A restart: uptime and sequence start again, and nothing counts as lost.
	c.Write(flowDatagram(agent, 1, 1, 64))
	c.Write(flowDatagram(agent, 2, 2, 64))
	waitFor(t, "datagrams", func() uint64 { return l.Stats().Datagrams }, uint64(len(order)+4))
	a = l.Agents()[0]
	if a.Restarts != 1 || a.DatagramsLost != 3 || a.Flow.Lost != 3 {
		t.Errorf("after restart: restarts %d, lost %d, samples lost %d", a.Restarts, a.DatagramsLost, a.Flow.Lost)
	}
}

// A sink that stops must cost dropped datagrams, counted, not unbounded
// memory or a blocked socket reader: past behindGrace the reader drops.
func TestListenerDropsWhenSinkIsBehind(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	sink := &blockingSink{release: release}
	cfg := Config{Batch: 4, QueueBatches: 2}
	l, c := start(t, cfg, sink)
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	agent := netip.MustParseAddr("10.255.0.12")
	const sent = 200
	for i := range sent {
		c.Write(flowDatagram(agent, uint32(i+1), uint32(i+1), 64))
	}
	// Everything sent is either read or dropped by the kernel before the sink
	// is released.
	waitFor(t, "read", func() uint64 { st := l.Stats(); return st.Received + st.Kernel.SocketDrops }, sent)
	once.Do(func() { close(release) })
	st := l.Stats()
	waitFor(t, "decoded", func() uint64 { return l.Stats().Datagrams }, st.Received-st.DroppedBehind)
	st = l.Stats()
	// The pool holds QueueBatches+1 batches of Batch; nothing else is kept.
	pool := uint64((cfg.QueueBatches + 1) * cfg.Batch)
	if st.DroppedBehind == 0 || st.Datagrams > pool {
		t.Errorf("kept %d datagrams and dropped %d with a stopped sink; the pool holds %d", st.Datagrams, st.DroppedBehind, pool)
	}
	if st.Datagrams+st.DroppedBehind+st.Kernel.SocketDrops != sent {
		t.Errorf("%d decoded + %d dropped + %d kernel drops != %d sent", st.Datagrams, st.DroppedBehind, st.Kernel.SocketDrops, sent)
	}
}

type nopSink struct{}

func (nopSink) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (nopSink) Counter(*decode.Datagram, *decode.CounterSample) {}

// A sink that pauses for less than behindGrace (a GC, a burst of new
// elephants) costs nothing: the reader waits for a free batch while the
// socket's buffer holds what arrives.
func TestListenerRidesOutAShortPause(t *testing.T) {
	sink := &pausingSink{pause: behindGrace / 5}
	l, c := start(t, Config{Batch: 4, QueueBatches: 2}, sink) // a pool of 12 datagrams
	agent := netip.MustParseAddr("10.255.0.12")
	const sent = 100
	for i := range sent {
		c.Write(flowDatagram(agent, uint32(i+1), uint32(i+1), 64))
	}
	waitFor(t, "read", func() uint64 { st := l.Stats(); return st.Datagrams + st.DroppedBehind + st.Kernel.SocketDrops }, sent)
	if st := l.Stats(); st.Datagrams != sent || st.DroppedBehind != 0 || st.Kernel.SocketDrops != 0 {
		t.Errorf("a %v pause: %d decoded, %d dropped behind, %d kernel drops of %d sent", sink.pause, st.Datagrams, st.DroppedBehind, st.Kernel.SocketDrops, sent)
	}
}

// pausingSink stops for pause at its first sample, as a sink that meets a
// GC or a burst of work does.
type pausingSink struct {
	pause time.Duration
	once  sync.Once
}

func (s *pausingSink) Flow(*decode.Datagram, *decode.FlowSample) {
	s.once.Do(func() { time.Sleep(s.pause) })
}
func (s *pausingSink) Counter(*decode.Datagram, *decode.CounterSample) {}

type blockingSink struct{ release chan struct{} }

func (s *blockingSink) Flow(*decode.Datagram, *decode.FlowSample)       { <-s.release }
func (s *blockingSink) Counter(*decode.Datagram, *decode.CounterSample) {}

func TestAgentTableIsCapped(t *testing.T) {
	sink := &countingSink{}
	l, c := start(t, Config{MaxAgents: 4}, sink)
	for i := range 10 {
		c.Write(flowDatagram(netip.AddrFrom4([4]byte{10, 255, 1, byte(i)}), 1, 1, 64))
	}
	waitFor(t, "datagrams", func() uint64 { return l.Stats().Datagrams }, 10)
	st := l.Stats()
	if st.Agents != 4 || st.AgentsEvicted != 6 || len(l.Agents()) != 4 {
		t.Errorf("agents %d evicted %d, want 4 and 6", st.Agents, st.AgentsEvicted)
	}
}

func TestSourcesPerAgentAreCapped(t *testing.T) {
	tbl := newAgentTable(10, 3)
	a := tbl.get(netip.MustParseAddr("10.0.0.1"), 0, time.Now())
	for i := range 10 {
		a.sample(0, decode.DataSource{Index: uint32(i)}, 1, 0, int64(i), 3)
	}
	if len(a.sources) != 3 || a.stats.SourcesEvicted != 7 {
		t.Errorf("%d sources, %d evicted; want 3 and 7", len(a.sources), a.stats.SourcesEvicted)
	}
}

// A source that comes back after eviction starts afresh, and the cache in
// front of the map never hands back a source the map let go: every cached
// source is the map's, and a returning one counts no loss from before.
func TestEvictedSourceComesBackAfresh(t *testing.T) {
	tbl := newAgentTable(10, 2)
	a := tbl.get(netip.MustParseAddr("10.0.0.1"), 0, time.Now())
	for i := range 3 { // source 0 is evicted by source 2
		a.sample(0, decode.DataSource{Index: uint32(i)}, 100, 0, int64(i), 2)
	}
	a.sample(0, decode.DataSource{Index: 0}, 200, 0, 3, 2)
	if a.stats.Flow.Lost != 0 {
		t.Errorf("a returning source counted %d lost samples from before its eviction", a.stats.Flow.Lost)
	}
	for _, src := range a.recent {
		if src != nil && a.sources[src.key] != src {
			t.Errorf("cache holds source %+v, which the map does not", src.key)
		}
	}
	if len(a.sources) != 2 {
		t.Errorf("%d sources, want 2", len(a.sources))
	}
}

// The per-datagram path, decode and accounting together, allocates nothing
// once the agent is known.
func TestWorkerAllocatesNothing(t *testing.T) {
	l := &Listener{cfg: Config{MaxDatagram: 9000}, agents: newAgentTable(10, 10)}
	w := &worker{l: l, acct: accountant{table: l.agents, sink: nopSink{}, maxSources: 10}}
	b := flowDatagram(netip.MustParseAddr("10.0.0.1"), 1, 1, 64)
	src := netip.MustParseAddrPort("127.0.0.1:5000")
	now := time.Now()
	w.datagram(b, src, false, now)
	allocs := testing.AllocsPerRun(200, func() { w.datagram(b, src, false, now) })
	if allocs != 0 {
		t.Errorf("%.1f allocations per datagram", allocs)
	}
}

func TestListenReportsBufferAndErrors(t *testing.T) {
	l, err := Listen(context.Background(), Config{Addr: "127.0.0.1:0", Logger: quiet, Sockets: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	// A second listener on the same port without SO_REUSEPORT's partner
	// options still binds (reuseport), so check a plainly bad address instead.
	if _, err := Listen(context.Background(), Config{Addr: "256.0.0.1:1", Logger: quiet}); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
	if len(l.conns) != 2 || l.conns[0].LocalAddr().String() != l.conns[1].LocalAddr().String() {
		t.Errorf("sockets: %v", l.conns)
	}
}

// With an allowlist, sFlow from other sources is dropped before decoding
// and counted.
func TestAllowlistDropsAndCounts(t *testing.T) {
	l := &Listener{cfg: Config{MaxDatagram: 9000, Allow: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/16")}},
		agents: newAgentTable(10, 10)}
	sink := &countingSink{}
	w := &worker{l: l, acct: accountant{table: l.agents, sink: sink, maxSources: 10}}
	b := flowDatagram(netip.MustParseAddr("10.255.1.1"), 1, 1, 64)
	now := time.Now()
	w.datagram(b, netip.MustParseAddrPort("10.255.1.1:5000"), false, now)
	w.datagram(b, netip.MustParseAddrPort("192.0.2.9:5000"), false, now)
	w.datagram(b, netip.MustParseAddrPort("[::ffff:10.255.0.7]:5000"), false, now)
	st := l.Stats()
	if st.Denied != 1 || st.Datagrams != 2 || sink.flows.Load() != 2 {
		t.Errorf("denied %d, decoded %d, samples %d; want 1, 2, 2", st.Denied, st.Datagrams, sink.flows.Load())
	}
}

// A second collector on a port the first holds is refused, saying why:
// with SO_REUSEPORT it would otherwise bind beside it, and the kernel would
// split the agents between the two. Several sockets of one collector still
// share their port.
func TestPortHeldByAnotherIsRefused(t *testing.T) {
	first, _ := start(t, Config{Sockets: 2}, &countingSink{})
	_, err := Listen(context.Background(), Config{Addr: first.Addr().String(), Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "another process holds the port") {
		t.Fatalf("second listener on %s: %v, want a refusal", first.Addr(), err)
	}
}

// A flood of spoofed agents, each sending once, does not churn out a real
// agent that sends every 100 ms: its accounting survives whole (before,
// it was wiped over and over: 60 sent, 10 counted). It sends a few before
// the flood begins; an agent new during a flood is a spoof until it has
// come back, and a flood leaves it no time to.
func TestLiveAgentOutlastsASpoofFlood(t *testing.T) {
	tbl := newAgentTable(100, 10)
	real := netip.MustParseAddr("10.0.0.1")
	now := time.Unix(1_700_000_000, 0)
	spoof := uint32(0)
	for i := range 63 {
		a := tbl.get(real, 0, now)
		a.mu.Lock()
		a.datagram(&decode.Datagram{Agent: real, Sequence: uint32(i + 1), Uptime: uint32(i * 100)}, netip.AddrPort{}, 100, now)
		a.mu.Unlock()
		if i < 3 {
			now = now.Add(100 * time.Millisecond)
			continue
		}
		for range 500 { // 5,000 spoofs a second
			spoof++
			now = now.Add(200 * time.Microsecond)
			tbl.get(netip.AddrFrom4([4]byte{172, byte(spoof >> 16), byte(spoof >> 8), byte(spoof)}), 0, now)
		}
	}
	var got uint64
	for _, st := range tbl.snapshot() {
		if st.Agent == real {
			got = st.Datagrams
		}
	}
	if _, evicted := tbl.size(); got != 63 || evicted < 29_000 {
		t.Errorf("the real agent's datagrams: %d of 63, with %d agents evicted", got, evicted)
	}
}
