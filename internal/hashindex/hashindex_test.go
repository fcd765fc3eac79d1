package hashindex

import (
	"math/rand/v2"
	"testing"
)

// TestHashIndexFollowsAModel inserts and removes at random, with hashes
// drawn from a small set so that runs collide, wrap past the end of the
// slots and shift back; after every step each item must be found under its
// hash and the count must match a map's.
func TestHashIndexFollowsAModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type item struct{ h uint64 }
	var ix Index[item]
	model := map[*item]bool{}
	var live []*item
	find := func(it *item) bool {
		for i, mask := ix.Probe(it.h); ix.Slots[i].Item != nil; i = (i + 1) & mask {
			if ix.Slots[i].Item == it {
				return ix.Slots[i].Hash == it.h
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
			ix.Insert(it.h, it)
			model[it] = true
			live = append(live, it)
		} else {
			k := rng.IntN(len(live))
			it := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			ix.Remove(it.h, it)
			delete(model, it)
			if find(it) {
				t.Fatalf("step %d: removed item still found", step)
			}
		}
		if ix.Len() != len(model) {
			t.Fatalf("step %d: index holds %d, model %d", step, ix.Len(), len(model))
		}
		if step%97 == 0 || len(live) < 40 {
			for it := range model {
				if !find(it) {
					t.Fatalf("step %d: item with hash %#x lost", step, it.h)
				}
			}
		}
		if 2*ix.Len() > len(ix.Slots) {
			t.Fatalf("step %d: %d items in %d slots", step, ix.Len(), len(ix.Slots))
		}
	}
	ix.Remove(1, &item{h: 1}) // absent: nothing happens
	if ix.Len() != len(model) {
		t.Fatalf("removing an absent item changed the count")
	}
}
