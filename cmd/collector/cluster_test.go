package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/nats-io/nats-server/v2/server"
)

// The scale-out flags refuse what cannot work, saying what would.
func TestClusterFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "ingest"}, ""},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "engine", "-node", "e1", "-nats-partitions", "16"}, ""},
		{[]string{"-role", "engine"}, "needs -nats URL"},
		{[]string{"-nats", "nats://127.0.0.1:4222"}, "want ingest, engine, api or all"},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "api"}, ""},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "all"}, ""},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "every"}, "want ingest, engine, api or all"},
		{[]string{"-nats", "nats://127.0.0.1:4222", "-role", "engine", "-nats-partitions", "300"}, "want 1 to 256"},
	} {
		_, err := parseFlags(c.args, io.Discard)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// -role all: ingest, an engine node and an api node in one process over a
// real JetStream server: a datagram sent to its socket shows in the api
// node's /activeflows, with the flow that -define gave the api node, and
// its path; the process stops on its context.
func TestRoleAllOverJetStream(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	free := func(network string) string {
		if network == "udp" {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return c.LocalAddr().String()
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	sflow, httpAddr := free("udp"), free("tcp")
	define := filepath.Join(t.TempDir(), "flows.json")
	if err := os.WriteFile(define, []byte(`{"flows": {"pairs": {"keys": "ipsource,ipdestination", "value": "bytes"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-nats", ns.ClientURL(), "-role", "all", "-node", "n1", "-nats-partitions", "4",
		"-sflow", sflow, "-http", httpAddr, "-db", "", "-bgp", "", "-define", define, "-stats-interval", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("not stopped 10 s after its context ended")
		}
	}()

	c, err := net.Dial("udp", sflow)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := sflowtest.Frame{Src: netip.MustParseAddr("10.1.1.2"), Dst: netip.MustParseAddr("172.16.1.20"),
		Protocol: sflowtest.ProtoUDP, TTL: 63, SrcPort: 40000, DstPort: 9999}
	seq := uint32(0)
	deadline := time.Now().Add(30 * time.Second)
	var afs []api.ActiveFlow
	for {
		seq++ // the engine node takes its partitions within a second or two: send until it shows
		d := sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.0.12"), Sequence: seq, Samples: []sflowtest.Sample{
			&sflowtest.FlowSample{Sequence: seq, SamplingRate: 64, Input: decode.Port{Value: 2}, Output: decode.Port{Value: 3},
				Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 60, Header: f.Bytes()}}}}}
		c.Write(d.Bytes())
		resp, err := http.Get("http://" + httpAddr + "/activeflows/ALL/pairs/json")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&afs)
			resp.Body.Close()
		}
		if len(afs) == 1 && afs[0].Key == "10.1.1.2,172.16.1.20" && afs[0].Value > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the api node's /activeflows after %d datagrams: %+v (%v)", seq, afs, err)
		}
		time.Sleep(50 * time.Millisecond) // paces the sender: one datagram per look
	}
	resp, err := http.Get("http://" + httpAddr + "/paths/json?src=10.1.1.2&dst=172.16.1.20")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps api.Paths
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil || len(ps.Paths) != 1 || ps.Paths[0].Hops[0].Agent != "10.255.0.12" {
		t.Errorf("the api node's path: %+v (%v)", ps, err)
	}
}
