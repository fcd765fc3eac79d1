package cluster

import (
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/flows"
)

// BatchesOf builds the messages an ingest node would publish for dgs over
// parts partitions (32 KiB each, as Publisher's MaxBatch), each sample
// weighted by its sampling rate, without a server: for benchmarks of the
// engine side.
func BatchesOf(dgs [][]byte, parts int) [][]byte {
	var out [][]byte
	var dec decode.Decoder
	bs := make([]batch, parts)
	for _, dg := range dgs {
		dec.Decode(dg, collect{f: func(d *decode.Datagram, s []decode.FlowSample) {
			for p := range parts {
				var raws [][]byte
				var ws []float64
				for i := range s {
					if int(flows.PairShard(&s[i], parts)) == p {
						raws = append(raws, s[i].Raw)
						ws = append(ws, float64(s[i].SamplingRate))
					}
				}
				if len(raws) > 0 {
					bs[p].add(d, raws, ws)
				}
			}
		}})
		for p := range bs {
			if len(bs[p].buf) >= 32<<10 {
				out = append(out, bs[p].buf)
				bs[p] = batch{}
			}
		}
	}
	for _, b := range bs {
		if b.records > 0 {
			out = append(out, b.buf)
		}
	}
	return out
}
