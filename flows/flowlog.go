package flows

import (
	"context"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
)

// The flow log: a definition with log:true records each of its flows as it
// completes (its entry falls idle and is let go), or at its start with
// flowStart:true, and a long-lived one every activeTimeout seconds; readers
// long-poll /flows/json for them, as sFlow-RT's tail_flows scripts do.

// logMark is where an entry's next record begins.
type logMark struct {
	from  float64 // engine seconds
	total float64 // the entry's total then
}

// maxFlowLog is how many records the log keeps for readers.
const maxFlowLog = 10_000

// logSample notes a sample of a logged flow: a new flow's record if the
// definition logs starts, and a long-lived flow's record every
// activeTimeout.
func (e *Engine) logSample(p *plan, ent *entry, now float64) {
	m, ok := p.logged[ent]
	if !ok {
		p.logged[ent] = logMark{from: now}
		if p.Def.FlowStart {
			e.logFlow(p, ent, now, now, ent.Total)
			p.logged[ent] = logMark{from: now, total: ent.Total}
		}
		return
	}
	if at := float64(p.Def.ActiveTimeout); at > 0 && now-m.from >= at {
		e.logFlow(p, ent, m.from, now, ent.Total-m.total)
		p.logged[ent] = logMark{from: now, total: ent.Total}
	}
}

// logEnd records a logged flow whose entry is let go: the rest of it,
// unless the definition logs starts only.
func (e *Engine) logEnd(p *plan, ent *entry) {
	m, ok := p.logged[ent]
	if !ok {
		return
	}
	delete(p.logged, ent)
	if !p.Def.FlowStart && ent.Total > m.total {
		e.logFlow(p, ent, m.from, ent.Last, ent.Total-m.total)
	}
}

func (e *Engine) logFlow(p *plan, ent *entry, from, to, value float64) {
	e.flowLog.Add(api.FlowRecord{Name: p.Name, FlowKeys: e.formatKey(p, ent.Key()), Value: value,
		Start: e.wall(from), End: e.wall(to), Agent: ent.Src.key.agent.String(), DataSource: ent.Src.key.dataSource()},
		func(r *api.FlowRecord, id int64) { r.FlowID = id })
}

// FlowLog returns logged flows with ids above after (of the named
// definition, if name is not empty), newest first, at most max; with a
// timeout it waits that long for one.
func (e *Engine) FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord {
	var keep func(*api.FlowRecord) bool
	if name != "" {
		keep = func(r *api.FlowRecord) bool { return r.Name == name }
	}
	return e.flowLog.Wait(ctx, after, max, timeout, keep)
}
