package keys

import (
	"net/netip"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Env is what key functions read besides the sample: the string table
// their values are interned in, the RIB, the GeoIP database, the topology,
// and the named address groups and value maps. An engine owns one and
// fills it; like the engine's tables it has one writer at a time.
type Env struct {
	Strings   *Interner
	Routes    Routes    // bgp* keys and asn:; nil leaves them missing
	Countries Countries // country:; nil leaves it missing
	Places    Places    // node: and link:; nil: node: is the agent, link: missing
	Groups    Groups    // group:
	Maps      Maps      // map:

	scratch []byte        // text of one value being rendered
	concat  []byte        // concat:'s text
	u32     []uint32      // an AS path or communities being rendered
	quoted  decode.Packet // the packet an ICMP error quotes
}

// NewEnv returns an environment with an empty string table of the default
// cap.
func NewEnv() *Env { return &Env{Strings: NewInterner()} }

// Places names where a sample was seen, for node: and link:. They return
// interned string values (Env.StrValue).
type Places interface {
	Node(agent netip.Addr) Value
	Link(agent netip.Addr, port Value) Value
}

func (e *Env) node(agent netip.Addr) Value {
	if e.Places == nil {
		return e.Text(AddrValue(agent))
	}
	return e.Places.Node(agent)
}

func (e *Env) link(agent netip.Addr, port Value) Value {
	if e.Places == nil {
		return Value{}
	}
	return e.Places.Link(agent, port)
}
