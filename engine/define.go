package engine

import (
	"encoding/json"
	"fmt"

	"github.com/fabrictrace/fabrictrace/api"
	"github.com/fabrictrace/fabrictrace/keys"
	"github.com/fabrictrace/fabrictrace/thresholds"
)

// ApplyDefinition applies a REST PUT body of a kind (flow, threshold,
// group, map, topology): for a -define file, what a store kept, and what a
// cluster's definitions bucket holds.
func (e *Engine) ApplyDefinition(kind, name string, body []byte) error {
	switch kind {
	case "flow":
		d, err := keys.ParseDefinition(body)
		if err != nil {
			return err
		}
		return e.SetFlow(name, d)
	case "threshold":
		t, err := thresholds.Parse(body)
		if err != nil {
			return err
		}
		return e.SetThreshold(name, t)
	case "group":
		return e.SetGroup(name, body)
	case "map":
		return e.SetMap(name, body)
	case "topology":
		var doc api.Topology
		if err := json.Unmarshal(body, &doc); err != nil {
			return err
		}
		return e.SetTopology(doc)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

// RemoveDefinition undoes a definition of a kind, as a REST DELETE does
// (the topology: an empty one).
func (e *Engine) RemoveDefinition(kind, name string) error {
	switch kind {
	case "flow":
		return e.DeleteFlow(name)
	case "threshold":
		return e.DeleteThreshold(name)
	case "group":
		return e.DeleteGroup(name)
	case "map":
		return e.DeleteMap(name)
	case "topology":
		return e.SetTopology(api.Topology{})
	}
	return fmt.Errorf("unknown kind %q", kind)
}
