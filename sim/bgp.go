package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/fabrictrace/fabrictrace/internal/bgplog"
)

// ContainerCommunity tags every container route a leaf announces, as
// ASN:1 of that leaf, so a RIB can be filtered to container routes.
const ContainerCommunity = 1

// Speaker is one embedded GoBGP speaker that connects from its own source
// address to a collector and announces host routes with an explicit next
// hop. Speakers uses one per leaf; tests use it as any BGP peer.
type Speaker struct {
	// HoldTime, in seconds, is what Connect offers [9: a dead collector is
	// noticed quickly]. A speaker sending a big table needs more, or its
	// own busy dump can outlast the timer.
	HoldTime uint64
	bgp      *server.BgpServer
	asn      uint32
	source   netip.Addr
}

// NewSpeaker starts a speaker for AS asn with the given router id,
// connecting from source to collector (AS collectorASN).
func NewSpeaker(ctx context.Context, asn uint32, routerID, source netip.Addr, collector netip.AddrPort, collectorASN uint32, log *slog.Logger) (*Speaker, error) {
	sp, err := NewSpeakerPaused(ctx, asn, routerID, source, log)
	if err != nil {
		return nil, err
	}
	if err := sp.Connect(ctx, collector, collectorASN); err != nil {
		sp.Stop()
		return nil, err
	}
	return sp, nil
}

// NewSpeakerPaused starts a speaker with no peer yet: routes announced
// before Connect go out as one table dump when the session comes up, which
// is how a load test builds a big table quickly.
func NewSpeakerPaused(ctx context.Context, asn uint32, routerID, source netip.Addr, log *slog.Logger) (*Speaker, error) {
	bs := server.NewBgpServer(server.LoggerOption(bgplog.New(log), nil))
	go bs.Serve()
	if err := bs.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: routerID.String(), ListenPort: -1}}); err != nil {
		bs.Stop()
		return nil, err
	}
	return &Speaker{bgp: bs, asn: asn, source: source}, nil
}

// Connect peers with the collector (AS collectorASN) from the speaker's
// source address.
func (sp *Speaker) Connect(ctx context.Context, collector netip.AddrPort, collectorASN uint32) error {
	afis := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family4, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: family6, Enabled: true}}}
	hold := sp.HoldTime
	if hold == 0 {
		hold = 9
	}
	return sp.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: collector.Addr().String(), PeerAsn: collectorASN,
			Description: "fabrictrace collector"},
		Transport: &api.Transport{LocalAddress: sp.source.String(), RemotePort: uint32(collector.Port())},
		// Retry every second, so a speaker finds a collector started after it.
		Timers:   &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: hold, KeepaliveInterval: hold / 3}},
		AfiSafis: afis,
	}})
}

// Announce announces prefix with next hop nextHop, tagged asn:1.
func (sp *Speaker) Announce(ctx context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	path, err := hostRoute(prefix, nextHop, sp.asn)
	if err != nil {
		return err
	}
	if _, err := sp.bgp.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("announce %s: %w", prefix, err)
	}
	return nil
}

// Withdraw withdraws prefix.
func (sp *Speaker) Withdraw(ctx context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	path, err := hostRoute(prefix, nextHop, sp.asn)
	if err != nil {
		return err
	}
	if err := sp.bgp.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{path}}); err != nil {
		return fmt.Errorf("withdraw %s: %w", prefix, err)
	}
	return nil
}

// Stop closes the session.
func (sp *Speaker) Stop() { sp.bgp.Stop() }

// Speakers are the leaves' BGP speakers: each an embedded GoBGP that
// connects from its own loopback address to the collector and announces the
// /32 and /128 of every container behind it, with the container's server as
// next hop, as a leaf that redistributes its ARP and ND tables does.
type Speakers struct {
	sim    *Sim
	log    *slog.Logger
	leaves map[*Node]*Speaker

	mu        sync.Mutex
	pending   []RouteChange
	wake      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	once      sync.Once
	following bool
}

var (
	family4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	family6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// StartSpeakers starts one speaker per leaf, peering with the collector's
// BGP listener at collector (AS collectorASN), and announces the containers
// alive now. Later container changes follow through Sim.OnRouteChange. Stop
// them with Stop.
func StartSpeakers(ctx context.Context, s *Sim, collector netip.AddrPort, collectorASN uint32, log *slog.Logger) (*Speakers, error) {
	sp := &Speakers{sim: s, log: log, leaves: map[*Node]*Speaker{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	for _, leaf := range s.fab.Leaves {
		speaker, err := NewSpeaker(ctx, leaf.ASN, leaf.Agent, leaf.BGPSource, collector, collectorASN, log.With("speaker", leaf.Name))
		if err != nil {
			sp.Stop()
			return nil, fmt.Errorf("bgp speaker %s: %w", leaf.Name, err)
		}
		sp.leaves[leaf] = speaker
	}
	for _, c := range s.Containers() {
		if err := sp.apply(ctx, RouteChange{Leaf: c.Server.Leaf, Container: c}); err != nil {
			sp.Stop()
			return nil, err
		}
	}
	s.OnRouteChange(sp.enqueue)
	sp.following = true
	go sp.follow()
	return sp, nil
}

// enqueue runs inside Sim.Step: it must not wait on GoBGP.
func (sp *Speakers) enqueue(rc RouteChange) {
	sp.mu.Lock()
	sp.pending = append(sp.pending, rc)
	sp.mu.Unlock()
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// follow hands container changes to the speakers until Stop.
func (sp *Speakers) follow() {
	defer close(sp.done)
	ctx := context.Background()
	for {
		select {
		case <-sp.quit:
			return
		case <-sp.wake:
		}
		sp.mu.Lock()
		batch := sp.pending
		sp.pending = nil
		sp.mu.Unlock()
		for _, rc := range batch {
			if err := sp.apply(ctx, rc); err != nil {
				sp.log.Warn("bgp speaker update failed", "leaf", rc.Leaf.Name, "container", rc.Container.Name, "err", err)
			}
		}
	}
}

func (sp *Speakers) apply(ctx context.Context, rc RouteChange) error {
	speaker := sp.leaves[rc.Leaf]
	c := rc.Container
	for _, r := range []struct{ addr, nextHop netip.Addr }{{c.Addr, c.Server.Agent}, {c.Addr6, c.Server.Agent6}} {
		prefix := netip.PrefixFrom(r.addr, r.addr.BitLen())
		var err error
		if rc.Withdraw {
			err = speaker.Withdraw(ctx, prefix, r.nextHop)
		} else {
			err = speaker.Announce(ctx, prefix, r.nextHop)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func hostRoute(prefix netip.Prefix, nextHop netip.Addr, asn uint32) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, err
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeCommunities([]uint32{asn<<16 | ContainerCommunity})}
	family := bgp.RF_IPv4_UC
	if prefix.Addr().Is4() {
		hop, err := bgp.NewPathAttributeNextHop(nextHop)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, hop)
	} else {
		family = bgp.RF_IPv6_UC
		hop, err := bgp.NewPathAttributeMpReachNLRI(family, []bgp.PathNLRI{{NLRI: nlri}}, nextHop)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, hop)
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs}, nil
}

// Stop closes every session; the collector sees each leaf go down.
func (sp *Speakers) Stop() {
	sp.once.Do(func() {
		close(sp.quit)
		if sp.following {
			<-sp.done
		}
		for _, speaker := range sp.leaves {
			speaker.Stop()
		}
	})
}
