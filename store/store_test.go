package store_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fabrictrace/fabrictrace/store"
)

const writerEnv = "FABRICTRACE_STORE_WRITER"

// TestMain lets the test binary be a writer process for the kill -9 test.
func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		os.Exit(writer(path))
	}
	os.Exit(m.Run())
}

// writer adds events as fast as it can and prints how many the store has
// committed, until it is killed.
func writer(path string) int {
	s, err := store.Open(store.Config{Path: path, Batch: 10 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	base := time.Now().UnixMilli()
	for i := 0; ; i++ {
		s.AddEvent(store.Event{Timestamp: base + int64(i), Threshold: "t", FlowKey: strconv.Itoa(i), Body: map[string]int{"n": i}})
		if i%1000 == 0 {
			fmt.Println("committed", s.Stats().Written)
		}
	}
}

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(store.Config{Path: path, Batch: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDefinitionsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ft.db")
	s := open(t, path)
	must(t, s.PutDefinition("flow", "elephant", []byte(`{"keys":"ipsource"}`)))
	must(t, s.PutDefinition("threshold", "elephant", []byte(`{"metric":"elephant","value":1}`)))
	must(t, s.PutDefinition("flow", "elephant", []byte(`{"keys":"ipsource,ipdestination"}`))) // replaced
	must(t, s.PutDefinition("flow", "gone", []byte(`{}`)))
	must(t, s.DeleteDefinition("flow", "gone"))
	s.Close()

	s = open(t, path)
	defer s.Close()
	defs, err := s.Definitions()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range defs {
		got = append(got, d.Kind+"/"+d.Name+"="+string(d.Body))
	}
	want := `flow/elephant={"keys":"ipsource,ipdestination"} threshold/elephant={"metric":"elephant","value":1}`
	if strings.Join(got, " ") != want {
		t.Errorf("after a restart:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestHistoryIsQueryable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ft.db")
	s := open(t, path)
	base := time.Now().UnixMilli() - 10_000 // recent, inside the retention
	for i := range 100 {
		s.AddEvent(store.Event{Timestamp: base + int64(i), Threshold: []string{"elephant", "collision"}[i%2],
			FlowKey: "k", Body: map[string]int{"eventID": i}})
		s.AddElephant(store.Elephant{ElephantID: int64(i), Start: base + int64(i), End: base + 1000 + int64(i),
			Src: "172.16.1.11", Dst: fmt.Sprint("172.16.1.", 40+i%3), FlowKey: "k", Body: map[string]int{"elephantID": i}})
	}
	s.Close() // writes the queue
	s = open(t, path)
	defer s.Close()
	evs, err := s.Events(context.Background(), store.Query{Threshold: "collision", Since: base + 10, Until: base + 20, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || string(evs[0]) != `{"eventID":19}` || string(evs[2]) != `{"eventID":15}` {
		t.Errorf("collision events 1010..1020, newest 3: %s", evs)
	}
	els, err := s.Elephants(context.Background(), store.Query{Src: "172.16.1.11", Dst: "172.16.1.42", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 33 || string(els[0]) != `{"elephantID":98}` {
		t.Errorf("elephants to 172.16.1.42: %d, newest %s", len(els), els[0])
	}
}

func TestKillNineLosesNothingCommitted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ft.db")
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	sc := bufio.NewScanner(out)
	var committed uint64
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && committed < 20_000 && time.Now().Before(deadline) {
		f := strings.Fields(sc.Text())
		if f[0] == "error" {
			t.Fatal(sc.Text())
		}
		committed, _ = strconv.ParseUint(f[1], 10, 64)
	}
	if committed < 20_000 {
		t.Fatalf("only %d committed in 30 s", committed)
	}
	cmd.Process.Signal(syscall.SIGKILL) // in the middle of heavy writes
	cmd.Wait()

	s := open(t, path)
	defer s.Close()
	evs, err := s.Events(context.Background(), store.Query{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	// Everything committed before the last report is there; the newest row
	// is at least that far along.
	var newest struct{ N uint64 }
	json.Unmarshal(evs[0], &newest)
	if newest.N+1 < committed {
		t.Errorf("newest event after kill -9 is %d, but %d had been committed", newest.N, committed)
	}
}

func TestBadFilesGiveClearErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("this is not a database ", 100)), 0o644)
	if _, err := store.Open(store.Config{Path: junk}); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk file: %v", err)
	}
	if b, _ := os.ReadFile(junk); !strings.HasPrefix(string(b), "this is not") {
		t.Error("the junk file was overwritten")
	}

	newer := filepath.Join(dir, "newer.db")
	s := open(t, newer)
	s.Close()
	db, err := sql.Open("sqlite3", newer)
	must(t, err)
	_, err = db.Exec("PRAGMA user_version = 99")
	must(t, err)
	db.Close()
	if _, err := store.Open(store.Config{Path: newer}); err == nil || !strings.Contains(err.Error(), "newer fabrictrace") {
		t.Errorf("newer schema: %v", err)
	}

	if _, err := store.Open(store.Config{Path: filepath.Join(dir, "no", "such", "dir", "ft.db")}); err == nil {
		t.Error("a file in a missing directory opened")
	}
}

// A full queue drops and counts; it never blocks the caller.
func TestFullQueueDropsAndCounts(t *testing.T) {
	s, err := store.Open(store.Config{Path: filepath.Join(t.TempDir(), "ft.db"), Queue: 10, Batch: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 5000 {
		s.AddEvent(store.Event{Timestamp: int64(i), Threshold: "t"})
	}
	if st := s.Stats(); st.Dropped == 0 || st.Dropped+st.Written+uint64(st.Queued) < 5000-1000 {
		t.Errorf("stats %+v after 5000 events into a queue of 10", st)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
