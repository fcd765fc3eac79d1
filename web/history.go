package web

import (
	"errors"
	"net/http"
)

func (s *Server) historyEvents(w http.ResponseWriter, r *http.Request) {
	if s.cfg.History == nil {
		s.fail(w, http.StatusNotFound, errNoStore)
		return
	}
	q := &query{r: r}
	since, until, limit := q.int("since", 0), q.int("until", 0), q.int("limit", 1000)
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	out, err := s.cfg.History.HistoryEvents(r.Context(), since, until, r.URL.Query().Get("thresholdID"), int(limit))
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.reply(w, out)
}

func (s *Server) historyElephants(w http.ResponseWriter, r *http.Request) {
	if s.cfg.History == nil {
		s.fail(w, http.StatusNotFound, errNoStore)
		return
	}
	q := &query{r: r}
	since, until, limit := q.int("since", 0), q.int("until", 0), q.int("limit", 1000)
	if q.err != nil {
		s.fail(w, http.StatusBadRequest, q.err)
		return
	}
	v := r.URL.Query()
	out, err := s.cfg.History.HistoryElephants(r.Context(), since, until, v.Get("src"), v.Get("dst"), int(limit))
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	s.reply(w, out)
}

var errNoStore = errors.New("no history: start the collector with -db")
