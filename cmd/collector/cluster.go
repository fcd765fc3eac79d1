package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/thresholds"
	"github.com/fabrictrace/fabrictrace/web"
)

// joinCluster connects to -nats and makes (or checks) the samples stream,
// for -role ingest or engine. It returns the JetStream context and what
// closes the connection.
func joinCluster(ctx context.Context, o options, logger *slog.Logger) (jetstream.JetStream, func(), error) {
	nc, err := nats.Connect(o.nats, nats.Name("fabrictrace "+o.role+" "+o.node), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("NATS reconnected", "url", c.ConnectedUrl()) }))
	if err != nil {
		return nil, nil, fmt.Errorf("-nats %s: %w (is nats-server running with -js?)", o.nats, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("-nats %s: %w", o.nats, err)
	}
	if _, err := cluster.EnsureStream(ctx, js, cluster.StreamConfig{Partitions: o.natsParts, MaxAge: o.natsRetention}); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("-nats %s: %w (is JetStream on: nats-server -js?)", o.nats, err)
	}
	logger.Info("joined the cluster", "nats", o.nats, "role", o.role, "node", o.node, "partitions", o.natsParts)
	return js, nc.Close, nil
}

// apiEngine is what an api node serves: definitions, the topology and
// counters from its own engine (fed by the definitions bucket and the
// counters subject), flows, paths, events and elephants from the engines.
type apiEngine struct {
	*engine.Engine
	remote *cluster.API
	defs   *cluster.Definitions
}

// Writes are checked by the api node's own engine, then put in the
// cluster's definitions bucket, which every engine watches: a PUT and the
// flows the Prometheus export defines for a scrape reach them all.

// share puts what the own engine took into the bucket.
func (a apiEngine) share(kind, name string, v any, err error) error {
	if err != nil {
		return err
	}
	body, ok := v.([]byte)
	if !ok {
		if body, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if err := a.defs.PutDefinition(kind, name, body); err != nil {
		return fmt.Errorf("%s %q is set here but not in the cluster (NATS: %w); set it again", kind, name, err)
	}
	return nil
}

// unshare deletes from the bucket what the own engine deleted.
func (a apiEngine) unshare(kind, name string, err error) error {
	if err != nil {
		return err
	}
	if err := a.defs.DeleteDefinition(kind, name); err != nil {
		return fmt.Errorf("%s %q is deleted here but not in the cluster (NATS: %w); delete it again", kind, name, err)
	}
	return nil
}

// SetFlow shares the definition as the engine holds it, normalised: a
// definition made in Go leaves t 0 for its default, where a body's
// explicit 0 is sFlow-RT's minimum.
func (a apiEngine) SetFlow(name string, d keys.Definition) error {
	if err := a.Engine.SetFlow(name, d); err != nil {
		return err
	}
	held, err := a.Engine.FlowDefinition(name)
	return a.share("flow", name, held, err)
}

func (a apiEngine) DeleteFlow(name string) error {
	return a.unshare("flow", name, a.Engine.DeleteFlow(name))
}

func (a apiEngine) SetThreshold(name string, t thresholds.Threshold) error {
	if err := a.Engine.SetThreshold(name, t); err != nil {
		return err
	}
	held, err := a.Engine.ThresholdDefinition(name)
	return a.share("threshold", name, held, err)
}

func (a apiEngine) DeleteThreshold(name string) error {
	return a.unshare("threshold", name, a.Engine.DeleteThreshold(name))
}

func (a apiEngine) SetGroup(name string, body []byte) error {
	return a.share("group", name, body, a.Engine.SetGroup(name, body))
}

func (a apiEngine) DeleteGroup(name string) error {
	return a.unshare("group", name, a.Engine.DeleteGroup(name))
}

func (a apiEngine) SetMap(name string, body []byte) error {
	return a.share("map", name, body, a.Engine.SetMap(name, body))
}

func (a apiEngine) DeleteMap(name string) error {
	return a.unshare("map", name, a.Engine.DeleteMap(name))
}

func (a apiEngine) SetTopology(doc api.Topology) error {
	return a.share("topology", "", doc, a.Engine.SetTopology(doc))
}

func (a apiEngine) Dump(agents func(netip.Addr) bool, metrics []string) ([]api.Metric, error) {
	return a.remote.Dump(agents, metrics)
}

func (a apiEngine) Metrics(agents func(netip.Addr) bool, metrics []string) ([]api.Statistic, error) {
	return a.remote.Metrics(agents, metrics)
}

func (a apiEngine) FlowLog(ctx context.Context, after int64, name string, max int, timeout time.Duration) []api.FlowRecord {
	return a.remote.FlowLog(ctx, after, name, max, timeout)
}

func (a apiEngine) ActiveFlows(name string, agents func(netip.Addr) bool, maxFlows int, minValue float64, aggMode string) ([]api.ActiveFlow, error) {
	return a.remote.ActiveFlows(name, agents, maxFlows, minValue, aggMode)
}

func (a apiEngine) FlowLocations(name string, agents func(netip.Addr) bool, key string) ([]api.FlowLocation, error) {
	return a.remote.FlowLocations(name, agents, key)
}

func (a apiEngine) Paths(q api.PathQuery) (api.Paths, error) { return a.remote.Paths(q) }
func (a apiEngine) FlowKeys() map[string]int64               { return a.remote.FlowKeys() }
func (a apiEngine) ActiveElephants() []api.Elephant          { return a.remote.ActiveElephants() }
func (a apiEngine) ElephantRecords(max int) []api.Elephant   { return a.remote.ElephantRecords(max) }
func (a apiEngine) Collisions() []api.Event                  { return a.remote.Collisions() }
func (a apiEngine) Stats() flows.Stats                       { return a.remote.Stats() }

func (a apiEngine) Events(ctx context.Context, after int64, thresholdID string, max int, timeout time.Duration) []api.Event {
	return a.remote.Events(ctx, after, thresholdID, max, timeout)
}

func (a apiEngine) UserEvents(ctx context.Context, after int64, max int, timeout time.Duration) []api.Event {
	return a.remote.UserEvents(ctx, after, max, timeout)
}

func (a apiEngine) Elephants(ctx context.Context, after int64, max int, timeout time.Duration) []api.Elephant {
	return a.remote.Elephants(ctx, after, max, timeout)
}

// watchDefinitions keeps eng's definitions those of the cluster's bucket.
func watchDefinitions(ctx context.Context, defs *cluster.Definitions, eng *engine.Engine, logger *slog.Logger) error {
	return defs.Watch(ctx, eng, func() { logger.Info("definitions from the cluster applied", "bucket", cluster.DefinitionsBucket) },
		func(key string, err error) {
			logger.Warn("a definition in the cluster's bucket does not apply here", "key", key, "err", err)
		})
}

// has says whether the process plays a role: its own, or all of them.
func (o options) has(role string) bool { return o.role == role || o.role == "all" }

// startIngest publishes what the sFlow socket takes, by partition.
func startIngest(ctx context.Context, g *errgroup.Group, js jetstream.JetStream, o options) decode.Visitor {
	pub := cluster.NewPublisher(js, o.natsParts, o.maxAgents*64)
	g.Go(func() error { return pub.Run(ctx, 50*time.Millisecond) })
	return pub
}

// startEngineNode holds leases, consumes (and replays) the partitions they
// give into eng, publishes its results, answers the api nodes, and keeps
// the definitions and routes of the cluster's buckets.
func startEngineNode(ctx context.Context, g *errgroup.Group, js jetstream.JetStream, o options, eng *engine.Engine,
	routeTable *cluster.RouteTable, logger *slog.Logger) (*cluster.ResultsPublisher, error) {
	leases, err := cluster.OpenLeases(ctx, js, o.node, o.natsParts, cluster.DefaultLeaseTTL)
	if err != nil {
		return nil, err
	}
	node := cluster.NewEngineNode(js, leases, eng)
	node.Replay = min(o.natsReplay, o.natsRetention)
	node.OnChange = func(owned []int) {
		logger.Info("partitions owned", "node", o.node, "count", len(owned), "partitions", fmt.Sprint(owned))
	}
	if err := cluster.EnsureResults(ctx, js, cluster.ResultsConfig{}); err != nil {
		return nil, err
	}
	defs, err := cluster.OpenDefinitions(ctx, js)
	if err != nil {
		return nil, err
	}
	bucket, err := cluster.OpenRoutes(ctx, js)
	if err != nil {
		return nil, err
	}
	results := cluster.NewResultsPublisher(js, o.node, eng)
	g.Go(func() error { return bucket.Watch(ctx, routeTable, 100*time.Millisecond, eng.Withdrawn, nil) })
	g.Go(func() error { return node.Run(ctx, time.Second) })
	g.Go(func() error { return watchDefinitions(ctx, defs, eng, logger) })
	g.Go(func() error { return results.Run(ctx) })
	g.Go(func() error {
		return cluster.ServeQueries(ctx, js.Conn(), o.node, eng, func() []int { parts, _ := node.Consuming(); return parts })
	})
	return results, nil
}

// startAPINode serves REST for every engine: it reads the results
// streams, asks the engines, keeps local (its own engine) fed with the
// definitions and counters, raises counter thresholds, and shares what its
// BGP peer (routes, if any) learns.
func startAPINode(ctx context.Context, g *errgroup.Group, js jetstream.JetStream, o options, local *engine.Engine,
	routes *rib.RIB, logger *slog.Logger) (web.Engine, *cluster.Fanout, error) {
	if err := cluster.EnsureResults(ctx, js, cluster.ResultsConfig{}); err != nil {
		return nil, nil, err
	}
	defs, err := cluster.OpenDefinitions(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	if o.define != "" { // what the file says reaches every engine, unless users PUT it since
		b, err := os.ReadFile(o.define)
		if err != nil {
			return nil, nil, fmt.Errorf("-define: %w", err)
		}
		if err := eachDefinition("-define "+o.define, b, defs.SeedDefinition); err != nil {
			return nil, nil, err
		}
	}
	reader := cluster.NewResultsReader(10_000)
	fan := cluster.NewFanout(js.Conn(), o.natsParts, 2*time.Second)
	g.Go(func() error { return watchDefinitions(ctx, defs, local, logger) })
	g.Go(func() error { return reader.Run(ctx, js) })
	g.Go(func() error { return cluster.NewConsumer(local).RunCounters(ctx, js) })
	if routes != nil { // the engines' owners: what this node's BGP peer learns
		bucket, err := cluster.OpenRoutes(ctx, js)
		if err != nil {
			return nil, nil, err
		}
		g.Go(func() error { return shareRoutes(ctx, routes, bucket, logger) })
	}
	// The events of counter thresholds, which only this node raises.
	g.Go(func() error { return cluster.NewResultsPublisher(js, "api", local).Run(ctx) })
	return apiEngine{Engine: local, remote: cluster.NewAPI(fan, reader, local), defs: defs}, fan, nil
}
