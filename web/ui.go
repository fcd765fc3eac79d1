package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard: plain HTML, CSS, JS and SVG, embedded, asking nothing of
// any host but the collector.
//
//go:embed ui
var uiFiles embed.FS

// uiPolicy lets the dashboard load only what the collector serves.
const uiPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

func (s *Server) ui() http.Handler {
	sub, _ := fs.Sub(uiFiles, "ui")
	files := http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}

func (s *Server) nodes(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.Nodes())
}
