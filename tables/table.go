package tables

import (
	"bytes"
	"iter"
	"math"
	"math/bits"

	"github.com/fabrictrace/fabrictrace/internal/hashindex"
	"github.com/fabrictrace/fabrictrace/keys"
)

// Table holds one definition's flows, per data source (S), under a cap.
// F is what the engine keeps of the thresholds an entry fired. One writer
// at a time: the engine's lock.
type Table[S, F any] struct {
	Index hashindex.Index[Entry[S, F]] // by the hash of the source and key
	// bySource is the first of each data source's entries, which link on
	// through srcNext: only a new or dropped flow touches it, not a sample.
	bySource   map[*S]*Entry[S, F]
	LastUpdate float64
	// Ring holds every entry, for eviction: a clock hand walks it, so
	// finding a victim costs the same however big the table is.
	Ring []*Entry[S, F]
	hand int
	tau  float64 // the definition's time constant, s
	max  int     // entries at most
	// OnRemove is told of every entry let go, before it goes; evicted
	// says whether it went to stay under the cap.
	OnRemove func(ent *Entry[S, F], evicted bool)
}

// Entry is one flow at one data source. Its value is a rate: each sample
// adds amount/tau, and the sum decays with time constant tau, so a steady
// flow of R units per second reads R.
type Entry[S, F any] struct {
	// What a sample reads and writes comes first: the first two cache lines
	// hold it and the start of the key. The entry is 256 bytes, so the Go
	// allocator places it on a 256-byte boundary and those two lines are one
	// aligned 128-byte pair. With thousands of flows the table is never in
	// cache, and every line a sample touches is a miss.
	Src   *S      // where it was sampled
	Value float64 // rate at last
	Last  float64
	Total float64 // value units since first, undecayed
	Bytes float64 // frame bytes since first, whatever the value
	Fired F       // the first threshold it fired, waiting to re-arm
	// The current burst: Since when, and the totals when it began. A burst
	// begins with a sample that finds the flow decayed to nearly nothing, so
	// an elephant's life is not stretched by the mice of the same key before it.
	Since                  float64
	BurstTotal, BurstBytes float64
	keyLen                 uint16
	// inline holds the binary flow key when it fits; spill when not.
	inline [inlineKeys]byte
	spill  []byte
	Hash   uint64 // the hash of Src and the key, the caller's
	// srcPrev and srcNext link the entries of src in this table.
	srcPrev, srcNext *Entry[S, F]
	MoreFired        []F // any other thresholds it fired
	First            float64
	Values           *EntryValues // the definition's values: nil without any
	Slot             int          // its place in the table's ring
}

// inlineKeys fills the entry to 256 bytes (TestEntryIs256Bytes).
const inlineKeys = 70

// EntryValues is what an entry keeps for its definition's values.
type EntryValues struct {
	At       float64 // when extras last decayed
	Extras   [keys.MaxValues]float64
	AvgN     [keys.MaxValues]float64
	Sketches [keys.MaxValues]Distinct // for count: values
}

// Key is the binary flow Key.
func (ent *Entry[S, F]) Key() []byte {
	if ent.keyLen > inlineKeys {
		return ent.spill // in a cache line a sample does not otherwise touch
	}
	return ent.inline[:ent.keyLen]
}

// AtSource is the first of a data source's entries (nil for none); the
// others follow by NextAtSource.
func (t *Table[S, F]) AtSource(src *S) *Entry[S, F] { return t.bySource[src] }

// NextAtSource is the next entry of the same data source, or nil.
func (ent *Entry[S, F]) NextAtSource() *Entry[S, F] { return ent.srcNext }

// Sources yields each data source with an entry, and its first entry.
func (t *Table[S, F]) Sources() iter.Seq2[*S, *Entry[S, F]] {
	return func(yield func(*S, *Entry[S, F]) bool) {
		for src, head := range t.bySource {
			if !yield(src, head) {
				return
			}
		}
	}
}

// Touch reads the entry's first two cache lines, for a caller that warms
// the entries a batch will update (the sum is only so that the loads are
// kept).
func (ent *Entry[S, F]) Touch() uint64 { return uint64(ent.Value) + uint64(ent.inline[0]) }

// NewTable returns an empty table of flows of time constant tau (seconds),
// of at most max entries.
func NewTable[S, F any](tau float64, max int) *Table[S, F] {
	return &Table[S, F]{bySource: map[*S]*Entry[S, F]{}, tau: tau, max: max}
}

// ValueAt is the entry's rate at now, for a flow of time constant tau.
func (ent *Entry[S, F]) ValueAt(tau, now float64) float64 {
	return ent.Value * Decay((now-ent.Last)/tau)
}

// Decay is exp(-x). Samples of a flow mostly arrive well within its time
// constant of each other, where the Taylor series to x^7 is exact to 2e-12
// and costs a third of math.Exp.
func Decay(x float64) float64 {
	if 0 <= x && x < 0.125 {
		const c2, c3, c4, c5, c6, c7 = 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040
		return 1 - x*(1-x*(c2-x*(c3-x*(c4-x*(c5-x*(c6-x*c7))))))
	}
	return math.Exp(-x)
}

// Add counts x value units and frameBytes bytes at now in a flow of time
// constant tau; one that finds the rate under burstLevel starts a burst.
func (ent *Entry[S, F]) Add(tau, burstLevel, x, frameBytes, now float64) {
	if now < ent.Last { // a sample replayed after later ones: decayed as much as it is by then
		ent.Value += x / tau * Decay((ent.Last-now)/tau)
		ent.Total += x
		ent.Bytes += frameBytes
		return
	}
	before := ent.ValueAt(tau, now)
	if before < burstLevel {
		ent.Since, ent.BurstTotal, ent.BurstBytes = now, ent.Total, ent.Bytes
	}
	ent.Value = before + x/tau
	ent.Last = now
	ent.Total += x
	ent.Bytes += frameBytes
}

// Upsert finds the entry for key at src, or makes one (with values when
// the definition has some), evicting to stay under the cap. h is the
// hash of src and key, the caller's. Only a new flow allocates.
func (t *Table[S, F]) Upsert(src *S, key []byte, h uint64, now float64, values bool) *Entry[S, F] {
	t.LastUpdate = max(t.LastUpdate, now)
	for i, mask := t.Index.Probe(h); t.Index.Slots[i].Item != nil; i = (i + 1) & mask {
		if s := &t.Index.Slots[i]; s.Hash == h && s.Item.Src == src && bytes.Equal(s.Item.Key(), key) {
			return s.Item
		}
	}
	if t.Index.Len() >= t.max {
		t.evict(now)
	}
	ent := &Entry[S, F]{Hash: h, Src: src, First: now, Last: now, Since: now, keyLen: uint16(len(key))}
	if len(key) > inlineKeys {
		ent.spill = bytes.Clone(key)
	} else {
		copy(ent.inline[:], key)
	}
	if values {
		ent.Values = &EntryValues{At: now}
	}
	t.Index.Insert(h, ent)
	if head := t.bySource[src]; head != nil {
		ent.srcNext, head.srcPrev = head, ent
	}
	t.bySource[src] = ent
	ent.Slot = len(t.Ring)
	t.Ring = append(t.Ring, ent)
	return ent
}

// Distinct is a linear-counting sketch of the Distinct values a key took:
// 256 bits, good to a few hundred values, 32 bytes.
type Distinct [4]uint64

func (d *Distinct) Add(v keys.Value) {
	h := v.N ^ v.Hi*0x9E3779B97F4A7C15 ^ uint64(v.Kind)<<56 ^ uint64(v.Bits)<<48
	h ^= h >> 30 // splitmix64's finaliser
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 27
	h *= 0x94D049BB133111EB
	h ^= h >> 31
	bit := h >> 56
	d[bit>>6] |= 1 << (bit & 63)
}

// Estimate is -m ln(zeros/m); a full sketch reads as its ceiling, m ln m.
func (d *Distinct) Estimate() float64 {
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
func (t *Table[S, F]) evict(now float64) {
	if len(t.Ring) == 0 {
		return
	}
	var victim *Entry[S, F]
	least := math.Inf(1)
	for range min(16, len(t.Ring)) {
		t.hand = (t.hand + 1) % len(t.Ring)
		if ent := t.Ring[t.hand]; ent.ValueAt(t.tau, now) < least {
			victim, least = ent, ent.ValueAt(t.tau, now)
		}
	}
	t.remove(victim, true)
}

// unring takes an entry out of the ring, moving the last one into its place.
func (t *Table[S, F]) unring(ent *Entry[S, F]) {
	last := t.Ring[len(t.Ring)-1]
	t.Ring[ent.Slot], last.Slot = last, ent.Slot
	t.Ring[len(t.Ring)-1] = nil
	t.Ring = t.Ring[:len(t.Ring)-1]
}

// Remove lets an entry go.
func (t *Table[S, F]) Remove(victim *Entry[S, F]) { t.remove(victim, false) }

func (t *Table[S, F]) remove(victim *Entry[S, F], evicted bool) {
	if t.OnRemove != nil {
		t.OnRemove(victim, evicted)
	}
	t.Index.Remove(victim.Hash, victim)
	t.unlink(victim)
	t.unring(victim)
}

// unlink takes an entry out of its source's list.
func (t *Table[S, F]) unlink(ent *Entry[S, F]) {
	switch {
	case ent.srcPrev != nil:
		ent.srcPrev.srcNext = ent.srcNext
	case ent.srcNext != nil:
		t.bySource[ent.Src] = ent.srcNext
	default:
		delete(t.bySource, ent.Src)
	}
	if ent.srcNext != nil {
		ent.srcNext.srcPrev = ent.srcPrev
	}
	ent.srcPrev, ent.srcNext = nil, nil
}

// DropSource lets go every entry of a data source.
func (t *Table[S, F]) DropSource(src *S) {
	for head := t.bySource[src]; head != nil; head = t.bySource[src] {
		t.Remove(head)
	}
}

// Expire drops flows that have decayed to nothing: below a millionth of a
// unit per second, which takes about 14 time constants for a 1 MB/s flow.
func (t *Table[S, F]) Expire(now float64) {
	// Backwards, since a removal moves the ring's last entry, already
	// seen, into the gap.
	for i := len(t.Ring) - 1; i >= 0; i-- {
		if t.Ring[i].ValueAt(t.tau, now) < 1e-6 {
			t.Remove(t.Ring[i])
		}
	}
}
