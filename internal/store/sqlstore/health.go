package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.Health = (*DB)(nil)

// Health queries are built per call rather than prepared at open: their
// WHERE clause depends on which filters are set (a fixed "? = '' OR"
// clause would keep the planner off the indexes), and they run a few
// times per probe round or status page render, not per login.

const (
	probeCols      = "component, node, time, duration, ok, reason, state"
	transitionCols = "component, node, time, from_state, to_state, reason, since"

	// healthInsertRows caps the rows of one multi-row INSERT, well below
	// SQLite's limit on bound parameters.
	healthInsertRows = 256
	// probeDeleteChunk is how many probe rows one DELETE removes, so that
	// pruning a long history never holds the write lock for long.
	probeDeleteChunk = 5000
)

// healthWhere turns q's filters into a WHERE clause (empty if none) and
// its arguments.
func healthWhere(q store.HealthQuery) (string, []any) {
	var (
		conds []string
		args  []any
	)
	if q.Component != "" {
		conds = append(conds, "component = ?")
		args = append(args, q.Component)
	}
	if q.Node != "" {
		conds = append(conds, "node = ?")
		args = append(args, q.Node)
	}
	if !q.Since.IsZero() {
		conds = append(conds, "time >= ?")
		args = append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "time < ?")
		args = append(args, micros(q.Until))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// healthList runs SELECT cols FROM table with q's filters, oldest first.
func healthList[T any](ctx context.Context, db *DB, table, cols string, q store.HealthQuery, scan func(scanner) (T, error)) ([]T, error) {
	where, args := healthWhere(q)
	query := "SELECT " + cols + " FROM " + table + where + " ORDER BY time, id"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := read(db.r.QueryContext(ctx, db.d.rebind(query), args...))
	if err != nil {
		return nil, err
	}
	return collect(rows, scan)
}

// healthInsert appends rows to table in one operation: every row or none.
func (db *DB) healthInsert(ctx context.Context, table, cols string, n int, row func(i int) []any) error {
	if n == 0 {
		return nil
	}
	ncols := len(splitCols(cols))
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	fn := func(ctx context.Context, tx querier) error {
		for start := 0; start < n; start += healthInsertRows {
			end := min(n, start+healthInsertRows)
			vals := make([]string, 0, end-start)
			args := make([]any, 0, (end-start)*ncols)
			for i := start; i < end; i++ {
				vals = append(vals, one)
				args = append(args, row(i)...)
			}
			q := "INSERT INTO " + table + " (" + cols + ") VALUES " + strings.Join(vals, ", ")
			if _, err := tx.ExecContext(ctx, db.d.rebind(q), args...); err != nil {
				return db.d.classify(err)
			}
		}
		return nil
	}
	if n <= healthInsertRows {
		return db.single(ctx, fn)
	}
	return db.update(ctx, fn)
}

// RecordProbes implements store.Health.
func (db *DB) RecordProbes(ctx context.Context, ps []*store.ProbeRecord) error {
	err := db.healthInsert(ctx, "health_probes", probeCols, len(ps), func(i int) []any {
		p := ps[i]
		return []any{p.Component, p.Node, micros(p.Time), int64(p.Duration), boolInt(p.OK), p.Reason, p.State}
	})
	if err != nil {
		return fmt.Errorf("record %d probes: %w", len(ps), err)
	}
	return nil
}

func scanProbe(s scanner) (*store.ProbeRecord, error) {
	var (
		p        store.ProbeRecord
		t, d, ok int64
	)
	if err := s.Scan(&p.Component, &p.Node, &t, &d, &ok, &p.Reason, &p.State); err != nil {
		return nil, err
	}
	p.Time = fromMicros(t)
	p.Duration = time.Duration(d)
	p.OK = ok != 0
	return &p, nil
}

// ListProbes implements store.Health.
func (db *DB) ListProbes(ctx context.Context, q store.HealthQuery) ([]*store.ProbeRecord, error) {
	out, err := healthList(ctx, db, "health_probes", probeCols, q, scanProbe)
	if err != nil {
		return nil, fmt.Errorf("list probes: %w", err)
	}
	return out, nil
}

// SummarizeProbes implements store.Health with one GROUP BY over the
// (component, time) index.
func (db *DB) SummarizeProbes(ctx context.Context, q store.HealthQuery, width time.Duration) ([]*store.ProbeBucket, error) {
	w := width.Microseconds()
	switch {
	case q.Since.IsZero() || q.Until.IsZero():
		return nil, errors.New("summarize probes: since and until must be set")
	case w < 1:
		return nil, fmt.Errorf("summarize probes: bucket width %v is under a microsecond", width)
	}
	since := micros(q.Since)
	where, wargs := healthWhere(q)
	query := "SELECT component, (time - ?) / ? AS bucket, count(*), sum(ok), " +
		"sum(CASE WHEN state = ? THEN 1 ELSE 0 END), " +
		"sum(CASE WHEN state = ? THEN 1 ELSE 0 END), " +
		"sum(CASE WHEN state = ? THEN 1 ELSE 0 END) " +
		"FROM health_probes" + where + " GROUP BY component, bucket ORDER BY component, bucket"
	args := append([]any{since, w, store.HealthUp, store.HealthDegraded, store.HealthDown}, wargs...)
	rows, err := read(db.r.QueryContext(ctx, db.d.rebind(query), args...))
	if err != nil {
		return nil, fmt.Errorf("summarize probes: %w", err)
	}
	out, err := collect(rows, func(s scanner) (*store.ProbeBucket, error) {
		var (
			b   store.ProbeBucket
			idx int64
		)
		if err := s.Scan(&b.Component, &idx, &b.Probes, &b.OK, &b.Up, &b.Degraded, &b.Down); err != nil {
			return nil, err
		}
		b.Start = fromMicros(since + idx*w)
		return &b, nil
	})
	if err != nil {
		return nil, fmt.Errorf("summarize probes: %w", err)
	}
	return out, nil
}

// DeleteProbesBefore implements store.Health, a chunk of rows per write
// so other writes interleave with a long prune.
func (db *DB) DeleteProbesBefore(ctx context.Context, before time.Time) (int64, error) {
	q := db.d.rebind("DELETE FROM health_probes WHERE id IN " +
		"(SELECT id FROM health_probes WHERE time < ? ORDER BY time, id LIMIT ?)")
	var total int64
	for {
		var n int64
		err := db.single(ctx, func(ctx context.Context, tx querier) error {
			res, err := tx.ExecContext(ctx, q, micros(before), probeDeleteChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("delete probes: %w", err)
		}
		total += n
		if n < probeDeleteChunk {
			return total, nil
		}
	}
}

// RecordHealthTransitions implements store.Health.
func (db *DB) RecordHealthTransitions(ctx context.Context, ts []*store.HealthTransition) error {
	err := db.healthInsert(ctx, "health_transitions", transitionCols, len(ts), func(i int) []any {
		t := ts[i]
		return []any{t.Component, t.Node, micros(t.Time), t.From, t.To, t.Reason, micros(t.Since)}
	})
	if err != nil {
		return fmt.Errorf("record %d health transitions: %w", len(ts), err)
	}
	return nil
}

func scanTransition(s scanner) (*store.HealthTransition, error) {
	var (
		t         store.HealthTransition
		at, since int64
	)
	if err := s.Scan(&t.Component, &t.Node, &at, &t.From, &t.To, &t.Reason, &since); err != nil {
		return nil, err
	}
	t.Time = fromMicros(at)
	t.Since = fromMicros(since)
	return &t, nil
}

// ListHealthTransitions implements store.Health.
func (db *DB) ListHealthTransitions(ctx context.Context, q store.HealthQuery) ([]*store.HealthTransition, error) {
	out, err := healthList(ctx, db, "health_transitions", transitionCols, q, scanTransition)
	if err != nil {
		return nil, fmt.Errorf("list health transitions: %w", err)
	}
	return out, nil
}
