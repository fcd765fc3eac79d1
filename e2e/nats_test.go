//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Scale-out over Debian's nats-server (2.9) with JetStream, each role its
// own process on loopback: the simulator sends to an ingest node, which
// publishes samples by address pair; two engine nodes share the
// partitions, so each holds its own pairs. kill -9 of the node that holds
// the elephant's pair: the other takes its partitions over and shows the
// elephant within 15 s (leases last 6 s; a moved flow rebuilds its rate
// within its time constant).
func TestScaleOutOverRealNATS(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is not installed: run e2e/setup.sh as root")
	}
	dir := t.TempDir()
	bin := filepath.Dir(collectorBin)
	if out, err := exec.Command("go", "build", "-o", bin+"/", "../cmd/fabricsim").CombinedOutput(); err != nil {
		t.Fatalf("build fabricsim: %v\n%s", err, out)
	}
	natsPort := freeTCPPort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	run(t, dir, "nats-server", nil, natsBin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(natsPort), "-sd", filepath.Join(dir, "js"))
	define, _ := filepath.Abs("../scripts/demo.json")
	common := []string{"-nats", natsURL, "-nats-partitions", "16", "-db", "", "-bgp", "", "-stats-interval", "0"}
	sflow := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	ingestHTTP := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	start := func(name, httpAddr string, args ...string) *exec.Cmd {
		cmd := run(t, dir, name, nil, append(append([]string{collectorBin, "-http", httpAddr}, common...), args...)...)
		waitFor(t, name+" REST", 15*time.Second, func() (bool, string) {
			var v any
			err := getJSON("http://"+httpAddr+"/version", &v)
			return err == nil, fmt.Sprint(err)
		})
		return cmd
	}
	start("ingest", ingestHTTP, "-role", "ingest", "-sflow", sflow)
	type node struct {
		name, http string
		cmd        *exec.Cmd
	}
	var nodes []*node
	for _, name := range []string{"e1", "e2"} {
		n := &node{name: name, http: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))}
		n.cmd = start(name, n.http, "-role", "engine", "-node", name, "-define", define)
		nodes = append(nodes, n)
		if name == "e1" {
			waitFor(t, "e1 owns all 16 partitions", 10*time.Second, fileContains(filepath.Join(dir, "e1.log"), "count=16"))
		}
	}
	// Settled before any sample flows: 8 partitions each.
	for _, n := range nodes {
		waitFor(t, n.name+" owns 8 partitions", 15*time.Second, fileContains(filepath.Join(dir, n.name+".log"), "count=8"))
	}
	run(t, dir, "fabricsim", nil, filepath.Join(bin, "fabricsim"), "-sflow", sflow, "-bgp", "",
		"-elephant", "172.16.1.11,172.16.1.42,300,0s,1h", "-elephant-every", "0", "-progress", "0")

	pairs := func(n *node) []string {
		var afs []struct{ Key string }
		if err := getJSON("http://"+n.http+"/activeflows/ALL/pairs/json?maxFlows=1000", &afs); err != nil {
			return nil
		}
		var out []string
		for _, af := range afs {
			out = append(out, af.Key)
		}
		slices.Sort(out)
		return out
	}
	const elephant = "172.16.1.11,172.16.1.42"
	var owner, other *node
	waitFor(t, "both engine nodes hold pairs, one of them the elephant's", 30*time.Second, func() (bool, string) {
		a, b := pairs(nodes[0]), pairs(nodes[1])
		owner, other = nil, nil
		switch {
		case slices.Contains(a, elephant):
			owner, other = nodes[0], nodes[1]
		case slices.Contains(b, elephant):
			owner, other = nodes[1], nodes[0]
		}
		return len(a) >= 5 && len(b) >= 5 && owner != nil, fmt.Sprintf("%d and %d pairs", len(a), len(b))
	})
	a, b := pairs(owner), pairs(other)
	for _, p := range a {
		if slices.Contains(b, p) {
			t.Fatalf("pair %s on both engine nodes", p)
		}
	}
	t.Logf("%s holds %d pairs, the elephant's among them; %s %d", owner.name, len(a), other.name, len(b))

	// kill -9 the elephant's node, by its PID.
	syscall.Kill(-owner.cmd.Process.Pid, syscall.SIGKILL)
	owner.cmd.Wait()
	killed := time.Now()
	waitFor(t, other.name+" shows the elephant after "+owner.name+" died", 15*time.Second, func() (bool, string) {
		p := pairs(other)
		return slices.Contains(p, elephant), strings.Join(p[:min(len(p), 5)], " ")
	})
	t.Logf("%s was killed; %s showed the elephant %.1f s later", owner.name, other.name, time.Since(killed).Seconds())
	waitFor(t, other.name+" owns all 16 partitions", 5*time.Second, func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(dir, other.name+".log"))
		lines := strings.Split(string(b), "\n")
		last := ""
		for _, l := range lines {
			if strings.Contains(l, "partitions owned") {
				last = l
			}
		}
		return strings.Contains(last, "count=16"), last
	})
}
