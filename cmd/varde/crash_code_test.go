package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/loadgen"
)

// crashCode is an authorization code the relying party received at its
// redirect URI and has not redeemed yet, with its PKCE verifier.
type crashCode struct {
	code, verifier string
	// round is the load it was received in.
	round int
}

// codeOnly takes a login of p's (single sign-on from p's session) as
// far as the code the relying party receives, and keeps the code for
// checkCodes to redeem after the fault.
func (c *crashRun) codeOnly(ctx context.Context, p *crashPerson) error {
	verifier := oauth2.GenerateVerifier()
	form := url.Values{
		"response_type": {"code"}, "client_id": {c.rp.ClientID}, "redirect_uri": {c.rp.RedirectURI},
		"scope": {"openid offline_access"}, "state": {rand.Text()}, "nonce": {rand.Text()},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	status, body, err := c.clientPost(ctx, "/par", form)
	if err != nil {
		return err
	}
	requestURI, _ := body["request_uri"].(string)
	if status != http.StatusCreated || requestURI == "" {
		return fmt.Errorf("par: status %d: %v", status, body)
	}
	authURL := c.issuer + "/authorize?" + url.Values{"client_id": {c.rp.ClientID}, "request_uri": {requestURI}}.Encode()
	cb, err := c.rp.Authorize(ctx, p.device, authURL, loadgen.LoginOptions{Jar: p.jar})
	if err != nil {
		return err
	}
	code := cb.Query().Get("code")
	if code == "" {
		return fmt.Errorf("no code at the redirect URI: %s", cb.Redacted())
	}
	c.ack(func() { c.codes = append(c.codes, &crashCode{code: code, verifier: verifier, round: c.round}) })
	return nil
}

// checkCodes redeems, after the fault, each code the relying party
// received in the last load. Over PostgreSQL a code is in the database
// and is redeemed: tokens, with a refresh token whose chain is checked
// with the others. On SQLite codes live in the node's memory (ADR 7):
// a restart ends them, and the token endpoint says so (invalid_grant),
// as the relying party is told of any code it can no longer use.
func (c *crashRun) checkCodes(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, ac := range c.codes {
		if ac.round != c.round {
			continue
		}
		status, body, err := c.clientPost(ctx, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {ac.code},
			"redirect_uri": {c.rp.RedirectURI}, "code_verifier": {ac.verifier}})
		if err != nil {
			t.Fatalf("redeem a code after the fault: %v", err)
		}
		refresh, _ := body["refresh_token"].(string)
		c.checked.codes++
		switch {
		case c.flowInMemory && (status != http.StatusBadRequest || body["error"] != "invalid_grant"):
			t.Errorf("a code received before the restart of a node keeping codes in memory: %d %v, want invalid_grant", status, body)
		case !c.flowInMemory && (status != http.StatusOK || refresh == ""):
			t.Errorf("a code received before the fault is not redeemable after it: %d %v", status, body)
		case !c.flowInMemory:
			c.chains = append(c.chains, &crashChain{tokens: []string{refresh}, round: c.round})
		}
	}
	c.codes = nil
}

// clientPost posts form to the endpoint at path as the relying party,
// authenticated with a fresh private_key_jwt assertion, and decodes the
// JSON answer.
func (c *crashRun) clientPost(ctx context.Context, path string, form url.Values) (int, map[string]any, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.rp.Key, KeyID: c.rp.KeyID}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return 0, nil, err
	}
	now := time.Now()
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: c.rp.ClientID, Subject: c.rp.ClientID, Audience: jwt.Audience{c.issuer}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		return 0, nil, err
	}
	form.Set("client_id", c.rp.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.rp.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s: status %d: %.200s", path, res.StatusCode, raw)
	}
	return res.StatusCode, body, nil
}
