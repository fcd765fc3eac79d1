package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/keys"
)

// RoutesBucket holds the RIB an api node's BGP peer learned: each prefix's
// best route, which engine nodes watch to say who owns an address.
const RoutesBucket = "FABRICTRACE_ROUTES"

// Routes is the routes bucket.
type Routes struct {
	kv jetstream.KeyValue

	Faults atomic.Uint64 // entries that did not read as a route
}

// OpenRoutes joins (or makes) the routes bucket.
func OpenRoutes(ctx context.Context, js jetstream.JetStream) (*Routes, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RoutesBucket, History: 1,
		Description: "fabrictrace: the best route of each prefix the api node's BGP peer learned"})
	if err != nil {
		return nil, fmt.Errorf("routes bucket %s: %w", RoutesBucket, err)
	}
	return &Routes{kv: kv}, nil
}

// routeKey is the prefix in base64url: a KV key may hold neither ':' nor '/'.
func routeKey(p netip.Prefix) string {
	return "r." + base64.RawURLEncoding.EncodeToString([]byte(p.String()))
}

func parseRouteKey(key string) (netip.Prefix, error) {
	if len(key) < 2 || key[:2] != "r." {
		return netip.Prefix{}, fmt.Errorf("route key %q: want r.PREFIX", key)
	}
	b, err := base64.RawURLEncoding.DecodeString(key[2:])
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("route key %q: %w", key, err)
	}
	return netip.ParsePrefix(string(b))
}

// Share makes the bucket hold routes, the RIB as it is now: it puts what
// changed since the last call (last, which it updates) and deletes what is
// gone.
func (r *Routes) Share(ctx context.Context, now map[netip.Prefix]keys.Route, last map[netip.Prefix]keys.Route) error {
	var errs []error
	for p, rt := range now {
		if was, ok := last[p]; ok && sameRoute(was, rt) {
			continue
		}
		b, err := json.Marshal(rt)
		if err == nil {
			_, err = r.kv.Put(ctx, routeKey(p), b)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		last[p] = rt
	}
	for p := range last {
		if _, ok := now[p]; ok {
			continue
		}
		if err := r.kv.Delete(ctx, routeKey(p)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			errs = append(errs, err)
			continue
		}
		delete(last, p)
	}
	return errors.Join(errs...)
}

func sameRoute(a, b keys.Route) bool {
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && a.Peer == b.Peer && a.PeerID == b.PeerID &&
		slices.Equal(a.ASPath, b.ASPath) && slices.Equal(a.Communities, b.Communities)
}

// RouteTable is an engine node's copy of the routes bucket: keys.Routes for
// its bgp keys and owners, read without a lock or an allocation.
type RouteTable struct {
	snap atomic.Pointer[routeSnapshot]

	mu    sync.Mutex
	table map[netip.Prefix]keys.Route
	dirty bool
}

// routeSnapshot is an immutable table and the prefix lengths it holds,
// longest first.
type routeSnapshot struct {
	table map[netip.Prefix]keys.Route
	lens  []int
}

// NewRouteTable is empty until Watch fills it.
func NewRouteTable() *RouteTable {
	t := &RouteTable{table: map[netip.Prefix]keys.Route{}}
	t.snap.Store(&routeSnapshot{table: map[netip.Prefix]keys.Route{}})
	return t
}

// RouteOf is the best route of a's longest matching prefix (keys.Routes).
func (t *RouteTable) RouteOf(a netip.Addr) (keys.Route, bool) {
	s := t.snap.Load()
	for _, l := range s.lens {
		if l > a.BitLen() {
			continue
		}
		p, _ := a.Prefix(l)
		if rt, ok := s.table[p]; ok {
			return rt, true
		}
	}
	return keys.Route{}, false
}

// Len is how many prefixes the table holds now.
func (t *RouteTable) Len() int { return len(t.snap.Load().table) }

// publish makes the table what readers see, if it changed.
func (t *RouteTable) publish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dirty {
		return
	}
	s := &routeSnapshot{table: make(map[netip.Prefix]keys.Route, len(t.table))}
	seen := map[int]bool{}
	for p, rt := range t.table {
		s.table[p] = rt
		if !seen[p.Bits()] {
			seen[p.Bits()] = true
			s.lens = append(s.lens, p.Bits())
		}
	}
	slices.SortFunc(s.lens, func(a, b int) int { return b - a })
	t.snap.Store(s)
	t.dirty = false
}

// Watch keeps t the bucket's copy until ctx ends, publishing what changed
// at most every interval; gone is told of each prefix withdrawn (the
// engine's Withdrawn). ready is called once the bucket's routes at the
// start are in.
func (r *Routes) Watch(ctx context.Context, t *RouteTable, interval time.Duration, gone func(netip.Prefix), ready func()) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", RoutesBucket, err)
	}
	defer w.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.publish()
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				t.publish()
				if ready != nil {
					ready()
				}
				continue
			}
			p, err := parseRouteKey(e.Key())
			if err != nil {
				r.Faults.Add(1)
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				t.mu.Lock()
				_, had := t.table[p]
				delete(t.table, p)
				t.dirty = true
				t.mu.Unlock()
				t.publish() // at once: the engine asks where it lives now
				if had && gone != nil {
					gone(p)
				}
				continue
			}
			var rt keys.Route
			if err := json.Unmarshal(e.Value(), &rt); err != nil || rt.Prefix != p {
				r.Faults.Add(1)
				continue
			}
			t.mu.Lock()
			t.table[p] = rt
			t.dirty = true
			t.mu.Unlock()
		}
	}
}
