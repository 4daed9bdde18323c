package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const publicKeyCols = "kid, node, jwk, created_at, expires_at, retired_at, first_published_at"

func scanPublicKey(s scanner) (*store.PublicKey, error) {
	var (
		k                                store.PublicKey
		jwk                              []byte
		created, expires, retired, first int64
	)
	if err := s.Scan(&k.KID, &k.Node, &jwk, &created, &expires, &retired, &first); err != nil {
		return nil, err
	}
	if jwk != nil {
		k.JWK = json.RawMessage(jwk)
	}
	k.CreatedAt = fromMicros(created)
	k.ExpiresAt = fromMicros(expires)
	k.RetiredAt = fromMicros(retired)
	k.FirstPublishedAt = fromMicros(first)
	return &k, nil
}

// PutPublicKey implements store.PublicKeys; it replaces a key with the
// same KID unless that key was retired, keeping when it was first
// published.
func (db *DB) PutPublicKey(ctx context.Context, k *store.PublicKey) error {
	n, err := db.execN(ctx, db.st.putPublicKey, k.KID, k.Node, []byte(k.JWK), micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.CreatedAt))
	if err == nil && n == 0 {
		err = fmt.Errorf("it was retired: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put public key %s: %w", k.KID, err)
	}
	return nil
}

// ClaimPublicKey implements store.PublicKeys with one upsert that
// changes no row if another node holds the key; a read after it then
// tells a retired key from a held one.
func (db *DB) ClaimPublicKey(ctx context.Context, k *store.PublicKey) error {
	err := db.one(ctx, func(ctx context.Context, tx querier) error {
		n, err := db.execCount(ctx, tx, db.st.claimPublicKey,
			k.KID, k.Node, []byte(k.JWK), micros(k.CreatedAt), micros(k.ExpiresAt), micros(k.CreatedAt))
		if err != nil || n > 0 {
			return err
		}
		held, err := scanPublicKey(tx.QueryRowContext(ctx, db.d.rebind("SELECT "+publicKeyCols+" FROM public_keys WHERE kid = ?"), k.KID))
		if err != nil {
			return err
		}
		if !held.RetiredAt.IsZero() {
			return fmt.Errorf("it was retired: %w", store.ErrConflict)
		}
		return &store.KeyHeldError{Key: held}
	})
	if err != nil {
		return fmt.Errorf("claim public key %s: %w", k.KID, err)
	}
	return nil
}

// RetirePublicKey implements store.PublicKeys: one UPDATE that returns
// the key, and the audit event, in one operation.
func (db *DB) RetirePublicKey(ctx context.Context, kid string, now time.Time, e *store.AuditEvent) (*store.PublicKey, error) {
	if now.IsZero() {
		return nil, fmt.Errorf("retire public key %s: zero time", kid)
	}
	if db.unmatchable(kid) {
		return nil, fmt.Errorf("retire public key: %w", store.ErrNotFound)
	}
	var retired *store.PublicKey
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		retired = nil
		k, err := scanPublicKey(tx.StmtContext(ctx, db.st.retirePublicKey).QueryRowContext(ctx, micros(now), kid))
		if errors.Is(err, sql.ErrNoRows) {
			var at int64
			err := tx.QueryRowContext(ctx, db.d.rebind("SELECT retired_at FROM public_keys WHERE kid = ?"), kid).Scan(&at)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("retired already, at %s: %w", fromMicros(at).Format(time.RFC3339), store.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := db.auditIn(ctx, tx, e); err != nil {
			return err
		}
		retired = k
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retire public key %s: %w", kid, err)
	}
	return retired, nil
}

// ListPublicKeys implements store.PublicKeys, oldest first. A key with a
// zero ExpiresAt never expires.
func (db *DB) ListPublicKeys(ctx context.Context, now time.Time) ([]*store.PublicKey, error) {
	rows, err := read(db.st.listPublicKeys.QueryContext(ctx, micros(now)))
	if err != nil {
		return nil, fmt.Errorf("list public keys: %w", err)
	}
	out, err := collect(rows, scanPublicKey)
	if err != nil {
		return nil, fmt.Errorf("list public keys: %w", err)
	}
	return out, nil
}

// DeleteExpired implements store.Sweeper. It deletes in chunks of at
// most sweepChunk rows, each its own write, so that no transaction holds
// the write connection for long: at a thousand logins a second, a
// minute's expired access tokens are sixty thousand rows, which one
// statement took 0.4–0.6 s to delete while every login's write waited
// (BenchmarkSweepUnderLoad; in chunks, the longest wait was 0.1 s).
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	// Dropping from the caches is always safe (a miss reads the
	// database), so each chunk's commit drops every cached record
	// expired at now.
	idle := db.SessionIdleTimeout()
	prune := func() {
		db.authReqs.prune(now)
		db.sessions.pruneIf(func(s *store.Session) bool { return !store.SessionLive(s, now, idle) })
	}
	// A table whose sweep fails is left until the next round, and the
	// tables after it are swept still: one table that cannot be swept
	// (a row that does not decode, a statement the database refuses)
	// must not keep every other from being, round after round.
	var errs []error
	for _, sw := range db.st.sweep {
		removed, err := db.sweepAll(ctx, sw, micros(now), prune)
		total += removed
		if err != nil {
			errs = append(errs, fmt.Errorf("delete expired %s: %w", sw.name, err))
		}
	}
	return total, errors.Join(errs...)
}

// sweepAll runs sw chunk after chunk until a chunk finds fewer than
// sweepChunk rows or fails; removed counts the rows of every chunk that
// committed.
func (db *DB) sweepAll(ctx context.Context, sw sweepStmt, now int64, prune func()) (removed int64, err error) {
	for {
		found, n, err := db.sweepOnce(ctx, sw, now, prune)
		removed += n
		if err != nil || found < sweepChunk {
			return removed, err
		}
	}
}

// sweepOnce runs one chunk of sw: found is how many rows its statement
// deleted, removed that plus the grants deleted with their last token.
func (db *DB) sweepOnce(ctx context.Context, sw sweepStmt, now int64, prune func()) (found, removed int64, err error) {
	if sw.ends != nil {
		n, err := db.sweepEnds(ctx, sw, now, prune)
		return n, n, err
	}
	if !sw.grants {
		n, err := db.execThen(ctx, func(int64) { prune() }, sw.st, sw.args(now)...)
		return n, n, err
	}
	err = db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		found, removed = 0, 0
		rows, err := tx.StmtContext(ctx, sw.st).QueryContext(ctx, sw.args(now)...)
		if err != nil {
			return err
		}
		grants := map[string]bool{}
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				rows.Close()
				return err
			}
			grants[g] = true
			found++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		del := tx.StmtContext(ctx, db.st.deleteEmptyGrant)
		for g := range grants {
			res, err := del.ExecContext(ctx, g, g)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			removed += n
		}
		removed += found
		return nil
	}, prune)
	return found, removed, err
}

// sweepEnds runs one chunk of sw, a sweep of sessions that ran out of
// time, in one write with the ends it records: if no client registered a
// back-channel logout URI, it is the plain DELETE; otherwise the DELETE
// returns the sessions, and the end of each that a client with a URI got
// tokens in is recorded (recordTimedOut) before the write commits, so
// its relying parties are told (Back-Channel Logout 1.0 §2.7: a session
// that ends for any reason, expiry included). Whoever deletes a session
// records its end, once: on PostgreSQL a second node's DELETE of the
// same row waits for the first's commit and then finds nothing.
//
// A deleted row that does not decode (undecodableSession: a hand edit, a
// restore gone wrong) is deleted still, its end recorded for nobody, and
// its ID logged: a session that cannot be read cannot be used either, so
// nothing is lost with it that keeping it would save, while keeping it
// would fail every chunk it is in, and with it every later one, for ever.
func (db *DB) sweepEnds(ctx context.Context, sw sweepStmt, now int64, prune func()) (found int64, err error) {
	var bad []*undecodableSession
	err = db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		found, bad = 0, nil
		told, err := logoutClientsIn(ctx, tx, db.st.logoutClients)
		if err != nil {
			return err
		}
		if len(told) == 0 {
			found, err = db.execCount(ctx, tx, sw.st, sw.args(now)...)
			return err
		}
		rows, err := tx.StmtContext(ctx, sw.ends).QueryContext(ctx, sw.args(now)...)
		if err != nil {
			return err
		}
		var deleted []*store.Session
		for rows.Next() {
			s, err := scanUsedSession(rows)
			var u *undecodableSession
			if errors.As(err, &u) {
				bad = append(bad, u)
				continue
			}
			if err != nil {
				rows.Close()
				return err
			}
			deleted = append(deleted, s)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		found = int64(len(deleted) + len(bad))
		at := fromMicros(now)
		for _, s := range deleted {
			if err := db.recordTimedOut(ctx, tx, s, at, told); err != nil {
				return err
			}
		}
		return nil
	}, prune)
	if err == nil {
		for _, u := range bad {
			// The ID is the cookie's SHA-256, not the cookie, so it
			// may be logged; it finds the row in a backup.
			db.logger().ErrorContext(ctx, "swept a session whose row does not decode; no relying party is told of its end",
				"session", u.id, "err", u.err)
		}
	}
	return found, err
}
