package flows

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/keys"
)

// TestFlowRowsLetIngestIn: a query over a big table holds the lock for a
// slice of RowsPerLock entries at a time, and samples taken between the
// slices go in (were the lock held throughout, the hook's Decode would
// deadlock). Every entry there when the query began is listed once.
func TestFlowRowsLetIngestIn(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	e := New(Config{Now: func() time.Time { return now }})
	if err := e.SetFlow("pairs", keys.Definition{Keys: "ipsource,ipdestination", Value: "bps"}); err != nil {
		t.Fatal(err)
	}
	var dec decode.Decoder
	dgs := sflowtest.LoadDatagrams(5000)
	for _, dg := range dgs[:len(dgs)-50] {
		dec.Decode(dg, e)
	}
	held := e.Stats().Flows
	if held < 3*RowsPerLock {
		t.Fatalf("the load made %d entries; want over %d", held, 3*RowsPerLock)
	}
	slices, fed := 0, len(dgs)-50
	afterRowsSlice = func() {
		slices++
		dec.Decode(dgs[fed], e) // new pairs: appended, so listed too
		fed++
	}
	defer func() { afterRowsSlice = nil }()
	rows, err := e.FlowRows("pairs", func(netip.Addr) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if want := int(held) / RowsPerLock; slices < want {
		t.Errorf("%d entries read in %d slices; want at least %d", held, slices+1, want+1)
	}
	keys := map[string]int{}
	for _, r := range rows {
		keys[r.Agent+" "+r.DataSource+" "+r.Key]++
	}
	for k, n := range keys {
		if n > 1 {
			t.Fatalf("%s listed %d times", k, n)
		}
	}
	if len(rows) < int(held) {
		t.Errorf("%d rows; the table held %d entries when the query began", len(rows), held)
	}
	if got := e.Stats().Flows; got <= held {
		t.Errorf("the samples fed between slices made no entries: %d, %d before", got, held)
	}

	// ActiveFlows ranks in slices too, and renders only the top.
	held, slices = e.Stats().Flows, 0
	fed = 0
	top, err := e.ActiveFlows("pairs", func(netip.Addr) bool { return true }, 10, 0, "max")
	if err != nil {
		t.Fatal(err)
	}
	if want := int(held) / RowsPerLock; slices < want {
		t.Errorf("ActiveFlows read %d entries in %d slices; want at least %d", held, slices+1, want+1)
	}
	if len(top) != 10 || top[0].Value < top[9].Value || top[0].Key == "" {
		t.Errorf("top 10: %+v", top)
	}
}
