package flows

import (
	"context"
	"github.com/fabrictrace/fabrictrace/keys"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/internal/ring"
)

// elephant is the live state behind an Elephant record.
type elephant struct {
	// What every sample of it reads and writes (seen) comes first, in one
	// cache line; rec's Peak, Total and Bytes are copied from it when the
	// record is read (record).
	peak, total, bytes float64
	last, threshold    float64
	first              float64
	rec                api.Elephant
	entries            map[*entry]bool // locations over the threshold, or waiting to re-arm
	src, dst           netip.Addr      // from the flow's keys, when they hold them
	plan               *plan           // the flow's, for its entries' rates
	ev                 *evidence       // its merged evidence, with a confidence
	z                  float64
}

type elephantKey struct {
	threshold string
	ident     string
}

// elephantLog holds active elephants and a ring of changes for readers.
type elephantLog struct {
	active  map[elephantKey]*elephant
	changes *ring.Log[api.Elephant]
	nextID  int64
}

func newElephantLog(size int) *elephantLog {
	return &elephantLog{active: map[elephantKey]*elephant{}, changes: ring.New[api.Elephant](size)}
}

// start records that a flow entry crossed a byFlow threshold: a new
// elephant, or a new location of one already active.
func (l *elephantLog) start(e *Engine, th *threshold, p *plan, ent *entry, v float64) *elephant {
	ident := identOf(p, ent.Key())
	k := elephantKey{th.name, string(ident)}
	el := l.active[k]
	if el == nil {
		id := l.nextID + 1
		if e.shard.ids != nil {
			id = e.shard.ids.Add(1)
		}
		l.nextID = id
		el = &elephant{entries: map[*entry]bool{}, first: ent.Since, threshold: th.def.Value,
			rec: api.Elephant{ElephantID: id, ThresholdID: th.name, Metric: th.def.Metric,
				FlowKey: e.formatIdent(p, ident), Active: true, Threshold: th.def.Value}}
		el.src, el.dst = endpoints(p, ident)
		el.plan = p
		if m := th.members[ent]; m != nil { // fired on merged evidence: its estimate
			el.ev, el.z = m.ev, th.z
		}
		el.rec.Detected = e.wall(e.clock())
		el.rec.Src, el.rec.Dst = el.src, el.dst
		el.rec.Owner = e.owner(el.dst)
		l.active[k] = el
	}
	update := "location"
	if len(el.entries) == 0 {
		update = "start"
	}
	el.entries[ent] = true
	el.rec.Locations = append(el.rec.Locations, api.Location{Agent: ent.Src.key.agent.String(),
		DataSource: ent.Src.key.dataSource(), FlowKey: e.formatKey(p, ent.Key())})
	el.first = math.Min(el.first, ent.Since)
	el.seen(ent, v)
	l.publish(e, el, update)
	return el
}

// endpoints finds the flow's source and destination addresses among its
// key fields.
func endpoints(p *plan, ident []byte) (src, dst netip.Addr) {
	for _, t := range p.Keys {
		if t.Location {
			continue
		}
		var v keys.Value
		v, ident = keys.ReadKey(ident)
		switch {
		case !v.IsAddr():
		case strings.Contains(t.Text, "destination"):
			dst = v.Addr()
		case strings.Contains(t.Text, "source"):
			src = v.Addr()
		}
	}
	return src, dst
}

// owner attributes an address through the RIB and the topology; an address
// whose route was withdrawn lately comes back marked gone.
func (e *Engine) owner(a netip.Addr) *api.Owner {
	if !a.IsValid() || e.cfg.Routes == nil {
		return nil
	}
	r, ok := e.cfg.Routes.RouteOf(a)
	if !ok {
		for p, g := range e.gone {
			if p.Contains(a) {
				return &api.Owner{Address: a, Prefix: p, Gone: g.at, Was: g.was}
			}
		}
		return nil
	}
	o := &api.Owner{Address: a, Prefix: r.Prefix, NextHop: r.NextHop, Peer: r.Peer,
		AnnouncedBy: e.nodeCache.snap.NodeName(r.PeerID), Host: e.nodeCache.snap.NodeName(r.NextHop)}
	if o.AnnouncedBy == "" {
		o.AnnouncedBy = e.nodeCache.snap.NodeName(r.Peer)
	}
	e.remember(o)
	return o
}

// goneRoute is a withdrawn prefix: when, and the route it had, if the
// engine had looked it up.
type goneRoute struct {
	at  int64
	was *api.Owner
}

// remember keeps the owners the engine looked up lately, so that a
// withdrawal can say what was withdrawn; a bounded memory, cleared when full.
func (e *Engine) remember(o *api.Owner) {
	if e.owners == nil || len(e.owners) >= maxGone {
		e.owners = map[netip.Prefix]*api.Owner{}
	}
	e.owners[o.Prefix] = o
}

// Withdrawn marks the active elephants whose destination lost its last
// route: the container is gone. Their records say so from now on.
func (e *Engine) Withdrawn(prefix netip.Prefix) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	// Remember it, so paths to it say gone rather than nothing; a bounded
	// memory, oldest forgotten first.
	if len(e.gone) >= maxGone {
		var oldest netip.Prefix
		for p, g := range e.gone {
			if !oldest.IsValid() || g.at < e.gone[oldest].at {
				oldest = p
			}
		}
		delete(e.gone, oldest)
	}
	was := e.owners[prefix]
	if was != nil {
		delete(e.owners, prefix)
		w := *was
		w.Was, w.Gone = nil, 0
		was = &w
	}
	e.gone[prefix] = goneRoute{e.wall(now), was}
	for _, el := range e.elephants.active {
		if o := el.rec.Owner; o != nil && o.Gone == 0 && prefix.Contains(o.Address) {
			w := *o
			gone := &api.Owner{Address: o.Address, Prefix: o.Prefix, Gone: e.wall(now), Was: &w}
			el.rec.Owner = gone
			e.elephants.publish(e, el, "gone")
		}
	}
}

// ownersBack looks again at the active elephants whose destination was
// withdrawn: one announced again gets its owner back, and an ownerback
// update says so. Sweep runs it.
func (e *Engine) ownersBack() {
	for _, el := range e.elephants.active {
		o := el.rec.Owner
		if o == nil || o.Gone == 0 || e.cfg.Routes == nil {
			continue
		}
		if _, ok := e.cfg.Routes.RouteOf(o.Address); !ok {
			continue
		}
		for p := range e.gone {
			if p.Contains(o.Address) {
				delete(e.gone, p)
			}
		}
		el.rec.Owner = e.owner(o.Address)
		e.elephants.publish(e, el, "ownerback")
	}
}

// maxGone bounds the withdrawn prefixes remembered.
const maxGone = 10_000

// seen takes a new value of one of the elephant's locations. Only samples
// over the threshold extend its life: traffic of the same key while it
// clears is not the elephant.
func (el *elephant) seen(ent *entry, v float64) {
	el.peak = max(el.peak, v)
	if v > el.threshold {
		el.last = max(el.last, ent.Last)
	}
	// Every location sees the whole flow: the best-sampled one is the size.
	el.total = max(el.total, ent.Total-ent.BurstTotal)
	el.bytes = max(el.bytes, ent.Bytes-ent.BurstBytes)
}

// leave takes away a location whose threshold re-armed (or whose flow was
// let go); the elephant ends when its last location leaves.
func (el *elephant) leave(e *Engine, ent *entry) {
	if el == nil || !el.entries[ent] {
		return
	}
	el.seen(ent, 0)
	delete(el.entries, ent)
	if len(el.entries) > 0 {
		return
	}
	el.rec.Active = false
	el.rec.End = e.wall(el.last)
	for k, a := range e.elephants.active {
		if a == el {
			delete(e.elephants.active, k)
		}
	}
	e.elephants.publish(e, el, "end")
}

func (l *elephantLog) publish(e *Engine, el *elephant, update string) {
	rec := e.record(el)
	rec.Update = update
	l.changes.Add(rec, func(r *api.Elephant, id int64) { r.UpdateID = id })
}

// record is an elephant's record as of now.
func (e *Engine) record(el *elephant) api.Elephant {
	if el.rec.Owner == nil { // routes may have come after the elephant did
		el.rec.Owner = e.owner(el.dst)
	}
	rec := el.rec
	rec.Start, rec.Duration = e.wall(el.first), el.last-el.first
	if rec.Active {
		now := e.clock()
		rec.Duration = max(now, el.last) - el.first // its age
		est := el.rateNow(now)
		rec.Rate, rec.RateLow, rec.RateHigh, rec.Samples = est.Rate, est.RateLow, est.RateHigh, est.Samples
	}
	rec.Peak, rec.Total, rec.Bytes = el.peak, el.total, el.bytes
	rec.Path = e.pairPath(el.src, el.dst)
	rec.Locations = append([]api.Location(nil), el.rec.Locations...)
	return rec
}

// Elephants returns elephant starts and ends after update id after, newest
// first, at most max, waiting up to timeout for one.
func (e *Engine) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return e.elephants.changes.Wait(ctx, after, max, timeout, nil)
}

// rateNow is an active elephant's rate: merged over its hops, with its
// interval, when its threshold has a confidence; else at its busiest
// location.
func (el *elephant) rateNow(now float64) api.Estimate {
	if el.ev != nil {
		return el.ev.estimate(now, el.z)
	}
	var est api.Estimate
	for ent := range el.entries {
		est.Rate = max(est.Rate, ent.ValueAt(el.plan.Tau, now))
	}
	return est
}

// ElephantRecords returns one record per elephant, newest first, at most
// max: the active ones as of now, and the ended ones the update log still
// holds, each in its last state.
func (e *Engine) ElephantRecords(max int) []api.Elephant {
	e.mu.Lock()
	defer e.mu.Unlock()
	var active []api.Elephant
	for _, el := range e.elephants.active {
		active = append(active, e.record(el))
	}
	return Records(active, e.elephants.changes, e.cfg.MaxElephants, max)
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

// ActiveElephants returns the elephants over their threshold now, with their
// size so far, longest first.
func (e *Engine) ActiveElephants() []api.Elephant {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []api.Elephant{}
	for _, el := range e.elephants.active {
		out = append(out, e.record(el))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	return out
}
