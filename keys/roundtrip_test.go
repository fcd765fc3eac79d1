package keys_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fabrictrace/fabrictrace/keys"
)

// A definition marshals to a PUT body that parses back to it: an api node
// shares what it was given with the engines as JSON.
func TestDefinitionRoundTrip(t *testing.T) {
	for _, body := range []string{
		`{"keys":"ipsource,ipdestination","value":"bytes"}`,
		`{"keys":"node:inputifindex,ipsource,ipdestination,ipttl","value":"bps","filter":"ipprotocol=6","n":10,"t":2,"fs":";","log":true,"flowStart":true,"activeTimeout":5}`,
		`{"keys":"ipsource","value":"frames","values":"ipttl,bytes","aggMode":"sum"}`,
	} {
		d, err := keys.ParseDefinition([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := keys.ParseDefinition(b)
		if err != nil {
			t.Fatalf("%s: marshalled as %s: %v", body, b, err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Errorf("%s: marshalled as %s, parsed back as %+v, want %+v", body, b, back, d)
		}
	}
	// A definition made in Go (as the Prometheus export makes its flows)
	// leaves t 0 for its default, which a body's explicit 0 is not: what
	// is shared is the definition as an engine holds it, normalised.
	d := keys.Definition{Keys: keys.KeyList("ipsource,ipdestination"), Value: "bytes"}
	d.Normalize()
	b, _ := json.Marshal(d)
	if back, err := keys.ParseDefinition(b); err != nil || !reflect.DeepEqual(back, d) {
		t.Errorf("%+v marshalled as %s, parsed back as %+v (%v)", d, b, back, err)
	}
}
