package flows

import (
	"hash/maphash"

	"github.com/fabrictrace/fabrictrace/tables"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// A definition's flows: package tables' table of entries by data source,
// each with what the engine's thresholds fired on it.
type (
	table = tables.Table[source, thresholds.Fired[source]]
	entry = tables.Entry[source, thresholds.Fired[source]]
)

// newTable makes p's table, under the engine's cap, telling the flow log
// and the thresholds of every entry let go.
func (e *Engine) newTable(p *plan) *table {
	t := tables.NewTable[source, thresholds.Fired[source]](p.Tau, e.cfg.MaxFlows)
	t.OnRemove = func(ent *entry, evicted bool) {
		if p.logged != nil {
			e.logEnd(p, ent)
		}
		for _, th := range e.thresholds {
			th.Forget(ent)
		}
		if evicted {
			e.stats.FlowsEvicted++
		}
	}
	return t
}

// flowHash files a flow key at a data source: the key's hash under the
// engine's seed, told apart by the source's own random salt.
func flowHash(e *Engine, src *source, key []byte) uint64 {
	return maphash.Bytes(e.seed, key) ^ src.salt
}
