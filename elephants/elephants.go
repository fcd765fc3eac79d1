// Package elephants keeps the life of each elephant: a flow that crossed a
// byFlow threshold, as one record however many hops (locations) see it,
// from its start to its end, and a log of its changes for readers that
// long-poll (/elephants/json).
//
// Package thresholds starts elephants and moves their locations; the
// engine reads them for its queries, for collisions and when a route is
// withdrawn. An elephant's locations are rate-table entries (package
// tables), so it is generic in the table's data source S and in the
// threshold state F each entry holds.
package elephants

import (
	"context"
	"iter"
	"math"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/internal/ring"
	"github.com/fabrictrace/fabrictrace/tables"
)

// Env is what an elephant's record reads from the engine that keeps it.
type Env interface {
	Now() float64         // seconds on the engine's clock
	Wall(t float64) int64 // a time on that clock, in ms since the Unix epoch
	// Owner attributes an address through the RIB: nil when unrouted.
	Owner(a netip.Addr) *api.Owner
	// Path is the biggest path of a pair now, or nil.
	Path(src, dst netip.Addr) []api.PathHop
}

// Estimator gives a flow's rate merged over every hop that sees it, with
// its interval at the normal quantile z: a threshold's evidence, with a
// confidence.
type Estimator interface {
	Estimate(now, z float64) api.Estimate
}

// Elephant is the live state behind an api.Elephant record.
type Elephant[S, F any] struct {
	// What every sample of it reads and writes (Seen) comes first, in one
	// cache line; rec's Peak, Total and Bytes are copied from it when the
	// record is read.
	peak, total, bytes float64
	last, threshold    float64
	first              float64
	rec                api.Elephant
	entries            map[*tables.Entry[S, F]]bool // locations over the threshold, or waiting to re-arm
	src, dst           netip.Addr                   // from the flow's keys, when they hold them
	tau                float64                      // the flow's t, for its locations' rates
	value              string                       // the flow's value (bytes, frames...)
	est                Estimator                    // its merged evidence, with a confidence
	z                  float64
	ident              string
}

// Start is what a threshold knows of a flow entry that crossed it.
type Start struct {
	Threshold, Metric string
	Value             float64 // the threshold's
	// Ident is the flow's identity: its binary key without location
	// fields. Every location of one elephant has the same.
	Ident    string
	FlowKey  string // Ident's text
	Src, Dst netip.Addr
	Tau      float64 // the flow's t
	Measure  string  // the flow's value: bytes, frames...
	// Est and Z, for a threshold with a confidence: the flow's merged
	// evidence, which then gives the elephant's rate.
	Est      Estimator
	Z        float64
	Location api.Location
}

type key struct {
	threshold string
	ident     string
}

// Log holds the active elephants and a ring of their changes.
type Log[S, F any] struct {
	env     Env
	active  map[key]*Elephant[S, F]
	changes *ring.Log[api.Elephant]
	size    int
	nextID  int64
	ids     *atomic.Int64 // shared by shards, when they are
}

// NewLog returns a log whose ring holds size changes.
func NewLog[S, F any](env Env, size int) *Log[S, F] {
	return &Log[S, F]{env: env, active: map[key]*Elephant[S, F]{}, changes: ring.New[api.Elephant](size), size: size}
}

// Share makes the log number its elephants from ids and write its changes
// to changes, both shared with other shards' logs.
func (l *Log[S, F]) Share(changes *ring.Log[api.Elephant], ids *atomic.Int64) {
	if changes != nil {
		l.changes = changes
	}
	l.ids = ids
}

// Start records that a flow entry crossed a byFlow threshold: a new
// elephant, or a new location of one already active.
func (l *Log[S, F]) Start(st *Start, ent *tables.Entry[S, F], v float64) *Elephant[S, F] {
	k := key{st.Threshold, st.Ident}
	el := l.active[k]
	if el == nil {
		id := l.nextID + 1
		if l.ids != nil {
			id = l.ids.Add(1)
		}
		l.nextID = id
		el = &Elephant[S, F]{entries: map[*tables.Entry[S, F]]bool{}, first: ent.Since, threshold: st.Value,
			rec: api.Elephant{ElephantID: id, ThresholdID: st.Threshold, Metric: st.Metric,
				FlowKey: st.FlowKey, Active: true, Threshold: st.Value},
			src: st.Src, dst: st.Dst, tau: st.Tau, value: st.Measure, est: st.Est, z: st.Z, ident: st.Ident}
		el.rec.Detected = l.env.Wall(l.env.Now())
		el.rec.Src, el.rec.Dst = el.src, el.dst
		el.rec.Owner = l.env.Owner(el.dst)
		l.active[k] = el
	}
	update := "location"
	if len(el.entries) == 0 {
		update = "start"
	}
	el.entries[ent] = true
	el.rec.Locations = append(el.rec.Locations, st.Location)
	el.first = math.Min(el.first, ent.Since)
	el.Seen(ent, v)
	l.publish(el, update)
	return el
}

// Seen takes a new value of one of the elephant's locations. Only samples
// over the threshold extend its life: traffic of the same key while it
// clears is not the elephant.
func (el *Elephant[S, F]) Seen(ent *tables.Entry[S, F], v float64) {
	el.peak = max(el.peak, v)
	if v > el.threshold {
		el.last = max(el.last, ent.Last)
	}
	// Every location sees the whole flow: the best-sampled one is the size.
	el.total = max(el.total, ent.Total-ent.BurstTotal)
	el.bytes = max(el.bytes, ent.Bytes-ent.BurstBytes)
}

// Over says the flow's merged rate was rate at now, and whether that is
// over its threshold: a peak, and (if over) a sign of life.
func (el *Elephant[S, F]) Over(now, rate float64, over bool) {
	el.peak = max(el.peak, rate)
	if over {
		el.last = max(el.last, now)
	}
}

// Heard extends the elephant's life to now.
func (el *Elephant[S, F]) Heard(now float64) { el.last = max(el.last, now) }

// Touch reads what a sample of the elephant will write, to load it ahead.
func (el *Elephant[S, F]) Touch() uint64 { return uint64(el.last) }

// Leave takes away a location whose threshold re-armed (or whose flow was
// let go); the elephant ends when its last location leaves.
func (l *Log[S, F]) Leave(el *Elephant[S, F], ent *tables.Entry[S, F]) {
	if el == nil || !el.entries[ent] {
		return
	}
	el.Seen(ent, 0)
	delete(el.entries, ent)
	if len(el.entries) > 0 {
		return
	}
	el.rec.Active = false
	el.rec.End = l.env.Wall(el.last)
	delete(l.active, key{el.rec.ThresholdID, el.ident})
	l.publish(el, "end")
}

func (l *Log[S, F]) publish(el *Elephant[S, F], update string) {
	rec := l.record(el)
	rec.Update = update
	l.changes.Add(rec, func(r *api.Elephant, id int64) { r.UpdateID = id })
}

// record is an elephant's record as of now.
func (l *Log[S, F]) record(el *Elephant[S, F]) api.Elephant {
	if el.rec.Owner == nil { // routes may have come after the elephant did
		el.rec.Owner = l.env.Owner(el.dst)
	}
	rec := el.rec
	rec.Start, rec.Duration = l.env.Wall(el.first), el.last-el.first
	if rec.Active {
		now := l.env.Now()
		rec.Duration = max(now, el.last) - el.first // its age
		est := el.rate(now)
		rec.Rate, rec.RateLow, rec.RateHigh, rec.Samples = est.Rate, est.RateLow, est.RateHigh, est.Samples
	}
	rec.Peak, rec.Total, rec.Bytes = el.peak, el.total, el.bytes
	rec.Path = l.env.Path(el.src, el.dst)
	rec.Locations = append([]api.Location(nil), el.rec.Locations...)
	return rec
}

// rate is an active elephant's rate: merged over its hops, with its
// interval, when its threshold has a confidence; else at its busiest
// location.
func (el *Elephant[S, F]) rate(now float64) api.Estimate {
	if el.est != nil {
		return el.est.Estimate(now, el.z)
	}
	var est api.Estimate
	for ent := range el.entries {
		est.Rate = max(est.Rate, ent.ValueAt(el.tau, now))
	}
	return est
}

// Elephants returns elephant changes after update id after, newest first,
// at most max, waiting up to timeout for one.
func (l *Log[S, F]) Changes(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return l.changes.Wait(ctx, after, max, timeout, nil)
}

// Waiters is how many long polls wait on the log's changes.
func (l *Log[S, F]) Waiters() int64 { return l.changes.Waiters() }

// Active returns the active elephants' records as of now, oldest first.
func (l *Log[S, F]) Active() []api.Elephant {
	out := []api.Elephant{}
	for _, el := range l.active {
		out = append(out, l.record(el))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	return out
}

// Records returns one record per elephant, newest first, at most max: the
// active ones as of now, and the ended ones the log still holds.
func (l *Log[S, F]) Records(max int) []api.Elephant {
	return Records(l.Active(), l.changes, l.size, max)
}

// Records is up to max elephants, newest first: the active ones as given,
// the others as their last update in the log left them.
func Records(active []api.Elephant, log *ring.Log[api.Elephant], size, max int) []api.Elephant {
	out := append([]api.Elephant{}, active...)
	seen := map[int64]bool{}
	for _, r := range active {
		seen[r.ElephantID] = true
	}
	all, _ := log.Since(-1, size, nil)
	for _, r := range all { // newest first: each elephant's last state
		if !seen[r.ElephantID] {
			seen[r.ElephantID] = true
			r.Update = ""
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID > out[j].ElephantID })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// Pair returns a pair's active elephants with their rates, oldest first.
// It walks every active elephant, so only a query should ask it.
func (l *Log[S, F]) Pair(src, dst netip.Addr) []api.PairElephant {
	now := l.env.Now()
	var out []api.PairElephant
	for _, el := range l.active {
		if el.src != src || el.dst != dst {
			continue
		}
		out = append(out, api.PairElephant{ElephantID: el.rec.ElephantID, ThresholdID: el.rec.ThresholdID,
			Threshold: el.threshold, Value: el.value, Estimate: el.rate(now)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	return out
}

// Locations yields each active elephant's locations still over its
// threshold at now, with the elephant's flow key.
func (l *Log[S, F]) Locations(now float64) iter.Seq2[*tables.Entry[S, F], string] {
	return func(yield func(*tables.Entry[S, F], string) bool) {
		for _, el := range l.active {
			for ent := range el.entries {
				if ent.ValueAt(el.tau, now) < el.threshold {
					continue // no longer over the threshold here: it ended or moved
				}
				if !yield(ent, el.rec.FlowKey) {
					return
				}
			}
		}
	}
}

// Idents yields the identities (binary keys) of the active elephants.
func (l *Log[S, F]) Idents() iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range l.active {
			if !yield(k.ident) {
				return
			}
		}
	}
}

// Withdrawn marks the active elephants whose destination is in prefix,
// which lost its last route at wall time at (ms): the container is gone.
// Their records say so from now on.
func (l *Log[S, F]) Withdrawn(prefix netip.Prefix, at int64) {
	for _, el := range l.active {
		if o := el.rec.Owner; o != nil && o.Gone == 0 && prefix.Contains(o.Address) {
			w := *o
			el.rec.Owner = &api.Owner{Address: o.Address, Prefix: o.Prefix, Gone: at, Was: &w}
			l.publish(el, "gone")
		}
	}
}

// NamesBack looks again at the active elephants whose owner's leaf or
// host had no name when they started (the topology learns names from
// counters, which a node just started, or one reading partitions back,
// has not seen yet): again gives the owner as it is now, and an owner
// update says so.
func (l *Log[S, F]) NamesBack(again func(a netip.Addr) *api.Owner) {
	for _, el := range l.active {
		o := el.rec.Owner
		if o == nil || o.Gone != 0 || o.AnnouncedBy != "" && o.Host != "" {
			continue
		}
		if n := again(o.Address); n != nil && n.Prefix == o.Prefix &&
			(n.AnnouncedBy != o.AnnouncedBy || n.Host != o.Host) && n.AnnouncedBy != "" {
			el.rec.Owner = n
			l.publish(el, "owner")
		}
	}
}

// OwnersBack looks again at the active elephants whose destination was
// withdrawn: back gives the owner of one announced again, or nil, and an
// ownerback update says so.
func (l *Log[S, F]) OwnersBack(back func(a netip.Addr) *api.Owner) {
	for _, el := range l.active {
		o := el.rec.Owner
		if o == nil || o.Gone == 0 {
			continue
		}
		if n := back(o.Address); n != nil {
			el.rec.Owner = n
			l.publish(el, "ownerback")
		}
	}
}
