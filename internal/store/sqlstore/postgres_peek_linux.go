//go:build linux

package sqlstore

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// postgresHeard reports whether the server has sent anything on c since
// pgx last read from it, or closed it: on a connection at rest, which
// the server has no reason to speak on, that is the FATAL error and the
// close of a session the server ended (a restart, a failover,
// pg_terminate_backend). It peeks at the socket without waiting and
// without taking what it finds, so that pgx still reads it; it sends
// nothing. A socket it cannot look at counts as heard, so that the
// caller asks the server.
func postgresHeard(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // TLS: any bytes pending below it will do
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	var (
		perr error
		buf  [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true // never wait for the socket to become readable
	})
	if err != nil {
		return true
	}
	// Anything but "nothing pending" is bytes pending, the server's close
	// (nothing read, no error) or a socket in error.
	return !errors.Is(perr, unix.EAGAIN)
}
