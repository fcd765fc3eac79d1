// Package engine runs the flow engine as shards, one per core: K
// flows.Engines that split the flows by address pair, each with a single
// writer, a goroutine fed batches of samples over a bounded queue. Ingest
// workers hand it a datagram's samples; it renormalises them, finds each
// one's shard and queues a batch for every shard (every shard hears every
// datagram), dropping and counting a batch when its shard is behind, so
// that no worker waits on a lock, and a query that holds one shard delays
// only that shard's writer. Queries go to the shard a pair belongs to, or
// to all of them, and their answers are merged so that they do not depend
// on the number of shards (see flows/shard.go for what is split and what
// the primary shard keeps). With one shard the engine is taken directly.
package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/elephants"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/internal/ring"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
	"github.com/fabrictrace/fabrictrace/topology"
)

// Engine is K shards of the flow engine. All its methods are safe for
// concurrent use.
type Engine struct {
	shards     []*flows.Engine
	primary    *flows.Engine
	cfg        flows.Config
	epoch      time.Time
	events     *ring.Log[api.Event]
	elephants  *ring.Log[api.Elephant]
	collisions *flows.Collisions
	pools      *flows.Pools
	writers    []*writer // one per shard, with more than one
	stop       chan struct{}
	wg         sync.WaitGroup
	// Wait makes a worker wait for a shard that is behind instead of
	// dropping its batch: for replaying a capture, and for measuring what
	// the shards sustain. Set it before the first sample.
	Wait bool
	// Gather lets a shard's batch gather the samples of several calls
	// while its writer is busy: for an engine handed a sample or two at a
	// time, as a cluster's engine node is (one partition's record of a
	// datagram), where a batch each would wake the writer for each. With
	// more samples a call (a socket's datagrams) it costs more than it
	// saves. Set it before the first sample.
	Gather bool
}

// New returns k shards (1 to flows.MaxShards) with cfg's bounds: the
// per-flow caps (MaxFlows, MaxPaths) are totals, split over the shards;
// the logs (MaxEvents, MaxElephants) are shared.
func New(cfg flows.Config, k int) (*Engine, error) {
	if k < 1 || k > flows.MaxShards {
		return nil, fmt.Errorf("engine shards %d: want 1 to %d", k, flows.MaxShards)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	if cfg.Topology == nil {
		cfg.Topology = topology.New()
	}
	maxEvents, maxElephants := orDefault(cfg.MaxEvents, 10_000), orDefault(cfg.MaxElephants, 10_000)
	e := &Engine{cfg: cfg, epoch: now().Add(-cfg.Past), events: ring.New[api.Event](maxEvents), elephants: ring.New[api.Elephant](maxElephants)}
	ids := new(atomic.Int64)
	flowLog := ring.New[api.FlowRecord](10_000)
	for i := range k {
		c := cfg
		c.MaxFlows = max(orDefault(cfg.MaxFlows, 100_000)/k, 1)
		c.MaxPaths = max(orDefault(cfg.MaxPaths, 100_000)/k, 1)
		c.Shard = flows.Shard{Index: i, Count: k, Events: e.events, Elephants: e.elephants, FlowLog: flowLog,
			ElephantIDs: ids, Epoch: e.epoch}
		e.shards = append(e.shards, flows.New(c))
	}
	e.primary = e.shards[0]
	e.collisions = flows.NewCollisions(e.events, cfg.Topology, e.wall)
	if k > 1 {
		e.pools = flows.NewPools(orDefault(cfg.MaxSources, 100_000))
		e.stop = make(chan struct{})
		for i, s := range e.shards {
			w := newWriter(s, i)
			e.writers = append(e.writers, w)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				w.run(e.stop)
			}()
		}
	}
	return e, nil
}

// Close stops the shards' writers; what they had queued is dropped.
func (e *Engine) Close() {
	if e.stop != nil {
		close(e.stop)
		e.wg.Wait()
		e.stop = nil
	}
}

// Flush waits until every shard has taken what was handed to it before:
// for tests, and for a reader that must see every sample so far.
func (e *Engine) Flush() {
	if e.stop == nil {
		return
	}
	for _, w := range e.writers {
		w.flush()
	}
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// Shards is how many shards there are.
func (e *Engine) Shards() int { return len(e.shards) }

func (e *Engine) clock() float64 {
	now := time.Now
	if e.cfg.Now != nil {
		now = e.cfg.Now
	}
	return now().Sub(e.epoch).Seconds()
}

func (e *Engine) wall(t float64) int64 {
	return e.epoch.Add(time.Duration(t * float64(time.Second))).UnixMilli()
}

// FlowBatch takes a datagram's flow samples (decode.FlowBatcher). With one
// shard, at once. With more, it renormalises them (every sample of a data
// source counts in its correction), finds each one's shard by its address
// pair, and hands each shard a batch of its samples, copied out of the
// datagram, with the datagram's header (every shard hears every datagram,
// for its agent's clock); the primary's batch also holds the other shards'
// samples when it keys a flow alone (flows.Engine.WantsEverySample). A
// shard that is behind drops the batch, counted. No lock is held while a
// worker does this.
func (e *Engine) FlowBatch(dg *decode.Datagram, samples []decode.FlowSample) {
	if len(e.shards) == 1 {
		e.primary.FlowBatch(dg, samples)
		return
	}
	var weights [decode.MaxFlowBatch]float64
	e.pools.Weights(dg.Agent, samples, weights[:len(samples)])
	e.distribute(dg, samples, weights[:len(samples)])
}

// TakeWeighted takes flow samples that were renormalised elsewhere, each
// with its weight (the packets it stands for): package cluster's ingest
// did, as it saw all of their data sources' samples.
func (e *Engine) TakeWeighted(dg *decode.Datagram, samples []decode.FlowSample, weights []float64) {
	e.TakeWeightedAt(dg, samples, weights, time.Time{})
}

// TakeWeightedAt is TakeWeighted of samples that arrived at at, in the
// past: a partition replayed to a new owner (flows.Engine.TakeShardAt).
// The zero time is now.
func (e *Engine) TakeWeightedAt(dg *decode.Datagram, samples []decode.FlowSample, weights []float64, at time.Time) {
	if len(e.shards) == 1 {
		e.primary.TakeShardAt(dg, samples, nil, weights, at)
		return
	}
	e.distributeAt(dg, samples, weights, at)
}

// distribute hands each shard a batch of its samples.
func (e *Engine) distribute(dg *decode.Datagram, samples []decode.FlowSample, weights []float64) {
	e.distributeAt(dg, samples, weights, time.Time{})
}

// distributeAt hands each shard a batch of its samples, that arrived at at
// (zero: now).
func (e *Engine) distributeAt(dg *decode.Datagram, samples []decode.FlowSample, weights []float64, at time.Time) {
	var home [decode.MaxFlowBatch]uint8
	n := len(samples)
	for i := range samples {
		home[i] = flows.PairShard(&samples[i], len(e.shards))
	}
	all := e.primary.WantsEverySample()
	for k, w := range e.writers {
		w.hand(dg, samples, home[:n], weights[:n], k == 0 && all, e.Wait, e.Gather, at)
	}
}

// Flow takes one flow sample (decode.Visitor).
func (e *Engine) Flow(dg *decode.Datagram, fs *decode.FlowSample) {
	e.FlowBatch(dg, []decode.FlowSample{*fs})
}

// Counter takes a counter sample: every shard keeps the counters of its
// data sources (threshold filters read them); the primary raises counter
// thresholds.
func (e *Engine) Counter(dg *decode.Datagram, cs *decode.CounterSample) {
	for _, s := range e.shards {
		s.Counter(dg, cs)
	}
}

// Forget drops what every shard holds of the address pairs drop says
// (flows.Engine.Forget), and says how many entries and 5-tuples went.
func (e *Engine) Forget(drop func(src, dst netip.Addr) bool) (entries, tuples int) {
	for _, s := range e.shards {
		n, m := s.Forget(drop)
		entries, tuples = entries+n, tuples+m
	}
	return entries, tuples
}

// Heard notes a datagram's arrival in every shard (for flows.Config's
// HeardApart).
func (e *Engine) Heard(dg *decode.Datagram) {
	for _, s := range e.shards {
		s.Heard(dg)
	}
}

// handOnEvery is how often Run queues the batches that workers were still
// filling: the most a sample waits for its shard's writer beyond its queue.
const handOnEvery = 5 * time.Millisecond

// Run sweeps every shard every interval, and finds collisions across them,
// until ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	if len(e.shards) == 1 {
		return e.primary.Run(ctx, interval)
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range e.shards {
		g.Go(func() error { return s.Run(ctx, interval) })
	}
	g.Go(func() error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				e.detectCollisions()
			}
		}
	})
	g.Go(func() error { // a batch gathering while its writer was busy waits no longer than this
		t := time.NewTicker(handOnEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				for _, w := range e.writers {
					w.handOn(e.Wait)
				}
			}
		}
	})
	return g.Wait()
}

// Sweep sweeps every shard at once, as Run does each interval (tests).
func (e *Engine) Sweep() {
	for _, s := range e.shards {
		s.Sweep()
	}
	if len(e.shards) > 1 {
		e.detectCollisions()
	}
}

// SweepPaths raises the path changes that are due, in every shard.
func (e *Engine) SweepPaths() {
	for _, s := range e.shards {
		s.SweepPaths()
	}
}

func (e *Engine) detectCollisions() {
	var uses []flows.LinkUse
	for _, s := range e.shards {
		uses = append(uses, s.ElephantLinks()...)
	}
	e.collisions.Update(uses, e.clock())
}

// Collisions returns the collisions live now.
func (e *Engine) Collisions() []api.Event {
	if len(e.shards) == 1 {
		return e.primary.Collisions()
	}
	return e.collisions.Live()
}

// Stats sums the shards' counters.
func (e *Engine) Stats() flows.Stats {
	var out flows.Stats
	for i, s := range e.shards {
		st := s.Stats()
		if i == 0 {
			out.Events, out.Waiters = st.Events, st.Waiters // the logs are shared
		}
		out.Samples += st.Samples
		out.Flows += st.Flows
		out.FlowsEvicted += st.FlowsEvicted
		out.SourcesEvicted += st.SourcesEvicted
		out.StringsRefused += st.StringsRefused
		out.StringsReleased += st.StringsReleased
		out.PathsTracked += st.PathsTracked
		out.PathsEvicted += st.PathsEvicted
	}
	for _, w := range e.writers {
		out.BatchesDropped += w.dropped.Load()
	}
	if e.pools != nil {
		out.SourcesEvicted += e.pools.Evicted()
	}
	return out
}

// each applies a change to every shard, stopping at the first error (the
// shards check alike, so it is the first's).
func (e *Engine) each(f func(*flows.Engine) error) error {
	for _, s := range e.shards {
		if err := f(s); err != nil {
			return err
		}
	}
	return nil
}

// SetFlow defines a flow in every shard.
func (e *Engine) SetFlow(name string, d keys.Definition) error {
	return e.each(func(s *flows.Engine) error { return s.SetFlow(name, d) })
}

// DeleteFlow removes a flow from every shard.
func (e *Engine) DeleteFlow(name string) error {
	return e.each(func(s *flows.Engine) error { return s.DeleteFlow(name) })
}

// FlowDefinition returns a flow's definition.
func (e *Engine) FlowDefinition(name string) (keys.Definition, error) {
	return e.primary.FlowDefinition(name)
}

// FlowDefinitions returns every flow's definition.
func (e *Engine) FlowDefinitions() map[string]keys.Definition { return e.primary.FlowDefinitions() }

// SetThreshold defines a threshold in every shard.
func (e *Engine) SetThreshold(name string, t thresholds.Threshold) error {
	return e.each(func(s *flows.Engine) error { return s.SetThreshold(name, t) })
}

// DeleteThreshold removes a threshold from every shard.
func (e *Engine) DeleteThreshold(name string) error {
	return e.each(func(s *flows.Engine) error { return s.DeleteThreshold(name) })
}

// ThresholdDefinition returns a threshold's definition.
func (e *Engine) ThresholdDefinition(name string) (thresholds.Threshold, error) {
	return e.primary.ThresholdDefinition(name)
}

// ThresholdDefinitions returns every threshold's definition.
func (e *Engine) ThresholdDefinitions() map[string]thresholds.Threshold {
	return e.primary.ThresholdDefinitions()
}

// SetGroup installs an address group in every shard.
func (e *Engine) SetGroup(name string, body []byte) error {
	return e.each(func(s *flows.Engine) error { return s.SetGroup(name, body) })
}

// SetMap installs a value map in every shard.
func (e *Engine) SetMap(name string, body []byte) error {
	return e.each(func(s *flows.Engine) error { return s.SetMap(name, body) })
}

// DeleteMap removes a value map from every shard.
func (e *Engine) DeleteMap(name string) error {
	return e.each(func(s *flows.Engine) error { return s.DeleteMap(name) })
}

// Map returns one value map (every shard holds the same).
func (e *Engine) Map(name string) (map[string][]string, error) { return e.primary.Map(name) }

// Maps returns every value map.
func (e *Engine) Maps() map[string]map[string][]string { return e.primary.Maps() }

// DeleteGroup removes an address group from every shard.
func (e *Engine) DeleteGroup(name string) error {
	return e.each(func(s *flows.Engine) error { return s.DeleteGroup(name) })
}

// Group returns one address group's document.
func (e *Engine) Group(name string) (map[string][]string, error) { return e.primary.Group(name) }

// Groups returns every address group.
func (e *Engine) Groups() map[string]map[string][]string { return e.primary.Groups() }

// SetTopology installs a topology document (the shards share it).
func (e *Engine) SetTopology(doc api.Topology) error { return e.primary.SetTopology(doc) }

// Topology returns the topology document.
func (e *Engine) Topology() api.Topology { return e.primary.Topology() }

// NodeName names the node whose agent address is a.
func (e *Engine) NodeName(a netip.Addr) string { return e.primary.NodeName(a) }

// Nodes lists the nodes known, by name.
func (e *Engine) Nodes() []api.Node { return e.primary.Nodes() }

// EdgeAgents sorts topology agents into edge and core (every shard hears
// every counter sample, so the primary's view is whole).
func (e *Engine) EdgeAgents(nodes map[netip.Addr]bool) (edge, core map[netip.Addr]bool) {
	return e.primary.EdgeAgents(nodes)
}

// NodeAddress finds a node's agent address by its name.
func (e *Engine) NodeAddress(name string) (netip.Addr, bool) { return e.primary.NodeAddress(name) }

// Withdrawn tells every shard of a withdrawn prefix.
func (e *Engine) Withdrawn(prefix netip.Prefix) {
	for _, s := range e.shards {
		s.Withdrawn(prefix)
	}
}

// Events long-polls the shared event log.
func (e *Engine) Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event {
	return e.primary.Events(ctx, after, thresholdID, max, timeout)
}

// UserEvents long-polls the events of user thresholds.
func (e *Engine) UserEvents(ctx context.Context, after int64, max int, timeout time.Duration) []api.Event {
	return e.primary.UserEvents(ctx, after, max, timeout)
}

// FlowLog long-polls the shared flow log.
func (e *Engine) FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord {
	return e.primary.FlowLog(ctx, after, name, max, timeout)
}

// Elephants long-polls the shared elephant update log.
func (e *Engine) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return e.primary.Elephants(ctx, after, max, timeout)
}

// ActiveElephants returns the elephants active now, oldest first.
func (e *Engine) ActiveElephants() []api.Elephant {
	if len(e.shards) == 1 {
		return e.primary.ActiveElephants()
	}
	var out []api.Elephant
	for _, s := range e.shards {
		out = append(out, s.ActiveElephants()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ElephantID < out[j].ElephantID })
	if out == nil {
		out = []api.Elephant{}
	}
	return out
}

// ElephantRecords returns up to max elephants, newest first: the active
// ones as they are now, the ended ones as they ended.
func (e *Engine) ElephantRecords(max int) []api.Elephant {
	if len(e.shards) == 1 {
		return e.primary.ElephantRecords(max)
	}
	return elephants.Records(e.ActiveElephants(), e.elephants, orDefault(e.cfg.MaxElephants, 10_000), max)
}

// Paths returns the paths of a pair, from the shard that holds it.
func (e *Engine) Paths(q api.PathQuery) (api.Paths, error) {
	if !q.Src.IsValid() || !q.Dst.IsValid() {
		return e.primary.Paths(q) // its error
	}
	return e.shards[e.shardOf(q.Src, q.Dst)].Paths(q)
}

func (e *Engine) shardOf(src, dst netip.Addr) int {
	var fs decode.FlowSample
	fs.RawHeader.Packet.Layers = decode.LayerIPv4
	fs.RawHeader.Packet.Src, fs.RawHeader.Packet.Dst = src, dst
	return int(flows.PairShard(&fs, len(e.shards)))
}

// split says whether a flow's entries are spread over the shards.
func (e *Engine) split(name string) bool {
	pair, spread := e.primary.Split(name)
	return len(e.shards) > 1 && (pair || spread)
}

// ActiveFlows returns a flow's largest entries: a flow split over the
// shards is merged from their entries (a key's entries at one data source
// summed first, then its data sources by aggMode), any other is the
// primary's.
func (e *Engine) ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error) {
	if !e.split(name) {
		return e.primary.ActiveFlows(name, agents, maxFlows, minValue, aggMode)
	}
	if pair, _ := e.primary.Split(name); pair {
		// Each key is in one shard, whole: the top of the shards' tops.
		var out []api.ActiveFlow
		for _, s := range e.shards {
			part, err := s.ActiveFlows(name, agents, maxFlows, minValue, aggMode)
			if err != nil {
				return nil, err
			}
			out = append(out, part...)
		}
		return flows.TopFlows(out, maxFlows), nil
	}
	rows, err := e.rows(name, agents)
	if err != nil {
		return nil, err
	}
	return flows.ActiveFromRows(rows, maxFlows, minValue, aggMode)
}

// FlowLocations lists where a flow has the key now: a split flow's
// locations gathered from every shard (one data source's summed), any
// other flow's from the primary.
func (e *Engine) FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error) {
	if !e.split(name) {
		return e.primary.FlowLocations(name, agents, key)
	}
	var out []api.FlowLocation
	for _, s := range e.shards {
		part, err := s.FlowLocations(name, agents, key)
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return flows.SortLocations(out), nil
}

// rows gathers a split flow's entries from every shard.
func (e *Engine) rows(name string, agents func(netip.Addr) bool) ([]flows.FlowRow, error) {
	var rows []flows.FlowRow
	for _, s := range e.shards {
		part, err := s.FlowRows(name, agents)
		if err != nil {
			return nil, err
		}
		rows = append(rows, part...)
	}
	return rows, nil
}

// Agents lists the agents any shard has data sources of, in order.
func (e *Engine) Agents() []netip.Addr {
	var out []netip.Addr
	for _, s := range e.shards {
		out = append(out, s.Agents()...)
	}
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return slices.Compact(out)
}

// FlowKeys returns the keys in use and how long since each was updated,
// in ms: the freshest over the shards.
func (e *Engine) FlowKeys() map[string]int64 {
	out := e.primary.FlowKeys()
	for _, s := range e.shards[1:] {
		for k, ago := range s.FlowKeys() {
			if was, ok := out[k]; !ok || ago < was {
				out[k] = ago
			}
		}
	}
	return out
}

// Dump returns every selected metric of every selected data source. The
// top keys of a flow split by pair are merged over the shards, per data
// source; counters and other flows are the primary's.
func (e *Engine) Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error) {
	if len(e.shards) == 1 {
		return e.primary.Dump(agents, metrics)
	}
	var local, split []string
	if len(metrics) == 1 && metrics[0] == "ALL" {
		local = metrics
		for name := range e.primary.FlowDefinitions() {
			if e.split(name) {
				split = append(split, name)
			}
		}
	} else {
		for _, m := range metrics {
			if e.split(metricName(m)) {
				split = append(split, m)
			} else {
				local = append(local, m)
			}
		}
	}
	out := []api.Metric{}
	if len(local) > 0 {
		rows, err := e.primary.Dump(agents, local)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.TopKeys == nil || !e.split(r.MetricName) { // ALL: the primary's part of split flows goes below
				out = append(out, r)
			}
		}
	}
	for _, m := range split {
		rows, err := e.dumpSplit(agents, m)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].DataSource < out[j].DataSource
	})
	return out, nil
}

// dumpSplit is Dump of a split flow: each data source's largest keys, its
// entries summed over the shards first, to the flow's n.
func (e *Engine) dumpSplit(agents func(netip.Addr) bool, metric string) ([]api.Metric, error) {
	ref, _ := counters.ParseRef(metric) // the engine read it already, to call it split
	name, ds := ref.Name, ref.DS
	def, err := e.primary.FlowDefinition(name)
	if err != nil {
		return nil, err
	}
	rows, err := e.rows(name, agents)
	if err != nil {
		return nil, err
	}
	parts := make([]api.Metric, 0, len(rows))
	for _, r := range rows {
		if ds == "" || r.DataSource == ds {
			parts = append(parts, api.Metric{Agent: r.Agent, DataSource: r.DataSource, MetricName: name,
				TopKeys: []api.TopKey{{Key: r.Key, Value: r.Value, LastUpdate: r.LastUpdate}}})
		}
	}
	return flows.MergeTopKeys(parts, func(string) int { return def.N }), nil
}

// Metrics summarises each requested metric over the selected agents, in
// request order, merging split flows over the shards first.
func (e *Engine) Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error) {
	if len(e.shards) == 1 {
		return e.primary.Metrics(agents, metrics)
	}
	out := make([]api.Statistic, 0, len(metrics))
	for _, m := range metrics {
		if !e.split(metricName(m)) {
			st, err := e.primary.Metrics(agents, []string{m})
			if err != nil {
				return nil, err
			}
			out = append(out, st...)
			continue
		}
		rows, err := e.dumpSplit(agents, m)
		if err != nil {
			return nil, err
		}
		ref, _ := counters.ParseRef(m) // well formed: split read it
		out = append(out, counters.Summarise(ref, rows))
	}
	return out, nil
}

// metricName is the flow or counter a metric reference reads; "" for a
// malformed one (whose error the primary reports).
func metricName(m string) string {
	ref, err := counters.ParseRef(m)
	if err != nil {
		return ""
	}
	return ref.Name
}
