package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// tokenRetries checks Tokens.RetryRotation and Tokens.MarkTokenUsed
// (ADR 55), writing through a and b in turn: one store, or two handles
// on a shared one.
func tokenRetries(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t)
	rotated := now.Add(time.Hour)
	since := rotated.Add(-time.Second)

	// rotate stores refresh token name and rotates it at rotated into an
	// access token and a refresh token, returned.
	rotate := func(t *testing.T, name string) (at, rt *store.Token) {
		t.Helper()
		old := fullToken(t, name, store.TokenRefresh)
		wantErr(t, "CreateToken", a.CreateToken(ctx, old), nil)
		at, rt = fullToken(t, name+"-at1", store.TokenAccess), fullToken(t, name+"-rt1", store.TokenRefresh)
		_, err := a.RotateToken(ctx, old.Hash, rotated, nil, at, rt)
		wantErr(t, "RotateToken", err, nil)
		return at, rt
	}
	read := func(t *testing.T, s store.Store, tok *store.Token) *store.Token {
		t.Helper()
		got, err := s.GetToken(ctx, tok.Hash)
		wantErr(t, "GetToken", err, nil)
		return got
	}

	t.Run("a rotation's tokens name their parent", func(t *testing.T) {
		at, rt := rotate(t, "rr-parent")
		for _, tok := range []*store.Token{at, rt} {
			got := read(t, b, tok)
			same(t, "Parent", hash("rr-parent"), got.Parent)
			same(t, "token issued by a rotation", tok, got)
		}
	})

	t.Run("retries replace what the one before issued", func(t *testing.T) {
		at1, rt1 := rotate(t, "rr-retry")
		first := &store.AuditEvent{Time: now, Type: "authentication", ClientID: "bank", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", a.AppendAudit(ctx, first), nil)
		ev := &store.AuditEvent{Time: now, Type: "token", ClientID: "bank", Result: store.ResultSuccess, Reason: "refresh_retried"}
		at2, rt2 := fullToken(t, "rr-retry-at2", store.TokenAccess), fullToken(t, "rr-retry-rt2", store.TokenRefresh)
		when := rotated.Add(5 * time.Second)
		old, replaced, err := b.RetryRotation(ctx, hash("rr-retry"), since, when, ev, at2, rt2)
		wantErr(t, "RetryRotation", err, nil)
		same(t, "UsedAt of the retried token", rotated, old.UsedAt)
		for _, tok := range []*store.Token{at1, rt1} {
			tok.UsedAt, tok.RevokedAt = when, when
		}
		sortTokens(replaced)
		same(t, "tokens replaced", sortTokens([]*store.Token{at1, rt1}), replaced)
		for _, tok := range []*store.Token{at1, rt1, at2, rt2} {
			same(t, "token after the retry", tok, read(t, a, tok))
		}
		same(t, "Parent of a retry's token", hash("rr-retry"), read(t, a, rt2).Parent)
		if ev.Seq != first.Seq+1 {
			t.Errorf("retry's event Seq = %d, want %d", ev.Seq, first.Seq+1)
		}

		// A replaced refresh token is used up: its rotation is refused as
		// a reuse is, with the token saying it was replaced.
		got, err := a.RotateToken(ctx, rt1.Hash, when, nil, fullToken(t, "rr-retry-rt1-next", store.TokenRefresh))
		wantErr(t, "RotateToken of a replaced token", err, store.ErrConflict)
		same(t, "replaced token returned", rt1, got)

		// The client's retries can repeat: the second replaces only the
		// first retry's pair.
		at3, rt3 := fullToken(t, "rr-retry-at3", store.TokenAccess), fullToken(t, "rr-retry-rt3", store.TokenRefresh)
		again := when.Add(5 * time.Second)
		_, replaced, err = a.RetryRotation(ctx, hash("rr-retry"), since, again, nil, at3, rt3)
		wantErr(t, "second RetryRotation", err, nil)
		for _, tok := range []*store.Token{at2, rt2} {
			tok.UsedAt, tok.RevokedAt = again, again
		}
		sortTokens(replaced)
		same(t, "tokens the second retry replaced", sortTokens([]*store.Token{at2, rt2}), replaced)
		for _, tok := range []*store.Token{at1, rt1, at2, rt2, at3, rt3} {
			same(t, "token after the second retry", tok, read(t, b, tok))
		}
		_, err = b.RotateToken(ctx, rt3.Hash, again, nil)
		wantErr(t, "RotateToken of the live successor", err, nil)
	})

	t.Run("no retry once a successor is used", func(t *testing.T) {
		for i, tt := range []struct {
			name string
			use  func(t *testing.T, at, rt *store.Token)
		}{
			{"refresh token rotated", func(t *testing.T, _, rt *store.Token) {
				_, err := b.RotateToken(ctx, rt.Hash, rotated.Add(time.Second), nil)
				wantErr(t, "RotateToken of the successor", err, nil)
			}},
			{"access token used", func(t *testing.T, at, _ *store.Token) {
				ok, err := b.MarkTokenUsed(ctx, at.Hash, rotated.Add(time.Second))
				wantErr(t, "MarkTokenUsed", err, nil)
				if !ok {
					t.Fatal("MarkTokenUsed refused an access token no retry replaced")
				}
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				name := fmt.Sprint("rr-used-", i)
				at, rt := rotate(t, name)
				tt.use(t, at, rt)
				at, rt = read(t, a, at), read(t, a, rt)
				before, err := a.ListAudit(ctx, 0, 10000)
				wantErr(t, "ListAudit", err, nil)
				ev := &store.AuditEvent{Time: now, Type: "token", ClientID: "bank", Result: store.ResultSuccess}
				next := fullToken(t, name+"-rt2", store.TokenRefresh)
				_, _, err = a.RetryRotation(ctx, hash(name), since, rotated.Add(2*time.Second), ev, next)
				wantErr(t, "RetryRotation after a successor's use", err, store.ErrUsed)
				_, err = b.GetToken(ctx, next.Hash)
				wantErr(t, "GetToken of a refused retry's token", err, store.ErrNotFound)
				same(t, "access token after a refused retry", at, read(t, b, at))
				same(t, "refresh token after a refused retry", rt, read(t, b, rt))
				after, err := a.ListAudit(ctx, 0, 10000)
				wantErr(t, "ListAudit", err, nil)
				if len(after) != len(before) || ev.Seq != 0 {
					t.Errorf("a refused retry appended %d events", len(after)-len(before))
				}
			})
		}
	})

	t.Run("only a rotated refresh token, within the window", func(t *testing.T) {
		at, _ := rotate(t, "rr-window")
		unused := fullToken(t, "rr-unused", store.TokenRefresh)
		wantErr(t, "CreateToken", a.CreateToken(ctx, unused), nil)
		tests := []struct {
			name  string
			hash  []byte
			since time.Time
			want  error
		}{
			{"rotated before since", hash("rr-window"), rotated.Add(time.Microsecond), store.ErrConflict},
			{"never rotated", unused.Hash, since, store.ErrConflict},
			{"an access token", at.Hash, since, store.ErrConflict},
			{"unknown", hash("rr-never"), since, store.ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				next := fullToken(t, "rr-window-next", store.TokenRefresh)
				_, _, err := b.RetryRotation(ctx, tt.hash, tt.since, rotated.Add(time.Second), nil, next)
				wantErr(t, "RetryRotation", err, tt.want)
				_, err = a.GetToken(ctx, next.Hash)
				wantErr(t, "GetToken of a refused retry's token", err, store.ErrNotFound)
			})
		}
		// A rotation that issued nothing on record (one made before
		// schema 0035) leaves nothing to replace: no retry, which could
		// leave two live pairs.
		bare := fullToken(t, "rr-bare", store.TokenRefresh)
		wantErr(t, "CreateToken", a.CreateToken(ctx, bare), nil)
		_, err := a.RotateToken(ctx, bare.Hash, rotated, nil)
		wantErr(t, "RotateToken", err, nil)
		_, _, err = b.RetryRotation(ctx, bare.Hash, since, rotated.Add(time.Second), nil, fullToken(t, "rr-bare-next", store.TokenRefresh))
		wantErr(t, "RetryRotation of a rotation that issued nothing", err, store.ErrConflict)
		_, err = a.GetToken(ctx, hash("rr-bare-next"))
		wantErr(t, "GetToken of a refused retry's token", err, store.ErrNotFound)
		// At since itself it is retried.
		_, _, err = b.RetryRotation(ctx, hash("rr-window"), rotated, rotated.Add(time.Second), nil)
		wantErr(t, "RetryRotation at the window's start", err, nil)
	})

	t.Run("mark used", func(t *testing.T) {
		at, _ := rotate(t, "rr-mark")
		for i, node := range []store.Store{a, b} {
			ok, err := node.MarkTokenUsed(ctx, at.Hash, rotated.Add(time.Duration(i+1)*time.Second))
			wantErr(t, "MarkTokenUsed", err, nil)
			if !ok {
				t.Fatalf("use %d of an access token refused", i+1)
			}
		}
		same(t, "UsedAt, the first use", rotated.Add(time.Second), read(t, a, at).UsedAt)
		_, err := a.MarkTokenUsed(ctx, hash("rr-mark-never"), rotated)
		wantErr(t, "MarkTokenUsed of an unknown token", err, store.ErrNotFound)

		at2, _ := rotate(t, "rr-mark-replaced")
		_, _, err = a.RetryRotation(ctx, hash("rr-mark-replaced"), since, rotated.Add(time.Second), nil)
		wantErr(t, "RetryRotation", err, nil)
		ok, err := b.MarkTokenUsed(ctx, at2.Hash, rotated.Add(2*time.Second))
		wantErr(t, "MarkTokenUsed of a replaced token", err, nil)
		if ok {
			t.Fatal("a replaced access token may be used")
		}
	})

	t.Run("concurrent retries leave one live pair", func(t *testing.T) {
		for round := range 3 {
			name := fmt.Sprint("rr-race-", round)
			rotate(t, name)
			nodes := []store.Store{a, b}
			pairs := make([][2]*store.Token, contenders)
			errs := race(contenders, func(i int) error {
				pairs[i] = [2]*store.Token{
					fullToken(t, fmt.Sprint(name, "-at-", i), store.TokenAccess),
					fullToken(t, fmt.Sprint(name, "-rt-", i), store.TokenRefresh),
				}
				_, _, err := nodes[i%2].RetryRotation(ctx, hash(name), since, rotated.Add(time.Duration(i+1)*time.Millisecond), nil, pairs[i][0], pairs[i][1])
				return err
			})
			live := map[string]int{}
			for i, err := range errs {
				wantErr(t, fmt.Sprint("retry ", i), err, nil)
				for _, tok := range pairs[i] {
					if read(t, a, tok).RevokedAt.IsZero() {
						live[tok.Kind]++
					}
				}
			}
			for _, kind := range []string{store.TokenAccess, store.TokenRefresh} {
				if live[kind] != 1 {
					t.Errorf("round %d: %d live %s tokens after %d retries, want 1", round, live[kind], kind, contenders)
				}
			}
		}
	})

	t.Run("a retry racing a use of its successor", func(t *testing.T) {
		for round := range 5 {
			name := fmt.Sprint("rr-use-race-", round)
			_, rt := rotate(t, name)
			errs := race(2, func(i int) error {
				if i == 0 {
					_, _, err := a.RetryRotation(ctx, hash(name), since, rotated.Add(time.Second), nil,
						fullToken(t, name+"-rt2", store.TokenRefresh))
					return err
				}
				_, err := b.RotateToken(ctx, rt.Hash, rotated.Add(time.Second), nil, fullToken(t, name+"-rt1-next", store.TokenRefresh))
				return err
			})
			retried, used := errs[0] == nil, errs[1] == nil
			switch {
			case retried == used:
				t.Fatalf("round %d: retry %v, use of its successor %v: want exactly one to succeed", round, errs[0], errs[1])
			case retried && !errors.Is(errs[1], store.ErrConflict):
				t.Fatalf("round %d: use of a replaced token: %v, want ErrConflict", round, errs[1])
			case used && !errors.Is(errs[0], store.ErrUsed):
				t.Fatalf("round %d: retry after its successor's use: %v, want ErrUsed", round, errs[0])
			}
		}
	})
}

// sortTokens sorts tokens by kind, and returns them.
func sortTokens(tokens []*store.Token) []*store.Token {
	slices.SortFunc(tokens, func(x, y *store.Token) int { return strings.Compare(x.Kind, y.Kind) })
	return tokens
}
