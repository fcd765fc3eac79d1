package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// history serves a /history/.../json endpoint: since, until and limit from
// the query, the rest by fetch.
func (s *Server) history(fetch func(ctx context.Context, r *http.Request, since, until int64, limit int) ([]json.RawMessage, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
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
		out, err := fetch(r.Context(), r, since, until, int(limit))
		if err != nil {
			s.fail(w, http.StatusInternalServerError, err)
			return
		}
		s.reply(w, out)
	}
}

func (s *Server) historyEvents(ctx context.Context, r *http.Request, since, until int64, limit int) ([]json.RawMessage, error) {
	return s.cfg.History.HistoryEvents(ctx, since, until, r.URL.Query().Get("thresholdID"), limit)
}

func (s *Server) historyElephants(ctx context.Context, r *http.Request, since, until int64, limit int) ([]json.RawMessage, error) {
	v := r.URL.Query()
	return s.cfg.History.HistoryElephants(ctx, since, until, v.Get("src"), v.Get("dst"), limit)
}

var errNoStore = errors.New("no history: start the collector with -db")
