package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.PersonBlocks = (*DB)(nil)

// BlockPerson implements store.PersonBlocks: the block, the end of the
// person's sessions, the revocation of their grants and the events are
// one transaction. The conditional UPDATE of the person's row is the
// compare-and-swap that makes a second block a conflict, and, where
// other nodes write at the same time, locks the row as every change of
// the person's ways in does (lockPerson).
func (db *DB) BlockPerson(ctx context.Context, personID, reason string, now time.Time, events func(sessions, grants int) []*store.AuditEvent) ([]*store.Session, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("block person %s: zero time", personID)
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.unmatchable(personID) {
			return store.ErrNotFound
		}
		res, err := tx.ExecContext(ctx, db.d.rebind("UPDATE persons SET blocked_at = ?, blocked_reason = ? WHERE id = ? AND blocked_at = 0"),
			micros(now), reason, personID)
		if err != nil {
			return db.d.classify(err)
		}
		if err := db.changedOne(ctx, tx, res, personID, "blocked already"); err != nil {
			return err
		}
		if ended, err = db.endPersonSessionsIn(ctx, tx, personID, "", now); err != nil {
			return err
		}
		revoked, err := db.revokePersonGrantsIn(ctx, tx, personID, now)
		if err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return db.appendEvents(ctx, tx, events(len(ended), int(revoked)))
	}, func() {
		db.people.drop(personID)
		db.dropSessions(ended)
	})
	if err != nil {
		return nil, fmt.Errorf("block person %s: %w", personID, err)
	}
	return ended, nil
}

// UnblockPerson implements store.PersonBlocks with one conditional
// UPDATE and the event in one transaction.
func (db *DB) UnblockPerson(ctx context.Context, personID string, e *store.AuditEvent) error {
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		if db.unmatchable(personID) {
			return store.ErrNotFound
		}
		res, err := tx.ExecContext(ctx, db.d.rebind("UPDATE persons SET blocked_at = 0, blocked_reason = '' WHERE id = ? AND blocked_at <> 0"), personID)
		if err != nil {
			return db.d.classify(err)
		}
		if err := db.changedOne(ctx, tx, res, personID, "not blocked"); err != nil {
			return err
		}
		return db.auditIn(ctx, tx, e)
	}, func() { db.people.drop(personID) })
	if err != nil {
		return fmt.Errorf("unblock person %s: %w", personID, err)
	}
	return nil
}

// changedOne tells, after a conditional UPDATE of personID's row, a
// change (nil) from a condition that did not hold (ErrConflict, saying
// why) and from a missing person (ErrNotFound).
func (db *DB) changedOne(ctx context.Context, tx querier, res interface{ RowsAffected() (int64, error) }, personID, why string) error {
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return err
	}
	var one int
	if err := tx.StmtContext(ctx, db.st.lockPerson).QueryRowContext(ctx, personID).Scan(&one); err != nil {
		return notFound(err)
	}
	return fmt.Errorf("%s: %w", why, store.ErrConflict)
}

// unblockedIn reads, in tx, whether personID may be given a new way in:
// ErrNotFound if there is no such person, ErrBlocked if they are blocked
// (store.PersonBlocks). Where other nodes write at the same time the
// row is read FOR UPDATE, the lock BlockPerson's update takes too: a
// block lands either before the write that read it, which it then
// stops, or after that write committed, which it then finds.
func (db *DB) unblockedIn(ctx context.Context, tx querier, personID string) error {
	var blockedAt int64
	if err := tx.StmtContext(ctx, db.st.lockPersonBlocked).QueryRowContext(ctx, personID).Scan(&blockedAt); err != nil {
		return notFound(err)
	}
	if blockedAt != 0 {
		return store.ErrBlocked
	}
	return nil
}

// PersonAccess implements store.PersonBlocks with two counting reads. A
// session counts while store.SessionLive holds for it at now, with the
// idle timeout set (SetSessionIdleTimeout).
func (db *DB) PersonAccess(ctx context.Context, personID string, now time.Time) (store.PersonAccess, error) {
	var a store.PersonAccess
	if db.unmatchable(personID) {
		return a, nil
	}
	idleBefore := db.idleBefore(micros(now))[0]
	err := db.r.QueryRowContext(ctx, db.d.rebind("SELECT count(*) FROM sessions WHERE person_id = ? AND expires_at > ?"+
		" AND (CASE WHEN last_used <> 0 THEN last_used ELSE created_at END) > ?"), personID, micros(now), idleBefore).Scan(&a.Sessions)
	if err != nil {
		return a, fmt.Errorf("count sessions of person %s: %w", personID, unavailable(err, false))
	}
	err = db.r.QueryRowContext(ctx, db.d.rebind("SELECT count(*), coalesce(sum(CASE WHEN t.scope LIKE ? THEN 1 ELSE 0 END), 0)"+
		" FROM grants g JOIN tokens t ON t.grant_id = g.id WHERE g.person_id = ? AND g.revoked_at = 0"+
		" AND t.kind = ? AND t.used_at = 0 AND t.expires_at > ?"),
		`%"offline_access"%`, personID, store.TokenRefresh, micros(now)).Scan(&a.RefreshTokens, &a.Offline)
	if err != nil {
		return a, fmt.Errorf("count refresh tokens of person %s: %w", personID, unavailable(err, false))
	}
	return a, nil
}
