package flows

import (
	"math"
	"net/netip"
	"testing"
	"unsafe"
)

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
