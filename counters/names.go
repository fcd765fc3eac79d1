package counters

// Names lists every counter metric name: an interface's, then a host's.
var Names = append(append(counterNames[:], "ifindex", "ifspeed", "iftype", "ifdirection", "ifadminstatus",
	"ifoperstatus", "ifinutilization", "ifoututilization", "ifname", "host_name"), hostMetrics...)

var (
	counterSet = setOf(Names)
	hostSet    = setOf(hostMetrics)
)

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// IsCounter says whether name is a counter metric (an interface's or a
// host's), rather than a flow's.
func IsCounter(name string) bool { return counterSet[name] }

// IsHost says whether name is one of a host's metrics.
func IsHost(name string) bool { return hostSet[name] }
