package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.PersonNumbers = (*DB)(nil)

// AddIdentifier implements store.PersonNumbers in one transaction. Both
// persons' rows are read FOR UPDATE where other nodes write at the same
// time, in the order of their IDs so that two moves between the same
// two persons cannot wait on each other, and what the retired person
// holds is counted after the lock: a passkey added to them meanwhile
// (CreatePasskey locks the row too) is either counted, and the move
// refused, or comes after the retirement, to a blocked person. A block
// of the person the identifier goes to, stored before, stops it in the
// same way.
func (db *DB) AddIdentifier(ctx context.Context, personID string, id store.Identifier, retire, reason string, now time.Time, events func(sessions, grants int) []*store.AuditEvent) ([]*store.Session, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("add identifier to person %s: zero time", personID)
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.unmatchable(personID, retire, id.Scheme, id.Value) {
			return store.ErrNotFound
		}
		if retire == personID {
			return fmt.Errorf("the person to retire is the person the identifier goes to: %w", store.ErrConflict)
		}
		first, second := personID, retire
		if retire != "" && retire < personID {
			first, second = retire, personID
		}
		held := map[string][]store.Identifier{}
		for _, pid := range []string{first, second} {
			if pid == "" {
				continue
			}
			ids, blocked, err := db.identifiersIn(ctx, tx, pid)
			if err != nil {
				return err
			}
			if blocked && pid == personID {
				return store.ErrBlocked
			}
			held[pid] = ids
		}
		var grants int64
		if retire != "" {
			moved, err := db.retireIn(ctx, tx, retire, held[retire], id, reason, now)
			if err != nil {
				return err
			}
			id = moved
			if ended, err = db.endPersonSessionsIn(ctx, tx, retire, "", now); err != nil {
				return err
			}
			if grants, err = db.revokePersonGrantsIn(ctx, tx, retire, now); err != nil {
				return err
			}
		}
		if _, err := tx.StmtContext(ctx, db.st.insertIdentifier).ExecContext(ctx, id.Scheme, id.Value, personID); err != nil {
			return fmt.Errorf("add %s identifier: %w", id.Scheme, db.d.classify(err))
		}
		if _, err := tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(append(held[personID], id)), personID); err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return db.appendEvents(ctx, tx, events(len(ended), int(grants)))
	}, func() {
		db.people.drop(personID)
		db.people.drop(retire)
		db.dropSessions(ended)
	})
	if err != nil {
		return nil, fmt.Errorf("add identifier to person %s: %w", personID, err)
	}
	return ended, nil
}

// retireIn checks, in tx, that id is all that person retire holds (ids
// their identifiers, their row locked), takes it from them and blocks
// them at now for reason. It returns id as they held it, with its
// level.
func (db *DB) retireIn(ctx context.Context, tx querier, retire string, ids []store.Identifier, id store.Identifier, reason string, now time.Time) (store.Identifier, error) {
	held := -1
	for i, h := range ids {
		if h.Scheme == id.Scheme && h.Value == id.Value {
			held = i
		}
	}
	if held < 0 {
		return id, fmt.Errorf("the identifier is not the retired person's: %w", store.ErrConflict)
	}
	if len(ids) > 1 {
		return id, fmt.Errorf("the retired person holds other identifiers: %w", store.ErrConflict)
	}
	var passkeys, codes int
	err := tx.QueryRowContext(ctx, db.d.rebind("SELECT (SELECT count(*) FROM passkeys WHERE person_id = ?), "+
		"(SELECT count(*) FROM recovery_codes WHERE person_id = ?)"), retire, retire).Scan(&passkeys, &codes)
	if err != nil {
		return id, db.d.classify(err)
	}
	switch {
	case passkeys > 0:
		return id, fmt.Errorf("the retired person holds passkeys: %w", store.ErrConflict)
	case codes > 0:
		return id, fmt.Errorf("the retired person holds recovery codes: %w", store.ErrConflict)
	}
	res, err := tx.ExecContext(ctx, db.d.rebind("UPDATE persons SET identifiers = ?, blocked_at = ?, blocked_reason = ? WHERE id = ? AND blocked_at = 0"),
		jsonText([]store.Identifier{}), micros(now), reason, retire)
	if err != nil {
		return id, db.d.classify(err)
	}
	if err := db.changedOne(ctx, tx, res, retire, "the retired person is blocked"); err != nil {
		return id, err
	}
	if _, err := tx.ExecContext(ctx, db.d.rebind("DELETE FROM person_identifiers WHERE scheme = ? AND value = ? AND person_id = ?"),
		id.Scheme, id.Value, retire); err != nil {
		return id, db.d.classify(err)
	}
	return ids[held], nil
}

// revokePersonGrantsIn revokes at now, in tx, every grant of personID
// not revoked yet, and counts them.
func (db *DB) revokePersonGrantsIn(ctx context.Context, tx querier, personID string, now time.Time) (int64, error) {
	res, err := tx.ExecContext(ctx, db.d.rebind("UPDATE grants SET revoked_at = ? WHERE person_id = ? AND revoked_at = 0"), micros(now), personID)
	if err != nil {
		return 0, fmt.Errorf("revoke grants: %w", db.d.classify(err))
	}
	return res.RowsAffected()
}
