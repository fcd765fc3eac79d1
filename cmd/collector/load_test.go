package main

import (
	"testing"
	"time"
)

// The load gauge reads this process and the system as fractions of all
// CPUs, and the heap in use under its ceiling.
func TestLoadGaugeFigures(t *testing.T) {
	g := newLoadGauge()
	g.at = g.at.Add(-2 * time.Second) // as if asked 2 s ago: the CPU time since is what a busy loop spent
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	f := g.figures()
	for _, k := range []string{"cpuLoadProcess", "cpuLoadSystem"} {
		if v := f[k].(float64); v <= 0 || v > 1 {
			t.Errorf("%s %v, want a fraction over 0", k, v)
		}
	}
	if used, max := f["heapUsed"].(uint64), f["heapMax"].(uint64); used == 0 || max < used {
		t.Errorf("heap %d of %d", used, max)
	}
}
