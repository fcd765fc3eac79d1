package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ContainerCommunity tags every container route a leaf announces, as
// ASN:1 of that leaf, so a RIB can be filtered to container routes.
const ContainerCommunity = 1

// Speaker is a minimal BGP-4 speaker (RFC 4271, with 4-octet AS numbers
// and IPv6 by RFC 4760) that connects from its own source address to a
// collector and announces host routes with an explicit next hop, tagged
// asn:1. Speakers uses one per leaf; tests use it as any BGP peer. It is
// not GoBGP: two GoBGP servers in one process race on GoBGP's package
// state (v4.8.0), and a collector under test is one already. The e2e tests
// speak with FRR, BIRD, gobgpd and ExaBGP.
type Speaker struct {
	// HoldTime, in seconds, is what Connect offers [9: a dead collector is
	// noticed quickly].
	HoldTime uint64
	asn      uint32
	routerID netip.Addr
	source   netip.Addr
	log      *slog.Logger

	mu      sync.Mutex
	routes  map[netip.Prefix]netip.Addr // announced, by prefix: the next hop
	conn    net.Conn                    // the session, once Established
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
	started bool
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

// NewSpeakerPaused makes a speaker with no peer yet: routes announced
// before Connect go out as one table dump when the session comes up, which
// is how a load test builds a big table quickly.
func NewSpeakerPaused(_ context.Context, asn uint32, routerID, source netip.Addr, log *slog.Logger) (*Speaker, error) {
	if !routerID.Is4() {
		return nil, fmt.Errorf("bgp speaker: router id %s: want an IPv4 address", routerID)
	}
	return &Speaker{asn: asn, routerID: routerID, source: source, log: log, routes: map[netip.Prefix]netip.Addr{},
		quit: make(chan struct{}), done: make(chan struct{})}, nil
}

// Connect peers with the collector (AS collectorASN) from the speaker's
// source address, and keeps the session up: it retries every second, so a
// speaker finds a collector started after it, and one that restarts.
func (sp *Speaker) Connect(_ context.Context, collector netip.AddrPort, collectorASN uint32) error {
	if sp.HoldTime == 0 {
		sp.HoldTime = 9
	}
	sp.mu.Lock()
	sp.started = true
	sp.mu.Unlock()
	go sp.run(collector)
	return nil
}

func (sp *Speaker) run(collector netip.AddrPort) {
	defer close(sp.done)
	for {
		conn, err := sp.establish(collector)
		if err == nil {
			err = sp.serve(conn)
		}
		select {
		case <-sp.quit:
			return
		case <-time.After(time.Second):
		}
		sp.log.Debug("bgp speaker: session down; retrying", "collector", collector, "err", err)
	}
}

// establish opens a session by the FSM: OPEN, the collector's OPEN,
// KEEPALIVE, its KEEPALIVE.
func (sp *Speaker) establish(collector netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(sp.source, 0)), Timeout: 3 * time.Second}
	conn, err := d.Dial("tcp", collector.String())
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	as2 := uint16(23456) // AS_TRANS, for a 4-octet AS
	if sp.asn <= 0xffff {
		as2 = uint16(sp.asn)
	}
	id := sp.routerID.As4()
	caps := []byte{2, 6, 1, 4, 0, 1, 0, 1, 2, 6, 1, 4, 0, 2, 0, 1, 2, 6, 65, 4}
	caps = binary.BigEndian.AppendUint32(caps, sp.asn)
	open := binary.BigEndian.AppendUint16([]byte{4}, as2)
	open = binary.BigEndian.AppendUint16(open, uint16(sp.HoldTime))
	open = append(append(open, id[:]...), byte(len(caps)))
	if _, err = conn.Write(BGPMessage(bgpOpen, append(open, caps...))); err == nil {
		if err = awaitMessage(conn, bgpOpen); err == nil {
			if _, err = conn.Write(BGPMessage(bgpKeepalive, nil)); err == nil {
				err = awaitMessage(conn, bgpKeepalive)
			}
		}
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// serve sends the table, then KEEPALIVEs, until the session ends.
func (sp *Speaker) serve(conn net.Conn) error {
	sp.mu.Lock()
	var dump []byte
	byHop := map[netip.Addr][]netip.Prefix{}
	for p, nh := range sp.routes {
		if p.Addr().Is4() {
			byHop[nh] = append(byHop[nh], p)
			continue
		}
		dump = append(dump, sp.update(p, nh, false)...)
	}
	for nh, ps := range byHop {
		dump = append(dump, sp.updates4(ps, nh)...)
	}
	_, err := conn.Write(dump)
	if err == nil {
		sp.conn = conn
	}
	sp.mu.Unlock()
	if err != nil {
		conn.Close()
		return err
	}
	ended := make(chan error, 1)
	go func() { // the collector's KEEPALIVEs, until it closes or says why
		ended <- awaitMessage(conn, 0)
	}()
	tick := time.NewTicker(time.Duration(max(sp.HoldTime/3, 1)) * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			sp.mu.Lock()
			_, err = conn.Write(BGPMessage(bgpKeepalive, nil))
			sp.mu.Unlock()
		case err = <-ended:
		case <-sp.quit:
			err = errors.New("stopped")
		}
		if err != nil {
			sp.mu.Lock()
			sp.conn = nil
			sp.mu.Unlock()
			conn.Close()
			return err
		}
	}
}

const (
	bgpOpen      = 1
	bgpUpdate    = 2
	bgpNotify    = 3
	bgpKeepalive = 4
)

// BGPMessage frames a BGP message: the marker, the length, the type.
func BGPMessage(typ byte, body []byte) []byte {
	m := make([]byte, 19, 19+len(body))
	for i := range 16 {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(19+len(body)))
	m[18] = typ
	return append(m, body...)
}

// awaitMessage reads messages until one of type typ (0: none, read until
// the session ends); a NOTIFICATION ends it with its code.
func awaitMessage(conn net.Conn, typ byte) error {
	hdr := make([]byte, 19)
	for {
		if _, err := io.ReadFull(conn, hdr); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint16(hdr[16:]))
		if n < 19 {
			return fmt.Errorf("bgp: message length %d", n)
		}
		body := make([]byte, n-19)
		if _, err := io.ReadFull(conn, body); err != nil {
			return err
		}
		switch {
		case hdr[18] == bgpNotify && len(body) >= 2:
			return fmt.Errorf("bgp: NOTIFICATION %d/%d from the collector", body[0], body[1])
		case typ != 0 && hdr[18] == typ:
			return nil
		}
	}
}

// pathAttrs are a route's attributes: ORIGIN IGP, an AS_PATH of the
// speaker's AS, the community asn:1, then more (a next hop).
func (sp *Speaker) pathAttrs(more []byte) []byte {
	a := []byte{0x40, 1, 1, 0, 0x40, 2, 6, 2, 1}
	a = binary.BigEndian.AppendUint32(a, sp.asn)
	a = append(a, 0xc0, 8, 4)
	a = binary.BigEndian.AppendUint32(a, sp.asn<<16|ContainerCommunity)
	return append(a, more...)
}

func nlri(p netip.Prefix) []byte {
	b := p.Addr().AsSlice()
	return append([]byte{byte(p.Bits())}, b[:(p.Bits()+7)/8]...)
}

// update is one prefix's UPDATE, an announcement or a withdrawal.
func (sp *Speaker) update(p netip.Prefix, nh netip.Addr, withdraw bool) []byte {
	var body []byte
	switch {
	case p.Addr().Is4() && withdraw:
		w := nlri(p)
		body = binary.BigEndian.AppendUint16(nil, uint16(len(w)))
		body = append(append(body, w...), 0, 0)
	case p.Addr().Is4():
		return sp.updates4([]netip.Prefix{p}, nh)
	case withdraw: // MP_UNREACH_NLRI
		mp := append([]byte{0, 2, 1}, nlri(p)...)
		attrs := append([]byte{0x80, 15, byte(len(mp))}, mp...)
		body = binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(len(attrs)))
		body = append(body, attrs...)
	default: // MP_REACH_NLRI: IPv6 unicast, a 16-byte next hop
		h := nh.As16()
		mp := append(append([]byte{0, 2, 1, 16}, h[:]...), 0)
		mp = append(mp, nlri(p)...)
		attrs := sp.pathAttrs(append([]byte{0x80, 14, byte(len(mp))}, mp...))
		body = binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(len(attrs)))
		body = append(body, attrs...)
	}
	return BGPMessage(bgpUpdate, body)
}

// updates4 announces IPv4 prefixes of one next hop, as many to an UPDATE
// as fit in 4,096 bytes.
func (sp *Speaker) updates4(ps []netip.Prefix, nh netip.Addr) []byte {
	h := nh.Unmap().As4()
	attrs := sp.pathAttrs(append([]byte{0x40, 3, 4}, h[:]...))
	var out []byte
	for len(ps) > 0 {
		body := binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(len(attrs)))
		body = append(body, attrs...)
		for len(ps) > 0 && 19+len(body)+5 <= 4096 {
			body = append(body, nlri(ps[0])...)
			ps = ps[1:]
		}
		out = append(out, BGPMessage(bgpUpdate, body)...)
	}
	return out
}

// Announce announces prefix with next hop nextHop, tagged asn:1.
func (sp *Speaker) Announce(_ context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	return sp.change(prefix, nextHop, false)
}

// Withdraw withdraws prefix.
func (sp *Speaker) Withdraw(_ context.Context, prefix netip.Prefix, nextHop netip.Addr) error {
	return sp.change(prefix, nextHop, true)
}

func (sp *Speaker) change(prefix netip.Prefix, nextHop netip.Addr, withdraw bool) error {
	if prefix.Addr().Is4() != nextHop.Unmap().Is4() {
		return fmt.Errorf("bgp speaker: %s with next hop %s: want one family", prefix, nextHop)
	}
	prefix = prefix.Masked()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if withdraw {
		if _, ok := sp.routes[prefix]; !ok {
			return nil
		}
		delete(sp.routes, prefix)
	} else {
		sp.routes[prefix] = nextHop
	}
	if sp.conn == nil {
		return nil // the dump on the next session carries it
	}
	if _, err := sp.conn.Write(sp.update(prefix, nextHop, withdraw)); err != nil {
		sp.conn.Close() // the session ends; the next one dumps the table
		return nil
	}
	return nil
}

// Stop closes the session.
func (sp *Speaker) Stop() {
	sp.once.Do(func() {
		close(sp.quit)
		sp.mu.Lock()
		if sp.conn != nil {
			sp.conn.Close()
		}
		started := sp.started
		sp.mu.Unlock()
		if started {
			<-sp.done
		}
	})
}

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

// Each calls fn for every leaf's speaker, in the fabric's order: a test
// that takes sessions down one at a time stops them through it.
func (sp *Speakers) Each(fn func(leaf *Node, s *Speaker)) {
	for _, leaf := range sp.sim.fab.Leaves {
		if s := sp.leaves[leaf]; s != nil {
			fn(leaf, s)
		}
	}
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
