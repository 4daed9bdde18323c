package sqlstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestSweepDeletesInChunks: many expired records are all deleted, a
// grant with the last of its tokens, but in writes of at most sweepChunk
// rows, so that the logins' writes go in between.
func TestSweepDeletesInChunks(t *testing.T) {
	if sweepChunk > 100_000 {
		t.Fatalf("sweepChunk %d: a chunk that large holds the writer for seconds", sweepChunk)
	}
	ctx := context.Background()
	db := openTemp(t)
	now := time.Now()
	// Enough expired tokens for three chunks, in grants of 64.
	const perGrant = 64
	tokens := 2*sweepChunk + 1
	grants := (tokens + perGrant - 1) / perGrant
	for i := range grants {
		g := &store.Grant{ID: fmt.Sprintf("g%d", i), CreatedAt: now.Add(-time.Hour)}
		var toks []*store.Token
		for j := i * perGrant; j < min((i+1)*perGrant, tokens); j++ {
			toks = append(toks, &store.Token{Hash: hash32(fmt.Sprintf("t%d", j)), Kind: store.TokenAccess, GrantID: g.ID, ExpiresAt: now.Add(-time.Second)})
		}
		if i == 0 {
			// One grant keeps a live token, and so stays.
			toks = append(toks, &store.Token{Hash: hash32("live"), Kind: store.TokenRefresh, GrantID: g.ID, ExpiresAt: now.Add(time.Hour)})
		}
		if err := db.CreateGrantTokens(ctx, g, nil, toks...); err != nil {
			t.Fatal(err)
		}
	}
	ops := db.wr.ops.Load()
	n, err := db.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(tokens + grants - 1); n != want {
		t.Errorf("DeleteExpired = %d, want %d", n, want)
	}
	// Three writes for the tokens and one for each of the seven other
	// statements (with nothing to delete); unchunked, eight in all.
	if writes := db.wr.ops.Load() - ops; writes < 3+7 {
		t.Errorf("the sweep took %d writes: not chunked", writes)
	}
	if _, err := db.GetGrant(ctx, "g0"); err != nil {
		t.Errorf("the grant with a live token: %v", err)
	}
	for _, id := range []string{"g1", fmt.Sprintf("g%d", grants-1)} {
		if _, err := db.GetGrant(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant %s after its tokens expired: %v", id, err)
		}
	}
	if n, err := db.DeleteExpired(ctx, now); n != 0 || err != nil {
		t.Errorf("DeleteExpired again = %d, %v", n, err)
	}
}

func hash32(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
