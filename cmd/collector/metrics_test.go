package main

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/ingest"
)

type nopSink struct{}

func (nopSink) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (nopSink) Counter(*decode.Datagram, *decode.CounterSample) {}

// One address with two sub-agents is two agents everywhere: two series in
// /metrics, which the client library's own registry check accepts (it
// answered 500 before: "collected before with the same name and label
// values"), and two entries in /agents/json.
func TestTwoSubAgentsAreTwoAgents(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	l, err := ingest.Listen(ctx, ingest.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ctx, nopSink{})
	c, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	agent := netip.MustParseAddr("10.0.0.1")
	for sub := range uint32(2) {
		d := sflowtest.Datagram{Agent: agent, SubAgentID: sub, Sequence: 1, Uptime: 1000}
		if _, err := c.Write(d.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(l.Agents()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("agents %+v", l.Agents())
		}
		time.Sleep(5 * time.Millisecond) // polling the listener's own count
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(selfMetrics{ingest: l, engine: mustEngine(t, flows.Config{}), http: newLimitListener(nil, 1)})
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("the registry refuses the scrape: %v", err)
	}
	series := 0
	for _, f := range families {
		if f.GetName() == "fabrictrace_sflow_datagrams_total" {
			series = len(f.GetMetric())
		}
	}
	if series != 2 {
		t.Errorf("%d series of fabrictrace_sflow_datagrams_total, want 2", series)
	}
	keys := map[string]uint32{}
	for _, a := range agentsJSON(l)() {
		keys[a.Agent] = a.SubAgentID
	}
	if len(keys) != 2 || keys["10.0.0.1"] != 0 || keys["10.0.0.1:1"] != 1 {
		t.Errorf("/agents/json keys %v, want 10.0.0.1 and 10.0.0.1:1", keys)
	}
	if got := agentKey(netip.MustParseAddr("2001:db8::1"), 7); got != "[2001:db8::1]:7" {
		t.Errorf("agentKey of an IPv6 sub-agent: %q", got)
	}
}
