package sqlstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
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

// TestSweepPastUndecodableSession: an expired session whose clients do
// not decode (a hand edit, a restore gone wrong) is deleted with the
// sessions around it, its end recorded for nobody, and the codes and
// tokens after it are swept too, on either dialect. Before, the row
// failed the session sweep, and with it every later table, every round.
func TestSweepPastUndecodableSession(t *testing.T) {
	forDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		addLogoutClient(t, db, now)
		var logs bytes.Buffer
		db.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
		ins, err := db.w.PrepareContext(ctx, db.d.rebind(insertSQL("sessions", sessionCols+", last_used")))
		if err != nil {
			t.Fatal(err)
		}
		defer ins.Close()
		created := now.Add(-time.Hour)
		for _, s := range []struct{ id, clients string }{{"s-a", `["bank"]`}, {"s-b", "not json"}, {"s-c", `["bank"]`}} {
			if _, err := ins.ExecContext(ctx, s.id, "p1", "passkey", "high", "[]", micros(created), s.clients,
				micros(created), micros(now.Add(-time.Second)), 0, "", micros(created)); err != nil {
				t.Fatal(err)
			}
		}
		expired := now.Add(-time.Second)
		if err := db.CreateAuthCode(ctx, &store.AuthCode{Hash: hash32("code"), ExpiresAt: expired}); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateGrantTokens(ctx, &store.Grant{ID: "g", CreatedAt: created}, nil,
			&store.Token{Hash: hash32("tok"), Kind: store.TokenAccess, GrantID: "g", ExpiresAt: expired}); err != nil {
			t.Fatal(err)
		}
		n, err := db.DeleteExpired(ctx, now)
		if err != nil {
			t.Fatalf("DeleteExpired: %v", err)
		}
		// Three sessions, the code, the token and its grant.
		if n != 6 {
			t.Errorf("DeleteExpired = %d, want 6", n)
		}
		var left int
		if err := db.w.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions").Scan(&left); err != nil || left != 0 {
			t.Errorf("sessions left: %d, %v", left, err)
		}
		if _, err := db.GetAuthCode(ctx, hash32("code")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired code after the sweep: %v", err)
		}
		if _, err := db.GetToken(ctx, hash32("tok")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired token after the sweep: %v", err)
		}
		pending, err := db.PendingSessionEnds(ctx, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range pending {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"s-a", "s-c"}) {
			t.Errorf("ends recorded for %v, want s-a and s-c", ids)
		}
		if !strings.Contains(logs.String(), "session=s-b") || strings.Contains(logs.String(), "session=s-a") {
			t.Errorf("log %q does not name the session that did not decode, and only it", logs.String())
		}
	})
}

// TestSweepCarriesOnPastFailedTable: a table whose sweep fails does not
// keep the tables after it from being swept, and the error names it.
func TestSweepCarriesOnPastFailedTable(t *testing.T) {
	forDialects(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		now := time.Now().UTC().Truncate(time.Microsecond)
		if err := db.CreateAuthCode(ctx, &store.AuthCode{Hash: hash32("code"), ExpiresAt: now.Add(-time.Second)}); err != nil {
			t.Fatal(err)
		}
		// The challenges sweep, which comes before the codes', fails.
		if _, err := db.w.ExecContext(ctx, "DROP TABLE challenges"); err != nil {
			t.Fatal(err)
		}
		n, err := db.DeleteExpired(ctx, now)
		if err == nil || !strings.Contains(err.Error(), "challenges") {
			t.Errorf("DeleteExpired error %v, want one naming challenges", err)
		}
		if n != 1 {
			t.Errorf("DeleteExpired = %d, want 1", n)
		}
		if _, err := db.GetAuthCode(ctx, hash32("code")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired code after the sweep: %v", err)
		}
	})
}

// forDialects runs test on a new SQLite database and a new PostgreSQL
// one, each its own subtest.
func forDialects(t *testing.T, test func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres(t, pgtest.NewDatabase(t))) })
}

// addLogoutClient adds the client "bank", which registered a
// back-channel logout URI, so that the sweep records the ends of the
// sessions it got tokens in.
func addLogoutClient(t *testing.T, db *DB, now time.Time) {
	t.Helper()
	if err := db.AddClient(t.Context(), &store.Client{ID: "bank", CreatedAt: now, BackchannelLogoutURI: "https://bank.example/logout"}, nil); err != nil {
		t.Fatal(err)
	}
}
