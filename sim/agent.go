package sim

import (
	"math/rand/v2"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// agent is a node's sFlow agent: its samplers, port counters and the
// datagram it is filling.
type agent struct {
	node         *Node
	boot         time.Duration // uptime when the simulation started
	seq          uint32        // datagram sequence number
	samplers     map[uint32]*sampler
	ports        map[uint32]*portCounters
	nextCounters time.Duration
	budget       float64       // samples it may still take this tick, under MaxSamplesPerSecond
	body         []byte        // encoded samples waiting for a datagram
	n            int           // how many
	opened       time.Duration // when the first of them was taken
}

// sampler takes 1 in N packets on one data source, with a random skip
// between samples as agents do, so periodic traffic cannot alias with N.
type sampler struct {
	agent  *agent
	source uint32 // ifIndex
	rate   uint32
	skip   uint64 // packets until the next sample
	pool   uint32 // packets seen, sampled or not
	drops  uint32 // samples lost for want of resources
	seq    uint32
}

func (a *agent) sampler(ifIndex, rate uint32, rng *rand.Rand) *sampler {
	if sp := a.samplers[ifIndex]; sp != nil {
		return sp
	}
	sp := &sampler{agent: a, source: ifIndex, rate: rate}
	sp.skip = sp.nextSkip(rng)
	a.samplers[ifIndex] = sp
	return sp
}

// nextSkip is uniform on [1, 2N-1]: mean N.
func (sp *sampler) nextSkip(rng *rand.Rand) uint64 {
	if sp.rate <= 1 {
		return 1
	}
	return 1 + rng.Uint64N(2*uint64(sp.rate)-1)
}

type portCounters struct {
	port                *Port
	inOctets, outOctets uint64
	inPkts, outPkts     uint32
	seq                 uint32
}

// offer passes pkts packets of a flow through the sampler.
func (sp *sampler) offer(s *Sim, f *Flow, h *Hop, pkts uint64) {
	for pkts >= sp.skip {
		pkts -= sp.skip
		sp.pool += uint32(sp.skip)
		sp.skip = sp.nextSkip(s.rng)
		if s.cfg.MaxSamplesPerSecond > 0 {
			if sp.agent.budget < 1 {
				sp.drops++
				continue
			}
			sp.agent.budget--
		}
		h.Samples++
		sp.seq++
		s.emitFlowSample(sp, f, h)
	}
	sp.skip -= pkts
	sp.pool += uint32(pkts)
}

const headerBytes = 128 // what a switch copies of each sampled packet

func (s *Sim) emitFlowSample(sp *sampler, f *Flow, h *Hop) {
	payload := f.PacketSize - 40 // IPv4 + TCP headers, near enough for padding
	if f.Src.Is6() {
		payload -= 20
	}
	frame := sflowtest.Frame{SrcMAC: h.srcMAC, DstMAC: h.dstMAC, Src: f.Src, Dst: f.Dst, Protocol: f.Proto,
		TTL: h.TTL, SrcPort: f.SrcPort, DstPort: f.DstPort, IPLength: uint16(f.PacketSize),
		Pad: min(max(payload, 0), headerBytes)}
	if f.Proto == sflowtest.ProtoTCP {
		frame.TCPFlags = 0x18 // PSH ACK
		if f.PacketSize <= 60 {
			frame.TCPFlags = 0x10
		}
	}
	s.scratch = frame.Append(s.scratch[:0])
	hdr := s.scratch[:min(len(s.scratch), headerBytes)]
	sample := sflowtest.FlowSample{
		Sequence: sp.seq, Source: decode.DataSource{Index: sp.source},
		SamplingRate: sp.rate, SamplePool: sp.pool, Drops: sp.drops,
		Input:  decode.Port{Value: ifIndex(h.In)},
		Output: decode.Port{Value: ifIndex(h.Out)},
		Records: []sflowtest.Record{
			&sflowtest.RawHeader{FrameLength: uint32(f.PacketSize + 14 + 4), Stripped: 4, Header: hdr},
			&sflowtest.ExtendedSwitch{SrcVLAN: 1, DstVLAN: 1},
		},
	}
	s.add(sp.agent, &sample)
}

// pollCounters emits one counter sample per port, and the host description.
func (s *Sim) pollCounters(a *agent) {
	for _, p := range a.node.Ports {
		c := a.ports[p.IfIndex]
		c.seq++
		s.add(a, &sflowtest.CounterSample{Sequence: c.seq, Source: decode.DataSource{Index: p.IfIndex},
			Records: []sflowtest.Record{
				&sflowtest.GenericInterface{IfIndex: p.IfIndex, IfType: 6, IfSpeed: p.Speed, IfDirection: 1, IfStatus: 3,
					InOctets: c.inOctets, InUcastPkts: c.inPkts, OutOctets: c.outOctets, OutUcastPkts: c.outPkts},
				&sflowtest.EthernetCounters{},
				sflowtest.PortName(p.Name),
			}})
	}
	host := []sflowtest.Record{&sflowtest.HostDescription{Hostname: a.node.Name, MachineType: 3, OSName: 2, OSRelease: "6.1.0-28-amd64"}}
	if a.node.Kind == Server {
		host = append(host, s.hostCounters(a)...)
	}
	s.add(a, &sflowtest.CounterSample{Sequence: uint32(s.now / s.cfg.CounterInterval),
		Source:  decode.DataSource{Class: 2, Index: 1}, // the physical entity, as hsflowd reports it
		Records: host})
}

// hostCounters are a server's host records, as hsflowd sends them: 16 CPUs
// busy 20-35 % (more on higher-numbered servers), the memory and disk of a
// container host, and its NICs' traffic from the simulated port counters.
func (s *Sim) hostCounters(a *agent) []sflowtest.Record {
	up := a.boot + s.now
	busy := 0.20 + 0.05*float64((a.node.Agent.As16()[15]-1)%4) // the share of CPU time not idle
	cpuMs := float64(up.Milliseconds()) * 16
	// Cumulative counters wrap at 32 bits, as an agent's do.
	w := func(v float64) uint32 { return uint32(uint64(v)) }
	cpu := &sflowtest.HostCPU{LoadOne: float32(16 * busy), LoadFive: float32(16 * busy), LoadFifteen: float32(16 * busy),
		ProcRun: uint32(16 * busy), ProcTotal: 900, CPUNum: 16, CPUSpeed: 2900, Uptime: uint32(up.Seconds()),
		User: w(cpuMs * busy * 0.7), System: w(cpuMs * busy * 0.25), SoftIntr: w(cpuMs * busy * 0.05),
		Idle: w(cpuMs * (1 - busy)), Interrupts: w(up.Seconds() * 50000), Contexts: w(up.Seconds() * 120000)}
	var net sflowtest.HostNetIO
	for _, c := range a.ports {
		net.BytesIn += c.inOctets
		net.BytesOut += c.outOctets
		net.PktsIn += c.inPkts
		net.PktsOut += c.outPkts
	}
	const gib = 1 << 30
	sec := uint64(up.Seconds())
	return []sflowtest.Record{cpu,
		&sflowtest.HostMemory{Total: 128 * gib, Free: 40 * gib, Shared: gib, Buffers: 2 * gib, Cached: 30 * gib,
			SwapTotal: 8 * gib, SwapFree: 8 * gib, PageIn: w(float64(sec * 100)), PageOut: w(float64(sec * 300))},
		&sflowtest.HostDiskIO{Total: 2048 * gib, Free: 1200 * gib, PartMaxUsed: 4140, Reads: w(float64(sec * 200)),
			BytesRead: sec * 8 << 20, ReadTime: w(float64(sec * 40)), Writes: w(float64(sec * 500)), BytesWritten: sec * 20 << 20,
			WriteTime: w(float64(sec * 90))},
		&net}
}

const datagramHeader = 28 // version, IPv4 agent, sub-agent, sequence, uptime, count

// add encodes a sample into the agent's datagram, sealing the datagram first
// when the sample would not fit.
func (s *Sim) add(a *agent, smp sflowtest.Sample) {
	mark := len(a.body)
	a.body = sflowtest.AppendSample(a.body, smp)
	if datagramHeader+len(a.body) > s.cfg.MaxDatagram && a.n > 0 {
		s.seal(a, mark)
	}
	if a.n == 0 {
		a.opened = s.now
	}
	a.n++
}

// seal makes a datagram of the agent's first upto bytes of samples, keeps the
// rest for the next one, and queues it for the end of the step.
func (s *Sim) seal(a *agent, upto int) {
	a.seq++
	d := sflowtest.Datagram{Agent: a.node.Agent, Sequence: a.seq,
		Uptime: uint32((a.boot + s.now) / time.Millisecond)}
	var buf []byte
	if n := len(s.spare); n > 0 {
		buf, s.spare = s.spare[n-1][:0], s.spare[:n-1]
	}
	buf = d.AppendHeader(buf, a.n)
	buf = append(buf, a.body[:upto]...)
	s.outbox = append(s.outbox, buf)
	a.body = append(a.body[:0], a.body[upto:]...)
	a.n = 0
}

// sendAll hands the step's datagrams to send and keeps their buffers. A
// datagram that is not full waits until ExportDelay after its first sample,
// as a real agent's export timer holds it.
func (s *Sim) sendAll(send func([]byte)) {
	for _, a := range s.agentOrder {
		if a.n > 0 && s.now-a.opened >= s.cfg.ExportDelay {
			s.seal(a, len(a.body))
		}
	}
	for _, b := range s.outbox {
		send(b)
		s.spare = append(s.spare, b)
	}
	clear(s.outbox)
	s.outbox = s.outbox[:0]
}
