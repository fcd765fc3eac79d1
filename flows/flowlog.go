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
func (e *Engine) logSample(p *plan, t *table, ent *entry, now float64) {
	m, ok := t.logged[ent]
	if !ok {
		t.logged[ent] = logMark{from: now}
		if p.Def.FlowStart {
			e.logFlow(p, ent, now, now, ent.total)
			t.logged[ent] = logMark{from: now, total: ent.total}
		}
		return
	}
	if at := float64(p.Def.ActiveTimeout); at > 0 && now-m.from >= at {
		e.logFlow(p, ent, m.from, now, ent.total-m.total)
		t.logged[ent] = logMark{from: now, total: ent.total}
	}
}

// logEnd records a logged flow whose entry is let go: the rest of it,
// unless the definition logs starts only.
func (e *Engine) logEnd(p *plan, t *table, ent *entry) {
	m, ok := t.logged[ent]
	if !ok {
		return
	}
	delete(t.logged, ent)
	if !p.Def.FlowStart && ent.total > m.total {
		e.logFlow(p, ent, m.from, ent.last, ent.total-m.total)
	}
}

func (e *Engine) logFlow(p *plan, ent *entry, from, to, value float64) {
	e.flowLog.Add(api.FlowRecord{Name: p.Name, FlowKeys: e.formatKey(p, ent.key()), Value: value,
		Start: e.wall(from), End: e.wall(to), Agent: ent.src.key.agent.String(), DataSource: ent.src.key.dataSource()},
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
