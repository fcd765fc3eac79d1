package flows

import (
	"bytes"
	"hash/maphash"
	"math"
	"math/bits"
)

// table holds one definition's flows, per data source, under a cap.
type table struct {
	id         int // its place in each source's cache of flow maps (source.maps)
	bySource   map[*source]map[uint64]*entry
	n          int
	lastUpdate float64
	// ring holds every entry, for eviction: a clock hand walks it, so
	// finding a victim costs the same however big the table is.
	ring []*entry
	hand int
}

// entry is one flow at one data source. Its value is a rate: each sample
// adds amount/tau, and the sum decays with time constant tau, so a steady
// flow of R units per second reads R.
type entry struct {
	// What every sample reads comes first, the key bytes just after, so a
	// sample costs as few cache lines as it can: with thousands of flows
	// the table is never in cache.
	key   []byte  // the binary flow key
	next  *entry  // another flow whose key hashes alike
	value float64 // rate at last
	last  float64
	total float64 // value units since first, undecayed
	bytes float64 // frame bytes since first, whatever the value
	// The current burst: since when, and the totals when it began. A burst
	// begins with a sample that finds the flow decayed to nearly nothing, so
	// an elephant's life is not stretched by the mice of the same key before it.
	since                  float64
	burstTotal, burstBytes float64
	extrasAt               float64
	fired                  []firedBy // thresholds it fired, waiting to re-arm: nil for most
	hash                   uint64
	inline                 [64]byte // key and ident, when they fit
	ident                  []byte   // the key without location fields: the flow itself
	src                    *source
	first                  float64
	sketches               *[maxValues]distinct // for count: values; nil without them
	slot                   int                  // its place in the table's ring
	extras                 [maxValues]float64
	avgN                   [maxValues]float64
}

func newTable() *table { return &table{bySource: map[*source]map[uint64]*entry{}} }

func (ent *entry) valueAt(p *plan, now float64) float64 {
	return ent.value * decay((now-ent.last)/p.tau)
}

// decay is exp(-x). Samples of a busy flow arrive microseconds apart, where
// the series is exact to 1e-10 and far cheaper than math.Exp.
func decay(x float64) float64 {
	if x < 1e-3 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

func (ent *entry) add(p *plan, x, frameBytes, now float64) {
	before := ent.valueAt(p, now)
	if before < p.burstLevel {
		ent.since, ent.burstTotal, ent.burstBytes = now, ent.total, ent.bytes
	}
	ent.value = before + x/p.tau
	ent.last = now
	ent.total += x
	ent.bytes += frameBytes
}

// upsert finds the entry for key at src, or makes one, evicting to stay
// under the cap. Only a new flow allocates.
func (t *table) upsert(e *Engine, p *plan, src *source, key, ident []byte, now float64) *entry {
	t.lastUpdate = now
	h := maphash.Bytes(e.seed, key)
	m := src.flowMap(e, t)
	for ent := m[h]; ent != nil; ent = ent.next {
		if bytes.Equal(ent.key, key) {
			return ent
		}
	}
	if t.n >= e.cfg.MaxFlows {
		t.evict(e, p, now)
		m = src.flowMap(e, t) // the victim may have been the last of m, which then went
	}
	ent := &entry{hash: h, src: src, first: now, last: now, since: now, extrasAt: now, next: m[h]}
	kb := ent.inline[:]
	if len(key)+len(ident) > len(kb) {
		kb = make([]byte, len(key)+len(ident)) // one allocation holds both keys
	}
	copy(kb, key)
	copy(kb[len(key):], ident)
	ent.key, ent.ident = kb[:len(key):len(key)], kb[len(key):len(key)+len(ident):len(key)+len(ident)]
	if p.counts {
		ent.sketches = new([maxValues]distinct)
	}
	m[h] = ent
	t.n++
	ent.slot = len(t.ring)
	t.ring = append(t.ring, ent)
	return ent
}

// flowMap is src's flows in table t, made if it has none: the source keeps
// its maps by table, which spares each sample a lookup in bySource for every
// definition.
func (src *source) flowMap(e *Engine, t *table) map[uint64]*entry {
	if src.wired != e.wired {
		clear(src.maps) // the tables were rewired: ids mean other tables now
		src.maps, src.wired = src.maps[:0], e.wired
	}
	if t.id < len(src.maps) && src.maps[t.id] != nil {
		return src.maps[t.id]
	}
	m := t.bySource[src]
	if m == nil {
		m = map[uint64]*entry{}
		t.bySource[src] = m
	}
	for len(src.maps) <= t.id {
		src.maps = append(src.maps, nil)
	}
	src.maps[t.id] = m
	return m
}

// forgetMap drops the cached map of a table that let it go.
func (src *source) forgetMap(t *table) {
	if t.id < len(src.maps) {
		src.maps[t.id] = nil
	}
}

// distinct is a linear-counting sketch of the distinct values a key took:
// 256 bits, good to a few hundred values, 32 bytes.
type distinct [4]uint64

func (d *distinct) add(v value) {
	h := v.n ^ v.hi*0x9E3779B97F4A7C15 ^ uint64(v.kind)<<56 ^ uint64(v.bits)<<48
	h ^= h >> 30 // splitmix64's finaliser
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 27
	h *= 0x94D049BB133111EB
	h ^= h >> 31
	bit := h >> 56
	d[bit>>6] |= 1 << (bit & 63)
}

// estimate is -m ln(zeros/m); a full sketch reads as its ceiling, m ln m.
func (d *distinct) estimate() float64 {
	const m = 256.0
	ones := 0
	for _, w := range d {
		ones += bits.OnesCount64(w)
	}
	zeros := m - float64(ones)
	if zeros == 0 {
		return m * math.Log(m)
	}
	return -m * math.Log(zeros/m)
}

// evict drops the smallest of the next few flows under the clock hand:
// close to dropping the smallest flow, at a fixed cost per new flow.
func (t *table) evict(e *Engine, p *plan, now float64) {
	if len(t.ring) == 0 {
		return
	}
	var victim *entry
	least := math.Inf(1)
	for range min(16, len(t.ring)) {
		t.hand = (t.hand + 1) % len(t.ring)
		if ent := t.ring[t.hand]; ent.valueAt(p, now) < least {
			victim, least = ent, ent.valueAt(p, now)
		}
	}
	t.remove(e, victim)
	e.stats.FlowsEvicted++
}

// unring takes an entry out of the ring, moving the last one into its place.
func (t *table) unring(ent *entry) {
	last := t.ring[len(t.ring)-1]
	t.ring[ent.slot], last.slot = last, ent.slot
	t.ring[len(t.ring)-1] = nil
	t.ring = t.ring[:len(t.ring)-1]
}

func (t *table) remove(e *Engine, victim *entry) {
	m := t.bySource[victim.src]
	head := m[victim.hash]
	if head == victim {
		if victim.next == nil {
			delete(m, victim.hash)
		} else {
			m[victim.hash] = victim.next
		}
	} else {
		for ent := head; ent != nil; ent = ent.next {
			if ent.next == victim {
				ent.next = victim.next
				break
			}
		}
	}
	if len(m) == 0 {
		delete(t.bySource, victim.src)
		victim.src.forgetMap(t)
	}
	t.n--
	t.unring(victim)
	for _, th := range e.thresholds {
		th.forget(e, victim)
	}
}

func (t *table) dropSource(e *Engine, src *source) {
	for _, ent := range t.bySource[src] {
		for ; ent != nil; ent = ent.next {
			t.n--
			t.unring(ent)
			for _, th := range e.thresholds {
				th.forget(e, ent)
			}
		}
	}
	delete(t.bySource, src)
}

// expire drops flows that have decayed to nothing: below a millionth of a
// unit per second, which takes about 14 time constants for a 1 MB/s flow.
func (t *table) expire(e *Engine, p *plan, now float64) {
	if p == nil {
		return
	}
	for _, m := range t.bySource {
		for _, ent := range m {
			for ; ent != nil; ent = ent.next {
				if ent.valueAt(p, now) < 1e-6 {
					t.remove(e, ent)
				}
			}
		}
	}
}
