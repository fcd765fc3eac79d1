package cluster_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/sim"
)

// An engine node that takes over a dead one's partitions reads them back
// from the stream, each sample at its time: the moved elephant's rate is
// one collector's again as soon as the new owner has caught up (not
// rebuilt over its time constant), with the same start, and its path.
// Real time: the simulator is stepped at its own pace, 100 ms a step.
func TestEngineNodeReplaysWhatItTakesOver(t *testing.T) {
	url := natsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const parts = 8
	_, ijs := dial(t, url)
	if _, err := cluster.EnsureStream(ctx, ijs, cluster.StreamConfig{Partitions: parts, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	pub := cluster.NewPublisher(ijs, parts, 10_000)
	full, err := engine.New(flows.Config{}, 1) // one collector, fed every datagram as it is sent
	if err != nil {
		t.Fatal(err)
	}
	defer full.Close()
	define(t, full)

	start := func(name string) *node { return startNode(ctx, t, url, name, parts, time.Minute) }
	a, b := start("a"), start("b")
	waitUntil(t, 10*time.Second, "a and b read half the partitions each", func() bool {
		pa, ca := a.node.Consuming()
		pb, cb := b.node.Consuming()
		return ca && cb && len(pa) == parts/2 && len(pb) == parts/2
	})

	src, dst := netip.MustParseAddr("172.16.1.11"), netip.MustParseAddr("172.16.1.42")
	s, err := sim.New(sim.Config{Seed: 5, Mice: 50, ServerAgents: true,
		Elephants: []sim.Elephant{{Src: src, Dst: dst, Rate: 1e9, Duration: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	// The fabric runs at its own pace until the test ends.
	stop := make(chan struct{})
	fed := make(chan error, 1)
	go func() {
		var dec, fullDec decode.Decoder
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				fed <- nil
				return
			case <-tick.C:
			}
			var err error
			s.Step(func(b []byte) {
				if _, e := dec.Decode(b, pub); e != nil && err == nil {
					err = e
				}
				fullDec.Decode(b, full)
			})
			if err == nil {
				err = pub.Flush(ctx)
			}
			if err != nil {
				fed <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-fed; err != nil {
			t.Error(err)
		}
	}()

	const pair = "172.16.1.11,172.16.1.42"
	rate := func(e *engine.Engine) float64 {
		afs, _ := e.ActiveFlows("pairs", func(netip.Addr) bool { return true }, 0, 0, "max")
		for _, af := range afs {
			if af.Key == pair {
				return af.Value
			}
		}
		return 0
	}
	var owner, heir *node
	waitUntil(t, 20*time.Second, "an engine node holds the elephant", func() bool {
		for _, n := range []*node{a, b} {
			if len(n.eng.ActiveElephants()) > 0 && rate(n.eng) > 0 {
				owner = n
			}
		}
		return owner != nil
	})
	heir = a
	if owner == a {
		heir = b
	}
	if rate(heir.eng) != 0 {
		t.Fatal("the pair on both nodes")
	}

	// The owner dies: its connection drops, so it renews and releases
	// nothing; the heir gains its partitions when their leases expire.
	owner.conn.Close()
	owner.cancel()
	<-owner.done
	took := waitUntil(t, 15*time.Second, "the heir reads every partition", func() bool {
		ps, _ := heir.node.Consuming()
		return len(ps) == parts
	})
	// Caught up on the replay, its rate is the collector's, at once: a
	// node that rebuilt it from the take-over would take about 8 s (four
	// time constants of 2 s) to come within 2%.
	caught := waitUntil(t, 3*time.Second, "the heir's rate of the elephant within 2% of one collector's", func() bool {
		heir.eng.Flush()
		got, want := rate(heir.eng), rate(full)
		return want > 0 && math.Abs(got-want) <= 0.02*want
	})
	st := heir.node.Stats()
	if st.Replayed == 0 {
		t.Error("nothing replayed")
	}
	t.Logf("the heir read every partition %.1f s after the owner died, and had the elephant's rate %.1f s later (%.4g against %.4g); %d samples replayed",
		took.Seconds(), caught.Seconds(), rate(heir.eng), rate(full), st.Replayed)

	// The same elephant: its start, and its path.
	var got, want *api.Elephant
	for _, e := range heir.eng.ActiveElephants() {
		if e.FlowKey == pair || strings.HasPrefix(e.FlowKey, pair) {
			got = &e
		}
	}
	for _, e := range full.ActiveElephants() {
		if e.FlowKey == pair || strings.HasPrefix(e.FlowKey, pair) {
			want = &e
		}
	}
	if got == nil || want == nil {
		t.Fatalf("the elephant: %v on the heir, %v at one collector", got, want)
	}
	if d := got.Start - want.Start; d < -500 || d > 500 {
		t.Errorf("the elephant started at %d on the heir, %d at one collector", got.Start, want.Start)
	}
	hops := func(e *engine.Engine) string {
		ps, err := e.Paths(api.PathQuery{Src: src, Dst: dst})
		if err != nil || len(ps.Paths) == 0 {
			return fmt.Sprint("no path: ", err)
		}
		var out []string
		for _, h := range ps.Paths[0].Hops {
			out = append(out, fmt.Sprintf("%s@%d", h.Node, h.TTL))
		}
		return strings.Join(out, " ")
	}
	if g, w := hops(heir.eng), hops(full); g != w {
		t.Errorf("the heir's path %s, one collector's %s", g, w)
	}
}
