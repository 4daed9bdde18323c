package oidcup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long a client assertion is valid.
const assertionLifetime = time.Minute

// redeem exchanges the code at the token endpoint (RFC 6749 §4.1.3,
// RFC 7636 §4.5, OIDC Core §3.1.3.1) within Timeouts.Token and returns
// the ID token. Nothing of the response is logged but its error code.
//
// The exchange is bounded by the timeout alone, not by the person's
// request (see unhurried).
func (p *Provider) redeem(ctx context.Context, m *metadata, code, verifier string) (string, *rejection) {
	ctx, cancel := unhurried(ctx, p.t.Token)
	defer cancel()
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.cfg.RedirectURI},
		"code_verifier": {verifier},
	}
	status, body, err := p.post(ctx, m.TokenEndpoint, form)
	if err != nil {
		if timedOut(ctx, err) {
			return "", reject(ReasonTimeout, "token endpoint did not answer within %s", p.t.Token)
		}
		return "", reject(ReasonTokenEndpoint, "token request: %v", err)
	}
	if status != http.StatusOK {
		e := errorCode(body)
		// RFC 6749 §5.2, RFC 7636 §4.6: invalid_grant is the code (or
		// its verifier) refused. The code came through the browser, so
		// this is the endpoint working, not failing. invalid_request is
		// also what a server answers to a code it finds malformed, which
		// anyone who starts a login can send: the same.
		if status >= 400 && status < 500 && (e == "invalid_grant" || e == "invalid_request") {
			return "", reject(ReasonInvalidGrant, "token endpoint refused the code with %s (status %d)", e, status)
		}
		// A refusal that is no OAuth error (RFC 6749 §5.2) is a firewall
		// or proxy in front of the endpoint refusing the request: as
		// likely for the code the browser brought as for anything of
		// Varde's, and anyone who starts a login can send a code that
		// such a filter refuses. 401 is left out: it answers the
		// client authentication, which is Varde's alone.
		if status >= 400 && status < 500 && status != http.StatusUnauthorized && e == "?" {
			return "", reject(ReasonTokenRefused, "token endpoint answered %d without an OAuth error", status)
		}
		return "", reject(ReasonTokenEndpoint, "token endpoint answered %d, error %s", status, e)
	}
	// RFC 6749 §5.1, OIDC Core §3.1.3.3.
	var tr struct {
		IDToken   string `json:"id_token"`
		TokenType string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", reject(ReasonTokenEndpoint, "token response is not a JSON object of the expected shape")
	}
	if tr.IDToken == "" {
		// OIDC Core §3.1.3.3: the answer to an OpenID request has one;
		// one without is what an OAuth server rightly answers when the
		// request had no openid scope (see Provider.callback).
		return "", reject(ReasonNoIDToken, "token response has no id_token")
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") && !strings.EqualFold(tr.TokenType, "DPoP") {
		return "", reject(ReasonTokenEndpoint, "token response has token_type %s", safe(tr.TokenType))
	}
	return tr.IDToken, nil
}

// push sends the authorization request to the PAR endpoint (RFC 9126
// §2) within Timeouts.Request, not bounded by the person's request (see
// unhurried), and returns the request_uri and how long it is valid
// (expires_in, at most an hour; 0 if the answer has none).
func (p *Provider) push(ctx context.Context, m *metadata, params url.Values) (string, time.Duration, *rejection) {
	ctx, cancel := unhurried(ctx, p.t.Request)
	defer cancel()
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	status, body, err := p.post(ctx, m.PAREndpoint, form)
	if err != nil {
		if timedOut(ctx, err) {
			return "", 0, reject(ReasonTimeout, "PAR endpoint did not answer within %s", p.t.Request)
		}
		return "", 0, reject(ReasonPAR, "PAR request: %v", err)
	}
	// RFC 9126 §2.2: 201 Created (200 is tolerated).
	if status != http.StatusCreated && status != http.StatusOK {
		rej := reject(ReasonPAR, "PAR endpoint answered %d, error %s", status, errorCode(body))
		rej.status = status
		return "", 0, rej
	}
	var pr struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &pr); err != nil || pr.RequestURI == "" || len(pr.RequestURI) > 1024 {
		return "", 0, reject(ReasonPAR, "PAR response has no usable request_uri")
	}
	return pr.RequestURI, time.Duration(min(max(pr.ExpiresIn, 0), 3600)) * time.Second, nil
}

// post sends form with client authentication and returns the status and
// at most maxTokenSize bytes of the body.
func (p *Provider) post(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	basic := false
	switch p.cfg.AuthMethod {
	case AuthPrivateKeyJWT:
		a, err := p.assertion()
		if err != nil {
			return 0, nil, err
		}
		form.Set("client_id", p.cfg.ClientID)
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", a)
	case AuthClientSecretBasic:
		basic = true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.cfg.ClientSecret))
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenSize+1))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > maxTokenSize {
		return 0, nil, errors.New("response is too large")
	}
	return resp.StatusCode, body, nil
}

// assertion is a private_key_jwt client assertion (RFC 7523 §3, OIDC
// Core §9): iss and sub are the client_id, jti is random and used once,
// and it lives a minute. Its aud is the upstream's issuer identifier
// alone, as a single string, never an endpoint URL that metadata
// supplied, so an assertion cannot be replayed at another server that a
// forged document names (the audience-injection fix of
// draft-ietf-oauth-rfc7523bis, which the FAPI 2.0 Security Profile also
// requires).
//
// One signed ahead is used if there is one (see signAhead).
func (p *Provider) assertion() (string, error) {
	if a, ok := p.takeAhead(); ok {
		return a, nil
	}
	return p.signAssertion(p.now())
}

// signAssertion signs a client assertion issued at now.
func (p *Provider) signAssertion(now time.Time) (string, error) {
	jti, err := p.random(24)
	if err != nil {
		return "", err
	}
	claims := jwt.Claims{
		Issuer: p.cfg.ClientID, Subject: p.cfg.ClientID, Audience: jwt.Audience{p.cfg.Issuer}, ID: jti,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	// Marshalled once and signed, rather than through jwt.Signed, whose
	// builder marshals, unmarshals and marshals the claims again.
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	jws, err := p.jws.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	return jws.CompactSerialize()
}

// unhurried is ctx for a request to the upstream made for a person:
// bounded by d, and not cancelled when the person's browser goes away.
// A browser that hangs up while the upstream works would otherwise make
// the upstream's answer an error, counted against its health, and anyone
// can start logins and hang up; the upstream has been asked already, a
// code it has seen is used up, and what it answers is the evidence of
// how it works.
func unhurried(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// timedOut reports whether err is the deadline of ctx or a network
// timeout (not the person's browser going away).
func timedOut(ctx context.Context, err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorCode returns the OAuth error code of an error response, made
// safe for the log (RFC 6749 §5.2).
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "?"
	}
	return safe(e.Error)
}
