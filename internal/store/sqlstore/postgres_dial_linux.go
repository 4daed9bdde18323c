//go:build linux

package sqlstore

import (
	"errors"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// postgresDialControl sets TCP_USER_TIMEOUT on each TCP connection to
// PostgreSQL: how long the kernel lets sent data go unacknowledged
// before it drops the connection. Where the server's machine or the
// network between has gone (packets dropped, nothing refused), a query
// then fails after postgresTCPUserTimeout instead of waiting for TCP's
// retransmissions to give up, some fifteen minutes; reads, which have no
// deadline of their own, are freed too.
func postgresDialControl(network, _ string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(postgresTCPUserTimeout/time.Millisecond))
	})
	return errors.Join(err, serr)
}
