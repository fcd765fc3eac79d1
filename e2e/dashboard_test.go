//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// cdp is a minimal Chrome DevTools Protocol client: enough to evaluate
// JavaScript in a page, take screenshots and collect console errors.
type cdp struct {
	t      *testing.T
	ws     *websocket.Conn
	id     int
	errors []string
}

func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.id++
	if err := websocket.JSON.Send(c.ws, map[string]any{"id": c.id, "method": method, "params": params}); err != nil {
		c.t.Fatal(err)
	}
	for {
		var msg struct {
			ID     int
			Method string
			Params json.RawMessage
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := websocket.JSON.Receive(c.ws, &msg); err != nil {
			c.t.Fatalf("%s: %v", method, err)
		}
		switch {
		case msg.Method == "Runtime.exceptionThrown":
			c.errors = append(c.errors, string(msg.Params))
		case msg.Method == "Runtime.consoleAPICalled" && strings.Contains(string(msg.Params), `"type":"error"`):
			c.errors = append(c.errors, string(msg.Params))
		case msg.ID == c.id:
			if msg.Error != nil {
				c.t.Fatalf("%s: %s", method, msg.Error.Message)
			}
			return msg.Result
		}
	}
}

// eval runs an expression in the page and returns its value as JSON.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	var r struct {
		Result struct{ Value any }
	}
	json.Unmarshal(c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &r)
	b, _ := json.Marshal(r.Result.Value)
	return string(b)
}

func (c *cdp) waitFor(what, expr string, timeout time.Duration) string {
	c.t.Helper()
	var v string
	waitFor(c.t, what, timeout, func() (bool, string) {
		v = c.eval(expr)
		return v == "true", v
	})
	return v
}

func (c *cdp) screenshot(path string) {
	var r struct{ Data string }
	json.Unmarshal(c.call("Page.captureScreenshot", map[string]any{"format": "png"}), &r)
	b, _ := base64.StdEncoding.DecodeString(r.Data)
	os.WriteFile(path, b, 0o644)
}

// demoFabric runs the collector with the demo's definitions and the
// simulator against it, with a long elephant from 172.16.1.11 to
// 172.16.1.42, and returns the REST address and the simulator.
func demoFabric(t *testing.T, dir string, simArgs ...string) (string, *exec.Cmd) {
	bin := filepath.Dir(collectorBin)
	if out, err := exec.Command("go", "build", "-o", bin+"/", "../cmd/fabricsim").CombinedOutput(); err != nil {
		t.Fatalf("build fabricsim: %v\n%s", err, out)
	}
	sflow, httpAddr, bgp := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)),
		fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	define, _ := filepath.Abs("../scripts/demo.json")
	run(t, dir, "collector", nil, collectorBin, "-sflow", sflow, "-http", httpAddr, "-bgp", bgp,
		"-bgp-accept", "127.0.1.0/24", "-define", define, "-db", "", "-stats-interval", "0")
	waitFor(t, "collector REST", 10*time.Second, func() (bool, string) {
		resp, err := http.Get("http://" + httpAddr + "/version")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil, fmt.Sprint(err)
	})
	sim := run(t, dir, "fabricsim", nil, append([]string{filepath.Join(bin, "fabricsim"), "-sflow", sflow, "-bgp", bgp,
		"-elephant", "172.16.1.11,172.16.1.42,300,0s,1h", "-progress", "0"}, simArgs...)...)
	return httpAddr, sim
}

// TestDashboard opens the collector's dashboard in headless Debian Chromium
// against the simulated fabric: the map shows the fabric's nodes, an
// elephant's path appears with its hops, the path search shows the true path
// of a pair, the event feed shows the collision the simulator forces, and
// the page logs no error. Screenshots go to e2e/test-output/.
// waitForOwner waits until the collector's RIB attributes addr to the node
// that announced it.
func waitForOwner(t *testing.T, httpAddr, addr, node string) {
	t.Helper()
	waitFor(t, node+"'s route to "+addr, 30*time.Second, func() (bool, string) {
		var look struct {
			Owner *struct {
				AnnouncedBy string `json:"announcedBy"`
			} `json:"owner"`
		}
		if err := getJSON("http://"+httpAddr+"/rib/lookup/json?address="+addr, &look); err != nil {
			return false, err.Error()
		}
		if look.Owner == nil {
			return false, "no owner"
		}
		return look.Owner.AnnouncedBy == node, "announced by " + look.Owner.AnnouncedBy
	})
}

func TestDashboard(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (e2e/setup.sh installs it)")
	}
	dir := t.TempDir()
	simControl := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)) // fabricsim's hand on its links
	httpAddr, sim := demoFabric(t, dir, "-collision", "-truth-listen", simControl)

	port := freeTCPPort(t)
	run(t, dir, "chromium", nil, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+dir+"/profile", "--window-size=1280,900", fmt.Sprintf("--remote-debugging-port=%d", port),
		"--remote-allow-origins=http://127.0.0.1",
		"about:blank")
	var pages []struct{ Type, WebSocketDebuggerURL string }
	waitFor(t, "chromium's DevTools", 30*time.Second, func() (bool, string) {
		pages = nil
		err := getJSON(fmt.Sprintf("http://127.0.0.1:%d/json/list", port), &pages)
		return err == nil && len(pages) > 0 && pages[0].WebSocketDebuggerURL != "", fmt.Sprint(err)
	})
	ws, err := websocket.Dial(pages[0].WebSocketDebuggerURL, "", "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := &cdp{t: t, ws: ws}
	c.call("Runtime.enable", nil)
	c.call("Page.enable", nil)
	c.call("Page.navigate", map[string]any{"url": "http://" + httpAddr + "/"})
	out := "test-output"
	os.MkdirAll(out, 0o755)

	c.waitFor("the fabric's nodes on the map", `["spine01","spine02","leaf01","leaf04","server01","server04"].every(n => document.querySelector('[data-node="'+n+'"]'))`, 30*time.Second)
	c.waitFor("the elephant's path drawn", `!!document.querySelector('polyline.elephant[data-flow="172.16.1.11,172.16.1.42"]')`, 30*time.Second)
	c.screenshot(filepath.Join(out, "fabric.png"))

	// Select the elephant: its details list its hops in TTL order.
	c.eval(`document.querySelector('polyline.elephant[data-flow="172.16.1.11,172.16.1.42"]').dispatchEvent(new MouseEvent('click'))`)
	detail := c.eval(`document.getElementById('detail').textContent`)
	for _, want := range []string{"ttl 64  leaf01", "ttl 62  leaf04", "server04"} {
		if !strings.Contains(detail, want) {
			t.Errorf("elephant detail lacks %q: %s", want, detail)
		}
	}
	c.screenshot(filepath.Join(out, "elephant.png"))

	// The path search shows what pathtrace would, ends attributed: first
	// the destination's leaf must have announced it (its session may come
	// up after the elephant is drawn).
	waitForOwner(t, httpAddr, "172.16.1.42", "leaf04")
	c.eval(`document.getElementById('src').value='172.16.1.11'; document.getElementById('dst').value='172.16.1.42';
		document.getElementById('search').requestSubmit()`)
	c.waitFor("the path search answer", `document.getElementById('trace').textContent.includes('path 1 of')`, 10*time.Second)
	trace := c.eval(`document.getElementById('trace').textContent`)
	for _, want := range []string{"64  leaf01  swp1", "62  leaf04", "announced by leaf04"} {
		if !strings.Contains(trace, want) {
			t.Errorf("path search lacks %q: %s", want, trace)
		}
	}
	c.screenshot(filepath.Join(out, "path-search.png"))

	c.waitFor("a collision in the event feed", `document.getElementById('events').textContent.includes('ECMP collision')`, 30*time.Second)
	c.waitFor("link utilisation from counters", `[...document.querySelectorAll('line.link title')].some(t => t.textContent.includes('% busy'))`, 30*time.Second)
	c.waitFor("top flows listed", `document.querySelectorAll('#topflows tbody tr').length > 0`, 30*time.Second)
	c.waitFor("agent health with kernel drops", `document.getElementById('agent-count').textContent.includes('10 reporting · kernel drops')`, 30*time.Second)

	// Rehash every leaf until a flow moves: the feed shows the path change.
	// A change is declared once the old hop has been silent a second, so
	// rehash again only every 3 s.
	var rehashed time.Time
	waitFor(t, "a path change in the event feed", 60*time.Second, func() (bool, string) {
		if c.eval(`document.getElementById('events').textContent.includes('path change')`) == "true" {
			return true, ""
		}
		if time.Since(rehashed) > 3*time.Second {
			sim.Process.Signal(syscall.SIGUSR2)
			rehashed = time.Now()
		}
		return false, c.eval(`document.getElementById('events').textContent.slice(0, 300)`)
	})
	c.screenshot(filepath.Join(out, "events.png"))

	// A link failure under the collision: the elephants on it move, the
	// collision there ends, and the map shows red only where a collision is
	// live now, and the elephant on its new path.
	var live []struct{ FlowKey string }
	waitFor(t, "a live collision", 30*time.Second, func() (bool, string) {
		getJSON("http://"+httpAddr+"/collisions/json", &live)
		return len(live) > 0, fmt.Sprint(live)
	})
	failed := live[0].FlowKey // leafNN-spineNN
	leaf, spine, _ := strings.Cut(failed, "-")
	resp, err := http.Post("http://"+simControl+"/link?leaf="+leaf+"&spine="+spine+"&up=false", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("failing link %s: %v %v", failed, err, resp)
	}
	resp.Body.Close()
	c.waitFor("the collision on "+failed+" ended in the feed", `document.getElementById('events').textContent.includes('ECMP collision on `+failed+` ended')`, 30*time.Second)
	c.waitFor("no red on "+failed, `!document.querySelector('line.collision[data-link="`+failed+`"]')`, 10*time.Second)
	c.waitFor("the elephants drawn off "+failed, `state.elephants.every(e => !(e.path||[]).some((h, i, p) => i > 0 && [p[i-1].node, h.node].join("-") === "`+failed+`"))`, 30*time.Second)
	getJSON("http://"+httpAddr+"/collisions/json", &live)
	var names []string
	for _, c := range live {
		names = append(names, c.FlowKey)
	}
	drawn := c.eval(`[...document.querySelectorAll('line.collision')].map(l => l.dataset.link).sort().join(",")`)
	sort.Strings(names)
	if want := strconv.Quote(strings.Join(names, ",")); drawn != want {
		t.Errorf("collisions drawn %s, live %s", drawn, want)
	}
	c.screenshot(filepath.Join(out, "link-failure.png"))
	c.eval("0") // drain events that came with the last answers
	if len(c.errors) > 0 {
		t.Errorf("console errors: %v", c.errors)
	}
}

// bidi is a minimal WebDriver BiDi client, for Firefox.
type bidi struct {
	t      *testing.T
	ws     *websocket.Conn
	id     int
	ctx    string
	errors []string
}

func (b *bidi) call(method string, params any) json.RawMessage {
	b.t.Helper()
	b.id++
	if err := websocket.JSON.Send(b.ws, map[string]any{"id": b.id, "method": method, "params": params}); err != nil {
		b.t.Fatal(err)
	}
	for {
		var msg struct {
			ID      int
			Type    string
			Method  string
			Params  json.RawMessage
			Result  json.RawMessage
			Error   string
			Message string
		}
		b.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := websocket.JSON.Receive(b.ws, &msg); err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		switch {
		case msg.Method == "log.entryAdded" && strings.Contains(string(msg.Params), `"level":"error"`):
			b.errors = append(b.errors, string(msg.Params))
		case msg.ID == b.id:
			if msg.Type == "error" {
				b.t.Fatalf("%s: %s: %s", method, msg.Error, msg.Message)
			}
			return msg.Result
		}
	}
}

func (b *bidi) eval(expr string) string {
	b.t.Helper()
	var r struct {
		Result struct{ Value any }
	}
	json.Unmarshal(b.call("script.evaluate", map[string]any{"expression": expr, "target": map[string]any{"context": b.ctx},
		"awaitPromise": false}), &r)
	v, _ := json.Marshal(r.Result.Value)
	return string(v)
}

// TestDashboardInFirefox checks that the dashboard works in Firefox too:
// the map, an elephant's path and the path search, with no console error.
func TestDashboardInFirefox(t *testing.T) {
	firefox, err := exec.LookPath("firefox-esr")
	if err != nil {
		t.Fatal("firefox-esr is not installed (e2e/setup.sh installs it)")
	}
	dir := t.TempDir()
	httpAddr, _ := demoFabric(t, dir)
	port := freeTCPPort(t)
	os.MkdirAll(dir+"/profile", 0o755)
	run(t, dir, "firefox", []string{"HOME=" + dir}, firefox, "--headless", "--remote-debugging-port", fmt.Sprint(port),
		"--remote-allow-origins", "http://127.0.0.1",
		"--profile", dir+"/profile", "about:blank")
	var ws *websocket.Conn
	waitFor(t, "Firefox's WebDriver BiDi", 30*time.Second, func() (bool, string) {
		ws, err = websocket.Dial(fmt.Sprintf("ws://127.0.0.1:%d/session", port), "", "http://127.0.0.1")
		return err == nil, fmt.Sprint(err)
	})
	defer ws.Close()
	b := &bidi{t: t, ws: ws}
	b.call("session.new", map[string]any{"capabilities": map[string]any{}})
	b.call("session.subscribe", map[string]any{"events": []string{"log.entryAdded"}})
	var tree struct{ Contexts []struct{ Context string } }
	json.Unmarshal(b.call("browsingContext.getTree", map[string]any{}), &tree)
	b.ctx = tree.Contexts[0].Context
	b.call("browsingContext.navigate", map[string]any{"context": b.ctx, "url": "http://" + httpAddr + "/", "wait": "complete"})
	waitFor(t, "the map and the elephant in Firefox", 40*time.Second, func() (bool, string) {
		v := b.eval(`!!document.querySelector('[data-node="spine01"]') && !!document.querySelector('polyline.elephant[data-flow="172.16.1.11,172.16.1.42"]')`)
		return v == "true", v
	})
	b.eval(`document.getElementById('src').value='172.16.1.11'; document.getElementById('dst').value='172.16.1.42';
		document.getElementById('search').requestSubmit()`)
	waitFor(t, "the path search in Firefox", 10*time.Second, func() (bool, string) {
		v := b.eval(`document.getElementById('trace').textContent`)
		return strings.Contains(v, "62  leaf04"), v
	})
	if len(b.errors) > 0 {
		t.Errorf("console errors in Firefox: %v", b.errors)
	}
}
