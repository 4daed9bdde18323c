package sqlstore

import (
	"context"
	"fmt"
	"slices"
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
			if ended, grants, err = db.endAccessIn(ctx, tx, retire, now); err != nil {
				return err
			}
		}
		if _, err := tx.StmtContext(ctx, db.st.insertIdentifier).ExecContext(ctx, id.Scheme, id.Value, personID); err != nil {
			return fmt.Errorf("add %s identifier: %w", id.Scheme, db.d.classify(err))
		}
		if _, err := tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(append(held[personID], id)), personID); err != nil {
			return err
		}
		return db.appendCounted(ctx, tx, events, len(ended), grants)
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
	if err := db.deleteIdentifierIn(ctx, tx, retire, id); err != nil {
		return id, err
	}
	return ids[held], nil
}

// appendCounted appends, in tx, the events that events returns for the
// sessions ended and the grants revoked; none if events is nil.
func (db *DB) appendCounted(ctx context.Context, tx querier, events func(sessions, grants int) []*store.AuditEvent, sessions int, grants int64) error {
	if events == nil {
		return nil
	}
	return db.appendEvents(ctx, tx, events(sessions, int(grants)))
}

// deleteIdentifierIn deletes, in tx, the row by which id finds personID.
func (db *DB) deleteIdentifierIn(ctx context.Context, tx querier, personID string, id store.Identifier) error {
	_, err := tx.ExecContext(ctx, db.d.rebind("DELETE FROM person_identifiers WHERE scheme = ? AND value = ? AND person_id = ?"),
		id.Scheme, id.Value, personID)
	return db.d.classify(err)
}

// endAccessIn ends, in tx, every session of personID and revokes every
// grant of theirs at now; it returns the sessions ended and the number
// of grants revoked.
func (db *DB) endAccessIn(ctx context.Context, tx querier, personID string, now time.Time) ([]*store.Session, int64, error) {
	ended, err := db.endPersonSessionsIn(ctx, tx, personID, "", now)
	if err != nil {
		return nil, 0, err
	}
	grants, err := db.revokePersonGrantsIn(ctx, tx, personID, now)
	return ended, grants, err
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

// RemoveIdentifier implements store.PersonNumbers in one transaction,
// the person's row read FOR UPDATE where other nodes write at the same
// time, so that a link or another removal waits: the last number is
// never removed by two removals of two numbers at once.
func (db *DB) RemoveIdentifier(ctx context.Context, personID string, id store.Identifier, now time.Time, events func(sessions, grants int) []*store.AuditEvent) ([]*store.Session, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("remove identifier from person %s: zero time", personID)
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.unmatchable(personID) {
			return store.ErrNotFound
		}
		ids, _, err := db.identifiersIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		kept, err := without(ids, id)
		if err != nil {
			return err
		}
		if err := db.deleteIdentifierIn(ctx, tx, personID, id); err != nil {
			return fmt.Errorf("remove %s identifier: %w", id.Scheme, err)
		}
		if _, err := tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(kept), personID); err != nil {
			return err
		}
		var grants int64
		if ended, grants, err = db.endAccessIn(ctx, tx, personID, now); err != nil {
			return err
		}
		return db.appendCounted(ctx, tx, events, len(ended), grants)
	}, func() {
		db.people.drop(personID)
		db.dropSessions(ended)
	})
	if err != nil {
		return nil, fmt.Errorf("remove identifier from person %s: %w", personID, err)
	}
	return ended, nil
}

// UnlinkIdentifier implements store.Persons in one transaction, the
// person's row read FOR UPDATE where other nodes write at the same time,
// as RemoveIdentifier reads it: a link, a removal or another unlink
// waits, so the last number is never taken by two at once. The session
// making the change is read after the lock, as a link's is
// (changingSessionIn).
func (db *DB) UnlinkIdentifier(ctx context.Context, personID string, id store.Identifier, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("unlink identifier from person %s: zero time", personID)
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.unmatchable(personID, except, id.Scheme, id.Value) {
			return store.ErrNotFound
		}
		ids, _, err := db.identifiersIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		if err := db.changingSessionIn(ctx, tx, personID, except); err != nil {
			return err
		}
		i := slices.IndexFunc(ids, func(h store.Identifier) bool { return h.Scheme == id.Scheme && h.Value == id.Value })
		switch {
		case i < 0:
			return fmt.Errorf("the person does not hold the %s identifier: %w", id.Scheme, store.ErrNotFound)
		case !ids[i].Linked():
			return fmt.Errorf("the %s identifier was not linked: %w", id.Scheme, store.ErrConflict)
		}
		kept, err := without(ids, id)
		if err != nil {
			return err
		}
		if err := db.deleteIdentifierIn(ctx, tx, personID, id); err != nil {
			return fmt.Errorf("unlink %s identifier: %w", id.Scheme, err)
		}
		if _, err := tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(kept), personID); err != nil {
			return err
		}
		if ended, err = db.endPersonSessionsIn(ctx, tx, personID, except, now); err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return db.appendEvents(ctx, tx, events(len(ended)))
	}, func() {
		db.people.drop(personID)
		db.dropSessions(ended)
	})
	if err != nil {
		return nil, fmt.Errorf("unlink identifier from person %s: %w", personID, err)
	}
	return ended, nil
}

// without returns ids without id (by scheme and value), refusing one
// not among them and the last one.
func without(ids []store.Identifier, id store.Identifier) ([]store.Identifier, error) {
	kept := make([]store.Identifier, 0, len(ids))
	for _, h := range ids {
		if h.Scheme != id.Scheme || h.Value != id.Value {
			kept = append(kept, h)
		}
	}
	switch {
	case len(kept) == len(ids):
		return nil, fmt.Errorf("the person does not hold the %s identifier: %w", id.Scheme, store.ErrConflict)
	case len(kept) == 0:
		return nil, fmt.Errorf("the %s identifier is the person's last: %w", id.Scheme, store.ErrConflict)
	}
	return kept, nil
}
