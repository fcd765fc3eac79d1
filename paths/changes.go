package paths

import (
	"fmt"

	"github.com/fabrictrace/fabrictrace/api"
)

// DetectChanges raises a pathchange event for each 5-tuple whose node at
// some TTL fell silent (stale) while another node at that TTL kept
// reporting: the flow moved. It does not depend on the order in which the
// two nodes' samples arrived, which export delay scrambles. The old path
// goes to the tuple's history, and its hops are forgotten, so that the
// move back is a change too. Only tuples with two agents at one TTL are
// looked at.
func (pt *Tracker) DetectChanges(now float64, v View, emit func(api.Event)) {
	keep := pt.contested[:0]
	for _, tr := range pt.contested {
		if tr.slot < 0 {
			tr.contested = false
			continue // evicted or expired
		}
		pt.detectChange(tr, now, v, emit)
		if tr.contested = twoAtOneTTL(tr.hops); tr.contested {
			keep = append(keep, tr)
		}
	}
	clear(pt.contested[len(keep):])
	pt.contested = keep
}

func twoAtOneTTL(hops []hopSeen) bool {
	for i := range hops {
		for j := i + 1; j < len(hops); j++ {
			if rivals(&hops[i], &hops[j]) {
				return true
			}
		}
	}
	return false
}

func (pt *Tracker) detectChange(tr *Tracked, now float64, v View, emit func(api.Event)) {
	stale := make([]bool, len(tr.hops))
	for i := range tr.hops {
		stale[i] = pt.stale(tr, &tr.hops[i], now)
	}
	// The replaced hop that fell silent last, and its replacement.
	var old, repl *hopSeen
	for i := range tr.hops {
		a := &tr.hops[i]
		if !stale[i] {
			continue
		}
		for j := range tr.hops {
			b := &tr.hops[j]
			if !stale[j] && rivals(a, b) && b.last > a.last {
				if old == nil || a.last > old.last {
					old, repl = a, b
				}
			}
		}
	}
	if old == nil {
		return
	}
	// Every hop of the old path goes with it, stale or not yet: one its
	// TTL's newer hop outlasts (a flow moves all its hops at once, and the
	// agents of some report the silence before others do).
	for i := range tr.hops {
		h := &tr.hops[i]
		if stale[i] || internal(h) {
			continue
		}
		for j := range tr.hops {
			if b := &tr.hops[j]; j != i && b.ttl == h.ttl && !internal(b) && b.first > h.first && b.last > h.last && !stale[j] {
				stale[i] = true
				break
			}
		}
	}
	// The old path: those hops, and the live ones at TTLs where none of
	// them stands. The new one: the live hops.
	var before, after []hopSeen
	staleAt := map[uint8]bool{}
	for i := range tr.hops {
		if stale[i] && !internal(&tr.hops[i]) {
			staleAt[tr.hops[i].ttl] = true
		}
	}
	for i, h := range tr.hops {
		switch {
		case stale[i]:
			before = append(before, h)
		default:
			after = append(after, h)
			if !staleAt[h.ttl] || internal(&h) {
				before = append(before, h)
			}
		}
	}
	// When it changed: between the old hop's last sample and the new one's
	// first, whichever arrived first (export delay may reorder them); at
	// the old hop's last when the new one was there before it (a flow back
	// from a brief detour).
	at := (old.last + repl.first) / 2
	if repl.first < old.first {
		at = old.last
	}
	if at < tr.epoch {
		at = tr.epoch
	}
	// What it sent on the old path: its best-sampled hop that ended with
	// it (a hop it kept counts on, into the new path's time).
	var oldBytes float64
	for i := range tr.hops {
		if h := &tr.hops[i]; stale[i] {
			oldBytes = max(oldBytes, h.bytes-h.baseBytes)
		}
	}
	beforeHops, _ := v.assemble(ptrs(before))
	afterHops, _ := v.assemble(ptrs(after))
	if len(tr.history) == maxHistory {
		tr.history = append(tr.history[:0], tr.history[1:]...)
	}
	tr.history = append(tr.history, pathEpoch{hops: before, from: tr.epoch, to: at})
	tr.pastBytes += oldBytes
	tr.epoch = at
	for i := range after {
		if after[i].first < at {
			after[i].baseBytes = after[i].bytes // kept through the change
		}
	}
	tr.gone, tr.goneAt, tr.goneHold = tr.gone[:0], now, 0
	for i, h := range tr.hops {
		if stale[i] {
			tr.gone = append(tr.gone, h)
			_, hold, _ := pt.clock(h.agent, h.last)
			tr.goneHold = max(tr.goneHold, 2*hold)
		}
	}
	tr.hops = append(tr.hops[:0], after...)
	t := tr.t
	ev := api.Event{Timestamp: v.Wall(now), ThresholdID: api.EventPathChange, Metric: "path",
		FlowKey: fmt.Sprintf("%s,%s,%d,%d,%d", t.src, t.dst, t.proto, t.sport, t.dport),
		OldPath: nodeNames(beforeHops), NewPath: nodeNames(afterHops), ChangedAt: v.Wall(at)}
	if len(afterHops) > 0 {
		ev.Agent = afterHops[0].Agent
	}
	emit(ev)
}

func ptrs(hs []hopSeen) []*hopSeen {
	out := make([]*hopSeen, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

func nodeNames(hops []api.PathHop) []string {
	out := make([]string, len(hops))
	for i, h := range hops {
		out[i] = fmt.Sprintf("%s@%d", h.Node, h.TTL)
	}
	return out
}
