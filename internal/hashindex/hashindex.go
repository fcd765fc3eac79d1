// Package hashindex finds items by a 64-bit hash, for the engine's tables
// that every sample looks up: the flow tables and the path tracker.
package hashindex

// Index finds items by a 64-bit hash: open addressing with linear
// probing, and deletion by backward shift, so no tombstones build up. Each
// slot holds the hash beside the pointer, so a probe past another item
// never touches that item. An item out of cache costs two cache misses, the
// slot and the item, where a Go map costs the group's control word, its
// slot and the item. The hash must be well mixed in its low bits (maphash).
type Index[T any] struct {
	// Slots are a power of two long, at most half full: Probe's caller
	// walks them.
	Slots []Slot[T]
	n     int
}

// Slot is one place of the index.
type Slot[T any] struct {
	Hash uint64
	Item *T // nil: empty
}

const minIndexSlots = 16

// Probe returns where a lookup of h starts and the mask that wraps it: a
// caller walks Slots[i], Slots[(i+1)&mask], ... until an empty slot. The
// loop lives in the caller, so its comparison inlines.
func (ix *Index[T]) Probe(h uint64) (i, mask uint64) {
	if len(ix.Slots) == 0 {
		ix.Slots = make([]Slot[T], minIndexSlots)
	}
	mask = uint64(len(ix.Slots) - 1)
	return h & mask, mask
}

// Home is the item in h's home slot, where a lookup of h starts and, at
// half load or less, mostly ends: what a prefetch of h should load.
func (ix *Index[T]) Home(h uint64) *T {
	i, _ := ix.Probe(h)
	return ix.Slots[i].Item
}

// Insert adds an item; it does not look for one already there.
func (ix *Index[T]) Insert(h uint64, item *T) {
	if 2*(ix.n+1) > len(ix.Slots) {
		ix.grow()
	}
	i, mask := ix.Probe(h)
	for ix.Slots[i].Item != nil {
		i = (i + 1) & mask
	}
	ix.Slots[i] = Slot[T]{h, item}
	ix.n++
}

func (ix *Index[T]) grow() {
	old := ix.Slots
	ix.Slots = make([]Slot[T], max(2*len(old), minIndexSlots))
	mask := uint64(len(ix.Slots) - 1)
	for _, s := range old {
		if s.Item == nil {
			continue
		}
		i := s.Hash & mask
		for ix.Slots[i].Item != nil {
			i = (i + 1) & mask
		}
		ix.Slots[i] = s
	}
}

// Remove takes out item, filed under h; it is a no-op if item is absent.
func (ix *Index[T]) Remove(h uint64, item *T) {
	if len(ix.Slots) == 0 {
		return
	}
	i, mask := ix.Probe(h)
	for ix.Slots[i].Item != item {
		if ix.Slots[i].Item == nil {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back each later item of the run that may fill the hole: one
	// whose home slot k is not cyclically within (hole, j].
	for j := i; ; {
		j = (j + 1) & mask
		if ix.Slots[j].Item == nil {
			break
		}
		k := ix.Slots[j].Hash & mask
		if (j-k)&mask >= (j-i)&mask {
			ix.Slots[i] = ix.Slots[j]
			i = j
		}
	}
	ix.Slots[i] = Slot[T]{}
	ix.n--
}

// Len is how many items the index holds.
func (ix *Index[T]) Len() int { return ix.n }
