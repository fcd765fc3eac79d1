package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/fabrictrace/fabrictrace/internal/bgplog"
)

// ContainerCommunity tags every container route a leaf announces, as
// ASN:1 of that leaf, so a RIB can be filtered to container routes.
const ContainerCommunity = 1

// Speakers are the leaves' BGP speakers: each an embedded GoBGP that
// connects from its own loopback address to the collector and announces the
// /32 and /128 of every container behind it, with the container's server as
// next hop, as a leaf that redistributes its ARP and ND tables does.
type Speakers struct {
	sim    *Sim
	log    *slog.Logger
	leaves map[*Node]*server.BgpServer

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
	sp := &Speakers{sim: s, log: log, leaves: map[*Node]*server.BgpServer{},
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	for _, leaf := range s.fab.Leaves {
		bs := server.NewBgpServer(server.LoggerOption(bgplog.New(log.With("speaker", leaf.Name))))
		go bs.Serve()
		sp.leaves[leaf] = bs
		if err := sp.peer(ctx, bs, leaf, collector, collectorASN); err != nil {
			sp.Stop()
			return nil, fmt.Errorf("bgp speaker %s: %w", leaf.Name, err)
		}
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

func (sp *Speakers) peer(ctx context.Context, bs *server.BgpServer, leaf *Node, collector netip.AddrPort, asn uint32) error {
	err := bs.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: leaf.ASN, RouterId: leaf.Agent.String(), ListenPort: -1}})
	if err != nil {
		return err
	}
	afis := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family4, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: family6, Enabled: true}}}
	return bs.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: collector.Addr().String(), PeerAsn: asn,
			Description: "fabrictrace collector"},
		Transport: &api.Transport{LocalAddress: leaf.BGPSource.String(), RemotePort: uint32(collector.Port())},
		// Retry every second, so the speakers find a collector started after them.
		Timers:   &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis: afis,
	}})
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
	bs := sp.leaves[rc.Leaf]
	c := rc.Container
	for _, p := range []struct {
		family  *api.Family
		prefix  netip.Addr
		nextHop netip.Addr
	}{{family4, c.Addr, c.Server.Agent}, {family6, c.Addr6, c.Server.Agent6}} {
		path, err := hostRoute(p.family, p.prefix, p.nextHop, rc.Leaf.ASN)
		if err != nil {
			return err
		}
		if rc.Withdraw {
			err = bs.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.family, Path: path})
		} else {
			_, err = bs.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", map[bool]string{false: "announce", true: "withdraw"}[rc.Withdraw], p.prefix, err)
		}
	}
	return nil
}

func hostRoute(family *api.Family, addr, nextHop netip.Addr, asn uint32) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: addr.String(), PrefixLen: uint32(addr.BitLen())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	community, err := anypb.New(&api.CommunitiesAttribute{Communities: []uint32{asn<<16 | ContainerCommunity}})
	if err != nil {
		return nil, err
	}
	var hop *anypb.Any
	if addr.Is4() {
		hop, err = anypb.New(&api.NextHopAttribute{NextHop: nextHop.String()})
	} else {
		hop, err = anypb.New(&api.MpReachNLRIAttribute{Family: family, NextHops: []string{nextHop.String()},
			Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: []*anypb.Any{origin, hop, community}}, nil
}

// Stop closes every session; the collector sees each leaf go down.
func (sp *Speakers) Stop() {
	sp.once.Do(func() {
		close(sp.quit)
		if sp.following {
			<-sp.done
		}
		for _, bs := range sp.leaves {
			bs.Stop()
		}
	})
}
