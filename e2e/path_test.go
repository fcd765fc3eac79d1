//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// leaf2BGP starts FRR's bgpd on leaf2, announcing the container /32s behind
// it to the collector with h2 as next hop; it returns bgpd's directory, for
// vtysh.
func leaf2BGP(t *testing.T, f *fabric) string {
	t.Helper()
	frr := f.file("frr")
	os.MkdirAll(frr, 0o755)
	conf := fmt.Sprintf(`hostname leaf2
log file %[1]s/bgpd.log
route-map TO-HOST permit 10
 set ip next-hop 10.2.2.2
exit
router bgp 65102
 bgp router-id 10.255.0.13
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.255.0.1 remote-as 65000
 neighbor 10.255.0.1 update-source 10.255.0.13
 neighbor 10.255.0.1 timers connect 1
 address-family ipv4 unicast
  network 172.16.1.20/32
  network 172.16.1.21/32
  neighbor 10.255.0.1 route-map TO-HOST out
 exit-address-family
exit
`, frr)
	if err := os.WriteFile(frr+"/bgpd.conf", []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.start("bgpd", "l2", "/usr/lib/frr/bgpd", "-f", frr+"/bgpd.conf", "-i", frr+"/bgpd.pid",
		"--vty_socket", frr, "-Z", "-p", "0", "-S")
	return frr
}

// pathAnswer is what pathtrace -json says, as far as these tests read it.
type pathAnswer struct {
	Paths []struct {
		Complete bool
		Hops     []struct {
			TTL     int
			Agent   string
			Kind    string
			Samples int
		}
	}
	DstOwner *struct {
		Peer, Nexthop, Prefix string
		Gone                  int64
	}
}

func (a pathAnswer) hops(i int) string {
	var hops []string
	for _, h := range a.Paths[i].Hops {
		hops = append(hops, fmt.Sprintf("%s@%d/%s", h.Agent, h.TTL, h.Kind))
	}
	return strings.Join(hops, " ")
}

// TestPathChangeOverRealRouting: two spines with kernel ECMP at both
// leaves, Open vSwitch sampling every router (it holds half-full datagrams
// about a second), FRR on leaf2. A UDP flow crosses one spine; leaf1's link
// to that spine goes down, and the kernel moves the flow to the other: a
// pathchange within 5 s, and pathtrace shows only the live spine,
// complete. The link comes back and the flow with it: another pathchange
// within 5 s. Then leaf2 withdraws the destination's /32: the elephant is
// gone; announced again, it is not.
func TestPathChangeOverRealRouting(t *testing.T) {
	f := newFabricWith(t, "c", "up2")
	defs := f.file("defs.json")
	os.WriteFile(defs, []byte(`{"flows":{"pair":{"keys":"ipsource,ipdestination","value":"bytes"}},
		"thresholds":{"big":{"metric":"pair","value":5000,"byFlow":true,"timeout":5}}}`), 0o644)
	f.start("collector", "mg", collectorBin, "-sflow", "10.255.0.1:6343", "-http", "10.255.0.1:8008",
		"-bgp", "10.255.0.1:179", "-bgp-accept", "10.255.0.0/24", "-stats-interval", "0", "-db", "", "-define", defs)
	waitFor(t, "collector serving", 10*time.Second, fileContains(f.file("collector.err"), "serving REST API"))
	frr := leaf2BGP(t, f)
	f.script("agents", "ovs", "10")
	waitFor(t, "leaf2's BGP session", 30*time.Second, fileContains(f.file("collector.err"), "state=established"))
	// One UDP flow, 500 packets/s, for at most 80 s.
	f.start("hping3", "h1", "hping3", "-2", "-s", "40000", "-k", "-p", "9999", "-c", "40000", "-i", "u2000", "--ttl", "64", "172.16.1.20")

	const flowKey = "10.1.1.2,172.16.1.20,17,40000,9999"
	trace := func() (pathAnswer, string) {
		out, err := exec.Command("ip", "netns", "exec", f.prefix+"mg", pathtraceBin, "-collector", "http://10.255.0.1:8008",
			"-json", "-proto", "udp", "-sport", "40000", "-dport", "9999", "10.1.1.2", "172.16.1.20").Output()
		var a pathAnswer
		if err == nil {
			json.Unmarshal(out, &a)
		}
		return a, string(out)
	}
	spines := map[string]string{"10.255.0.12": "swp2", "10.255.0.14": "swp3"} // a spine's agent, and leaf1's port to it
	onPath := func(spine string) (bool, string) {
		a, out := trace()
		return len(a.Paths) == 1 && a.Paths[0].Complete && a.hops(0) == "10.255.0.11@64/sampled "+spine+"@63/sampled 10.255.0.13@62/sampled @61/attributed", out
	}
	var first string
	waitFor(t, "the flow's path over one spine", 60*time.Second, func() (bool, string) {
		for spine := range spines {
			if ok, _ := onPath(spine); ok {
				first = spine
				return true, ""
			}
		}
		_, out := trace()
		var agents any // which switches' samples arrive, if the path is not there
		f.getJSON("/agents/json", &agents)
		return false, fmt.Sprintf("%s; agents %v", out, agents)
	})
	other := "10.255.0.12"
	if first == other {
		other = "10.255.0.14"
	}
	changes := func() []map[string]any {
		var evs []map[string]any
		f.getJSON("/events/json?thresholdID=pathchange&maxEvents=100", &evs)
		var out []map[string]any
		for _, ev := range evs {
			if ev["flowKey"] == flowKey {
				out = append(out, ev)
			}
		}
		return out
	}
	move := func(state, from, to string) {
		t.Helper()
		n0 := len(changes())
		at := time.Now()
		f.script("link", "l1", spines[first], state)
		waitFor(t, "a pathchange "+from+" -> "+to+" within 5 s of the link going "+state, 5*time.Second, func() (bool, string) {
			evs := changes()
			if len(evs) <= n0 {
				return false, fmt.Sprint(evs)
			}
			old, _ := json.Marshal(evs[0]["oldPath"])
			nw, _ := json.Marshal(evs[0]["newPath"])
			return strings.Contains(string(old), from) && strings.Contains(string(nw), to), fmt.Sprint(evs[0])
		})
		t.Logf("link %s: pathchange %s -> %s after %v", state, from, to, time.Since(at).Round(10*time.Millisecond))
		waitFor(t, "pathtrace shows only "+to+", complete", 5*time.Second, func() (bool, string) { return onPath(to) })
	}
	move("down", first, other)
	// The failure lasts: the flow runs on the other spine for 100 samples
	// (about 2 s) before the link comes back.
	waitFor(t, "100 samples on "+other, 10*time.Second, func() (bool, string) {
		a, out := trace()
		return len(a.Paths) == 1 && len(a.Paths[0].Hops) > 1 && a.Paths[0].Hops[1].Samples >= 100, out
	})
	move("up", other, first)

	// The destination withdrawn, then announced again: the elephant's owner
	// says gone, then comes back.
	owner := func() (gone bool, have bool) {
		var recs []struct {
			FlowKey string
			Owner   *struct{ Gone int64 }
		}
		f.getJSON("/elephants/json?active=true", &recs)
		for _, r := range recs {
			if r.FlowKey == "10.1.1.2,172.16.1.20" && r.Owner != nil {
				return r.Owner.Gone != 0, true
			}
		}
		return false, false
	}
	waitFor(t, "the elephant with its owner", 10*time.Second, func() (bool, string) { g, h := owner(); return h && !g, "" })
	bgp := func(cmd string) {
		must(t, "vtysh", "--vty_socket", frr, "-d", "bgpd", "-c", "configure terminal", "-c", "router bgp 65102",
			"-c", "address-family ipv4 unicast", "-c", cmd)
	}
	bgp("no network 172.16.1.20/32")
	waitFor(t, "the elephant's destination gone", 10*time.Second, func() (bool, string) { g, _ := owner(); return g, "" })
	bgp("network 172.16.1.20/32")
	waitFor(t, "the elephant's destination back", 10*time.Second, func() (bool, string) { g, h := owner(); return h && !g, "" })
}

// getJSON asks the collector's REST API, from inside the management
// namespace where it listens.
func (f *fabric) getJSON(path string, v any) error {
	out, err := exec.Command("ip", "netns", "exec", f.prefix+"mg", "curl", "-sf", "--max-time", "5", "http://10.255.0.1:8008"+path).Output()
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return json.Unmarshal(out, v)
}

// TestPathtraceOverRealRouting: the namespace chain h1 - leaf1 - spine -
// leaf2 - h2 with kernel routing and Open vSwitch sampling every router,
// and FRR's bgpd on leaf2 announcing the container /32s behind it to the
// collector. pathtrace must show leaf1, spine, leaf2 at TTL 64, 63, 62,
// with the destination attributed to leaf2's BGP session and the path
// ending at the host its next hop names.
func TestPathtraceOverRealRouting(t *testing.T) {
	f := newFabric(t, "p")
	f.start("collector", "mg", collectorBin, "-sflow", "10.255.0.1:6343", "-http", "10.255.0.1:8008",
		"-bgp", "10.255.0.1:179", "-bgp-accept", "10.255.0.0/24", "-stats-interval", "0", "-db", "")
	waitFor(t, "collector serving", 10*time.Second, fileContains(f.file("collector.err"), "serving REST API"))

	leaf2BGP(t, f)
	f.script("agents", "ovs", "1")
	waitFor(t, "leaf2's BGP session", 30*time.Second, fileContains(f.file("collector.err"), "state=established"))

	var got pathAnswer
	waitFor(t, "pathtrace shows the path", 60*time.Second, func() (bool, string) {
		send := exec.Command("ip", "netns", "exec", f.prefix+"h1", "hping3", "-2", "-s", "40000", "-k",
			"-p", "9999", "-c", "20", "-i", "u2000", "--ttl", "64", "172.16.1.20")
		send.CombinedOutput() // no answer comes back: hping3 exits 1, which is fine
		out, err := exec.Command("ip", "netns", "exec", f.prefix+"mg", pathtraceBin, "-collector", "http://10.255.0.1:8008",
			"-json", "-proto", "udp", "-dport", "9999", "10.1.1.2", "172.16.1.20").Output()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		got = pathAnswer{}
		json.Unmarshal(out, &got)
		return len(got.Paths) == 1 && len(got.Paths[0].Hops) == 4 && got.DstOwner != nil, string(out)
	})
	// The host sends no sFlow: its BGP next hop ends the path.
	if want := "10.255.0.11@64/sampled 10.255.0.12@63/sampled 10.255.0.13@62/sampled @61/attributed"; got.hops(0) != want {
		t.Errorf("path %s, want %s", got.hops(0), want)
	}
	if o := got.DstOwner; o.Peer != "10.255.0.13" || o.Nexthop != "10.2.2.2" || o.Prefix != "172.16.1.20/32" {
		t.Errorf("destination owner %+v, want 172.16.1.20/32 from peer 10.255.0.13 via 10.2.2.2", *o)
	}
	// And the text form, as a person reads it.
	out, err := exec.Command("ip", "netns", "exec", f.prefix+"mg", pathtraceBin, "-collector", "http://10.255.0.1:8008",
		"10.1.1.2", "172.16.1.20").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "172.16.1.20/32 announced by 10.255.0.13") {
		t.Errorf("pathtrace: %v\n%s", err, out)
	}
	t.Logf("pathtrace:\n%s", out)
}
