package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// Config sets up a simulation. Zero fields take the defaults in brackets.
type Config struct {
	Topology Topology
	Seed     uint64
	Tick     time.Duration // simulated time per step [100ms]

	SamplingRate        uint32        // 1-in-N on switch ports [1000]
	ServerAgents        bool          // servers export sFlow too, as hsflowd would
	ServerSamplingRate  uint32        // [SamplingRate]
	CounterInterval     time.Duration // counter polling per agent [10s]
	MaxSamplesPerSecond int           // per agent; beyond it samples are dropped and counted [no limit]
	MaxDatagram         int           // bytes of sFlow per datagram [1400]

	Mice int  // mean number of concurrent background flows [100]; negative for none
	IPv6 bool // a share of container traffic uses the IPv6 addresses

	Elephants        []Elephant    // scheduled elephants
	ElephantEvery    time.Duration // start a random elephant this often [never]
	ElephantRate     float64       // bits per second of random elephants [400e6]
	ElephantDuration time.Duration // of random elephants [30s]
	Collision        bool          // give the first random elephant a twin hashed onto the same uplink
	// MixEvery starts a flow this often whose rate straddles MixThreshold
	// (bits per second [100e6]): log-uniform from a quarter of it to four
	// times, for ElephantDuration; its truth says mix and its rate.
	MixEvery     time.Duration
	MixThreshold float64
	ChurnEvery   time.Duration // destroy a container and create another this often [never]

	// ExportDelay is how long an agent holds a datagram that is not full,
	// as Open vSwitch (about 1 s) and pmacctd (longer) do [0: sent every tick].
	ExportDelay time.Duration
	// LinkFailures takes leaf-spine links down and up: one fails every
	// LinkFailEvery (uniform in [1, 2]×), for LinkDownFor (uniform in [1, 3]×),
	// and routing moves the flows it carried onto the surviving spines.
	LinkFailures  bool
	LinkFailEvery time.Duration // [30s]
	LinkDownFor   time.Duration // [10s]

	MaxEndedFlows int // ended flows kept for the ground truth [100000]
}

func (c Config) withDefaults() Config {
	c.Topology = c.Topology.withDefaults()
	if c.Tick == 0 {
		c.Tick = 100 * time.Millisecond
	}
	if c.SamplingRate == 0 {
		c.SamplingRate = 1000
	}
	if c.ServerSamplingRate == 0 {
		c.ServerSamplingRate = c.SamplingRate
	}
	if c.CounterInterval == 0 {
		c.CounterInterval = 10 * time.Second
	}
	if c.MaxDatagram == 0 {
		c.MaxDatagram = 1400
	}
	if c.Mice == 0 {
		c.Mice = 100
	}
	if c.ElephantRate == 0 {
		c.ElephantRate = 400e6
	}
	if c.ElephantDuration == 0 {
		c.ElephantDuration = 30 * time.Second
	}
	if c.MixThreshold == 0 {
		c.MixThreshold = 100e6
	}
	if c.MaxEndedFlows == 0 {
		c.MaxEndedFlows = 100_000
	}
	if c.LinkFailEvery == 0 {
		c.LinkFailEvery = 30 * time.Second
	}
	if c.LinkDownFor == 0 {
		c.LinkDownFor = 10 * time.Second
	}
	return c
}

// Elephant is a big flow to start at a given time. Src and Dst are container
// or server addresses of the fabric.
type Elephant struct {
	Src, Dst         netip.Addr
	Proto            uint8  // [TCP]
	SrcPort, DstPort uint16 // [random ephemeral, 5201]
	Rate             float64
	Start, Duration  time.Duration
}

// Container is a container with its own routable addresses, on a server.
type Container struct {
	Name      string
	Server    *Node
	Addr      netip.Addr
	Addr6     netip.Addr
	Created   time.Duration
	Destroyed time.Duration // valid when !Alive
	Alive     bool
	slot      int
}

// RouteChange is a container route a leaf announces or withdraws.
type RouteChange struct {
	Leaf      *Node
	Container *Container
	Withdraw  bool
}

// Sim is a running fabric. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config
	fab *Fabric
	rng *rand.Rand

	mu         sync.Mutex
	now        time.Duration
	containers []*Container
	flows      []*Flow // active
	ended      []*Flow
	endedDrop  uint64
	nextID     int
	agents     map[*Node]*agent
	salt       map[*Node]uint32 // each leaf's ECMP hash salt; Rehash changes it
	agentOrder []*agent
	schedule   []Elephant
	collided   bool
	triggers   int
	miceDue    float64
	nextMix    time.Duration
	onRoute    []func(RouteChange)
	scratch    []byte                 // a sampled frame being written
	down       map[link]time.Duration // leaf-spine links down, and when each comes back
	nextFail   time.Duration
	linkEvents []LinkEvent
	changes    int      // path changes recorded, over all flows
	outbox     [][]byte // datagrams sealed in this step
	spare      [][]byte // their buffers, for reuse
}

// New builds the fabric and its starting traffic. It sends nothing yet.
func New(cfg Config) (*Sim, error) {
	cfg = cfg.withDefaults()
	fab, err := Build(cfg.Topology)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, fab: fab, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed5eed)),
		agents: map[*Node]*agent{}, salt: map[*Node]uint32{}, down: map[link]time.Duration{}}
	// The first failure comes early, so that a demo shows one in its first minute.
	s.nextFail = cfg.LinkFailEvery/3 + time.Duration(s.rng.Int64N(int64(cfg.LinkFailEvery/3)))
	for _, n := range fab.Nodes() {
		if n.Kind == Server && !cfg.ServerAgents {
			continue
		}
		a := &agent{node: n, boot: time.Hour + time.Duration(s.rng.Int64N(int64(30*24*time.Hour))),
			samplers: map[uint32]*sampler{}, ports: map[uint32]*portCounters{}}
		// Agents send their first counters (host and port names) within the
		// first second, staggered as real ones are, then every interval.
		a.nextCounters = time.Duration(len(s.agentOrder)) * min(cfg.CounterInterval, time.Second) / time.Duration(len(fab.Nodes()))
		for _, p := range n.Ports {
			a.ports[p.IfIndex] = &portCounters{port: p}
		}
		s.agents[n] = a
		s.agentOrder = append(s.agentOrder, a)
	}
	for i, srv := range fab.Servers {
		for slot := 1; slot <= cfg.Topology.ContainersPerServer; slot++ {
			s.containers = append(s.containers, s.newContainer(srv, i+1, slot))
		}
	}
	for _, e := range cfg.Elephants {
		if s.endpoint(e.Src).server == nil || s.endpoint(e.Dst).server == nil {
			return nil, fmt.Errorf("elephant %v -> %v: not addresses of this fabric", e.Src, e.Dst)
		}
		if s.endpoint(e.Src).server == s.endpoint(e.Dst).server {
			return nil, fmt.Errorf("elephant %v -> %v: both on one server, so it never crosses the fabric", e.Src, e.Dst)
		}
	}
	s.schedule = append(s.schedule, cfg.Elephants...)
	if cfg.ElephantEvery > 0 {
		s.schedule = append(s.schedule, Elephant{Start: 2 * time.Second})
	}
	// Start with the background mix already flowing, mid-life.
	for range max(cfg.Mice, 0) {
		s.startMouse(time.Duration(s.rng.ExpFloat64() * float64(miceMeanLife)))
	}
	return s, nil
}

// Fabric returns the simulated topology.
func (s *Sim) Fabric() *Fabric { return s.fab }

// SamplingRate returns the switches' 1-in-N.
func (s *Sim) SamplingRate() uint32 { return s.cfg.SamplingRate }

// Now returns the simulated time since the start.
func (s *Sim) Now() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Containers returns the containers alive now.
func (s *Sim) Containers() []*Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	var alive []*Container
	for _, c := range s.containers {
		if c.Alive {
			alive = append(alive, c)
		}
	}
	return alive
}

// OnRouteChange calls fn, from inside Step, whenever a container is created
// or destroyed. Containers alive at the start are not reported: read them
// with Containers.
func (s *Sim) OnRouteChange(fn func(RouteChange)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRoute = append(s.onRoute, fn)
}

// TriggerElephant starts a random elephant at the next step: the on-demand
// elephant.
func (s *Sim) TriggerElephant() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggers++
}

// Run steps the simulation in real time until ctx ends, handing each datagram
// to send. send must not keep the slice.
func (s *Sim) Run(ctx context.Context, send func([]byte)) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.Step(send)
		}
	}
}

// RunFor steps through d of simulated time as fast as it can.
func (s *Sim) RunFor(d time.Duration, send func([]byte)) {
	for end := s.Now() + d; s.Now() < end; {
		s.Step(send)
	}
}

// Step advances the simulation by one tick and sends the datagrams that the
// agents emit in it. send must not keep the slice.
func (s *Sim) Step(send func([]byte)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dt := s.cfg.Tick
	s.startScheduled()
	s.startMix()
	s.churn()
	s.failLinks()
	s.spawnMice()
	for _, a := range s.agentOrder {
		a.budget += float64(s.cfg.MaxSamplesPerSecond) * dt.Seconds()
	}
	end := s.now + dt
	alive := s.flows[:0]
	for _, f := range s.flows {
		s.carry(f, dt)
		if f.End > 0 && f.End <= end {
			s.retire(f)
			continue
		}
		alive = append(alive, f)
	}
	clear(s.flows[len(alive):])
	s.flows = alive
	s.now = end
	for _, a := range s.agentOrder {
		if s.now >= a.nextCounters {
			s.pollCounters(a)
			a.nextCounters += s.cfg.CounterInterval
		}
		if s.cfg.MaxSamplesPerSecond > 0 {
			a.budget = min(a.budget, float64(s.cfg.MaxSamplesPerSecond))
		}
	}
	s.sendAll(send)
}

func (s *Sim) retire(f *Flow) {
	if len(s.ended) >= s.cfg.MaxEndedFlows {
		// Keep every elephant; let the oldest mouse go.
		for i, old := range s.ended {
			if !old.Elephant {
				s.ended = append(s.ended[:i], s.ended[i+1:]...)
				s.endedDrop++
				break
			}
		}
	}
	s.ended = append(s.ended, f)
}

func (s *Sim) newContainer(srv *Node, serverNumber, slot int) *Container {
	return &Container{
		Name:    fmt.Sprintf("%s-c%d", srv.Name, slot),
		Server:  srv,
		Addr:    containerAddr(serverNumber, slot, s.cfg.Topology),
		Addr6:   containerAddr6(serverNumber, slot),
		Created: s.now,
		Alive:   true,
		slot:    slot,
	}
}

// endpoint is where an address lives: a container, or a server itself.
type endpoint struct {
	addr      netip.Addr
	server    *Node
	container *Container
}

func (s *Sim) endpoint(a netip.Addr) endpoint {
	for _, c := range s.containers {
		if c.Alive && (c.Addr == a || c.Addr6 == a) {
			return endpoint{a, c.Server, c}
		}
	}
	for _, srv := range s.fab.Servers {
		if srv.Agent == a || srv.Agent6 == a {
			return endpoint{addr: a, server: srv}
		}
	}
	return endpoint{addr: a}
}

func (s *Sim) notify(rc RouteChange) {
	for _, fn := range s.onRoute {
		fn(rc)
	}
}

// churn destroys one container and creates another on a random server.
func (s *Sim) churn() {
	every := s.cfg.ChurnEvery
	if every <= 0 || s.now == 0 || s.now%every >= s.cfg.Tick {
		return
	}
	// A container at either end of a scheduled elephant stays: whoever
	// scheduled it wants to watch it.
	kept := map[*Container]bool{}
	for _, f := range s.flows {
		if f.scheduled {
			kept[f.srcContainer], kept[f.dstContainer] = true, true
		}
	}
	var alive []*Container
	for _, c := range s.containers {
		if c.Alive && !kept[c] {
			alive = append(alive, c)
		}
	}
	if len(alive) > 1 {
		c := alive[s.rng.IntN(len(alive))]
		c.Alive, c.Destroyed = false, s.now
		for _, f := range s.flows {
			if f.End == 0 || f.End > s.now {
				if f.srcContainer == c || f.dstContainer == c {
					f.End = s.now
				}
			}
		}
		s.notify(RouteChange{Leaf: c.Server.Leaf, Container: c, Withdraw: true})
	}
	srvIndex := s.rng.IntN(len(s.fab.Servers))
	srv := s.fab.Servers[srvIndex]
	used := map[int]bool{}
	for _, c := range s.containers {
		if c.Alive && c.Server == srv {
			used[c.slot] = true
		}
	}
	limit := 9
	if s.cfg.Topology.ContainersPerServer > 9 {
		limit = maxContainers
	}
	for slot := 1; slot <= limit; slot++ {
		if !used[slot] {
			c := s.newContainer(srv, srvIndex+1, slot)
			s.containers = append(s.containers, c)
			s.notify(RouteChange{Leaf: srv.Leaf, Container: c})
			return
		}
	}
}

// Background traffic: heavy-tailed rates (Pareto), exponential lifetimes.
const (
	miceMeanLife = 15 * time.Second
	miceMinRate  = 5_000     // bytes per second
	miceMaxRate  = 2_000_000 // well under any sensible elephant threshold
	miceAlpha    = 1.2
)

var servicePorts = []uint16{80, 443, 2379, 3306, 5432, 6379, 8080, 9092}

func (s *Sim) spawnMice() {
	if s.cfg.Mice <= 0 {
		return
	}
	s.miceDue += float64(s.cfg.Mice) * s.cfg.Tick.Seconds() / miceMeanLife.Seconds()
	for ; s.miceDue >= 1; s.miceDue-- {
		s.startMouse(time.Duration(s.rng.ExpFloat64() * float64(miceMeanLife)))
	}
}

func (s *Sim) randomEndpoint(v6 bool, not *Node) endpoint {
	for {
		var e endpoint
		if s.rng.IntN(5) == 0 {
			srv := s.fab.Servers[s.rng.IntN(len(s.fab.Servers))]
			e = endpoint{addr: srv.Agent, server: srv}
			if v6 {
				e.addr = srv.Agent6
			}
		} else {
			c := s.containers[s.rng.IntN(len(s.containers))]
			if !c.Alive {
				continue
			}
			e = endpoint{addr: c.Addr, server: c.Server, container: c}
			if v6 {
				e.addr = c.Addr6
			}
		}
		if e.server != not || len(s.fab.Servers) == 1 {
			return e
		}
	}
}

func (s *Sim) startMouse(life time.Duration) {
	if len(s.fab.Servers) < 2 {
		return
	}
	v6 := s.cfg.IPv6 && s.rng.IntN(5) == 0
	src := s.randomEndpoint(v6, nil)
	dst := s.randomEndpoint(v6, src.server)
	proto := uint8(sflowtest.ProtoTCP)
	if s.rng.IntN(5) == 0 {
		proto = sflowtest.ProtoUDP
	}
	rate := min(miceMinRate/math.Pow(1-s.rng.Float64(), 1/miceAlpha), miceMaxRate)
	size := 1500
	if rate < 50_000 {
		size = 200 + s.rng.IntN(1200)
	}
	f := s.startFlow(src, dst, proto, s.ephemeralPort(), servicePorts[s.rng.IntN(len(servicePorts))], rate, size, life, false)
	// The other direction: ACKs for TCP, replies for UDP.
	if proto == sflowtest.ProtoTCP {
		s.startFlow(dst, src, proto, f.DstPort, f.SrcPort, rate/30, 52, life, false)
	} else {
		s.startFlow(dst, src, proto, f.DstPort, f.SrcPort, rate/3, size, life, false)
	}
}

func (s *Sim) ephemeralPort() uint16 { return uint16(32768 + s.rng.IntN(61000-32768)) }

func (s *Sim) startScheduled() {
	keep := s.schedule[:0]
	for _, e := range s.schedule {
		if e.Start > s.now {
			keep = append(keep, e)
			continue
		}
		if e.Src.IsValid() {
			if f := s.startElephant(e); f != nil {
				f.scheduled = true
			}
			continue
		}
		// A random one, re-armed for the next period.
		s.startRandomElephant()
		keep = append(keep, Elephant{Start: e.Start + s.cfg.ElephantEvery})
	}
	s.schedule = keep
	for ; s.triggers > 0; s.triggers-- {
		s.startRandomElephant()
	}
}

func (s *Sim) startElephant(e Elephant) *Flow {
	src, dst := s.endpoint(e.Src), s.endpoint(e.Dst)
	if src.server == nil || dst.server == nil {
		return nil // one end was destroyed before the start
	}
	proto, sport, dport := e.Proto, e.SrcPort, e.DstPort
	if proto == 0 {
		proto = sflowtest.ProtoTCP
	}
	if sport == 0 {
		sport = s.ephemeralPort()
	}
	if dport == 0 {
		dport = 5201
	}
	f := s.startFlow(src, dst, proto, sport, dport, e.Rate/8, 1500, e.Duration, true)
	s.startFlow(dst, src, proto, dport, sport, e.Rate/8/40, 52, e.Duration, false)
	return f
}

// startMix starts a flow whose rate straddles the threshold when one is
// due: what tells a detector's precision and recall apart.
func (s *Sim) startMix() {
	if s.cfg.MixEvery <= 0 || s.now < s.nextMix {
		return
	}
	s.nextMix = s.now + s.cfg.MixEvery
	src := s.randomContainer(nil)
	if src == nil {
		return
	}
	dst := s.randomContainer(src.Server.Leaf)
	if dst == nil {
		return
	}
	rate := s.cfg.MixThreshold * math.Exp(math.Log(0.25)+s.rng.Float64()*math.Log(16)) // 0.25x to 4x, log-uniform
	e := Elephant{Src: src.Addr, Dst: dst.Addr, Rate: rate, Duration: s.cfg.ElephantDuration}
	if f := s.startElephant(e); f != nil {
		f.Elephant, f.Mix = false, true
	}
}

func (s *Sim) startRandomElephant() {
	src := s.randomContainer(nil)
	if src == nil {
		return
	}
	dst := s.randomContainer(src.Server.Leaf)
	if dst == nil {
		return // a single-leaf fabric: nothing crosses a spine
	}
	e := Elephant{Src: src.Addr, Dst: dst.Addr, Rate: s.cfg.ElephantRate, Duration: s.cfg.ElephantDuration}
	f := s.startElephant(e)
	if !s.cfg.Collision || s.collided || f == nil || len(s.fab.Spines) < 2 {
		return
	}
	s.collided = true
	// A twin from the same leaf, to another leaf, with a source port that
	// hashes onto the same uplink.
	var twinSrc *Container
	for _, c := range s.containers {
		if c.Alive && c != src && c.Server.Leaf == src.Server.Leaf {
			twinSrc = c
			break
		}
	}
	twinDst := s.randomContainer(src.Server.Leaf)
	if twinSrc == nil || twinDst == nil {
		return
	}
	leaf := src.Server.Leaf
	spine := f.Hops[2].Node
	for port := uint16(40000); port < 50000; port++ {
		twin := &Flow{Src: twinSrc.Addr, Dst: twinDst.Addr, Proto: f.Proto, SrcPort: port, DstPort: f.DstPort}
		if s.ecmp(leaf, twinDst.Server.Leaf, twin) == spine {
			e.Src, e.Dst, e.SrcPort = twinSrc.Addr, twinDst.Addr, port
			s.startElephant(e)
			return
		}
	}
}

// randomContainer picks a live container that is not behind notLeaf.
func (s *Sim) randomContainer(notLeaf *Node) *Container {
	var pick []*Container
	for _, c := range s.containers {
		if c.Alive && c.Server.Leaf != notLeaf {
			pick = append(pick, c)
		}
	}
	if len(pick) == 0 {
		return nil
	}
	return pick[s.rng.IntN(len(pick))]
}

func (s *Sim) startFlow(src, dst endpoint, proto uint8, sport, dport uint16, rate float64, size int, life time.Duration, elephant bool) *Flow {
	s.nextID++
	f := &Flow{ID: s.nextID, Src: src.addr, Dst: dst.addr, Proto: proto, SrcPort: sport, DstPort: dport,
		Rate: rate, PacketSize: size, Start: s.now, End: s.now + max(life, s.cfg.Tick), Elephant: elephant,
		srcContainer: src.container, dstContainer: dst.container}
	s.route(f, src, dst)
	s.flows = append(s.flows, f)
	return f
}
