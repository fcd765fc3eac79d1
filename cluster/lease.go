package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the KV bucket that says which engine node owns which
// partition, and which nodes are alive.
const LeaseBucket = "FABRICTRACE_LEASES"

// Leases share P partitions among engine nodes through a JetStream KV
// bucket whose keys expire TTL after their last write: "part.<p>" holds
// its owner's name, "node.<name>" says a node is alive. Every tick a node
// renews what it owns, releases what is past its fair share (P over the
// nodes alive, the first P mod N by name one more), and claims unowned partitions up to it, each
// with a create that fails if another node got there first. So a node
// that dies loses its partitions TTL after its last renewal, and the
// others claim them at their next tick; a node that comes back is given
// partitions as the others release their extra ones. A node that stops
// gracefully (Close) releases everything at once.
type Leases struct {
	kv    jetstream.KeyValue
	name  string
	parts int

	mu    sync.Mutex
	owned map[int]uint64 // partition -> the revision of our lease
}

// DefaultLeaseTTL is how long a lease lasts unrenewed: a dead node's
// partitions move within it and a tick.
const DefaultLeaseTTL = 6 * time.Second

// OpenLeases joins the lease bucket (making it, with ttl, if it is not
// there) as node name, over parts partitions.
func OpenLeases(ctx context.Context, js jetstream.JetStream, name string, parts int, ttl time.Duration) (*Leases, error) {
	if name == "" || strings.ContainsAny(name, ". *>") {
		return nil, fmt.Errorf("engine node name %q: want letters, digits, '-' or '_'", name)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, TTL: ttl, History: 1})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", LeaseBucket, err)
	}
	return &Leases{kv: kv, name: name, parts: parts, owned: map[int]uint64{}}, nil
}

// Owned lists the partitions this node holds, in order.
func (l *Leases) Owned() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]int, 0, len(l.owned))
	for p := range l.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func partKey(p int) string { return "part." + strconv.Itoa(p) }

// Tick runs one round: heartbeat, renew, release past the fair share,
// claim up to it. It says whether what the node owns changed.
func (l *Leases) Tick(ctx context.Context) (bool, error) {
	if _, err := l.kv.PutString(ctx, "node."+l.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	owners, nodes, err := l.read(ctx)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	changed := false
	// Renew; a lease lost (expired and taken, or deleted) is let go.
	for p, rev := range l.owned {
		if owners[p] != l.name {
			delete(l.owned, p)
			changed = true
			continue
		}
		if next, err := l.kv.Update(ctx, partKey(p), []byte(l.name), rev); err == nil {
			l.owned[p] = next
		} else {
			delete(l.owned, p)
			changed = true
		}
	}
	// The share: P over the nodes, the first P mod N of them by name one
	// more, so that the shares add up to P.
	rank := slices.Index(nodes, l.name)
	share := l.parts / len(nodes)
	if rank < l.parts%len(nodes) {
		share++
	}
	// Past the share: release the highest, for the nodes that have fewer.
	for len(l.owned) > share {
		p := slices.Max(mapKeys(l.owned))
		l.kv.Delete(ctx, partKey(p), jetstream.LastRevision(l.owned[p]))
		delete(l.owned, p)
		changed = true
	}
	// Under it: claim unowned ones, starting from a place of our own so
	// that nodes do not all race for partition 0.
	h := fnv.New32a()
	h.Write([]byte(l.name))
	start := int(h.Sum32() % uint32(l.parts))
	for i := 0; i < l.parts && len(l.owned) < share; i++ {
		p := (start + i) % l.parts
		if owners[p] != "" {
			continue
		}
		rev, err := l.kv.Create(ctx, partKey(p), []byte(l.name))
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return changed, fmt.Errorf("claim partition %d: %w", p, err)
		}
		l.owned[p] = rev
		changed = true
	}
	return changed, nil
}

// read returns each partition's owner ("" for none) and the names of the
// nodes alive (this one at least), sorted.
func (l *Leases) read(ctx context.Context) ([]string, []string, error) {
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, nil, fmt.Errorf("leases: %w", err)
	}
	defer w.Stop()
	owners := make([]string, l.parts)
	nodes := map[string]bool{l.name: true}
	for {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil { // the initial values are all in
				names := mapKeys(nodes)
				slices.Sort(names)
				return owners, names, nil
			}
			key := e.Key()
			if name, ok := strings.CutPrefix(key, "node."); ok {
				nodes[name] = true
			} else if ps, ok := strings.CutPrefix(key, "part."); ok {
				if p, err := strconv.Atoi(ps); err == nil && p >= 0 && p < l.parts {
					owners[p] = string(e.Value())
				}
			}
		}
	}
}

// Run ticks every interval until ctx ends, calling changed with what the
// node owns whenever that changes; then it releases everything (Close).
func (l *Leases) Run(ctx context.Context, interval time.Duration, changed func(owned []int)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	defer l.Close()
	for {
		if moved, err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			return err
		} else if moved && changed != nil {
			changed(l.Owned())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close releases every lease and the node's heartbeat, so that the others
// take its partitions at their next tick instead of after the TTL.
func (l *Leases) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, rev := range l.owned {
		l.kv.Delete(ctx, partKey(p), jetstream.LastRevision(rev))
		delete(l.owned, p)
	}
	l.kv.Delete(ctx, "node."+l.name)
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
