package oidc

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestLogoutHintOfAnotherNode: in a cluster each node signs with its own
// key and verifies with every node's published one, so an ID token
// another node issued is a hint as good as the node's own: the logout
// ends the session and sends the person back at once. Once that node's
// key is retired, the hint is one without a hint: the person is asked,
// and no error page ends the logout.
func TestLogoutHintOfAnotherNode(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.NewServer(t)
	db, err := sqlstore.OpenPostgres(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := newHarnessOver(t, db)
	other, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&keys.Set{Store: db, Local: other, Node: "n2", Now: h.clock.Now}).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// otherHint is the ID token b's login got, as the other node signs
	// it when the login's token request reaches that node.
	otherHint := func(b *browser) string {
		t.Helper()
		l := h.loginBank(h.rp(bankID, bankCB), b)
		raw, _ := l.token.Extra("id_token").(string)
		hint, err := other.SignTyped(idTokenClaims(t, raw), idTokenTyp)
		if err != nil {
			t.Fatal(err)
		}
		return hint
	}
	q := url.Values{"post_logout_redirect_uri": {bankBye}, "state": {"x"}}

	b := h.browser()
	q.Set("id_token_hint", otherHint(b))
	resp, page := b.get(h.issuer + PathLogout + "?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != bankBye+"?state=x" {
		t.Fatalf("hint of another node: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}

	b = h.browser()
	q.Set("id_token_hint", otherHint(b))
	if _, err := db.RetirePublicKey(ctx, other.KID(), h.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(time.Hour)
	q.Set("client_id", bankID)
	resp, _ = b.confirmLogout(q)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != bankBye+"?state=x" {
		t.Fatalf("hint of another node's retired key, confirmed: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := h.sessions.Current(sessionRequest(b, h.issuer)); err == nil {
		t.Fatal("session survived logout")
	}
}
