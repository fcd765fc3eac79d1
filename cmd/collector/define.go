package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/engine"
)

// defineFile is what -define loads at start: the same bodies the REST API
// takes on PUT, by name.
type defineFile struct {
	Flows      map[string]json.RawMessage `json:"flows"`
	Thresholds map[string]json.RawMessage `json:"thresholds"`
	Groups     map[string]json.RawMessage `json:"groups"`
	Maps       map[string]json.RawMessage `json:"maps"`
	Topology   *api.Topology              `json:"topology"`
}

func loadDefinitions(name string, e *engine.Engine) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("-define: %w", err)
	}
	return applyDefinitions("-define "+name, b, e)
}

// applyDefinitions applies a -define document; errors begin with from.
func applyDefinitions(from string, b []byte, e *engine.Engine) error {
	return eachDefinition(from, b, func(kind, name string, body []byte) error { return e.ApplyDefinition(kind, name, body) })
}

// eachDefinition hands each definition of a -define document to apply,
// the topology first, then groups, maps, flows and thresholds (each
// refers to the ones before); errors begin with from.
func eachDefinition(from string, b []byte, apply func(kind, name string, body []byte) error) error {
	var f defineFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	if f.Topology != nil {
		body, err := json.Marshal(f.Topology)
		if err == nil {
			err = apply("topology", "", body)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
	}
	for _, set := range []struct {
		kind string
		defs map[string]json.RawMessage
	}{{"group", f.Groups}, {"map", f.Maps}, {"flow", f.Flows}, {"threshold", f.Thresholds}} {
		for n, raw := range set.defs {
			if err := apply(set.kind, n, raw); err != nil {
				return fmt.Errorf("%s: %s %q: %w", from, set.kind, n, err)
			}
		}
	}
	return nil
}

// logElephants logs each elephant as it starts and ends, so the log tells
// the story without a REST client.
func logElephants(ctx context.Context, e *engine.Engine, logger *slog.Logger) error {
	after := int64(0)
	for ctx.Err() == nil {
		recs := e.Elephants(ctx, after, 1000, time.Minute)
		for i := len(recs) - 1; i >= 0; i-- {
			r := recs[i]
			after = max(after, r.UpdateID)
			var owner []any
			if o := r.Owner; o != nil {
				owner = []any{"dst_host", o.Host, "dst_leaf", o.AnnouncedBy, "dst_prefix", o.Prefix}
			}
			if r.Active {
				switch r.Update {
				case "gone":
					if w := r.Owner.Was; w != nil {
						owner = []any{"dst_host", w.Host, "dst_leaf", w.AnnouncedBy, "dst_prefix", w.Prefix}
					}
					logger.Info("elephant's destination withdrawn: container gone", append([]any{"flow", r.FlowKey}, owner...)...)
				case "ownerback":
					logger.Info("elephant's destination announced again", append([]any{"flow", r.FlowKey}, owner...)...)
				case "start":
					logger.Info("elephant", append([]any{"flow", r.FlowKey, "threshold", r.ThresholdID,
						"at", r.Locations[0].FlowKey, "rate", r.Rate, "rate_low", r.RateLow, "rate_high", r.RateHigh}, owner...)...)
				}
				continue
			}
			logger.Info("elephant ended", "flow", r.FlowKey, "threshold", r.ThresholdID,
				"duration", time.Duration(r.Duration*float64(time.Second)).Round(time.Millisecond),
				"bytes", int64(r.Bytes), "peak", r.Peak, "locations", len(r.Locations))
		}
	}
	return nil
}

// logPathChanges logs each pathchange as it is raised: which 5-tuple, the
// old path and the new, and when it changed.
func logPathChanges(ctx context.Context, e *engine.Engine, logger *slog.Logger) error {
	after := int64(0)
	for ctx.Err() == nil {
		evs := e.Events(ctx, after, api.EventPathChange, 1000, time.Minute)
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			after = max(after, ev.EventID)
			logger.Info("path change", "flow", ev.FlowKey, "old", strings.Join(ev.OldPath, " "), "new", strings.Join(ev.NewPath, " "),
				"changed", time.UnixMilli(ev.ChangedAt).UTC().Format("15:04:05.0"))
		}
	}
	return nil
}
