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

func (s *Server) ui() http.Handler {
	sub, _ := fs.Sub(uiFiles, "ui")
	return http.StripPrefix("/ui/", http.FileServer(http.FS(sub)))
}

func (s *Server) nodes(w http.ResponseWriter, _ *http.Request) {
	s.reply(w, s.cfg.Engine.Nodes())
}
