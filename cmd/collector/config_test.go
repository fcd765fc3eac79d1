package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		o.bgpAccept != "10.255.0.0/16" || o.retain.Hours() != 48 || o.define == "" {
		t.Fatalf("options %+v", o)
	}
	defer os.Remove(o.define)
	if b, _ := os.ReadFile(o.define); !bytes.Contains(b, []byte(`"byFlow":true`)) || !bytes.Contains(b, []byte(`ipttl`)) {
		t.Errorf("definitions from the file: %s", b)
	}

	var printed bytes.Buffer
	printConfig(&printed, o.fs)
	again := filepath.Join(dir, "again.toml")
	os.WriteFile(again, printed.Bytes(), 0o644)
	o2, err := parseFlags([]string{"-config", again}, io.Discard)
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, printed.String())
	}
	var printed2 bytes.Buffer
	printConfig(&printed2, o2.fs)
	if printed.String() != printed2.String() {
		t.Errorf("print-config does not round-trip:\n%s\n---\n%s", printed.String(), printed2.String())
	}

	for body, want := range map[string]string{
		`colour = "red"`:  `unknown setting "colour"`,
		`sflow = `:        "-config",
		`max-flows = "x"`: "max-flows",
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
	printConfig(&b, o.fs)
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
	defer os.Remove(o.define)
	if o.sflow != ":6343" || o.bgpASN != 65000 || o.define == "" {
		t.Errorf("options %+v", o)
	}
}
