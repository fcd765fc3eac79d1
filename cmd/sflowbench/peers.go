package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peerCPU and peerRSS are a peer's CPU seconds and RSS read just before it
// was stopped to be counted.
var peerCPU, peerRSS float64

// Peer collectors from Debian, measured in the same run.
var (
	peerBinaries = map[string]string{"sfcapd": "sfcapd", "sfacctd": "sfacctd"}
	peerPackages = map[string]string{"sfcapd": "nfdump-sflow nfdump", "sfacctd": "pmacct"}
)

// peer starts sfcapd or sfacctd on addr. Their counts are read after they
// stop (sfcapd: nfdump -I on its files; sfacctd: the PACKETS column of its
// print plugin's CSV), so counters stops the process on its first call,
// after reading its CPU and its socket's kernel drops, and answers the
// same from then on. A warm-up is counted without stopping it, from its
// socket (warmUpPeer).
func peer(o options, target, addr string) (*exec.Cmd, func() (uint64, uint64, error), error) {
	dir, err := os.MkdirTemp("", "sflowbench-"+target)
	if err != nil {
		return nil, nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	var cmd *exec.Cmd
	var stopSig syscall.Signal
	var count func() (uint64, error)
	switch target {
	case "sfcapd":
		cmd = pinned(o.pin, "1", "sfcapd", "-b", host, "-p", port, "-w", dir, "-t", "3600", "-B", "33554432")
		stopSig = syscall.SIGTERM
		count = func() (uint64, error) {
			out, err := exec.Command("nfdump", "-R", dir, "-I").Output()
			if err != nil {
				return 0, fmt.Errorf("nfdump -I: %w", err)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(l, "Flows: "); ok {
					return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				}
			}
			return 0, fmt.Errorf("nfdump -I gave no Flows line:\n%s", out)
		}
	case "sfacctd":
		csv := filepath.Join(dir, "out.csv")
		conf := filepath.Join(dir, "sfacctd.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`sfacctd_ip: %s
sfacctd_port: %s
sfacctd_pipe_size: 33554432
daemonize: false
plugins: print[p]
aggregate[p]: src_host,dst_host,src_port,dst_port,proto
print_output[p]: csv
print_output_file[p]: %s
print_refresh_time[p]: 3600
`, host, port, csv)), 0o644)
		cmd = pinned(o.pin, "1", "sfacctd", "-f", conf)
		stopSig = syscall.SIGINT // SIGTERM does not flush
		count = func() (uint64, error) {
			b, err := os.ReadFile(csv)
			if err != nil {
				return 0, fmt.Errorf("sfacctd wrote no CSV: %w", err)
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			col := -1
			var total uint64
			for sc.Scan() {
				f := strings.Split(sc.Text(), ",")
				if col < 0 {
					for i, h := range f {
						if h == "PACKETS" {
							col = i
						}
					}
					continue
				}
				if col < len(f) {
					n, _ := strconv.ParseUint(f[col], 10, 64)
					total += n
				}
			}
			return total, nil
		}
	}
	var done bool
	var samples uint64
	var cerr error
	counters := func() (uint64, uint64, error) {
		if !done {
			done = true
			time.Sleep(2 * time.Second) // no counter to poll while it runs: give the backlog time to drain
			if _, drops, err := udpSocket(addr); err == nil {
				lastKernel = drops
			}
			peerCPU, peerRSS = treeUsage(cmd.Process.Pid) // before it is gone
			cmd.Process.Signal(stopSig)
			cmd.Wait()
			samples, cerr = count()
			os.RemoveAll(dir)
		}
		return samples / samplesPerDatagram, samples, cerr
	}
	return cmd, counters, nil
}

// warmUpPeer is warmUp for a peer, which has no count to read while it
// runs: it sends the load at rate for o.warmup, waits until the peer has
// read its socket empty (at most 20 s), and takes what the kernel did not
// drop as received. A datagram a peer loses past its socket during the
// warm-up (sfacctd's pipe to its plugin) is then counted against the step:
// it can only make the peer look worse, by at most the warm-up's loss.
func warmUpPeer(ctx context.Context, o options, l *load, addr string, rate float64) (counts, error) {
	sent, _, err := send(ctx, addr, l, rate, o.warmup, o.pin)
	if err != nil {
		return counts{}, fmt.Errorf("warm-up: %w", err)
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		queued, drops, err := udpSocket(addr)
		if err != nil {
			return counts{}, fmt.Errorf("warm-up: %w", err)
		}
		if queued == 0 || time.Now().After(end) {
			d := sent - min(drops, sent)
			return counts{datagrams: d, samples: d * samplesPerDatagram, kernel: drops}, nil
		}
	}
}

// udpSocket reads the kernel's counters of the IPv4 UDP socket bound to
// addr (host:port) from /proc/net/udp: the bytes queued for it to read,
// and the datagrams dropped because its buffer was full.
func udpSocket(addr string) (queued, drops uint64, err error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return 0, 0, fmt.Errorf("udp socket %q: want an IPv4 host:port", addr)
	}
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, 0, err
	}
	a := ap.Addr().As4() // /proc/net/udp writes the address as a little-endian word
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], ap.Port())
	for _, line := range strings.Split(string(b), "\n")[1:] {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
		f := strings.Fields(line)
		if len(f) < 13 || f[1] != local {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		if queued, err = strconv.ParseUint(rx, 16, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/net/udp: rx_queue %q: %w", rx, err)
		}
		if drops, err = strconv.ParseUint(f[12], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/net/udp: drops %q: %w", f[12], err)
		}
		return queued, drops, nil
	}
	return 0, 0, fmt.Errorf("no UDP socket bound to %s in /proc/net/udp", addr)
}
