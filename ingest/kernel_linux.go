package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelStats are the kernel's counts of datagrams it dropped before the
// collector could read them.
type KernelStats struct {
	SocketDrops  uint64 // /proc/net/udp{,6} drops for the collector's sockets
	RcvbufErrors uint64 // /proc/net/snmp{,6} RcvbufErrors, for the whole namespace
	InErrors     uint64 // /proc/net/snmp{,6} InErrors, for the whole namespace
}

func socketInode(c *net.UDPConn) (uint64, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	return st.Ino, serr
}

// readKernelStats reads the drop counters for the sockets with these inodes.
func readKernelStats(inodes map[uint64]bool) (KernelStats, error) {
	var ks KernelStats
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return ks, err
		}
		ks.SocketDrops += socketDrops(b, inodes)
	}
	for _, f := range []struct{ name, prefix string }{{"/proc/net/snmp", "Udp:"}, {"/proc/net/snmp6", "Udp6"}} {
		b, err := os.ReadFile(f.name)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return ks, err
		}
		m := snmpCounters(b, f.prefix)
		ks.RcvbufErrors += m["RcvbufErrors"]
		ks.InErrors += m["InErrors"]
	}
	return ks, nil
}

// socketDrops sums the last column (drops) of the /proc/net/udp lines whose
// inode column is one of ours.
func socketDrops(b []byte, inodes map[uint64]bool) uint64 {
	var total uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 13 {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || !inodes[ino] {
			continue
		}
		if d, err := strconv.ParseUint(f[len(f)-1], 10, 64); err == nil {
			total += d
		}
	}
	return total
}

// snmpCounters reads the UDP counters of /proc/net/snmp (a line of names
// then a line of values, both starting "Udp:") or of /proc/net/snmp6 (one
// "Udp6Name value" per line).
func snmpCounters(b []byte, prefix string) map[string]uint64 {
	m := map[string]uint64{}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		if prefix == "Udp6" {
			if len(f) == 2 {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				m[strings.TrimPrefix(f[0], prefix)] = v
			}
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				n, _ := strconv.ParseUint(v, 10, 64)
				m[names[i]] = n
			}
		}
	}
	return m
}

// rmemMax returns net.core.rmem_max, to say which sysctl caps the buffer.
func rmemMax() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse rmem_max: %w", err)
	}
	return n, nil
}
