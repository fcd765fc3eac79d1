package flows

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/internal/ring"
)

// Sharding. Several engines (shards) can share the flows by address pair,
// each with one writer (package engine runs them), so that several cores
// work at once. A sample goes to the shard its (source, destination) pair
// hashes to, so a pair's samples from every switch meet in one shard, with
// its paths, its merged evidence and its elephants, and those answers are
// the same whatever the number of shards. Every shard hears every datagram
// (its agent's clock), and samples come renormalised (Pools), since the
// sample pool of a data source counts the samples of every shard.
//
// A definition whose keys hold both ipsource and ipdestination is split
// that way. So is one that only queries read (no threshold, log or
// values): each shard counts its own samples, and a key's entries at one
// data source add up over the shards. Any other (a threshold on a flow
// keyed by source alone...) is the primary shard's (shard 0), which is
// handed every sample for it: its thresholds are then those of one engine,
// at the cost of that shard's time. A threshold set on a spread flow makes
// it the primary's from then on, its rate rebuilt within the flow's t. Counter thresholds are the primary's too, and collisions (elephants
// of several pairs on one link) are found across shards by package engine.

// Shard places an engine among its shards. The logs are shared, so that
// events, elephant updates and flow records have one sequence of ids.
type Shard struct {
	Index, Count int
	Events       *ring.Log[api.Event]
	Elephants    *ring.Log[api.Elephant]
	FlowLog      *ring.Log[api.FlowRecord]
	ElephantIDs  *atomic.Int64
	Epoch        time.Time // the engines' clock zero, so that times agree
}

// shardState is an engine's place, as take and the sweeps read it.
type shardState struct {
	index   uint8
	count   int
	primary bool // shard 0, or the engine alone
}

func (s Shard) state() shardState {
	return shardState{index: uint8(s.Index), count: s.Count, primary: s.Index == 0}
}

// join wires the shared logs in.
func (st shardState) join(e *Engine) {
	sh := e.cfg.Shard
	if sh.Events != nil {
		e.events = sh.Events
	}
	if sh.FlowLog != nil {
		e.flowLog = sh.FlowLog
	}
	if !sh.Epoch.IsZero() {
		e.epoch = sh.Epoch
	}
}

// keys says whether a shard keys a sample in p: a pair-split definition
// in the shard of the sample's pair, any other in the primary only.
func (st shardState) keys(p *plan, local bool) bool {
	if st.count <= 1 {
		return true
	}
	if p.Pair || p.spread {
		return local
	}
	return st.primary
}

// MaxShards bounds the shards: a sample's shard is a byte.
const MaxShards = 64

// PairShard is the shard of a flow sample among n: by its (source,
// destination) address pair, 0 for a sample with no IP header.
func PairShard(fs *decode.FlowSample, n int) uint8 {
	if n <= 1 {
		return 0
	}
	p := &fs.RawHeader.Packet
	if p.Layers&(decode.LayerIPv4|decode.LayerIPv6) == 0 {
		return 0
	}
	return uint8(pairHash(p.Src, p.Dst) % uint64(n))
}

// PairOf is the shard among n of an address pair: PairShard of its
// samples.
func PairOf(src, dst netip.Addr, n int) uint8 {
	if n <= 1 {
		return 0
	}
	return uint8(pairHash(src, dst) % uint64(n))
}

// pairHash mixes an address pair's 16-byte forms, eight bytes at a time
// (a multiply and a shift each, then murmur3's finaliser): the same in
// every process, so that a pair's shard is too.
func pairHash(src, dst netip.Addr) uint64 {
	a, b := src.As16(), dst.As16()
	h := uint64(0x9E3779B97F4A7C15)
	for _, w := range [4]uint64{binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:]),
		binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])} {
		h = (h ^ w) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// TakeShard takes flow samples of a datagram as one shard: home holds each
// sample's shard (PairShard), weights what each stands for (Pools); the
// primary is also handed the samples of other shards when it keys a flow
// alone (WantsEverySample). The datagram itself is heard however few samples it brings.
func (e *Engine) TakeShard(dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64) {
	e.TakeShardAt(dg, samples, home, weights, time.Time{})
}

// TakeShardAt is TakeShard of samples that arrived at at, in the past (a
// partition replayed to its new owner; the zero time is now): a flow's
// rate, thresholds, elephant and path take them as at that time. A flow
// updated since counts them decayed as much as they have decayed by its
// last update. The datagram is not heard: its agent's clock is of now.
func (e *Engine) TakeShardAt(dg *decode.Datagram, samples []decode.FlowSample, home []uint8, weights []float64, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.takeAll(dg, samples, home, weights, e.at(at))
}

// WantsEverySample says whether the engine, as the primary shard, must be
// handed the other shards' samples too: some flow is neither split by
// pair nor spread, so only the primary keys it. Otherwise each shard takes
// its own samples alone. Safe without the lock.
func (e *Engine) WantsEverySample() bool { return e.wantsAll.Load() }

// Split says how a flow is split over shards: by address pair (all of a
// key's entries in one shard), or spread (a key's entries in several,
// which add up).
func (e *Engine) Split(name string) (pair, spread bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p := e.plans[name]; p != nil {
		return p.Pair, p.spread
	}
	return false, false
}

// Forget drops what the engine holds of the address pairs drop says: the
// entries of flows keyed by address pair, as if they had expired (an
// elephant among them ends here), and their 5-tuples' paths. An engine
// node of package cluster forgets the partitions it gives to another,
// which reads them back from the stream. It says how many entries and
// 5-tuples went.
func (e *Engine) Forget(drop func(src, dst netip.Addr) bool) (entries, tuples int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, p := range e.plans {
		if !p.Pair {
			continue
		}
		t := e.tables[name]
		// Backwards, since a removal moves the ring's last entry, already
		// seen, into the gap.
		for i := len(t.Ring) - 1; i >= 0; i-- {
			ent := t.Ring[i]
			if src, dst := p.Endpoints(p.Ident(ent.Key())); drop(src, dst) {
				t.Remove(ent)
				entries++
			}
		}
	}
	return entries, e.paths.Forget(drop)
}
