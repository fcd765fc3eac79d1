package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fabrictrace/fabrictrace/engine"
	"github.com/fabrictrace/fabrictrace/store"
)

// history lets the web layer read the store without importing it.
type history struct{ s *store.Store }

func (h history) HistoryEvents(ctx context.Context, since, until int64, threshold string, limit int) ([]json.RawMessage, error) {
	return h.s.Events(ctx, store.Query{Since: since, Until: until, Threshold: threshold, Limit: limit})
}

func (h history) HistoryElephants(ctx context.Context, since, until int64, src, dst string, limit int) ([]json.RawMessage, error) {
	return h.s.Elephants(ctx, store.Query{Since: since, Until: until, Src: src, Dst: dst, Limit: limit})
}

// restore re-applies what the store kept. A definition that no longer
// applies is logged and left in the store, not silently dropped.
func restore(s *store.Store, e *engine.Engine, logger *slog.Logger) error {
	defs, err := s.Definitions()
	if err != nil {
		return err
	}
	for _, d := range defs {
		if err := e.ApplyDefinition(d.Kind, d.Name, d.Body); err != nil {
			logger.Warn("stored definition does not apply; kept in the store", "kind", d.Kind, "name", d.Name, "err", err)
		}
	}
	logger.Info("definitions restored from the store", "count", len(defs))
	return nil
}

// record writes every event, and every elephant that ends, to the store.
// The store's queue never blocks; these long polls never hold up ingest.
func record(ctx context.Context, e *engine.Engine, s *store.Store) error {
	go func() {
		after := int64(0)
		for ctx.Err() == nil {
			recs := e.Elephants(ctx, after, 1000, time.Minute)
			for i := len(recs) - 1; i >= 0; i-- {
				r := recs[i]
				after = max(after, r.UpdateID)
				if r.Active {
					continue
				}
				var src, dst string
				if r.Src.IsValid() {
					src = r.Src.String()
				}
				if r.Dst.IsValid() {
					dst = r.Dst.String()
				}
				s.AddElephant(store.Elephant{ElephantID: r.ElephantID, Start: r.Start, End: r.End, Src: src, Dst: dst,
					FlowKey: r.FlowKey, Body: r})
			}
		}
	}()
	after := int64(0)
	for ctx.Err() == nil {
		evs := e.Events(ctx, after, "", 1000, time.Minute)
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			after = max(after, ev.EventID)
			s.AddEvent(store.Event{Timestamp: ev.Timestamp, Threshold: ev.ThresholdID, FlowKey: ev.FlowKey, Body: ev})
		}
	}
	return nil
}

// checkDB finds out whether the -db file can be made and written, with an
// error a person can act on: SQLite's own says only "unable to open
// database file: no such file or directory", whatever went wrong.
func checkDB(path string) error {
	if path == ":memory:" {
		return nil
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("store %s: directory %s does not exist; create it, or point -db elsewhere", path, dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		f.Close()
		// SQLite's write-ahead log goes beside the file.
		err = syscall.Access(dir, 2) // W_OK
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("store %s: permission denied (it and its directory must be writable by this user); run as a user who may write there, or point -db at a writable path such as /var/lib/fabrictrace/fabrictrace.db", path)
	default:
		return fmt.Errorf("store %s: %w; point -db at a writable file", path, err)
	}
}
