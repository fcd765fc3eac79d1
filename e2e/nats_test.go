//go:build e2e

package e2e

import (
	"encoding/json"
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
// own process on loopback: the simulator's agents send to two ingest
// nodes, which publish samples by address pair; two engine nodes share the
// partitions, so each holds its own pairs; an api node, which alone was
// given the definitions (they reach the engines through the cluster's
// bucket), answers for both: the union of their pairs, pathtrace's path,
// and the sFlow-RT client scripts (scripts/clients.py) unchanged. kill -9
// of the node that holds the elephant's pair: the other takes its
// partitions over, reads them back from the stream, and the api node
// shows the same elephant (its id kept) live again within 15 s (leases
// last 6 s).
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
	// Two ingest nodes: the simulator's agents are split between them.
	sflow2 := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	start("ingest", ingestHTTP, "-role", "ingest", "-sflow", sflow)
	ingest2HTTP := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	start("ingest2", ingest2HTTP, "-role", "ingest", "-sflow", sflow2)
	apiHTTP := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	bgp := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)) // the api node's BGP peer: the leaves announce the containers
	start("api", apiHTTP, "-role", "api", "-sflow", "", "-define", define, "-bgp", bgp, "-bgp-accept", "127.0.1.0/24")
	type node struct {
		name, http string
		cmd        *exec.Cmd
	}
	var nodes []*node
	for _, name := range []string{"e1", "e2"} {
		n := &node{name: name, http: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))}
		n.cmd = start(name, n.http, "-role", "engine", "-node", name)
		waitFor(t, name+" has the api node's definitions", 10*time.Second, fileContains(filepath.Join(dir, name+".log"), "definitions from the cluster applied"))
		nodes = append(nodes, n)
		if name == "e1" {
			waitFor(t, "e1 owns all 16 partitions", 10*time.Second, fileContains(filepath.Join(dir, "e1.log"), "count=16"))
		}
	}
	// Settled before any sample flows: 8 partitions each.
	for _, n := range nodes {
		waitFor(t, n.name+" owns 8 partitions", 15*time.Second, fileContains(filepath.Join(dir, n.name+".log"), "count=8"))
	}
	run(t, dir, "fabricsim", nil, filepath.Join(bin, "fabricsim"), "-sflow", sflow+","+sflow2, "-bgp", bgp,
		"-elephant", "172.16.1.11,172.16.1.42,300,0s,1h", "-elephant-every", "0", "-progress", "0")

	pairsAt := func(http string) []string {
		var afs []struct{ Key string }
		if err := getJSON("http://"+http+"/activeflows/ALL/pairs/json?maxFlows=1000", &afs); err != nil {
			return nil
		}
		var out []string
		for _, af := range afs {
			out = append(out, af.Key)
		}
		slices.Sort(out)
		return out
	}
	pairs := func(n *node) []string { return pairsAt(n.http) }
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
	var agents1, agents2 map[string]any
	getJSON("http://"+ingestHTTP+"/agents/json", &agents1)
	getJSON("http://"+ingest2HTTP+"/agents/json", &agents2)
	if len(agents1) == 0 || len(agents2) == 0 {
		t.Errorf("the ingest nodes hear %d and %d agents: the simulator's are not split between them", len(agents1), len(agents2))
	}
	for a := range agents1 {
		if _, ok := agents2[a]; ok {
			t.Errorf("agent %s heard by both ingest nodes", a)
		}
	}
	t.Logf("the ingest nodes hear %d and %d agents", len(agents1), len(agents2))
	a, b := pairs(owner), pairs(other)
	for _, p := range a {
		if slices.Contains(b, p) {
			t.Fatalf("pair %s on both engine nodes", p)
		}
	}
	t.Logf("%s holds %d pairs, the elephant's among them; %s %d", owner.name, len(a), other.name, len(b))

	// The api node answers for both engines: the union of their pairs
	// (asked until three answers agree, as flows come and go).
	waitFor(t, "the api node's pairs are the engines' together", 15*time.Second, func() (bool, string) {
		a, b := pairs(owner), pairs(other)
		both := append(slices.Clone(a), b...)
		slices.Sort(both)
		got := pairsAt(apiHTTP)
		return slices.Equal(got, both), fmt.Sprintf("api %d pairs, engines %d+%d", len(got), len(a), len(b))
	})
	// pathtrace against the api node: the elephant's path, leaf01 to leaf04.
	// The engines know who owns the destination from the api node's RIB,
	// through the routes bucket: leaf04 announced it.
	waitFor(t, "pathtrace at the api node shows the elephant's path and owner", 30*time.Second, func() (bool, string) {
		out, err := exec.Command(pathtraceBin, "-collector", "http://"+apiHTTP, "-json", "172.16.1.11", "172.16.1.42").Output()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		var got pathAnswer
		json.Unmarshal(out, &got)
		return len(got.Paths) > 0 && got.Paths[0].Complete && strings.Contains(got.hops(0), "10.255.1.1@") &&
			strings.Contains(got.hops(0), "10.255.1.4@") && got.DstOwner != nil && got.DstOwner.Prefix == "172.16.1.42/32", string(out)
	})
	// The sFlow-RT client scripts, unchanged, against the api node: their
	// definitions reach the engines, their thresholds' events come back.
	// (once every host has sent its counters twice: utilizations are rates)
	waitFor(t, "the api node's host table", 30*time.Second, func() (bool, string) {
		var rows [][]any
		err := getJSON("http://"+apiHTTP+"/table/ALL/host_name,load_one,cpu_utilization,mem_utilization/json?os_name=linux", &rows)
		return err == nil && len(rows) >= 4, fmt.Sprint(len(rows), " rows ", err)
	})
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not installed")
	}
	out, err := exec.Command(py, "../scripts/clients.py", "http://"+apiHTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("clients.py against the api node: %v\n%s", err, out)
	}
	t.Logf("clients.py against the api node:\n%s", out)
	var elephantID int64 // as the api node numbers it
	activeAt := func() bool {
		var live []struct {
			ElephantID int64
			Src, Dst   string
			Owner      *struct{ AnnouncedBy string }
		}
		getJSON("http://"+apiHTTP+"/elephants/json?active=true", &live)
		for _, e := range live {
			if e.Src == "172.16.1.11" && e.Dst == "172.16.1.42" && e.Owner != nil && e.Owner.AnnouncedBy == "leaf04" {
				elephantID = e.ElephantID
				return true
			}
		}
		return false
	}
	waitFor(t, "the api node shows the elephant live", 15*time.Second, func() (bool, string) { return activeAt(), "" })
	before := elephantID

	// kill -9 the elephant's node, by its PID.
	syscall.Kill(-owner.cmd.Process.Pid, syscall.SIGKILL)
	owner.cmd.Wait()
	killed := time.Now()
	waitFor(t, other.name+" shows the elephant after "+owner.name+" died", 15*time.Second, func() (bool, string) {
		p := pairs(other)
		return slices.Contains(p, elephant), strings.Join(p[:min(len(p), 5)], " ")
	})
	t.Logf("%s was killed; %s showed the elephant %.1f s later", owner.name, other.name, time.Since(killed).Seconds())
	waitFor(t, "the api node shows the elephant live again", 15*time.Second, func() (bool, string) { return activeAt(), "" })
	t.Logf("the api node showed it live again %.1f s after the kill", time.Since(killed).Seconds())
	// The heir read the partition back: the same elephant, its id kept.
	if elephantID != before {
		t.Errorf("the elephant's id at the api node: %d after the move, %d before", elephantID, before)
	}
	// owns is what a node's log last said it owns.
	owns := func(log, count string) func() (bool, string) {
		return func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(dir, log+".log"))
			last := ""
			for l := range strings.SplitSeq(string(b), "\n") {
				if strings.Contains(l, "partitions owned") {
					last = l
				}
			}
			return strings.Contains(last, "count="+count+" "), last
		}
	}
	waitFor(t, other.name+" owns all 16 partitions", 5*time.Second, owns(other.name, "16"))

	// Restarted, the node gets its share back: 8 and 8.
	restarted := time.Now()
	start(owner.name+"-restarted", owner.http, "-role", "engine", "-node", owner.name)
	waitFor(t, owner.name+" owns 8 partitions again", 20*time.Second, owns(owner.name+"-restarted", "8"))
	waitFor(t, other.name+" owns 8 partitions again", 10*time.Second, owns(other.name, "8"))
	t.Logf("%s restarted: 8 and 8 partitions %.1f s later", owner.name, time.Since(restarted).Seconds())
	waitFor(t, "the api node shows the elephant live after the rebalance", 20*time.Second, func() (bool, string) {
		var a, o, r any
		getJSON("http://"+apiHTTP+"/elephants/json?active=true", &a)
		getJSON("http://"+owner.http+"/elephants/json?active=true", &o)
		getJSON("http://"+other.http+"/elephants/json?active=true", &r)
		return activeAt(), fmt.Sprintf("api: %v\nrestarted: %v\nother: %v", a, o, r)
	})
	// The node that gave 8 partitions back forgot their pairs: the two
	// hold disjoint pairs again, and the api node lists the elephant once.
	waitFor(t, "disjoint pairs after the rebalance", 10*time.Second, func() (bool, string) {
		a, b := pairs(owner), pairs(other)
		for _, p := range a {
			if slices.Contains(b, p) {
				return false, "both hold " + p
			}
		}
		return len(a) > 0 && len(b) > 0, fmt.Sprintf("%d and %d pairs", len(a), len(b))
	})
	var live []struct{ Src, Dst string }
	if err := getJSON("http://"+apiHTTP+"/elephants/json?active=true", &live); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range live {
		if e.Src == "172.16.1.11" && e.Dst == "172.16.1.42" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the api node lists the elephant %d times after the rebalance", n)
	}
}
