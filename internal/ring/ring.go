// Package ring is a bounded log of items with ids 1, 2, 3... that long-poll
// readers wait on: the store behind /events/json, /elephants/json and
// /flows/json. It is safe for concurrent use, so engines that share one
// give their items one sequence of ids.
package ring

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Log is a bounded log of items with ids 1, 2, 3..., that long-poll
// readers wait on. A reader blocked in Wait wakes as soon as an item is
// added: an add closes the channel readers hold and makes a new one, but
// only when a reader took it since the last add, so that a writer adding
// many items with no reader waiting (elephants starting by the thousand)
// neither allocates nor closes anything.
type Log[T any] struct {
	waiters atomic.Int64 // long polls blocked in Wait now
	mu      sync.Mutex
	items   []T // circular, cap fixed
	ids     []int64
	last    int64 // id of the newest item; 0 when empty
	wake    chan struct{}
	taken   bool // wake was handed to a reader since it was made
}

// New returns a log that holds the newest size items.
func New[T any](size int) *Log[T] {
	return &Log[T]{items: make([]T, size), ids: make([]int64, size), wake: make(chan struct{})}
}

// Add appends an item, giving it the next id through set, and wakes waiters.
func (r *Log[T]) Add(item T, set func(*T, int64)) int64 {
	r.mu.Lock()
	id := r.last + 1
	r.put(item, id, set)
	r.mu.Unlock()
	return id
}

// AddAt appends an item with an id of the caller's (one the log has not
// given yet, such as a stream's sequence), giving it through set; ids
// skipped are absent. It says false, adding nothing, when id is not past
// the newest.
func (r *Log[T]) AddAt(item T, id int64, set func(*T, int64)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id <= r.last {
		return false
	}
	r.put(item, id, set)
	return true
}

// put stores item as id (past r.last) and wakes waiters; r.mu is held.
func (r *Log[T]) put(item T, id int64, set func(*T, int64)) {
	r.last = id
	slot := int((id - 1) % int64(len(r.items)))
	r.items[slot], r.ids[slot] = item, id
	set(&r.items[slot], id) // in place: a pointer to item would move it to the heap
	if r.taken {
		close(r.wake)
		r.wake, r.taken = make(chan struct{}), false
	}
}

// Since returns up to limit items with id > after that keep passes, newest
// first, and a channel closed by the next Add. An after older than the log
// holds, or negative, gives the newest.
func (r *Log[T]) Since(after int64, limit int, keep func(*T) bool) ([]T, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []T{}
	oldest := max(r.last-int64(len(r.items))+1, 1)
	for id := r.last; id > after && id >= oldest && len(out) < limit; id-- {
		slot := int((id - 1) % int64(len(r.items)))
		if r.ids[slot] != id { // skipped by AddAt
			continue
		}
		if keep == nil || keep(&r.items[slot]) {
			out = append(out, r.items[slot])
		}
	}
	r.taken = true
	return out, r.wake
}

// Last is the newest item's id; 0 when none was added.
func (r *Log[T]) Last() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Waiters is how many long polls are blocked in Wait now.
func (r *Log[T]) Waiters() int64 { return r.waiters.Load() }

// Wait returns what Since does, blocking up to timeout for something to
// return. It ends early when ctx does (a client that hung up).
func (r *Log[T]) Wait(ctx context.Context, after int64, limit int, timeout time.Duration, keep func(*T) bool) []T {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	r.waiters.Add(1)
	defer r.waiters.Add(-1)
	for {
		out, wake := r.Since(after, limit, keep)
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
