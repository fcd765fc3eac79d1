package main

import (
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/ingest"
	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/store"
	"github.com/fabrictrace/fabrictrace/web"
)

// selfMetrics exports the collector's own counters to Prometheus, read at
// scrape time from the parts that keep them. Labels are bounded: agents by
// -max-agents, peers by the accept ranges, fault kinds by the decoder.
type selfMetrics struct {
	ingest *ingest.Listener
	engine *engine.Engine
	rib    *rib.RIB     // nil when BGP is off
	store  *store.Store // nil without -db
	http   *limitListener
	export func() web.ExportStats
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("fabrictrace_"+name, help, labels, nil)
}

var (
	dDatagrams     = desc("sflow_datagrams_total", "sFlow datagrams received, by agent.", "agent", "subagent")
	dSamples       = desc("sflow_samples_total", "sFlow flow and counter samples received, by agent.", "agent", "subagent")
	dBytes         = desc("sflow_bytes_total", "sFlow bytes received, by agent.", "agent", "subagent")
	dLost          = desc("sflow_datagrams_lost_total", "sFlow datagrams lost, from sequence gaps, by agent.", "agent", "subagent")
	dFaults        = desc("decode_faults_total", "Samples lost to decode faults, by kind.", "kind")
	dKernel        = desc("kernel_socket_drops_total", "Datagrams the kernel dropped at the collector's sockets.")
	dRcvbuf        = desc("kernel_rcvbuf_errors_total", "UDP receive buffer errors in the collector's network namespace.")
	dDenied        = desc("sflow_datagrams_denied_total", "sFlow datagrams dropped: their source is outside -sflow-allow.")
	dAgents        = desc("sflow_agents", "sFlow agents (address and sub-agent id) accounted for now.")
	dAgentsEvicted = desc("sflow_agents_evicted_total", "sFlow agents forgotten to stay under -max-agents.")
	dBehind        = desc("ingest_dropped_behind_total", "Datagrams dropped because the flow engine fell behind.")
	dShardBehind   = desc("engine_batches_dropped_total", "Sample batches dropped because an engine shard fell behind (-engine-shards over 1).")
	dFlows         = desc("flows", "Flow entries held, over all definitions.")
	dFlowsEvicted  = desc("flows_evicted_total", "Flow entries evicted to stay under -max-flows.")
	dEvents        = desc("events_total", "Events raised (thresholds, path changes, collisions).")
	dPaths         = desc("paths_tracked", "5-tuples whose paths are tracked.")
	dPathsEvicted  = desc("paths_evicted_total", "5-tuples evicted from the path tracker.")
	dPeers         = desc("bgp_peers", "BGP peers, by session state.", "state")
	dPeerPrefixes  = desc("bgp_peer_prefixes", "Prefixes held from each BGP peer.", "peer")
	dRIB           = desc("rib_prefixes", "Prefixes in the RIB.")
	dStoreQueue    = desc("store_queue_depth", "History records waiting to be written.")
	dStoreWritten  = desc("store_written_total", "History records written.")
	dStoreDropped  = desc("store_dropped_total", "History records dropped: queue full or write failed.")
	dStoreWrite    = desc("store_write_seconds_total", "Time spent committing history batches.")
	dWaiters       = desc("longpoll_waiters", "Long polls waiting now, on events and elephants.")
	dHTTPRefused   = desc("http_connections_refused_total", "REST connections answered 503 past -http-max-conns.")
	dHTTPOpen      = desc("http_connections", "REST connections open now.")
	dExportFlows   = desc("export_flows", "Flows the Prometheus app's export defined for its scrapes, held now.")
	dExportMade    = desc("export_flows_created_total", "Flows the Prometheus app's export defined.")
	dExportGone    = desc("export_flows_replaced_total", "Export flows replaced to stay under -max-export-flows.")
	dBuild         = desc("build_info", "Build information.", "version", "goversion")
	counter, gauge = prometheus.CounterValue, prometheus.GaugeValue
)

func (m selfMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dDatagrams, dSamples, dBytes, dLost, dFaults, dKernel, dRcvbuf, dBehind, dDenied, dAgents, dAgentsEvicted,
		dShardBehind, dFlows, dFlowsEvicted, dEvents, dPaths, dPathsEvicted, dPeers, dPeerPrefixes, dRIB, dStoreQueue,
		dStoreWritten, dStoreDropped, dStoreWrite, dWaiters, dBuild, dHTTPRefused, dHTTPOpen, dExportFlows, dExportMade, dExportGone} {
		ch <- d
	}
}

func (m selfMetrics) Collect(ch chan<- prometheus.Metric) {
	put := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
	}
	if m.http != nil {
		put(dHTTPRefused, counter, float64(m.http.refused.Load()))
		put(dHTTPOpen, gauge, float64(m.http.open.Load()))
	}
	if m.export != nil {
		ex := m.export()
		put(dExportFlows, gauge, float64(ex.Flows))
		put(dExportMade, counter, float64(ex.Created))
		put(dExportGone, counter, float64(ex.Replaced))
	}
	if m.ingest != nil { // an engine node (-role engine) has no sFlow socket
		for _, a := range m.ingest.Agents() {
			agent, sub := a.Agent.String(), strconv.FormatUint(uint64(a.SubAgentID), 10)
			put(dDatagrams, counter, float64(a.Datagrams), agent, sub)
			put(dSamples, counter, float64(a.Flow.Samples+a.Counter.Samples+a.Discard.Samples), agent, sub)
			put(dBytes, counter, float64(a.Bytes), agent, sub)
			put(dLost, counter, float64(a.DatagramsLost), agent, sub)
		}
		st := m.ingest.Stats()
		for i, n := range st.Faults {
			put(dFaults, counter, float64(n), ingest.ErrorKinds[i])
		}
		put(dKernel, counter, float64(st.Kernel.SocketDrops))
		put(dRcvbuf, counter, float64(st.Kernel.RcvbufErrors))
		put(dBehind, counter, float64(st.DroppedBehind))
		put(dDenied, counter, float64(st.Denied))
		put(dAgents, gauge, float64(st.Agents))
		put(dAgentsEvicted, counter, float64(st.AgentsEvicted))
	}
	es := m.engine.Stats()
	put(dShardBehind, counter, float64(es.BatchesDropped))
	put(dFlows, gauge, float64(es.Flows))
	put(dFlowsEvicted, counter, float64(es.FlowsEvicted))
	put(dEvents, counter, float64(es.Events))
	put(dPaths, gauge, float64(es.PathsTracked))
	put(dPathsEvicted, counter, float64(es.PathsEvicted))
	put(dWaiters, gauge, float64(es.Waiters))
	if m.rib != nil {
		states := map[string]int{}
		for _, n := range m.rib.Neighbors() {
			states[n.State]++
			put(dPeerPrefixes, gauge, float64(n.Accepted), n.Address.String())
		}
		for s, n := range states {
			put(dPeers, gauge, float64(n), s)
		}
		put(dRIB, gauge, float64(m.rib.Len()))
	}
	if m.store != nil {
		ss := m.store.Stats()
		put(dStoreQueue, gauge, float64(ss.Queued))
		put(dStoreWritten, counter, float64(ss.Written))
		put(dStoreDropped, counter, float64(ss.Dropped))
		put(dStoreWrite, counter, ss.WriteSeconds)
	}
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	put(dBuild, gauge, 1, version, goVersion())
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return ""
}
