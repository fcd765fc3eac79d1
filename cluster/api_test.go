package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/cluster"
	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/sim"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// definition is a REST PUT: a kind, a name and a body.
type definition struct {
	kind, name string
	body       []byte
}

// demoDefinitions are define's, as the bodies REST takes.
func demoDefinitions(t testing.TB) []definition {
	t.Helper()
	var out []definition
	put := func(kind, name string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, definition{kind, name, b})
	}
	links := map[string]api.TopologyLink{}
	for l := 1; l <= 4; l++ {
		for s := 1; s <= 2; s++ {
			links[fmt.Sprintf("leaf%02d-spine%02d", l, s)] = api.TopologyLink{Node1: fmt.Sprintf("leaf%02d", l),
				Port1: fmt.Sprintf("swp%d", 50+s), Node2: fmt.Sprintf("spine%02d", s), Port2: fmt.Sprintf("swp%d", l)}
		}
	}
	put("topology", "", api.Topology{Links: links})
	for _, f := range [][2]string{
		{"elephant", "node:inputifindex,ipsource,ipdestination,ipttl"},
		{"pairs", "ipsource,ipdestination"},
		{"ports", "node:inputifindex,inputifindex"},
	} {
		put("flow", f[0], keys.Definition{Keys: keys.KeyList(f[1]), Value: "bytes"})
	}
	put("flow", "logged", keys.Definition{Keys: keys.KeyList("ipsource,ipdestination"), Value: "bytes", Log: true, ActiveTimeout: 2})
	put("threshold", "elephant", thresholds.Threshold{Metric: "elephant", Value: 100e6 / 8, ByFlow: true, Timeout: 10, Confidence: 0.99})
	return out
}

// lastOf is the stream sequence of the newest message on any of subjects:
// what a consumer of them has taken once it is caught up.
func lastOf(ctx context.Context, t *testing.T, stream jetstream.Stream, subjects []string) uint64 {
	t.Helper()
	var last uint64
	for _, s := range subjects {
		m, err := stream.GetLastMsgForSubject(ctx, s)
		if err != nil {
			continue // nothing published there yet
		}
		last = max(last, m.Sequence)
	}
	return last
}

// The api role: two ingest nodes publish, two engine nodes each read half
// the partitions, and an api node that holds no flow answers for both: the
// same top flows, paths, events and elephants as one collector fed the same
// datagrams, over a minute of a failing fabric. The definitions reach the
// engines only through the cluster's bucket; event and elephant ids are
// the results streams' sequences.
func TestAPINodeAsOneCollector(t *testing.T) {
	connect := jetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const parts = 16
	stream, err := cluster.EnsureStream(ctx, connect(), cluster.StreamConfig{Partitions: parts, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.EnsureResults(ctx, connect(), cluster.ResultsConfig{}); err != nil {
		t.Fatal(err)
	}
	defs, err := cluster.OpenDefinitions(ctx, connect())
	if err != nil {
		t.Fatal(err)
	}

	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	one, err := engine.New(flows.Config{Now: clock.now}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	for _, d := range demoDefinitions(t) {
		if err := one.ApplyDefinition(d.kind, d.name, d.body); err != nil {
			t.Fatal(err)
		}
		if err := defs.PutDefinition(d.kind, d.name, d.body); err != nil {
			t.Fatal(err)
		}
	}
	// A -define file's seed does not undo what was PUT.
	if err := defs.SeedDefinition("threshold", "elephant", []byte(`{"metric":"elephant","value":1}`)); err != nil {
		t.Fatal(err)
	}
	// A definition put and deleted before the engines start is not theirs.
	if err := defs.PutDefinition("flow", "gone", []byte(`{"keys":"ipsource"}`)); err != nil {
		t.Fatal(err)
	}
	if err := defs.DeleteDefinition("flow", "gone"); err != nil {
		t.Fatal(err)
	}

	// Two engine nodes: partitions split even and odd, results published,
	// queries answered, definitions from the bucket only.
	type node struct {
		name   string
		eng    *engine.Engine
		cons   *cluster.Consumer
		parts  []int
		subs   []string
		result *cluster.ResultsPublisher

		stopAnswering context.CancelFunc
	}
	var nodes []*node
	for i, name := range []string{"e1", "e2"} {
		eng, err := engine.New(flows.Config{Now: clock.now, HeardApart: true}, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		n := &node{name: name, eng: eng, cons: cluster.NewConsumer(eng), subs: []string{cluster.CountersSubject}}
		for p := i; p < parts; p += 2 {
			n.parts = append(n.parts, p)
			n.subs = append(n.subs, cluster.SamplesSubject(p))
		}
		ready := make(chan struct{})
		go defs.Watch(ctx, eng, func() { close(ready) }, func(key string, err error) { t.Errorf("%s: %s: %v", name, key, err) })
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatal("definitions not applied")
		}
		if got, want := eng.FlowDefinitions(), one.FlowDefinitions(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s's flows from the bucket: %v, want %v", name, got, want)
		}
		if got, want := eng.ThresholdDefinitions(), one.ThresholdDefinitions(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s's thresholds from the bucket: %v, want %v", name, got, want)
		}
		js := connect()
		go n.cons.Run(ctx, js, n.parts)
		n.result = cluster.NewResultsPublisher(js, name, eng)
		go n.result.Run(ctx)
		qctx, stopAnswering := context.WithCancel(ctx)
		n.stopAnswering = stopAnswering
		go cluster.ServeQueries(qctx, js.Conn(), name, eng, func() []int { return n.parts })
		nodes = append(nodes, n)
	}
	apiJS := connect()
	reader := cluster.NewResultsReader(10_000)
	go reader.Run(ctx, apiJS)
	fan := cluster.NewFanout(apiJS.Conn(), parts, 10*time.Second)
	local, err := engine.New(flows.Config{Now: clock.now, CountersElsewhere: false}, 1) // the api node's own: counters, definitions
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	ready := make(chan struct{})
	go defs.Watch(ctx, local, func() { close(ready) }, nil)
	<-ready
	counters := cluster.NewConsumer(local)
	go counters.RunCounters(ctx, apiJS)
	remote := cluster.NewAPI(fan, reader, local)
	for _, n := range nodes {
		waitUntil(t, 10*time.Second, n.name+" reading", n.cons.Ready)
	}
	waitUntil(t, 10*time.Second, "the api node reading counters", counters.Ready)

	ingest := []*cluster.Publisher{cluster.NewPublisher(connect(), parts, 10_000), cluster.NewPublisher(connect(), parts, 10_000)}
	s, err := sim.New(sim.Config{Seed: 7, Mice: 100, ServerAgents: true, ExportDelay: time.Second,
		LinkFailures: true, LinkFailEvery: 15 * time.Second, LinkDownFor: 5 * time.Second,
		ElephantEvery: 10 * time.Second, ElephantRate: 1e9, ElephantDuration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var direct decode.Decoder
	decs := make([]decode.Decoder, len(ingest))
	for step := 1; s.Now() < 60*time.Second; step++ {
		s.Step(func(b []byte) {
			dg, err := direct.Decode(b, one)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			n := int(dg.Agent.As16()[15]) % len(ingest)
			if _, err := decs[n].Decode(b, ingest[n]); err != nil {
				t.Fatal(err)
			}
		})
		for _, p := range ingest {
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range nodes {
			if err := n.cons.WaitFor(ctx, lastOf(ctx, t, stream, n.subs)); err != nil {
				t.Fatalf("step %d: %s: %v", step, n.name, err)
			}
			n.eng.Flush()
		}
		if err := counters.WaitFor(ctx, lastOf(ctx, t, stream, []string{cluster.CountersSubject})); err != nil {
			t.Fatalf("step %d: the api node's counters: %v", step, err)
		}
		clock.t = clock.t.Add(100 * time.Millisecond)
		engines := []*engine.Engine{one, nodes[0].eng, nodes[1].eng}
		for _, e := range engines {
			if step%10 == 0 {
				e.Sweep()
			} else if step%2 == 0 {
				e.SweepPaths()
			}
		}
	}
	// Every event and elephant update the engines made reaches the api node.
	count := func(f func(*engine.Engine) int) int { return f(nodes[0].eng) + f(nodes[1].eng) }
	events := count(func(e *engine.Engine) int { return len(e.Events(ctx, 0, "", 10_000, 0)) })
	updates := count(func(e *engine.Engine) int { return len(e.Elephants(ctx, 0, 10_000, 0)) })
	logged := count(func(e *engine.Engine) int { return len(e.FlowLog(ctx, 0, "", 10_000, 0)) })
	waitUntil(t, 20*time.Second, "results at the api node", func() bool {
		return len(remote.Events(ctx, 0, "", 10_000, 0)) == events && len(remote.Elephants(ctx, 0, 10_000, 0)) == updates &&
			len(remote.FlowLog(ctx, 0, "", 10_000, 0)) == logged
	})
	// The flow log: the same records as one collector's, ids one sequence.
	var wantLog, gotLog []string
	for _, r := range one.FlowLog(ctx, 0, "logged", 10_000, 0) {
		wantLog = append(wantLog, fmt.Sprintf("%s %s %d-%d %s/%s %.4g", r.Name, r.FlowKeys, r.Start, r.End, r.Agent, r.DataSource, r.Value))
	}
	recs := remote.FlowLog(ctx, 0, "logged", 10_000, 0)
	for i, r := range recs {
		gotLog = append(gotLog, fmt.Sprintf("%s %s %d-%d %s/%s %.4g", r.Name, r.FlowKeys, r.Start, r.End, r.Agent, r.DataSource, r.Value))
		if i > 0 && recs[i-1].FlowID != r.FlowID+1 {
			t.Fatalf("flow ids %d then %d", recs[i-1].FlowID, r.FlowID)
		}
	}
	sort.Strings(wantLog)
	sort.Strings(gotLog)
	if len(wantLog) < 10 || strings.Join(gotLog, "\n") != strings.Join(wantLog, "\n") {
		t.Errorf("flow log at the api node (%d):\n%s\nwant (%d)\n%s", len(gotLog), strings.Join(gotLog, "\n"), len(wantLog), strings.Join(wantLog, "\n"))
	}

	want, got := look(t, one), look(t, remote)
	if len(want.elephants) < 3 || len(want.events) < 5 || len(want.paths) < 3 {
		t.Fatalf("too little to compare: %d elephants, %d events, %d paths", len(want.elephants), len(want.events), len(want.paths))
	}
	if got.samples != want.samples {
		t.Errorf("samples: %d over the api node, %d in one collector", got.samples, want.samples)
	}
	if g, w := strings.Join(got.paths, "\n"), strings.Join(want.paths, "\n"); g != w {
		t.Errorf("paths differ:\n%s\nwant\n%s", g, w)
	}
	// A flow spread over the engines (ports: keyed by neither address) is
	// the sum of their parts, each decayed from its own last sample: the
	// same value to the smoothing's rounding.
	if len(got.flows) != len(want.flows) {
		t.Errorf("%d flows, want %d:\n%s\nwant\n%s", len(got.flows), len(want.flows), strings.Join(got.flows, "\n"), strings.Join(want.flows, "\n"))
	}
	for i := range min(len(got.flows), len(want.flows)) {
		if !sameFlow(got.flows[i], want.flows[i]) {
			t.Errorf("flow %d: %s, want %s", i, got.flows[i], want.flows[i])
		}
	}
	moved := 0
	for _, c := range []struct {
		what      string
		got, want []timed
	}{{"events", got.events, want.events}, {"elephants", got.elephants, want.elephants}} {
		unmatched, n := matchWithin(c.got, c.want, 100)
		moved += n
		for _, u := range unmatched {
			t.Errorf("%s: %s", c.what, u)
		}
	}
	// Ids: events and updates newest first, each id one more than the
	// next one's (one stream each, nothing dropped); every elephant record
	// has the id of its first update.
	evs := remote.Events(ctx, 0, "", 10_000, 0)
	for i := 1; i < len(evs); i++ {
		if evs[i-1].EventID != evs[i].EventID+1 {
			t.Fatalf("event ids %d then %d", evs[i-1].EventID, evs[i].EventID)
		}
	}
	first := map[string]int64{}
	ups := remote.Elephants(ctx, 0, 10_000, 0)
	for i := len(ups) - 1; i >= 0; i-- {
		if ups[i].Update == "start" {
			first[ups[i].FlowKey+fmt.Sprint(ups[i].Start)] = ups[i].UpdateID
		}
	}
	for _, r := range remote.ElephantRecords(1000) {
		if id, ok := first[r.FlowKey+fmt.Sprint(r.Start)]; !ok || id != r.ElephantID {
			t.Errorf("elephant %s: id %d, want its start's update id %d", r.FlowKey, r.ElephantID, id)
		}
	}
	// /dump and /metric: counters from the api node's own engine, a flow's
	// top keys from the engines, merged.
	all := func(netip.Addr) bool { return true }
	for _, metrics := range [][]string{{"pairs"}, {"ifinoctets", "elephant"}, {"host_name", "load_one", "os_name"}} {
		w, err := one.Dump(all, metrics)
		if err != nil {
			t.Fatal(err)
		}
		g, err := remote.Dump(all, metrics)
		if err != nil {
			t.Fatal(err)
		}
		if gs, ws := fmt.Sprintf("%+v", g), fmt.Sprintf("%+v", w); len(w) < 5 || gs != ws {
			t.Errorf("dump %v at the api node:\n%s\nwant\n%s", metrics, gs, ws)
		}
	}
	for _, metrics := range [][]string{{"max:pairs", "sum:elephant", "max:ifinutilization", "avg:cpu_utilization"}} {
		w, err := one.Metrics(all, metrics)
		if err != nil {
			t.Fatal(err)
		}
		g, err := remote.Metrics(all, metrics)
		if err != nil {
			t.Fatal(err)
		}
		// A sum over data sources is added in another order: to 9 digits.
		if gs, ws := nineDigits(fmt.Sprintf("%+v", g)), nineDigits(fmt.Sprintf("%+v", w)); gs != ws {
			t.Errorf("metrics %v at the api node:\n%s\nwant\n%s", metrics, gs, ws)
		}
	}
	if m := fan.Missing(); len(m) > 0 {
		t.Errorf("partitions missing from the answers: %v", m)
	}
	// An engine that does not answer: the answer is the other's, and says
	// which partitions it lacks.
	nodes[1].stopAnswering()
	quick := cluster.NewFanout(apiJS.Conn(), parts, 300*time.Millisecond)
	partial := cluster.NewAPI(quick, reader, local)
	waitUntil(t, 5*time.Second, "an answer without e2", func() bool {
		afs, err := partial.ActiveFlows("pairs", all, 1000, 0, "")
		return err == nil && len(afs) > 0 && reflect.DeepEqual(quick.Missing(), nodes[1].parts)
	})
	if quick.Partial.Load() == 0 {
		t.Error("a partial answer not counted")
	}
	t.Logf("compared %d elephants, %d events (%d a step apart), %d paths, %d flows; %d event ids, %d elephant updates",
		len(want.elephants), len(want.events), moved, len(want.paths), len(want.flows), len(evs), len(ups))

}

// sameFlow compares look's lines "name key=value@agent/ds nN", the values
// to a relative 1e-4.
func sameFlow(got, want string) bool {
	split := func(l string) (string, float64) {
		a, rest, _ := strings.Cut(l, "=")
		v, tail, _ := strings.Cut(rest, "@")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return l, 0
		}
		return a + "@" + tail, f
	}
	g, gv := split(got)
	w, wv := split(want)
	return g == w && math.Abs(gv-wv) <= 1e-4*math.Max(math.Abs(wv), 1e-300)
}

var number = regexp.MustCompile(`-?[0-9]+\.[0-9]+(e[-+][0-9]+)?`)

// nineDigits rounds every decimal number in s to 9 significant digits.
func nineDigits(s string) string {
	return number.ReplaceAllStringFunc(s, func(n string) string {
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return n
		}
		return strconv.FormatFloat(f, 'g', 9, 64)
	})
}
