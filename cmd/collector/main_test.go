package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

func TestParseFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-sflow-sockets", "0"}, io.Discard); err == nil {
		t.Error("-sflow-sockets 0 accepted")
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument accepted")
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.sflow != ":6343" || o.rcvbuf != 32<<20 {
		t.Errorf("defaults: %+v %v", o, err)
	}
}

// TestCollectorAsANewUserRunsIt builds the binary, starts it the way the
// README says, and checks what a newcomer sees: where it listens, the buffer
// it got, the samples it decodes, and a clean stop on SIGTERM.
func TestCollectorAsANewUserRunsIt(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "collector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-sflow", "127.0.0.1:0", "-http", "127.0.0.1:0", "-db", "", "-dump", "-stats-interval", "0")
	// Our own pipes, not StdoutPipe: Wait must not close them under the readers.
	stderr, errW, _ := os.Pipe()
	stdout, outW, _ := os.Pipe()
	cmd.Stderr, cmd.Stdout = errW, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errW.Close()
	outW.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	logs := bufio.NewScanner(stderr)
	var addr netip.AddrPort
	var logged []string
	for logs.Scan() {
		line := logs.Text()
		logged = append(logged, line)
		if strings.Contains(line, "listening for sFlow") {
			m := regexp.MustCompile(`udp=(\S+).*rcvbuf=(\d+)`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("listen line lacks the address or buffer: %s", line)
			}
			addr = netip.MustParseAddrPort(m[1])
			if n, _ := strconv.Atoi(m[2]); n < 212992 {
				t.Errorf("effective buffer %d is below the kernel default", n)
			}
			break
		}
	}
	if !addr.IsValid() {
		t.Fatalf("no listen line; stderr was %q", logged)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); rest <- string(b) }()

	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := sflowtest.Frame{Src: netip.MustParseAddr("10.1.1.2"), Dst: netip.MustParseAddr("172.16.1.20"),
		Protocol: sflowtest.ProtoUDP, TTL: 63, SrcPort: 40000, DstPort: 9999}
	for seq := uint32(1); seq <= 3; seq++ {
		d := sflowtest.Datagram{Agent: netip.MustParseAddr("10.255.0.12"), Sequence: seq, Samples: []sflowtest.Sample{
			&sflowtest.FlowSample{Sequence: seq, SamplingRate: 64, Input: decode.Port{Value: 2},
				Output:  decode.Port{Format: decode.PortDiscard, Value: 256},
				Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 60, Header: f.Bytes()}}}}}
		c.Write(d.Bytes())
	}
	lines := bufio.NewScanner(stdout)
	for i := 1; i <= 3; i++ {
		if !lines.Scan() {
			t.Fatalf("stdout ended after %d samples", i-1)
		}
		var j struct {
			Type, Agent, Inputifindex, Outputifindex string
			Seq                                      uint32
			Packet                                   struct {
				IPSource, IPDestination string
				IPTTL                   uint8
				SrcPort, DstPort        uint16
			}
		}
		if err := json.Unmarshal(lines.Bytes(), &j); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, lines.Text())
		}
		if j.Type != "flow" || j.Agent != "10.255.0.12" || j.Seq != uint32(i) || j.Inputifindex != "2" || j.Outputifindex != "discard" ||
			j.Packet.IPSource != "10.1.1.2" || j.Packet.IPDestination != "172.16.1.20" || j.Packet.IPTTL != 63 || j.Packet.DstPort != 9999 {
			t.Errorf("line %d: %s", i, lines.Text())
		}
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
	if tail := <-rest; !strings.Contains(tail, "stopped; ingest totals") || !strings.Contains(tail, "datagrams=3") {
		t.Errorf("final totals missing from the log: %q", tail)
	}
}

// An unprivileged user gets SO_RCVBUF capped by net.core.rmem_max: the
// collector must say so, with the sysctl that fixes it, and still run.
func TestCollectorAsAnUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to the nobody user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	dir, err := os.MkdirTemp("", "collector-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "collector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	rmem, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	capped := strings.TrimSpace(string(rmem)) != "" && atoi(strings.TrimSpace(string(rmem))) < 32<<20

	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-sflow", "127.0.0.1:0", "-http", "127.0.0.1:0", "-db", "", "-stats-interval", "0")
	stderr, errW, _ := os.Pipe()
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errW.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// The listen line, then (when the buffer is capped) the warning with
	// the fix right after it; other lines (such as GeoIP's) may come first.
	logs := bufio.NewScanner(stderr)
	var lines []string
	listen := -1
	for len(lines) < 8 && logs.Scan() {
		lines = append(lines, logs.Text())
		if listen < 0 && strings.Contains(logs.Text(), "listening for sFlow") {
			listen = len(lines) - 1
		}
		if listen >= 0 && (!capped || len(lines) > listen+1) {
			break
		}
	}
	if listen < 0 {
		t.Fatalf("no listen line: %q", lines)
	}
	warned := len(lines) > listen+1 && strings.Contains(lines[listen+1], "capped by net.core.rmem_max") &&
		strings.Contains(lines[listen+1], "sysctl -w net.core.rmem_max=33554432")
	if capped && !warned {
		t.Errorf("rmem_max is %s but no warning with the fix: %q", strings.TrimSpace(string(rmem)), lines)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}

	// BGP on 179 needs root: the collector says so and how to do without.
	out, err := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-sflow", "127.0.0.1:0",
		"-http", "", "-db", "", "-bgp", "127.0.0.1:179", "-bgp-accept", "127.0.0.0/8").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "use a high port such as -bgp :1179") {
		t.Errorf("BGP on port 179 as nobody: %v\n%s", err, out)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
