//go:build !linux

package sqlstore

import "net"

// postgresHeard cannot peek at a socket here (see
// postgres_peek_linux.go) and reports nothing heard: a session the
// server ended is found by pgx's ping after a second at rest, by a
// failed BEGIN, or by the statement that meets it.
func postgresHeard(net.Conn) bool { return false }
