package ingest

import "testing"

func TestSeqTracker(t *testing.T) {
	type step struct {
		seq     uint32
		outcome seqOutcome
		lost    uint32
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{1, seqFirst, 0}, {2, seqNext, 0}, {3, seqNext, 0}}},
		{"gap", []step{{10, seqFirst, 0}, {11, seqNext, 0}, {15, seqNext, 3}}},
		{"late fills the gap", []step{{1, seqFirst, 0}, {3, seqNext, 1}, {2, seqLate, 0}, {2, seqDuplicate, 0}}},
		{"duplicate of the latest", []step{{5, seqFirst, 0}, {5, seqDuplicate, 0}}},
		{"wraps at 2^32", []step{{0xFFFFFFFE, seqFirst, 0}, {0xFFFFFFFF, seqNext, 0}, {0, seqNext, 0}, {2, seqNext, 1}}},
		{"far behind is a restart", []step{{5000, seqFirst, 0}, {5001, seqNext, 0}, {1, seqReset, 0}, {2, seqNext, 0}}},
		{"huge jump is a reset", []step{{1, seqFirst, 0}, {1 << 30, seqReset, 0}, {1<<30 + 1, seqNext, 0}}},
		{"late beyond a wide gap", []step{{100, seqFirst, 0}, {200, seqNext, 99}, {199, seqLate, 0}, {150, seqLate, 0}, {150, seqDuplicate, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for i, s := range tc.steps {
				o, lost := tr.observe(s.seq)
				if o != s.outcome || lost != s.lost {
					t.Fatalf("step %d seq %d: got outcome %d lost %d, want %d lost %d", i, s.seq, o, lost, s.outcome, s.lost)
				}
			}
		})
	}
}
