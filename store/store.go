// Package store keeps fabrictrace's state in SQLite (WAL): the flow
// definitions, thresholds, groups and topology that users PUT, so they
// survive a restart, and the history of events and elephants. History is
// written in batches from a bounded queue: a full queue drops and counts,
// and never holds up the caller.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver, cgo
)

// schemaVersion is this binary's schema; migrations bring older files up.
const schemaVersion = 1

var migrations = []string{
	// 1: definitions and history.
	`CREATE TABLE definitions (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, updated INTEGER NOT NULL,
		PRIMARY KEY (kind, name));
	CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, threshold TEXT NOT NULL, flow_key TEXT NOT NULL,
		body TEXT NOT NULL);
	CREATE INDEX events_ts ON events (ts);
	CREATE INDEX events_threshold_ts ON events (threshold, ts);
	CREATE TABLE elephants (id INTEGER PRIMARY KEY, elephant_id INTEGER NOT NULL, start INTEGER NOT NULL,
		end INTEGER NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, flow_key TEXT NOT NULL, body TEXT NOT NULL);
	CREATE INDEX elephants_start ON elephants (start);
	CREATE INDEX elephants_pair ON elephants (src, dst, start);`,
}

// Config sets a store up. Zero fields take the defaults in brackets.
type Config struct {
	Path       string        // a file, or ":memory:"
	Queue      int           // history records waiting to be written [10000]
	Batch      time.Duration // how long a batch may gather [200ms]
	RetainAge  time.Duration // history older than this is deleted [30 days]
	RetainRows int           // and past this many rows a table [1000000]
}

// Store is an open database.
type Store struct {
	cfg     Config
	db      *sql.DB
	queue   chan record
	dropped atomic.Uint64
	written atomic.Uint64
	writeNs atomic.Int64 // time spent committing batches
	done    chan struct{}
	mu      sync.RWMutex // enqueue holds it to read, Close to close the queue
	closed  bool
}

// record is a history row waiting for the writer.
type record struct {
	table string // "events" or "elephants"
	args  []any
}

// Open opens (or creates) the database, brings its schema up to date, and
// starts the history writer. A file written by a newer fabrictrace, or one
// that is not a database, is an error: nothing is reset.
func Open(cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("store: no path")
	}
	if cfg.Queue == 0 {
		cfg.Queue = 10_000
	}
	if cfg.Batch == 0 {
		cfg.Batch = 200 * time.Millisecond
	}
	if cfg.RetainAge == 0 {
		cfg.RetainAge = 30 * 24 * time.Hour
	}
	if cfg.RetainRows == 0 {
		cfg.RetainRows = 1_000_000
	}
	dsn := "file:" + cfg.Path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=on"
	if cfg.Path == ":memory:" {
		dsn = "file::memory:?cache=shared"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises anyway
	s := &Store{cfg: cfg, db: db, queue: make(chan record, cfg.Queue), done: make(chan struct{})}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", cfg.Path, err)
	}
	go s.write()
	return s, nil
}

func (s *Store) migrate() error {
	var version int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("not a readable SQLite database: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("written by a newer fabrictrace (schema %d; this one knows %d): upgrade, or point -db elsewhere", version, schemaVersion)
	}
	for v := version; v < schemaVersion; v++ {
		tx, err := s.db.Begin()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrating to schema %d: %w", v+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrating to schema %d: %w", v+1, err)
		}
	}
	return nil
}

// PutDefinition stores a definition's PUT body; kind is "flow", "threshold",
// "group", "map" or "topology".
func (s *Store) PutDefinition(kind, name string, body []byte) error {
	_, err := s.db.Exec(`INSERT INTO definitions (kind, name, body, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated = excluded.updated`,
		kind, name, string(body), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store %s %q: %w", kind, name, err)
	}
	return nil
}

// DeleteDefinition forgets a definition.
func (s *Store) DeleteDefinition(kind, name string) error {
	if _, err := s.db.Exec(`DELETE FROM definitions WHERE kind = ? AND name = ?`, kind, name); err != nil {
		return fmt.Errorf("store delete %s %q: %w", kind, name, err)
	}
	return nil
}

// Definition is a stored PUT body.
type Definition struct {
	Kind, Name string
	Body       []byte
}

// Definitions returns every stored definition in the order to re-apply
// them: topology, groups and maps, then flows, then the thresholds on them.
func (s *Store) Definitions() ([]Definition, error) {
	rows, err := s.db.Query(`SELECT kind, name, body FROM definitions ORDER BY
		CASE kind WHEN 'topology' THEN 0 WHEN 'group' THEN 1 WHEN 'map' THEN 1 WHEN 'flow' THEN 2 ELSE 3 END, name`)
	if err != nil {
		return nil, fmt.Errorf("store definitions: %w", err)
	}
	defer rows.Close()
	var out []Definition
	for rows.Next() {
		var d Definition
		var body string
		if err := rows.Scan(&d.Kind, &d.Name, &body); err != nil {
			return nil, err
		}
		d.Body = []byte(body)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Event is what the store keeps of an event: its time, threshold and key
// for queries, and the whole event as JSON.
type Event struct {
	Timestamp int64 // ms since the epoch
	Threshold string
	FlowKey   string
	Body      any
}

// Elephant is what the store keeps of an ended elephant.
type Elephant struct {
	ElephantID int64
	Start, End int64 // ms since the epoch
	Src, Dst   string
	FlowKey    string
	Body       any
}

// AddEvent queues an event for writing. It never blocks: a full queue
// drops the event and counts it.
func (s *Store) AddEvent(e Event) {
	b, _ := json.Marshal(e.Body)
	s.enqueue(record{"events", []any{e.Timestamp, e.Threshold, e.FlowKey, string(b)}})
}

// AddElephant queues an ended elephant for writing, as AddEvent does.
func (s *Store) AddElephant(e Elephant) {
	b, _ := json.Marshal(e.Body)
	s.enqueue(record{"elephants", []any{e.ElephantID, e.Start, e.End, e.Src, e.Dst, e.FlowKey, string(b)}})
}

func (s *Store) enqueue(r record) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- r:
	default:
		s.dropped.Add(1)
	}
}

// Stats counts what the history writer did and dropped.
type Stats struct {
	Written, Dropped uint64
	Queued           int
	WriteSeconds     float64 // spent committing, in all
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Written: s.written.Load(), Dropped: s.dropped.Load(), Queued: len(s.queue),
		WriteSeconds: time.Duration(s.writeNs.Load()).Seconds()}
}

var inserts = map[string]string{
	"events":    `INSERT INTO events (ts, threshold, flow_key, body) VALUES (?, ?, ?, ?)`,
	"elephants": `INSERT INTO elephants (elephant_id, start, end, src, dst, flow_key, body) VALUES (?, ?, ?, ?, ?, ?, ?)`,
}

// write commits queued records in batches, and applies retention hourly.
func (s *Store) write() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.Batch)
	defer tick.Stop()
	retain := time.NewTicker(time.Hour)
	defer retain.Stop()
	s.retain()
	var batch []record
	flush := func() {
		if len(batch) == 0 {
			return
		}
		start := time.Now()
		err := s.commit(batch)
		s.writeNs.Add(int64(time.Since(start)))
		if err == nil {
			s.written.Add(uint64(len(batch)))
		} else {
			s.dropped.Add(uint64(len(batch)))
		}
		batch = batch[:0]
	}
	for {
		select {
		case r, ok := <-s.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, r)
			if len(batch) >= 1000 {
				flush()
			}
		case <-tick.C:
			flush()
		case <-retain.C:
			s.retain()
		}
	}
}

func (s *Store) commit(batch []record) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	for _, r := range batch {
		if _, err := tx.Exec(inserts[r.table], r.args...); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// retain deletes history past its age and row limits.
func (s *Store) retain() {
	cut := time.Now().Add(-s.cfg.RetainAge).UnixMilli()
	s.db.Exec(`DELETE FROM events WHERE ts < ?`, cut)
	s.db.Exec(`DELETE FROM elephants WHERE "end" < ?`, cut)
	for _, t := range []string{"events", "elephants"} {
		s.db.Exec(fmt.Sprintf(`DELETE FROM %s WHERE id <= (SELECT MAX(id) FROM %s) - ?`, t, t), s.cfg.RetainRows)
	}
}

// Query selects history: rows from since to until (ms since the epoch, 0
// for open), optionally of one threshold (events) or pair (elephants),
// newest first, at most limit.
type Query struct {
	Since, Until int64
	Threshold    string
	Src, Dst     string
	Limit        int
}

// Events returns stored events as their JSON.
func (s *Store) Events(ctx context.Context, q Query) ([]json.RawMessage, error) {
	where, args := q.clauses("ts")
	if q.Threshold != "" {
		where = append(where, "threshold = ?")
		args = append(args, q.Threshold)
	}
	return s.query(ctx, "events", "ts", where, args, q.Limit)
}

// Elephants returns stored elephants as their JSON.
func (s *Store) Elephants(ctx context.Context, q Query) ([]json.RawMessage, error) {
	where, args := q.clauses("start")
	if q.Src != "" {
		where = append(where, "src = ?")
		args = append(args, q.Src)
	}
	if q.Dst != "" {
		where = append(where, "dst = ?")
		args = append(args, q.Dst)
	}
	return s.query(ctx, "elephants", "start", where, args, q.Limit)
}

func (q Query) clauses(col string) ([]string, []any) {
	var where []string
	var args []any
	if q.Since != 0 {
		where = append(where, col+" >= ?")
		args = append(args, q.Since)
	}
	if q.Until != 0 {
		where = append(where, col+" < ?")
		args = append(args, q.Until)
	}
	return where, args
}

func (s *Store) query(ctx context.Context, table, col string, where []string, args []any, limit int) ([]json.RawMessage, error) {
	if limit <= 0 || limit > 10_000 {
		limit = 1000
	}
	sqlText := "SELECT body FROM " + table
	if len(where) > 0 {
		sqlText += " WHERE " + strings.Join(where, " AND ")
	}
	sqlText += " ORDER BY " + col + " DESC, id DESC LIMIT ?"
	rows, err := s.db.QueryContext(ctx, sqlText, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", table, err)
	}
	defer rows.Close()
	out := []json.RawMessage{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		out = append(out, json.RawMessage(body))
	}
	return out, rows.Err()
}

// Close writes what is queued and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}
