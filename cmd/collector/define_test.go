package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/flows"
)

func TestDefineFileLoadsOrSaysWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		name := filepath.Join(dir, "define.json")
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return name
	}
	// The demo's own file must load.
	e := mustEngine(t, flows.Config{})
	if err := loadDefinitions("../../scripts/demo.json", e); err != nil {
		t.Fatalf("demo definitions: %v", err)
	}
	if len(e.FlowDefinitions()) != 3 || len(e.ThresholdDefinitions()) != 1 {
		t.Errorf("demo loaded %d flows and %d thresholds", len(e.FlowDefinitions()), len(e.ThresholdDefinitions()))
	}
	for body, want := range map[string]string{
		`{"flows":{"big":{"keys":"ipsource,nonsense"}}}`: `flow "big": invalid: keys: unknown key "nonsense"`,
		`{"thresholds":{"t":{"value":3}}}`:               `threshold "t"`,
		`{"flow":{}}`:                                    `unknown field "flow"`,
		`{"groups":{"g":{"inside":["10.0.0.0/33"]}}}`:    `group "g"`,
		`{"topology":{"links":{"l":{"node1":"a"}}}}`:     `want node1, port1, node2 and port2`,
		`{"flows":{"bad name!":{"keys":"ipsource"}}}`:    `letters, digits`,
	} {
		err := loadDefinitions(write(body), mustEngine(t, flows.Config{}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to say %s", body, err, want)
		}
	}
	if err := loadDefinitions(filepath.Join(dir, "missing.json"), e); err == nil || !strings.Contains(err.Error(), "-define") {
		t.Errorf("missing file: %v", err)
	}
}

// mustEngine is the collector's engine in two shards, as on a 2-core box.
func mustEngine(t testing.TB, cfg flows.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg, 2)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
