package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
)

// A message on a samples subject is a batch of datagrams, each a valid
// sFlow v5 datagram holding only the samples of one partition (their bytes
// as the agent sent them) and the weight ingest gave each flow sample
// (the packets it stands for, renormalised over all of its data source's
// samples, which no one partition sees):
//
//	message  = magic "FTB1", then records to its end
//	record   = u32 datagram length, datagram, u16 weight count, weights (float64)
//
// The datagram's header is rebuilt from the original's (agent, sub-agent,
// sequence, uptime) with the partition's sample count. Counter samples
// travel the same way on the counters subject, with no weights.

// magic opens every message: the format and its version.
const magic = "FTB1"

// maxRecord bounds one datagram in a message: an sFlow datagram fits a UDP
// payload.
const maxRecord = 65535

// ErrMessage is wrapped by every error of a malformed message.
var ErrMessage = errors.New("malformed sample batch")

// batch builds one message.
type batch struct {
	buf     []byte
	records int
}

func (b *batch) reset() {
	b.buf = append(b.buf[:0], magic...)
	b.records = 0
}

// add appends a datagram of dg's header and the given raw samples, with
// weights (nil for counters).
func (b *batch) add(dg *decode.Datagram, raws [][]byte, weights []float64) {
	if len(b.buf) == 0 {
		b.reset()
	}
	lenAt := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0)
	start := len(b.buf)
	b.buf = binary.BigEndian.AppendUint32(b.buf, 5)
	if dg.Agent.Is4() {
		a := dg.Agent.As4()
		b.buf = binary.BigEndian.AppendUint32(b.buf, 1)
		b.buf = append(b.buf, a[:]...)
	} else {
		a := dg.Agent.As16()
		b.buf = binary.BigEndian.AppendUint32(b.buf, 2)
		b.buf = append(b.buf, a[:]...)
	}
	b.buf = binary.BigEndian.AppendUint32(b.buf, dg.SubAgentID)
	b.buf = binary.BigEndian.AppendUint32(b.buf, dg.Sequence)
	b.buf = binary.BigEndian.AppendUint32(b.buf, dg.Uptime)
	b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(len(raws)))
	for _, r := range raws {
		b.buf = append(b.buf, r...)
	}
	binary.BigEndian.PutUint32(b.buf[lenAt:], uint32(len(b.buf)-start))
	b.buf = binary.BigEndian.AppendUint16(b.buf, uint16(len(weights)))
	for _, w := range weights {
		b.buf = binary.BigEndian.AppendUint64(b.buf, math.Float64bits(w))
	}
	b.records++
}

// partitioned is one batch per partition.
type partitioned struct {
	batches []batch
	raws    [][]byte
	weights []float64
}

// add appends a datagram's flow samples (at most decode.MaxFlowBatch) to
// their partitions' batches: in each partition that has some, one
// datagram of them, each with its weight. full is handed each batch that
// reaches max bytes, and must take its buffer.
func (pt *partitioned) add(dg *decode.Datagram, samples []decode.FlowSample, weights []float64, max int, full func(part int, b *batch)) {
	var home [decode.MaxFlowBatch]uint8
	for i := range samples {
		home[i] = flows.PairShard(&samples[i], len(pt.batches))
	}
	var done uint32 // the samples already added
	for i := range samples {
		if done&(1<<i) != 0 {
			continue
		}
		part := home[i]
		raws, ws := pt.raws[:0], pt.weights[:0]
		for j := i; j < len(samples); j++ {
			if home[j] == part {
				raws, ws = append(raws, samples[j].Raw), append(ws, weights[j])
				done |= 1 << j
			}
		}
		pt.raws, pt.weights = raws, ws
		b := &pt.batches[part]
		b.add(dg, raws, ws)
		if len(b.buf) >= max {
			full(int(part), b)
		}
	}
}

// record is one datagram of a message and its weights.
type record struct {
	datagram []byte
	weights  []byte // float64s, big-endian
}

func (r record) weight(i int) float64 {
	return math.Float64frombits(binary.BigEndian.Uint64(r.weights[8*i:]))
}

func (r record) numWeights() int { return len(r.weights) / 8 }

// walk calls f for each record of msg; it stops at the first malformed
// one, with an error that names where it is.
func walk(msg []byte, f func(record) error) error {
	if len(msg) < len(magic) || string(msg[:len(magic)]) != magic {
		return fmt.Errorf("%w: no %q at its start (%d bytes)", ErrMessage, magic, len(msg))
	}
	for off := len(magic); off < len(msg); {
		if len(msg)-off < 4 {
			return fmt.Errorf("%w: record length at %d: %d bytes left", ErrMessage, off, len(msg)-off)
		}
		n := int(binary.BigEndian.Uint32(msg[off:]))
		if n > maxRecord || n > len(msg)-off-4 {
			return fmt.Errorf("%w: datagram of %d bytes at %d: %d left", ErrMessage, n, off, len(msg)-off-4)
		}
		dg := msg[off+4 : off+4+n]
		off += 4 + n
		if len(msg)-off < 2 {
			return fmt.Errorf("%w: weight count at %d: %d bytes left", ErrMessage, off, len(msg)-off)
		}
		w := int(binary.BigEndian.Uint16(msg[off:]))
		off += 2
		if 8*w > len(msg)-off {
			return fmt.Errorf("%w: %d weights at %d: %d bytes left", ErrMessage, w, off, len(msg)-off)
		}
		if err := f(record{datagram: dg, weights: msg[off : off+8*w]}); err != nil {
			return err
		}
		off += 8 * w
	}
	return nil
}
