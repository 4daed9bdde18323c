package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var _ store.Webhooks = (*DB)(nil)

const webhookCols = "id, client_id, url, event, payload, content_type, created_at, next_attempt_at, attempts, " +
	"last_error, delivered_at, abandoned_at"

func scanWebhook(s scanner) (*store.WebhookDelivery, error) {
	var (
		d                                   store.WebhookDelivery
		created, next, delivered, abandoned int64
	)
	err := s.Scan(&d.ID, &d.ClientID, &d.URL, &d.Event, &d.Payload, &d.ContentType, &created, &next, &d.Attempts,
		&d.LastError, &delivered, &abandoned)
	if err != nil {
		return nil, err
	}
	d.CreatedAt, d.NextAttemptAt = fromMicros(created), fromMicros(next)
	d.DeliveredAt, d.AbandonedAt = fromMicros(delivered), fromMicros(abandoned)
	return &d, nil
}

// EnqueueWebhooks implements store.Webhooks; the deliveries are stored
// unleased.
func (db *DB) EnqueueWebhooks(ctx context.Context, ds []*store.WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	err := db.update(ctx, func(ctx context.Context, tx querier) error { return db.insertWebhooks(ctx, tx, ds) })
	if err != nil {
		return fmt.Errorf("enqueue %d webhooks: %w", len(ds), err)
	}
	return nil
}

// insertWebhooks stores ds, unleased, within tx.
func (db *DB) insertWebhooks(ctx context.Context, tx querier, ds []*store.WebhookDelivery) error {
	q := db.d.rebind(insertSQL("webhook_deliveries", webhookCols+", lease_node, lease_until"))
	for _, d := range ds {
		_, err := tx.ExecContext(ctx, q, d.ID, d.ClientID, d.URL, d.Event, d.Payload, d.ContentType,
			micros(d.CreatedAt), micros(d.NextAttemptAt), d.Attempts, d.LastError, micros(d.DeliveredAt),
			micros(d.AbandonedAt), "", 0)
		if err != nil {
			return fmt.Errorf("delivery %s: %w", d.ID, db.d.classify(err))
		}
	}
	return nil
}

// ClaimWebhooks implements store.Webhooks with one UPDATE ... RETURNING
// over the due deliveries. On SQLite writes are serialised (one write
// connection per process, and the write lock between processes), so a
// delivery one claim leased is no longer due for the next; on
// PostgreSQL, a claim that meets a row another node's claim holds waits
// for it and then checks the conditions again on the row as leased. A
// lease is live while now is before lease_until. The per-endpoint
// limit counts the endpoint's live leases as the statement sees them.
// On PostgreSQL a claim running at the same time as another may not see
// what that one leases, but both pick from the front of one order (due
// time, then ID), so they pick the same deliveries of an endpoint, and
// the one that waited finds them leased and skips them: it takes fewer,
// never more than the limit leaves. now and leaseUntil are the calling
// node's; package webhook's doc says why nodes' clocks that differ by
// less than the lease less an attempt's time do no harm.
func (db *DB) ClaimWebhooks(ctx context.Context, node string, now, leaseUntil time.Time, limit, perEndpoint int) ([]*store.WebhookDelivery, error) {
	switch {
	case node == "":
		return nil, errors.New("claim webhooks: empty node")
	case leaseUntil.IsZero() || !leaseUntil.After(now):
		return nil, fmt.Errorf("claim webhooks: lease until %v is not after now", leaseUntil)
	case limit < 1:
		return []*store.WebhookDelivery{}, nil
	}
	// The outer WHERE repeats the conditions: on PostgreSQL, a row that
	// another node's claim leased while this one waited for it is
	// checked again as that claim left it (the subquery is not), and
	// must then no longer match.
	const due = "delivered_at = 0 AND abandoned_at = 0 AND next_attempt_at <= ? AND lease_until <= ?"
	// Every node polls, every webhook.PollInterval, and most polls find
	// nothing due: those read, on the read pool, and write nothing. A
	// write transaction would take the audit chain's lock on
	// PostgreSQL, for which every other write of every node waits, and
	// the write lock on SQLite. The claim below checks every condition
	// again, so what the read saw changes nothing it leases; a delivery
	// queued or due after the read is claimed at the next poll.
	var waiting int
	err := db.r.QueryRowContext(ctx, db.d.rebind("SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE "+due+" LIMIT 1) d"),
		micros(now), micros(now)).Scan(&waiting)
	if err != nil {
		return nil, fmt.Errorf("claim webhooks for %s: %w", node, unavailable(err, false))
	}
	if waiting == 0 {
		return []*store.WebhookDelivery{}, nil
	}
	pick := "SELECT id FROM webhook_deliveries WHERE " + due + " ORDER BY next_attempt_at, id LIMIT ?"
	args := []any{node, micros(leaseUntil), micros(now), micros(now), limit, micros(now), micros(now)}
	if perEndpoint > 0 {
		// Each due delivery is numbered within its endpoint (client and
		// event), earliest first, and taken only while that number, plus
		// the endpoint's deliveries under a live lease, stays within
		// perEndpoint.
		pick = "SELECT c.id FROM (SELECT id, client_id, event, next_attempt_at, " +
			"ROW_NUMBER() OVER (PARTITION BY client_id, event ORDER BY next_attempt_at, id) AS n " +
			"FROM webhook_deliveries WHERE " + due + ") c LEFT JOIN (SELECT client_id, event, count(*) AS n " +
			"FROM webhook_deliveries WHERE lease_until > ? AND delivered_at = 0 AND abandoned_at = 0 " +
			"GROUP BY client_id, event) l ON l.client_id = c.client_id AND l.event = c.event " +
			"WHERE c.n + COALESCE(l.n, 0) <= ? ORDER BY c.next_attempt_at, c.id LIMIT ?"
		args = []any{node, micros(leaseUntil), micros(now), micros(now), micros(now), perEndpoint, limit, micros(now), micros(now)}
	}
	q := db.d.rebind("UPDATE webhook_deliveries SET lease_node = ?, lease_until = ? WHERE id IN (" + pick + ") AND " + due +
		" RETURNING " + webhookCols)
	var out []*store.WebhookDelivery
	err = db.single(ctx, func(ctx context.Context, tx querier) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanWebhook)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhooks for %s: %w", node, err)
	}
	// RETURNING gives rows in no particular order.
	slices.SortFunc(out, func(a, b *store.WebhookDelivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// FinishWebhookAttempt implements store.Webhooks: the UPDATE holds only
// if node holds the lease (live or expired but not claimed by another);
// if it changes nothing, a second look tells a missing delivery from a
// lost lease. A delivery that ends (delivered or abandoned) keeps no
// payload: it is never sent again.
func (db *DB) FinishWebhookAttempt(ctx context.Context, node string, d *store.WebhookDelivery) error {
	if node == "" {
		return fmt.Errorf("finish webhook %s: empty node", d.ID)
	}
	set := ""
	if !d.DeliveredAt.IsZero() || !d.AbandonedAt.IsZero() {
		set = "payload = ?, "
	}
	q := db.d.rebind("UPDATE webhook_deliveries SET " + set + "url = ?, attempts = ?, last_error = ?, delivered_at = ?, abandoned_at = ?, " +
		"next_attempt_at = ?, lease_node = '', lease_until = 0 WHERE id = ? AND lease_node = ?")
	args := []any{d.URL, d.Attempts, d.LastError, micros(d.DeliveredAt), micros(d.AbandonedAt), micros(d.NextAttemptAt), d.ID, node}
	if set != "" {
		args = append([]any{[]byte{}}, args...)
	}
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, db.d.rebind("SELECT 1 FROM webhook_deliveries WHERE id = ?"), d.ID).Scan(&one); err != nil {
			return notFound(err)
		}
		return fmt.Errorf("lease is not %s's: %w", node, store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("finish webhook %s: %w", d.ID, err)
	}
	return nil
}

// ListWebhookDeliveries implements store.Webhooks.
func (db *DB) ListWebhookDeliveries(ctx context.Context, clientID string, limit int) ([]*store.WebhookDelivery, error) {
	q := "SELECT " + webhookCols + " FROM webhook_deliveries WHERE client_id = ? ORDER BY created_at DESC, id DESC"
	args := []any{clientID}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := read(db.r.QueryContext(ctx, db.d.rebind(q), args...))
	if err != nil {
		return nil, fmt.Errorf("list webhooks of %s: %w", clientID, err)
	}
	out, err := collect(rows, scanWebhook)
	if err != nil {
		return nil, fmt.Errorf("list webhooks of %s: %w", clientID, err)
	}
	return out, nil
}
