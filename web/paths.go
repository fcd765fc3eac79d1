package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/fabrictrace/fabrictrace/api"
)

// protocols are the names /paths/json takes for proto, besides numbers.
var protocols = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "ipv6-icmp": 58}

// paths serves /paths/json?src=A&dst=B[&proto=&sport=&dport=&history=true]:
// every path the pair's sampled 5-tuples take now, the ECMP splits, where
// each end lives, and with history every path each took, with when.
func (s *Server) paths(w http.ResponseWriter, r *http.Request) {
	q, err := pathQuery(r, s.cfg.Engine.NodeAddress)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	out, err := s.cfg.Engine.Paths(q)
	if err != nil {
		s.fail(w, statusOf(err), err)
		return
	}
	s.reply(w, out)
}

// pathQuery reads a path query. src and dst are addresses, or names of
// nodes the collector knows (a host's name stands for its address).
func pathQuery(r *http.Request, byName func(string) (netip.Addr, bool)) (api.PathQuery, error) {
	var q api.PathQuery
	v := r.URL.Query()
	for _, end := range []struct {
		name string
		to   *netip.Addr
	}{{"src", &q.Src}, {"dst", &q.Dst}} {
		text := v.Get(end.name)
		a, err := netip.ParseAddr(text)
		if err != nil {
			var ok bool
			if a, ok = byName(text); !ok {
				return q, fmt.Errorf("%s %q: want an IPv4 or IPv6 address, or the name of a node the collector knows", end.name, text)
			}
		}
		*end.to = a
	}
	if p := strings.ToLower(v.Get("proto")); p != "" {
		if n, ok := protocols[p]; ok {
			q.Proto = n
		} else if n, err := strconv.ParseUint(p, 10, 8); err == nil && n > 0 {
			q.Proto = uint8(n)
		} else {
			return q, fmt.Errorf("proto %q: want tcp, udp, icmp, icmp6 or a protocol number", p)
		}
	}
	for _, port := range []struct {
		name string
		to   *uint16
	}{{"sport", &q.SrcPort}, {"dport", &q.DstPort}} {
		if s := v.Get(port.name); s != "" {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil || n == 0 {
				return q, fmt.Errorf("%s %q: want a port from 1 to 65535", port.name, s)
			}
			*port.to = uint16(n)
		}
	}
	switch h := v.Get("history"); h {
	case "", "false", "0":
	case "true", "1":
		q.History = true
	default:
		return q, fmt.Errorf("history %q: want true or false", h)
	}
	return q, nil
}

// path serves /path/json?flowKey=SRC,DST,PROTO,SPORT,DPORT: one 5-tuple's
// path, as pathchange events name it.
func (s *Server) path(w http.ResponseWriter, r *http.Request) {
	f := strings.Split(r.URL.Query().Get("flowKey"), ",")
	if len(f) != 5 {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("flowKey %q: want SRC,DST,PROTO,SPORT,DPORT", r.URL.Query().Get("flowKey")))
		return
	}
	r.URL.RawQuery = url.Values{"src": {f[0]}, "dst": {f[1]}, "proto": {f[2]}, "sport": {f[3]}, "dport": {f[4]},
		"history": {r.URL.Query().Get("history")}}.Encode()
	s.paths(w, r)
}
