package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// -geoip: none is no database; a named file that is missing is an error
// that names it, never a silently absent country: key.
func TestOpenGeoIP(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if db, err := openGeoIP("", logger); db != nil || err != nil {
		t.Errorf(`-geoip "": %v, %v; want none`, db, err)
	}
	missing := filepath.Join(t.TempDir(), "GeoIP.dat")
	if _, err := openGeoIP(missing, logger); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("-geoip %s: %v; want an error naming the file", missing, err)
	}
}
