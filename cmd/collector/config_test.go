package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/flows"
)

func TestConfigFileFlagsWinAndPrintConfigRoundTrips(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "collector.toml")
	os.WriteFile(conf, []byte(`
sflow = "127.0.0.1:16343"
http = "127.0.0.1:18008"
bgp-accept = "10.255.0.0/16"
max-flows = 5000
readonly = true
retain = "48h"

[flows.elephant]
keys = "node:inputifindex,ipsource,ipdestination,ipttl"
value = "bytes"

[thresholds.elephant]
metric = "elephant"
value = 12500000
byFlow = true
`), 0o644)
	o, err := parseFlags([]string{"-config", conf, "-http", "127.0.0.1:28008"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sflow != "127.0.0.1:16343" || o.http != "127.0.0.1:28008" || o.maxFlows != 5000 || !o.readOnly ||
		o.bgpAccept != "10.255.0.0/16" || o.retain.Hours() != 48 || o.define != "" {
		t.Fatalf("options %+v", o)
	}
	// The definitions stay in memory: no temporary -define file.
	if b := configDefinitions(o.configDefs); !bytes.Contains(b, []byte(`"byFlow":true`)) || !bytes.Contains(b, []byte(`ipttl`)) {
		t.Errorf("definitions from the file: %s", b)
	}
	if tmp, _ := filepath.Glob(filepath.Join(os.TempDir(), "fabrictrace-define-*.json")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	var printed bytes.Buffer
	printConfig(&printed, o.fs, o.configDefs)
	again := filepath.Join(dir, "again.toml")
	os.WriteFile(again, printed.Bytes(), 0o644)
	o2, err := parseFlags([]string{"-config", again}, io.Discard)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, printed.String())
	}
	var printed2 bytes.Buffer
	printConfig(&printed2, o2.fs, o2.configDefs)
	if printed.String() != printed2.String() || !strings.Contains(printed.String(), "[thresholds.elephant]") {
		t.Errorf("print-config does not round-trip, definitions and all:\n%s\n---\n%s", printed.String(), printed2.String())
	}

	// Errors give the file, the line and the key, and say what was wanted.
	for body, want := range map[string]string{
		"\ncolour = \"red\"":                 conf + `:2: unknown setting "colour"`,
		"sflow = ":                           conf + ":1:",
		"readonly = true\nmax-flows = \"x\"": conf + ":2: max-flows",
		"flows = 3":                          conf + ":1: flows: want a table",
	} {
		os.WriteFile(conf, []byte(body), 0o644)
		if _, err := parseFlags([]string{"-config", conf}, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want it to say %s", body, err, want)
		}
	}
}

func TestPrintConfigHidesTheToken(t *testing.T) {
	o, err := parseFlags([]string{"-token", "s3cret"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printConfig(&b, o.fs, nil)
	if strings.Contains(b.String(), "s3cret") || !strings.Contains(b.String(), `token = "(set)"`) {
		t.Errorf("print-config:\n%s", b.String())
	}
}

// The config that make install ships loads as it is.
func TestShippedConfigLoads(t *testing.T) {
	o, err := parseFlags([]string{"-config", "../../packaging/collector.toml"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.sflow != ":6343" || o.bgpASN != 65000 || len(o.configDefs) == 0 {
		t.Errorf("options %+v", o)
	}
}

// A definition in the -config file that does not apply is named by the
// file, not by a temporary one.
func TestConfigDefinitionErrorsNameTheFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "collector.toml")
	os.WriteFile(conf, []byte("[flows.bad]\nkeys = \"nosuchkey\"\n"), 0o644)
	o, err := parseFlags([]string{"-config", conf}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = applyDefinitions("-config "+o.config, configDefinitions(o.configDefs), mustEngine(t, flows.Config{}))
	if err == nil || !strings.HasPrefix(err.Error(), "-config "+conf+`: flow "bad"`) {
		t.Errorf("err %v", err)
	}
}
