package flows_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

var agent = netip.MustParseAddr("192.0.2.1")

func datagram(frame *sflowtest.Frame, out decode.Port, seq uint32) []byte {
	d := sflowtest.Datagram{Agent: agent, Sequence: seq, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
		Sequence: seq, Source: decode.DataSource{Index: 3}, SamplingRate: 100, SamplePool: 100 * seq,
		Input: decode.Port{Value: 3}, Output: out,
		Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1000, Stripped: 4, Header: frame.Bytes()}},
	}}}
	return d.Bytes()
}

// keyOf defines a flow with keys and returns the key one sample gives it,
// or "" when the sample is dropped from the flow.
func keyOf(t *testing.T, e *flows.Engine, ks, fs string, b []byte) string {
	t.Helper()
	if err := e.SetFlow("k", keys.Definition{Keys: keys.KeyList(ks), FS: fs}); err != nil {
		t.Fatalf("%s: %v", ks, err)
	}
	var dec decode.Decoder
	if _, err := dec.Decode(b, e); err != nil {
		t.Fatal(err)
	}
	af, err := e.ActiveFlows("k", func(netip.Addr) bool { return true }, 10, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(af) == 0 {
		return ""
	}
	return af[0].Key
}

func TestKeysFromTopologyAndGroups(t *testing.T) {
	e := flows.New(flows.Config{})
	if err := e.SetTopology(api.Topology{
		Nodes: map[string]api.TopologyNode{"leaf1": {Agent: "192.0.2.1", Ports: map[string]api.TopologyPort{"swp3": {IfIndex: "3"}}},
			"spine1": {Agent: "192.0.2.9", Ports: map[string]api.TopologyPort{"swp1": {IfIndex: "1"}}}},
		Links: map[string]api.TopologyLink{"leaf1-spine1": {Node1: "leaf1", Port1: "swp3", Node2: "spine1", Port2: "swp1"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetGroup("zones", []byte(`{"inside":["10.1.0.0/16"],"outside":["0.0.0.0/0"]}`)); err != nil {
		t.Fatal(err)
	}
	b := datagram(sflowtest.SynAckFrame(), decode.Port{Value: 5}, 1)
	if got := keyOf(t, e, "node:inputifindex,link:inputifindex,group:ipsource:zones,group:ipdestination:zones", "|", b); got != "leaf1|leaf1-spine1|inside|outside" {
		t.Errorf("got %q", got)
	}
}

func TestFilters(t *testing.T) {
	b := datagram(sflowtest.SynAckFrame(), decode.Port{Value: 5}, 1)
	for filter, match := range map[string]bool{
		"ipprotocol=6":                              true,
		"ipprotocol=17":                             false,
		"ipsource=10.1.0.0/16":                      true,
		"ipsource=10.9.9.9,10.1.1.2":                true,
		"ipsource!=10.1.1.2":                        false,
		"tcpflags~.......1.":                        true, // SYN
		"tcpflags~........1":                        false,
		"stack!~udp":                                true,
		"(ipttl=1|ipttl=62)&vlan=10":                true,
		"ipttl=1|ipttl=2":                           false,
		"udpsourceport=null":                        true,
		"macsource=0a:0b:0c:0d:0e:0f":               true,
		"first:stack:.:ip:ip6=ip&direction=ingress": true,
		"outputifindex!=discard":                    true,
	} {
		e := flows.New(flows.Config{})
		f := filter
		if err := e.SetFlow("k", keys.Definition{Keys: "ipsource", Filter: &f}); err != nil {
			t.Fatalf("%s: %v", filter, err)
		}
		var dec decode.Decoder
		dec.Decode(b, e)
		af, _ := e.ActiveFlows("k", func(netip.Addr) bool { return true }, 10, 0, "")
		if (len(af) == 1) != match {
			t.Errorf("filter %s: matched %v, want %v", filter, len(af) == 1, match)
		}
	}
}

func TestBadDefinitionsAreRefused(t *testing.T) {
	e := flows.New(flows.Config{})
	for _, d := range []keys.Definition{
		{Keys: "ipsource,nonsense"},
		{Keys: "ipsource.2"},
		{Keys: "agent.1"},
		{Keys: "prefix:stack:.:zero"},
		{Keys: "range:ipttl:x"},
		{Keys: "node"},
		{Keys: "or:ipsource"},
		{Keys: "ipsource", Value: "furlongs"},
		{Keys: "ipsource", Values: "count:bogus"},
		{Keys: "ipsource", AggMode: "median"},
		{Keys: "ipsource", Filter: ptr("ipsource=1.2.3.4&(")},
		{Keys: "ipsource", Filter: ptr("ipsource~(")},
		{Keys: "ipsource", Filter: ptr("ipsource")},
		{Keys: "ipsource", Filter: ptr("bogus=1")},
	} {
		if err := e.SetFlow("bad", d); !errors.Is(err, flows.ErrInvalid) {
			t.Errorf("%+v: err %v, want ErrInvalid", d, err)
		}
	}
}

func ptr(s string) *string { return &s }

// The steady state allocates nothing: a known flow, sample after sample.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	e := flows.New(flows.Config{})
	for name, ks := range map[string]string{
		"elephant": "node:inputifindex,ipsource,ipdestination,ipttl",
		"tuple":    "ipsource,ipdestination,ipprotocol,or:tcpsourceport:udpsourceport,or:tcpdestinationport:udpdestinationport",
		"ports":    "node:inputifindex,inputifindex,stack,tcpflags",
	} {
		if err := e.SetFlow(name, keys.Definition{Keys: keys.KeyList(ks)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SetThreshold("big", thresholds.Threshold{Metric: "elephant", Value: 1e12, ByFlow: true}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	b := datagram(sflowtest.SynAckFrame(), decode.Port{Value: 5}, 1)
	dec.Decode(b, e) // first sight of each flow allocates its entry
	if n := testing.AllocsPerRun(200, func() { dec.Decode(b, e) }); n != 0 {
		t.Errorf("%.1f allocations per sample in steady state", n)
	}
}

// A flood of random 5-tuples stays under the cap, and the evictions are
// counted.
func TestFloodStaysUnderTheCap(t *testing.T) {
	e := flows.New(flows.Config{MaxFlows: 1000})
	if err := e.SetFlow("tuple", keys.Definition{Keys: "ipsource,ipdestination,tcpsourceport,tcpdestinationport"}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	f := sflowtest.SynAckFrame()
	for i := range 20_000 {
		f.Src = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.SrcPort = uint16(i)
		dec.Decode(datagram(f, decode.Port{Value: 5}, uint32(i+1)), e)
	}
	st := e.Stats()
	if st.Flows > 1000 || st.FlowsEvicted < 19_000 {
		t.Errorf("%d flows held, %d evicted; want at most 1000 and the rest evicted", st.Flows, st.FlowsEvicted)
	}
}

// At the cap, a new flow that evicts the only other flow of its data source
// must still be found: the eviction lets go of the source's map, and the
// new flow must not land in the map let go of (it once did, and vanished
// from /activeflows while the table still counted it).
func TestEvictionAtOneSourceKeepsTheNewFlow(t *testing.T) {
	e := flows.New(flows.Config{MaxFlows: 1})
	must(t, e.SetFlow("src", keys.Definition{Keys: "ipsource"}))
	var dec decode.Decoder
	f := sflowtest.SynAckFrame()
	for i := range 5 {
		f.Src = netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		for j := range 2 { // the second sample must find the flow the first made
			if _, err := dec.Decode(datagram(f, decode.Port{Value: 5}, uint32(2*i+j+1)), e); err != nil {
				t.Fatal(err)
			}
		}
		af, err := e.ActiveFlows("src", func(netip.Addr) bool { return true }, 10, 0, "")
		must(t, err)
		if len(af) != 1 || af[0].Key != f.Src.String() {
			t.Fatalf("after flow %s: active flows %+v, want only it", f.Src, af)
		}
		if st := e.Stats(); st.Flows != 1 || st.FlowsEvicted != uint64(i) {
			t.Fatalf("after flow %s: %d flows held, %d evicted; want 1 and %d", f.Src, st.Flows, st.FlowsEvicted, i)
		}
	}
}

// Data sources are capped too: past MaxSources the stalest goes, with its
// flows, and a source that comes back starts afresh.
func TestSourcesStayUnderTheCap(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	e := flows.New(flows.Config{MaxSources: 4, Now: func() time.Time { return now }})
	must(t, e.SetFlow("src", keys.Definition{Keys: "ipsource"}))
	var dec decode.Decoder
	seq := uint32(0)
	sampleAt := func(index uint32) {
		seq++
		d := sflowtest.Datagram{Agent: agent, Sequence: seq, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
			Sequence: seq, Source: decode.DataSource{Index: index}, SamplingRate: 100,
			Input: decode.Port{Value: index}, Output: decode.Port{Value: 5},
			Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 1000, Header: sflowtest.SynAckFrame().Bytes()}}}}}
		if _, err := dec.Decode(d.Bytes(), e); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
	}
	for index := range uint32(10) {
		sampleAt(index + 1)
	}
	if st := e.Stats(); st.SourcesEvicted != 6 || st.Flows != 4 {
		t.Fatalf("after 10 sources: %d evicted, %d flows held; want 6 and 4", st.SourcesEvicted, st.Flows)
	}
	af, err := e.ActiveFlows("src", func(netip.Addr) bool { return true }, 0, 0, "sum")
	must(t, err)
	if len(af) != 1 || af[0].FlowN != 4 {
		t.Fatalf("active flows %+v, want one key held at 4 data sources", af)
	}
	sampleAt(1) // evicted long ago: a new source, which evicts the stalest (7)
	if st := e.Stats(); st.SourcesEvicted != 7 || st.Flows != 4 {
		t.Fatalf("after source 1 came back: %d evicted, %d flows held; want 7 and 4", st.SourcesEvicted, st.Flows)
	}
}

// Samples lost between agent and collector are made up for from the
// sample_pool: the estimate stays right when half the datagrams vanish.
func TestRenormalisesFromSamplePool(t *testing.T) {
	now := time.Unix(0, 0)
	e := flows.New(flows.Config{Now: func() time.Time { return now }})
	if err := e.SetFlow("all", keys.Definition{Keys: "ipsource", Value: "frames", T: 600}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	for seq := uint32(1); seq <= 2000; seq++ {
		if seq%2 == 0 {
			continue // lost on the way
		}
		dec.Decode(datagram(sflowtest.SynAckFrame(), decode.Port{Value: 5}, seq), e)
	}
	// 2000 samples at 1 in 100 stood for 200000 frames; at t=600 s over
	// "no time" the rate is total/t.
	af, _ := e.ActiveFlows("all", func(netip.Addr) bool { return true }, 1, 0, "")
	total := af[0].Value * 600
	if total < 190_000 || total > 210_000 {
		t.Errorf("estimated %.0f frames from half the samples, truth 200000", total)
	}
}

// aggMode AGENT keeps one table per agent: a flow seen on two ports of one
// switch is one entry.
func TestAggModeAgentMergesDataSources(t *testing.T) {
	for mode, want := range map[string]int{"": 2, "AGENT": 1} {
		e := flows.New(flows.Config{})
		if err := e.SetFlow("k", keys.Definition{Keys: "ipsource", AggMode: mode}); err != nil {
			t.Fatal(err)
		}
		var dec decode.Decoder
		for ds := uint32(1); ds <= 2; ds++ {
			d := sflowtest.Datagram{Agent: agent, Sequence: ds, Samples: []sflowtest.Sample{&sflowtest.FlowSample{
				Source: decode.DataSource{Index: ds}, SamplingRate: 10, SamplePool: 10, Input: decode.Port{Value: ds},
				Records: []sflowtest.Record{&sflowtest.RawHeader{FrameLength: 100, Header: sflowtest.SynAckFrame().Bytes()}}}}}
			dec.Decode(d.Bytes(), e)
		}
		af, _ := e.ActiveFlows("k", func(netip.Addr) bool { return true }, 10, 0, "sum")
		if len(af) != 1 || af[0].FlowN != want {
			t.Errorf("aggMode %q: %+v, want one key at %d places", mode, af, want)
		}
	}
}

// values: count: estimates distinct values, avg: averages a number; both
// reach the event.
func TestEventValuesCountAndAvg(t *testing.T) {
	e := flows.New(flows.Config{})
	if err := e.SetFlow("scan", keys.Definition{Keys: "ipsource", Value: "frames",
		Values: "count:ipdestination,avg:ipbytes"}); err != nil {
		t.Fatal(err)
	}
	// Fires when the 60th sample (rate 100 each, t=2: 60*100/2 = 3000) lands.
	if err := e.SetThreshold("scan", thresholds.Threshold{Metric: "scan", Value: 2950, ByFlow: true}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	f := sflowtest.SynAckFrame()
	for i := range 60 {
		f.Dst = netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
		dec.Decode(datagram(f, decode.Port{Value: 5}, uint32(i+1)), e)
	}
	evs := e.Events(t.Context(), -1, "scan", 10, 0)
	if len(evs) != 1 || len(evs[0].Values) != 2 {
		t.Fatalf("events %+v", evs)
	}
	if c := evs[0].Values[0]; c < 54 || c > 66 {
		t.Errorf("count:ipdestination %.1f, truth 60 (event %+v)", c, evs[0])
	}
	if a := evs[0].Values[1]; a != 80 {
		t.Errorf("avg:ipbytes %.1f, truth 80", a)
	}
}
