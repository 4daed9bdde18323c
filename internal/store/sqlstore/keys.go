package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const publicKeyCols = "kid, node, jwk, created_at, expires_at"

func scanPublicKey(s scanner) (*store.PublicKey, error) {
	var (
		k                store.PublicKey
		jwk              []byte
		created, expires int64
	)
	if err := s.Scan(&k.KID, &k.Node, &jwk, &created, &expires); err != nil {
		return nil, err
	}
	if jwk != nil {
		k.JWK = json.RawMessage(jwk)
	}
	k.CreatedAt = fromMicros(created)
	k.ExpiresAt = fromMicros(expires)
	return &k, nil
}

// PutPublicKey implements store.PublicKeys; it replaces a key with the
// same KID.
func (db *DB) PutPublicKey(ctx context.Context, k *store.PublicKey) error {
	err := db.exec(ctx, db.st.putPublicKey, k.KID, k.Node, []byte(k.JWK), micros(k.CreatedAt), micros(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("put public key %s: %w", k.KID, err)
	}
	return nil
}

// ListPublicKeys implements store.PublicKeys, oldest first. A key with a
// zero ExpiresAt never expires.
func (db *DB) ListPublicKeys(ctx context.Context, now time.Time) ([]*store.PublicKey, error) {
	rows, err := db.st.listPublicKeys.QueryContext(ctx, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list public keys: %w", err)
	}
	out, err := collect(rows, scanPublicKey)
	if err != nil {
		return nil, fmt.Errorf("list public keys: %w", err)
	}
	return out, nil
}

// DeleteExpired implements store.Sweeper, one statement at a time so
// that no single transaction holds the write lock for long.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	// Dropping from the caches is always safe (a miss reads the
	// database), so each statement's commit drops every cached record
	// expired at now.
	prune := func(int64) {
		db.authReqs.prune(now)
		db.sessions.prune(now)
	}
	for _, sw := range db.st.sweep {
		n, err := db.execThen(ctx, prune, sw.st, sw.args(micros(now))...)
		if err != nil {
			return total, fmt.Errorf("delete expired: %w", err)
		}
		total += n
	}
	return total, nil
}
