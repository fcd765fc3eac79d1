package flows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// The soak of make quality, in process and deterministic: two minutes of a
// fabric whose links fail every 10-20 s and whose leaves rehash every 30 s,
// agents holding datagrams 1 s, mice, 1 Gbit/s elephants and a mix of
// flows from a quarter of the threshold to four times it. Every move of an
// elephant that ran 3 s either side of it, to a path it then held 2 s (a
// briefer one is under the tracker's resolution), is raised once, within
// 3 s; no
// event is raised for a move that did not happen; and no flow under half
// the threshold (an elephant's ACKs among them) is called an elephant.
func TestSoakAgainstTheTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("two simulated minutes")
	}
	for _, stall := range []int{1, 3} {
		t.Run(fmt.Sprintf("stall%d", stall), func(t *testing.T) { soak(t, stall) })
	}
}

// soak runs the soak; with stall over 1 the engine takes the datagrams of
// that many 100 ms steps at once, as a collector behind its load does.
func soak(t *testing.T, stall int) {
	f := newFabric(t, sim.Config{Seed: 77, Mice: 100, ServerAgents: true, IPv6: true, ExportDelay: time.Second,
		LinkFailures: true, LinkFailEvery: 10 * time.Second, LinkDownFor: 5 * time.Second,
		ElephantEvery: 10 * time.Second, ElephantRate: 1e9, ElephantDuration: 25 * time.Second,
		MixEvery: 4 * time.Second, MixThreshold: 100e6}, flows.Config{})
	f.stall = stall
	must(t, f.eng.SetFlow("elephant", keys.Definition{Keys: "node:inputifindex,ipsource,ipdestination,ipttl"}))
	must(t, f.eng.SetThreshold("elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 10, Confidence: 0.99}))
	epoch := time.Unix(1_700_000_000, 0)
	for i := range 4 {
		f.run(30 * time.Second)
		if _, err := f.sim.Rehash(fmt.Sprintf("leaf%02d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	f.run(10 * time.Second)
	truth := f.sim.Truth()
	events := f.eng.Events(t.Context(), -1, api.EventPathChange, 10000, 0)
	type change struct {
		at      time.Time
		matched int
	}
	byKey := map[string][]*change{}
	scored := map[*change]bool{}
	for _, tf := range truth.Flows {
		key := fmt.Sprintf("%s,%s,%d,%d,%d", tf.Src, tf.Dst, tf.Proto, tf.SrcPort, tf.DstPort)
		for i, c := range tf.Changes {
			ch := &change{at: epoch.Add(time.Duration(c.Time*1e9) - 100*time.Millisecond)}
			byKey[key] = append(byKey[key], ch)
			held := i+1 == len(tf.Changes) || tf.Changes[i+1].Time-c.Time >= 2
			if tf.Elephant && held && c.Time-tf.Start >= 3 && tf.End-c.Time >= 3 && truth.Elapsed-c.Time >= 5 {
				scored[ch] = true
			}
		}
	}
	var problems []string
	for _, ev := range events {
		// The move nearest the event's estimate of it, before it was raised.
		raised, est := time.UnixMilli(ev.Timestamp), time.UnixMilli(ev.ChangedAt)
		var best *change
		dist := func(c *change) time.Duration { return max(c.at.Sub(est), est.Sub(c.at)) }
		for _, c := range byKey[ev.FlowKey] {
			if !raised.Before(c.at) && c.matched == 0 && (best == nil || dist(c) < dist(best)) {
				best = c
			}
		}
		if best == nil {
			problems = append(problems, fmt.Sprintf("event %s %v -> %v at %v: no move before it", ev.FlowKey, ev.OldPath, ev.NewPath, raised.Sub(epoch)))
			continue
		}
		if best.matched++; best.matched > 1 {
			problems = append(problems, fmt.Sprintf("event %s %v -> %v at %v: a second for the move at %v", ev.FlowKey, ev.OldPath, ev.NewPath, raised.Sub(epoch), best.at.Sub(epoch)))
		}
		if lat := raised.Sub(best.at); scored[best] && lat > 3*time.Second {
			problems = append(problems, fmt.Sprintf("event %s raised %v after the move", ev.FlowKey, lat))
		}
	}
	moves := 0
	for key, cs := range byKey {
		for _, c := range cs {
			if scored[c] {
				moves++
				if c.matched == 0 {
					problems = append(problems, fmt.Sprintf("move of %s at %v never raised", key, c.at.Sub(epoch)))
				}
			}
		}
	}
	// Elephants: each must be a pair that ran a flow over half the threshold.
	for _, r := range f.eng.ElephantRecords(1000) {
		fastest := 0.0
		for _, tf := range truth.Flows {
			if tf.Src == r.Src && tf.Dst == r.Dst {
				fastest = max(fastest, tf.Rate*8)
			}
		}
		if fastest <= 50e6 {
			problems = append(problems, fmt.Sprintf("elephant %s -> %s: its fastest flow is %.0f Mbit/s (rate %.0f, low %.0f, %0.f samples)",
				r.Src, r.Dst, fastest/1e6, r.Rate*8/1e6, r.RateLow*8/1e6, r.Samples))
		}
	}
	t.Logf("%d elephant moves scored, %d pathchange events", moves, len(events))
	if moves < 10 {
		t.Errorf("only %d moves to score", moves)
	}
	if len(problems) > 0 {
		t.Errorf("%d problems:\n%s", len(problems), strings.Join(problems, "\n"))
	}
}
