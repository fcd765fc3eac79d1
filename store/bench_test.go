package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/store"
)

// BenchmarkHistoryQuery: an indexed query (one threshold, an hour's window,
// newest 100) over 1,000,000 stored events.
func BenchmarkHistoryQuery(b *testing.B) {
	path := filepath.Join(b.TempDir(), "ft.db")
	s, err := store.Open(store.Config{Path: path, Queue: 1_100_000, Batch: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	const n = 1_000_000
	base := time.Now().Add(-n * time.Second).UnixMilli() // recent: inside the retention
	for i := range n {
		s.AddEvent(store.Event{Timestamp: base + int64(i)*1000, Threshold: []string{"elephant", "collision", "pathchange"}[i%3],
			FlowKey: "172.16.1.11,172.16.1.42", Body: map[string]int{"eventID": i}})
	}
	s.Close()
	if st := s.Stats(); st.Written != n {
		b.Fatalf("%d written", st.Written)
	}
	s, err = store.Open(store.Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	i := 0
	for b.Loop() {
		since := base + int64(i%900_000)*1000
		i += 7919
		evs, err := s.Events(context.Background(), store.Query{Threshold: "collision", Since: since, Until: since + 3_600_000, Limit: 100})
		if err != nil || len(evs) != 100 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
	}
}
