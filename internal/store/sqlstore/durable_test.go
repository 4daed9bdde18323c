package sqlstore

import (
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestPostgresWritesCommitDurably: the node's write sessions commit
// synchronously (ADR 65) whatever the server, the database, the role or
// the DSN says: a session that would commit asynchronously
// (synchronous_commit off, which the test server has by default) is set
// to on, on every connection the writer makes, a new one after the
// server ended the last included; a stronger or equal setting (local,
// remote_write, on, remote_apply) is the operator's and stays.
func TestPostgresWritesCommitDurably(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"", "on"},
		{"&synchronous_commit=off", "on"},
		{"&synchronous_commit=local", "local"},
		{"&synchronous_commit=remote_write", "remote_write"},
		{"&synchronous_commit=remote_apply", "remote_apply"},
	} {
		t.Run(tc.want+tc.dsn, func(t *testing.T) {
			ctx := t.Context()
			dsn := pgtest.NewDatabase(t)
			db := openPostgres(t, dsn+tc.dsn)
			setting := func(when string) {
				t.Helper()
				var got string
				if err := db.w.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&got); err != nil || got != tc.want {
					t.Errorf("the write session's synchronous_commit %s: %q (%v), want %q", when, got, err, tc.want)
				}
			}
			setting("after the store opened")
			if n := endSessions(t, adminDB(t, dsn)); n == 0 {
				t.Fatal("no session of the node's to end")
			}
			if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()}); err != nil {
				t.Fatalf("write after the sessions ended: %v", err)
			}
			setting("on the connection made after the server ended the last")
		})
	}
}
