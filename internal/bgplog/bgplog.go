// Package bgplog routes GoBGP's log lines into log/slog, so an embedded BGP
// speaker logs like the rest of fabrictrace instead of through logrus.
package bgplog

import (
	"context"
	"log/slog"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// New returns a GoBGP logger that writes to l. GoBGP's Info level is chatty
// (every FSM transition, every config change), so it maps to slog's Debug;
// its warnings and errors keep their level.
func New(l *slog.Logger) gobgplog.Logger { return &logger{l: l, level: gobgplog.InfoLevel} }

type logger struct {
	l     *slog.Logger
	level gobgplog.LogLevel
}

func (g *logger) log(level slog.Level, msg string, fields gobgplog.Fields) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		attrs = append(attrs, k, v)
	}
	g.l.Log(context.Background(), level, "gobgp: "+msg, attrs...)
}

func (g *logger) Panic(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f); panic(msg) }
func (g *logger) Fatal(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *logger) Error(msg string, f gobgplog.Fields) { g.log(slog.LevelError, msg, f) }
func (g *logger) Warn(msg string, f gobgplog.Fields)  { g.log(slog.LevelWarn, msg, f) }
func (g *logger) Info(msg string, f gobgplog.Fields)  { g.log(slog.LevelDebug, msg, f) }
func (g *logger) Debug(msg string, f gobgplog.Fields) { g.log(slog.LevelDebug-4, msg, f) }

func (g *logger) SetLevel(level gobgplog.LogLevel) { g.level = level }
func (g *logger) GetLevel() gobgplog.LogLevel      { return g.level }
