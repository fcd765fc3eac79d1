//go:build e2e

// Package e2e runs fabrictrace against real third-party peers: a routed
// chain of network namespaces, created and deleted by each test, whose
// routers export sFlow from real agents (Open vSwitch, pmacctd), so the TTL
// really drops hop by hop, with tshark decoding the same datagrams as a
// cross-check; and real BGP speakers (FRR, BIRD, gobgpd, ExaBGP) on
// loopback, each from its own source address and private directory. Run it
// with `make test-e2e` (as root).
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var collectorBin, pathtraceBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP e2e: network namespaces need root; run `sudo make test-e2e`")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "fabrictrace-e2e-bin")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	collectorBin, pathtraceBin = filepath.Join(dir, "collector"), filepath.Join(dir, "pathtrace")
	if out, err := exec.Command("go", "build", "-o", dir+"/", "../cmd/collector", "../cmd/pathtrace").CombinedOutput(); err != nil {
		fmt.Printf("build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fabric is one run of e2e/fabric.sh: its namespace prefix and state dir.
type fabric struct {
	t      *testing.T
	prefix string
	dir    string
}

func newFabric(t *testing.T, tag string) *fabric { return newFabricWith(t, tag, "up") }

// newFabricWith lays out fabric.sh's chain ("up") or its two-spine ECMP
// fabric ("up2").
func newFabricWith(t *testing.T, tag, layout string) *fabric {
	f := &fabric{t: t, prefix: fmt.Sprintf("ft%s%d", tag, os.Getpid()%10000), dir: t.TempDir()}
	t.Cleanup(f.tellIfFailed) // runs after "down" below, before the dir goes
	t.Cleanup(func() { f.script("down") })
	f.script(layout)
	return f
}

func (f *fabric) script(args ...string) {
	f.t.Helper()
	cmd := exec.Command("./fabric.sh", args...)
	cmd.Env = append(os.Environ(), "P="+f.prefix, "W="+f.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("fabric.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// start runs a command in namespace ns, with its output in files under the
// state dir, and its PID where fabric.sh down will find it too.
func (f *fabric) start(name, ns string, args ...string) *exec.Cmd {
	f.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", f.prefix + ns}, args...)...)
	out, err := os.Create(filepath.Join(f.dir, name+".out"))
	if err != nil {
		f.t.Fatal(err)
	}
	errf, _ := os.Create(filepath.Join(f.dir, name+".err"))
	cmd.Stdout, cmd.Stderr = out, errf
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	os.WriteFile(filepath.Join(f.dir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	f.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func (f *fabric) file(name string) string { return filepath.Join(f.dir, name) }

// tellIfFailed logs, for a test that failed, the last lines of what every
// process it started wrote, and of the agents' logs (Open vSwitch's under
// ovs-ROUTER/): what a flaky run in CI leaves to go on.
func (f *fabric) tellIfFailed() {
	if !f.t.Failed() {
		return
	}
	var files []string
	for _, pattern := range []string{"*.out", "*.err", "*.log", "*/*.log"} {
		m, _ := filepath.Glob(filepath.Join(f.dir, pattern))
		files = append(files, m...)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		rel, _ := filepath.Rel(f.dir, name)
		f.t.Logf("%s, last %d lines:\n%s", rel, min(len(lines), 15), strings.Join(lines[max(len(lines)-15, 0):], "\n"))
	}
}

// waitFor polls until cond holds, or fails after timeout with what it saw.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; saw %s", what, timeout, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func fileContains(path, s string) func() (bool, string) {
	return func() (bool, string) {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte(s)), fmt.Sprintf("%q", b)
	}
}

// stop signals a process we started and waits for it.
func stop(t *testing.T, cmd *exec.Cmd, sig syscall.Signal) error {
	t.Helper()
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("no exit 15 s after %v", sig)
	}
}

type hop struct {
	agent string
	ttl   int
	input string
}

// countFlow reads the collector's -dump output and counts the samples of one
// flow per (agent, TTL, input ifIndex).
func countFlow(path, src, dst string, dport int) map[hop]int {
	counts := map[hop]int{}
	fh, err := os.Open(path)
	if err != nil {
		return counts
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var j struct {
			Type, Agent, Inputifindex string
			Packet                    struct {
				IPSource, IPDestination string
				IPTTL                   int
				DstPort                 int
			}
		}
		if json.Unmarshal(sc.Bytes(), &j) != nil || j.Type != "flow" {
			continue
		}
		if j.Packet.IPSource == src && j.Packet.IPDestination == dst && j.Packet.DstPort == dport {
			counts[hop{j.Agent, j.Packet.IPTTL, j.Inputifindex}]++
		}
	}
	return counts
}

// TestRealAgentsTTLPath sends 300 UDP packets with TTL 64 from h1 to a
// container address behind leaf2, with every router sampling 1-in-1, and
// checks that the collector decoded exactly 300 samples at each hop with the
// TTL falling 64, 63, 62, that it found no fault in any real datagram, and
// that tshark reads the same fields from the same datagrams.
func TestRealAgentsTTLPath(t *testing.T) {
	for _, agent := range []struct {
		kind    string
		timeout time.Duration // pmacctd exports lazily at low rates
	}{{"ovs", 30 * time.Second}, {"pmacct", 60 * time.Second}} {
		t.Run(agent.kind, func(t *testing.T) {
			f := newFabric(t, agent.kind[:1])
			tcpdump := f.start("tcpdump", "mg", "tcpdump", "-i", "mgbr", "-U", "-n", "-B", "8192", "-w", f.file("sflow.pcap"), "udp", "port", "6343")
			waitFor(t, "tcpdump listening", 10*time.Second, fileContains(f.file("tcpdump.err"), "listening on"))
			collector := f.start("collector", "mg", collectorBin, "-sflow", "10.255.0.1:6343", "-dump", "-stats-interval", "0", "-db", "")
			waitFor(t, "collector listening", 10*time.Second, fileContains(f.file("collector.err"), "listening for sFlow"))
			f.script("agents", agent.kind, "1")

			const packets = 300
			send := func(dst string, dport, count int) {
				t.Helper()
				cmd := exec.Command("ip", "netns", "exec", f.prefix+"h1", "hping3", "-2", "-s", "40000", "-k",
					"-p", strconv.Itoa(dport), "-c", strconv.Itoa(count), "-i", "u2000", "--ttl", "64", dst)
				// hping3 exits 1 when nothing answers, as UDP to a closed port
				// does not; what matters is that it sent them all.
				out, _ := cmd.CombinedOutput()
				if !bytes.Contains(out, []byte(fmt.Sprintf("%d packets transmitted", count))) {
					t.Fatalf("hping3 did not send %d packets:\n%s", count, out)
				}
			}
			atAllHops := func(counts map[hop]int, n int) (bool, string) {
				per := map[string]int{}
				for h, c := range counts {
					per[h.agent] += c
				}
				return len(per) == 3 && per["10.255.0.11"] >= n && per["10.255.0.12"] >= n && per["10.255.0.13"] >= n, fmt.Sprint(counts)
			}
			// Warm up with another flow until every agent is seen sampling it,
			// so no packet of the measured flow goes by before capture starts.
			waitFor(t, "every agent sampling", agent.timeout, func() (bool, string) {
				send("172.16.1.21", 9998, 10)
				return atAllHops(countFlow(f.file("collector.out"), "10.1.1.2", "172.16.1.21", 9998), 1)
			})
			send("172.16.1.20", 9999, packets)
			want := map[string]int{"10.255.0.11": 64, "10.255.0.12": 63, "10.255.0.13": 62}
			// pmacctd exports only as more traffic arrives: keep a trickle of
			// the warm-up flow going (bounded by the timeout) until all is in.
			waitFor(t, "300 samples at each of 3 hops", agent.timeout, func() (bool, string) {
				ok, seen := atAllHops(countFlow(f.file("collector.out"), "10.1.1.2", "172.16.1.20", 9999), packets)
				if !ok {
					send("172.16.1.21", 9998, 10)
				}
				return ok, seen
			})

			counts := countFlow(f.file("collector.out"), "10.1.1.2", "172.16.1.20", 9999)
			perAgent := map[string]int{}
			for h, n := range counts {
				if want[h.agent] != h.ttl {
					t.Errorf("%d samples at agent %s with TTL %d; want TTL %d there", n, h.agent, h.ttl, want[h.agent])
				}
				perAgent[h.agent] += n
			}
			for a := range want {
				if perAgent[a] != packets {
					t.Errorf("agent %s: %d samples, want exactly %d (sampling 1-in-1)", a, perAgent[a], packets)
				}
			}
			t.Logf("samples per (agent, TTL, input): %v", counts)

			if err := stop(t, collector, syscall.SIGTERM); err != nil {
				t.Errorf("collector exit: %v", err)
			}
			logs, _ := os.ReadFile(f.file("collector.err"))
			if !bytes.Contains(logs, []byte("stopped; ingest totals")) || !bytes.Contains(logs, []byte(`faults=""`)) ||
				!bytes.Contains(logs, []byte("undecodable=0")) {
				t.Errorf("the collector should report no fault on real agents' datagrams:\n%s", logs)
			}
			stop(t, tcpdump, syscall.SIGINT)
			capture, _ := os.ReadFile(f.file("tcpdump.err"))
			if n := crossCheck(t, f.file("sflow.pcap")); n < 3*packets {
				t.Errorf("only %d flow samples were compared with tshark, want at least %d; tcpdump said:\n%s", n, 3*packets, capture)
			}
		})
	}
}
