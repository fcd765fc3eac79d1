package flows

import (
	"bytes"
	"github.com/fabrictrace/fabrictrace/keys"
	"hash/maphash"
	"math"
	"math/bits"

	"github.com/fabrictrace/fabrictrace/internal/hashindex"
)

// table holds one definition's flows, per data source, under a cap.
type table struct {
	index hashindex.Index[entry] // by flowHash of the source and key
	// bySource is the first of each data source's entries, which link on
	// through srcNext: only a new or dropped flow touches it, not a sample.
	bySource   map[*source]*entry
	lastUpdate float64
	// ring holds every entry, for eviction: a clock hand walks it, so
	// finding a victim costs the same however big the table is.
	ring []*entry
	hand int
	// plan and logged, for a definition with log:true: where each entry's
	// next flow record begins.
	plan   *plan
	logged map[*entry]logMark
}

// entry is one flow at one data source. Its value is a rate: each sample
// adds amount/tau, and the sum decays with time constant tau, so a steady
// flow of R units per second reads R.
type entry struct {
	// What a sample reads and writes comes first: the first two cache lines
	// hold it and the start of the key. The entry is 256 bytes, so the Go
	// allocator places it on a 256-byte boundary and those two lines are one
	// aligned 128-byte pair. With thousands of flows the table is never in
	// cache, and every line a sample touches is a miss.
	src   *source // where it was sampled
	value float64 // rate at last
	last  float64
	total float64 // value units since first, undecayed
	bytes float64 // frame bytes since first, whatever the value
	fired firedBy // the first threshold it fired, waiting to re-arm
	// The current burst: since when, and the totals when it began. A burst
	// begins with a sample that finds the flow decayed to nearly nothing, so
	// an elephant's life is not stretched by the mice of the same key before it.
	since                  float64
	burstTotal, burstBytes float64
	keyLen                 uint16
	// inline holds the binary flow key when it fits; spill when not.
	inline [inlineKeys]byte
	spill  []byte
	hash   uint64 // flowHash(src, key)
	// srcPrev and srcNext link the entries of src in this table.
	srcPrev, srcNext *entry
	moreFired        []firedBy // any other thresholds it fired
	first            float64
	values           *entryValues // the definition's values: nil without any
	slot             int          // its place in the table's ring
}

// inlineKeys fills the entry to 256 bytes (TestEntryIs256Bytes).
const inlineKeys = 70

// entryValues is what an entry keeps for its definition's values.
type entryValues struct {
	at       float64 // when extras last decayed
	extras   [keys.MaxValues]float64
	avgN     [keys.MaxValues]float64
	sketches [keys.MaxValues]distinct // for count: values
}

// key is the binary flow key.
func (ent *entry) key() []byte {
	if ent.keyLen > inlineKeys {
		return ent.spill // in a cache line a sample does not otherwise touch
	}
	return ent.inline[:ent.keyLen]
}

func newTable() *table { return &table{bySource: map[*source]*entry{}} }

func (ent *entry) valueAt(p *plan, now float64) float64 {
	return ent.value * decay((now-ent.last)/p.Tau)
}

// decay is exp(-x). Samples of a flow mostly arrive well within its time
// constant of each other, where the Taylor series to x^7 is exact to 2e-12
// and costs a third of math.Exp.
func decay(x float64) float64 {
	if 0 <= x && x < 0.125 {
		const c2, c3, c4, c5, c6, c7 = 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040
		return 1 - x*(1-x*(c2-x*(c3-x*(c4-x*(c5-x*(c6-x*c7))))))
	}
	return math.Exp(-x)
}

func (ent *entry) add(p *plan, x, frameBytes, now float64) {
	before := ent.valueAt(p, now)
	if before < p.burstLevel {
		ent.since, ent.burstTotal, ent.burstBytes = now, ent.total, ent.bytes
	}
	ent.value = before + x/p.Tau
	ent.last = now
	ent.total += x
	ent.bytes += frameBytes
}

// upsert finds the entry for key at src, or makes one, evicting to stay
// under the cap. h is flowHash(src, key). Only a new flow allocates.
func (t *table) upsert(e *Engine, p *plan, src *source, key []byte, h uint64, now float64) *entry {
	t.lastUpdate = now
	for i, mask := t.index.Probe(h); t.index.Slots[i].Item != nil; i = (i + 1) & mask {
		if s := &t.index.Slots[i]; s.Hash == h && s.Item.src == src && bytes.Equal(s.Item.key(), key) {
			return s.Item
		}
	}
	if t.index.Len() >= e.cfg.MaxFlows {
		t.evict(e, p, now)
	}
	ent := &entry{hash: h, src: src, first: now, last: now, since: now, keyLen: uint16(len(key))}
	if len(key) > inlineKeys {
		ent.spill = bytes.Clone(key)
	} else {
		copy(ent.inline[:], key)
	}
	if len(p.Values) > 0 {
		ent.values = &entryValues{at: now}
	}
	t.index.Insert(h, ent)
	if head := t.bySource[src]; head != nil {
		ent.srcNext, head.srcPrev = head, ent
	}
	t.bySource[src] = ent
	ent.slot = len(t.ring)
	t.ring = append(t.ring, ent)
	return ent
}

// flowHash files a flow key at a data source: the key's hash under the
// engine's seed, told apart by the source's own random salt.
func flowHash(e *Engine, src *source, key []byte) uint64 {
	return maphash.Bytes(e.seed, key) ^ src.salt
}

// distinct is a linear-counting sketch of the distinct values a key took:
// 256 bits, good to a few hundred values, 32 bytes.
type distinct [4]uint64

func (d *distinct) add(v keys.Value) {
	h := v.N ^ v.Hi*0x9E3779B97F4A7C15 ^ uint64(v.Kind)<<56 ^ uint64(v.Bits)<<48
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
	if t.logged != nil {
		e.logEnd(t.plan, t, victim)
	}
	t.index.Remove(victim.hash, victim)
	t.unlink(victim)
	t.unring(victim)
	for _, th := range e.thresholds {
		th.forget(e, victim)
	}
}

// unlink takes an entry out of its source's list.
func (t *table) unlink(ent *entry) {
	switch {
	case ent.srcPrev != nil:
		ent.srcPrev.srcNext = ent.srcNext
	case ent.srcNext != nil:
		t.bySource[ent.src] = ent.srcNext
	default:
		delete(t.bySource, ent.src)
	}
	if ent.srcNext != nil {
		ent.srcNext.srcPrev = ent.srcPrev
	}
	ent.srcPrev, ent.srcNext = nil, nil
}

func (t *table) dropSource(e *Engine, src *source) {
	for head := t.bySource[src]; head != nil; head = t.bySource[src] {
		t.remove(e, head)
	}
}

// expire drops flows that have decayed to nothing: below a millionth of a
// unit per second, which takes about 14 time constants for a 1 MB/s flow.
func (t *table) expire(e *Engine, p *plan, now float64) {
	if p == nil {
		return
	}
	// Backwards, since a removal moves the ring's last entry, already
	// seen, into the gap.
	for i := len(t.ring) - 1; i >= 0; i-- {
		if t.ring[i].valueAt(p, now) < 1e-6 {
			t.remove(e, t.ring[i])
		}
	}
}
