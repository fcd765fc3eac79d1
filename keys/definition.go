package keys

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

// Split returns the list's keys, keeping bracketed commas.
func (k KeyList) Split() []string {
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

// Normalize applies sFlow-RT's defaults to fields left zero (or absent
// from a PUT body), and its clamps.
func (d *Definition) Normalize() {
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

// ValueKind is what a flow counts per sample.
type ValueKind int

const (
	ValueBytes ValueKind = iota
	ValueFrames
	ValueBits
)

func ParseValue(v string) (ValueKind, error) {
	switch v {
	case "bytes":
		return ValueBytes, nil
	case "frames", "fps":
		return ValueFrames, nil
	case "bps":
		return ValueBits, nil
	}
	if v == "requests" || v == "duration" {
		return 0, fmt.Errorf("value %q needs HTTP request records (0:2206), which fabrictrace does not decode; want bytes, frames, bps or fps", v)
	}
	return 0, fmt.Errorf("value %q: want bytes, frames, bps or fps", v)
}

// Plan is a compiled definition: what its samples are keyed, filtered
// and counted by.
type Plan struct {
	Name   string
	Def    Definition
	Keys   []Token
	Filter Filter
	Value  ValueKind
	Values []ExtraValue
	Tau    float64 // seconds
	// AgentMode merges an agent's data sources into one table (aggMode AGENT).
	AgentMode bool
	// Pair: its keys hold ipsource and ipdestination, so an engine sharded
	// by address pair can keep each of its flows in one shard.
	Pair    bool
	Dropped bool // keys discarded-packet events, not samples
}

// ExtraValue is one of the definition's values: avg:key, count:key, or a
// plain value.
type ExtraValue struct {
	Kind  ValueKind
	Avg   *Token // avg:key averages the key's number over the flow's samples
	Count *Token // count:key estimates how many distinct values the key took
}

func Compile(name string, d Definition) (*Plan, error) {
	d.Normalize()
	p := &Plan{Name: name, Def: d, Tau: d.T}
	var err error
	if p.Value, err = ParseValue(d.Value); err != nil {
		return nil, err
	}
	if len(d.Keys) > MaxExprLen {
		return nil, fmt.Errorf("keys of %d bytes: %w", len(d.Keys), ErrTooLong)
	}
	keys := d.Keys.Split()
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("keys: %d keys, at most %d", len(keys), MaxKeys)
	}
	var src, dst bool
	for _, k := range keys {
		t, err := CompileKey(k)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		p.Keys = append(p.Keys, t)
		src, dst = src || t.Text == "ipsource", dst || t.Text == "ipdestination"
	}
	p.Pair = src && dst
	p.Dropped = d.Dropped
	for _, v := range d.Values.Split() {
		ev, err := compileExtraValue(v)
		if err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
		p.Values = append(p.Values, ev)
	}
	if len(p.Values) > MaxValues {
		return nil, fmt.Errorf("values: %d values, at most %d", len(p.Values), MaxValues)
	}
	if d.Filter != nil {
		if p.Filter, err = CompileFilter(*d.Filter); err != nil {
			return nil, err
		}
	}
	switch strings.ToUpper(d.AggMode) {
	case "":
	case "AGENT":
		p.AgentMode = true
	default:
		return nil, fmt.Errorf("aggMode %q: want AGENT or nothing", d.AggMode)
	}
	return p, nil
}

const (
	MaxKeys   = 12
	MaxValues = 4
)

func compileExtraValue(v string) (ExtraValue, error) {
	if k, ok := strings.CutPrefix(v, "avg:"); ok {
		t, err := CompileKey(k)
		if err != nil {
			return ExtraValue{}, err
		}
		return ExtraValue{Avg: &t}, nil
	}
	if k, ok := strings.CutPrefix(v, "count:"); ok {
		t, err := CompileKey(k)
		if err != nil {
			return ExtraValue{}, err
		}
		return ExtraValue{Count: &t}, nil
	}
	kind, err := ParseValue(v)
	return ExtraValue{Kind: kind}, err
}
