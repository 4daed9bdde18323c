package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.Nodes = (*DB)(nil)

// RecordNodeLeft implements store.Nodes: one upsert, and the audit event,
// in one operation.
func (db *DB) RecordNodeLeft(ctx context.Context, d *store.NodeDeparture, e *store.AuditEvent) error {
	if d.LeftAt.IsZero() {
		return fmt.Errorf("record node %s left: %w", d.Node, errors.New("zero time"))
	}
	q := db.d.rebind("INSERT INTO node_departures (node, left_at, reason) VALUES (?, ?, ?) " +
		"ON CONFLICT (node) DO UPDATE SET left_at = excluded.left_at, reason = excluded.reason")
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		if _, err := tx.ExecContext(ctx, q, d.Node, micros(d.LeftAt), d.Reason); err != nil {
			return db.d.classify(err)
		}
		return db.auditIn(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("record node %s left: %w", d.Node, err)
	}
	return nil
}

// ListNodeDepartures implements store.Nodes.
func (db *DB) ListNodeDepartures(ctx context.Context) ([]*store.NodeDeparture, error) {
	rows, err := read(db.r.QueryContext(ctx, "SELECT node, left_at, reason FROM node_departures ORDER BY node"))
	if err != nil {
		return nil, fmt.Errorf("list node departures: %w", err)
	}
	out, err := collect(rows, func(s scanner) (*store.NodeDeparture, error) {
		var (
			d  store.NodeDeparture
			at int64
		)
		if err := s.Scan(&d.Node, &at, &d.Reason); err != nil {
			return nil, err
		}
		d.LeftAt = fromMicros(at)
		return &d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list node departures: %w", err)
	}
	return out, nil
}
