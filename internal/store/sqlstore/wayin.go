package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/varde-eid/varde/internal/store"
)

// wayInHeldIn reads, in tx, whether personID still holds w
// (store.WayIn), before tx stores the session of the login that used
// it: store.ErrWayInGone if not.
//
// SQLite runs it under the database's write lock, so the writes that
// take a way in away (DeletePasskey, ReplaceRecoveryCodesEndingOthers,
// RemoveIdentifier) come wholly before it or wholly after the
// session's commit, when they end the session. Where other nodes write
// at the same time (PostgreSQL, read committed) the rows it finds are
// read FOR KEY SHARE: the removal's DELETE of such a row waits until the
// session has committed, and its end of the person's sessions, a later
// statement, then finds the session; a removal that deleted the row
// first is waited for, and the read then finds no row. An update of the
// row's other columns (a passkey's sign count, a code's use) does not
// wait.
func (db *DB) wayInHeldIn(ctx context.Context, tx querier, personID string, w store.WayIn) error {
	if w.IsZero() {
		return nil
	}
	if db.unmatchable(personID) {
		return store.ErrWayInGone
	}
	if len(w.Passkey) > 0 {
		if err := db.heldIn(ctx, tx, db.st.passkeyHeldW, w.Passkey, personID); err != nil {
			return fmt.Errorf("passkey: %w", err)
		}
	}
	if len(w.RecoveryCode) > 0 {
		if err := db.heldIn(ctx, tx, db.st.recoveryCodeHeldW, w.RecoveryCode, personID); err != nil {
			return fmt.Errorf("recovery code: %w", err)
		}
	}
	if len(w.Identifiers) > 0 {
		if err := db.identifiersHeldIn(ctx, tx, personID, w.Identifiers); err != nil {
			return fmt.Errorf("identifiers: %w", err)
		}
	}
	return nil
}

// heldIn runs st, a read of one row by its key and personID, in tx:
// store.ErrWayInGone if it finds none.
func (db *DB) heldIn(ctx context.Context, tx querier, st *sql.Stmt, key []byte, personID string) error {
	var one int
	err := tx.StmtContext(ctx, st).QueryRowContext(ctx, key, personID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrWayInGone
	}
	return err
}

// identifiersHeldIn reads, in tx, who holds each of ids: store.ErrWayInGone
// unless personID holds at least one and nobody else any. The rows found
// are read as heldIn reads its row.
func (db *DB) identifiersHeldIn(ctx context.Context, tx querier, personID string, ids []store.Identifier) error {
	var (
		match []string
		args  []any
	)
	for _, id := range ids {
		if db.unmatchable(id.Scheme, id.Value) {
			continue
		}
		match = append(match, "(scheme = ? AND value = ?)")
		args = append(args, id.Scheme, id.Value)
	}
	if len(match) == 0 {
		return store.ErrWayInGone
	}
	q := "SELECT person_id FROM person_identifiers WHERE " + strings.Join(match, " OR ") + db.d.forKeyShare
	rows, err := tx.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	held := false
	for rows.Next() {
		var holder string
		if err := rows.Scan(&holder); err != nil {
			return err
		}
		if holder != personID {
			return fmt.Errorf("another person holds one: %w", store.ErrWayInGone)
		}
		held = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !held {
		return store.ErrWayInGone
	}
	return nil
}
