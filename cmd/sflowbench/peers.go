package main

import (
	"bufio"
	"bytes"
	"fmt"
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
// after reading its CPU, and answers the same from then on.
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
			time.Sleep(2 * time.Second)                                           // no counter to poll while it runs: give the backlog time to drain
			peerCPU, peerRSS = cpuTicks(cmd.Process.Pid), rssMiB(cmd.Process.Pid) // before it is gone
			cmd.Process.Signal(stopSig)
			cmd.Wait()
			samples, cerr = count()
			os.RemoveAll(dir)
		}
		return samples / samplesPerDatagram, samples, cerr
	}
	return cmd, counters, nil
}
