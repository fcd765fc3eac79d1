package flows

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// maxMapValues bounds one map's values: a map is defined by a write, and
// every value is a string held in memory.
const maxMapValues = 100_000

// valueMaps are sFlow-RT's maps (PUT /map/{name}/json): map name -> a key
// value's text -> its label, for the map: key function.
type valueMaps struct {
	byName  map[string]map[string]string
	doc     map[string]map[string][]string
	scratch []byte // a value's text, to look it up
}

func (m *valueMaps) init() {
	m.byName = map[string]map[string]string{}
	m.doc = map[string]map[string][]string{}
}

// SetMap installs a map: {"label":["value",...],...}, e.g.
// {"web":["80","443"]}; map:tcpdestinationport:NAME then keys port 443 as
// web. A value listed under two labels is an error.
func (e *Engine) SetMap(name string, body []byte) error {
	if err := validName(name); err != nil {
		return err
	}
	var doc map[string][]string
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%w: map: want {\"label\":[\"value\",...]}: %w", ErrInvalid, err)
	}
	byValue := map[string]string{}
	for label, values := range doc {
		for _, v := range values {
			if was, ok := byValue[v]; ok && was != label {
				return fmt.Errorf("%w: map %s: value %q under both %q and %q", ErrInvalid, name, v, was, label)
			}
			byValue[v] = label
		}
		if len(byValue) > maxMapValues {
			return fmt.Errorf("%w: map %s: over %d values", ErrInvalid, name, maxMapValues)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.maps.byName[name] = byValue
	e.maps.doc[name] = doc
	return nil
}

// Map returns one map's document.
func (e *Engine) Map(name string) (map[string][]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	doc, ok := e.maps.doc[name]
	if !ok {
		return nil, fmt.Errorf("map %q: %w", name, ErrNotFound)
	}
	return doc, nil
}

// DeleteMap removes a map; map: keys on it go missing.
func (e *Engine) DeleteMap(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.maps.doc[name]; !ok {
		return fmt.Errorf("map %q: %w", name, ErrNotFound)
	}
	delete(e.maps.doc, name)
	delete(e.maps.byName, name)
	return nil
}

// Maps returns every map.
func (e *Engine) Maps() map[string]map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]map[string][]string, len(e.maps.doc))
	for k, v := range e.maps.doc {
		out[k] = v
	}
	return out
}

// map:K:NAME[:NAME...] is the label of K's value in the first map that
// lists it; missing when none does.
func mapFunc(args []string) (extractor, bool, error) {
	return labelFunc(args, "map:key:mapname[:mapname...]", func(s *sample, v value, name string) (string, bool) {
		m := &s.e.maps
		m.scratch = v.appendText(m.scratch[:0], s.e.strings)
		label, ok := m.byName[name][string(m.scratch)]
		return label, ok
	})
}

// asn:K is the origin AS of the route the RIB holds for address K (with
// -bgp-all-prefixes, for any address of a full table); missing without one.
func asnFunc(args []string) (extractor, bool, error) {
	return addrFunc(args, "asn:ipsource or asn:ipdestination", func(s *sample, a netip.Addr) value {
		if s.e.cfg.Routes == nil {
			return value{}
		}
		r, ok := s.e.cfg.Routes.RouteOf(a)
		if !ok || len(r.ASPath) == 0 {
			return value{}
		}
		return numValue(uint64(r.ASPath[len(r.ASPath)-1]))
	})
}
