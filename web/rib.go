package web

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/fabrictrace/fabrictrace/rib"
)

// ribRoute is a route as /rib/json and /rib/lookup/json serve it.
type ribRoute struct {
	rib.Route
	Communities []string `json:"communities,omitempty"`
}

func routeJSON(r rib.Route) ribRoute {
	out := ribRoute{Route: r}
	for _, c := range r.Communities {
		out.Communities = append(out.Communities, community(c))
	}
	return out
}

func community(c uint32) string {
	return strconv.FormatUint(uint64(c>>16), 10) + ":" + strconv.FormatUint(uint64(c&0xFFFF), 10)
}

type ribEntry struct {
	Prefix netip.Prefix `json:"prefix"`
	Best   ribRoute     `json:"best"`
	Routes []ribRoute   `json:"routes"`
	Owner  *owner       `json:"owner,omitempty"`
}

// owner says where an address lives, in the topology's names: the leaf (or
// host) that announced it, and the host its next hop is.
type owner struct {
	AnnouncedBy string `json:"announcedBy,omitempty"` // the BGP peer's node
	Host        string `json:"host,omitempty"`        // the next hop's node
}

func entryJSON(e *rib.Entry) ribEntry {
	out := ribEntry{Prefix: e.Prefix, Best: routeJSON(e.Best())}
	for _, r := range e.Routes {
		out.Routes = append(out.Routes, routeJSON(*r))
	}
	return out
}

var errNoBGP = errors.New("BGP is off: start the collector with -bgp-accept")

func (s *Server) neighbors(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.RIB == nil {
		s.fail(w, http.StatusNotFound, errNoBGP)
		return
	}
	s.reply(w, s.cfg.RIB.Neighbors())
}

// ribList serves /rib/json?prefix=P&peer=A&community=X:Y&start=N&limit=M:
// entries in prefix order, a page at a time.
func (s *Server) ribList(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RIB == nil {
		s.fail(w, http.StatusNotFound, errNoBGP)
		return
	}
	q := &query{r: r}
	start := q.int("start", 0)
	limit := q.int("limit", 1000)
	var within netip.Prefix
	var peer netip.Addr
	if v := r.URL.Query().Get("prefix"); v != "" && q.err == nil {
		within, q.err = netip.ParsePrefix(v)
	}
	if v := r.URL.Query().Get("peer"); v != "" && q.err == nil {
		peer, q.err = netip.ParseAddr(v)
	}
	comm := r.URL.Query().Get("community")
	if comm != "" && !strings.Contains(comm, ":") && q.err == nil {
		q.err = errors.New("community: want AS:VALUE")
	}
	if q.err == nil && (start < 0 || limit < 1) {
		q.err = errors.New("start: want 0 or more; limit: want 1 or more")
	}
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	keep := func(e *rib.Entry) bool {
		if within.IsValid() && !(within.Contains(e.Prefix.Addr()) && e.Prefix.Bits() >= within.Bits()) {
			return false
		}
		for _, rt := range e.Routes {
			if peer.IsValid() && rt.Peer != peer {
				continue
			}
			if comm == "" {
				return true
			}
			for _, c := range rt.Communities {
				if community(c) == comm {
					return true
				}
			}
		}
		return false
	}
	entries, total := s.cfg.RIB.Entries(keep, int(start), int(min(limit, 100_000)))
	out := struct {
		Total   int        `json:"total"`
		Start   int64      `json:"start"`
		Entries []ribEntry `json:"entries"`
	}{Total: total, Start: start, Entries: []ribEntry{}}
	for _, e := range entries {
		out.Entries = append(out.Entries, entryJSON(e))
	}
	s.reply(w, out)
}

// ribLookup serves /rib/lookup/json?address=A: the longest match, its best
// route and every candidate.
func (s *Server) ribLookup(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RIB == nil {
		s.fail(w, http.StatusNotFound, errNoBGP)
		return
	}
	a, err := netip.ParseAddr(r.URL.Query().Get("address"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, errors.New("address: want an IPv4 or IPv6 address"))
		return
	}
	e := s.cfg.RIB.Lookup(a)
	if e == nil {
		s.fail(w, http.StatusNotFound, errors.New("no route to "+a.String()))
		return
	}
	out := entryJSON(e)
	best := e.Best()
	o := owner{Host: s.cfg.Engine.NodeName(best.NextHop)}
	if id := s.cfg.RIB.RouterID(best.Peer); id.IsValid() {
		o.AnnouncedBy = s.cfg.Engine.NodeName(id)
	}
	if o.AnnouncedBy == "" {
		o.AnnouncedBy = s.cfg.Engine.NodeName(best.Peer)
	}
	if o != (owner{}) {
		out.Owner = &o
	}
	s.reply(w, out)
}
