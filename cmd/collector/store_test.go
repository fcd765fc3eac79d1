package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What users PUT survives a restart, through the -db file.
func TestDefinitionsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	bin, addr := buildCollector(t, dir)
	db := filepath.Join(dir, "ft.db")
	start := func() *exec.Cmd { return startServing(t, bin, addr, db) }
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit: %v", err)
		}
	}

	c := start()
	for _, w := range []struct{ path, body string }{
		{"/flow/pairs/json", `{"keys":"ipsource,ipdestination","value":"bps","n":10}`},
		{"/threshold/big/json", `{"metric":"pairs","value":1e8,"byFlow":true}`},
		{"/group/zones/json", `{"inside":["10.0.0.0/8"]}`},
		{"/map/ports/json", `{"web":["80","443"]}`},
		{"/flow/apps/json", `{"keys":"map:tcpdestinationport:ports"}`},
		{"/topology/json", `{"links":{"l1":{"node1":"leaf01","port1":"swp51","node2":"spine01","port2":"swp1"}}}`},
		{"/flow/temp/json", `{"keys":"ipsource"}`},
	} {
		if code, out := do("PUT", w.path, w.body); code != 204 {
			t.Fatalf("PUT %s: %d %s", w.path, code, out)
		}
	}
	if code, _ := do("DELETE", "/flow/temp/json", ""); code != 204 {
		t.Fatal("DELETE failed")
	}
	stop(c)

	c = start()
	defer stop(c)
	for path, want := range map[string]string{
		"/flow/pairs/json":                        `"n":10`,
		"/threshold/big/json":                     `"metric":"pairs"`,
		"/group/json":                             `"inside":["10.0.0.0/8"]`,
		"/map/ports/json":                         `"web":["80","443"]`,
		"/flow/apps/json":                         `map:tcpdestinationport:ports`,
		"/topology/json":                          `"l1"`,
		"/history/events/json":                    `[]`,
		"/history/elephants/json?src=172.16.1.11": `[]`,
	} {
		if code, out := do("GET", path, ""); code != 200 || !strings.Contains(out, want) {
			t.Errorf("after a restart, GET %s: %d %s; want %s", path, code, out, want)
		}
	}
	if code, _ := do("GET", "/flow/temp/json", ""); code != 404 {
		t.Errorf("a deleted flow came back after the restart: %d", code)
	}

	// /metrics parses as Prometheus text, and every family says what it is.
	code, text := do("GET", "/metrics", "")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if code != 200 || err != nil {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, name := range []string{"fabrictrace_flows", "fabrictrace_flows_evicted_total", "fabrictrace_events_total",
		"fabrictrace_kernel_socket_drops_total", "fabrictrace_decode_faults_total", "fabrictrace_store_written_total",
		"fabrictrace_store_queue_depth", "fabrictrace_paths_tracked", "fabrictrace_build_info", "go_goroutines",
		"fabrictrace_longpoll_waiters", "fabrictrace_store_write_seconds_total"} {
		if f := families[name]; f == nil || f.GetHelp() == "" {
			t.Errorf("/metrics lacks %s (or its help)", name)
		}
	}
}

// A stop during a long poll ends it at once, and the collector exits 0.
func TestStopReleasesLongPolls(t *testing.T) {
	dir := t.TempDir()
	bin, addr := buildCollector(t, dir)
	cmd := startServing(t, bin, addr, filepath.Join(dir, "ft.db"))
	polled := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/events/json?timeout=60")
		if err == nil {
			resp.Body.Close()
		}
		polled <- err
	}()
	// Let the poll reach the server: the next request is served after it.
	if resp, err := http.Get("http://" + addr + "/version"); err == nil {
		resp.Body.Close()
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM with a long poll open: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("stopping took %v", d)
	}
	select {
	case <-polled:
	case <-time.After(5 * time.Second):
		t.Error("the long poll was not released")
	}
}

// buildCollector builds the collector into dir and picks a free address
// for its REST API.
func buildCollector(t *testing.T, dir string) (bin, addr string) {
	t.Helper()
	bin = filepath.Join(dir, "collector")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return bin, ln.Addr().String()
}

// startServing starts the collector with its store at db and returns once
// it serves REST on addr.
func startServing(t *testing.T, bin, addr, db string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-sflow", "127.0.0.1:0", "-http", addr, "-db", db, "-stats-interval", "0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "serving REST API") {
	}
	go io.Copy(io.Discard, stderr)
	return cmd
}
