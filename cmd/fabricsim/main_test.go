package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/sim"
)

func TestBadFlagsSayWhatIsWrong(t *testing.T) {
	for args, want := range map[string]string{
		"-elephant 172.16.1.11,172.16.1.42,400":       "want SRC,DST,MBPS,START,DURATION",
		"-elephant 172.16.1.11,x,400,1s,10s":          "destination",
		"-elephant 172.16.1.11,172.16.1.42,-1,1s,10s": "want Mbit/s above 0",
		"-fast":       "-fast needs -duration",
		"-sampling 0": "above 0",
		"-bgp-asn 0":  "want 1 to 4294967295",
		"extra":       "unexpected argument",
		"-elephant 172.16.1.11,172.16.1.42,400,1s,forever": "duration",
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to say %q", args, err, want)
		}
	}
}

// A fast run sends only to -sflow, every datagram decodes, and the truth
// file holds the scheduled elephant with its path.
func TestFastRunSendsDecodableSFlowAndWritesTruth(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.(*net.UDPConn).SetReadBuffer(8 << 20)
	truth := filepath.Join(t.TempDir(), "truth.json")
	o, err := parseFlags([]string{"-sflow", pc.LocalAddr().String(), "-bgp", "", "-fast", "-duration", "5s",
		"-mice", "20", "-elephant-every", "0", "-truth", truth, "-progress", "0", "-export-delay", "0",
		"-elephant", "172.16.1.11,172.16.1.42,100,1s,2s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	got := make(chan result)
	go func() {
		var dec decode.Decoder
		buf := make([]byte, 2048)
		n := 0
		for {
			pc.SetReadDeadline(time.Now().Add(time.Second))
			m, _, err := pc.ReadFrom(buf)
			if err != nil {
				got <- result{n, nil} // quiet for a second: the run is over
				return
			}
			if _, err := dec.Decode(buf[:m], discard{}); err != nil {
				got <- result{n, err}
				return
			}
			n++
		}
	}()
	if err := run(context.Background(), o, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.n < 50 {
		t.Fatalf("%d datagrams decoded, then %v", r.n, r.err)
	}
	b, err := os.ReadFile(truth)
	if err != nil {
		t.Fatal(err)
	}
	var tr sim.Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	var hops []string
	for _, f := range tr.Flows {
		if f.Elephant {
			for _, h := range f.Hops {
				hops = append(hops, h.Node)
			}
			if f.Start != 1 || f.End != 3 || f.Bytes < 24e6 || f.Bytes > 26e6 {
				t.Errorf("elephant %+v: want 1 s to 3 s and 25 MB", f)
			}
		}
	}
	if got := strings.Join(hops, " "); !strings.HasPrefix(got, "server01 leaf01 spine0") || !strings.HasSuffix(got, "leaf04 server04") {
		t.Errorf("elephant path %q, want server01 leaf01 spine0x leaf04 server04", got)
	}
}

type discard struct{}

func (discard) Flow(*decode.Datagram, *decode.FlowSample)       {}
func (discard) Counter(*decode.Datagram, *decode.CounterSample) {}

// With several collectors an agent always sends to the same one, whatever
// its datagram's sequence, and the agents are shared among them.
func TestAgentsShareCollectors(t *testing.T) {
	to := map[uint32]int{}
	for i := range 16 {
		agent := netip.AddrFrom4([4]byte{10, 255, 1, byte(i)})
		var first uint32
		for seq := uint32(1); seq <= 5; seq++ {
			h := agentHash((&sflowtest.Datagram{Agent: agent, Sequence: seq}).Bytes()) % 2
			if seq == 1 {
				first = h
			} else if h != first {
				t.Fatalf("agent %s's datagram %d goes to collector %d, its first to %d", agent, seq, h, first)
			}
		}
		to[first]++
	}
	v6 := netip.MustParseAddr("fd00::1")
	if a, b := agentHash((&sflowtest.Datagram{Agent: v6, Sequence: 1}).Bytes()), agentHash((&sflowtest.Datagram{Agent: v6, Sequence: 9}).Bytes()); a != b {
		t.Error("an IPv6 agent moves between collectors")
	}
	if to[0] == 0 || to[1] == 0 {
		t.Errorf("16 agents over 2 collectors: %v", to)
	}
}
