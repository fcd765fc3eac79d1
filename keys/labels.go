package keys

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
)

// Groups are sFlow-RT's address groups (PUT /group/NAME/json), by name,
// for the group: key function.
type Groups struct{ named[*Group] }

// Group is one address group: labels and the CIDRs that have them.
type Group struct {
	doc  map[string][]string
	list []labelled // longest prefix first
}

type labelled struct {
	prefix netip.Prefix
	label  string
}

// Doc is the group's document, as it was put.
func (g *Group) Doc() map[string][]string { return g.doc }

// CompileGroup reads a group's document: {"label":["10.0.0.0/8",...],...};
// a bare address is its own /32 or /128.
func CompileGroup(name string, body []byte) (*Group, error) {
	var doc map[string][]string
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("group: want {\"label\":[\"CIDR\",...]}: %w", err)
	}
	g := &Group{doc: doc}
	for label, cidrs := range doc {
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				a, aerr := netip.ParseAddr(c)
				if aerr != nil {
					return nil, fmt.Errorf("group %s label %s: %w", name, label, err)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			g.list = append(g.list, labelled{p.Masked(), label})
		}
	}
	sort.SliceStable(g.list, func(i, j int) bool { return g.list[i].prefix.Bits() > g.list[j].prefix.Bits() })
	return g, nil
}

// Label is the label of the group's longest prefix that holds a.
func (gs *Groups) Label(name string, a netip.Addr) (string, bool) {
	if g := gs.m[name]; g != nil {
		for _, l := range g.list {
			if l.prefix.Contains(a) {
				return l.label, true
			}
		}
	}
	return "", false
}

// MaxMapValues bounds one map's values: a map is defined by a write, and
// every value is a string held in memory.
const MaxMapValues = 100_000

// Maps are sFlow-RT's maps (PUT /map/NAME/json), by name, for the map: key
// function.
type Maps struct {
	named[*Map]
	scratch []byte // a value's text, to look it up
}

// Map labels a key value's text.
type Map struct {
	doc     map[string][]string
	byValue map[string]string
}

// Doc is the map's document, as it was put.
func (m *Map) Doc() map[string][]string { return m.doc }

// CompileMap reads a map's document: {"label":["value",...]}, e.g.
// {"web":["80","443"]}; map:tcpdestinationport:NAME then keys port 443 as
// web. A value listed under two labels is an error.
func CompileMap(name string, body []byte) (*Map, error) {
	var doc map[string][]string
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("map: want {\"label\":[\"value\",...]}: %w", err)
	}
	m := &Map{doc: doc, byValue: map[string]string{}}
	for label, values := range doc {
		for _, v := range values {
			if was, ok := m.byValue[v]; ok && was != label {
				return nil, fmt.Errorf("map %s: value %q under both %q and %q", name, v, was, label)
			}
			m.byValue[v] = label
		}
		if len(m.byValue) > MaxMapValues {
			return nil, fmt.Errorf("map %s: over %d values", name, MaxMapValues)
		}
	}
	return m, nil
}

// Label is the label the named map gives v's text.
func (ms *Maps) Label(name string, v Value, in *Interner) (string, bool) {
	m := ms.m[name]
	if m == nil {
		return "", false
	}
	ms.scratch = v.AppendText(ms.scratch[:0], in)
	label, ok := m.byValue[string(ms.scratch)]
	return label, ok
}

// named holds documents by name, each compiled.
type named[T interface{ Doc() map[string][]string }] struct {
	m map[string]T
}

// Put installs (or replaces) one.
func (n *named[T]) Put(name string, t T) {
	if n.m == nil {
		n.m = map[string]T{}
	}
	n.m[name] = t
}

// Doc returns one's document.
func (n *named[T]) Doc(name string) (map[string][]string, bool) {
	t, ok := n.m[name]
	if !ok {
		return nil, false
	}
	return t.Doc(), true
}

// Delete removes one, and says whether it was there.
func (n *named[T]) Delete(name string) bool {
	_, ok := n.m[name]
	delete(n.m, name)
	return ok
}

// Docs returns every document by name.
func (n *named[T]) Docs() map[string]map[string][]string {
	out := make(map[string]map[string][]string, len(n.m))
	for k, t := range n.m {
		out[k] = t.Doc()
	}
	return out
}

// group:K:NAME[:NAME...] labels K's address by the first address group
// with a matching CIDR.
func groupFunc(args []string) (Extractor, bool, error) {
	return labelFunc(args, "group:key:groupname[:groupname...]", func(s *Sample, v Value, name string) (string, bool) {
		if !v.IsAddr() {
			return "", false
		}
		return s.Env.Groups.Label(name, v.Addr())
	})
}

// map:K:NAME[:NAME...] is the label of K's value in the first map that
// lists it; missing when none does.
func mapFunc(args []string) (Extractor, bool, error) {
	return labelFunc(args, "map:key:mapname[:mapname...]", func(s *Sample, v Value, name string) (string, bool) {
		return s.Env.Maps.Label(name, v, s.Env.Strings)
	})
}

// asn:K is the origin AS of the route the RIB holds for address K (with
// -bgp-all-prefixes, for any address of a full table); missing without one.
func asnFunc(args []string) (Extractor, bool, error) {
	return addrFunc(args, "asn:ipsource or asn:ipdestination", func(s *Sample, a netip.Addr) Value {
		if s.Env.Routes == nil {
			return Value{}
		}
		r, ok := s.Env.Routes.RouteOf(a)
		if !ok || len(r.ASPath) == 0 {
			return Value{}
		}
		return NumValue(uint64(r.ASPath[len(r.ASPath)-1]))
	})
}
