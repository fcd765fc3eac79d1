package flows

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ring is a bounded log of items with ids 1, 2, 3..., that long-poll
// readers wait on. A reader blocked in Wait wakes as soon as an item is
// added: each add closes the channel readers hold and makes a new one.
type ring[T any] struct {
	waiters atomic.Int64 // long polls blocked in wait now
	mu      sync.Mutex
	items   []T // circular, cap fixed
	ids     []int64
	last    int64 // id of the newest item; 0 when empty
	wake    chan struct{}
}

func newRing[T any](size int) *ring[T] {
	return &ring[T]{items: make([]T, size), ids: make([]int64, size), wake: make(chan struct{})}
}

// add appends an item, giving it the next id through set, and wakes waiters.
func (r *ring[T]) add(item T, set func(*T, int64)) int64 {
	r.mu.Lock()
	r.last++
	id := r.last
	set(&item, id)
	slot := int((id - 1) % int64(len(r.items)))
	r.items[slot], r.ids[slot] = item, id
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	return id
}

// since returns up to max items with id > after that keep passes, newest
// first. An after older than the ring holds, or negative, gives the newest.
func (r *ring[T]) since(after int64, max int, keep func(*T) bool) ([]T, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []T{}
	oldest := r.last - int64(len(r.items)) + 1
	for id := r.last; id > after && id >= max64(oldest, 1) && len(out) < max; id-- {
		slot := int((id - 1) % int64(len(r.items)))
		if keep == nil || keep(&r.items[slot]) {
			out = append(out, r.items[slot])
		}
	}
	return out, r.wake
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// wait returns what since does, blocking up to timeout for something to
// return. It ends early when ctx does (a client that hung up).
func (r *ring[T]) wait(ctx context.Context, after int64, max int, timeout time.Duration, keep func(*T) bool) []T {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		out, wake := r.since(after, max, keep)
		if len(out) > 0 || timeout <= 0 {
			return out
		}
		select {
		case <-wake:
		case <-timer:
			return out
		case <-ctx.Done():
			return out
		}
	}
}
