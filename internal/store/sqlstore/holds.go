package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.AuditHolds = (*DB)(nil)

const holdCols = "id, person_id, from_time, to_time, held_until, reason, created_by, created_at, " +
	"released_at, release_reason, released_by"

// heldAddr is the condition that a live hold covers the address row
// named addr (its event_seq and event_time), at the time given as its
// one argument (ADR 45). Holds are few: each is looked at for each
// expired address, and the event's person read by the log's key only
// for a hold of a person.
func heldAddr(addr string) string {
	return "EXISTS (SELECT 1 FROM audit_holds h WHERE h.released_at = 0 AND h.held_until > ? " +
		"AND " + addr + ".event_time >= h.from_time AND " + addr + ".event_time < h.to_time " +
		"AND (h.person_id = '' OR h.person_id = (SELECT person_id FROM audit_log WHERE seq = " + addr + ".event_seq)))"
}

func scanHold(s scanner) (*store.AuditHold, error) {
	var (
		h                                  store.AuditHold
		from, to, until, created, released int64
	)
	if err := s.Scan(&h.ID, &h.PersonID, &from, &to, &until, &h.Reason, &h.By, &created,
		&released, &h.ReleaseReason, &h.ReleasedBy); err != nil {
		return nil, err
	}
	h.From, h.To, h.Until, h.CreatedAt, h.ReleasedAt = fromMicros(from), fromMicros(to), fromMicros(until),
		fromMicros(created), fromMicros(released)
	return &h, nil
}

// AddAuditHold implements store.AuditHolds.
func (db *DB) AddAuditHold(ctx context.Context, h *store.AuditHold, e *store.AuditEvent) error {
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, db.d.rebind(insertSQL("audit_holds", holdCols)), h.ID, h.PersonID,
			micros(h.From), micros(h.To), micros(h.Until), h.Reason, h.By, micros(h.CreatedAt), int64(0), "", "")
		if err != nil {
			return db.d.classify(err)
		}
		return db.auditIn(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("add audit hold %s: %w", h.ID, err)
	}
	return nil
}

// GetAuditHold implements store.AuditHolds.
func (db *DB) GetAuditHold(ctx context.Context, id string) (*store.AuditHold, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("audit hold %s: %w", id, store.ErrNotFound)
	}
	h, err := scanHold(db.reads().QueryRowContext(ctx, db.d.rebind("SELECT "+holdCols+" FROM audit_holds WHERE id = ?"), id))
	if err != nil {
		return nil, fmt.Errorf("audit hold %s: %w", id, notFound(err))
	}
	return h, nil
}

// ListAuditHolds implements store.AuditHolds. Holds are few (one per
// order), so they are read without an index.
func (db *DB) ListAuditHolds(ctx context.Context, now, endedSince time.Time) ([]*store.AuditHold, error) {
	rows, err := read(db.reads().QueryContext(ctx, db.d.rebind("SELECT "+holdCols+" FROM audit_holds "+
		"WHERE (released_at = 0 AND held_until > ?) "+
		"OR (CASE WHEN released_at <> 0 THEN released_at ELSE held_until END) >= ? "+
		"ORDER BY created_at DESC, id"), micros(now), micros(endedSince)))
	if err != nil {
		return nil, fmt.Errorf("list audit holds: %w", err)
	}
	out, err := collect(rows, scanHold)
	if err != nil {
		return nil, fmt.Errorf("list audit holds: %w", err)
	}
	return out, nil
}

// ExtendAuditHold implements store.AuditHolds.
func (db *DB) ExtendAuditHold(ctx context.Context, id string, until, now time.Time, e *store.AuditEvent) (*store.AuditHold, error) {
	h, err := db.changeHold(ctx, id, e, "UPDATE audit_holds SET held_until = ? "+
		"WHERE id = ? AND released_at = 0 AND held_until > ? AND held_until < ?",
		micros(until), id, micros(now), micros(until))
	if err != nil {
		return nil, fmt.Errorf("extend audit hold %s: %w", id, err)
	}
	return h, nil
}

// ReleaseAuditHold implements store.AuditHolds.
func (db *DB) ReleaseAuditHold(ctx context.Context, id, reason, by string, now time.Time, e *store.AuditEvent) (*store.AuditHold, error) {
	h, err := db.changeHold(ctx, id, e, "UPDATE audit_holds SET released_at = ?, release_reason = ?, released_by = ? "+
		"WHERE id = ? AND released_at = 0 AND held_until > ?",
		micros(now), reason, by, id, micros(now))
	if err != nil {
		return nil, fmt.Errorf("release audit hold %s: %w", id, err)
	}
	return h, nil
}

// changeHold runs update, a conditional UPDATE of the hold id with
// args, and appends e in the same write; it returns the hold as
// changed. A hold the condition left alone is ErrConflict, a missing
// one ErrNotFound.
func (db *DB) changeHold(ctx context.Context, id string, e *store.AuditEvent, update string, args ...any) (*store.AuditHold, error) {
	if db.unmatchable(id) {
		return nil, store.ErrNotFound
	}
	var h *store.AuditHold
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		var err error
		h, err = scanHold(tx.QueryRowContext(ctx, db.d.rebind(update+" RETURNING "+holdCols), args...))
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			err = tx.QueryRowContext(ctx, db.d.rebind("SELECT 1 FROM audit_holds WHERE id = ?"), id).Scan(&one)
			if err == nil {
				return store.ErrConflict
			}
			return notFound(err)
		}
		if err != nil {
			return db.d.classify(err)
		}
		return db.auditIn(ctx, tx, e)
	})
	return h, err
}

// CountAuditHoldAddresses implements store.AuditHolds. It reads the
// events h covers by the log's index by person or by time, and their
// addresses by the addresses' key, on a read connection: a hold of a
// person costs the person's events, one of a window the events in it,
// once, when it is added.
func (db *DB) CountAuditHoldAddresses(ctx context.Context, h *store.AuditHold) (int64, error) {
	q := "SELECT COUNT(*) FROM audit_log l JOIN audit_addresses a ON a.event_seq = l.seq " +
		"WHERE a.event_time >= ? AND a.event_time < ? AND "
	args := []any{micros(h.From), micros(h.To)}
	if h.PersonID != "" {
		q += "l.person_id = ? AND l.person_id <> ''"
		args = append(args, h.PersonID)
	} else {
		q += "l.time >= ? AND l.time < ?"
		args = append(args, micros(h.From), micros(h.To))
	}
	var n int64
	if err := db.reads().QueryRowContext(ctx, db.d.rebind(q), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the addresses hold %s covers: %w", h.ID, err)
	}
	return n, nil
}
