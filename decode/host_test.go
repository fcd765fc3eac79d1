package decode_test

import (
	"errors"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// hsflowd's host records (0:2003-2006) come back as they were sent, the
// CPU record in both its lengths, and a short one is an error that names it.
func TestHostRecords(t *testing.T) {
	cpu := decode.HostCPU{LoadOne: 1.5, LoadFive: 0.75, LoadFifteen: 0.25, ProcRun: 3, ProcTotal: 412, CPUNum: 8,
		CPUSpeed: 2400, Uptime: 86400, User: 1000, Nice: 2, System: 300, Idle: 9000, WIO: 40, Intr: 5, SoftIntr: 6,
		Interrupts: 123456, Contexts: 654321}
	long := cpu
	long.Steal, long.Guest, long.GuestNice, long.HasSteal = 7, 8, 9, true
	mem := decode.HostMemory{Total: 64 << 30, Free: 10 << 30, Shared: 1 << 20, Buffers: 2 << 30, Cached: 20 << 30,
		SwapTotal: 8 << 30, SwapFree: 7 << 30, PageIn: 11, PageOut: 12, SwapIn: 13, SwapOut: 14}
	disk := decode.HostDiskIO{Total: 1 << 40, Free: 1 << 39, PartMaxUsed: 8712, Reads: 21, BytesRead: 1 << 33,
		ReadTime: 22, Writes: 23, BytesWritten: 1 << 34, WriteTime: 24}
	netio := decode.HostNetIO{BytesIn: 1 << 41, PktsIn: 31, ErrsIn: 32, DropsIn: 33, BytesOut: 1 << 42, PktsOut: 34,
		ErrsOut: 35, DropsOut: 36}
	for _, c := range []decode.HostCPU{cpu, long} {
		d := &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{
			&sflowtest.CounterSample{Sequence: 1, Source: decode.DataSource{Class: 2, Index: 1}, Records: []sflowtest.Record{
				&sflowtest.HostDescription{Hostname: "server1", OSName: 2, OSRelease: "6.1.0"},
				(*sflowtest.HostCPU)(&c), (*sflowtest.HostMemory)(&mem), (*sflowtest.HostDiskIO)(&disk), (*sflowtest.HostNetIO)(&netio),
			}}}}
		r, _, err := decodeAll(t, d.Bytes())
		if err != nil || len(r.counters) != 1 {
			t.Fatalf("steal %v: %v, %d counter samples", c.HasSteal, err, len(r.counters))
		}
		s := r.counters[0].Sample
		want := decode.HasHostDescription | decode.HasHostCPU | decode.HasHostMemory | decode.HasHostDiskIO | decode.HasHostNetIO
		if s.Records != want || s.UnknownRecords != 0 {
			t.Errorf("records %b (unknown %d), want %b", s.Records, s.UnknownRecords, want)
		}
		if s.HostCPU != c || s.HostMemory != mem || s.HostDiskIO != disk || s.HostNetIO != netio {
			t.Errorf("steal %v: got\n%+v\n%+v\n%+v\n%+v", c.HasSteal, s.HostCPU, s.HostMemory, s.HostDiskIO, s.HostNetIO)
		}
	}

	for _, tc := range []struct {
		format    uint32
		size      int
		structure string
	}{
		{decode.RecordHostCPU, 64, "host CPU"},
		{decode.RecordHostMemory, 68, "host memory"},
		{decode.RecordHostDiskIO, 48, "host disk I/O"},
		{decode.RecordHostNetIO, 36, "host net I/O"},
	} {
		d := &sflowtest.Datagram{Agent: agent4, Samples: []sflowtest.Sample{
			&sflowtest.CounterSample{Sequence: 1, Source: decode.DataSource{Class: 2, Index: 1}, Records: []sflowtest.Record{
				&sflowtest.Opaque{DataFormat: tc.format, Body: make([]byte, tc.size)}}}}}
		r, _, err := decodeAll(t, d.Bytes())
		var de *decode.Error
		if !errors.As(err, &de) || de.Structure != tc.structure || !errors.Is(err, decode.ErrTruncated) || len(r.counters) != 0 {
			t.Errorf("%s of %d bytes: %v, %d samples delivered; want a truncated %s", tc.structure, tc.size, err, len(r.counters), tc.structure)
		}
	}
}
