package elephants

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/internal/ring"
	"github.com/fabrictrace/fabrictrace/tables"
)

// env is an engine's side as an elephant reads it: a clock in seconds from
// a wall time of 1000 s, one routed prefix, and one path.
type env struct {
	now    float64
	routed netip.Prefix
}

func (e *env) Now() float64         { return e.now }
func (e *env) Wall(t float64) int64 { return 1_000_000 + int64(t*1000) }
func (e *env) Owner(a netip.Addr) *api.Owner {
	if !e.routed.Contains(a) {
		return nil
	}
	return &api.Owner{Address: a, Prefix: e.routed, AnnouncedBy: "leaf1"}
}
func (e *env) Path(src, dst netip.Addr) []api.PathHop {
	return []api.PathHop{{Node: "leaf1"}, {Node: "spine1"}}
}

type (
	source struct{ name string }
	fired  struct{}
	entry  = tables.Entry[source, fired]
)

var (
	src = netip.MustParseAddr("10.0.0.1")
	dst = netip.MustParseAddr("10.1.0.7")
)

// hop makes an entry at a data source that carried rate units a second
// (tau 1 s) since time since, up to now.
func hop(tb *tables.Table[source, fired], s *source, key string, rate, since, now float64) *entry {
	ent := tb.Upsert(s, []byte(key), uint64(len(key))^uint64(len(s.name)), since, false)
	for t := since; t <= now; t += 0.01 {
		ent.Add(1, 0, rate*0.01, rate*0.01, t)
	}
	return ent
}

func start(loc string) *Start {
	return &Start{Threshold: "elephant", Metric: "pair", Value: 100, Ident: "10.0.0.1,10.1.0.7",
		FlowKey: "10.0.0.1,10.1.0.7", Src: src, Dst: dst, Tau: 1, Measure: "bytes",
		Location: api.Location{Agent: loc, DataSource: "1", FlowKey: "10.0.0.1,10.1.0.7"}}
}

// One elephant seen at two hops: a start, a location, its end only when
// the last hop leaves; records that say so; and its updates in order.
func TestLifecycleOverTwoHops(t *testing.T) {
	ev := &env{now: 10, routed: netip.MustParsePrefix("10.1.0.0/24")}
	l := NewLog[source, fired](ev, 100)
	tb := tables.NewTable[source, fired](1, 100)
	leaf, spine := &source{"leaf"}, &source{"spine"}
	a := hop(tb, leaf, "k", 500, 5, 10)
	b := hop(tb, spine, "k", 480, 6, 10)

	el := l.Start(start("leaf"), a, a.Value)
	if l.Start(start("spine"), b, b.Value) != el {
		t.Fatal("a second hop of the same identity started another elephant")
	}
	recs := l.Active()
	if len(recs) != 1 {
		t.Fatalf("%d active, want 1", len(recs))
	}
	r := recs[0]
	if len(r.Locations) != 2 || r.Owner == nil || r.Owner.AnnouncedBy != "leaf1" || len(r.Path) != 2 {
		t.Fatalf("record %+v: want two locations, owner leaf1 and a path", r)
	}
	if r.Rate < 400 || r.Rate > 510 {
		t.Fatalf("rate %g, want the busiest hop's, about 500", r.Rate)
	}
	if r.Start != ev.Wall(5) {
		t.Fatalf("start %d, want the first hop's first sample, %d", r.Start, ev.Wall(5))
	}

	ev.now = 20
	l.Leave(el, a)
	if len(l.Active()) != 1 {
		t.Fatal("the elephant ended with one hop still on it")
	}
	l.Leave(el, a) // again: nothing
	l.Leave(el, b)
	if len(l.Active()) != 0 {
		t.Fatal("the elephant outlived its last hop")
	}
	changes := l.Changes(context.Background(), 0, 10, 0)
	var updates []string
	for i := len(changes) - 1; i >= 0; i-- {
		updates = append(updates, changes[i].Update)
	}
	if got := len(updates); got != 3 || updates[0] != "start" || updates[1] != "location" || updates[2] != "end" {
		t.Fatalf("updates %v, want start, location, end", updates)
	}
	end := changes[0]
	if last := ev.Wall(max(a.Last, b.Last)); end.Active || end.End != last {
		t.Fatalf("end record %+v: want inactive, ended at its last sample over the threshold (%d)", end, last)
	}
	if recs := l.Records(0); len(recs) != 1 || recs[0].Active || recs[0].Update != "" {
		t.Fatalf("records %+v: want the one ended elephant, in its last state", recs)
	}
}

// A withdrawn destination marks its elephants gone, once; announced again,
// its owner comes back.
func TestWithdrawnAndBack(t *testing.T) {
	ev := &env{now: 1, routed: netip.MustParsePrefix("10.1.0.0/24")}
	l := NewLog[source, fired](ev, 100)
	tb := tables.NewTable[source, fired](1, 100)
	ent := hop(tb, &source{"leaf"}, "k", 500, 0, 1)
	l.Start(start("leaf"), ent, ent.Value)

	l.Withdrawn(netip.MustParsePrefix("10.2.0.0/24"), ev.Wall(2)) // not its prefix
	if o := l.Active()[0].Owner; o == nil || o.Gone != 0 {
		t.Fatalf("owner %+v after another prefix's withdrawal", o)
	}
	l.Withdrawn(ev.routed, ev.Wall(2))
	l.Withdrawn(ev.routed, ev.Wall(3))
	o := l.Active()[0].Owner
	if o == nil || o.Gone != ev.Wall(2) || o.Was == nil || o.Was.AnnouncedBy != "leaf1" {
		t.Fatalf("owner %+v, want gone at %d, was leaf1's", o, ev.Wall(2))
	}
	l.OwnersBack(func(netip.Addr) *api.Owner { return nil })
	if l.Active()[0].Owner.Gone == 0 {
		t.Fatal("owner back with no route")
	}
	l.OwnersBack(ev.Owner)
	if o := l.Active()[0].Owner; o.Gone != 0 || o.AnnouncedBy != "leaf1" {
		t.Fatalf("owner %+v, want back at leaf1", o)
	}
	var updates []string
	for _, c := range l.Changes(context.Background(), 0, 10, 0) {
		updates = append(updates, c.Update)
	}
	if len(updates) != 3 || updates[0] != "ownerback" || updates[1] != "gone" || updates[2] != "start" {
		t.Fatalf("updates newest first %v, want ownerback, gone, start", updates)
	}
}

// An owner attributed before the topology knew its leaf's name gets the
// name once it is known, with an owner update, once.
func TestNamesBack(t *testing.T) {
	ev := &env{now: 1, routed: netip.MustParsePrefix("10.1.0.0/24")}
	l := NewLog[source, fired](ev, 100)
	tb := tables.NewTable[source, fired](1, 100)
	ent := hop(tb, &source{"leaf"}, "k", 500, 0, 1)
	el := l.Start(start("leaf"), ent, ent.Value)
	el.rec.Owner.AnnouncedBy = "" // as when counters had not named leaf1 yet
	unnamed := func(a netip.Addr) *api.Owner { o := ev.Owner(a); o.AnnouncedBy = ""; return o }
	l.NamesBack(unnamed)
	if o := l.Active()[0].Owner; o.AnnouncedBy != "" {
		t.Fatalf("owner %+v named from nothing", o)
	}
	l.NamesBack(ev.Owner)
	if o := l.Active()[0].Owner; o.AnnouncedBy != "leaf1" {
		t.Fatalf("owner %+v, want announced by leaf1", o)
	}
	l.NamesBack(ev.Owner) // the same names: no update
	var updates []string
	for _, c := range l.Changes(context.Background(), 0, 10, 0) {
		updates = append(updates, c.Update)
	}
	if len(updates) != 2 || updates[0] != "owner" || updates[1] != "start" {
		t.Fatalf("updates newest first %v, want owner, start", updates)
	}
}

// Shards share the ids and the ring; a pair's query finds its elephants
// only; locations under the threshold are not reported.
func TestSharedIDsPairAndLocations(t *testing.T) {
	ev := &env{now: 10}
	changes := ring.New[api.Elephant](100)
	var ids atomic.Int64
	l1, l2 := NewLog[source, fired](ev, 100), NewLog[source, fired](ev, 100)
	l1.Share(changes, &ids)
	l2.Share(changes, &ids)
	tb := tables.NewTable[source, fired](1, 100)
	a := hop(tb, &source{"a"}, "k1", 500, 5, 10)
	b := hop(tb, &source{"b"}, "k2", 50, 5, 10) // under the threshold now
	l1.Start(start("a"), a, a.Value)
	other := start("b")
	other.Ident, other.Dst = "other", netip.MustParseAddr("10.9.9.9")
	l2.Start(other, b, 150)
	if got := changes.Last(); got != 2 {
		t.Fatalf("shared ring holds %d changes, want 2", got)
	}
	if r1, r2 := l1.Active()[0].ElephantID, l2.Active()[0].ElephantID; r1 == r2 {
		t.Fatalf("two shards' elephants share id %d", r1)
	}
	if p := l1.Pair(src, dst); len(p) != 1 || p[0].ThresholdID != "elephant" || p[0].Value != "bytes" {
		t.Fatalf("pair %+v, want the one elephant", p)
	}
	if p := l2.Pair(src, dst); len(p) != 0 {
		t.Fatalf("pair %+v in the other shard", p)
	}
	n := 0
	for ent, key := range l1.Locations(ev.now) {
		if ent != a || key != "10.0.0.1,10.1.0.7" {
			t.Fatalf("location %p %q", ent, key)
		}
		n++
	}
	for range l2.Locations(ev.now) {
		t.Fatal("a location under its threshold was reported")
	}
	if n != 1 {
		t.Fatalf("%d locations, want 1", n)
	}
	for id := range l1.Idents() {
		if id != "10.0.0.1,10.1.0.7" {
			t.Fatalf("ident %q", id)
		}
	}
}
