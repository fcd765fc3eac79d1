package main

import (
	"strings"
	"testing"
)

// A -db the collector cannot write says why, and what to do.
func TestStoreErrorsSayWhatToDo(t *testing.T) {
	for path, want := range map[string]string{
		"/sys/fabrictrace.db":             "permission denied",
		"/nonexistent-dir/fabrictrace.db": "directory /nonexistent-dir does not exist",
		t.TempDir() + "/fabrictrace.db":   "",
	} {
		err := checkDB(path)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", path, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "-db")):
			t.Errorf("%s: %v; want %q and a word on -db", path, err, want)
		}
	}
}
