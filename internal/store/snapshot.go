package store

import (
	"context"
	"time"
)

// Snapshots reads the store at one instant.
type Snapshots interface {
	// ReadSnapshot calls fn with reads that all see the store as it was
	// at one instant: the snapshot is taken before fn is called, and
	// nothing committed after that, by this node or any other, shows in
	// it. The read ends when fn returns, on every path, and ReadSnapshot
	// returns fn's error. A snapshot holds no writer back (SQLite in WAL
	// mode, PostgreSQL's REPEATABLE READ READ ONLY), but on SQLite the
	// log file cannot be reset while one is open: keep snapshots to what
	// must agree, such as a person's access request.
	ReadSnapshot(ctx context.Context, fn func(ctx context.Context, s Snapshot) error) error
}

// Snapshot is what can be read at one instant (Snapshots): the records
// of a person, as their access request gathers them. Each read is the
// aggregate's read of the same name.
type Snapshot interface {
	GetPerson(ctx context.Context, id string) (*Person, error)
	GetClient(ctx context.Context, id string) (*Client, error)
	ListPasskeys(ctx context.Context, personID string) ([]*Passkey, error)
	DescribeRecoveryCodes(ctx context.Context, personID string) (RecoveryCodeSet, error)
	ListPersonSessions(ctx context.Context, personID string, now time.Time) ([]*Session, error)
	ListPersonGrants(ctx context.Context, personID string, now time.Time) ([]*PersonGrant, error)
	ListPersonAuditAfter(ctx context.Context, personID string, afterSeq int64, limit int) ([]*AuditEvent, error)
	ListAuditRange(ctx context.Context, q AuditQuery) ([]*AuditEvent, error)
}
