package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// TestRefreshRetryAfterLostAnswer: a relying party refreshing with
// x/oauth2's token source loses the node's answer to its first refresh
// (the connection closes once the node has answered, its tokens
// stored). The token source, asked again, presents the same refresh
// token, as HTTP client libraries retry: the node takes it for a retry
// (ADR 55), the relying party gets a fresh pair whose ID token go-oidc
// verifies for the same person, the person stays logged in there, and
// the tokens of the lost answer no longer work. Whoever presents the
// lost answer's refresh token later holds what the relying party never
// received, and the grant is revoked.
func TestRefreshRetryAfterLostAnswer(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	rp := n.addRPWith(t, "tax", "tax.example", func(c *store.Client) { c.RefreshTokens = true })
	login, err := rp.Login(ctx, n.enrol(t, false), loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if login.Token.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	lossy := &losesFirstRefresh{rp: rp, next: n.http.Transport}
	conf := &oauth2.Config{ClientID: rp.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: n.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	expired := *login.Token
	expired.Expiry = time.Now().Add(-time.Minute)
	ts := conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: lossy}), &expired)

	if _, err := ts.Token(); err == nil {
		t.Fatal("the lost answer reached the relying party")
	}
	lost := lossy.lostAnswer(t)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == login.Token.RefreshToken || tok.RefreshToken == lost.RefreshToken {
		t.Fatal("the retry did not get a fresh refresh token")
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.VerifyIDToken(ctx, raw)
	if err != nil || idt.Subject != login.IDToken.Subject {
		t.Fatalf("the retry's ID token: %v (%v), want sub %s", idt, err, login.IDToken.Subject)
	}
	if got := n.userinfo(t, lost.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("userinfo with the lost answer's access token: %d, want 401", got)
	}
	if got := n.userinfo(t, tok.AccessToken); got != http.StatusOK {
		t.Fatalf("userinfo with the retry's access token: %d", got)
	}
	if got := n.introspectActive(t, lossy, lost.RefreshToken); got {
		t.Error("the lost answer's refresh token is active")
	}

	// The person stays logged in: the relying party refreshes again.
	expired = *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	ts = conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: lossy}), &expired)
	later, err := ts.Token()
	if err != nil {
		t.Fatalf("refresh after the retry: %v", err)
	}
	events, err := n.app.Store.ListAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for _, e := range events {
		if e.Type == "token" && e.Reason == "refresh_retried" && e.Result == store.ResultSuccess && e.ClientID == rp.ClientID {
			retried++
		}
	}
	if retried != 1 {
		t.Errorf("%d refresh_retried events, want 1", retried)
	}

	// The lost answer's refresh token, presented, revokes the grant.
	_, err = conf.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: lossy}),
		&oauth2.Token{RefreshToken: lost.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("the lost answer's refresh token: %v, want invalid_grant", err)
	}
	if got := n.userinfo(t, later.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("userinfo after the lost answer's refresh token was presented: %d, want 401", got)
	}
}

// losesFirstRefresh is the relying party's transport to the node: it
// authenticates each token and introspection request with a fresh
// private_key_jwt assertion (x/oauth2 has none), and loses the answer
// to the first refresh after the node has sent it, as a connection
// closed at that moment does.
type losesFirstRefresh struct {
	rp   *loadgen.RP
	next http.RoundTripper

	mu   sync.Mutex
	lost []byte
	done bool
}

func (l *losesFirstRefresh) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	ca, err := l.assertion()
	if err != nil {
		return nil, err
	}
	form.Set("client_id", l.rp.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", ca)
	enc := form.Encode()
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(enc)), int64(len(enc))
	next := l.next
	if next == nil {
		next = http.DefaultTransport
	}
	res, err := next.RoundTrip(r)
	if err != nil || form.Get("grant_type") != "refresh_token" {
		return res, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return res, nil
	}
	l.done = true
	defer res.Body.Close()
	if l.lost, err = io.ReadAll(res.Body); err != nil {
		return nil, err
	}
	return nil, errors.New("connection reset by peer after the answer")
}

// lostAnswer is the token response the relying party did not receive.
func (l *losesFirstRefresh) lostAnswer(t *testing.T) *oauth2.Token {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(l.lost, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("the lost answer is no token response: %s (%v)", l.lost, err)
	}
	return &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
}

// assertion is a private_key_jwt client assertion of the relying
// party (RFC 7523 §3), with the issuer as its audience.
func (l *losesFirstRefresh) assertion() (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: l.rp.Key, KeyID: l.rp.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := time.Now()
	return jwt.Signed(s).Claims(jwt.Claims{
		Issuer: l.rp.ClientID, Subject: l.rp.ClientID, Audience: jwt.Audience{l.rp.Issuer},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: rand.Text(),
	}).Serialize()
}

// userinfo returns the status of a UserInfo request with access token
// access.
func (n *node) userinfo(t *testing.T, access string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	res, err := n.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// introspectActive asks, as the relying party through rt, whether its
// token tok is active (RFC 7662).
func (n *node) introspectActive(t *testing.T, rt http.RoundTripper, tok string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Active bool `json:"active"`
	}
	if err := jsonDecode(res, &out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("introspection: %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	return out.Active
}
