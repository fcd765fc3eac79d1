package keys_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/decode"
	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
	"github.com/fabrictrace/fabrictrace/keys"
)

// A filter or key nested past the bound, or longer than it, is refused with
// an error that says so, at once: a 4 MiB filter of '(' once overflowed the
// stack and killed the collector, and 16k levels of null:[...] took 1.65 s.
func TestNestingAndLengthAreBounded(t *testing.T) {
	filter := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		def  keys.Definition
		want error
	}{
		{"32 levels of ( )", keys.Definition{Keys: "ipsource", Filter: filter(strings.Repeat("(", 32) + "ipsource=10.0.0.1" + strings.Repeat(")", 32))}, nil},
		{"33 levels of ( )", keys.Definition{Keys: "ipsource", Filter: filter(strings.Repeat("(", 33) + "ipsource=10.0.0.1" + strings.Repeat(")", 33))}, keys.ErrTooDeep},
		{"4 MiB of (", keys.Definition{Keys: "ipsource", Filter: filter(strings.Repeat("(", 4<<20-64) + "ipsource=1")}, keys.ErrTooLong},
		{"a 4 KiB filter of ( under the length cap", keys.Definition{Keys: "ipsource", Filter: filter(strings.Repeat("(", 4000) + "ipsource=1")}, keys.ErrTooDeep},
		{"32 levels of null:[ ]", keys.Definition{Keys: keys.KeyList(strings.Repeat("null:[", 31) + "ipsource" + strings.Repeat("]", 31))}, nil},
		{"33 levels of null:[ ]", keys.Definition{Keys: keys.KeyList(strings.Repeat("null:[", 33) + "ipsource" + strings.Repeat("]", 33))}, keys.ErrTooDeep},
		{"16k levels of null:[ ]", keys.Definition{Keys: keys.KeyList(strings.Repeat("null:[", 16384) + "ipsource" + strings.Repeat("]", 16384))}, keys.ErrTooLong},
		{"a deep key inside a filter", keys.Definition{Keys: "ipsource", Filter: filter(strings.Repeat("null:[", 40) + "ipsource" + strings.Repeat("]", 40) + "=1")}, keys.ErrTooDeep},
	} {
		start := time.Now()
		_, err := keys.Compile("x", c.def)
		took := time.Since(start)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if took > 100*time.Millisecond {
			t.Errorf("%s: %v to compile", c.name, took)
		}
	}
}

// FuzzDefinition compiles random keys and filters and runs what compiles
// on a sample: no input panics, and each compiles in bounded time (go test
// -fuzz runs each input under its own deadline and memory limit).
func FuzzDefinition(f *testing.F) {
	for _, s := range []string{"ipsource", "node:inputifindex,ipsource,ipdestination,ipttl", "null:[null:[ipsource]]",
		"(ipsource=10.0.0.0/8&tcpdestinationport=443)|ipprotocol=17", "concat:[a\\:b]:ipsource", "((((", "range:ipttl:1:64"} {
		f.Add(s, s)
	}
	var v sampleOf
	var dec decode.Decoder
	if _, err := dec.Decode(oneSample(sflowtest.SynAckFrame().Bytes(), decode.Port{Value: 5}), &v); err != nil {
		f.Fatal(err)
	}
	v.s.Env = keys.NewEnv()
	f.Fuzz(func(t *testing.T, ks, filter string) {
		start := time.Now()
		p, err := keys.Compile("f", keys.Definition{Keys: keys.KeyList(ks), Filter: &filter})
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%d-byte keys, %d-byte filter: %v to compile", len(ks), len(filter), d)
		}
		if err != nil {
			return
		}
		if p.Filter != nil {
			p.Filter.Match(&v.s)
		}
		for _, tok := range p.Keys {
			tok.Get(&v.s)
		}
	})
}
