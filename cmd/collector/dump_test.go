package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
)

// -dump prints a port's name only from a counter sample that carried the
// record, and copies it: the decoder reuses its sample, and the name
// aliases a receive buffer the next datagram overwrites (66 of 271 lines
// on a real fabric named a port their sample never carried).
func TestDumpPrintsOnlyThePortNameASampleCarried(t *testing.T) {
	var out bytes.Buffer
	sink := &dumpSink{w: &out}
	agent := netip.MustParseAddr("10.0.0.1")
	buf := []byte("swp51")
	d := &decode.Datagram{Agent: agent}
	sink.Counter(d, &decode.CounterSample{Records: decode.HasPortName, PortName: buf})
	copy(buf, "XXXXX")                                    // the receive buffer, reused
	sink.Counter(d, &decode.CounterSample{PortName: buf}) // a sample without the record, stale field
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"ifName":"swp51"`) || strings.Contains(lines[1], "ifName") {
		t.Errorf("dump:\n%s", out.String())
	}
}
