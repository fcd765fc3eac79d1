package counters

import (
	"strconv"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Host is a host data source's last two sets of hsflowd's host
// records (0:2000-2006), from which its metrics come in sFlow-RT's names:
// gauges as sent, cumulative counters as rates per second between the two,
// and CPU times as percentages of the CPU time between them.
type Host struct {
	At        float64 // when the last host records came
	prevAt    float64
	cur, prev hostRecords
	osName    uint32
	machine   uint32
	osRelease string
	uuid      [16]byte
	described bool
}

type hostRecords struct {
	has  decode.Records
	cpu  decode.HostCPU
	mem  decode.HostMemory
	disk decode.HostDiskIO
	net  decode.HostNetIO
}

// HostRecords are the records that make a data source a host.
const HostRecords = decode.HasHostDescription | decode.HasHostCPU | decode.HasHostMemory | decode.HasHostDiskIO | decode.HasHostNetIO

// Update takes a counter sample's host records, come at now (seconds).
func (h *Host) Update(cs *decode.CounterSample, now float64) {
	if d := &cs.HostDescription; cs.Records&decode.HasHostDescription != 0 {
		h.osName, h.machine, h.uuid, h.described = d.OSName, d.MachineType, d.UUID, true
		if string(d.OSRelease) != h.osRelease {
			h.osRelease = string(d.OSRelease)
		}
	}
	if cs.Records&(HostRecords&^decode.HasHostDescription) == 0 {
		return
	}
	h.prev, h.prevAt = h.cur, h.At
	h.cur = hostRecords{has: cs.Records, cpu: cs.HostCPU, mem: cs.HostMemory, disk: cs.HostDiskIO, net: cs.HostNetIO}
	h.At = now
}

// hostMetrics lists the host metric names, as sFlow-RT and hsflowd name them.
var hostMetrics = []string{
	"os_name", "os_release", "machine_type", "uuid",
	"load_one", "load_five", "load_fifteen", "proc_run", "proc_total", "cpu_num", "cpu_speed", "uptime",
	"cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_wio", "cpu_intr", "cpu_sintr", "cpu_steal",
	"cpu_guest", "cpu_guest_nice", "cpu_utilization", "interrupts", "contexts",
	"mem_total", "mem_free", "mem_shared", "mem_buffers", "mem_cached", "swap_total", "swap_free",
	"mem_utilization", "page_in", "page_out", "swap_in", "swap_out",
	"disk_total", "disk_free", "disk_utilization", "part_max_used", "disk_reads", "disk_bytes_read",
	"disk_read_time", "disk_writes", "disk_bytes_written", "disk_write_time",
	"bytes_in", "pkts_in", "errs_in", "drops_in", "bytes_out", "pkts_out", "errs_out", "drops_out",
}

// osNames and machineTypes are the host description's enumerations.
var (
	osNames = []string{"unknown", "other", "linux", "windows", "darwin", "hpux", "aix", "dragonfly", "freebsd",
		"netbsd", "openbsd", "osf", "solaris", "java"}
	machineTypes = []string{"unknown", "other", "x86", "x86_64", "ia64", "sparc", "alpha", "powerpc", "m68k",
		"mips", "arm", "hppa", "s390"}
)

func enumName(names []string, v uint32) string {
	if int(v) < len(names) {
		return names[v]
	}
	return strconv.FormatUint(uint64(v), 10)
}

// Metric returns one host metric: a number, or a string for the
// description's fields, and whether the host has it now.
func (h *Host) Metric(name string) (any, bool) {
	switch name {
	case "os_name":
		return enumName(osNames, h.osName), h.described
	case "os_release":
		return h.osRelease, h.described
	case "machine_type":
		return enumName(machineTypes, h.machine), h.described
	case "uuid":
		u := h.uuid
		return formatUUID(u[:]), h.described
	}
	c, p := &h.cur, &h.prev
	dt := h.At - h.prevAt
	both := func(kind decode.Records) bool { return c.has&kind != 0 && p.has&kind != 0 && h.prevAt > 0 && dt > 0 }
	rate32 := func(kind decode.Records, cur, prev uint32) (any, bool) {
		if !both(kind) {
			return nil, false
		}
		return float64(cur-prev) / dt, true // uint32 counters wrap
	}
	rate64 := func(kind decode.Records, cur, prev uint64) (any, bool) {
		if !both(kind) || cur < prev { // a counter that went back (reset) gives no rate
			return nil, false
		}
		return float64(cur-prev) / dt, true
	}
	if c.has&decode.HasHostCPU != 0 {
		cpu, was := &c.cpu, &p.cpu
		switch name {
		case "load_one":
			return decimal32(cpu.LoadOne), true
		case "load_five":
			return decimal32(cpu.LoadFive), true
		case "load_fifteen":
			return decimal32(cpu.LoadFifteen), true
		case "proc_run":
			return float64(cpu.ProcRun), true
		case "proc_total":
			return float64(cpu.ProcTotal), true
		case "cpu_num":
			return float64(cpu.CPUNum), true
		case "cpu_speed":
			return float64(cpu.CPUSpeed), true
		case "uptime":
			return float64(cpu.Uptime), true
		case "interrupts":
			return rate32(decode.HasHostCPU, cpu.Interrupts, was.Interrupts)
		case "contexts":
			return rate32(decode.HasHostCPU, cpu.Contexts, was.Contexts)
		}
		if pct, ok := cpuPercent(name, cpu, was); ok && both(decode.HasHostCPU) {
			return pct, true
		}
	}
	if c.has&decode.HasHostMemory != 0 {
		m, was := &c.mem, &p.mem
		switch name {
		case "mem_total":
			return float64(m.Total), true
		case "mem_free":
			return float64(m.Free), true
		case "mem_shared":
			return float64(m.Shared), true
		case "mem_buffers":
			return float64(m.Buffers), true
		case "mem_cached":
			return float64(m.Cached), true
		case "swap_total":
			return float64(m.SwapTotal), true
		case "swap_free":
			return float64(m.SwapFree), true
		case "mem_utilization":
			// Used is what neither the free list nor the page cache holds.
			if m.Total == 0 || m.Free+m.Buffers+m.Cached > m.Total {
				return nil, false
			}
			return 100 * float64(m.Total-m.Free-m.Buffers-m.Cached) / float64(m.Total), true
		case "page_in":
			return rate32(decode.HasHostMemory, m.PageIn, was.PageIn)
		case "page_out":
			return rate32(decode.HasHostMemory, m.PageOut, was.PageOut)
		case "swap_in":
			return rate32(decode.HasHostMemory, m.SwapIn, was.SwapIn)
		case "swap_out":
			return rate32(decode.HasHostMemory, m.SwapOut, was.SwapOut)
		}
	}
	if c.has&decode.HasHostDiskIO != 0 {
		d, was := &c.disk, &p.disk
		switch name {
		case "disk_total":
			return float64(d.Total), true
		case "disk_free":
			return float64(d.Free), true
		case "disk_utilization":
			if d.Total == 0 || d.Free > d.Total {
				return nil, false
			}
			return 100 * float64(d.Total-d.Free) / float64(d.Total), true
		case "part_max_used":
			return float64(d.PartMaxUsed) / 100, true
		case "disk_reads":
			return rate32(decode.HasHostDiskIO, d.Reads, was.Reads)
		case "disk_bytes_read":
			return rate64(decode.HasHostDiskIO, d.BytesRead, was.BytesRead)
		case "disk_read_time":
			return rate32(decode.HasHostDiskIO, d.ReadTime, was.ReadTime)
		case "disk_writes":
			return rate32(decode.HasHostDiskIO, d.Writes, was.Writes)
		case "disk_bytes_written":
			return rate64(decode.HasHostDiskIO, d.BytesWritten, was.BytesWritten)
		case "disk_write_time":
			return rate32(decode.HasHostDiskIO, d.WriteTime, was.WriteTime)
		}
	}
	if c.has&decode.HasHostNetIO != 0 {
		n, was := &c.net, &p.net
		switch name {
		case "bytes_in":
			return rate64(decode.HasHostNetIO, n.BytesIn, was.BytesIn)
		case "pkts_in":
			return rate32(decode.HasHostNetIO, n.PktsIn, was.PktsIn)
		case "errs_in":
			return rate32(decode.HasHostNetIO, n.ErrsIn, was.ErrsIn)
		case "drops_in":
			return rate32(decode.HasHostNetIO, n.DropsIn, was.DropsIn)
		case "bytes_out":
			return rate64(decode.HasHostNetIO, n.BytesOut, was.BytesOut)
		case "pkts_out":
			return rate32(decode.HasHostNetIO, n.PktsOut, was.PktsOut)
		case "errs_out":
			return rate32(decode.HasHostNetIO, n.ErrsOut, was.ErrsOut)
		case "drops_out":
			return rate32(decode.HasHostNetIO, n.DropsOut, was.DropsOut)
		}
	}
	return nil, false
}

// cpuPercent is a CPU time metric as a percentage of all the CPU time
// between two samples; cpu_utilization is the time not idle.
func cpuPercent(name string, cur, prev *decode.HostCPU) (float64, bool) {
	times := func(c *decode.HostCPU) [10]uint32 {
		return [10]uint32{c.User, c.Nice, c.System, c.Idle, c.WIO, c.Intr, c.SoftIntr, c.Steal, c.Guest, c.GuestNice}
	}
	names := [10]string{"cpu_user", "cpu_nice", "cpu_system", "cpu_idle", "cpu_wio", "cpu_intr", "cpu_sintr",
		"cpu_steal", "cpu_guest", "cpu_guest_nice"}
	now, was := times(cur), times(prev)
	var delta [10]float64
	total := 0.0
	for i := range now {
		delta[i] = float64(now[i] - was[i]) // ms counters wrap
		if i < 8 {                          // guest time is counted in user time already
			total += delta[i]
		}
	}
	if total <= 0 {
		return 0, false
	}
	if name == "cpu_utilization" {
		return 100 * (total - delta[3]) / total, true
	}
	for i, n := range names {
		if n == name {
			return 100 * delta[i] / total, true
		}
	}
	return 0, false
}

// decimal32 widens an XDR float as its shortest decimal reads: a load of
// 5.6 is 5.6, not 5.599999904632568.
func decimal32(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// formatUUID writes a UUID as 8-4-4-4-12 hex digits.
func formatUUID(u []byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[b>>4], hex[b&15])
	}
	return string(out)
}
