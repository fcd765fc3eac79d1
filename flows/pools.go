package flows

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Pools renormalises samples before they are split over shards: a data
// source's sample pool counts every sample it took, so its correction
// must see them all, which no one shard does. It is safe for concurrent
// use: its data sources are spread over stripes, each with its own lock,
// so workers of different agents do not wait on each other. At most max
// data sources are followed; past it, a new one takes the place of an old
// one of its stripe (counted by Evicted).
type Pools struct {
	stripes [poolStripes]struct {
		mu sync.Mutex
		m  map[sourceKey]*pool
		_  [48]byte // a stripe to a cache line (8 + 8 + 48)
	}
	max     int // per stripe
	evicted atomic.Uint64
}

const poolStripes = 64

// NewPools follows at most limit data sources.
func NewPools(limit int) *Pools {
	p := &Pools{max: max(limit/poolStripes, 1)}
	for i := range p.stripes {
		p.stripes[i].m = map[sourceKey]*pool{}
	}
	return p
}

// Weights writes each flow sample's weight (the packets it stands for) to
// w, which is as long as samples.
func (p *Pools) Weights(agent netip.Addr, samples []decode.FlowSample, w []float64) {
	st := &p.stripes[agentStripe(agent)]
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range samples {
		fs := &samples[i]
		if fs.Format == decode.FormatDiscardedPacket {
			w[i] = 1 // one packet, sampled by no pool
			continue
		}
		k := sourceKey{agent, fs.Source.Class, fs.Source.Index}
		pl := st.m[k]
		if pl == nil {
			if len(st.m) >= p.max {
				for old := range st.m {
					delete(st.m, old)
					p.evicted.Add(1)
					break
				}
			}
			pl = &pool{}
			st.m[k] = pl
		}
		w[i] = pl.weight(fs)
	}
}

func agentStripe(a netip.Addr) int {
	b := a.As16()
	return int(b[15]^b[14]*7^b[13]*13) % poolStripes
}

// Evicted counts the data sources let go to stay under the cap.
func (p *Pools) Evicted() uint64 { return p.evicted.Load() }
