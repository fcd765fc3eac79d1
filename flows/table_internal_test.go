package flows

import (
	"math"
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
