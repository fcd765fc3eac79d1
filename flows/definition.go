package flows

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Definition is a flow definition as sFlow-RT takes it on PUT /flow/{name}/json
// and returns it, with defaults applied, on GET.
type Definition struct {
	Keys          KeyList `json:"keys"`
	Value         string  `json:"value"`
	Values        KeyList `json:"values,omitempty"`
	Filter        *string `json:"filter"`
	N             int     `json:"n"`
	T             float64 `json:"t"`
	FS            string  `json:"fs"`
	Log           bool    `json:"log"`
	FlowStart     bool    `json:"flowStart"`
	ActiveTimeout int     `json:"activeTimeout"`
	AggMode       string  `json:"aggMode,omitempty"`
	// Dropped builds the flow from discarded-packet events (0:5), each one
	// packet, instead of packet samples; the key reason names why.
	Dropped bool `json:"dropped,omitempty"`
	// IPFIXCollectors are taken and kept, so a definition written for
	// sFlow-RT loads, but fabrictrace exports no IPFIX: IPFIXExported says
	// so on GET.
	IPFIXCollectors []string `json:"ipfixCollectors,omitempty"`
	IPFIXExported   *bool    `json:"ipfixExported,omitempty"`
}

// KeyList is a comma-separated list of keys that also accepts a JSON array,
// as sFlow-RT's setFlow does. Commas inside [ ] belong to a key function.
type KeyList string

func (k *KeyList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*k = KeyList(strings.Join(list, ","))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a string or an array of strings")
	}
	*k = KeyList(s)
	return nil
}

// split returns the list's keys, keeping bracketed commas.
func (k KeyList) split() []string {
	var out []string
	depth, start := 0, 0
	s := string(k)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" || len(out) > 0 {
		out = append(out, rest)
	}
	return out
}

// ParseDefinition reads a PUT body strictly enough to name a bad field.
func ParseDefinition(body []byte) (Definition, error) {
	var d Definition
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return d, fmt.Errorf("flow definition: %w", err)
	}
	d.N, d.T, d.ActiveTimeout = -1, -1, -1
	for field, v := range raw {
		var err error
		switch field {
		case "keys":
			err = json.Unmarshal(v, &d.Keys)
		case "value":
			err = json.Unmarshal(v, &d.Value)
		case "values":
			err = json.Unmarshal(v, &d.Values)
		case "filter":
			err = json.Unmarshal(v, &d.Filter)
		case "n":
			err = json.Unmarshal(v, &d.N)
		case "t":
			err = json.Unmarshal(v, &d.T)
		case "fs":
			err = json.Unmarshal(v, &d.FS)
		case "log":
			err = json.Unmarshal(v, &d.Log)
		case "flowStart":
			err = json.Unmarshal(v, &d.FlowStart)
		case "activeTimeout":
			err = json.Unmarshal(v, &d.ActiveTimeout)
		case "aggMode":
			err = json.Unmarshal(v, &d.AggMode)
		case "ipfixCollectors":
			err = json.Unmarshal(v, &d.IPFIXCollectors)
			if err == nil && len(d.IPFIXCollectors) > 0 {
				no := false
				d.IPFIXExported = &no
			}
		case "ipfixExported": // what GET said, PUT back
		case "dropped":
			err = json.Unmarshal(v, &d.Dropped)
		default:
			err = fmt.Errorf("unknown field")
		}
		if err != nil {
			return d, fmt.Errorf("flow definition field %q: %w", field, err)
		}
	}
	if _, ok := raw["t"]; ok && d.T == 0 {
		d.T = 0.2 // sFlow-RT clamps an explicit 0 to its minimum
	}
	return d, nil
}

// normalize applies sFlow-RT's defaults to fields left zero (or absent
// from a PUT body), and its clamps.
func (d *Definition) normalize() {
	if d.Value == "" {
		d.Value = "bytes"
	}
	if d.N <= 0 {
		d.N = 5
	}
	d.N = min(max(d.N, 5), 20)
	if d.T <= 0 {
		d.T = 2
	}
	d.T = math.Min(math.Max(d.T, 0.2), 600)
	if d.FS == "" {
		d.FS = ","
	}
	if d.ActiveTimeout <= 0 {
		d.ActiveTimeout = 60
	}
	if d.Filter != nil && strings.TrimSpace(*d.Filter) == "" {
		d.Filter = nil
	}
}

// valueKind is what a flow counts per sample.
type valueKind int

const (
	valueBytes valueKind = iota
	valueFrames
	valueBits
)

func parseValue(v string) (valueKind, error) {
	switch v {
	case "bytes":
		return valueBytes, nil
	case "frames", "fps":
		return valueFrames, nil
	case "bps":
		return valueBits, nil
	}
	if v == "requests" || v == "duration" {
		return 0, fmt.Errorf("value %q needs HTTP request records (0:2206), which fabrictrace does not decode; want bytes, frames, bps or fps", v)
	}
	return 0, fmt.Errorf("value %q: want bytes, frames, bps or fps", v)
}

// plan is a compiled definition.
type plan struct {
	name   string
	def    Definition
	keys   []token
	filter filter
	value  valueKind
	values []extraValue
	tau    float64 // seconds
	// burstLevel is a hundredth of the lowest byFlow threshold on the flow: a
	// sample that finds an entry below it starts a new burst. Set by rewire.
	burstLevel float64
	// agentMode merges an agent's data sources into one table (aggMode AGENT).
	agentMode bool
	// pair: its keys hold ipsource and ipdestination, so shards split it
	// by address pair (shard.go); spread: shards split it anyway, as no
	// threshold, log or value reads it (set by rewire).
	pair, spread bool
	dropped      bool // keys discarded-packet events, not samples

	table      *table       // set by Engine.rewire
	thresholds []*threshold // on this flow, set by Engine.rewire

}

// extraValue is one of the definition's values: avg:key, count:key, or a
// plain value.
type extraValue struct {
	kind  valueKind
	avg   *token // avg:key averages the key's number over the flow's samples
	count *token // count:key estimates how many distinct values the key took
}

func compile(name string, d Definition) (*plan, error) {
	d.normalize()
	p := &plan{name: name, def: d, tau: d.T}
	var err error
	if p.value, err = parseValue(d.Value); err != nil {
		return nil, err
	}
	if len(d.Keys) > maxExprLen {
		return nil, fmt.Errorf("keys of %d bytes: %w", len(d.Keys), ErrTooLong)
	}
	keys := d.Keys.split()
	if len(keys) > maxKeys {
		return nil, fmt.Errorf("keys: %d keys, at most %d", len(keys), maxKeys)
	}
	var src, dst bool
	for _, k := range keys {
		t, err := compileKey(k)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		p.keys = append(p.keys, t)
		src, dst = src || t.text == "ipsource", dst || t.text == "ipdestination"
	}
	p.pair = src && dst
	p.dropped = d.Dropped
	for _, v := range d.Values.split() {
		ev, err := compileExtraValue(v)
		if err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
		p.values = append(p.values, ev)
	}
	if len(p.values) > maxValues {
		return nil, fmt.Errorf("values: %d values, at most %d", len(p.values), maxValues)
	}
	if d.Filter != nil {
		if p.filter, err = compileFilter(*d.Filter); err != nil {
			return nil, err
		}
	}
	switch strings.ToUpper(d.AggMode) {
	case "":
	case "AGENT":
		p.agentMode = true
	default:
		return nil, fmt.Errorf("aggMode %q: want AGENT or nothing", d.AggMode)
	}
	return p, nil
}

const (
	maxKeys   = 12
	maxValues = 4
)

func compileExtraValue(v string) (extraValue, error) {
	if k, ok := strings.CutPrefix(v, "avg:"); ok {
		t, err := compileKey(k)
		if err != nil {
			return extraValue{}, err
		}
		return extraValue{avg: &t}, nil
	}
	if k, ok := strings.CutPrefix(v, "count:"); ok {
		t, err := compileKey(k)
		if err != nil {
			return extraValue{}, err
		}
		return extraValue{count: &t}, nil
	}
	kind, err := parseValue(v)
	return extraValue{kind: kind}, err
}
