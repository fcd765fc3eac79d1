package ingest

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
)

// AgentStats is what the collector knows of one sFlow agent (an agent
// address and sub-agent id): the shape behind sFlow-RT's /agents/json.
type AgentStats struct {
	Agent      netip.Addr
	SubAgentID uint32
	Source     netip.AddrPort // UDP source of the last datagram
	FirstSeen  time.Time
	LastSeen   time.Time
	Uptime     time.Duration // as the agent last reported it

	Datagrams           uint64
	Bytes               uint64
	DatagramsLost       uint64 // from gaps in the datagram sequence
	DatagramsOutOfOrder uint64
	DatagramsDuplicate  uint64
	Restarts            uint64 // uptime or sequence went back

	Flow    SampleStats // flow and expanded flow samples
	Counter SampleStats // counter and expanded counter samples
	Discard SampleStats // discarded-packet events

	Malformed      uint64 // datagrams with a fault
	SamplesFaulted uint64 // samples lost to faults
	UnknownSamples uint64
	UnknownRecords uint64
	LastError      string
	SourcesEvicted uint64 // data sources forgotten to stay under the cap
}

// SampleStats counts one kind of sample from one agent, over its data sources.
type SampleStats struct {
	Samples    uint64
	Lost       uint64 // from gaps in per-source sequence numbers
	OutOfOrder uint64
	Duplicate  uint64
	Drops      uint64 // increase of the samples' drops field: the agent's own losses
	Sources    int    // data sources seen
}

type agentKey struct {
	addr netip.Addr
	sub  uint32
}

type sourceKey struct {
	kind uint8 // 0 flow, 1 counter, 2 discard
	ds   decode.DataSource
}

type sourceState struct {
	key      sourceKey
	seq      seqTracker
	drops    uint32
	lastSeen int64
}

// recentSources sizes an agent's direct-mapped cache of its data sources in
// front of the map: a switch's busy ports stay in it, and a hit is a
// compare, not a hash and a probe.
const recentSources = 64

func (k sourceKey) slot() uint32 {
	h := (k.ds.Index*0x9E3779B1 ^ k.ds.Class ^ uint32(k.kind)<<28) * 0x85EBCA6B
	return (h ^ h>>16) % recentSources
}

type agentState struct {
	mu      sync.Mutex
	stats   AgentStats
	seq     seqTracker
	uptime  uint32
	sources map[sourceKey]*sourceState
	recent  [recentSources]*sourceState // a cache of sources, by sourceKey.slot
	touched int64                       // unix nanoseconds, for eviction; under the table's lock
	heard   uint32                      // datagrams, to 2^32-1; under the table's lock
}

// agentTable holds per-agent accounting, capped in agents and in data
// sources per agent; when full, it forgets the least recently seen of a few
// entries picked at random, so a flood of spoofed agents costs bounded work.
// An agent heard from once or twice goes before one that keeps sending: a
// spoofed address sends once, and a flood of them must not churn out the
// real agents, however recently each spoof arrived.
type agentTable struct {
	mu         sync.Mutex
	agents     map[agentKey]*agentState
	maxAgents  int
	maxSources int
	evicted    uint64
}

const evictionSample = 8

// restartSlack is how far back an agent's uptime may go, in milliseconds,
// before a datagram that does not advance the sequence means a restart.
const restartSlack = 2000

func newAgentTable(maxAgents, maxSources int) *agentTable {
	return &agentTable{agents: make(map[agentKey]*agentState), maxAgents: maxAgents, maxSources: maxSources}
}

func (t *agentTable) get(addr netip.Addr, sub uint32, now time.Time) *agentState {
	k := agentKey{addr, sub}
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.agents[k]
	if a == nil {
		if len(t.agents) >= t.maxAgents {
			var oldest agentKey
			var victim *agentState
			n := 0
			for key, st := range t.agents {
				if victim == nil || evictBefore(st, victim) {
					oldest, victim = key, st
				}
				if n++; n == evictionSample {
					break
				}
			}
			delete(t.agents, oldest)
			t.evicted++
		}
		a = &agentState{sources: make(map[sourceKey]*sourceState)}
		a.stats.Agent, a.stats.SubAgentID, a.stats.FirstSeen = addr, sub, now
		t.agents[k] = a
	}
	a.touched = now.UnixNano()
	if a.heard < 1<<32-1 {
		a.heard++
	}
	return a
}

// settled is how many datagrams make an agent one that keeps sending.
const settled = 3

// evictBefore says whether a should be forgotten before b: one not yet
// settled before one that is, then the least recently seen.
func evictBefore(a, b *agentState) bool {
	if sa, sb := a.heard >= settled, b.heard >= settled; sa != sb {
		return sb
	}
	return a.touched < b.touched
}

func (t *agentTable) snapshot() []AgentStats {
	t.mu.Lock()
	all := make([]*agentState, 0, len(t.agents))
	for _, a := range t.agents {
		all = append(all, a)
	}
	t.mu.Unlock()
	out := make([]AgentStats, 0, len(all))
	for _, a := range all {
		a.mu.Lock()
		st := a.stats
		for k := range a.sources {
			switch k.kind {
			case 0:
				st.Flow.Sources++
			case 1:
				st.Counter.Sources++
			default:
				st.Discard.Sources++
			}
		}
		a.mu.Unlock()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Agent.Compare(out[j].Agent); c != 0 {
			return c < 0
		}
		return out[i].SubAgentID < out[j].SubAgentID
	})
	return out
}

func (t *agentTable) size() (agents int, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.agents), t.evicted
}

// datagram accounts for one datagram header; the caller holds a.mu.
func (a *agentState) datagram(d *decode.Datagram, src netip.AddrPort, size int, now time.Time) {
	st := &a.stats
	st.Datagrams++
	st.Bytes += uint64(size)
	st.Source = src
	st.LastSeen = now
	st.Uptime = time.Duration(d.Uptime) * time.Millisecond
	// An agent that restarts starts its uptime and sequences again; its
	// data sources' sequences restart with it. A late datagram also carries
	// an older uptime, but only by moments; uptime wrapping (49.7 days)
	// comes with a sequence that moves on.
	outcome, lost := a.seq.observe(d.Sequence)
	wentBack := st.Datagrams > 1 && d.Uptime+restartSlack < a.uptime
	if outcome != seqLate && outcome != seqDuplicate || d.Uptime > a.uptime {
		a.uptime = d.Uptime
	}
	if outcome == seqReset || wentBack && outcome != seqNext {
		a.uptime = d.Uptime
		st.Restarts++
		a.seq = seqTracker{}
		a.seq.observe(d.Sequence)
		clear(a.sources)
		clear(a.recent[:])
		return
	}
	switch outcome {
	case seqNext:
		st.DatagramsLost += uint64(lost)
	case seqLate:
		st.DatagramsOutOfOrder++
		if st.DatagramsLost > 0 {
			st.DatagramsLost--
		}
	case seqDuplicate:
		st.DatagramsDuplicate++
	}
}

// sample accounts for one sample's sequence number and drops field; the
// caller holds a.mu.
func (a *agentState) sample(kind uint8, ds decode.DataSource, seq, drops uint32, now int64, maxSources int) {
	st := &a.stats.Flow
	switch kind {
	case 1:
		st = &a.stats.Counter
	case 2:
		st = &a.stats.Discard
	}
	st.Samples++
	k := sourceKey{kind, ds}
	slot := &a.recent[k.slot()]
	src := *slot
	if src == nil || src.key != k {
		src = a.sources[k]
		*slot = src
	}
	if src == nil {
		if len(a.sources) >= maxSources {
			var oldest sourceKey
			var oldestAt int64 = 1<<63 - 1
			n := 0
			for key, s := range a.sources {
				if s.lastSeen < oldestAt {
					oldest, oldestAt = key, s.lastSeen
				}
				if n++; n == evictionSample {
					break
				}
			}
			if old := &a.recent[oldest.slot()]; *old != nil && (*old).key == oldest {
				*old = nil
			}
			delete(a.sources, oldest)
			a.stats.SourcesEvicted++
		}
		src = &sourceState{key: k, drops: drops}
		a.sources[k] = src
		*slot = src
	}
	src.lastSeen = now
	if drops > src.drops {
		st.Drops += uint64(drops - src.drops)
	}
	src.drops = drops
	outcome, lost := src.seq.observe(seq)
	switch outcome {
	case seqNext:
		st.Lost += uint64(lost)
	case seqLate:
		st.OutOfOrder++
		if st.Lost > 0 {
			st.Lost--
		}
	case seqDuplicate:
		st.Duplicate++
	}
}
