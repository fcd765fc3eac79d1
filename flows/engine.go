package flows

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/elephants"
	"github.com/fabrictrace/fabrictrace/internal/ring"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/paths"
	"github.com/fabrictrace/fabrictrace/tables"
	"github.com/fabrictrace/fabrictrace/thresholds"
	"github.com/fabrictrace/fabrictrace/topology"
)

// Config sets an engine's bounds. Zero fields take the defaults in brackets.
type Config struct {
	MaxFlows     int // flow entries per definition, over all data sources [100000]
	MaxEvents    int // events kept for /events/json [10000]
	MaxElephants int // elephant records kept, active and ended [10000]
	MaxSources   int // data sources (agent, ifIndex) tracked [100000]
	MaxPaths     int // 5-tuples whose paths are tracked [100000]
	// Routes answers the bgp* keys; nil leaves them missing.
	Routes keys.Routes
	// Countries answers the country: key; nil refuses definitions that
	// use it.
	Countries keys.Countries
	// Topology names nodes, ports and links; nil for an engine of its own.
	Topology *topology.Map
	// Now is the clock; tests set it to step time by hand.
	Now func() time.Time
	// Shard makes the engine one of several that share the flows by
	// address pair (package engine runs them); zero for an engine alone.
	Shard Shard
	// Past is how far before now the engine may be handed samples
	// (TakeShardAt: a partition read back by an engine node of package
	// cluster): its clock starts that long ago, so that every time it
	// keeps is one it could have seen.
	Past time.Duration
	// HeardApart: each datagram's arrival comes through Heard (and with
	// counters), not with its flow samples. An engine node of package
	// cluster is handed only its partitions' samples of a datagram, but
	// every datagram's header, so that its agents' clocks tick as one
	// collector's do.
	HeardApart bool
	// CountersElsewhere: thresholds on counter metrics are raised by
	// another process, which sees the same counters (every engine node of
	// package cluster does; its api node raises them, once).
	CountersElsewhere bool
}

func (c Config) withDefaults() Config {
	if c.MaxFlows == 0 {
		c.MaxFlows = 100_000
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = 10_000
	}
	if c.MaxElephants == 0 {
		c.MaxElephants = 10_000
	}
	if c.MaxSources == 0 {
		c.MaxSources = 100_000
	}
	if c.MaxPaths == 0 {
		c.MaxPaths = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Errors the web layer maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// Engine turns samples into flows, thresholds, events and elephants. It is a
// decode.Visitor; all its methods are safe for concurrent use.
type Engine struct {
	cfg    Config
	epoch  time.Time // clock zero: entry times are seconds since it
	seed   maphash.Seed
	coarse atomic.Int64 // nanoseconds since epoch, kept by Run every 5 ms; 0 when not running
	system bool         // cfg.Now is the system clock

	mu    sync.Mutex
	plans map[string]*plan
	// refusedAtReclaim is the interner's refusals at the last reclaim.
	refusedAtReclaim uint64
	active           []*plan // plans in name order, wired to their tables and thresholds
	tables           map[string]*table
	thresholds       map[string]*threshold
	sources          map[sourceKey]*source
	recent           *[recentSources]*source // a cache of sources, by sourceKey.slot
	topo             *topology.Map
	nodeCache        nodeCache // and the topology snapshot now
	events           *ring.Log[api.Event]
	flowLog          *ring.Log[api.FlowRecord]
	elephants        *elephants.Log[source, thresholds.Fired[source]]
	paths            *paths.Tracker
	collisions       *Collisions                 // links with colliding elephants, as reported (alone)
	gone             map[netip.Prefix]goneRoute  // withdrawn prefixes, when, and what they were
	owners           map[netip.Prefix]*api.Owner // owners looked up lately, for gone's was
	// The batch being taken (take), and each sample's state between its
	// stages: e.keys holds len(e.active) keys a sample.
	batch []*decode.FlowSample
	shard shardState
	// anyDropped: some flow is built from discarded-packet events.
	anyDropped bool
	// wantsAll: a flow is the primary's alone (shard.go), so it must be
	// handed every sample; read by package engine without the lock.
	wantsAll atomic.Bool
	// env is what key functions read besides the sample: strings, RIB,
	// topology, groups and maps.
	env keys.Env
	// seen is when each kind of header, record and sample was last seen,
	// for /flowkeys/json.
	seen     keys.Seen
	batchGen uint64
	taking   []taking
	keys     []flowKey
	// memo holds each distinct top-level key's value for the sample being
	// taken, so definitions that share keys extract them once.
	memo    []memoValue
	memoGen uint64
	scratch []byte // text of one value being rendered
	sink    uint64 // what warm read
	stats   Stats
}

// Stats counts what the engine did and what it had to let go.
type Stats struct {
	Samples        uint64 // flow samples seen
	Flows          uint64 // flow entries now held, over all definitions
	FlowsEvicted   uint64 // entries dropped to stay under MaxFlows
	SourcesEvicted uint64 // data sources dropped to stay under MaxSources
	StringsRefused uint64 // key strings refused by the interner's cap
	// StringsReleased counts key strings the sweep freed: no flow held them.
	StringsReleased uint64
	Events          uint64
	PathsTracked    uint64 // 5-tuples whose paths are held
	PathsEvicted    uint64 // 5-tuples dropped to stay under MaxPaths
	Waiters         int64  // long polls waiting now, on events and elephants
	// BatchesDropped counts the batches of samples shards dropped because
	// they were behind (package engine; 0 for an engine alone).
	BatchesDropped uint64
}

// New returns an engine with no flows defined.
func New(cfg Config) *Engine {
	system := cfg.Now == nil
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, epoch: cfg.Now().Add(-cfg.Past), seed: maphash.MakeSeed(), system: system,
		plans: map[string]*plan{}, tables: map[string]*table{}, thresholds: map[string]*threshold{},
		sources: map[sourceKey]*source{}, recent: new([recentSources]*source),
		events:  ring.New[api.Event](cfg.MaxEvents),
		flowLog: ring.New[api.FlowRecord](maxFlowLog)}
	e.shard = cfg.Shard.state()
	e.shard.join(e)
	e.env = keys.Env{Strings: keys.NewInterner(), Routes: cfg.Routes, Countries: cfg.Countries, Places: &e.nodeCache}
	e.topo = cfg.Topology
	if e.topo == nil {
		e.topo = topology.New()
	}
	e.topoNow(0, true)
	e.paths = paths.New(cfg.MaxPaths)
	e.gone = map[netip.Prefix]goneRoute{}
	e.elephants = elephants.NewLog[source, thresholds.Fired[source]]((*hooks)(e), cfg.MaxElephants)
	e.elephants.Share(cfg.Shard.Elephants, cfg.Shard.ElephantIDs)
	return e
}

// clock is seconds since the engine started. While Run runs (and no test
// clock is set) it reads a 5 ms clock that Run keeps, which costs a load
// instead of a clock read per sample.
func (e *Engine) clock() float64 {
	if c := e.coarse.Load(); c != 0 {
		return float64(c) / 1e9
	}
	return e.cfg.Now().Sub(e.epoch).Seconds()
}

func (e *Engine) wall(t float64) int64 {
	return e.epoch.Add(time.Duration(t * float64(time.Second))).UnixMilli()
}

// sourceKey names a data source: an agent and a ds class and index.
type sourceKey struct {
	agent netip.Addr
	class uint32
	index uint32
}

func (k sourceKey) dataSource() string {
	if k.class == 0 {
		return strconv.FormatUint(uint64(k.index), 10)
	}
	return strconv.FormatUint(uint64(k.class), 10) + "." + strconv.FormatUint(uint64(k.index), 10)
}

// source is what the engine knows of one data source: its sample pool, for
// renormalising, and its interface counters.
type source struct {
	key      sourceKey
	pool     pool
	lastSeen float64
	counters counters.Interface
	host     *counters.Host // a host's records (hsflowd), nil for an interface
	salt     uint64         // told into its flows' hashes (flowHash)
	batchGen uint64         // the last batch that used it: not to be evicted under it
}

// pool follows a data source's sample pool, for renormalising.
type pool struct {
	lastPool   uint32
	havePool   bool
	packets    float64 // sample_pool growth since the window opened
	samples    float64 // samples received in the window
	correction float64 // packets per sample over samplingRate: 1 unless samples were lost or dropped
}

// weight renormalises: every sample counts samplingRate packets, scaled up
// by how far sample_pool grew beyond what the received samples account for
// (lost datagrams, agent drops).
func (src *pool) weight(fs *decode.FlowSample) float64 {
	rate := float64(fs.SamplingRate)
	if src.correction == 0 {
		src.correction = 1
	}
	if src.havePool {
		src.packets += float64(fs.SamplePool - src.lastPool)
		src.samples++
		if src.samples >= 64 {
			c := src.packets / (src.samples * rate)
			src.correction = math.Min(math.Max(c, 1), 100)
			src.packets, src.samples = 0, 0
		}
	}
	src.lastPool, src.havePool = fs.SamplePool, true
	return rate * src.correction
}

func (e *Engine) source(k sourceKey, now float64) *source {
	slot := &e.recent[k.slot()]
	if src := *slot; src != nil && src.key == k {
		src.lastSeen, src.batchGen = max(src.lastSeen, now), e.batchGen // a replayed sample's now is past
		return src
	}
	if src := e.sources[k]; src != nil {
		src.lastSeen, src.batchGen, *slot = max(src.lastSeen, now), e.batchGen, src
		return src
	}
	if len(e.sources) >= e.cfg.MaxSources {
		e.evictSource()
	}
	src := &source{key: k, lastSeen: now, salt: maphash.Comparable(e.seed, k), batchGen: e.batchGen}
	e.sources[k] = src
	*slot = src
	return src
}

// recentSources is the size of the engine's direct-mapped cache of data
// sources, in front of the sources map: a fabric's busy ports stay in it,
// and a hit costs a compare instead of hashing a 32-byte key.
const recentSources = 4096

func (k sourceKey) slot() uint32 {
	a := k.agent.As16()
	h := (uint32(a[12])<<24 | uint32(a[13])<<16 | uint32(a[14])<<8 | uint32(a[15])) ^ k.index*0x9E3779B1 ^ k.class
	h *= 0x85EBCA6B // murmur3's finaliser, enough to spread the bits
	h ^= h >> 16
	return h % recentSources
}

// evictSource drops the least recently seen of a few data sources, with its
// flows. A source the batch being taken holds is spared, so the cap may be
// passed by at most a batch's sources.
func (e *Engine) evictSource() {
	var victim *source
	i := 0
	for _, src := range e.sources {
		if src.batchGen == e.batchGen {
			continue
		}
		if victim == nil || src.lastSeen < victim.lastSeen {
			victim = src
		}
		if i++; i == 8 {
			break
		}
	}
	if victim == nil {
		return
	}
	for _, t := range e.tables {
		t.DropSource(victim)
	}
	delete(e.sources, victim.key)
	if slot := &e.recent[victim.key.slot()]; *slot == victim {
		*slot = nil
	}
	e.stats.SourcesEvicted++
}

// Flow takes a flow sample: it is the decode.Visitor side of the engine.
func (e *Engine) Flow(dg *decode.Datagram, fs *decode.FlowSample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batch = append(e.batch[:0], fs)
	e.take(dg, nil, nil, e.clock())
}

// FlowBatch takes a datagram's flow samples at once (decode.FlowBatcher):
// the same as Flow on each in turn, but the memory loads of all of them
// overlap.
func (e *Engine) FlowBatch(dg *decode.Datagram, samples []decode.FlowSample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.takeAll(dg, samples, nil, nil, e.clock())
}

// takeAll takes a datagram's samples as one batch, at now.
func (e *Engine) takeAll(dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64, now float64) {
	e.batch = e.batch[:0]
	for i := range samples {
		e.batch = append(e.batch, &samples[i])
	}
	e.take(dg, home, weights, now)
}

// at is the engine's time of t: its clock's now for the zero time or a
// time to come, never later.
func (e *Engine) at(t time.Time) float64 {
	now := e.clock()
	if t.IsZero() {
		return now
	}
	return max(min(now, t.Sub(e.epoch).Seconds()), 0) // before Past: as at the clock's start
}

// taking is one sample of the batch being taken.
type taking struct {
	s          keys.Sample // lives here: handed to extractors through function values, a local one would escape
	frameBytes float64
	tuple      paths.TupleHash
	path       *paths.Tracked // warmed: the tracker's item in tuple's home slot
	local      bool           // its address pair is this shard's (always, unsharded)
}

// flowKey is one sample's key in one flow definition, between take's
// stages.
type flowKey struct {
	taken bool // the sample keys the flow
	key   []byte
	at    *source // where it counts
	hash  uint64
	warm  *entry // the table's item in hash's home slot
}

// take counts e.batch's samples in every flow, threshold and path; home
// holds each one's shard (nil for an engine alone), weights its weight when
// package engine renormalised it (nil: here). It goes
// in three stages, so that the cache misses of all the batch's lookups come
// at once, not one after another: every sample's keys and hashes; then a
// load of everything the lookups will touch (warm); then the lookups and
// updates, in the samples' order, which find what they touch in cache. With
// more flows than the cache holds, misses are most of a sample's cost.
func (e *Engine) take(dg *decode.Datagram, home []uint8, weights []float64, now float64) {
	e.topoNow(now, false)
	if !e.cfg.HeardApart {
		e.paths.Heard(dg, now)
	}
	e.batchGen++
	e.taking = e.taking[:0]
	plans := len(e.active)
	var kinds uint32
	for n, fs := range e.batch {
		kinds |= keys.SampleKinds(fs)
		// A discarded-packet event is one packet, for dropped flows only;
		// a packet sample with no header has nothing to key on.
		drop := fs.Format == decode.FormatDiscardedPacket
		switch {
		case drop && !e.anyDropped:
			continue
		case !drop && (fs.SamplingRate == 0 || fs.Records&decode.HasRawHeader == 0):
			continue
		}
		local := home == nil || home[n] == e.shard.index
		if !local && !e.shard.primary {
			continue
		}
		src := e.source(sourceKey{dg.Agent, fs.Source.Class, fs.Source.Index}, now)
		var scaled float64
		switch {
		case drop:
			scaled = 1
		case weights != nil:
			scaled = weights[n] // renormalised before the shards split the samples
		default:
			scaled = src.pool.weight(fs)
		}
		if local && !drop {
			e.stats.Samples++
		}
		e.taking = slices.Grow(e.taking, 1)[:len(e.taking)+1]
		tk := &e.taking[len(e.taking)-1]
		tk.s.Datagram, tk.s.Flow, tk.s.Env = dg, fs, &e.env
		tk.s.Packet = [2]*decode.Packet{&fs.RawHeader.Packet}
		if fs.RawHeader.Inner.Layers != 0 {
			tk.s.Packet[1] = &fs.RawHeader.Inner
		}
		tk.path, tk.local = nil, local
		tk.s.Scaled = scaled
		tk.frameBytes = float64(fs.RawHeader.FrameLength) * tk.s.Scaled
		tk.local = local && !drop // a drop is no hop of a path
		tk.tuple = paths.TupleHash{}
		if tk.local {
			tk.tuple = e.paths.Hash(fs)
		}
		e.memoGen++
		base := (len(e.taking) - 1) * plans
		for len(e.keys) < base+plans {
			e.keys = append(e.keys, flowKey{})
		}
		for i, p := range e.active {
			if k := &e.keys[base+i]; p.Dropped != drop || !e.shard.keys(p, local) {
				k.taken = false
				continue
			}
			e.keyFor(p, &e.keys[base+i], &tk.s, src, now)
		}
	}
	e.seen.Note(kinds, now)
	if e.outOfCache() {
		e.warm(e.keys[:len(e.taking)*plans])
	}
	for j := range e.taking {
		tk := &e.taking[j]
		if tk.local {
			e.paths.Observe(dg, tk.s.Flow, tk.tuple, tk.frameBytes, now)
		}
		for i, p := range e.active {
			if k := &e.keys[j*plans+i]; k.taken {
				e.update(p, k, &tk.s, now, tk.frameBytes)
			}
		}
	}
}

// keyFor builds p's key for the sample, and its hash, or leaves k.taken
// false when the sample does not key the flow.
func (e *Engine) keyFor(p *plan, k *flowKey, s *keys.Sample, src *source, now float64) {
	k.taken = false
	if p.Filter != nil && !p.Filter.Match(s) {
		return
	}
	kb := k.key[:0]
	for i := range p.Keys {
		t := &p.Keys[i]
		m := &e.memo[t.Slot]
		if m.gen != e.memoGen {
			m.v, m.gen = t.Get(s), e.memoGen
		}
		v := m.v
		if v.Kind == keys.Missing {
			k.key = kb
			return
		}
		kb = v.AppendKey(kb)
	}
	k.key = kb
	k.at = src
	if p.AgentMode {
		// aggMode AGENT: one table for all of the agent's data sources.
		k.at = e.source(sourceKey{agent: s.Datagram.Agent}, now)
	}
	k.hash = flowHash(e, k.at, kb)
	k.taken = true
}

// warmAbove is how many flow entries and paths, together, make the tables
// too big for the caches (about 4 MiB of them), so that warming them pays.
const warmAbove = 16384

// outOfCache says whether the tables are big enough for warm to pay: with
// them in cache its loads only cost time.
func (e *Engine) outOfCache() bool {
	n := e.paths.Len()
	for _, p := range e.active {
		n += p.table.Index.Len()
	}
	// Shards share the caches: each holds about its share of the whole.
	return n*max(e.shard.count, 1) > warmAbove
}

// warm loads what the batch's lookups will read: the home slot of every
// hash, then the entries and paths found there (where a lookup at half load
// or less finds its item), then the elephants those entries feed and the
// paths' hops. Within a level the loads do not wait on each other, so
// their misses overlap. What they read is summed only so that no load is
// dropped.
func (e *Engine) warm(keys []flowKey) {
	var sink uint64
	for j := 0; j < len(keys); {
		for _, p := range e.active {
			if k := &keys[j]; k.taken {
				k.warm = p.table.Index.Home(k.hash)
			}
			j++
		}
	}
	for j := range e.taking {
		tk := &e.taking[j]
		tk.path = e.paths.Home(tk.tuple)
	}
	for j := range keys {
		if ent := keys[j].warm; keys[j].taken && ent != nil {
			sink += ent.Touch()
		}
	}
	for j := range e.taking {
		if tr := e.taking[j].path; tr != nil {
			sink += tr.Touch(false)
		}
	}
	for j := range keys {
		if ent := keys[j].warm; keys[j].taken && ent != nil && ent.Fired.Elephant() != nil {
			sink += ent.Fired.Elephant().Touch()
		}
	}
	for j := range e.taking {
		if tr := e.taking[j].path; tr != nil {
			sink += tr.Touch(true)
		}
	}
	e.sink = sink
}

// update counts the sample in p's flow, and runs p's thresholds on it.
func (e *Engine) update(p *plan, k *flowKey, s *keys.Sample, now, frameBytes float64) {
	x := p.Amount(p.Value, s)
	tb := p.table
	ent := tb.Upsert(k.at, k.key, k.hash, now, len(p.Values) > 0)
	ent.Add(p.Tau, p.burstLevel, x, frameBytes, now)
	if p.logged != nil {
		e.logSample(p, ent, now)
	}
	if ev := ent.Values; ev != nil {
		addValues(ev, p, s, now)
	}
	for _, th := range p.thresholds {
		th.Update(p.Plan, tb, ent, s, now)
	}
}

// addValues counts a sample in the definition's values.
func addValues(ev *tables.EntryValues, p *plan, s *keys.Sample, now float64) {
	for i, xv := range p.Values {
		if xv.Count != nil {
			if v := xv.Count.Get(s); v.Kind != keys.Missing {
				ev.Sketches[i].Add(v)
			}
			continue
		}
		if xv.Avg != nil {
			if v := xv.Avg.Get(s); v.Kind == keys.Num {
				ev.Extras[i] += float64(v.N)
				ev.AvgN[i]++
			}
			continue
		}
		if now < ev.At { // a replayed sample: as decayed as it is by the last update
			ev.Extras[i] += p.Amount(xv.Kind, s) / p.Tau * tables.Decay((ev.At-now)/p.Tau)
			continue
		}
		ev.Extras[i] = ev.Extras[i]*tables.Decay((now-ev.At)/p.Tau) + p.Amount(xv.Kind, s)/p.Tau
	}
	ev.At = max(ev.At, now)
}

// Heard notes a datagram's arrival from its agent, for its export cadence,
// when the engine's Config has HeardApart.
func (e *Engine) Heard(dg *decode.Datagram) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.paths.Heard(dg, e.clock())
}

// Counter takes a counter sample: interface speeds and rates for threshold
// filters and /metric.
func (e *Engine) Counter(dg *decode.Datagram, cs *decode.CounterSample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	e.paths.Heard(dg, now)
	if cs.Records&decode.HasHostDescription != 0 && len(cs.HostDescription.Hostname) > 0 {
		e.topo.LearnHost(dg.Agent, string(cs.HostDescription.Hostname))
	}
	if cs.Records&counters.HostRecords != 0 {
		src := e.source(sourceKey{dg.Agent, cs.Source.Class, cs.Source.Index}, now)
		if src.host == nil {
			src.host = &counters.Host{}
		}
		src.host.Update(cs, now)
		if e.shard.primary && !e.cfg.CountersElsewhere {
			e.counterThresholds(src, now)
		}
	}
	if cs.Records&decode.HasGenericInterface == 0 {
		return
	}
	g := &cs.Generic
	src := e.source(sourceKey{dg.Agent, 0, g.IfIndex}, now)
	src.counters.Update(g, now)
	if cs.Records&decode.HasPortName != 0 && len(cs.PortName) > 0 {
		if src.counters.Name != string(cs.PortName) {
			src.counters.Name = string(cs.PortName)
		}
		e.topo.LearnPort(dg.Agent, src.counters.Name, g.IfIndex)
	}
	if e.shard.primary && !e.cfg.CountersElsewhere {
		e.counterThresholds(src, now)
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.StringsRefused, s.StringsReleased = e.env.Strings.Refused, e.env.Strings.Freed
	for _, t := range e.tables {
		s.Flows += uint64(t.Index.Len())
	}
	s.Events = uint64(e.events.Last())
	s.PathsTracked, s.PathsEvicted = uint64(e.paths.Len()), e.paths.Evicted()
	s.Waiters = e.events.Waiters() + e.elephants.Waiters()
	return s
}

// SetFlow defines or replaces a flow. A replaced flow starts from empty.
func (e *Engine) SetFlow(name string, d keys.Definition) error {
	if err := validName(name); err != nil {
		return err
	}
	c, err := keys.Compile(name, d)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p := &plan{Plan: c}
	var filter string
	if d.Filter != nil {
		filter = *d.Filter
	}
	if e.cfg.Countries == nil && keys.UsesCountry(string(d.Keys), filter) {
		return fmt.Errorf("%w: country: needs a GeoIP country database: install Debian's geoip-database "+
			"(/usr/share/GeoIP/GeoIP.dat, GeoIPv6.dat) or point the collector's -geoip at legacy GeoIP country .dat files", ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plans[name] = p
	if d.Log {
		p.logged = map[*entry]logMark{}
	}
	e.tables[name] = e.newTable(p)
	for _, th := range e.thresholds {
		if th.Def().Metric == name {
			th.Reset()
		}
	}
	e.rewire()
	return nil
}

// plan is a compiled definition wired into the engine: its table, its
// thresholds and what they make of it (set by rewire).
type plan struct {
	*keys.Plan
	// burstLevel is a hundredth of the lowest byFlow threshold on the flow: a
	// sample that finds an entry below it starts a new burst.
	burstLevel float64
	// spread: shards split it by wherever its samples go, as it is no
	// pair flow and no threshold, log or value reads it (shard.go).
	spread     bool
	table      *table
	thresholds []*threshold
	// logged, for a definition with log:true: where each entry's next flow
	// record begins.
	logged map[*entry]logMark
}

type memoValue struct {
	gen uint64
	v   keys.Value
}

// rewire rebuilds the hot path's view of the definitions: plans in a
// slice, each with its table and thresholds, so a sample walks no maps;
// and one memo slot per distinct key text.
func (e *Engine) rewire() {
	e.active = e.active[:0]
	slots := map[string]int{}
	for _, p := range e.plans {
		for i := range p.Keys {
			slot, ok := slots[p.Keys[i].Text]
			if !ok {
				slot = len(slots)
				slots[p.Keys[i].Text] = slot
			}
			p.Keys[i].Slot = slot
		}
	}
	e.memo = make([]memoValue, len(slots))
	e.memoGen = 0
	for _, p := range e.plans {
		p.table = e.tables[p.Name]
		p.thresholds = p.thresholds[:0]
		for _, th := range e.thresholds {
			if th.Def().Metric == p.Name {
				p.thresholds = append(p.thresholds, th)
			}
		}
		sort.Slice(p.thresholds, func(i, j int) bool { return p.thresholds[i].Name() < p.thresholds[j].Name() })
		// Shards split a flow by pair, or else, when nothing but queries
		// reads it (no threshold, log or values), by wherever its samples
		// go: its entries of one key add up over the shards.
		p.spread = !p.Pair && len(p.thresholds) == 0 && !p.Def.Log && len(p.Values) == 0
		p.burstLevel = 0
		for _, th := range p.thresholds {
			if th.Def().ByFlow && (p.burstLevel == 0 || th.Def().Value/100 < p.burstLevel) {
				p.burstLevel = th.Def().Value / 100
			}
		}
		e.active = append(e.active, p)
	}
	sort.Slice(e.active, func(i, j int) bool { return e.active[i].Name < e.active[j].Name })
	e.anyDropped = false
	wantsAll := false
	for _, p := range e.active {
		e.anyDropped = e.anyDropped || p.Dropped
		wantsAll = wantsAll || !p.Pair && !p.spread
	}
	e.wantsAll.Store(wantsAll)
}

func validName(name string) error {
	if name == "" || len(name) > 100 {
		return fmt.Errorf("%w: name %q: want 1 to 100 characters", ErrInvalid, name)
	}
	for _, c := range name {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("%w: name %q: letters, digits, '-', '_' and '.' only", ErrInvalid, name)
		}
	}
	return nil
}

// Flow returns a flow's definition with its defaults.
func (e *Engine) FlowDefinition(name string) (keys.Definition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.plans[name]
	if !ok {
		return keys.Definition{}, fmt.Errorf("flow %q: %w", name, ErrNotFound)
	}
	return p.Def, nil
}

// FlowDefinitions returns every flow's definition.
func (e *Engine) FlowDefinitions() map[string]keys.Definition {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]keys.Definition, len(e.plans))
	for n, p := range e.plans {
		out[n] = p.Def
	}
	return out
}

// DeleteFlow removes a flow and its table.
func (e *Engine) DeleteFlow(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.plans[name]; !ok {
		return fmt.Errorf("flow %q: %w", name, ErrNotFound)
	}
	delete(e.plans, name)
	delete(e.tables, name)
	for _, th := range e.thresholds {
		if th.Def().Metric == name {
			th.Reset()
		}
	}
	e.rewire()
	return nil
}

// formatKey renders a binary flow key with the flow's separator.
func (e *Engine) formatKey(p *plan, key []byte) string {
	e.scratch = p.AppendKey(e.scratch[:0], key, e.env.Strings)
	return string(e.scratch)
}

// FlowRow is one flow entry: a key at a data source, and its value now.
type FlowRow struct {
	Key, Agent, DataSource string
	Value                  float64
	OnLink                 bool  // the data source is a port on a topology link
	LastUpdate             int64 // ms ago
}

// FlowRows lists a flow's entries over the agents that match, each with
// its value now: for answers merged over engines (package engine), whose
// entries of one key at one data source add up.
//
// It holds the engine's lock for at most RowsPerLock entries at a time,
// so a query over a table of 100k flows never stalls ingest for longer
// than a slice of it. Between slices the table moves on: a flow dropped in
// the meantime may be missing, one added may be present, as with any live
// view; no entry is listed twice.
func (e *Engine) FlowRows(name string, agents func(netip.Addr) bool) ([]FlowRow, error) {
	type where struct {
		ok, onLink bool
		agent, ds  string
	}
	seen := map[*source]where{}
	var rows []FlowRow
	var t *table
	for next := 0; ; {
		e.mu.Lock()
		p, ok := e.plans[name]
		if !ok {
			e.mu.Unlock()
			return nil, fmt.Errorf("flow %q: %w", name, ErrNotFound)
		}
		if t == nil {
			t = e.tables[name]
		} else if e.tables[name] != t {
			e.mu.Unlock()
			return rows, nil // redefined under the query: what it had
		}
		now := e.clock()
		topo := e.topoNow(now, true)
		end := min(next+RowsPerLock, len(t.Ring))
		for _, ent := range t.Ring[next:end] {
			w, known := seen[ent.Src]
			if !known {
				_, onLink := topo.Link(ent.Src.key.agent, ent.Src.key.index)
				w = where{ok: agents(ent.Src.key.agent), onLink: onLink}
				if w.ok {
					w.agent, w.ds = ent.Src.key.agent.String(), ent.Src.key.dataSource()
				}
				seen[ent.Src] = w
			}
			if !w.ok {
				continue
			}
			if v := ent.ValueAt(p.Tau, now); v > 0 {
				rows = append(rows, FlowRow{Key: e.formatKey(p, ent.Key()), Agent: w.agent, DataSource: w.ds, Value: v,
					OnLink: w.onLink, LastUpdate: int64((now - ent.Last) * 1000)})
			}
		}
		next = end
		done := next >= len(t.Ring)
		e.mu.Unlock()
		if done {
			return rows, nil
		}
		betweenSlices()
	}
}

// afterRowsSlice, when set (by a test), runs between a query's slices.
var afterRowsSlice func()

// betweenSlices runs between a query's slices of a table, the lock let go:
// it yields the processor, so that the shard's writer, woken by the unlock,
// takes the lock now rather than after the query has taken it again
// (sync.Mutex lets the running goroutine barge in for up to 1 ms).
func betweenSlices() {
	runtime.Gosched()
	if afterRowsSlice != nil {
		afterRowsSlice()
	}
}

// RowsPerLock is how many entries FlowRows reads under one hold of the
// lock: about 0.3 ms of formatting keys.
const RowsPerLock = 1024

// ActiveFromRows is ActiveFlows over rows (from one engine or several):
// the rows of one key at one data source are summed, those under minValue
// left out, and a key's data sources merged by aggMode.
func ActiveFromRows(rows []FlowRow, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error) {
	mode := aggModeOf(aggMode)
	if mode < 0 {
		return nil, fmt.Errorf("%w: aggMode %q: want max, sum, edge or core", ErrInvalid, aggMode)
	}
	type at struct{ key, agent, ds string }
	sums := map[at]float64{}
	var order []at
	for _, r := range rows {
		if (mode == aggEdge || mode == aggCore) && r.OnLink != (mode == aggCore) {
			continue
		}
		k := at{r.Key, r.Agent, r.DataSource}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += r.Value
	}
	merged := map[string]*api.ActiveFlow{}
	top := map[string]float64{} // aggSum: each key's largest part
	for _, k := range order {
		v := sums[k]
		if v < minValue || v <= 0 {
			continue
		}
		af := merged[k.key]
		if af == nil {
			af = &api.ActiveFlow{Key: k.key, Agent: k.agent, DataSource: k.ds}
			merged[k.key] = af
		}
		af.FlowN++
		if mode == aggSum {
			// The sum names the source of its largest part.
			if v > top[k.key] || v == top[k.key] && k.agent+"/"+k.ds < af.Agent+"/"+af.DataSource {
				top[k.key], af.Agent, af.DataSource = v, k.agent, k.ds
			}
			af.Value += v
		} else if v > af.Value || v == af.Value && k.agent+"/"+k.ds < af.Agent+"/"+af.DataSource {
			af.Value, af.Agent, af.DataSource = v, k.agent, k.ds
		}
	}
	out := make([]api.ActiveFlow, 0, len(merged))
	for _, af := range merged {
		out = append(out, *af)
	}
	return TopFlows(out, maxFlows), nil
}

// TopFlows sorts flows largest first (by key on a tie) and keeps maxFlows
// of them (all for 0).
func TopFlows(out []api.ActiveFlow, maxFlows int) []api.ActiveFlow {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Key < out[j].Key
	})
	if maxFlows > 0 && len(out) > maxFlows {
		out = out[:maxFlows]
	}
	return out
}

const (
	aggMax = iota
	aggSum
	aggEdge
	aggCore
)

func aggModeOf(s string) int {
	switch s {
	case "", "max", "MAX":
		return aggMax
	case "sum", "SUM":
		return aggSum
	case "edge", "EDGE":
		return aggEdge
	case "core", "CORE":
		return aggCore
	}
	return -1
}

// FlowKeys returns, as sFlow-RT's /flowkeys/json does, the keys recent
// samples could give (the base keys of the headers and records seen), and
// the key tokens of defined flows, with milliseconds since they last did.
func (e *Engine) FlowKeys() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	out := map[string]int64{}
	e.seen.Keys(out, now)
	for _, p := range e.plans {
		for _, t := range p.Keys {
			ago := int64((now - e.tables[p.Name].LastUpdate) * 1000)
			if was, ok := out[t.Text]; !ok || ago < was {
				out[t.Text] = ago
			}
		}
	}
	return out
}

// Agents lists the agents the engine has data sources of, in order.
func (e *Engine) Agents() []netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[netip.Addr]bool{}
	for k := range e.sources {
		seen[k.agent] = true
	}
	out := make([]netip.Addr, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return out
}

// Sweep re-arms thresholds whose flows have stayed below for their timeout,
// ends elephants, and drops flows that have gone quiet. Run it about every
// second (Run does).
func (e *Engine) Sweep() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	for _, th := range e.thresholds {
		var p *keys.Plan // nil: a threshold on a counter metric
		if fp := e.plans[th.Def().Metric]; fp != nil {
			p = fp.Plan
		}
		th.Sweep(p, e.tables[th.Def().Metric], now)
	}
	for _, t := range e.tables {
		t.Expire(now)
	}
	e.paths.Expire(now)
	e.detectChanges(now)
	if e.shard.count <= 1 {
		e.detectCollisions(now)
	}
	e.ownersBack()
	e.namesBack()
	e.reclaimStrings()
}

// reclaimStrings frees the interned strings no flow key holds any more,
// once the interner is nearly full or has refused one: between batches,
// where no key being built holds an id. What holds ids: the tables'
// entries, the thresholds' evidence and the active elephants, by their
// binary keys.
func (e *Engine) reclaimStrings() {
	in := e.env.Strings
	if in.Held() < keys.MaxStrings*7/8 && in.Refused == e.refusedAtReclaim {
		return
	}
	e.refusedAtReclaim = in.Refused
	used := make([]bool, in.Cap())
	for _, t := range e.tables {
		for _, ent := range t.Ring {
			keys.MarkKey(used, ent.Key())
		}
	}
	for _, th := range e.thresholds {
		for ident := range th.Idents() {
			keys.MarkKey(used, []byte(ident))
		}
	}
	for ident := range e.elephants.Idents() {
		keys.MarkKey(used, []byte(ident))
	}
	in.Release(used)
}

// SweepPaths raises the path changes that are due: Run calls it every
// 250 ms, so a change is raised soon after its old hop falls silent. It
// looks only at 5-tuples with two agents at one TTL.
func (e *Engine) SweepPaths() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.detectChanges(e.clock())
}

// Run sweeps every interval until ctx ends, and keeps the engine's 5 ms
// clock.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	pt := time.NewTicker(min(interval, 250*time.Millisecond))
	defer pt.Stop()
	var tick <-chan time.Time
	if e.system {
		ms := time.NewTicker(5 * time.Millisecond)
		defer ms.Stop()
		tick = ms.C
		e.coarse.Store(max(int64(time.Since(e.epoch)), 1))
		defer e.coarse.Store(0)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			e.coarse.Store(max(int64(time.Since(e.epoch)), 1))
		case <-t.C:
			e.Sweep()
		case <-pt.C:
			e.SweepPaths()
		}
	}
}

var _ decode.Visitor = (*Engine)(nil)
