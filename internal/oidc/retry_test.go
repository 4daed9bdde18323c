package oidc

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// refreshAs presents refresh token rt as client id: a public client
// names itself, any other authenticates with its secret; proof, if not
// "", is a DPoP proof.
func (h *harness) refreshAs(id, rt, proof string) (int, map[string]any) {
	h.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	basic := id
	if id == publicID {
		form.Set("client_id", publicID)
		basic = ""
	}
	status, _, body := h.postFormProof(PathToken, form, basic, proof)
	return status, body
}

// tokenReasons counts the token audit events by result and reason.
func (h *harness) tokenReasons() map[string]int {
	h.t.Helper()
	n := map[string]int{}
	for _, e := range h.auditEvents("token") {
		n[e.Result+" "+e.Reason]++
	}
	return n
}

// pair is the access and refresh token of one token response.
type pair struct{ access, refresh string }

// pairOf is the pair of a token response, which must be a success.
func (h *harness) pairOf(status int, body map[string]any) pair {
	h.t.Helper()
	if status != http.StatusOK {
		h.t.Fatalf("refresh: %d %v", status, body)
	}
	return pair{body2str(body, "access_token"), body2str(body, "refresh_token")}
}

// TestRefreshRetriedAfterLostAnswer: a refresh token presented again
// shortly after its rotation by the client it belongs to, proving it is
// that client, gets a fresh pair, and the pair of the answer it did not
// receive is revoked at once, in the same write, audited as a retry
// (ADR 55). The retry can repeat; only the last pair lives, and the
// grant lives on. Someone presenting the lost answer's refresh token
// later holds what the client never received: the grant is revoked.
func TestRefreshRetriedAfterLostAnswer(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	first := l.token.RefreshToken

	lost := h.pairOf(h.refresh(first))
	h.clock.Add(5 * time.Second)
	retried := h.pairOf(h.refresh(first))
	if retried == lost || retried.refresh == first {
		t.Fatal("the retry did not issue a fresh pair")
	}
	for _, tok := range []string{lost.access, lost.refresh} {
		if h.introspect(t, taxID, tok, nil).Active {
			t.Error("a token of the lost answer is active after the retry")
		}
	}
	if status := h.userinfoStatus(lost.access); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the lost answer's access token: %d, want 401", status)
	}
	if n := h.tokenReasons()["success refresh_retried"]; n != 1 {
		t.Errorf("%d refresh_retried events, want 1", n)
	}
	if got := h.counter("varde_refresh_retries_total", nil); got != 1 {
		t.Errorf("varde_refresh_retries_total = %v, want 1", got)
	}

	// The retry's answer was lost too, nothing of it used: the client
	// retries once more.
	h.clock.Add(5 * time.Second)
	again := h.pairOf(h.refresh(first))
	if status := h.userinfoStatus(retried.access); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the first retry's access token: %d, want 401", status)
	}
	if status := h.userinfoStatus(again.access); status != http.StatusOK {
		t.Fatalf("userinfo with the second retry's access token: %d", status)
	}
	live := 0
	for _, tok := range []string{lost.refresh, retried.refresh, again.refresh} {
		if h.introspect(t, taxID, tok, nil).Active {
			live++
		}
	}
	if live != 1 || !h.introspect(t, taxID, again.refresh, nil).Active {
		t.Fatalf("%d live refresh tokens after two retries, want only the last", live)
	}
	next := h.pairOf(h.refresh(again.refresh))
	if status := h.userinfoStatus(next.access); status != http.StatusOK {
		t.Fatalf("userinfo after refreshing the retry's token: %d", status)
	}

	// The lost answer's refresh token is a theft signal.
	if status, body := h.refresh(lost.refresh); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("the lost answer's refresh token: %d %v", status, body)
	}
	if status := h.userinfoStatus(next.access); status != http.StatusUnauthorized {
		t.Errorf("userinfo after the lost answer's token was presented: %d, want 401 (grant revoked)", status)
	}
	if n := h.tokenReasons()["failure refresh_replaced"]; n != 1 {
		t.Errorf("%d refresh_replaced events, want 1", n)
	}
}

// TestRefreshRetriedWithDPoPKey: a public client's refresh token bound
// to its DPoP key is retried with a proof made with that key; a proof
// with another key is refused and spends nothing.
func TestRefreshRetriedWithDPoPKey(t *testing.T) {
	h := newHarness(t)
	k, other := h.dpopHolder(), h.dpopHolder()
	tok := h.kioskLoginWith(k)
	lost := h.pairOf(h.refreshAs(publicID, tok.RefreshToken, k.proof(http.MethodPost, PathToken, "")))
	h.clock.Add(time.Second)
	if status, body := h.refreshAs(publicID, tok.RefreshToken, other.proof(http.MethodPost, PathToken, "")); status != 400 || body["error"] != "invalid_dpop_proof" {
		t.Fatalf("retry with another key: %d %v", status, body)
	}
	retried := h.pairOf(h.refreshAs(publicID, tok.RefreshToken, k.proof(http.MethodPost, PathToken, "")))
	if status, _, _ := h.userinfoWith("DPoP", lost.access, k.proof(http.MethodGet, PathUserinfo, lost.access)); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the lost answer's access token: %d, want 401", status)
	}
	if status, _, body := h.userinfoWith("DPoP", retried.access, k.proof(http.MethodGet, PathUserinfo, retried.access)); status != http.StatusOK {
		t.Fatalf("userinfo with the retry's access token: %d %v", status, body)
	}
	h.pairOf(h.refreshAs(publicID, retried.refresh, k.proof(http.MethodPost, PathToken, "")))
}

// TestRefreshReuseStillRevokes: a rotated refresh token presented again
// outside what ADR 55 lets through is a reuse, as before (RFC 9700
// §4.14.2): refused, and the grant revoked with everything issued
// under it. Refusals that come before reuse detection (another client,
// an expired token, a revoked grant) revoke nothing they did not
// before.
func TestRefreshReuseStillRevokes(t *testing.T) {
	tests := []struct {
		name string
		// interval is the provider's RefreshReuseInterval.
		interval time.Duration
		// client logs in and presents the tokens: taxID (a confidential
		// client), or publicID (a public client, without DPoP).
		client string
		// between runs after the first refresh, with its pair, before
		// the first refresh token is presented again.
		between func(h *harness, lost pair)
	}{
		{"after the window", 30 * time.Second, taxID, func(h *harness, _ pair) { h.clock.Add(31 * time.Second) }},
		{"after its successor was refreshed", 30 * time.Second, taxID, func(h *harness, lost pair) {
			h.pairOf(h.refresh(lost.refresh))
		}},
		{"after its successor access token was used", 30 * time.Second, taxID, func(h *harness, lost pair) {
			if status := h.userinfoStatus(lost.access); status != http.StatusOK {
				h.t.Fatalf("userinfo: %d", status)
			}
		}},
		{"after its successor access token was introspected", 30 * time.Second, taxID, func(h *harness, lost pair) {
			if !h.introspect(h.t.(*testing.T), taxID, lost.access, nil).Active {
				h.t.Fatal("successor access token inactive")
			}
		}},
		{"with retries turned off", 0, taxID, func(*harness, pair) {}},
		{"by a public client without DPoP", 30 * time.Second, publicID, func(*harness, pair) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(h *harness) { h.p.RefreshReuseInterval = tt.interval })
			cb := taxCB
			if tt.client == publicID {
				cb = kioskCB
			}
			l := h.rp(tt.client, cb).loginFront(h.browser())
			lost := h.pairOf(h.refreshAs(tt.client, l.token.RefreshToken, ""))
			tt.between(h, lost)
			if status, body := h.refreshAs(tt.client, l.token.RefreshToken, ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Fatalf("reuse: %d %v, want invalid_grant", status, body)
			}
			if status := h.userinfoStatus(l.token.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("userinfo with the login's access token after reuse: %d, want 401 (grant revoked)", status)
			}
			if n := h.tokenReasons()["failure refresh_reuse"]; n != 1 {
				t.Errorf("%d refresh_reuse events, want 1", n)
			}
			if n := h.tokenReasons()["success refresh_retried"]; n != 0 {
				t.Errorf("%d refresh_retried events, want none", n)
			}
		})
	}
}

// TestRefreshRetryRefusals: a retry inside the window is refused, as
// any refresh is, when presented by another client, after its token
// expired or after its grant was revoked (another DPoP key:
// TestRefreshRetriedWithDPoPKey); another client's refusal leaves the
// grant and the token as they were.
func TestRefreshRetryRefusals(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)

	t.Run("another client", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		h.pairOf(h.refresh(l.token.RefreshToken))
		if status, body := h.refreshAs(mobileID, l.token.RefreshToken, ""); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("retry by another client: %d %v", status, body)
		}
		// The client's own retry still works.
		h.pairOf(h.refresh(l.token.RefreshToken))
	})
	t.Run("expired", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		h.clock.Add(DefaultRefreshTokenLifetime - 2*time.Second)
		h.pairOf(h.refresh(l.token.RefreshToken))
		h.clock.Add(3 * time.Second)
		if status, body := h.refresh(l.token.RefreshToken); status != 400 || body["error"] != "invalid_grant" || body["error_description"] != "refresh token has expired" {
			t.Fatalf("retry after expiry: %d %v", status, body)
		}
	})
	t.Run("revoked grant", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		lost := h.pairOf(h.refresh(l.token.RefreshToken))
		if status, _, body := h.postForm(PathRevocation, url.Values{"token": {l.token.AccessToken}}, taxID); status != 200 {
			t.Fatalf("revoke: %d %v", status, body)
		}
		if status, body := h.refresh(l.token.RefreshToken); status != 400 || body["error_description"] != "grant was revoked" {
			t.Fatalf("retry after revocation: %d %v", status, body)
		}
		if h.introspect(t, taxID, lost.refresh, nil).Active {
			t.Fatal("a token of a revoked grant is active")
		}
	})
}

// TestRefreshConcurrentUses: uses of one refresh token at once. By a
// confidential client each later one is a retry of the first: every
// one is answered, and exactly one refresh token is live after them,
// the grant too. By a public client without DPoP, as before, one is
// answered and the others revoke the grant.
func TestRefreshConcurrentUses(t *testing.T) {
	const uses = 8
	for _, tt := range []struct {
		client, cb string
		ok         int // answers with tokens
		live       int // refresh tokens live after
	}{
		{taxID, taxCB, uses, 1},
		{publicID, kioskCB, 1, 0},
	} {
		t.Run(tt.client, func(t *testing.T) {
			h := newHarness(t)
			l := h.rp(tt.client, tt.cb).loginFront(h.browser())
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				issued  []string
				refused int
			)
			for range uses {
				wg.Go(func() {
					status, body := h.refreshAs(tt.client, l.token.RefreshToken, "")
					mu.Lock()
					defer mu.Unlock()
					if status == http.StatusOK {
						issued = append(issued, body2str(body, "refresh_token"))
					} else {
						refused++
					}
				})
			}
			wg.Wait()
			if len(issued) != tt.ok {
				t.Fatalf("%d of %d uses answered with tokens, want %d", len(issued), uses, tt.ok)
			}
			live := 0
			for _, rt := range issued {
				if tok, err := h.db.GetToken(context.Background(), hash(rt)); err == nil && tok.RevokedAt.IsZero() && h.grantLive(tok.GrantID) {
					live++
				}
			}
			if live != tt.live {
				t.Errorf("%d live refresh tokens after %d uses at once, want %d", live, uses, tt.live)
			}
		})
	}
}

// grantLive reports whether grant id is stored and not revoked.
func (h *harness) grantLive(id string) bool {
	h.t.Helper()
	g, err := h.db.GetGrant(context.Background(), id)
	return err == nil && g.RevokedAt.IsZero()
}

// TestRefreshTheftSignalNamesThePerson: the events of a refresh token
// taken for a thief's, a replaced one (ADR 55) or a spent one presented
// again (RFC 9700 §4.14.2), name the person whose login at the service
// they ended, as the events of its tokens do: the person's own record
// of events, and what an operator finds for them, show why the service
// logged them out.
func TestRefreshTheftSignalNamesThePerson(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		present      func(h *harness, first string)
	}{
		{"replaced", reasonRefreshReplaced, func(h *harness, first string) {
			lost := h.pairOf(h.refresh(first))
			h.pairOf(h.refresh(first))
			h.refresh(lost.refresh)
		}},
		{"reused", reasonRefreshReuse, func(h *harness, first string) {
			h.pairOf(h.refresh(first))
			h.clock.Add(time.Minute)
			h.refresh(first)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			l := h.rp(taxID, taxCB).loginFront(h.browser())
			tc.present(h, l.token.RefreshToken)
			var person string
			found := false
			for _, e := range h.auditEvents("token") {
				if e.Result == store.ResultSuccess && e.PersonID != "" {
					person = e.PersonID
				}
				if e.Result == store.ResultFailure && e.Reason == tc.reason {
					found = true
					if e.PersonID == "" || e.PersonID != person {
						t.Errorf("the %s event names person %q, want %q", tc.reason, e.PersonID, person)
					}
				}
			}
			if !found || person == "" {
				t.Fatalf("no %s event after the person's tokens (person %q)", tc.reason, person)
			}
		})
	}
}

// TestRefreshRetryAfterAUseOnAFastNode: the nodes of a cluster count
// the retry interval by their own clocks, which differ by a little. An
// access token of a rotation, used first on a node whose clock is ahead
// just after the interval by its count, was used before a retry on a
// node whose clock is behind, still within it by its count: the client
// did receive the answer, and the retry is a reuse (ADR 55), not a
// replacement of the tokens it uses.
func TestRefreshRetryAfterAUseOnAFastNode(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	first := l.token.RefreshToken
	answer := h.pairOf(h.refresh(first))
	// A node two seconds ahead: by its clock the interval has passed.
	h.clock.Add(h.p.RefreshReuseInterval + time.Second)
	if status := h.userinfoStatus(answer.access); status != http.StatusOK {
		t.Fatalf("userinfo with the answer's access token: %d", status)
	}
	// A moment later, a node two seconds behind.
	h.clock.Add(-2 * time.Second)
	if status, body := h.refresh(first); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("the first refresh token again, after its answer's access token was used: %d %v, want invalid_grant", status, body)
	}
	if n := h.tokenReasons()["success refresh_retried"]; n != 0 {
		t.Errorf("%d refresh_retried events, want none", n)
	}
}
