package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/cluster"
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
