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
	f.script("agents", "ovs", "1")
	waitFor(t, "leaf2's BGP session", 30*time.Second, fileContains(f.file("collector.err"), "state=established"))

	type answer struct {
		Paths []struct {
			Hops []struct {
				TTL   int
				Agent string
				Kind  string
			}
		}
		DstOwner *struct{ Peer, Nexthop, Prefix string }
	}
	var got answer
	waitFor(t, "pathtrace shows the path", 60*time.Second, func() (bool, string) {
		send := exec.Command("ip", "netns", "exec", f.prefix+"h1", "hping3", "-2", "-s", "40000", "-k",
			"-p", "9999", "-c", "20", "-i", "u2000", "--ttl", "64", "172.16.1.20")
		send.CombinedOutput() // no answer comes back: hping3 exits 1, which is fine
		out, err := exec.Command("ip", "netns", "exec", f.prefix+"mg", pathtraceBin, "-collector", "http://10.255.0.1:8008",
			"-json", "-proto", "udp", "-dport", "9999", "10.1.1.2", "172.16.1.20").Output()
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		got = answer{}
		json.Unmarshal(out, &got)
		return len(got.Paths) == 1 && len(got.Paths[0].Hops) == 4 && got.DstOwner != nil, string(out)
	})
	var hops []string
	for _, h := range got.Paths[0].Hops {
		hops = append(hops, fmt.Sprintf("%s@%d/%s", h.Agent, h.TTL, h.Kind))
	}
	// The host sends no sFlow: its BGP next hop ends the path.
	if want := "10.255.0.11@64/sampled 10.255.0.12@63/sampled 10.255.0.13@62/sampled @61/attributed"; strings.Join(hops, " ") != want {
		t.Errorf("path %s, want %s", strings.Join(hops, " "), want)
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
