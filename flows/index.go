package flows

// hashIndex finds items by a 64-bit hash: open addressing with linear
// probing, and deletion by backward shift, so no tombstones build up. Each
// slot holds the hash beside the pointer, so a probe past another item
// never touches that item. An item out of cache costs two cache misses, the
// slot and the item, where a Go map costs the group's control word, its
// slot and the item. The hash must be well mixed in its low bits (maphash).
type hashIndex[T any] struct {
	slots []indexSlot[T] // a power of two long, at most half full
	n     int
}

type indexSlot[T any] struct {
	hash uint64
	item *T // nil: empty
}

const minIndexSlots = 16

// probe returns where a lookup of h starts and the mask that wraps it: a
// caller walks slots[i], slots[(i+1)&mask], ... until an empty slot. The
// loop lives in the caller, so its comparison inlines.
func (ix *hashIndex[T]) probe(h uint64) (i, mask uint64) {
	if len(ix.slots) == 0 {
		ix.slots = make([]indexSlot[T], minIndexSlots)
	}
	mask = uint64(len(ix.slots) - 1)
	return h & mask, mask
}

// home is the item in h's home slot, where a lookup of h starts and, at
// half load or less, mostly ends: what a prefetch of h should load.
func (ix *hashIndex[T]) home(h uint64) *T {
	i, _ := ix.probe(h)
	return ix.slots[i].item
}

// insert adds an item; it does not look for one already there.
func (ix *hashIndex[T]) insert(h uint64, item *T) {
	if 2*(ix.n+1) > len(ix.slots) {
		ix.grow()
	}
	i, mask := ix.probe(h)
	for ix.slots[i].item != nil {
		i = (i + 1) & mask
	}
	ix.slots[i] = indexSlot[T]{h, item}
	ix.n++
}

func (ix *hashIndex[T]) grow() {
	old := ix.slots
	ix.slots = make([]indexSlot[T], max(2*len(old), minIndexSlots))
	mask := uint64(len(ix.slots) - 1)
	for _, s := range old {
		if s.item == nil {
			continue
		}
		i := s.hash & mask
		for ix.slots[i].item != nil {
			i = (i + 1) & mask
		}
		ix.slots[i] = s
	}
}

// remove takes out item, filed under h; it is a no-op if item is absent.
func (ix *hashIndex[T]) remove(h uint64, item *T) {
	if len(ix.slots) == 0 {
		return
	}
	i, mask := ix.probe(h)
	for ix.slots[i].item != item {
		if ix.slots[i].item == nil {
			return
		}
		i = (i + 1) & mask
	}
	// Shift back each later item of the run that may fill the hole: one
	// whose home slot k is not cyclically within (hole, j].
	for j := i; ; {
		j = (j + 1) & mask
		if ix.slots[j].item == nil {
			break
		}
		k := ix.slots[j].hash & mask
		if (j-k)&mask >= (j-i)&mask {
			ix.slots[i] = ix.slots[j]
			i = j
		}
	}
	ix.slots[i] = indexSlot[T]{}
	ix.n--
}

// len is how many items the index holds.
func (ix *hashIndex[T]) len() int { return ix.n }
