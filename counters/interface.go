package counters

import (
	"math"

	"github.com/fabrictrace/fabrictrace/decode"
)

// Interface is a data source's last interface counters (0:1), and the
// rates between its last two counter samples, in sFlow-RT's metric names.
type Interface struct {
	At    float64 // when the last counter sample came, 0 for never
	Speed uint64  // bits per second
	Have  bool    // some counters came
	Name  string  // the port's name (0:1005), "" until one came
	raw   [nCounters]uint64
	rate  [nCounters]float64 // per second, between the last two samples
	// Static attributes of the interface.
	ifType, direction, status uint32
}

// The counters that become per-second rate metrics.
const (
	cInOctets = iota
	cOutOctets
	cInPkts
	cOutPkts
	cInDiscards
	cOutDiscards
	cInErrors
	cOutErrors
	nCounters
)

var counterNames = [nCounters]string{"ifinoctets", "ifoutoctets", "ifinpkts", "ifoutpkts",
	"ifindiscards", "ifoutdiscards", "ifinerrors", "ifouterrors"}

// Update takes a generic interface record that came at now (seconds).
func (c *Interface) Update(g *decode.GenericInterface, now float64) {
	raw := [nCounters]uint64{g.InOctets, g.OutOctets,
		uint64(g.InUcastPkts) + uint64(g.InMulticastPkts) + uint64(g.InBroadcastPkts),
		uint64(g.OutUcastPkts) + uint64(g.OutMulticastPkts) + uint64(g.OutBroadcastPkts),
		uint64(g.InDiscards), uint64(g.OutDiscards), uint64(g.InErrors), uint64(g.OutErrors)}
	if c.Have && now > c.At {
		dt := now - c.At
		for i := range raw {
			if raw[i] >= c.raw[i] { // a counter that went back (reset) gives no rate this time
				c.rate[i] = float64(raw[i]-c.raw[i]) / dt
			}
		}
	}
	c.At, c.Speed, c.raw, c.Have = now, g.IfSpeed, raw, true
	c.ifType, c.direction, c.status = g.IfType, g.IfDirection, g.IfStatus
}

// Metric returns one interface metric: a number, or a string for ifname
// and the status, and whether the interface has it.
func (c *Interface) Metric(name string, ifIndex uint32) (any, bool) {
	if !c.Have {
		return nil, false
	}
	for i, n := range counterNames {
		if n == name {
			return c.rate[i], true
		}
	}
	util := func(rate float64) float64 {
		if c.Speed == 0 {
			return 0
		}
		return math.Min(100*rate*8/float64(c.Speed), 100)
	}
	switch name {
	case "ifindex":
		return float64(ifIndex), true
	case "ifspeed":
		return float64(c.Speed), true
	case "iftype":
		return float64(c.ifType), true
	case "ifdirection":
		return float64(c.direction), true
	case "ifadminstatus":
		return updown(c.status&1 != 0), true
	case "ifoperstatus":
		return updown(c.status&2 != 0), true
	case "ifinutilization":
		return util(c.rate[cInOctets]), true
	case "ifoututilization":
		return util(c.rate[cOutOctets]), true
	case "ifname":
		if c.Name != "" {
			return c.Name, true
		}
	}
	return nil, false
}

func updown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
