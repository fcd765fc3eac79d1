package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenUDP opens one UDP socket with SO_REUSEPORT (so several can share the
// port) and asks for a receive buffer of rcvbuf bytes. It returns the
// effective size, which the kernel doubles and caps at net.core.rmem_max.
func listenUDP(ctx context.Context, addr string, rcvbuf int) (*net.UDPConn, int, error) {
	var effective int
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			// SO_RCVBUFFORCE passes rmem_max when we may (CAP_NET_ADMIN);
			// otherwise SO_RCVBUF gives what the sysctl allows.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
			effective, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, 0, err
	}
	return pc.(*net.UDPConn), effective, nil
}

// mmsghdr is struct mmsghdr from <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batchReader receives up to len(bufs) datagrams per recvmmsg call into
// buffers it owns, with no allocation per call.
type batchReader struct {
	raw   syscall.RawConn
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	n     int
	errno syscall.Errno
	read  func(fd uintptr) bool // made once: a closure per call would allocate
	count int                   // datagrams of the last batch, set by the reader for the worker
}

func newBatchReader(c *net.UDPConn, batch, size int) (*batchReader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{raw: raw, hdrs: make([]mmsghdr, batch), iovs: make([]unix.Iovec, batch),
		names: make([]unix.RawSockaddrInet6, batch), bufs: make([][]byte, batch)}
	for i := range batch {
		r.bufs[i] = make([]byte, size)
	}
	r.read = func(fd uintptr) bool {
		for i := range r.hdrs {
			r.iovs[i].Base = &r.bufs[i][0]
			r.iovs[i].SetLen(len(r.bufs[i]))
			h := &r.hdrs[i].hdr
			h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
			h.Namelen = uint32(unsafe.Sizeof(r.names[i]))
			h.Iov = &r.iovs[i]
			h.Iovlen = 1
			h.Flags = 0
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // wait in the poller until the socket is readable
		}
		r.n, r.errno = int(n), e
		return true
	}
	return r, nil
}

// readBatch blocks until at least one datagram arrives and returns how many
// are in bufs. Use datagram(i) to read them.
func (r *batchReader) readBatch() (int, error) {
	if err := r.raw.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", r.errno)
	}
	return r.n, nil
}

// datagram returns the i-th datagram of the last batch, its source, and
// whether the kernel cut it to fit the buffer.
func (r *batchReader) datagram(i int) (b []byte, src netip.AddrPort, truncated bool) {
	h := &r.hdrs[i]
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		src = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:]))
	case unix.AF_INET6:
		src = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]))
	}
	n := min(int(h.len), len(r.bufs[i]))
	return r.bufs[i][:n], src, h.hdr.Flags&unix.MSG_TRUNC != 0
}
