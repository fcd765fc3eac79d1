package rib_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/rib"
	"github.com/fabrictrace/fabrictrace/sim"
)

// rawPeer is a hand-made BGP-4 speaker (RFC 4271) for sending what no
// real one would.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	msgs chan bgpMsg // what the collector sent, until it closed
}

type bgpMsg struct {
	typ  byte
	body []byte
}

const rawASN = 65302

// dialRaw connects from src to the collector and starts reading.
func dialRaw(t *testing.T, src string, collector netip.AddrPort) *rawPeer {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)), Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", collector.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &rawPeer{t: t, conn: conn, msgs: make(chan bgpMsg, 64)}
	go func() {
		defer close(p.msgs)
		hdr := make([]byte, 19)
		for {
			if _, err := io.ReadFull(conn, hdr); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint16(hdr[16:]))
			if n < 19 {
				return
			}
			body := make([]byte, n-19)
			if _, err := io.ReadFull(conn, body); err != nil {
				return
			}
			p.msgs <- bgpMsg{hdr[18], body}
		}
	}()
	return p
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// open brings the session up: OPEN (4-octet AS, IPv4 unicast) and
// KEEPALIVE, until the collector's KEEPALIVE says it is Established.
func (p *rawPeer) open(id [4]byte) { p.openHold(id, 90) }

func (p *rawPeer) openHold(id [4]byte, hold byte) {
	p.t.Helper()
	caps := []byte{1, 4, 0, 1, 0, 1, 65, 4, 0, 0, rawASN >> 8, rawASN & 0xff}
	open := []byte{4, rawASN >> 8, rawASN & 0xff, 0, hold, id[0], id[1], id[2], id[3], byte(2 + len(caps)), 2, byte(len(caps))}
	p.send(append(sim.BGPMessage(1, append(open, caps...)), sim.BGPMessage(4, nil)...))
	for m := range p.msgs {
		if m.typ == 4 {
			return
		}
		if m.typ == 3 {
			p.t.Fatalf("NOTIFICATION %d/%d on OPEN", m.body[0], m.body[1])
		}
	}
	p.t.Fatal("session closed before it came up")
}

// outcome waits for the collector's answer to something malformed: a
// NOTIFICATION (its code and subcode) or, if the session stays up, nothing
// within the time a KEEPALIVE round takes.
func (p *rawPeer) notification(within time.Duration) (code, subcode byte, closed bool) {
	timeout := time.After(within)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				return 0, 0, true
			}
			if m.typ == 3 && len(m.body) >= 2 {
				return m.body[0], m.body[1], false
			}
		case <-timeout:
			return 0, 0, false
		}
	}
}

// update builds an UPDATE of IPv4 prefixes with the given attributes.
func update(attrs []byte, nlri ...byte) []byte {
	body := binary.BigEndian.AppendUint16(nil, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
	body = append(body, attrs...)
	return sim.BGPMessage(2, append(body, nlri...))
}

var (
	originIGP = []byte{0x40, 1, 1, 0}
	asPath    = []byte{0x40, 2, 6, 2, 1, 0, 0, rawASN >> 8, rawASN & 0xff}
	nextHop   = []byte{0x40, 3, 4, 10, 2, 2, 1}
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// What anyone in -bgp-accept can send, before or after OPEN, must end in a
// NOTIFICATION or a withdrawal, never in a crash (osrg/gobgp#3325 killed the
// collector on the first); and the listener goes on learning from others.
func TestMalformedBGPMessagesNeverCrash(t *testing.T) {
	r, addr := startRIB(t, rib.Config{Accept: []netip.Prefix{netip.MustParsePrefix("127.0.6.0/24")}, PeerASN: rawASN})
	victim := netip.MustParseAddr("10.9.9.9")
	victimNLRI := []byte{32, 10, 9, 9, 9}
	present := func() bool { return r.Lookup(victim) != nil }

	t.Run("unknown type before OPEN", func(t *testing.T) {
		p := dialRaw(t, "127.0.6.1", addr)
		// 16 bytes of 0xff, length 22, type 99, three bytes.
		p.send(sim.BGPMessage(99, []byte{1, 2, 3}))
		code, sub, closed := p.notification(10 * time.Second)
		if !closed && code != 1 {
			t.Fatalf("got code %d/%d, want a NOTIFICATION of a message header error (1/3) or the session closed", code, sub)
		}
		t.Logf("answered with NOTIFICATION %d/%d (closed without one: %v)", code, sub, closed)
	})

	// Each of these is first announced well, then again malformed: the
	// route must go, by a withdrawal (RFC 7606) or with the session. An
	// attribute running past the attributes is the exception: GoBGP
	// treats the UPDATE as a withdrawal of nothing (RFC 7606 section 4
	// wants a session reset there), so the route stays, and the session.
	for i, c := range []struct {
		name   string
		attrs  []byte
		nlri   []byte
		resets bool // RFC 7606 calls for a session reset
		stays  bool
	}{
		{"ORIGIN without the transitive flag", cat([]byte{0x00, 1, 1, 0}, asPath, nextHop), victimNLRI, false, false},
		{"ORIGIN of length 3", cat([]byte{0x40, 1, 3, 0, 0, 0}, asPath, nextHop), victimNLRI, false, false},
		{"NEXT_HOP of length 3", cat(originIGP, asPath, []byte{0x40, 3, 3, 10, 2, 2}), victimNLRI, false, false},
		{"attribute longer than the attributes", cat(originIGP, asPath, nextHop, []byte{0xc0, 8, 200, 0, 0}), victimNLRI, false, true},
		{"prefix length 33", cat(originIGP, asPath, nextHop), []byte{33, 10, 9, 9, 9, 9}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := fmt.Sprintf("127.0.6.%d", 2+i)
			p := dialRaw(t, src, addr)
			p.open([4]byte{10, 0, 6, byte(2 + i)})
			p.send(update(cat(originIGP, asPath, nextHop), victimNLRI...))
			waitFor(t, r, "the route announced well", present)
			p.send(update(c.attrs, c.nlri...))
			if c.stays {
				// A well-formed UPDATE after it is learned: the session
				// lives.
				p.send(update(cat(originIGP, asPath, nextHop), 32, 10, 9, 9, 10))
				waitFor(t, r, "the UPDATE after it", func() bool { return r.Lookup(netip.MustParseAddr("10.9.9.10")) != nil })
				p.conn.Close()
				waitFor(t, r, "its routes to go with the session", func() bool { return !present() })
				return
			}
			waitFor(t, r, "the route to go", func() bool { return !present() })
			code, sub, closed := p.notification(2 * time.Second)
			t.Logf("route gone; NOTIFICATION %d/%d, closed %v", code, sub, closed)
			if c.resets && code == 0 && !closed {
				t.Errorf("the session stayed up after an UPDATE that cannot be parsed")
			}
			// Down before the next comes up: GoBGP v4.8.0 races when two of
			// its peers go down at once, as they would at the RIB's close.
			p.conn.Close()
			waitFor(t, r, "the session down", func() bool {
				for _, n := range r.Neighbors() {
					if n.Address == netip.MustParseAddr(src) {
						return n.State != "established"
					}
				}
				return true
			})
		})
	}

	// The session reset says why in /bgp/neighbors/json.
	for _, n := range r.Neighbors() {
		if n.Address == netip.MustParseAddr("127.0.6.6") && !strings.HasPrefix(n.LastError, "notification sent: ") {
			t.Errorf("lastError of the peer that sent a /33: %q, want the NOTIFICATION sent", n.LastError)
		}
	}

	// The listener still learns.
	p := dialRaw(t, "127.0.6.100", addr)
	p.open([4]byte{10, 0, 6, 100})
	p.send(update(cat(originIGP, asPath, nextHop), victimNLRI...))
	waitFor(t, r, "a route from a well-behaved peer after all that", present)
}

// A peer that falls silent is dropped when its hold timer runs out, and
// /bgp/neighbors/json says so.
func TestLastErrorSaysHoldTimerExpired(t *testing.T) {
	r, addr := startRIB(t, rib.Config{Accept: []netip.Prefix{netip.MustParsePrefix("127.0.6.0/24")}, PeerASN: rawASN})
	p := dialRaw(t, "127.0.6.200", addr)
	p.openHold([4]byte{10, 0, 6, 200}, 3) // and no KEEPALIVE after
	p.send(update(cat(originIGP, asPath, nextHop), 32, 10, 9, 9, 11))
	waitFor(t, r, "the route", func() bool { return r.Lookup(netip.MustParseAddr("10.9.9.11")) != nil })
	if code, sub, _ := p.notification(10 * time.Second); code != 4 {
		t.Fatalf("NOTIFICATION %d/%d, want 4 (hold timer expired)", code, sub)
	}
	waitFor(t, r, "the route to go with the session", func() bool { return r.Lookup(netip.MustParseAddr("10.9.9.11")) == nil })
	for _, n := range r.Neighbors() {
		if n.Address == netip.MustParseAddr("127.0.6.200") {
			if n.LastError != "hold timer expired" {
				t.Errorf("lastError %q, want \"hold timer expired\"", n.LastError)
			}
			return
		}
	}
	t.Error("the peer is not among the neighbours")
}
