package flows

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestHashIndexFollowsAModel inserts and removes at random, with hashes
// drawn from a small set so that runs collide, wrap past the end of the
// slots and shift back; after every step each item must be found under its
// hash and the count must match a map's.
func TestHashIndexFollowsAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type item struct{ h uint64 }
	var ix hashIndex[item]
	model := map[*item]bool{}
	var live []*item
	find := func(it *item) bool {
		for i, mask := ix.probe(it.h); ix.slots[i].item != nil; i = (i + 1) & mask {
			if ix.slots[i].item == it {
				return ix.slots[i].hash == it.h
			}
		}
		return false
	}
	for step := range 20_000 {
		if len(live) == 0 || rng.IntN(3) != 0 {
			// Few distinct hashes, half of them at the last slots
			// whatever the size, so runs wrap.
			it := &item{h: rng.Uint64N(64)}
			if rng.IntN(2) == 0 {
				it.h = ^rng.Uint64N(8)
			}
			ix.insert(it.h, it)
			model[it] = true
			live = append(live, it)
		} else {
			k := rng.IntN(len(live))
			it := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			ix.remove(it.h, it)
			delete(model, it)
			if find(it) {
				t.Fatalf("step %d: removed item still found", step)
			}
		}
		if ix.len() != len(model) {
			t.Fatalf("step %d: index holds %d, model %d", step, ix.len(), len(model))
		}
		if step%97 == 0 || len(live) < 40 {
			for it := range model {
				if !find(it) {
					t.Fatalf("step %d: item with hash %#x lost", step, it.h)
				}
			}
		}
		if 2*ix.len() > len(ix.slots) {
			t.Fatalf("step %d: %d items in %d slots", step, ix.len(), len(ix.slots))
		}
	}
	ix.remove(1, &item{h: 1}) // absent: nothing happens
	if ix.len() != len(model) {
		t.Fatalf("removing an absent item changed the count")
	}
}

func TestDecayIsExp(t *testing.T) {
	for x := 0.0; x < 3; x += 1e-4 {
		if got, want := decay(x), math.Exp(-x); math.Abs(got-want) > 1e-11*want {
			t.Fatalf("decay(%g) = %.17g, exp(-x) = %.17g", x, got, want)
		}
	}
	if got := decay(-0.5); got != math.Exp(0.5) {
		t.Fatalf("decay(-0.5) = %g", got)
	}
}

// TestEntryIs256Bytes: an entry must fill its size class exactly, so that
// the allocator aligns it and its first two cache lines are one pair.
func TestEntryIs256Bytes(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 256 {
		t.Fatalf("entry is %d bytes; set inlineKeys to fill 256", n)
	}
	if off := unsafe.Offsetof(entry{}.inline); off+28 > 128 {
		t.Fatalf("a 28-byte key ends at %d, past the first two cache lines", off+28)
	}
}
