package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/web"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a collector's engine and REST API fed by a simulator.
type rig struct {
	t     *testing.T
	sim   *sim.Sim
	eng   *flows.Engine
	clock *fakeClock
	srv   *httptest.Server
	dec   decode.Decoder
	steps int
}

func newRig(t *testing.T, cfg sim.Config, readOnly bool) *rig {
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	eng := flows.New(flows.Config{Now: clock.now})
	srv := httptest.NewServer(web.New(web.Config{Engine: eng, ReadOnly: readOnly,
		Agents: func() []web.Agent { return []web.Agent{{Agent: "10.255.1.1", DatagramsReceived: 7}} }}))
	t.Cleanup(srv.Close)
	return &rig{t: t, sim: s, eng: eng, clock: clock, srv: srv}
}

func (r *rig) step() {
	r.sim.Step(func(b []byte) {
		if _, err := r.dec.Decode(b, r.eng); err != nil {
			r.t.Fatal(err)
		}
	})
	r.clock.add(100 * time.Millisecond)
	if r.steps++; r.steps%10 == 0 {
		r.eng.Sweep()
	}
}

func (r *rig) do(method, path, body string) (int, string) {
	r.t.Helper()
	req, err := http.NewRequest(method, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *rig) must(method, path, body string, want int) string {
	r.t.Helper()
	code, out := r.do(method, path, body)
	if code != want {
		r.t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return out
}

// The elephant-path loop of sFlow-RT's blog script, over HTTP: define the
// flow and threshold, long-poll events, and get one per hop within 100 ms
// of the sample that crossed.
func TestElephantEventsOverHTTP(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 3, Mice: 40, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.12"), Dst: mustAddr("172.16.1.33"), Rate: 400e6, Start: 12 * time.Second,
		Duration: 10 * time.Second}}}, false)
	r.must("PUT", "/flow/elephant/json", `{"keys":"node:inputifindex,ipsource,ipdestination,ipttl","value":"bytes"}`, 204)
	r.must("PUT", "/threshold/elephant/json", `{"metric":"elephant","value":12500000,"byFlow":true,"timeout":600}`, 204)
	def := r.must("GET", "/flow/elephant/json", "", 200)
	for _, want := range []string{`"n":5`, `"t":2`, `"fs":","`, `"activeTimeout":60`, `"filter":null`} {
		if !strings.Contains(def, want) {
			t.Errorf("GET flow %s lacks default %s", def, want)
		}
	}

	type arrival struct {
		events []api.Event
		at     time.Time
	}
	got := make(chan arrival, 10)
	go func() {
		id := int64(-1)
		for range 3 {
			req, _ := http.NewRequestWithContext(t.Context(), "GET",
				fmt.Sprintf("%s/events/json?thresholdID=elephant&maxEvents=10&timeout=60&eventID=%d", r.srv.URL, id), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			var evs []api.Event
			json.NewDecoder(resp.Body).Decode(&evs)
			resp.Body.Close()
			if len(evs) > 0 {
				id = evs[0].EventID
				got <- arrival{evs, time.Now()}
			}
		}
	}()

	seen := map[string]time.Time{} // flow key -> when the engine had its event
	var arrived []api.Event
	deadline := time.After(30 * time.Second)
	for len(arrived) < 3 && r.sim.Now() < 30*time.Second {
		r.step()
		for _, ev := range r.eng.Events(t.Context(), -1, "", 100, 0) {
			if _, ok := seen[ev.FlowKey]; !ok {
				seen[ev.FlowKey] = time.Now()
			}
		}
		// Let the poller catch up before the next step, so latency is its own.
		for len(seen) > len(arrived) {
			select {
			case a := <-got:
				for _, ev := range a.events {
					if lag := a.at.Sub(seen[ev.FlowKey]); lag > 100*time.Millisecond {
						t.Errorf("event %s reached the client %v after the engine raised it", ev.FlowKey, lag)
					}
					arrived = append(arrived, ev)
				}
			case <-deadline:
				t.Fatalf("long poll returned %d events of %d", len(arrived), len(seen))
			}
		}
	}
	if len(arrived) != 3 {
		t.Fatalf("%d events, want 3 (leaf, spine, leaf)", len(arrived))
	}
	for _, ev := range arrived {
		if !strings.Contains(ev.FlowKey, ",172.16.1.12,172.16.1.33,") || ev.ThresholdID != "elephant" || ev.Agent == "" {
			t.Errorf("event %+v", ev)
		}
	}
	// Newest first, ids only above eventID.
	var evs []api.Event
	json.Unmarshal([]byte(r.must("GET", fmt.Sprintf("/events/json?eventID=%d", arrived[0].EventID), "", 200)), &evs)
	if len(evs) != 2 || evs[0].EventID < evs[1].EventID || evs[1].EventID <= arrived[0].EventID {
		t.Errorf("events after %d: %+v", arrived[0].EventID, evs)
	}

	var active []api.ActiveFlow
	json.Unmarshal([]byte(r.must("GET", "/activeflows/ALL/elephant/json?maxFlows=3&minValue=5000000", "", 200)), &active)
	if len(active) != 3 || !strings.HasPrefix(active[0].Key, "leaf") && !strings.HasPrefix(active[0].Key, "spine") {
		t.Errorf("active flows %+v, want the elephant's 3 hops", active)
	}
	// Nodes the collector knows by name stand for their addresses.
	var named api.Paths
	json.Unmarshal([]byte(r.must("GET", "/paths/json?src=leaf01&dst=spine02", "", 200)), &named)
	if named.Src.String() != "10.255.1.1" || named.Dst.String() != "10.255.0.2" {
		t.Errorf("leaf01 -> spine02 resolved to %s -> %s", named.Src, named.Dst)
	}
	r.must("GET", "/paths/json?src=nobody&dst=spine02", "", 400)
	var agents map[string]map[string]any
	json.Unmarshal([]byte(r.must("GET", "/agents/json", "", 200)), &agents)
	if agents["10.255.1.1"]["sFlowDatagramsReceived"] != 7.0 {
		t.Errorf("agents %v", agents)
	}
}

func TestBadRequestsSayWhatIsWrong(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1}, false)
	for _, c := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"PUT", "/flow/f/json", `{"keys":"ipsource,bogus"}`, 400, `unknown key \"bogus\"`},
		{"PUT", "/flow/f/json", `{"keys":"ipsource","filter":"ipsource=10.0.0.1&("}`, 400, "filter"},
		{"PUT", "/flow/f/json", `{"keys":"ipsource","value":"furlongs"}`, 400, "value"},
		{"PUT", "/flow/f/json", `{"keys":"ipsource","colour":"red"}`, 400, `field \"colour\"`},
		{"PUT", "/flow/f/json", `{"keys":"prefix:stack:.:x"}`, 400, "count"},
		{"PUT", "/flow/f/json", `not json`, 400, "flow definition"},
		{"PUT", "/threshold/t/json", `{"value":1}`, 400, `\"metric\": required`},
		{"PUT", "/threshold/t/json", `{"metric":"f","value":1,"filter":{"colour":["red"]}}`, 400, "colour"},
		{"GET", "/flow/nope/json", "", 404, "not found"},
		{"DELETE", "/threshold/nope/json", "", 404, "not found"},
		{"GET", "/activeflows/ALL/nope/json", "", 404, "not found"},
		{"GET", "/activeflows/banana/nope/json", "", 400, "agent"},
		{"GET", "/events/json?timeout=soon", "", 400, "timeout"},
		{"PUT", "/topology/json", `{"nodes":{"a":{"agent":"x"}}}`, 400, "agent"},
		{"GET", "/nothing/here", "", 404, "no such endpoint"},
		{"GET", "/paths/json?src=x&dst=10.0.0.1", "", 400, "or the name of a node the collector knows"},
		{"GET", "/paths/json?src=10.0.0.2&dst=10.0.0.1&proto=sctp", "", 400, "proto"},
		{"GET", "/paths/json?src=10.0.0.2&dst=10.0.0.1&dport=0", "", 400, "dport"},
		{"GET", "/path/json?flowKey=10.0.0.2,10.0.0.1,6", "", 400, "SRC,DST,PROTO,SPORT,DPORT"},
		{"GET", "/path/json?flowKey=10.0.0.2,10.0.0.1,6,1000,443", "", 200, `"paths":[]`},
	} {
		code, out := r.do(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("%s %s %s: %d %s; want %d saying %s", c.method, c.path, c.body, code, out, c.code, c.says)
		}
	}
	r.must("PUT", "/flow/f/json", `{"keys":["ipsource","ipdestination"],"n":50,"t":0.01}`, 204)
	if d := r.must("GET", "/flow/f/json", "", 200); !strings.Contains(d, `"n":20`) || !strings.Contains(d, `"t":0.2`) {
		t.Errorf("n and t not clamped to 20 and 0.2: %s", d)
	}
	r.must("DELETE", "/flow/f/json", "", 204)
	r.must("GET", "/flow/f/json", "", 404)
	// ipfixCollectors is taken, kept, and said not to be exported; dropped
	// is kept (the flow counts discarded-packet events).
	r.must("PUT", "/flow/ipfix/json", `{"keys":"ipsource","ipfixCollectors":["10.0.0.9"]}`, 204)
	if d := r.must("GET", "/flow/ipfix/json", "", 200); !strings.Contains(d, `"ipfixCollectors":["10.0.0.9"]`) ||
		!strings.Contains(d, `"ipfixExported":false`) {
		t.Errorf("GET of a flow with ipfixCollectors: %s", d)
	}
	r.must("PUT", "/flow/d/json", `{"keys":"reason","dropped":true}`, 204)
	if d := r.must("GET", "/flow/d/json", "", 200); !strings.Contains(d, `"dropped":true`) {
		t.Errorf("GET of a dropped flow: %s", d)
	}
	// Groups: GET and DELETE by name, as sFlow-RT has them.
	r.must("PUT", "/group/zones/json", `{"inside":["10.0.0.0/8"]}`, 204)
	if g := r.must("GET", "/group/zones/json", "", 200); !strings.Contains(g, `"inside":["10.0.0.0/8"]`) {
		t.Errorf("GET /group/zones/json: %s", g)
	}
	r.must("DELETE", "/group/zones/json", "", 204)
	r.must("GET", "/group/zones/json", "", 404)
	r.must("DELETE", "/group/zones/json", "", 404)
	r.must("PUT", "/topology/json", `{"links":{"l1":{"node1":"leaf01","port1":"swp51","node2":"spine01","port2":"swp1"}}}`, 204)
	if tp := r.must("GET", "/topology/json", "", 200); !strings.Contains(tp, `"version":1`) {
		t.Errorf("topology %s lacks version 1", tp)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1}, true)
	r.must("PUT", "/flow/f/json", `{"keys":"ipsource"}`, 403)
	r.must("DELETE", "/flow/f/json", "", 403)
	r.must("GET", "/flow/json", "", 200)
}

// A long poll with nothing to say returns [] at its timeout, and a client
// that hangs up frees its waiter at once.
func TestLongPollTimesOutAndHangsUp(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1}, false)
	start := time.Now()
	if out := r.must("GET", "/events/json?timeout=0.3", "", 200); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty long poll returned %s", out)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("0.3 s long poll took %v", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/events/json?timeout=60", nil)
	done := make(chan struct{})
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	time.Sleep(50 * time.Millisecond) // let it block; the hang-up is what is measured
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("client hang-up did not end the long poll")
	}
}

// python finds python3 for the sFlow-RT client script tests, or skips.
func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 not installed; the sFlow-RT client script test needs it")
	}
	return py
}

// runPython runs a client script against the collector at url.
func runPython(t *testing.T, py, script, url string) []byte {
	t.Helper()
	out, err := exec.Command(py, "-c", script, url).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return out
}

// sFlow-RT's tail_log.py loop, stdlib Python: eventID -1, newest first,
// reversed for printing.
func TestPythonTailLogClient(t *testing.T) {
	py := python(t)
	r := newRig(t, sim.Config{Seed: 5, Mice: -1, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.21"), Dst: mustAddr("172.16.1.43"), Rate: 400e6, Start: time.Second, Duration: time.Minute}}}, false)
	r.must("PUT", "/flow/pair/json", `{"keys":"ipsource,ipdestination","value":"bytes"}`, 204)
	r.must("PUT", "/threshold/pair/json", `{"metric":"pair","value":12500000,"byFlow":true}`, 204)
	for r.sim.Now() < 8*time.Second {
		r.step()
	}
	script := `
import json, sys, urllib.request
url = sys.argv[1] + '/events/json?maxEvents=10&timeout=1'
eventID = -1
for _ in range(2):
    events = json.load(urllib.request.urlopen(url + '&eventID=' + str(eventID)))
    if len(events) == 0:
        continue
    eventID = events[0]['eventID']
    events.reverse()
    for e in events:
        print(e['eventID'], e['thresholdID'], e['agent'], e['dataSource'], e['flowKey'], round(e['value']))
`
	out := runPython(t, py, script, r.srv.URL)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 { // leaf02, a spine, leaf04
		t.Fatalf("tail_log printed %d lines, want 3:\n%s", len(lines), out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if f[0] != fmt.Sprint(i+1) || f[1] != "pair" || f[4] != "172.16.1.21,172.16.1.43" {
			t.Errorf("line %q", l)
		}
	}
}

// sFlow-RT's tail_flows loop: a flow defined with log:true shows its flows
// in /flows/json, every activeTimeout while they run and once more when
// they end, newest first, by flowID.
func TestFlowLogTailsAsSFlowRTsScript(t *testing.T) {
	py := python(t)
	r := newRig(t, sim.Config{Seed: 5, Mice: -1, Elephants: []sim.Elephant{{
		Src: mustAddr("172.16.1.21"), Dst: mustAddr("172.16.1.43"), Rate: 400e6, Start: time.Second, Duration: 3 * time.Second}}}, false)
	r.must("PUT", "/flow/pair/json", `{"keys":"ipsource,ipdestination","value":"bytes","log":true,"activeTimeout":2,"t":0.5}`, 204)
	for r.sim.Now() < 20*time.Second {
		r.step()
	}
	script := `
import json, sys, urllib.request
url = sys.argv[1] + '/flows/json?maxFlows=100&timeout=1'
flowID = -1
for _ in range(2):
    flows = json.load(urllib.request.urlopen(url + '&flowID=' + str(flowID)))
    if len(flows) == 0:
        continue
    flowID = flows[0]['flowID']
    flows.reverse()
    for f in flows:
        print(f['flowID'], f['name'], f['flowKeys'], f['agent'], f['dataSource'], round(f['value']), f['end'] - f['start'])
`
	out := runPython(t, py, script, r.srv.URL)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// At each of 3 switches (and its reverse ACK flow elsewhere): a record
	// at 2 s and the rest at its end.
	byAgent := map[string]float64{}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 7 || f[0] != fmt.Sprint(i+1) || f[1] != "pair" {
			t.Fatalf("line %q of\n%s", l, out)
		}
		if f[2] == "172.16.1.21,172.16.1.43" {
			v, _ := strconv.ParseFloat(f[5], 64)
			byAgent[f[3]] += v
		}
	}
	// 400 Mbit/s for 3 s: 150 MB, within sampling error, at every hop.
	if len(byAgent) != 3 {
		t.Fatalf("the elephant logged at %d switches, want 3:\n%s", len(byAgent), out)
	}
	for agent, v := range byAgent {
		if v < 120e6 || v > 180e6 {
			t.Errorf("%s logged %.0f bytes in all, want about 150e6", agent, v)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestTokenGuardsWrites(t *testing.T) {
	eng := flows.New(flows.Config{})
	srv := httptest.NewServer(web.New(web.Config{Engine: eng, Token: "s3cret"}))
	defer srv.Close()
	put := func(auth string) int {
		req, _ := http.NewRequest("PUT", srv.URL+"/flow/f/json", strings.NewReader(`{"keys":"ipsource"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := put(""); c != 401 {
		t.Errorf("no token: %d, want 401", c)
	}
	if c := put("Bearer wrong"); c != 401 {
		t.Errorf("wrong token: %d, want 401", c)
	}
	if c := put("Bearer s3cret"); c != 204 {
		t.Errorf("right token: %d, want 204", c)
	}
	resp, _ := http.Get(srv.URL + "/flow/f/json")
	if resp.StatusCode != 200 {
		t.Errorf("reads need no token: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// A scrape config written for sFlow-RT's prometheus app works unchanged.
func TestPrometheusAppFlowExport(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 3, Mice: -1, Elephants: []sim.Elephant{{Src: mustAddr("172.16.1.12"),
		Dst: mustAddr("172.16.1.33"), Rate: 400e6, Duration: time.Hour}}}, false)
	url := "/app/prometheus/scripts/export.js/flows/ALL/txt?metric=ip-flow.bps&key=ipsource&label=src&key=ipdestination&label=dst&value=bps&scale=1&maxFlows=5&minValue=1e7"
	r.must("GET", url, "", 200) // the first scrape defines the backing flow
	for r.sim.Now() < 5*time.Second {
		r.step()
	}
	out := r.must("GET", url, "", 200)
	if !strings.HasPrefix(out, `ip_flow_bps{src="172.16.1.12",dst="172.16.1.33"} `) || strings.Count(out, "\n") != 1 {
		t.Errorf("export:\n%s", out)
	}
	// The blog's URL: comma lists for key and label, the same as repeated
	// parameters.
	lists := "/app/prometheus/scripts/export.js/flows/ALL/txt?metric=sflow_flows_bps&key=ipsource,ipdestination,tcpdestinationport&label=src,dst,dport&value=bytes&scale=8&maxFlows=100"
	r.must("GET", lists, "", 200)
	for end := r.sim.Now() + 5*time.Second; r.sim.Now() < end; {
		r.step()
	}
	out = r.must("GET", lists, "", 200)
	if !strings.Contains(out, `sflow_flows_bps{src="172.16.1.12",dst="172.16.1.33",dport="`) {
		t.Errorf("export with comma lists:\n%s", out)
	}
	r.must("GET", "/app/prometheus/scripts/export.js/flows/ALL/txt?metric=x", "", 400)

	// dropped=true: discarded-packet events, by reason, summed over where
	// they were dropped.
	drops := "/app/prometheus/scripts/export.js/flows/ALL/txt?metric=sflow_drops&key=reason&label=reason&value=frames&dropped=true&minValue=0"
	r.must("GET", drops, "", 200)
	for seq := uint32(1); seq <= 10; seq++ {
		for _, agent := range []string{"10.255.1.1", "10.255.1.2"} {
			d := sflowtest.Datagram{Agent: mustAddr(agent), Sequence: seq, Samples: []sflowtest.Sample{
				&sflowtest.DiscardSample{Sequence: seq, Source: decode.DataSource{Index: 3}, Input: 3, Reason: 269}}}
			if _, err := r.dec.Decode(d.Bytes(), r.eng); err != nil {
				t.Fatal(err)
			}
		}
	}
	out = r.must("GET", drops, "", 200)
	if !strings.HasPrefix(out, `sflow_drops{reason="blackhole_route"} `) || strings.Count(out, "\n") != 1 {
		t.Errorf("dropped export:\n%s", out)
	}
}

func TestSplitLists(t *testing.T) {
	got := web.SplitLists([]string{"ipsource,[or:tcpsourceport,udpsourceport]", "agent"})
	if want := []string{"ipsource", "[or:tcpsourceport,udpsourceport]", "agent"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("split %q, want %q", got, want)
	}
}

// A long poll whose timeout is huge or infinite waits, capped, rather than
// overflowing into a negative wait that returns at once; HEAD works where
// GET does; the dashboard forbids what it does not load from the collector.
func TestTimeoutsHeadAndUIHeaders(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1, Mice: -1}, false)
	for _, timeout := range []string{"1e10", "Inf", "1e300", "600"} {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/events/json?eventID=0&timeout="+timeout, nil)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Errorf("timeout=%s: answered %s after %v, want a wait (capped at 600 s)", timeout, resp.Status, time.Since(start))
		}
	}
	for _, path := range []string{"/version", "/events/json", "/flow/json", "/ui/"} {
		resp, err := http.Head(r.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %s", path, resp.Status)
		}
	}
	resp, err := http.Get(r.srv.URL + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/ui/ headers: CSP %q, X-Content-Type-Options %q", csp, resp.Header.Get("X-Content-Type-Options"))
	}
}

// Every distinct key or filter in the Prometheus app's URL defines a flow
// on GET, readonly or not: 300 distinct ones hold at most 16, the least
// recently scraped replaced, and the counts say so.
func TestExportFlowsAreBounded(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 3, Mice: -1}, true)
	for i := range 300 {
		r.must("GET", fmt.Sprintf("/app/prometheus/scripts/export.js/flows/ALL/txt?metric=m&key=ipsource&filter=ipttl%%3D%d", i%250), "", 200)
	}
	n := 0
	for name := range r.eng.FlowDefinitions() {
		if strings.HasPrefix(name, "prometheus_") {
			n++
		}
	}
	var an struct{ ExportFlows, ExportFlowsCreated, ExportFlowsReplaced float64 }
	if err := json.Unmarshal([]byte(r.must("GET", "/analyzer/json", "", 200)), &an); err != nil {
		t.Fatal(err)
	}
	if n != 16 || an.ExportFlows != 16 || an.ExportFlowsCreated != 300 || an.ExportFlowsReplaced != 284 {
		t.Errorf("%d export flows defined; analyzer says %v held, %v created, %v replaced: want 16, 300, 284",
			n, an.ExportFlows, an.ExportFlowsCreated, an.ExportFlowsReplaced)
	}
}

// /version answers in sFlow-RT's shape (N.N-N), which scripts parse;
// fabrictrace's own version is on /analyzer/json.
func TestVersionShapes(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1, Mice: -1}, false)
	if v := r.must("GET", "/version", "", 200); !regexp.MustCompile(`^\d+\.\d+-\d+$`).MatchString(v) {
		t.Errorf("/version %q, want N.N-N", v)
	}
	if a := r.must("GET", "/analyzer/json", "", 200); !strings.Contains(a, `"version":"fabrictrace-`) {
		t.Errorf("/analyzer/json has no fabrictrace version: %.200s", a)
	}
}
