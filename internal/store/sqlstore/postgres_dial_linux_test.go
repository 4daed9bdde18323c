//go:build linux

package sqlstore

import (
	"database/sql"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"github.com/varde-eid/varde/internal/pgtest"
)

// TestPostgresTCPUserTimeout reads TCP_USER_TIMEOUT back from a
// connection of each pool.
func TestPostgresTCPUserTimeout(t *testing.T) {
	db := openPostgres(t, pgtest.NewDatabase(t))
	for name, pool := range map[string]*sql.DB{"read": db.r, "write": db.w} {
		conn, err := pool.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got int
		err = conn.Raw(func(dc any) error {
			nc := dc.(interface{ Conn() *pgx.Conn }).Conn().PgConn().Conn()
			tc, ok := nc.(*net.TCPConn)
			if !ok {
				return errors.New("not a TCP connection")
			}
			rc, err := tc.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			err = rc.Control(func(fd uintptr) {
				got, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
			})
			return errors.Join(err, serr)
		})
		conn.Close()
		if err != nil {
			t.Fatalf("%s pool: %v", name, err)
		}
		if want := int(postgresTCPUserTimeout / time.Millisecond); got != want {
			t.Errorf("%s pool: TCP_USER_TIMEOUT = %d ms, want %d", name, got, want)
		}
	}
}
