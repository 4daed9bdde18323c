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
	// Control, not Read: Read would wait for the descriptor's read lock,
	// which pgx's background reader holds for as long as it is blocked
	// reading the socket, so the peek would wait as long, with the write
	// pool's only connection. Control takes no lock and MSG_DONTWAIT
	// never waits. Bytes the background reader has taken already are not
	// seen: the connection is then not pinged, as before the peek.
	err = rc.Control(func(fd uintptr) {
		_, _, perr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	})
	if err != nil {
		return true
	}
	// Anything but "nothing pending" is bytes pending, the server's close
	// (nothing read, no error) or a socket in error.
	return !errors.Is(perr, unix.EAGAIN)
}
