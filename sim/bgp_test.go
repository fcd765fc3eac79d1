package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/fabrictrace/fabrictrace/internal/bgplog"
)

var (
	family4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	family6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// learner is a passive GoBGP peer of each leaf, by its address and AS, that
// records the routes each neighbour announces. (Peers of any AS from a
// range would do, as the collector takes them, but GoBGP v4.8.0 races on
// such a peer's config when one goes down while another's routes move.)
type learner struct {
	mu      sync.Mutex
	routes  map[string]map[netip.Prefix]netip.Addr // neighbour -> prefix -> next hop
	changed chan struct{}
}

func startLearner(t *testing.T, ctx context.Context, sm *Sim) (*learner, netip.AddrPort) {
	t.Helper()
	l := &learner{routes: map[string]map[netip.Prefix]netip.Addr{}, changed: make(chan struct{}, 1)}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := server.NewBgpServer(server.LoggerOption(bgplog.New(logger), nil))
	go s.Serve()
	t.Cleanup(s.Stop)
	port := freeTCPPort(t)
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "10.255.255.1",
		ListenPort: int32(port), ListenAddresses: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	// As the collector does: nothing enters the global table.
	if err := s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT}}); err != nil {
		t.Fatal(err)
	}
	afis := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family4, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: family6, Enabled: true}}}
	for _, leaf := range sm.fab.Leaves {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: leaf.BGPSource.String(), PeerAsn: leaf.ASN},
			Transport: &api.Transport{PassiveMode: true}, AfiSafis: afis,
			ApplyPolicy: &api.ApplyPolicy{ExportPolicy: &api.PolicyAssignment{DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT}}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Update events carry no withdrawals when a session drops: a peer
	// leaving Established takes its routes with it.
	wake := func() {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
	err := s.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if st := ev.Peer.State; ev.Type == apiutil.PEER_EVENT_STATE && st.SessionState != bgp.BGP_FSM_ESTABLISHED {
				l.mu.Lock()
				delete(l.routes, st.NeighborAddress.String())
				l.mu.Unlock()
				wake()
			}
		},
		OnPathUpdate: func(paths []*apiutil.Path, _ time.Time) {
			l.mu.Lock()
			for _, p := range paths {
				pfx := netip.MustParsePrefix(p.Nlri.String())
				peer := p.PeerAddress.String()
				if l.routes[peer] == nil {
					l.routes[peer] = map[netip.Prefix]netip.Addr{}
				}
				if p.Withdrawal {
					delete(l.routes[peer], pfx)
					continue
				}
				var nh netip.Addr
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *bgp.PathAttributeNextHop:
						nh = a.Value
					case *bgp.PathAttributeMpReachNLRI:
						nh = a.Nexthop
					}
				}
				l.routes[peer][pfx] = nh.Unmap()
			}
			l.mu.Unlock()
			wake()
		},
	}, server.WatchUpdate(true, "", ""), server.WatchPeer())
	if err != nil {
		t.Fatal(err)
	}
	return l, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor waits, woken by each change, until ok holds or the deadline.
func (l *learner) waitFor(t *testing.T, what string, ok func(map[string]map[netip.Prefix]netip.Addr) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		done := ok(l.routes)
		l.mu.Unlock()
		if done {
			return
		}
		select {
		case <-l.changed:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("timed out waiting for %s; learner holds %v", what, l.routes)
		}
	}
}

func TestSpeakersAnnounceAndWithdrawContainers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(Config{Seed: 1, Mice: -1, ChurnEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, addr := startLearner(t, ctx, s)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sp, err := StartSpeakers(ctx, s, addr, 65000, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()

	// Each leaf announces its server's 3 containers: a /32 and a /128 each,
	// next hop the server.
	l.waitFor(t, "12 /32s and 12 /128s from 4 leaves", func(r map[string]map[netip.Prefix]netip.Addr) bool {
		for _, c := range s.Containers() {
			leaf := c.Server.Leaf.BGPSource.String()
			if r[leaf][netip.PrefixFrom(c.Addr, 32)] != c.Server.Agent ||
				r[leaf][netip.PrefixFrom(c.Addr6, 128)] != c.Server.Agent6 {
				return false
			}
		}
		return len(r) == 4
	})

	// Churn: one container goes, another comes; the learner follows.
	var changes []RouteChange
	s.OnRouteChange(func(rc RouteChange) { changes = append(changes, rc) })
	s.RunFor(time.Second+s.cfg.Tick, func([]byte) {})
	if len(changes) != 2 {
		t.Fatalf("%d route changes after one churn, want 2", len(changes))
	}
	gone, born := changes[0].Container, changes[1].Container
	l.waitFor(t, fmt.Sprintf("withdraw of %s and announce of %s", gone.Addr, born.Addr),
		func(r map[string]map[netip.Prefix]netip.Addr) bool {
			_, stale := r[gone.Server.Leaf.BGPSource.String()][netip.PrefixFrom(gone.Addr, 32)]
			_, stale6 := r[gone.Server.Leaf.BGPSource.String()][netip.PrefixFrom(gone.Addr6, 128)]
			nh := r[born.Server.Leaf.BGPSource.String()][netip.PrefixFrom(born.Addr, 32)]
			return !stale && !stale6 && nh == born.Server.Agent
		})

	// Stopping a speaker takes its session, and so its routes, down. One at
	// a time: GoBGP v4.8.0 races when two of its peers go down at once
	// (handleFSMMessage overwrites a config it has published).
	sp.Each(func(leaf *Node, speaker *Speaker) {
		speaker.Stop()
		l.waitFor(t, leaf.Name+"'s routes gone", func(r map[string]map[netip.Prefix]netip.Addr) bool {
			return len(r[leaf.BGPSource.String()]) == 0
		})
	})
	sp.Stop()
}
