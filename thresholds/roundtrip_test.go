package thresholds_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fabrictrace/fabrictrace/thresholds"
)

// A threshold marshals to a PUT body that parses back to it: an api node
// shares what it holds with the engines as JSON.
func TestThresholdRoundTrip(t *testing.T) {
	for _, body := range []string{
		`{"metric":"elephant","value":12500000,"byFlow":true,"timeout":10,"confidence":0.99}`,
		`{"metric":"ifinutilization","value":0.5,"filter":{"ifspeed":[10000000000]}}`,
		`{"metric":"client_bps","value":1e8,"byFlow":true}`,
	} {
		th, err := thresholds.Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		b, err := json.Marshal(th)
		if err != nil {
			t.Fatal(err)
		}
		back, err := thresholds.Parse(b)
		if err != nil {
			t.Fatalf("%s: marshalled as %s: %v", body, b, err)
		}
		if !reflect.DeepEqual(back, th) {
			t.Errorf("%s: marshalled as %s, parsed back as %+v, want %+v", body, b, back, th)
		}
	}
}
