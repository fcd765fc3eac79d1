// Package cluster carries samples from ingest to engines over NATS
// JetStream, partitioned by address pair, so that fabrictrace can run as
// several processes on several machines with the answers one collector
// gives (see the README's "Scale-out").
//
// The ingest role's Publisher renormalises each flow sample, finds its
// partition (flows.PairShard modulo P, the pair hash the engine's shards
// use) and batches samples, as the agent sent them, into one message per
// partition: a batch of sFlow v5 datagrams with each flow sample's weight
// (wire.go). An engine's Consumer reads its partitions in stream order and
// decodes the datagrams with the same decoder as a collector's socket.
package cluster
