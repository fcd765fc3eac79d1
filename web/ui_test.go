package web_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fabrictrace/fabrictrace/sim"
)

// The dashboard is served by the collector itself and asks nothing of any
// other host: no CDN, no fonts from elsewhere.
func TestDashboardIsServedAndSelfContained(t *testing.T) {
	r := newRig(t, sim.Config{Seed: 1}, false)
	resp, err := http.Get(r.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/" || !strings.Contains(string(page), "<title>fabrictrace</title>") {
		t.Fatalf("/ led to %s: %.100s", resp.Request.URL.Path, page)
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, asset := range []string{"/ui/", "/ui/app.js", "/ui/style.css"} {
		out := r.must("GET", asset, "", 200)
		for _, m := range external.FindAllString(out, -1) {
			if m != "http://www.w3.org" { // the SVG namespace, a name, never fetched
				t.Errorf("%s refers to another host: %s", asset, m)
			}
		}
	}
	// The API's own paths are untouched by the dashboard's.
	r.must("GET", "/flow/json", "", 200)
	r.must("GET", "/nodes/json", "", 200)
}
