//go:build !linux

package sqlstore

import "syscall"

// postgresDialControl sets nothing where TCP_USER_TIMEOUT is not Linux's
// (postgres_dial_linux.go); keepalives still find dead idle connections.
func postgresDialControl(string, string, syscall.RawConn) error { return nil }
