package rib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/fabrictrace/fabrictrace/internal/bgplog"
)

// Config sets up the passive peer. Zero fields take the defaults in brackets.
type Config struct {
	Listen   string     // [":179"]
	ASN      uint32     // [65000]
	RouterID netip.Addr // [the listen address, or 10.255.255.254]
	// Accept lists the ranges any peer may connect from (dynamic neighbours).
	Accept []netip.Prefix
	// PeerASN, when not 0, is the only AS accepted from them.
	PeerASN uint32
	// Neighbors are peers configured one by one (passive, like the ranges).
	Neighbors []Neighbor
	// AllPrefixes keeps every prefix; by default only host routes (/32, /128).
	AllPrefixes bool
	// Gone, if set, hears of each prefix that lost its last route, from the
	// applier goroutine: it must return quickly.
	Gone   func(netip.Prefix)
	Logger *slog.Logger
}

// RIB is a passive BGP peer and the routes it learned. Lookups never take
// a lock; updates arrive in batches on one goroutine.
type RIB struct {
	cfg   Config
	bgp   *server.BgpServer
	table *table
	log   *slog.Logger

	mu        sync.Mutex
	pending   []change // queued by the watch for the applier
	spare     []change // the applier's last batch, emptied, for reuse
	neighbors map[netip.Addr]*Neighbor
	lists     map[string][]uint32 // shared AS paths and communities, by their bytes
	conv      converter           // the watch goroutine's
	watchBuf  []change            // the watch goroutine's
	scratch   []byte
	wake      chan struct{}
	quit      chan struct{}
	done      chan struct{}
	stop      context.CancelFunc
}

// Neighbor is a BGP peer's state, as /bgp/neighbors/json serves it.
type Neighbor struct {
	Address   netip.Addr `json:"address"`
	ASN       uint32     `json:"asn"`
	RouterID  netip.Addr `json:"routerId,omitzero"`
	State     string     `json:"state"`
	Since     time.Time  `json:"since"` // of the state
	Received  uint64     `json:"prefixesReceived"`
	Accepted  int        `json:"prefixesAccepted"` // held now
	Withdrawn uint64     `json:"prefixesWithdrawn"`
	Ignored   uint64     `json:"prefixesIgnored"` // not host routes, without AllPrefixes
	LastError string     `json:"lastError,omitempty"`
}

var (
	family4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	family6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// Start listens for BGP sessions and starts learning. Stop it with Close.
func Start(ctx context.Context, cfg Config) (*RIB, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":179"
	}
	if cfg.ASN == 0 {
		cfg.ASN = 65000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("bgp listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("bgp listen %q: want a port from 1 to 65535", cfg.Listen)
	}
	var listenAddrs []string
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("bgp listen %q: %w", cfg.Listen, err)
		}
		listenAddrs = []string{a.String()}
		if !cfg.RouterID.IsValid() && a.Is4() && !a.IsUnspecified() {
			cfg.RouterID = a
		}
	}
	if !cfg.RouterID.IsValid() {
		cfg.RouterID = netip.MustParseAddr("10.255.255.254")
	}
	// GoBGP binds in StartBgp and reports a refusal only in its log, so
	// find out first, with the error a person can act on.
	if err := probeListen(cfg.Listen); err != nil {
		return nil, err
	}
	r := &RIB{cfg: cfg, table: newTable(), log: cfg.Logger, neighbors: map[netip.Addr]*Neighbor{},
		lists: map[string][]uint32{},
		wake:  make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	r.bgp = server.NewBgpServer(server.LoggerOption(bgplog.New(cfg.Logger.With("component", "bgp")), nil))
	go r.bgp.Serve()
	if err := r.configure(ctx, int32(port), listenAddrs); err != nil {
		r.bgp.Stop()
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	// Each peer's Adj-RIB-In as UPDATEs arrive (before policy), and the
	// peers' states; a peer's routes going with its session are the
	// applier's to withdraw.
	err = r.bgp.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPathUpdate: r.watchPaths, OnPeerUpdate: r.watchPeer},
		server.WatchUpdate(true, "", ""), server.WatchPeer())
	if err != nil {
		stop()
		r.bgp.Stop()
		return nil, fmt.Errorf("bgp watch: %w", err)
	}
	go r.apply()
	r.log.Info("listening for BGP (passive)", "tcp", cfg.Listen, "asn", cfg.ASN, "router_id", cfg.RouterID,
		"accept", fmt.Sprint(cfg.Accept), "peer_asn", cfg.PeerASN, "host_routes_only", !cfg.AllPrefixes)
	return r, nil
}

func probeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("bgp: %w (port 179 needs root or CAP_NET_BIND_SERVICE; use a high port such as -bgp :1179 and point the peers at it)", err)
		}
		return fmt.Errorf("bgp: %w", err)
	}
	return ln.Close()
}

func (r *RIB) configure(ctx context.Context, port int32, addrs []string) error {
	if err := r.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: r.cfg.ASN,
		RouterId: r.cfg.RouterID.String(), ListenPort: port, ListenAddresses: addrs}}); err != nil {
		return fmt.Errorf("bgp start: %w", err)
	}
	// Nothing enters GoBGP's own RIB: the routes are read from each peer's
	// Adj-RIB-In as they arrive. A second copy in the global table, with
	// its best-path runs, would double the memory a full table costs.
	if err := r.bgp.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT, DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT}}); err != nil {
		return fmt.Errorf("bgp import policy: %w", err)
	}
	afis := []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family4, Enabled: true}},
		{Config: &api.AfiSafiConfig{Family: family6, Enabled: true}}}
	// Passive, multihop (the collector is rarely one hop from every leaf),
	// and it never announces anything.
	transport := &api.Transport{PassiveMode: true}
	multihop := &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	rejectAll := &api.ApplyPolicy{ExportPolicy: &api.PolicyAssignment{DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT}}
	for _, n := range r.cfg.Neighbors {
		if err := r.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN},
			Transport: transport, EbgpMultihop: multihop, AfiSafis: afis, ApplyPolicy: rejectAll}}); err != nil {
			return fmt.Errorf("bgp neighbor %s: %w", n.Address, err)
		}
	}
	if len(r.cfg.Accept) == 0 {
		return nil
	}
	if err := r.bgp.AddPeerGroup(ctx, &api.AddPeerGroupRequest{PeerGroup: &api.PeerGroup{
		Conf:      &api.PeerGroupConf{PeerGroupName: "accept", PeerAsn: r.cfg.PeerASN},
		Transport: transport, EbgpMultihop: multihop, AfiSafis: afis, ApplyPolicy: rejectAll,
	}}); err != nil {
		return fmt.Errorf("bgp peer group: %w", err)
	}
	for _, p := range r.cfg.Accept {
		if err := r.bgp.AddDynamicNeighbor(ctx, &api.AddDynamicNeighborRequest{DynamicNeighbor: &api.DynamicNeighbor{
			Prefix: p.String(), PeerGroup: "accept"}}); err != nil {
			return fmt.Errorf("bgp accept %s: %w", p, err)
		}
	}
	return nil
}

// watchPaths and watchPeer are GoBGP's callbacks, on its one watch
// goroutine. Its queue is unbounded, so they only convert and queue: the
// applier does the work.
func (r *RIB) watchPaths(paths []*apiutil.Path, now time.Time) {
	ops := r.watchBuf[:0]
	for _, p := range paths {
		pfx, rt, ok := r.conv.convert(p, now)
		if !ok {
			continue
		}
		ops = append(ops, change{prefix: pfx, route: rt, withdraw: p.Withdrawal})
	}
	r.queue(ops)
}

func (r *RIB) watchPeer(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := &ev.Peer.State
	r.peerState(st)
	if st.SessionState != bgp.BGP_FSM_ESTABLISHED && st.NeighborAddress.IsValid() {
		r.queue(append(r.watchBuf[:0], change{peerDown: st.NeighborAddress.Unmap()}))
	}
}

func (r *RIB) queue(ops []change) {
	r.watchBuf = ops
	if len(ops) == 0 {
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, ops...)
	r.mu.Unlock()
	clear(ops)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *RIB) peerState(st *apiutil.PeerState) {
	a := st.NeighborAddress.Unmap()
	if !a.IsValid() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.neighbors[a]
	if n == nil {
		n = &Neighbor{Address: a}
		r.neighbors[a] = n
	}
	if st.PeerASN != 0 {
		n.ASN = st.PeerASN
	}
	if id := st.RouterID.Unmap(); id.IsValid() && !id.IsUnspecified() {
		n.RouterID = id
	}
	// Why the last session ended: what the peer or GoBGP said, in words
	// ("hold timer expired", "notification received: ...").
	if msg := disconnectText(st); msg != "" {
		n.LastError = msg
	}
	state := stateName(st.SessionState)
	if state != n.State {
		// Sessions coming up and going down matter; the steps between do not.
		level := slog.LevelDebug
		if state == "established" || n.State == "established" {
			level = slog.LevelInfo
		}
		was := n.State
		n.State, n.Since = state, time.Now()
		args := []any{"peer", a, "asn", n.ASN, "state", state}
		if was == "established" && n.LastError != "" {
			args = append(args, "reason", n.LastError)
		}
		r.log.Log(context.Background(), level, "bgp peer", args...)
	}
}

// disconnectText is why a session ended, in words, or "" if it did not
// end or the state change is no failure (an idle timer running out).
func disconnectText(st *apiutil.PeerState) string {
	if st.SessionState == bgp.BGP_FSM_ESTABLISHED {
		return ""
	}
	var reason string
	switch st.DisconnectReason {
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED:
		reason = "hold timer expired"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT:
		reason = "notification sent"
	case api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED:
		reason = "notification received"
	case api.PeerState_DISCONNECT_REASON_READ_FAILED:
		reason = "connection closed or read failed"
	case api.PeerState_DISCONNECT_REASON_WRITE_FAILED:
		reason = "write failed"
	case api.PeerState_DISCONNECT_REASON_INVALID_MSG:
		reason = "invalid message"
	case api.PeerState_DISCONNECT_REASON_BAD_PEER_AS:
		reason = "bad peer AS"
	case api.PeerState_DISCONNECT_REASON_ADMIN_DOWN, api.PeerState_DISCONNECT_REASON_DECONFIGURED:
		reason = "administratively down"
	case api.PeerState_DISCONNECT_REASON_HARD_RESET:
		reason = "hard reset"
	default:
		return ""
	}
	// GoBGP's message names the reason, then for a NOTIFICATION its code
	// ("notification-received hold timer expired").
	if _, detail, ok := strings.Cut(st.DisconnectMessage, " "); ok && detail != "" {
		return reason + ": " + detail
	}
	return reason
}

func stateName(s bgp.FSMState) string {
	switch s {
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	}
	return "unknown"
}

// converter reads GoBGP's paths into Routes. The paths of one UPDATE share
// their attributes, so the last attribute set is kept and read once, and
// its paths share one Route. Only the watch goroutine uses it.
type converter struct {
	attrs     []bgp.PathAttributeInterface // the last set
	route     Route                        // what it read as
	last      *Route                       // the last Route made, for its peer, AS, time and attributes
	withdrawn *Route                       // the same for withdrawals, which carry no attributes
}

// convert reads a GoBGP path into a Route. Routes it returns are never
// changed.
func (c *converter) convert(p *apiutil.Path, now time.Time) (netip.Prefix, *Route, bool) {
	pfx, ok := nlriPrefix(p.Nlri)
	if !ok {
		return netip.Prefix{}, nil, false
	}
	peer := p.PeerAddress.Unmap()
	if !peer.IsValid() {
		return netip.Prefix{}, nil, false
	}
	learned := now.UnixMilli()
	fresh := func(r *Route) bool {
		return r != nil && r.Peer == peer && r.PeerASN == p.PeerASN && r.Learned == learned
	}
	if p.Withdrawal {
		if !fresh(c.withdrawn) {
			c.withdrawn = &Route{Peer: peer, PeerASN: p.PeerASN, Learned: learned}
		}
		return pfx, c.withdrawn, true
	}
	same := len(c.attrs) > 0 && slices.Equal(p.Attrs, c.attrs)
	if !same {
		c.attrs = append(c.attrs[:0], p.Attrs...)
		c.route = routeAttrs(p.Attrs)
	}
	if !same || !fresh(c.last) {
		rt := c.route
		rt.Peer, rt.PeerASN, rt.Learned = peer, p.PeerASN, learned
		c.last = &rt
	}
	return pfx, c.last, true
}

func routeAttrs(attrs []bgp.PathAttributeInterface) Route {
	var rt Route
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			rt.NextHop = a.Value.Unmap()
		case *bgp.PathAttributeMpReachNLRI:
			if a.Nexthop.IsValid() {
				rt.NextHop = a.Nexthop.Unmap()
			}
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				rt.ASPath = append(rt.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			rt.Communities = a.Value
		case *bgp.PathAttributeLocalPref:
			rt.LocalPref = a.Value
		case *bgp.PathAttributeMultiExitDisc:
			rt.MED = a.Value
		}
	}
	return rt
}

// nlriPrefix reads a unicast NLRI: an IPv4 or IPv6 prefix.
func nlriPrefix(nlri bgp.NLRI) (netip.Prefix, bool) {
	p, ok := nlri.(*bgp.IPAddrPrefix)
	if !ok || !p.Prefix.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(p.Prefix.Addr().Unmap(), p.Prefix.Bits()).Masked(), true
}

// apply drains queued updates in batches: while one batch is published,
// the next gathers, so a flood costs few snapshot copies.
func (r *RIB) apply() {
	defer close(r.done)
	var changes []change
	for {
		select {
		case <-r.quit:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := r.pending
		r.pending, r.spare = r.spare[:0], nil
		r.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		changes = changes[:0]
		for _, c := range batch {
			if c.peerDown.IsValid() {
				changes = append(changes, r.peerRoutes(c.peerDown, changes)...)
				continue
			}
			changes = append(changes, c)
		}
		clear(batch)
		r.mu.Lock()
		r.spare = batch
		r.mu.Unlock()
		gone := r.table.apply(r.count(changes))
		clear(changes)
		if r.cfg.Gone != nil {
			for _, p := range gone {
				r.cfg.Gone(p)
			}
		}
	}
}

// peerRoutes withdraws every route a peer holds, as of the snapshot plus
// the changes before it in this batch.
func (r *RIB) peerRoutes(peer netip.Addr, before []change) []change {
	held := map[netip.Prefix]bool{}
	r.table.current.Load().each(func(e *Entry) {
		for _, rt := range e.Routes {
			if rt.Peer == peer {
				held[e.Prefix] = true
			}
		}
	})
	for _, c := range before {
		if c.route.Peer == peer {
			held[c.prefix] = !c.withdraw
		}
	}
	var out []change
	gone := &Route{Peer: peer}
	for p, ok := range held {
		if ok {
			out = append(out, change{prefix: p, route: gone, withdraw: true})
		}
	}
	return out
}

// count keeps the neighbours' prefix counters and returns the changes to
// apply: without AllPrefixes, only host routes.
func (r *RIB) count(changes []change) []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := changes[:0]
	var in, out *Route // the last Route seen and what it became
	for _, c := range changes {
		n := r.neighbors[c.route.Peer]
		if n == nil {
			n = &Neighbor{Address: c.route.Peer, ASN: c.route.PeerASN}
			r.neighbors[c.route.Peer] = n
		}
		host := c.prefix.IsSingleIP()
		switch {
		case c.withdraw:
			n.Withdrawn++
		case !host && !r.cfg.AllPrefixes:
			n.Received++
			n.Ignored++
			continue
		default:
			n.Received++
		}
		// Paths of one UPDATE share a Route: complete it once.
		if c.route != in {
			rt := *c.route
			rt.RouterID = n.RouterID
			rt.ASPath = r.shared(rt.ASPath)
			rt.Communities = r.shared(rt.Communities)
			in, out = c.route, &rt
		}
		c.route = out
		keep = append(keep, c)
	}
	clear(changes[len(keep):])
	return keep
}

// shared returns one array for every equal list of AS numbers or
// communities: a fabric's routes carry few distinct ones. Past maxShared
// lists it stops sharing rather than grow.
func (r *RIB) shared(list []uint32) []uint32 {
	if len(list) == 0 {
		return nil
	}
	b := r.scratch[:0]
	for _, v := range list {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	r.scratch = b
	if s, ok := r.lists[string(b)]; ok {
		return s
	}
	if len(r.lists) < maxShared {
		r.lists[string(b)] = list
	}
	return list
}

const maxShared = 100_000

// Lookup returns the longest-prefix match for a, or nil. It takes no lock
// and allocates nothing.
func (r *RIB) Lookup(a netip.Addr) *Entry { return r.table.current.Load().lookup(a) }

// Published returns a channel that is closed when the next batch of updates
// is visible to lookups: a way to wait for the RIB without polling.
func (r *RIB) Published() <-chan struct{} { return r.table.next() }

// RouterID returns a neighbour's BGP router id, often its loopback and
// sFlow agent address, or the zero Addr.
func (r *RIB) RouterID(peer netip.Addr) netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.neighbors[peer]; n != nil {
		return n.RouterID
	}
	return netip.Addr{}
}

// Len returns how many prefixes are held.
func (r *RIB) Len() int { return r.table.current.Load().count }

// Neighbors returns every peer seen, by address.
func (r *RIB) Neighbors() []Neighbor {
	held := map[netip.Addr]int{}
	r.table.current.Load().each(func(e *Entry) {
		for _, rt := range e.Routes {
			held[rt.Peer]++
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Neighbor, 0, len(r.neighbors))
	for a, n := range r.neighbors {
		nb := *n
		nb.Accepted = held[a]
		out = append(out, nb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out
}

// Entries returns held entries in prefix order, filtered, from offset, at
// most limit, and how many matched in all.
func (r *RIB) Entries(keep func(*Entry) bool, offset, limit int) ([]*Entry, int) {
	var all []*Entry
	r.table.current.Load().each(func(e *Entry) {
		if keep == nil || keep(e) {
			all = append(all, e)
		}
	})
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].Prefix, all[j].Prefix
		if a.Addr() != b.Addr() {
			return a.Addr().Less(b.Addr())
		}
		return a.Bits() < b.Bits()
	})
	total := len(all)
	if offset > len(all) {
		offset = len(all)
	}
	all = all[offset:]
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, total
}

// Close stops BGP (every session drops) and the applier.
func (r *RIB) Close() {
	r.stop()
	r.bgp.Stop()
	close(r.quit)
	<-r.done
}
