package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/varde-eid/varde/internal/store"
)

const auditCols = "seq, time, type, person_id, client_id, provider, level, result, reason, details, " +
	"prev_hash, hash"

func scanAudit(s scanner) (*store.AuditEvent, error) {
	var (
		e       store.AuditEvent
		t       int64
		details string
	)
	err := s.Scan(&e.Seq, &t, &e.Type, &e.PersonID, &e.ClientID, &e.Provider, &e.Level, &e.Result,
		&e.Reason, &details, &e.PrevHash, &e.Hash)
	if err != nil {
		return nil, err
	}
	e.Time = fromMicros(t)
	if err := decodeJSON("details", details, &e.Details); err != nil {
		return nil, err
	}
	return &e, nil
}

// AppendAudit implements store.AuditLog: reading the chain's head and
// inserting the next event happen in one write transaction, and the
// write lock is taken at BEGIN, so appends from any connection or
// process serialise.
func (db *DB) AppendAudit(ctx context.Context, e *store.AuditEvent) error {
	err := db.single(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var (
			last int64
			prev []byte
		)
		err := tx.StmtContext(ctx, db.st.lastAudit).QueryRowContext(ctx).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.Seq = last + 1
		e.Seal(prev)
		_, err = tx.StmtContext(ctx, db.st.insertAudit).ExecContext(ctx, e.Seq, micros(e.Time), e.Type,
			e.PersonID, e.ClientID, e.Provider, e.Level, e.Result, e.Reason, jsonText(e.Details),
			e.PrevHash, e.Hash)
		return db.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("append audit %s event: %w", e.Type, err)
	}
	return nil
}

// ListAudit implements store.AuditLog. A limit below 1 returns no events.
func (db *DB) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*store.AuditEvent, error) {
	if limit < 1 {
		return []*store.AuditEvent{}, nil
	}
	rows, err := db.st.listAudit.QueryContext(ctx, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
