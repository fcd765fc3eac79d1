package main

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// limitListener holds at most max HTTP connections open at once. One past
// the cap is answered 503 at once and closed, and counted: a flood of idle
// or slow connections cannot take every file descriptor, and a client that
// is refused hears why.
type limitListener struct {
	net.Listener
	open     atomic.Int64
	max      int64
	refused  atomic.Uint64
	accepted atomic.Uint64 // every connection served, since the start
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: int64(max)}
}

const busyBody = "too many connections to the collector (-http-max-conns); retry\n"

var busyReply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nRetry-After: 1\r\n" +
	"Content-Length: " + strconv.Itoa(len(busyBody)) + "\r\n\r\n" + busyBody

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			l.accepted.Add(1)
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		go func() {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write([]byte(busyReply))
			c.Close()
		}()
	}
}

type limitedConn struct {
	net.Conn
	l      *limitListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}
