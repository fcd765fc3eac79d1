package cluster

import (
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
)

// BatchesOf builds the messages an ingest node would publish for dgs over
// parts partitions (32 KiB each, as Publisher's MaxBatch), each sample
// weighted by its sampling rate, without a server: for benchmarks of the
// engine side.
func BatchesOf(dgs [][]byte, parts int) [][]byte {
	msgs, _ := BatchesByPartition(dgs, parts)
	return msgs
}

// BatchesByPartition is BatchesOf, with each message's partition.
func BatchesByPartition(dgs [][]byte, parts int) (msgs [][]byte, part []int) {
	take := func(p int, b *batch) {
		msgs, part = append(msgs, b.buf), append(part, p)
		*b = batch{}
	}
	pt := partitioned{batches: make([]batch, parts)}
	var dec decode.Decoder
	var ws []float64
	for _, dg := range dgs {
		dec.Decode(dg, collect{f: func(d *decode.Datagram, s []decode.FlowSample) {
			ws = ws[:0]
			for i := range s {
				ws = append(ws, float64(s[i].SamplingRate))
			}
			pt.add(d, s, ws, 32<<10, take)
		}})
	}
	for p := range pt.batches {
		if pt.batches[p].records > 0 {
			take(p, &pt.batches[p])
		}
	}
	return msgs, part
}

// TakeResult files a results message as the stream's seq, read at now.
func TakeResult(r *ResultsReader, data []byte, seq int64, now time.Time) { r.takeAt(data, seq, now) }
