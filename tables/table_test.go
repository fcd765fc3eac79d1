package tables

import (
	"math"
	"testing"
	"unsafe"
)

func TestDecayIsExp(t *testing.T) {
	for x := 0.0; x < 3; x += 1e-4 {
		if got, want := Decay(x), math.Exp(-x); math.Abs(got-want) > 1e-11*want {
			t.Fatalf("decay(%g) = %.17g, exp(-x) = %.17g", x, got, want)
		}
	}
	if got := Decay(-0.5); got != math.Exp(0.5) {
		t.Fatalf("decay(-0.5) = %g", got)
	}
}

// fired stands for what an engine keeps of the thresholds an entry fired:
// flows' is 24 bytes, two pointers and a float.
type fired [3]uint64

type source struct{ _ int }

// TestEntryIs256Bytes: an entry must fill its size class exactly, so that
// the allocator aligns it and its first two cache lines are one pair
// (flows checks its own instance too).
func TestEntryIs256Bytes(t *testing.T) {
	if n := unsafe.Sizeof(Entry[source, fired]{}); n != 256 {
		t.Fatalf("entry is %d bytes; set inlineKeys to fill 256", n)
	}
	if off := unsafe.Offsetof(Entry[source, fired]{}.inline); off+28 > 128 {
		t.Fatalf("a 28-byte key ends at %d, past the first two cache lines", off+28)
	}
}

// A table against a model: random upserts, removals and expiry over a few
// sources keep the index, the ring and each source's list the same set,
// under the cap, and each removal is told once.
func TestTableAgainstAModel(t *testing.T) {
	srcs := []*source{{}, {}, {}}
	tb := NewTable[source, fired](2, 50)
	removed := map[*Entry[source, fired]]int{}
	evicted := 0
	tb.OnRemove = func(ent *Entry[source, fired], ev bool) {
		removed[ent]++
		if ev {
			evicted++
		}
	}
	model := map[[2]int]*Entry[source, fired]{} // (source, key) -> entry
	now := 0.0
	x := uint64(1)
	for step := range 20_000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		si, k := int(x%3), int(x>>8%90)
		key := []byte{byte(k), byte(k >> 8)}
		if k%7 == 0 {
			key = append(key, make([]byte, 80)...) // spills
		}
		h := uint64(si)<<32 | uint64(k)*0x9E3779B97F4A7C15>>8
		now += 0.001
		switch {
		case step%1000 == 999:
			now += 40 // everything decays away
			tb.Expire(now)
			for mk, ent := range model {
				if removed[ent] > 0 {
					delete(model, mk)
				}
			}
		default:
			ent := tb.Upsert(srcs[si], key, h, now, false)
			ent.Add(2, 0, 1000, 1000, now)
			if was, ok := model[[2]int{si, k}]; ok && was != ent && removed[was] == 0 {
				t.Fatalf("step %d: a second entry for one key", step)
			}
			model[[2]int{si, k}] = ent
			for mk, e := range model {
				if removed[e] > 0 {
					delete(model, mk)
				}
			}
		}
		if tb.Index.Len() > 50 || tb.Index.Len() != len(tb.Ring) || len(tb.Ring) != len(model) {
			t.Fatalf("step %d: index %d, ring %d, model %d", step, tb.Index.Len(), len(tb.Ring), len(model))
		}
	}
	for _, n := range removed {
		if n != 1 {
			t.Fatalf("an entry told removed %d times", n)
		}
	}
	n := 0
	for src, head := range tb.Sources() {
		for e := head; e != nil; e = e.NextAtSource() {
			if e.Src != src {
				t.Fatal("an entry in another source's list")
			}
			n++
		}
	}
	if n != len(tb.Ring) || evicted == 0 {
		t.Fatalf("source lists hold %d of %d entries; %d evicted", n, len(tb.Ring), evicted)
	}
}

// Samples replayed after later ones (a partition's new owner reading it
// back) count as much as in order: the rate is linear in its samples.
func TestAddOutOfOrder(t *testing.T) {
	const tau = 2.0
	times := []float64{1, 1.5, 2.2, 3, 4.1, 6}
	var inOrder, replayed Entry[source, fired]
	for i, at := range times {
		inOrder.Add(tau, 0, float64(100*(i+1)), 64, at)
	}
	// The newest first, as live samples come in while the rest replays.
	replayed.Add(tau, 0, float64(100*len(times)), 64, times[len(times)-1])
	for i, at := range times[:len(times)-1] {
		replayed.Add(tau, 0, float64(100*(i+1)), 64, at)
	}
	if got, want := replayed.ValueAt(tau, 7), inOrder.ValueAt(tau, 7); math.Abs(got-want) > 1e-12*want {
		t.Errorf("replayed rate %.15g, in order %.15g", got, want)
	}
	if replayed.Total != inOrder.Total || replayed.Bytes != inOrder.Bytes || replayed.Last != 6 {
		t.Errorf("replayed totals %g, %g, last %g; in order %g, %g", replayed.Total, replayed.Bytes, replayed.Last, inOrder.Total, inOrder.Bytes)
	}
}
