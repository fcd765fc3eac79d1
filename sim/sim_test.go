package sim

import (
	"bytes"
	"crypto/sha256"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
)

// flowKey is a sampled packet's 5-tuple.
type flowKey struct {
	src, dst netip.Addr
	proto    uint8
	sp, dp   uint16
}

// observed is one decoded flow sample.
type observed struct {
	agent    netip.Addr
	source   uint32
	in, out  uint32
	ttl      uint8
	rate     uint32
	pool     uint32
	drops    uint32
	sequence uint32
}

// collector decodes everything a simulation sends and fails on any error.
type collector struct {
	t         *testing.T
	dec       decode.Decoder
	datagrams int
	flows     map[flowKey][]observed
	counters  map[netip.Addr]map[uint32]decode.GenericInterface
	hosts     map[netip.Addr]string
	lastSeq   map[netip.Addr]uint32
}

func newCollector(t *testing.T) *collector {
	return &collector{t: t, flows: map[flowKey][]observed{},
		counters: map[netip.Addr]map[uint32]decode.GenericInterface{},
		hosts:    map[netip.Addr]string{}, lastSeq: map[netip.Addr]uint32{}}
}

func (c *collector) send(b []byte) {
	c.t.Helper()
	if len(b) > 1400 {
		c.t.Errorf("datagram of %d bytes, over the 1400 limit", len(b))
	}
	d, err := c.dec.Decode(b, c)
	if err != nil {
		c.t.Fatalf("datagram %d does not decode: %v", c.datagrams, err)
	}
	if want := c.lastSeq[d.Agent] + 1; d.Sequence != want {
		c.t.Errorf("agent %v sequence %d, want %d", d.Agent, d.Sequence, want)
	}
	c.lastSeq[d.Agent] = d.Sequence
	c.datagrams++
}

func (c *collector) Flow(d *decode.Datagram, s *decode.FlowSample) {
	p := &s.RawHeader.Packet
	k := flowKey{p.Src, p.Dst, p.Protocol, p.SrcPort, p.DstPort}
	c.flows[k] = append(c.flows[k], observed{agent: d.Agent, source: s.Source.Index, in: s.Input.Value,
		out: s.Output.Value, ttl: p.TTL, rate: s.SamplingRate, pool: s.SamplePool, drops: s.Drops, sequence: s.Sequence})
}

func (c *collector) Counter(d *decode.Datagram, s *decode.CounterSample) {
	if s.Records&decode.HasGenericInterface != 0 {
		if c.counters[d.Agent] == nil {
			c.counters[d.Agent] = map[uint32]decode.GenericInterface{}
		}
		c.counters[d.Agent][s.Generic.IfIndex] = s.Generic
	}
	if s.Records&decode.HasHostDescription != 0 {
		c.hosts[d.Agent] = string(s.HostDescription.Hostname)
	}
}

func run(t *testing.T, cfg Config, d time.Duration) (*Sim, *collector) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t)
	s.RunFor(d, c.send)
	return s, c
}

var elephantScenario = Config{Seed: 7, ServerAgents: true, IPv6: true, ElephantEvery: 20 * time.Second,
	Collision: true, ChurnEvery: 15 * time.Second}

func TestSameSeedSameDatagrams(t *testing.T) {
	digest := func(seed uint64) ([32]byte, int) {
		cfg := elephantScenario
		cfg.Seed = seed
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		n := 0
		s.RunFor(30*time.Second, func(b []byte) { all.Write(b); n++ })
		return sha256.Sum256(all.Bytes()), n
	}
	a, n := digest(7)
	b, _ := digest(7)
	c, _ := digest(8)
	if n < 100 {
		t.Fatalf("only %d datagrams in 30 s", n)
	}
	if a != b {
		t.Error("seed 7 gave different datagrams on two runs")
	}
	if a == c {
		t.Error("seeds 7 and 8 gave the same datagrams")
	}
}

// Every datagram decodes (checked in send), sequence numbers run on, and
// every sample sits where the true path says: right agent, ports and TTL.
func TestSamplesFollowTheTruePath(t *testing.T) {
	s, c := run(t, elephantScenario, 60*time.Second)
	truth := s.Truth()
	agents := map[string]netip.Addr{}
	for _, n := range truth.Nodes {
		agents[n.Name] = n.Agent
	}
	checked := 0
	for _, f := range truth.Flows {
		byAgent := map[netip.Addr]TruthHop{}
		for i, h := range f.Hops {
			byAgent[agents[h.Node]] = h
			// TTL: 64 leaves the server, then one less after each routed hop.
			want := uint8(64)
			if i > 1 {
				want = f.Hops[i-1].TTL - 1
			}
			if h.TTL != want {
				t.Fatalf("flow %d hop %d (%s) TTL %d, want %d", f.ID, i, h.Node, h.TTL, want)
			}
		}
		for _, o := range c.flows[flowKey{f.Src, f.Dst, f.Proto, f.SrcPort, f.DstPort}] {
			h, ok := byAgent[o.agent]
			if !ok {
				t.Fatalf("flow %d sampled at %v, which is not on its path", f.ID, o.agent)
			}
			if o.ttl != h.TTL || o.in != h.InIfIndex || o.out != h.OutIfIndex {
				t.Fatalf("flow %d at %s: ttl %d in %d out %d; truth ttl %d in %d out %d",
					f.ID, h.Node, o.ttl, o.in, o.out, h.TTL, h.InIfIndex, h.OutIfIndex)
			}
			checked++
		}
	}
	t.Logf("%d samples checked against %d true flows", checked, len(truth.Flows))
	if checked < 1000 {
		t.Fatalf("only %d samples checked against the truth", checked)
	}
	for name, a := range agents {
		if c.hosts[a] != name {
			t.Errorf("agent %v describes itself as %q, want %q", a, c.hosts[a], name)
		}
	}
}

// Samples × N estimate the true packet count within sampling error:
// ±196/√n % at 95 % for n samples.
func TestSampledCountsAgreeWithTruth(t *testing.T) {
	s, c := run(t, elephantScenario, 60*time.Second)
	truth := s.Truth()
	agentName := map[netip.Addr]string{}
	for _, n := range truth.Nodes {
		agentName[n.Agent] = n.Name
	}
	elephants := 0
	perAgentTrue := map[string]float64{}
	perAgentSampled := map[string]float64{}
	for _, f := range truth.Flows {
		obs := c.flows[flowKey{f.Src, f.Dst, f.Proto, f.SrcPort, f.DstPort}]
		for _, h := range f.Hops {
			n := 0
			for _, o := range obs {
				if agentName[o.agent] == h.Node {
					n++
				}
			}
			if uint64(n) != h.Samples {
				t.Fatalf("flow %d at %s: truth says %d samples, %d arrived", f.ID, h.Node, h.Samples, n)
			}
			perAgentTrue[h.Node] += float64(f.Packets)
			perAgentSampled[h.Node] += float64(n)
			if f.Elephant {
				within(t, f.ID, h.Node, float64(n), float64(f.Packets), float64(s.SamplingRate()))
			}
		}
		if f.Elephant {
			elephants++
		}
	}
	if elephants < 3 {
		t.Fatalf("%d elephants in 60 s, want at least 3 (one every 20 s, plus a collision twin)", elephants)
	}
	for node, pkts := range perAgentTrue {
		within(t, 0, node, perAgentSampled[node], pkts, float64(s.SamplingRate()))
	}
}

func within(t *testing.T, flow int, node string, samples, packets, rate float64) {
	t.Helper()
	if samples < 20 {
		return
	}
	est := samples * rate
	errPct := 100 * math.Abs(est-packets) / packets
	if bound := 196 / math.Sqrt(samples); errPct > bound {
		t.Errorf("flow %d at %s: %v samples × %v = %v, truth %v packets: off by %.1f%%, bound %.1f%%",
			flow, node, samples, rate, est, packets, errPct, bound)
	}
}

func TestECMPSpreadsFlowsAndKeepsEachOnOnePath(t *testing.T) {
	s, err := New(Config{Seed: 3, Mice: 400})
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string]int{}
	for _, f := range s.flows {
		if len(f.Hops) < 5 {
			continue // same leaf
		}
		spine := f.Hops[2].Node
		uses[spine.Name]++
		again := &Flow{Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort}
		if s.ecmp(f.Hops[1].Node, f.Hops[3].Node, again) != spine {
			t.Fatalf("flow %d hashed to two spines", f.ID)
		}
	}
	total := uses["spine01"] + uses["spine02"]
	if total < 300 || uses["spine01"] < total*4/10 || uses["spine02"] < total*4/10 {
		t.Errorf("ECMP spread %v over %d cross-leaf flows, want each spine near half", uses, total)
	}
}

func TestCollisionPutsTwoElephantsOnOneUplink(t *testing.T) {
	s, _ := run(t, Config{Seed: 11, Mice: -1, ElephantEvery: time.Minute, Collision: true}, 5*time.Second)
	var ups []string
	var srcs []netip.Addr
	for _, f := range s.Truth().Flows {
		if f.Elephant {
			ups = append(ups, f.Hops[1].Node+":"+f.Hops[1].Out)
			srcs = append(srcs, f.Src)
		}
	}
	if len(ups) != 2 || ups[0] != ups[1] || srcs[0] == srcs[1] {
		t.Fatalf("want two elephants from two containers on one uplink, got %v from %v", ups, srcs)
	}
}

func TestChurnWithdrawsAndAnnounces(t *testing.T) {
	s, err := New(Config{Seed: 5, ChurnEvery: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var changes []RouteChange
	s.OnRouteChange(func(rc RouteChange) { changes = append(changes, rc) })
	c := newCollector(t)
	s.RunFor(25*time.Second, c.send)
	if len(changes) != 4 || !changes[0].Withdraw || changes[1].Withdraw || !changes[2].Withdraw || changes[3].Withdraw {
		t.Fatalf("want withdraw, announce twice in 25 s, got %d changes", len(changes))
	}
	gone := changes[0].Container
	if gone.Alive || gone.Destroyed != 10*time.Second {
		t.Errorf("destroyed container %s: alive %v, destroyed at %v", gone.Name, gone.Alive, gone.Destroyed)
	}
	if len(s.Containers()) != 12 {
		t.Errorf("%d containers alive, want 12", len(s.Containers()))
	}
	for _, f := range s.Truth().Flows {
		if (f.Src == gone.Addr || f.Dst == gone.Addr) && f.End > 10 {
			t.Errorf("flow %d to destroyed %s runs until %v s", f.ID, gone.Addr, f.End)
		}
	}
}

func TestOverloadedAgentCountsDrops(t *testing.T) {
	cfg := Config{Seed: 9, Mice: -1, Elephants: []Elephant{{Src: netip.MustParseAddr("172.16.1.11"),
		Dst: netip.MustParseAddr("172.16.1.42"), Rate: 8e9, Duration: time.Minute}}, MaxSamplesPerSecond: 100}
	s, c := run(t, cfg, 10*time.Second)
	f := s.Truth().Flows[0]
	obs := c.flows[flowKey{f.Src, f.Dst, f.Proto, f.SrcPort, f.DstPort}]
	last := obs[len(obs)-1]
	if last.drops == 0 {
		t.Fatal("8 Gbit/s sampled 1 in 1000 under a 100 samples/s cap, but no drops reported")
	}
	// sample_pool counts every packet: samples and drops together still
	// estimate the truth.
	var leaf01 []observed
	for _, o := range obs {
		if o.agent == netip.MustParseAddr("10.255.1.1") {
			leaf01 = append(leaf01, o)
		}
	}
	l := leaf01[len(leaf01)-1]
	if got := float64(len(leaf01)) + float64(l.drops); math.Abs(got*1000-float64(l.pool))/float64(l.pool) > 0.05 {
		t.Errorf("leaf01: %d samples + %d drops, pool %d", len(leaf01), l.drops, l.pool)
	}
	if p := float64(l.pool); p > float64(f.Packets) || p < 0.99*float64(f.Packets) {
		t.Errorf("leaf01 sample_pool %v, truth %d packets", p, f.Packets)
	}
	if s.Truth().Flows[0].Hops[1].Samples > 10*100+100 {
		t.Errorf("leaf01 took %d samples in 10 s under a 100/s cap", s.Truth().Flows[0].Hops[1].Samples)
	}
}

func TestCountersMatchTraffic(t *testing.T) {
	cfg := Config{Seed: 4, Mice: -1, CounterInterval: time.Second, Elephants: []Elephant{{
		Src: netip.MustParseAddr("172.16.1.12"), Dst: netip.MustParseAddr("172.16.1.33"), Rate: 1e9, Duration: time.Hour}}}
	s, c := run(t, cfg, 10*time.Second+500*time.Millisecond)
	leaf01 := c.counters[netip.MustParseAddr("10.255.1.1")]
	swp1 := leaf01[1]
	if swp1.IfSpeed != 10_000_000_000 || swp1.IfStatus != 3 {
		t.Errorf("leaf01 swp1 speed %d status %d", swp1.IfSpeed, swp1.IfStatus)
	}
	// Polled at 10 s; the elephant brings 1 Gbit/s in from server01.
	f := s.Truth().Flows[0]
	if want := float64(f.Bytes+f.Packets*14) * 10 / 10.5; math.Abs(float64(swp1.InOctets)-want)/want > 0.06 {
		t.Errorf("leaf01 swp1 in octets %d, want about %.0f", swp1.InOctets, want)
	}
	if len(leaf01) != 3 {
		t.Errorf("leaf01 reported %d ports, want 3 (swp1, swp51, swp52)", len(leaf01))
	}
}

func TestBadConfigIsRejected(t *testing.T) {
	for _, cfg := range []Config{
		{Topology: Topology{Spines: 100}},
		{Topology: Topology{Leaves: 30, ServersPerLeaf: 10}},
		{Elephants: []Elephant{{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("172.16.1.11")}}},
		{Elephants: []Elephant{{Src: netip.MustParseAddr("172.16.1.11"), Dst: netip.MustParseAddr("172.16.1.12")}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// A failed leaf-spine link moves exactly the flows it carried onto a spine
// whose links are up, records each move, and moves them back when it heals
// only if their hash prefers the healed spine. Three spines, so that a hash
// over the spines still up (modulo their count) would move others too.
func TestLinkFailureMovesOnlyTheFlowsOnIt(t *testing.T) {
	s, err := New(Config{Topology: Topology{Spines: 3}, Seed: 5, Mice: 400, LinkFailures: true,
		LinkFailEvery: 3 * time.Second, LinkDownFor: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 { // 20 s: several failures, each 2-6 s long
		before := map[*Flow]*Node{}
		for _, f := range s.flows {
			if len(f.Hops) == 5 {
				before[f] = f.Hops[2].Node
			}
		}
		events := len(s.linkEvents)
		s.Step(func([]byte) {})
		changed := map[link]bool{} // the links that went down or up in this step
		for _, ev := range s.linkEvents[events:] {
			changed[link{s.fab.Node(ev.Leaf), s.fab.Node(ev.Spine)}] = true
		}
		// A flow may move only off a link that went down, or onto one that
		// came up: one of its leaves, and its old or new spine.
		touched := func(f *Flow, spine *Node) bool {
			return changed[link{f.Hops[1].Node, spine}] || changed[link{f.Hops[3].Node, spine}]
		}
		for _, f := range s.flows {
			if len(f.Hops) != 5 {
				continue
			}
			if old, ok := before[f]; ok && old != f.Hops[2].Node && !touched(f, old) && !touched(f, f.Hops[2].Node) {
				t.Fatalf("at %v flow %d moved %s -> %s, though no link it left or took changed", s.now, f.ID, old.Name, f.Hops[2].Node.Name)
			}
			spine := f.Hops[2].Node
			if s.isDown(f.Hops[1].Node, spine) || s.isDown(f.Hops[3].Node, spine) {
				t.Fatalf("at %v flow %d crosses a link that is down", s.now, f.ID)
			}
			if old, ok := before[f]; ok && old != spine {
				if n := len(f.Changes); n == 0 || f.Changes[n-1].From != old.Name || f.Changes[n-1].To != spine.Name || f.Changes[n-1].At != s.now-s.cfg.Tick {
					t.Fatalf("flow %d moved %s -> %s at %v, recorded %+v", f.ID, old.Name, spine.Name, s.now, f.Changes)
				}
			}
		}
	}
	downs, ups, moved := 0, 0, 0
	for _, ev := range s.linkEvents {
		if ev.Up {
			ups++
		} else {
			downs++
		}
		moved += ev.Moved
	}
	if downs < 3 || ups < 2 || moved == 0 || s.changes != moved {
		t.Errorf("%d links down, %d up, %d moves (%d recorded): want several of each", downs, ups, moved, s.changes)
	}
}

// An agent with an export delay holds a datagram that is not full until the
// delay has passed since its first sample (to the tick).
func TestExportDelayHoldsDatagrams(t *testing.T) {
	s, err := New(Config{Seed: 2, Mice: 200, ExportDelay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	last := map[[4]byte]time.Duration{}
	var gaps, short int
	for range 300 {
		s.Step(func(b []byte) {
			agent := [4]byte(b[8:12])
			if at, ok := last[agent]; ok {
				gaps++
				if s.now-at < time.Second-s.cfg.Tick && len(b) < s.cfg.MaxDatagram-300 {
					short++ // a datagram with room to spare, sent early
				}
			}
			last[agent] = s.now
		})
	}
	if gaps < 20 || short > 0 {
		t.Errorf("%d datagrams followed another from the same agent; %d of them half full and within 1 s", gaps, short)
	}
}

// The mix straddles the threshold: rates from a quarter of it to four
// times, about as many under as over, each marked in the truth.
func TestMixStraddlesTheThreshold(t *testing.T) {
	s, err := New(Config{Seed: 8, Mice: -1, MixEvery: time.Second, MixThreshold: 100e6, ElephantDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.RunFor(200*time.Second, func([]byte) {})
	under, over := 0, 0
	for _, f := range s.TruthOf(TruthFilter{Elephants: true}).Flows {
		if !f.Mix {
			continue
		}
		times := f.Rate * 8 / 100e6
		if times < 0.25 || times > 4 || f.Elephant {
			t.Fatalf("mix flow %d at %.2fx (elephant %v)", f.ID, times, f.Elephant)
		}
		if times < 1 {
			under++
		} else {
			over++
		}
	}
	if under+over < 150 || under < (under+over)*4/10 || over < (under+over)*4/10 {
		t.Errorf("%d mix flows under the threshold, %d over: want about as many of each", under, over)
	}
}
