//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
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
)

// speaker is a real BGP daemon from Debian, run privately from a temp dir
// on its own loopback source address, announcing three container /32s with
// next hop 10.2.2.1 to the collector's port.
type speaker struct {
	name     string
	asn      int
	start    func(t *testing.T, dir, source string, port int) *exec.Cmd
	withdraw func(t *testing.T, dir string) // withdraws 172.16.9.3/32
}

var announced = []string{"172.16.9.1/32", "172.16.9.2/32", "172.16.9.3/32"}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run starts a daemon in the foreground with its output in dir, and stops
// it by PID when the test ends.
func run(t *testing.T, dir, name string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so its children (chromium's renderers,
	// exabgp's tail) stop with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return cmd
}

func must(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

var speakers = []speaker{
	{name: "frr", asn: 65201,
		start: func(t *testing.T, dir, source string, port int) *exec.Cmd {
			write(t, dir+"/bgpd.conf", fmt.Sprintf(`hostname ft-frr
log file %[1]s/bgpd.log
route-map NH permit 10
 set ip next-hop 10.2.2.1
exit
router bgp 65201
 bgp router-id 10.255.0.21
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 127.0.0.1 remote-as 65000
 neighbor 127.0.0.1 port %[2]d
 neighbor 127.0.0.1 update-source %[3]s
 neighbor 127.0.0.1 timers connect 1
 address-family ipv4 unicast
  network 172.16.9.1/32
  network 172.16.9.2/32
  network 172.16.9.3/32
  neighbor 127.0.0.1 route-map NH out
 exit-address-family
exit
`, dir, port, source))
			// -Z no zebra, -p 0 no listening, -S no user switching.
			return run(t, dir, "bgpd", nil, "/usr/lib/frr/bgpd", "-f", dir+"/bgpd.conf", "-i", dir+"/bgpd.pid",
				"--vty_socket", dir, "-Z", "-p", "0", "-S")
		},
		withdraw: func(t *testing.T, dir string) {
			must(t, "vtysh", "--vty_socket", dir, "-d", "bgpd", "-c", "configure terminal", "-c", "router bgp 65201",
				"-c", "address-family ipv4 unicast", "-c", "no network 172.16.9.3/32")
		}},
	{name: "bird", asn: 65202,
		start: func(t *testing.T, dir, source string, port int) *exec.Cmd {
			birdConf(t, dir, source, port, announced)
			return run(t, dir, "bird", nil, "bird", "-f", "-c", dir+"/bird.conf", "-s", dir+"/bird.ctl", "-P", dir+"/bird.pid")
		},
		withdraw: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(dir + "/bird.source")
			f := strings.Fields(string(b))
			port, _ := strconv.Atoi(f[1])
			birdConf(t, dir, f[0], port, announced[:2])
			must(t, "birdc", "-s", dir+"/bird.ctl", "configure")
		}},
	{name: "gobgpd", asn: 65203,
		start: func(t *testing.T, dir, source string, port int) *exec.Cmd {
			api := freeTCPPort(t)
			write(t, dir+"/api", strconv.Itoa(api))
			write(t, dir+"/speaker.toml", fmt.Sprintf(`[global.config]
  as = 65203
  router-id = "10.255.0.23"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "%s"
    remote-port = %d
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`, source, port))
			cmd := run(t, dir, "gobgpd", nil, "gobgpd", "-f", dir+"/speaker.toml", "-t", "toml",
				"--api-hosts", fmt.Sprintf("127.0.0.1:%d", api), "--pprof-disable")
			// The API answers once gobgpd is up; add the routes through it.
			waitFor(t, "gobgpd API", 20*time.Second, func() (bool, string) {
				out, err := exec.Command("gobgp", "-p", strconv.Itoa(api), "global").CombinedOutput()
				return err == nil, string(out)
			})
			for _, p := range announced {
				must(t, "gobgp", "-p", strconv.Itoa(api), "global", "rib", "add", "-a", "ipv4", p, "nexthop", "10.2.2.1")
			}
			return cmd
		},
		withdraw: func(t *testing.T, dir string) {
			api, _ := os.ReadFile(dir + "/api")
			must(t, "gobgp", "-p", string(api), "global", "rib", "del", "-a", "ipv4", "172.16.9.3/32")
		}},
	{name: "exabgp", asn: 65204,
		start: func(t *testing.T, dir, source string, port int) *exec.Cmd {
			write(t, dir+"/cmds.txt", "")
			write(t, dir+"/exabgp.conf", fmt.Sprintf(`process cmds {
    run /usr/bin/tail -n +1 -F %[1]s/cmds.txt;
    encoder text;
}
neighbor 127.0.0.1 {
    router-id 10.255.0.24;
    local-address %[2]s;
    local-as 65204;
    peer-as 65000;
    connect %[3]d;
    family { ipv4 unicast; }
    static {
        route 172.16.9.1/32 next-hop 10.2.2.1;
        route 172.16.9.2/32 next-hop 10.2.2.1;
        route 172.16.9.3/32 next-hop 10.2.2.1;
    }
    api { processes [ cmds ]; }
}
`, dir, source, port))
			return run(t, dir, "exabgp", []string{"exabgp.api.cli=false", "exabgp.daemon.user=root",
				"exabgp.log.destination=stdout", "exabgp.api.ack=false"}, "exabgp", dir+"/exabgp.conf")
		},
		withdraw: func(t *testing.T, dir string) {
			f, err := os.OpenFile(dir+"/cmds.txt", os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, "withdraw route 172.16.9.3/32 next-hop 10.2.2.1")
			f.Close()
		}},
}

func birdConf(t *testing.T, dir, source string, port int, routes []string) {
	var static strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&static, "  route %s via \"lo\";\n", r)
	}
	write(t, dir+"/bird.source", fmt.Sprintf("%s %d", source, port))
	write(t, dir+"/bird.conf", fmt.Sprintf(`log "%[1]s/bird.log" all;
router id 10.255.0.22;
protocol device { }
protocol static hosts {
  ipv4;
%[2]s}
protocol static hosts6 {
  ipv6;
  route fd00:172:16:9::1/128 via "lo";
}
protocol bgp collector {
  local %[3]s port %[4]d as 65202;
  neighbor 127.0.0.1 port %[5]d as 65000;
  multihop;
  connect retry time 1;
  ipv4 { import none; export where proto = "hosts"; next hop address 10.2.2.1; };
  ipv6 { import none; export where proto = "hosts6"; next hop address fd00::2:1; };
}
`, dir, static.String(), source, freeTCPPort(t), port))
}

type ribPage struct {
	Entries []struct {
		Prefix string
		Best   struct {
			Peer, Nexthop string
			Aspath        []int
		}
	}
}

type neighbor struct {
	Address, State string
	ASN            int
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Each real speaker announces three /32s, withdraws one, then stops: the
// collector's RIB follows exactly each time.
func TestRealBGPSpeakers(t *testing.T) {
	for i, sp := range speakers {
		t.Run(sp.name, func(t *testing.T) {
			dir := t.TempDir()
			source := fmt.Sprintf("127.0.4.%d", i+1)
			port := freeTCPPort(t)
			httpAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
			run(t, dir, "collector", nil, collectorBin, "-sflow", "127.0.0.1:0", "-http", httpAddr,
				"-bgp", fmt.Sprintf("127.0.0.1:%d", port), "-bgp-accept", "127.0.4.0/24", "-stats-interval", "0")
			waitFor(t, "collector REST", 10*time.Second, func() (bool, string) {
				var v any
				err := getJSON("http://"+httpAddr+"/bgp/neighbors/json", &v)
				return err == nil, fmt.Sprint(err)
			})
			cmd := sp.start(t, dir, source, port)
			routes := func() (string, string) {
				var page ribPage
				if err := getJSON("http://"+httpAddr+"/rib/json?peer="+source, &page); err != nil {
					return "", err.Error()
				}
				var got []string
				for _, e := range page.Entries {
					got = append(got, fmt.Sprintf("%s via %s as %v", e.Prefix, e.Best.Nexthop, e.Best.Aspath))
				}
				sort.Strings(got)
				s := strings.Join(got, "; ")
				return s, s
			}
			want := func(prefixes ...string) string {
				var w []string
				for _, p := range prefixes {
					w = append(w, fmt.Sprintf("%s via 10.2.2.1 as [%d]", p, sp.asn))
				}
				return strings.Join(w, "; ")
			}
			log := func() string { b, _ := os.ReadFile(filepath.Join(dir, "collector.log")); return string(b) }
			expect := func(what, w string) {
				t.Helper()
				waitFor(t, what, 30*time.Second, func() (bool, string) {
					got, seen := routes()
					return got == w, seen + "\ncollector log:\n" + log()
				})
			}
			if sp.name == "bird" {
				// BIRD also speaks IPv6 unicast over the same session.
				expect("three /32s and a /128 announced", want(announced...)+
					"; fd00:172:16:9::1/128 via fd00::2:1 as [65202]")
				announced6 := "; fd00:172:16:9::1/128 via fd00::2:1 as [65202]"
				sp.withdraw(t, dir)
				expect("one /32 withdrawn", want(announced[:2]...)+announced6)
			} else {
				expect("three /32s announced", want(announced...))
				sp.withdraw(t, dir)
				expect("one /32 withdrawn", want(announced[:2]...))
			}
			// The speaker goes away: its session, and exactly its routes, go.
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			expect("routes gone with the session", "")
			var nbrs []neighbor
			getJSON("http://"+httpAddr+"/bgp/neighbors/json", &nbrs)
			if len(nbrs) != 1 || nbrs[0].Address != source || nbrs[0].State == "established" || nbrs[0].ASN != sp.asn {
				t.Errorf("neighbours after the speaker stopped: %+v", nbrs)
			}
		})
	}
}
