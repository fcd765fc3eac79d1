// Package scripts holds the demo's shell script and its definitions; its
// test runs `make demo`'s script the way a new user would.
package scripts

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T, network string) string {
	t.Helper()
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

// The demo, as a new user runs it: within 30 s it shows agents reporting,
// BGP sessions up with routes learned, and elephant events; within its first
// minute a link fails under an elephant and the path change shows; Ctrl-C
// stops it.
func TestDemoShowsAgentsRoutesAndElephants(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../cmd/collector", "../cmd/fabricsim", "../cmd/pathtrace")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	httpAddr := freePort(t, "tcp")
	tmp := t.TempDir()
	cmd := exec.Command("./demo.sh")
	// Two engine shards: every answer below (events, elephants, paths, the
	// client scripts') is merged over them, as it must be the same.
	cmd.Env = append(os.Environ(), "BIN="+bin, "DEMO_SFLOW="+freePort(t, "udp"), "DEMO_HTTP="+httpAddr,
		"DEMO_BGP="+freePort(t, "tcp"), "TMPDIR="+tmp, "DEMO_FLAGS=-engine-shards 2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	}()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	established, elephant, curlShown := 0, false, false
	deadline := time.After(30 * time.Second)
	for established < 4 || !elephant || !curlShown {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("demo exited early")
			}
			switch {
			case strings.Contains(l, "bgp peer") && strings.Contains(l, "state=established"):
				established++
			case strings.Contains(l, "msg=elephant "):
				elephant = true
			case strings.Contains(l, "/events/json?thresholdID=elephant"):
				curlShown = true
			}
		case <-deadline:
			t.Fatalf("after 30 s: %d BGP sessions up, elephant %v, curl shown %v", established, elephant, curlShown)
		}
	}

	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	// Every agent reports within its first seconds, but one may still hold
	// its first datagram (1 s export delay) when the first elephant shows.
	var agents map[string]map[string]any
	for until := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		get("/agents/json", &agents)
		if len(agents) >= 10 || time.Now().After(until) {
			break
		}
	}
	var events []map[string]any
	get("/events/json?thresholdID=elephant", &events)
	var owner struct{ Best struct{ Nexthop string } }
	get("/rib/lookup/json?address=172.16.1.22", &owner)
	if len(agents) != 10 || len(events) == 0 || owner.Best.Nexthop != "10.0.0.2" {
		t.Errorf("%d agents (want 10), %d events, 172.16.1.22 via %q (want 10.0.0.2)", len(agents), len(events), owner.Best.Nexthop)
	}
	// Events reach the store's history (written in batches).
	waitForHistory := time.Now().Add(10 * time.Second)
	var history []map[string]any
	for len(history) == 0 && time.Now().Before(waitForHistory) {
		get("/history/events/json?thresholdID=elephant", &history)
		if len(history) == 0 {
			time.Sleep(200 * time.Millisecond) // the writer commits every 200 ms
		}
	}
	if len(history) == 0 {
		t.Error("no elephant events in /history/events/json")
	}
	// The pathtrace command the demo prints works at once.
	out, err := exec.Command(bin+"/pathtrace", "-collector", "http://"+httpAddr, "172.16.1.11", "172.16.1.42").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "leaf01") || !strings.Contains(string(out), "leaf04") ||
		!strings.Contains(string(out), "announced by leaf04, host server04") {
		t.Errorf("pathtrace: %v\n%s", err, out)
	}

	// A link fails under an elephant within 20 s: the path change shows, in
	// the log and the events, within the first minute.
	changed := false
	for minute := time.After(45 * time.Second); !changed; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("demo exited early")
			}
			changed = strings.Contains(l, `msg="path change"`)
		case <-minute:
			t.Fatal("no path change logged in the demo's first minute")
		}
	}
	var changes []map[string]any
	get("/events/json?thresholdID=pathchange", &changes)
	if len(changes) == 0 {
		t.Error("a path change logged, but none in /events/json?thresholdID=pathchange")
	}
	// Without a thresholdID, only the thresholds a client defined (an
	// sFlow-RT client indexes events by them); builtin=true adds ours.
	var all, withBuiltin []map[string]any
	get("/events/json?maxEvents=10000", &all)
	get("/events/json?maxEvents=10000&builtin=true", &withBuiltin)
	builtins := func(evs []map[string]any) (n int) {
		for _, ev := range evs {
			if id := ev["thresholdID"]; id == "pathchange" || id == "collision" {
				n++
			}
		}
		return n
	}
	if n := builtins(all); n > 0 || len(all) == 0 {
		t.Errorf("/events/json without a thresholdID: %d events, %d of them built in", len(all), n)
	}
	if builtins(withBuiltin) == 0 {
		t.Error("/events/json?builtin=true has no built-in events")
	}

	// What the common sFlow-RT client scripts do, in Python, against the
	// demo (scripts/clients.py).
	if py, err := exec.LookPath("python3"); err != nil {
		t.Log("SKIP the Python client checks: python3 not installed")
	} else {
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		out, err := exec.CommandContext(ctx, py, "clients.py", "http://"+httpAddr).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "ok all") {
			t.Errorf("clients.py: %v\n%s", err, out)
		} else {
			t.Logf("clients.py:\n%s", out)
		}
	}

	// Ctrl-C reaches the whole process group, as a terminal's does.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	var tail []string
	for l := range lines {
		tail = append(tail, l)
	}
	err = cmd.Wait()
	stopped = true
	if !strings.Contains(strings.Join(tail, "\n"), "demo stopped") {
		t.Errorf("no clean stop after Ctrl-C (%v):\n%s", err, strings.Join(tail, "\n"))
	}
	// The simulator wrote its truth on the way out: it stopped cleanly too.
	if truth, _ := filepath.Glob(filepath.Join(tmp, "fabrictrace-demo.*", "truth.json")); len(truth) != 1 {
		t.Errorf("no truth.json after the demo stopped")
	}
}
