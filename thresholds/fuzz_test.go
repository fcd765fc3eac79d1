package thresholds

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzParse: any PUT body is a threshold or an error, never a panic; a
// threshold has what Parse promises, and reads back the same after
// GET's JSON.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"metric":"elephant","value":12500000,"byFlow":true,"timeout":10,"confidence":0.99}`,
		`{"metric":"ifinutilization","value":80,"filter":{"ifspeed":[1e9],"agent":["192.0.2.1"]}}`,
		`{"metric":"x","value":1,"timeout":-5}`,
		`{"metric":"","value":1}`,
		`{"value":1,"unknown":true}`,
		`null`, `[]`, `{"metric":"x","value":1e400}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		th, err := Parse(body)
		if err != nil {
			return
		}
		if th.Metric == "" || th.Timeout < 0 {
			t.Fatalf("%s: parsed %+v, with no metric or a negative timeout", body, th)
		}
		if th.Confidence != 0 && (!th.ByFlow || th.Confidence < 0.5 || th.Confidence > 0.9999) {
			t.Fatalf("%s: parsed confidence %v (byFlow %v)", body, th.Confidence, th.ByFlow)
		}
		out, err := json.Marshal(th)
		if err != nil {
			return // a value JSON cannot carry (NaN cannot come from JSON; kept for safety)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: its own JSON %s does not parse: %v", body, out, err)
		}
		if !reflect.DeepEqual(back, th) {
			t.Fatalf("%s: read back %+v, want %+v", body, back, th)
		}
	})
}
