// Package bgplog quiets an embedded GoBGP's log: GoBGP logs through
// log/slog, and its Info level is chatty (every FSM transition, every
// config change), so its Info lines become Debug; its warnings and errors
// keep their level.
package bgplog

import (
	"context"
	"log/slog"
)

// New returns a logger for GoBGP that writes to l, one level quieter at
// Info.
func New(l *slog.Logger) *slog.Logger { return slog.New(quieter{l.Handler()}) }

type quieter struct{ h slog.Handler }

func (q quieter) Enabled(ctx context.Context, level slog.Level) bool {
	return q.h.Enabled(ctx, demote(level))
}

func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	r.Level = demote(r.Level)
	r.Message = "gobgp: " + r.Message
	return q.h.Handle(ctx, r)
}

func (q quieter) WithAttrs(attrs []slog.Attr) slog.Handler { return quieter{q.h.WithAttrs(attrs)} }
func (q quieter) WithGroup(name string) slog.Handler       { return quieter{q.h.WithGroup(name)} }

func demote(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
