package flows

import (
	"net/netip"
	"testing"
	"unsafe"
)

// TestEntryIs256Bytes: the engine's entry must fill its size class
// exactly, so that the allocator aligns it and its first two cache lines
// are one pair (package tables checks where the key starts).
func TestEntryIs256Bytes(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 256 {
		t.Fatalf("entry is %d bytes; set inlineKeys to fill 256", n)
	}
}

// Pairs spread evenly over shards: over 10,000 container pairs, each of 2,
// 3 and 4 shards gets its share within 5 %.
func TestPairShardsAreEven(t *testing.T) {
	for _, k := range []int{2, 3, 4} {
		count := make([]int, k)
		for i := range 10_000 {
			src := netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)})
			dst := netip.AddrFrom4([4]byte{172, 17, byte(i % 7), byte(i % 251)})
			count[pairHash(src, dst)%uint64(k)]++
		}
		for s, n := range count {
			if share := float64(n) * float64(k) / 10_000; share < 0.95 || share > 1.05 {
				t.Errorf("%d shards: shard %d has %d of 10,000 pairs", k, s, n)
			}
		}
	}
}

// TestPoolStripeIsACacheLine: workers of different agents take the pools'
// stripes at once, each its own lock, so a stripe must be one whole cache
// line, or two stripes' locks would share one (as they did at 56 bytes).
func TestPoolStripeIsACacheLine(t *testing.T) {
	var p Pools
	if n := unsafe.Sizeof(p.stripes[0]); n != 64 {
		t.Fatalf("a pool stripe is %d bytes; pad it to 64", n)
	}
}
