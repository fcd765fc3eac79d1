package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/fabrictrace/fabrictrace/decode/sflowtest"
)

// load is a set of datagrams to send round-robin (sflowtest.LoadDatagrams).
// Sequence numbers are rewritten in place before each send.
type load struct {
	datagrams [][]byte
	seq       []uint32 // per agent
}

const samplesPerDatagram = sflowtest.LoadSamplesPerDatagram

func newLoad(tuples int) *load {
	return &load{datagrams: sflowtest.LoadDatagrams(tuples), seq: make([]uint32, 4)}
}

// next stamps datagram i with its agent's next sequence number.
func (l *load) next(i int) []byte {
	b := l.datagrams[i%len(l.datagrams)]
	agent := (i % len(l.datagrams)) % 4
	l.seq[agent]++
	binary.BigEndian.PutUint32(b[16:], l.seq[agent]) // datagram sequence, after version, address and sub-agent
	return b
}

// send paces datagrams to addr at rate for d, 32 per sendmmsg, from 4
// sockets (distinct source ports, so SO_REUSEPORT can spread them). It
// returns what it sent and for how long.
func send(ctx context.Context, addr string, l *load, rate float64, d time.Duration, pin bool) (uint64, time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if pin {
		var set unix.CPUSet
		set.Set(0)
		unix.SchedSetaffinity(0, &set) // best effort: a 1-CPU machine just shares
	}
	var conns []*ipv4.PacketConn
	for range 4 {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return 0, 0, err
		}
		defer c.Close()
		conns = append(conns, ipv4.NewPacketConn(c.(*net.UDPConn)))
	}
	msgs := make([]ipv4.Message, 32)
	var sent uint64
	start := time.Now()
	i := 0
	for ctx.Err() == nil {
		elapsed := time.Since(start)
		if elapsed >= d {
			break
		}
		due := uint64(rate*elapsed.Seconds()) - sent
		if due == 0 || int64(due) < 0 {
			time.Sleep(200 * time.Microsecond) // ahead of the pace: coarse, and said so in the report
			continue
		}
		n := min(int(due), len(msgs))
		for k := range n {
			msgs[k].Buffers = [][]byte{l.next(i)}
			i++
		}
		c := conns[i%len(conns)]
		w, err := c.WriteBatch(msgs[:n], 0)
		if err != nil && w == 0 {
			time.Sleep(100 * time.Microsecond) // ECONNREFUSED while the target starts, or a full queue
			continue
		}
		sent += uint64(w)
	}
	return sent, time.Since(start), nil
}

// bare is the ceiling: a recvmmsg loop that counts datagrams and reads each
// one's sample count, nothing else. SIGUSR1 prints "datagrams samples".
func bare(addr string) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	c.(*net.UDPConn).SetReadBuffer(32 << 20)
	p := ipv4.NewPacketConn(c)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	var datagrams, samples atomic.Uint64
	go func() {
		msgs := make([]ipv4.Message, 64)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		for {
			n, err := p.ReadBatch(msgs, 0)
			if err != nil {
				continue
			}
			var s uint64
			for _, m := range msgs[:n] {
				if m.N >= 28 {
					s += uint64(binary.BigEndian.Uint32(m.Buffers[0][24:28]))
				}
			}
			samples.Add(s)
			datagrams.Add(uint64(n))
		}
	}()
	fmt.Println("ready")
	for range usr1 {
		fmt.Println(datagrams.Load(), samples.Load())
	}
}
