package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Past -http-max-conns a client is answered 503 at once and counted; a
// connection that closes makes room again.
func TestConnectionCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitListener(ln, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := []net.Conn{dial(), dial()} // held open, sending nothing
	for l.open.Load() < 2 {
		time.Sleep(time.Millisecond) // Accept runs on the server's goroutine
	}
	third := dial()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(third).ReadString('\n')
	if err != nil || !strings.Contains(status, "503") || l.refused.Load() != 1 {
		t.Fatalf("third connection: %q (%v), %d refused; want a 503 and 1", status, err, l.refused.Load())
	}
	idle[0].Close()
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			ok = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
	}
	if !ok {
		t.Error("no room after an idle connection closed")
	}
}
