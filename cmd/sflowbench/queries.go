package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"time"
)

// queryStat is what one REST path cost while a step sent.
type queryStat struct {
	path          string
	n, failed     int
	p50, p99, max time.Duration
	kib           float64 // the mean answer's size
}

// ask asks the paths of base in turn, one query at a time, as a dashboard
// or a script polling does, each once per every (back to back for 0),
// until ctx ends; each query is bounded by 10 s.
func ask(ctx context.Context, base string, paths []string, every time.Duration) []queryStat {
	took := make([][]time.Duration, len(paths))
	failed := make([]int, len(paths))
	size := make([]int64, len(paths))
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(max(every, time.Nanosecond))
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i = (i + 1) % len(paths) {
		if i == 0 && every > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-tick.C:
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+paths[i], nil)
		if err != nil {
			failed[i]++
			continue
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				failed[i]++
			}
			continue
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			if ctx.Err() == nil {
				failed[i]++
			}
			continue
		}
		took[i] = append(took[i], time.Since(t0))
		size[i] += n
	}
	out := make([]queryStat, len(paths))
	for i, p := range paths {
		d := took[i]
		slices.Sort(d)
		q := queryStat{path: p, n: len(d), failed: failed[i]}
		if len(d) > 0 {
			at := func(f float64) time.Duration { return d[min(len(d)-1, int(f*float64(len(d))))] }
			q.p50, q.p99, q.max = at(0.5).Round(10*time.Microsecond), at(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond)
			q.kib = float64(size[i]) / float64(len(d)) / 1024
		}
		out[i] = q
	}
	return out
}
