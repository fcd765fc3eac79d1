package ring_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/internal/ring"
)

type item struct {
	id int64
	v  int
}

func setID(it *item, id int64) { it.id = id }

// The log keeps the newest items, newest first, with ids that go up by one.
func TestKeepsTheNewest(t *testing.T) {
	r := ring.New[item](4)
	for i := range 10 {
		r.Add(item{v: i}, setID)
	}
	got, _ := r.Since(-1, 100, nil)
	if len(got) != 4 || got[0].id != 10 || got[3].id != 7 || got[0].v != 9 {
		t.Fatalf("Since(-1) = %v, want ids 10..7", got)
	}
	if got, _ := r.Since(8, 100, nil); len(got) != 2 || got[1].id != 9 {
		t.Errorf("Since(8) = %v, want ids 10 and 9", got)
	}
	if got, _ := r.Since(2, 100, func(it *item) bool { return it.v%2 == 0 }); len(got) != 2 {
		t.Errorf("Since(2, even) = %v, want 2 items", got)
	}
	if r.Last() != 10 {
		t.Errorf("Last = %d", r.Last())
	}
}

// Writers that share a log give their items one sequence: no id twice,
// none skipped.
func TestSharedWritersGetOneSequence(t *testing.T) {
	const writers, each = 4, 500
	r := ring.New[item](writers * each)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r.Add(item{}, setID)
			}
		}()
	}
	wg.Wait()
	got, _ := r.Since(0, writers*each, nil)
	for i, it := range got {
		if want := int64(writers*each - i); it.id != want {
			t.Fatalf("item %d has id %d, want %d", i, it.id, want)
		}
	}
}

// A long poll wakes on the next Add, and ends when its caller hangs up.
func TestWaitWakesAndEnds(t *testing.T) {
	r := ring.New[item](8)
	done := make(chan []item)
	go func() { done <- r.Wait(context.Background(), 0, 10, time.Minute, nil) }()
	for r.Waiters() == 0 {
		time.Sleep(time.Millisecond) // until the poll is blocked: what is being tested is its wake
	}
	r.Add(item{v: 7}, setID)
	if got := <-done; len(got) != 1 || got[0].v != 7 {
		t.Errorf("Wait = %v, want the item added", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- r.Wait(ctx, 1, 10, time.Minute, nil) }()
	for r.Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if got := <-done; len(got) != 0 {
		t.Errorf("Wait after hang-up = %v, want nothing", got)
	}
	if r.Waiters() != 0 {
		t.Errorf("%d waiters left", r.Waiters())
	}
}

// Items added at ids of the caller's (a stream's sequence): the ids
// skipped are absent, never an older item that shared their slot, and an
// id not past the newest is refused.
func TestAddAt(t *testing.T) {
	r := ring.New[item](4)
	for _, id := range []int64{1, 2, 3, 4, 5} { // slots 0-3, then 5 over 1's
		r.AddAt(item{v: int(id)}, id, setID)
	}
	if !r.AddAt(item{v: 9}, 9, setID) { // 6-8 skipped: 9 is in 5's slot
		t.Fatal("id 9 refused")
	}
	if r.AddAt(item{v: 8}, 8, setID) || r.AddAt(item{v: 9}, 9, setID) {
		t.Error("an id not past the newest taken")
	}
	got, _ := r.Since(0, 10, nil)
	var ids []int64
	for _, it := range got {
		if int64(it.v) != it.id {
			t.Errorf("item %d under id %d", it.v, it.id)
		}
		ids = append(ids, it.id)
	}
	// The log holds ids 6-9 by its size; 6, 7 and 8 were skipped.
	if fmt.Sprint(ids) != "[9]" {
		t.Errorf("ids %v, want [9]", ids)
	}
	if r.Last() != 9 {
		t.Errorf("Last = %d, want 9", r.Last())
	}
	r.AddAt(item{v: 10}, 10, setID)
	if got, _ := r.Since(8, 10, nil); len(got) != 2 || got[0].id != 10 || got[1].id != 9 {
		t.Errorf("Since(8) = %v, want 10 and 9", got)
	}
}

// Adding with no reader holding the wake channel allocates nothing; a
// reader that took it before the adds still wakes.
func TestAddWithoutReadersDoesNotAllocate(t *testing.T) {
	r := ring.New[item](64)
	if n := testing.AllocsPerRun(1000, func() { r.Add(item{v: 1}, setID) }); n != 0 {
		t.Errorf("Add with no reader: %.1f allocs, want 0", n)
	}
	_, wake := r.Since(r.Last(), 10, nil)
	r.Add(item{v: 2}, setID)
	select {
	case <-wake:
	default:
		t.Fatal("a reader's wake channel not closed by the next Add")
	}
	_, wake = r.Since(r.Last(), 10, nil)
	r.AddAt(item{v: 3}, r.Last()+5, setID)
	select {
	case <-wake:
	default:
		t.Fatal("a reader's wake channel not closed by AddAt")
	}
}
