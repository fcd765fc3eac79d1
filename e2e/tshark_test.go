//go:build e2e

package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/decode"
)

// readPcap returns the UDP payloads of a classic pcap file of Ethernet frames.
func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 {
		t.Fatalf("%s: %d bytes, no pcap header", path, len(b))
	}
	var order binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		t.Fatalf("%s: not a pcap file", path)
	}
	if lt := order.Uint32(b[20:]); lt != 1 {
		t.Fatalf("%s: link type %d, want Ethernet", path, lt)
	}
	var out [][]byte
	for off := 24; off+16 <= len(b); {
		n := int(order.Uint32(b[off+8:]))
		frame := b[off+16 : min(off+16+n, len(b))]
		off += 16 + n
		var p decode.Packet
		decode.ParsePacket(decode.HeaderEthernet, frame, &p, nil)
		if p.Layers&decode.LayerUDP == 0 {
			t.Fatalf("%s: frame %d is not UDP", path, len(out)+1)
		}
		out = append(out, frame[len(frame)-p.PayloadSize:])
	}
	return out
}

// tsharkFields are the fields compared, one per sample (or record) in the
// order the datagram holds them. ip.* has the capture's own IP header first.
var tsharkFields = []string{
	"sflow_245.agent", "sflow_245.sequence_number", "sflow_245.numsamples", "sflow_245.sampletype",
	"sflow.flow_sample.sequence_number", "sflow.flow_sample.sampling_rate", "sflow.flow_sample.sample_pool",
	"sflow.flow_sample.input_interface", "sflow.flow_sample.output_interface", "sflow_245.header.frame_length",
	"ip.src", "ip.dst", "ip.ttl",
	"sflow.counters_sample.sequence_number", "sflow_245.ifindex", "sflow_245.ifinoct",
}

// ourFields renders what our decoder read in tshark's terms.
type ourFields struct {
	v map[string][]string
	// ovs is set when a counter sample holds records tshark does not read
	// (Open vSwitch's 1004 and others, which we skip by length): tshark
	// then stops, or worse, reads on misaligned, so its counter fields
	// for that datagram are not evidence either way.
	ovs bool
}

func (o *ourFields) add(field string, v any) { o.v[field] = append(o.v[field], fmt.Sprint(v)) }

func (o *ourFields) Flow(_ *decode.Datagram, s *decode.FlowSample) {
	o.add("sflow.flow_sample.sequence_number", s.Sequence)
	o.add("sflow.flow_sample.sampling_rate", s.SamplingRate)
	o.add("sflow.flow_sample.sample_pool", s.SamplePool)
	o.add("sflow.flow_sample.input_interface", uint32(s.Input.Format)<<30|s.Input.Value)
	o.add("sflow.flow_sample.output_interface", fmt.Sprintf("0x%08x", uint32(s.Output.Format)<<30|s.Output.Value))
	if s.Records&decode.HasRawHeader != 0 {
		o.add("sflow_245.header.frame_length", s.RawHeader.FrameLength)
		if p := &s.RawHeader.Packet; p.Layers&decode.LayerIPv4 != 0 {
			o.add("ip.src", p.Src)
			o.add("ip.dst", p.Dst)
			o.add("ip.ttl", p.TTL)
			// tshark also lists the IP header an ICMP error quotes.
			if p.Layers&decode.LayerICMP != 0 && (p.ICMPType == 3 || p.ICMPType == 11) && p.PayloadSize >= 4+20 {
				b := s.RawHeader.Bytes
				var q decode.Packet
				decode.ParsePacket(decode.HeaderIPv4, b[len(b)-p.PayloadSize+4:], &q, nil)
				if q.Layers&decode.LayerIPv4 != 0 {
					o.add("ip.src", q.Src)
					o.add("ip.dst", q.Dst)
					o.add("ip.ttl", q.TTL)
				}
			}
		}
	}
}

func (o *ourFields) Counter(_ *decode.Datagram, s *decode.CounterSample) {
	o.ovs = o.ovs || s.UnknownRecords > 0
	o.add("sflow.counters_sample.sequence_number", s.Sequence)
	if s.Records&decode.HasGenericInterface != 0 {
		o.add("sflow_245.ifindex", s.Generic.IfIndex)
		o.add("sflow_245.ifinoct", s.Generic.InOctets)
	}
}

// crossCheck decodes every datagram of the capture and compares, field by
// field, with what tshark reads from the same file. tshark stops at counter
// records it does not know (Open vSwitch's), or reads on misaligned, so
// where it gives fewer values than we do its values must be a prefix of
// ours, and the counter fields of datagrams holding such records are not
// compared; flow-sample fields are counted to show the check was not vacuous.
func crossCheck(t *testing.T, pcap string) (flowSamples int) {
	t.Helper()
	datagrams := readPcap(t, pcap)
	args := []string{"-r", pcap, "-T", "fields", "-E", "separator=;", "-E", "occurrence=a", "-E", "aggregator=|"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	rows := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(rows) != len(datagrams) {
		t.Fatalf("tshark read %d frames, the pcap holds %d", len(rows), len(datagrams))
	}
	var dec decode.Decoder
	malformedForTshark := 0
	for i, row := range rows {
		failed := t.Failed()
		cols := strings.Split(row, ";")
		theirs := map[string][]string{}
		for j, f := range tsharkFields {
			if j < len(cols) && cols[j] != "" {
				theirs[f] = strings.Split(cols[j], "|")
			}
		}
		ours := &ourFields{v: map[string][]string{}}
		dg, err := dec.Decode(datagrams[i], ours)
		if err != nil {
			t.Errorf("datagram %d: our decoder failed on a real agent's datagram: %v", i+1, err)
			continue
		}
		ours.v["sflow_245.agent"] = []string{dg.Agent.String()}
		ours.v["sflow_245.sequence_number"] = []string{strconv.FormatUint(uint64(dg.Sequence), 10)}
		ours.v["sflow_245.numsamples"] = []string{strconv.FormatUint(uint64(dg.NumSamples), 10)}
		// The capture's own IP header comes first in tshark's ip.* lists.
		for _, f := range []string{"ip.src", "ip.dst", "ip.ttl"} {
			if len(theirs[f]) > 0 {
				ours.v[f] = append([]string{theirs[f][0]}, ours.v[f]...)
			}
		}
		if ours.ovs || len(theirs["sflow.counters_sample.sequence_number"]) < len(ours.v["sflow.counters_sample.sequence_number"]) ||
			len(theirs["sflow_245.ifindex"]) < len(ours.v["sflow_245.ifindex"]) {
			malformedForTshark++
		}
		for _, f := range tsharkFields[:3] {
			if strings.Join(theirs[f], "|") != strings.Join(ours.v[f], "|") {
				t.Errorf("datagram %d %s: tshark %v, ours %v", i+1, f, theirs[f], ours.v[f])
			}
		}
		for _, f := range tsharkFields[4:] {
			if ours.ovs && strings.Contains(f, "counters") || ours.ovs && strings.HasPrefix(f, "sflow_245.if") {
				continue
			}
			th, us := theirs[f], ours.v[f]
			if len(th) > len(us) {
				t.Errorf("datagram %d %s: tshark read more than we did: %v vs %v", i+1, f, th, us)
				continue
			}
			for k := range th {
				if th[k] != us[k] {
					t.Errorf("datagram %d %s[%d]: tshark %q, ours %q", i+1, f, k, th[k], us[k])
				}
			}
		}
		if !failed && t.Failed() {
			t.Logf("datagram %d, as captured: %x", i+1, datagrams[i])
		}
		if th, us := len(theirs["sflow.flow_sample.sequence_number"]), len(ours.v["sflow.flow_sample.sequence_number"]); th == us {
			flowSamples += us
		}
	}
	t.Logf("tshark cross-check: %d datagrams, %d flow samples compared in full; tshark gave up early on %d (our decoder on none)",
		len(datagrams), flowSamples, malformedForTshark)
	return flowSamples
}
