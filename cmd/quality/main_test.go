package main

import (
	"io"
	"math"
	"strings"
	"testing"
)

// A figure with nothing behind it misses its goal, as a bad one does, and
// the summary line is the one the README quotes.
func TestScoreMissesAndLine(t *testing.T) {
	g := goals{exact: 99, recall: 99, precision: 99, p99: 3, shareErr: 5, elRecall: 99, elPrecision: 99, lat2x: 1, lat10x: 0.3}
	empty := &score{p99: math.NaN()}
	if miss := empty.misses(g, true); len(miss) < 5 {
		t.Errorf("an empty run misses only %v", miss)
	}
	good := &score{probes: 100, exact: 100, changes: 10, found: 10, events: 10, p50: 0.5, p99: 1, elTruth: 10, elFound: 10,
		elRecords: 10, elTrue: 10, lat2s: []float64{0.4, 0.6}, lat10s: []float64{0.1, 0.2}}
	if miss := good.misses(g, true); len(miss) != 0 {
		t.Errorf("a good run misses %v", miss)
	}
	good.exact = 98
	if miss := good.misses(g, true); len(miss) != 1 || !strings.Contains(miss[0], "paths exact 98.00") {
		t.Errorf("98 %% exact: %v", miss)
	}
	if miss := good.misses(g, false); len(miss) != 0 {
		t.Errorf("paths not scored, yet %v", miss)
	}
	want := "quality: paths exact 98.0% of 100 probes, pathchange recall 100.0% precision 100.0% (10 changes), detection p50 0.50 s p99 1.00 s, ECMP share error max 0.0 pt, elephants recall 100.0% precision 100.0%"
	if got := good.line(); got != want {
		t.Errorf("line\n got %s\nwant %s", got, want)
	}
	if q := quantile([]float64{1, 2, 3, 4}, 0.5); q != 2 {
		t.Errorf("median of 1..4: %g", q)
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-duration", "10s"}, io.Discard); err == nil || !strings.Contains(err.Error(), "at least 30s") {
		t.Errorf("-duration 10s: %v", err)
	}
	o, err := parseFlags([]string{"-duration", "2m", "-sampling", "10000", "-score-paths=false"}, io.Discard)
	if err != nil || o.sampling != 10000 || o.scorePaths {
		t.Errorf("%+v %v", o, err)
	}
}
