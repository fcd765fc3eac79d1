package flows_test

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/sim"
)

// trueHops renders the simulator's hops as the tracker should: TTL, node,
// in and out ports.
func trueHops(f sim.TruthFlow, skip func(string) bool) string {
	var b []string
	for _, h := range f.Hops {
		if skip != nil && skip(h.Node) {
			continue
		}
		b = append(b, fmt.Sprintf("%d %s %s>%s", h.TTL, h.Node, h.In, h.Out))
	}
	return strings.Join(b, " | ")
}

func gotHops(p flows.Path) string {
	var b []string
	for _, h := range p.Hops {
		b = append(b, fmt.Sprintf("%d %s %s>%s", h.TTL, h.Node, h.In, h.Out))
	}
	return strings.Join(b, " | ")
}

// Every elephant's path is exact: nodes, ports and TTLs, hosts included.
func TestElephantPathsAreExact(t *testing.T) {
	f := newFabric(t, sim.Config{Seed: 21, Mice: 50, ServerAgents: true, IPv6: true,
		ElephantEvery: 5 * time.Second, ElephantDuration: 4 * time.Second}, flows.Config{})
	f.run(30 * time.Second)
	checked := 0
	for _, tf := range f.sim.Truth().Flows {
		if !tf.Elephant {
			continue
		}
		ps, err := f.eng.Paths(flows.PathQuery{Src: tf.Src, Dst: tf.Dst, Proto: tf.Proto, SrcPort: tf.SrcPort, DstPort: tf.DstPort})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps.Paths) != 1 {
			t.Errorf("elephant %d: %d paths", tf.ID, len(ps.Paths))
			continue
		}
		// Servers' in and out: the container side is internal, which has no name.
		if got, want := gotHops(ps.Paths[0]), trueHops(tf, nil); got != want {
			t.Errorf("elephant %d\n got %s\nwant %s", tf.ID, got, want)
		}
		if !ps.Paths[0].Complete {
			t.Errorf("elephant %d path not complete", tf.ID)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d elephants checked", checked)
	}
}

// A hop that exports nothing is inferred from the topology's links, and
// marked so.
func TestUnsampledHopIsInferred(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.12"), netip.MustParseAddr("172.16.1.33")
	f := newFabric(t, sim.Config{Seed: 4, Mice: -1, Elephants: []sim.Elephant{{Src: src, Dst: dst, Rate: 400e6,
		Duration: time.Minute}}}, flows.Config{})
	links := map[string]flows.TopologyLink{}
	for l := 1; l <= 4; l++ {
		for s := 1; s <= 2; s++ {
			links[fmt.Sprintf("leaf%02d-spine%02d", l, s)] = flows.TopologyLink{Node1: fmt.Sprintf("leaf%02d", l),
				Port1: fmt.Sprintf("swp%d", 50+s), Node2: fmt.Sprintf("spine%02d", s), Port2: fmt.Sprintf("swp%d", l)}
		}
	}
	if err := f.eng.SetTopology(flows.Topology{Links: links}); err != nil {
		t.Fatal(err)
	}
	f.dropAgents = func(a netip.Addr) bool { return strings.HasPrefix(a.String(), "10.255.0.") } // spines send nothing
	f.run(5 * time.Second)
	ps, err := f.eng.Paths(flows.PathQuery{Src: src, Dst: dst})
	if err != nil {
		t.Fatal(err)
	}
	var tf sim.TruthFlow
	for _, x := range f.sim.Truth().Flows {
		if x.Elephant {
			tf = x
		}
	}
	spine := tf.Hops[2].Node
	got := ps.Paths[0].Hops
	if len(got) != 3 || got[1].Node != spine || got[1].Kind != "inferred" || got[1].TTL != 63 || !ps.Paths[0].Complete {
		t.Errorf("path %+v, want leaf02 then %s inferred at TTL 63, then leaf03", got, spine)
	}
}

// A pair's 5-tuples spread over both spines; the shares match the truth.
func TestECMPSharesMatchTheTruth(t *testing.T) {
	src, dst := netip.MustParseAddr("172.16.1.21"), netip.MustParseAddr("172.16.1.41")
	var elephants []sim.Elephant
	for i := range 8 {
		elephants = append(elephants, sim.Elephant{Src: src, Dst: dst, SrcPort: uint16(41000 + i), Rate: 200e6,
			Duration: time.Minute})
	}
	f := newFabric(t, sim.Config{Seed: 6, Mice: -1, Elephants: elephants}, flows.Config{})
	f.run(20 * time.Second)
	ps, err := f.eng.Paths(flows.PathQuery{Src: src, Dst: dst, DstPort: 5201})
	if err != nil {
		t.Fatal(err)
	}
	truth := map[string]float64{}
	var total float64
	for _, tf := range f.sim.Truth().Flows {
		if tf.Src == src && tf.Dst == dst && tf.DstPort == 5201 {
			truth[tf.Hops[1].Node+"/"+tf.Hops[2].Node] += float64(tf.Bytes)
			total += float64(tf.Bytes)
		}
	}
	if len(ps.Split) != 1 || ps.Split[0].TTL != 63 {
		t.Fatalf("splits %+v, want one at the spines (TTL 63)", ps.Split)
	}
	for node, share := range ps.Split[0].Shares {
		want := truth["leaf02/"+node] / total
		if math.Abs(share-want) > 0.05 {
			t.Errorf("%s carries %.2f of the pair, truth %.2f", node, share, want)
		}
	}
}
