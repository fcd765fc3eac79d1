package cluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
)

// An elephant keeps its id when it moves to another engine node (its
// partition taken over and replayed, or let go: its old node ends it), and
// a new one gets the sequence of its first update.
func TestElephantIDsAcrossNodes(t *testing.T) {
	r := cluster.NewResultsReader(100)
	seq := int64(9)
	now := time.Unix(1_700_000_000, 0)
	send := func(node string, local int64, flowKey, update string) int64 {
		seq++
		now = now.Add(time.Second)
		b, _ := json.Marshal(map[string]any{"node": node, "elephant": api.Elephant{ElephantID: local, ThresholdID: "elephant",
			FlowKey: flowKey, Update: update, Active: update != "end"}})
		cluster.TakeResult(r, b, seq, now)
		got := r.Elephants(context.Background(), seq-1, 1, 0)
		if len(got) != 1 || got[0].UpdateID != seq {
			t.Fatalf("update %d: %+v", seq, got)
		}
		return got[0].ElephantID
	}
	for _, c := range []struct {
		node          string
		local         int64
		flowKey, what string
		want          int64
	}{
		{"e1", 1, "a,b", "start", 10},
		{"e1", 2, "c,d", "start", 11},
		{"e1", 1, "a,b", "location", 10},
		{"e2", 7, "a,b", "start", 10}, // e1 died: a,b moved to e2 and keeps its id
		{"e2", 7, "a,b", "location", 10},
		{"e2", 7, "a,b", "end", 10},
		{"e2", 9, "a,b", "start", 16}, // ended where it was: a new elephant of the same flow
		{"e2", 8, "c,d", "start", 11}, // c,d moved too
		{"e1", 2, "c,d", "end", 11},   // its old node, gone quiet, ends it late: still 11
		{"e2", 8, "c,d", "location", 11},
		{"e2", 8, "c,d", "end", 11},   // e2 lets c,d's partition go: it ends there...
		{"e3", 4, "c,d", "start", 11}, // ...and starts at e3, which took it: the same elephant
		{"e3", 4, "c,d", "end", 11},
		{"", 0, "", "wait", 0},
		{"e1", 5, "c,d", "start", 23}, // long after it ended: a new one
	} {
		if c.what == "wait" {
			now = now.Add(time.Minute)
			continue
		}
		if got := send(c.node, c.local, c.flowKey, c.what); got != c.want {
			t.Errorf("%s's elephant %d (%s) %s: id %d, want %d", c.node, c.local, c.flowKey, c.what, got, c.want)
		}
	}
}
