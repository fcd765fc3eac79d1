package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// The attacks of the hardening issue, replayed against the collector as a
// process: each gets a clear 4xx, a NOTIFICATION or a bounded refusal; the
// process lives; and its RSS stays within 100 MiB of its idle value.
func TestAttacksAreRefusedAndBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and attacks the collector")
	}
	dir := t.TempDir()
	bin, addr := buildCollector(t, dir)
	sflowAddr, bgpAddr := freeUDP(t), freeTCP(t)
	cmd := exec.Command(bin, "-sflow", sflowAddr, "-http", addr, "-bgp", bgpAddr, "-bgp-accept", "127.0.0.0/8",
		"-db", filepath.Join(dir, "ft.db"), "-stats-interval", "0", "-http-max-conns", "300", "-max-agents", "1000")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "serving REST API") {
	}
	go io.Copy(io.Discard, stderr)
	base := "http://" + addr
	client := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alive := func(after string) {
		t.Helper()
		if code, _ := do("GET", "/version", ""); code != 200 {
			t.Fatalf("after %s: /version %d", after, code)
		}
	}
	idle := rssOf(t, cmd.Process.Pid)

	// BGP: a message of unknown type before OPEN (osrg/gobgp#3325).
	conn, err := net.DialTimeout("tcp", bgpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytesOf(0xff, 16), 0, 22, 99, 1, 2, 3)
	conn.Write(msg)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if typ, code := readNotification(conn); typ != 3 || code != 1 {
		t.Errorf("BGP type 99: got message type %d code %d, want a NOTIFICATION of a header error", typ, code)
	}
	conn.Close()
	alive("a BGP message of type 99")

	// A filter nested 4,194,240 deep, under the body cap.
	deep := `{"keys":"ipsource","filter":"` + strings.Repeat("(", 4_194_240) + `ipsource=1"}`
	if code, body := do("PUT", "/flow/x/json", deep); code != 400 || !strings.Contains(body, "deep") && !strings.Contains(body, "longer") {
		t.Errorf("deep filter: %d %.200s", code, body)
	}
	// Keys nested 16k deep.
	keys := strings.Repeat("null:[", 16_000) + "ipsource" + strings.Repeat(":x]", 16_000)
	if code, body := do("PUT", "/flow/y/json", `{"keys":"`+keys+`"}`); code != 400 {
		t.Errorf("deep keys: %d %.200s", code, body)
	}
	alive("deep filters and keys")

	// 300 GETs of the Prometheus app's export, each a new filter: at most
	// -max-export-flows (16) flows exist, the rest replaced and counted.
	for i := range 300 {
		q := url.Values{"metric": {"attack"}, "key": {"ipsource"}, "label": {"src"}, "value": {"bytes"}, "filter": {fmt.Sprintf("ipsource=10.0.%d.%d", i/256, i%256)}}
		if code, body := do("GET", "/app/prometheus/scripts/export.js/flows/ALL/txt?"+q.Encode(), ""); code != 200 {
			t.Fatalf("export GET %d: %d %.200s", i, code, body)
		}
	}
	var an map[string]any
	_, body := do("GET", "/analyzer/json", "")
	json.Unmarshal([]byte(body), &an)
	if n, _ := an["exportFlows"].(float64); n > 16 {
		t.Errorf("%v export flows held after 300 distinct GETs, want at most 16", n)
	}

	// A spoofed-agent flood: 20,000 agents, one datagram each, on a
	// -max-agents of 1000.
	udp, err := net.Dial("udp", sflowAddr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		d := sflowtest.Datagram{Agent: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), Sequence: 1,
			Samples: []sflowtest.Sample{&sflowtest.CounterSample{Sequence: 1, Source: decode.DataSource{Index: 1}}}}
		udp.Write(d.Bytes())
	}
	udp.Close()
	alive("a spoofed-agent flood")

	// Connections: 600 that never send a byte, against -http-max-conns
	// 300. Past the cap each is refused at once (503), counted.
	var held []net.Conn
	refused := 0
	for range 600 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held[300:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.Contains(line, "503") {
			refused++
		}
	}
	if refused < 290 {
		t.Errorf("%d of 300 connections past the cap were refused with 503", refused)
	}
	after := rssOf(t, cmd.Process.Pid)
	for _, c := range held {
		c.Close()
	}
	alive("600 idle connections")
	if grew := after - idle; grew > 100<<20 {
		t.Errorf("RSS grew %d MiB over its idle %d MiB", grew>>20, idle>>20)
	}
	// What was refused is counted.
	_, body = do("GET", "/analyzer/json", "")
	json.Unmarshal([]byte(body), &an)
	for _, k := range []string{"sFlowAgentsEvicted", "exportFlowsReplaced", "httpConnectionsRefused",
		"httpConnectionsTotal", "heapUsed", "heapMax"} {
		if n, _ := an[k].(float64); n == 0 {
			t.Errorf("/analyzer/json %s: %v", k, an[k])
		}
	}
	// sFlow-RT's load figures are fractions of all CPUs (TestLoadGaugeFigures
	// checks their values).
	for _, k := range []string{"cpuLoadProcess", "cpuLoadSystem"} {
		if n, ok := an[k].(float64); !ok || n < 0 || n > 1 {
			t.Errorf("/analyzer/json %s: %v, want a fraction", k, an[k])
		}
	}
	t.Logf("RSS idle %d MiB, after the attacks %d MiB; %d connections refused", idle>>20, after>>20, refused)
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// readNotification reads BGP messages until a NOTIFICATION, and returns
// its type (3) and error code; 0, 0 if the connection ends first.
func readNotification(c net.Conn) (typ, code byte) {
	hdr := make([]byte, 19)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return 0, 0
		}
		body := make([]byte, int(binary.BigEndian.Uint16(hdr[16:]))-19)
		if _, err := io.ReadFull(c, body); err != nil {
			return 0, 0
		}
		if hdr[18] == 3 && len(body) > 0 {
			return 3, body[0]
		}
	}
}

func rssOf(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func freeTCP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
