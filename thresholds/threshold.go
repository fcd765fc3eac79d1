// Package thresholds keeps sFlow-RT's thresholds: their definitions
// (PUT /threshold/{name}/json), and for each its arm state, which flows
// (byFlow) or data sources have fired and not yet re-armed, the events
// they raise, and, with a confidence, the evidence it merges over every hop
// that sees a flow. A byFlow threshold starts and ends elephants (package
// elephants).
//
// Its state lives beside the rate tables' entries (package tables), each of
// which holds what fired on it (Fired), so it is generic in the table's
// data source S; the engine that owns the tables says what it needs of a
// data source and of the clock through Env.
package thresholds

import (
	"encoding/json"
	"fmt"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/counters"
)

// Threshold is a threshold as sFlow-RT takes it on PUT /threshold/{name}/json.
type Threshold struct {
	Metric  string           `json:"metric"`
	Value   float64          `json:"value"`
	ByFlow  bool             `json:"byFlow"`
	Timeout int              `json:"timeout"`
	Filter  map[string][]any `json:"filter,omitempty"`
	// Confidence, fabrictrace's own (0.5 to 0.9999, 0 for none), makes a
	// byFlow threshold judge a flow on the evidence of every hop that saw
	// it: it fires when the lower bound of the merged rate, at this
	// confidence, is over the value, and re-arms on the upper bound.
	Confidence float64 `json:"confidence,omitempty"`
}

// Parse reads a PUT body, naming any bad field.
func Parse(body []byte) (Threshold, error) {
	var t Threshold
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return t, fmt.Errorf("threshold: %w", err)
	}
	t.Timeout = -1
	for field, v := range raw {
		var err error
		switch field {
		case "metric":
			err = json.Unmarshal(v, &t.Metric)
		case "value":
			err = json.Unmarshal(v, &t.Value)
		case "byFlow":
			err = json.Unmarshal(v, &t.ByFlow)
		case "timeout":
			err = json.Unmarshal(v, &t.Timeout)
		case "filter":
			err = json.Unmarshal(v, &t.Filter)
		case "confidence":
			if err = json.Unmarshal(v, &t.Confidence); err == nil && (t.Confidence < 0.5 || t.Confidence > 0.9999) {
				err = fmt.Errorf("%v: want 0.5 to 0.9999, such as 0.99", t.Confidence)
			}
		default:
			err = fmt.Errorf("unknown field")
		}
		if err != nil {
			return t, fmt.Errorf("threshold field %q: %w", field, err)
		}
	}
	if t.Metric == "" {
		return t, fmt.Errorf("threshold field %q: required", "metric")
	}
	if _, ok := raw["value"]; !ok {
		return t, fmt.Errorf("threshold field %q: required", "value")
	}
	if t.Timeout < 0 {
		t.Timeout = 60
	}
	if t.Confidence != 0 && !t.ByFlow {
		return t, fmt.Errorf("threshold field %q: applies to byFlow thresholds only", "confidence")
	}
	for attr := range t.Filter {
		if _, ok := sourceAttrs[attr]; !ok && !counters.IsCounter(attr) {
			return t, fmt.Errorf("threshold field %q: attribute %q: want agent, host_name or a counter metric (ifspeed, ifindex, ifname, iftype, ifoperstatus...)", "filter", attr)
		}
	}
	return t, nil
}

// sourceAttrs are the data-source attributes a threshold filter can test
// besides counter metrics (Env.Attr gives their values).
var sourceAttrs = map[string]bool{"ifspeed": true, "ifindex": true, "agent": true, "host_name": true}

// Builtin says whether a threshold id names one of fabrictrace's own events.
func Builtin(thresholdID string) bool {
	return thresholdID == api.EventPathChange || thresholdID == api.EventCollision
}
