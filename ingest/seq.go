package ingest

// seqWindow is how far back, in sequence numbers, a late arrival is still
// told apart from a duplicate. Further back than that counts as a restart.
const seqWindow = 64

// maxSeqJump is the largest forward gap counted as loss; a larger jump is
// taken as the sequence having been reset, not as millions of lost datagrams.
const maxSeqJump = 1 << 20

// seqOutcome classifies one sequence number against those seen before.
type seqOutcome uint8

const (
	seqFirst seqOutcome = iota
	seqNext             // in order; lost holds any gap before it
	seqLate             // out of order, filling a gap counted as lost earlier
	seqDuplicate
	seqReset // the sequence started again
)

// seqTracker follows one sequence space (an agent's datagrams, or one data
// source's samples) with a sliding bitmap of the last seqWindow numbers, the
// way IPsec's anti-replay window does.
type seqTracker struct {
	started bool
	last    uint32 // highest sequence number seen
	seen    uint64 // bit i: last-i was seen
}

// observe records seq and returns what it was, and for seqNext how many
// numbers were skipped.
func (t *seqTracker) observe(seq uint32) (seqOutcome, uint32) {
	if !t.started {
		*t = seqTracker{started: true, last: seq, seen: 1}
		return seqFirst, 0
	}
	d := int64(int32(seq - t.last)) // wrap-aware distance
	switch {
	case d > 0 && d <= maxSeqJump:
		if d >= seqWindow {
			t.seen = 1
		} else {
			t.seen = t.seen<<d | 1
		}
		t.last = seq
		return seqNext, uint32(d - 1)
	case d == 0:
		return seqDuplicate, 0
	case d < 0 && -d < seqWindow:
		bit := uint64(1) << -d
		if t.seen&bit != 0 {
			return seqDuplicate, 0
		}
		t.seen |= bit
		return seqLate, 0
	default:
		*t = seqTracker{started: true, last: seq, seen: 1}
		return seqReset, 0
	}
}
