package oidc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// lostCommit is the real store whose grant writes are carried out but
// answered as a COMMIT that got no answer: what a PostgreSQL
// connection dropped at COMMIT does.
type lostCommit struct {
	*sqlstore.DB
}

func (l lostCommit) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	if _, err := l.DB.CreateGrantTokensForCode(ctx, codeHash, now, g, e, tokens...); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("commit: %w: connection reset", store.ErrOutcomeUnknown)
}

// refusedOnce is the real store whose first grant write is refused and
// rolled back, as a write the database could not carry out (disk full,
// a serialization failure) is: nothing of it is stored.
type refusedOnce struct {
	*sqlstore.DB
	refused *bool
}

func (r refusedOnce) CreateGrantTokens(ctx context.Context, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) error {
	if !*r.refused {
		*r.refused = true
		return errors.New("commit: database or disk is full")
	}
	return r.DB.CreateGrantTokens(ctx, g, e, tokens...)
}

func (r refusedOnce) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	if !*r.refused {
		*r.refused = true
		return nil, errors.New("commit: database or disk is full")
	}
	return r.DB.CreateGrantTokensForCode(ctx, codeHash, now, g, e, tokens...)
}

// TestCodeExchangeRefusedWriteKeepsCode: a code exchange whose grant
// write was refused leaves the code unspent, so the client's retry
// gets the tokens rather than being taken for a use twice that ends
// the person's login.
func TestCodeExchangeRefusedWriteKeepsCode(t *testing.T) {
	refused := false
	h := newHarness(t, func(h *harness) { h.p.Grants = refusedOnce{h.db, &refused} })
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 500 || body["error"] != "server_error" {
		t.Fatalf("exchange with its write refused: %d %v", status, body)
	}
	status, _, body = h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 200 || body["access_token"] == nil {
		t.Fatalf("retry with the same code: %d %v", status, body)
	}
	for _, e := range h.auditEvents("token") {
		if e.Reason == "code_replay" {
			t.Fatalf("the retry was taken for a replay: %+v", e)
		}
	}
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestCodeExchangeOutcomeUnknown: a code exchange whose write got no
// answer tells the client so, and logs it as such, rather than an
// internal error; the client's retry with the same code is a use twice
// that revokes whatever the lost write stored (RFC 6749 §4.1.2).
func TestCodeExchangeOutcomeUnknown(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, func(h *harness) {
		h.p.Grants = lostCommit{h.db}
		h.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	desc, _ := body["error_description"].(string)
	if status != 500 || body["error"] != "server_error" || !strings.Contains(desc, "may or may not") ||
		!strings.Contains(desc, "completes it if it was not") {
		t.Fatalf("exchange with its outcome unknown: %d %v", status, body)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "outcome unknown") {
		t.Fatalf("log does not say the outcome is unknown:\n%s", logs.String())
	}
	status, _, body = h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("retry with the same code: %d %v", status, body)
	}
	// The grant the lost write stored is revoked, so its tokens, which
	// the client never got, are of no use to anyone.
	grants := 0
	for _, e := range h.auditEvents("token") {
		if e.Reason == "code_replay" {
			g, err := h.db.GetGrant(context.Background(), e.Details["grant"])
			if err != nil {
				t.Fatal(err)
			}
			if g.RevokedAt.IsZero() {
				t.Fatal("grant stored by the lost write is not revoked")
			}
			grants++
		}
	}
	if grants != 1 {
		t.Fatalf("code_replay events: %d, want 1", grants)
	}
}

// lostRotation is the real store whose refresh token rotations are
// carried out but answered as a COMMIT that got no answer. It keeps the
// hashes of the tokens each rotation stored.
type lostRotation struct {
	*sqlstore.DB
	stored *[][]byte
}

func (l lostRotation) RotateToken(ctx context.Context, hash []byte, now time.Time, e *store.AuditEvent, tokens ...*store.Token) (*store.Token, error) {
	if _, err := l.DB.RotateToken(ctx, hash, now, e, tokens...); err != nil {
		return nil, err
	}
	for _, t := range tokens {
		*l.stored = append(*l.stored, t.Hash)
	}
	return nil, fmt.Errorf("commit: %w: connection reset", store.ErrOutcomeUnknown)
}

// TestRefreshOutcomeUnknown: a refresh whose rotation got no answer is
// told and logged as such. The client's retry with the same refresh
// token: from a confidential client (sender-constrained) it is a retry
// after a lost answer (ADR 55), which gets a fresh pair and revokes
// the pair the unanswered write stored; from a public client without
// DPoP, which anyone holding the token could be, it is taken for reuse
// and revokes the grant (RFC 9700 §4.14.2): the person is logged out
// of the relying party, which fails closed.
func TestRefreshOutcomeUnknown(t *testing.T) {
	for _, tt := range []struct {
		client, cb string
		retried    bool
	}{
		{taxID, taxCB, true},
		{publicID, kioskCB, false},
	} {
		t.Run(tt.client, func(t *testing.T) {
			var logs syncBuffer
			h := newHarness(t)
			l := h.rp(tt.client, tt.cb).loginFront(h.browser())
			var stored [][]byte
			h.p.Tokens = lostRotation{h.db, &stored}
			h.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
			status, body := h.refreshAs(tt.client, l.token.RefreshToken, "")
			desc, _ := body["error_description"].(string)
			if status != 500 || body["error"] != "server_error" || !strings.Contains(desc, "may or may not") {
				t.Fatalf("refresh with its outcome unknown: %d %v", status, body)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "outcome unknown") {
				t.Fatalf("log does not say the outcome is unknown:\n%s", logs.String())
			}
			if len(stored) != 2 {
				t.Fatalf("the unanswered rotation stored %d tokens, want 2", len(stored))
			}
			status, body = h.refreshAs(tt.client, l.token.RefreshToken, "")
			if !tt.retried {
				if status != 400 || body["error"] != "invalid_grant" {
					t.Fatalf("retry with the same refresh token: %d %v", status, body)
				}
				if h.userinfoStatus(l.token.AccessToken) != 401 {
					t.Fatal("the grant was not revoked on the retry")
				}
				return
			}
			if status != 200 {
				t.Fatalf("retry with the same refresh token: %d %v", status, body)
			}
			for _, hs := range stored {
				tok, err := h.db.GetToken(context.Background(), hs)
				if err != nil || tok.RevokedAt.IsZero() {
					t.Fatalf("a token the unanswered rotation stored is not revoked: %+v %v", tok, err)
				}
			}
			if h.userinfoStatus(body2str(body, "access_token")) != 200 || h.userinfoStatus(l.token.AccessToken) != 200 {
				t.Fatal("the person was logged out of the relying party by its retry")
			}
		})
	}
}
