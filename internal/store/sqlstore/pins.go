package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.Pins = (*DB)(nil)

// Pin implements store.Pins with one statement: an insert that, on a
// name held already, rewrites the row with its own value and returns it.
func (db *DB) Pin(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
	if len(value) == 0 {
		return nil, errors.New("pin: empty value")
	}
	var held []byte
	err := db.one(ctx, func(ctx context.Context, tx querier) error {
		return tx.StmtContext(ctx, db.st.pin).QueryRowContext(ctx, name, value, micros(now)).Scan(&held)
	})
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", name, err)
	}
	return held, nil
}

// Pinned implements store.Pins with one read.
func (db *DB) Pinned(ctx context.Context, name string) ([]byte, error) {
	var held []byte
	err := db.r.QueryRowContext(ctx, db.d.rebind("SELECT value FROM pins WHERE name = ?"), name).Scan(&held)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("pinned %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pinned %s: %w", name, err)
	}
	return held, nil
}
