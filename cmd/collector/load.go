package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// loadGauge works out what /analyzer/json reports as sFlow-RT does: the
// CPU load of this process and of the system (fractions of all CPUs, over
// the time since it was last asked, at least a quarter of a second), and
// the heap.
type loadGauge struct {
	mu              sync.Mutex
	at              time.Time
	proc            time.Duration // this process's CPU time then
	busy, total     uint64        // the system's, from /proc/stat
	process, system float64       // the last figures
	samples         []metrics.Sample
}

func newLoadGauge() *loadGauge {
	g := &loadGauge{samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}}
	g.read(time.Now())
	return g
}

func (g *loadGauge) read(now time.Time) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	proc := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	busy, total := systemCPU()
	if !g.at.IsZero() {
		if wall := now.Sub(g.at); wall > 0 {
			g.process = min(float64(proc-g.proc)/(float64(wall)*float64(runtime.NumCPU())), 1)
		}
		if total > g.total {
			g.system = float64(busy-g.busy) / float64(total-g.total)
		}
	}
	g.at, g.proc, g.busy, g.total = now, proc, busy, total
}

// figures returns the loads and the heap in use and its ceiling (the
// memory limit if one is set, else what the runtime holds from the OS).
func (g *loadGauge) figures() map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.at) >= 250*time.Millisecond {
		g.read(now)
	}
	metrics.Read(g.samples)
	heapMax := g.samples[1].Value.Uint64()
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
		heapMax = uint64(limit)
	}
	return map[string]any{"cpuLoadProcess": g.process, "cpuLoadSystem": g.system,
		"heapUsed": g.samples[0].Value.Uint64(), "heapMax": heapMax}
}

// systemCPU reads the busy and total jiffies of all CPUs from /proc/stat.
func systemCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var idle uint64
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return total - idle, total
}
