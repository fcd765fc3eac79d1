// Package ingest is fabrictrace's front door. It receives sFlow v5 datagrams
// on UDP in batches (recvmmsg), decodes them with package decode, keeps
// per-agent accounting (datagrams, samples, sequence loss, reordering,
// duplicates, restarts, faults) and hands every sample to a sink.
//
// Memory is bounded: a fixed pool of batches sits between the socket reader
// and the decoding worker, and when the sink falls behind, datagrams are
// dropped and counted rather than queued without end. The agent table is
// capped too, with eviction and a counter.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Config says where and how to listen. Zero fields take the defaults.
type Config struct {
	Addr               string // UDP address; default ":6343"
	Sockets            int    // SO_REUSEPORT sockets, each with its own worker; default 1
	ReadBuffer         int    // SO_RCVBUF to request, in bytes; default 32 MiB
	Batch              int    // datagrams per recvmmsg; default 32
	QueueBatches       int    // batches per socket that may wait for the sink; default 256
	MaxDatagram        int    // largest datagram read whole; default 9216
	MaxAgents          int    // agents tracked; default 10000
	MaxSourcesPerAgent int    // data sources tracked per agent; default 4096
	// Allow, when not empty, lists the sources sFlow is taken from: a
	// datagram from any other address is dropped, before decoding, and
	// counted in Stats.Denied.
	Allow  []netip.Prefix
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = ":6343"
	}
	c.Sockets = max(c.Sockets, 1)
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 32 << 20
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	// At moderate rates a recvmmsg returns one or two datagrams, so the
	// queue must hold many batches to ride out a pause of the sink (a GC,
	// a sweep): 256 batches is 256 datagrams at the least, 8192 at the most.
	// The buffers are allocated once; pages no datagram touched stay unbacked.
	if c.QueueBatches <= 0 {
		c.QueueBatches = 256
	}
	if c.MaxDatagram <= 0 {
		c.MaxDatagram = 9216 // a jumbo frame's payload
	}
	if c.MaxAgents <= 0 {
		c.MaxAgents = 10000
	}
	if c.MaxSourcesPerAgent <= 0 {
		c.MaxSourcesPerAgent = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ErrorKinds names the kinds of decode fault that Stats.Faults counts, in
// order.
var ErrorKinds = [...]string{"version", "address_type", "truncated", "length", "count", "sampling_rate", "other"}

var kindErrors = [...]error{decode.ErrVersion, decode.ErrAddressType, decode.ErrTruncated, decode.ErrLength,
	decode.ErrCount, decode.ErrSamplingRate}

func errorKind(err error) int {
	for i, e := range kindErrors {
		if errors.Is(err, e) {
			return i
		}
	}
	return len(ErrorKinds) - 1
}

// Stats are the listener's totals.
type Stats struct {
	Received      uint64 // datagrams read from the sockets
	Datagrams     uint64 // datagrams decoded
	Bytes         uint64
	Samples       uint64 // samples handed to the sink
	DroppedBehind uint64 // datagrams dropped because the sink fell behind
	Truncated     uint64 // datagrams longer than MaxDatagram, cut by the kernel
	Undecodable   uint64 // datagrams whose header named no agent
	Denied        uint64 // datagrams from sources outside Config.Allow
	Faults        [len(ErrorKinds)]uint64
	Agents        int
	AgentsEvicted uint64
	Kernel        KernelStats
	KernelErr     error // why Kernel could not be read, if it could not
}

// Listener receives sFlow on its sockets. Make one with Listen, run it with
// Serve.
type Listener struct {
	cfg    Config
	conns  []*net.UDPConn
	inodes map[uint64]bool
	agents *agentTable

	received, datagrams, bytes, samples atomic.Uint64
	droppedBehind, truncated            atomic.Uint64
	undecodable                         atomic.Uint64
	denied                              atomic.Uint64
	faults                              [len(ErrorKinds)]atomic.Uint64
}

// portFree refuses a UDP port another process holds. The collector's
// sockets share their port with SO_REUSEPORT, so a second collector would
// bind beside the first and the kernel would split the agents between
// them, silently; a plain bind, without the option, tells.
func portFree(addr string) error {
	probe, err := net.ListenPacket("udp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen for sFlow on udp %s: another process holds the port (another collector?): stop it, or give this one another -sflow address", addr)
	}
	if err == nil {
		probe.Close()
	}
	return nil // any other fault shows when the sockets are opened
}

// Listen opens the sockets and logs where it listens and the receive buffer
// it got, warning when net.core.rmem_max capped it.
func Listen(ctx context.Context, cfg Config) (*Listener, error) {
	cfg.defaults()
	l := &Listener{cfg: cfg, inodes: map[uint64]bool{}, agents: newAgentTable(cfg.MaxAgents, cfg.MaxSourcesPerAgent)}
	addr := cfg.Addr
	if err := portFree(addr); err != nil {
		return nil, err
	}
	effective := 0
	for i := range cfg.Sockets {
		c, eff, err := listenUDP(ctx, addr, cfg.ReadBuffer)
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listen for sFlow on udp %s: %w", cfg.Addr, err)
		}
		if i == 0 {
			addr = c.LocalAddr().String() // later sockets share the port the first one got
			effective = eff
		}
		if ino, err := socketInode(c); err == nil {
			l.inodes[ino] = true
		}
		l.conns = append(l.conns, c)
	}
	cfg.Logger.Info("listening for sFlow", "udp", addr, "sockets", cfg.Sockets,
		"rcvbuf", effective, "rcvbuf_requested", cfg.ReadBuffer)
	// Linux doubles the request for its own overhead and reports the doubled
	// size; less than that means rmem_max capped it.
	if effective < 2*cfg.ReadBuffer {
		rmem, _ := rmemMax()
		cfg.Logger.Warn("sFlow receive buffer capped by net.core.rmem_max; bursts may be dropped",
			"rcvbuf", effective, "rmem_max", rmem,
			"fix", fmt.Sprintf("sysctl -w net.core.rmem_max=%d", cfg.ReadBuffer))
	}
	return l, nil
}

// Addr returns the address the sockets are bound to.
func (l *Listener) Addr() netip.AddrPort {
	return l.conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
}

func (l *Listener) close() {
	for _, c := range l.conns {
		c.Close()
	}
}

// Serve reads, decodes and accounts until ctx ends, calling sink for every
// sample from one goroutine per socket (so with several sockets, sink must be
// safe for concurrent use). It closes the sockets on return.
func (l *Listener) Serve(ctx context.Context, sink decode.Visitor) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-ctx.Done()
		l.close() // unblocks the readers
		return nil
	})
	for _, c := range l.conns {
		pool := l.cfg.QueueBatches + 1
		free := &freeBatches{freed: make(chan struct{}, 1)}
		queue := make(chan *batchReader, pool) // never full: it holds at most the pool
		for range pool {
			b, err := newBatchReader(c, l.cfg.Batch, l.cfg.MaxDatagram)
			if err != nil {
				return err
			}
			free.put(b)
		}
		spare, err := newBatchReader(c, l.cfg.Batch, l.cfg.MaxDatagram)
		if err != nil {
			return err
		}
		g.Go(func() error {
			defer close(queue)
			return l.read(ctx, free, queue, spare)
		})
		g.Go(func() error {
			w := &worker{l: l, acct: accountant{table: l.agents, sink: sink, maxSources: l.cfg.MaxSourcesPerAgent}}
			for b := range queue {
				w.batch(b)
				free.put(b)
			}
			return nil
		})
	}
	return g.Wait()
}

// freeBatches holds the batches the reader may fill, last freed first: a
// batch just decoded is still in cache, so the kernel's copy into it and
// the decoder's reads of it hit. Taken in turn (a FIFO), the whole pool,
// megabytes of buffers, would cycle through the cache.
type freeBatches struct {
	mu    sync.Mutex
	stack []*batchReader
	freed chan struct{} // a batch was put since the reader last looked
}

func (f *freeBatches) put(b *batchReader) {
	f.mu.Lock()
	f.stack = append(f.stack, b)
	f.mu.Unlock()
	select {
	case f.freed <- struct{}{}:
	default:
	}
}

// wait takes a batch, waiting up to d for the worker to free one; nil
// when none was freed in time.
func (f *freeBatches) wait(d time.Duration) *batchReader {
	if b := f.take(); b != nil {
		return b
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-f.freed:
			if b := f.take(); b != nil {
				return b
			}
		case <-t.C:
			return f.take()
		}
	}
}

// take returns the last batch put, or nil when none is free.
func (f *freeBatches) take() *batchReader {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.stack)
	if n == 0 {
		return nil
	}
	b := f.stack[n-1]
	f.stack[n-1] = nil
	f.stack = f.stack[:n-1]
	return b
}

// behindGrace is how long the reader waits for the worker to free a batch
// before it reads one into the spare and drops it: the kernel's socket
// buffer holds what arrives meanwhile, so a pause of the sink shorter than
// this (a GC, a table growing, a burst of new elephants) costs nothing.
const behindGrace = 100 * time.Millisecond

func (l *Listener) read(ctx context.Context, free *freeBatches, queue chan *batchReader, spare *batchReader) error {
	for {
		b := free.wait(behindGrace)
		if b == nil {
			b = spare // the sink is behind: read to keep the socket drained, and drop
		}
		n, err := b.readBatch()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read sFlow: %w", err)
		}
		l.received.Add(uint64(n))
		if b == spare {
			l.droppedBehind.Add(uint64(n))
			continue
		}
		b.count = n
		queue <- b
		// Let the worker run. With one CPU (a pinned collector) a reader
		// that always finds data would otherwise keep it for a whole
		// preemption slice, and the queue would overflow while the CPU idles.
		runtime.Gosched()
	}
}

// Stats returns the listener's totals, with the kernel's drop counters.
func (l *Listener) Stats() Stats {
	s := Stats{
		Received: l.received.Load(), Datagrams: l.datagrams.Load(), Bytes: l.bytes.Load(), Samples: l.samples.Load(),
		DroppedBehind: l.droppedBehind.Load(), Truncated: l.truncated.Load(), Undecodable: l.undecodable.Load(),
		Denied: l.denied.Load(),
	}
	for i := range s.Faults {
		s.Faults[i] = l.faults[i].Load()
	}
	s.Agents, s.AgentsEvicted = l.agents.size()
	s.Kernel, s.KernelErr = readKernelStats(l.inodes)
	return s
}

// Agents returns a snapshot of every agent's accounting, sorted by address.
func (l *Listener) Agents() []AgentStats { return l.agents.snapshot() }

// worker decodes the batches of one socket.
type worker struct {
	l    *Listener
	dec  decode.Decoder
	acct accountant
}

func (w *worker) batch(b *batchReader) {
	now := time.Now() // one clock read per batch, not per datagram
	for i := range b.count {
		data, src, truncated := b.datagram(i)
		w.datagram(data, src, truncated, now)
	}
}

func (w *worker) datagram(b []byte, src netip.AddrPort, truncated bool, now time.Time) {
	l := w.l
	if len(l.cfg.Allow) > 0 && !allowed(l.cfg.Allow, src.Addr().Unmap()) {
		l.denied.Add(1)
		return
	}
	l.datagrams.Add(1)
	l.bytes.Add(uint64(len(b)))
	if truncated {
		l.truncated.Add(1)
	}
	v := &w.acct
	v.start(src, len(b), now)
	dg, err := w.dec.Decode(b, v)
	if err != nil {
		l.faults[errorKind(err)].Add(1)
	}
	a := v.agent
	if a == nil {
		if !dg.Agent.IsValid() {
			l.undecodable.Add(1)
			return
		}
		a = v.begin(dg)
	}
	l.samples.Add(uint64(dg.FlowSamples + dg.CounterSamples + dg.DiscardSamples))
	st := &a.stats
	st.UnknownSamples += uint64(dg.UnknownSamples)
	st.UnknownRecords += uint64(dg.UnknownRecords)
	st.SamplesFaulted += uint64(dg.Faults)
	if err != nil || truncated {
		st.Malformed++
		if err != nil {
			st.LastError = err.Error()
		} else {
			st.LastError = fmt.Sprintf("datagram from %s longer than %d bytes, cut short", src, l.cfg.MaxDatagram)
		}
	}
	a.mu.Unlock()
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// accountant sits between the decoder and the sink: it accounts each sample
// to its agent before passing it on. It locks the agent on the first sample
// of a datagram; the worker unlocks it when the datagram is done.
type accountant struct {
	table      *agentTable
	sink       decode.Visitor
	maxSources int

	agent   *agentState
	src     netip.AddrPort
	size    int
	now     time.Time
	nowNano int64
}

func (v *accountant) start(src netip.AddrPort, size int, now time.Time) {
	v.agent, v.src, v.size, v.now, v.nowNano = nil, src, size, now, now.UnixNano()
}

func (v *accountant) begin(d *decode.Datagram) *agentState {
	a := v.table.get(d.Agent, d.SubAgentID, v.now)
	a.mu.Lock()
	a.datagram(d, v.src, v.size, v.now)
	v.agent = a
	return a
}

func (v *accountant) Flow(d *decode.Datagram, s *decode.FlowSample) {
	v.account(d, s)
	v.sink.Flow(d, s)
}

// FlowBatch accounts a batch of flow samples, then passes it on whole.
func (v *accountant) FlowBatch(d *decode.Datagram, samples []decode.FlowSample) {
	for i := range samples {
		v.account(d, &samples[i])
	}
	decode.DeliverFlows(v.sink, d, samples)
}

func (v *accountant) account(d *decode.Datagram, s *decode.FlowSample) {
	if v.agent == nil {
		v.begin(d)
	}
	kind := uint8(0)
	if s.Format == decode.FormatDiscardedPacket {
		kind = 2
	}
	v.agent.sample(kind, s.Source, s.Sequence, s.Drops, v.nowNano, v.maxSources)
}

func (v *accountant) Counter(d *decode.Datagram, s *decode.CounterSample) {
	if v.agent == nil {
		v.begin(d)
	}
	if !s.Continued { // a continuation repeats its sample's sequence number
		v.agent.sample(1, s.Source, s.Sequence, 0, v.nowNano, v.maxSources)
	}
	v.sink.Counter(d, s)
}
