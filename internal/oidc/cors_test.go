package oidc

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	oa "github.com/varde-eid/varde/internal/oauth2"
)

// The CORS answers of the endpoints browser-based clients call (ADR 16).
const (
	wantAllowHeaders  = "Authorization, DPoP, Content-Type"
	wantExposeHeaders = "DPoP-Nonce, WWW-Authenticate, X-Request-Id"
	wantMaxAge        = "7200"
)

// fromPage sends a request to u as a page on another origin would, with
// the headers of a preflight for method, without following redirects,
// and returns the answer, its body read.
func fromPage(t *testing.T, method, u, preflightFor string, body url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://spa.example")
	req.Header.Set("Access-Control-Request-Method", preflightFor)
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,dpop")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestCORSPreflight: each endpoint a browser-based client calls answers
// a preflight (Fetch, CORS-preflight fetch) with an ok status, any
// origin, its own methods, the headers such a client sends
// (Authorization, DPoP, Content-Type) and a max-age; never with
// credentials allowed, and the same for every origin (no Vary).
func TestCORSPreflight(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, path, method, methods string
	}{
		{"discovery", PathDiscovery, http.MethodGet, "GET"},
		{"RFC 8414 metadata", PathAuthorizationServer, http.MethodGet, "GET"},
		{"jwks", PathJWKS, http.MethodGet, "GET"},
		{"par", PathPAR, http.MethodPost, "POST"},
		{"token", PathToken, http.MethodPost, "POST"},
		{"revocation", PathRevocation, http.MethodPost, "POST"},
		{"userinfo by GET", PathUserinfo, http.MethodGet, "GET, POST"},
		{"userinfo by POST", PathUserinfo, http.MethodPost, "GET, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := fromPage(t, http.MethodOptions, h.issuer+tt.path, tt.method, nil)
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("status %d, want 204", resp.StatusCode)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":      "*",
				"Access-Control-Allow-Methods":     tt.methods,
				"Access-Control-Allow-Headers":     wantAllowHeaders,
				"Access-Control-Max-Age":           wantMaxAge,
				"Access-Control-Allow-Credentials": "",
				"Vary":                             "",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestCORSOnAnswers: every answer of those endpoints lets any origin
// read it, refusals included (the invalid_grant a single-page app must
// read to start again, the nonce a DPoP client must read to retry, the
// challenge of a refused access token), and exposes DPoP-Nonce and
// WWW-Authenticate.
func TestCORSOnAnswers(t *testing.T) {
	h := newHarness(t, withNonces)
	k := h.dpopHolder()
	form := func(path string, f url.Values, proof string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if proof != "" {
				req.Header.Set("DPoP", proof)
			}
			return req
		}
	}
	get := func(path, authz string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, h.issuer+path, nil)
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			return req
		}
	}
	badCode := url.Values{"grant_type": {"authorization_code"}, "client_id": {publicID}, "code": {"no-such-code"},
		"redirect_uri": {kioskCB}, "code_verifier": {oauth2.GenerateVerifier()}}
	// A public client's pushed request without PKCE.
	noPKCE := url.Values{"client_id": {publicID}, "response_type": {"code"}, "redirect_uri": {kioskCB}, "scope": {"openid"}}
	tests := []struct {
		name string
		req  func() *http.Request
		// status and error are the answer's; read are headers it must
		// carry, beyond the CORS ones.
		status int
		error  string
		read   []string
	}{
		{"discovery", get(PathDiscovery, ""), http.StatusOK, "", nil},
		{"RFC 8414 metadata", get(PathAuthorizationServer, ""), http.StatusOK, "", nil},
		{"jwks", get(PathJWKS, ""), http.StatusOK, "", nil},
		{"token, unknown code", form(PathToken, badCode, ""), http.StatusBadRequest, oa.CodeInvalidGrant, []string{"DPoP-Nonce"}},
		{"token, proof without a nonce", form(PathToken, badCode, k.proof(http.MethodPost, PathToken, "")), http.StatusBadRequest, oa.CodeUseDPoPNonce, []string{"DPoP-Nonce"}},
		{"token, unknown client", form(PathToken, url.Values{"grant_type": {"authorization_code"}, "client_id": {"nobody"}}, ""), http.StatusUnauthorized, oa.CodeInvalidClient, []string{"WWW-Authenticate"}},
		{"par, no PKCE", form(PathPAR, noPKCE, ""), http.StatusBadRequest, oa.CodeInvalidRequest, []string{"DPoP-Nonce"}},
		{"revocation, unknown token", form(PathRevocation, url.Values{"client_id": {publicID}, "token": {"no-such-token"}}, ""), http.StatusOK, "", nil},
		{"userinfo, no token", get(PathUserinfo, ""), http.StatusUnauthorized, "", []string{"WWW-Authenticate", "DPoP-Nonce"}},
		{"userinfo, unknown token", get(PathUserinfo, "Bearer no-such-token"), http.StatusUnauthorized, oa.CodeInvalidToken, []string{"WWW-Authenticate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req()
			req.Header.Set("Origin", "https://spa.example")
			status, hdr, body := h.do(req)
			if status != tt.status || body2str(body, "error") != tt.error {
				t.Errorf("%d %v, want %d %q", status, body, tt.status, tt.error)
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":      "*",
				"Access-Control-Expose-Headers":    wantExposeHeaders,
				"Access-Control-Allow-Credentials": "",
				"Vary":                             "",
			}
			for k, v := range want {
				if got := hdr.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.read {
				if hdr.Get(k) == "" {
					t.Errorf("no %s to read", k)
				}
			}
		})
	}
}

// TestNoCORSOnNavigations: the authorization and logout endpoints, and
// the resume and cancel pages, are where a browser navigates with the
// person's session cookie, not what a page fetches: they name no
// origin in any answer and answer no preflight (RFC 9700 §2.6: CORS
// MUST NOT be supported at the authorization endpoint).
func TestNoCORSOnNavigations(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	authz := url.Values{"client_id": {publicID}, "response_type": {"code"}, "redirect_uri": {kioskCB}, "scope": {"openid"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}, "state": {"s"}}
	tests := []struct {
		name, method, path string
		body               url.Values
	}{
		{"authorize", http.MethodGet, PathAuthorize + "?" + authz.Encode(), nil},
		{"authorize by POST", http.MethodPost, PathAuthorize, authz},
		{"authorize, unregistered redirect", http.MethodGet, PathAuthorize + "?client_id=" + publicID + "&redirect_uri=https://evil.example/", nil},
		{"resume", http.MethodGet, PathResume + "?req=unknown", nil},
		{"cancel", http.MethodGet, PathCancel + "?req=unknown", nil},
		{"logout", http.MethodGet, PathLogout, nil},
		{"logout by POST", http.MethodPost, PathLogout, url.Values{}},
		// Server to server, for resource servers (ADR 17): no page calls it.
		{"introspection", http.MethodPost, PathIntrospection, url.Values{"token": {"t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := fromPage(t, tt.method, h.issuer+tt.path, tt.method, tt.body)
			if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound {
				t.Fatalf("%s %s: %d: not served", tt.method, tt.path, resp.StatusCode)
			}
			pre := fromPage(t, http.MethodOptions, h.issuer+tt.path, tt.method, nil)
			if pre.StatusCode/100 == 2 {
				t.Errorf("preflight answered %d", pre.StatusCode)
			}
			for _, r := range []*http.Response{resp, pre} {
				for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Access-Control-Expose-Headers"} {
					if v := r.Header.Get(k); v != "" {
						t.Errorf("%s %s: %s: %q", r.Request.Method, tt.path, k, v)
					}
				}
			}
		})
	}
}

// TestCORSWrongMethod: a method an endpoint browser-based clients call
// does not serve is answered 405 with Allow, an OAuth JSON
// invalid_request and the CORS headers, so that the script sees the
// refusal rather than a network error.
func TestCORSWrongMethod(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path, allow string
	}{
		{http.MethodGet, PathToken, "POST, OPTIONS"},
		{http.MethodPut, PathPAR, "POST, OPTIONS"},
		{http.MethodGet, PathRevocation, "POST, OPTIONS"},
		{http.MethodPost, PathJWKS, "GET, HEAD, OPTIONS"},
		{http.MethodDelete, PathDiscovery, "GET, HEAD, OPTIONS"},
		{http.MethodPatch, PathUserinfo, "GET, POST, HEAD, OPTIONS"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, h.issuer+tt.path, nil)
		req.Header.Set("Origin", "https://spa.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || err != nil || body.Error != "invalid_request" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q %v", tt.method, tt.path, resp.StatusCode, body.Error, err)
		}
		if got := resp.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q", tt.method, tt.path, got)
		}
		if got := resp.Header.Get("Access-Control-Expose-Headers"); got != wantExposeHeaders {
			t.Errorf("%s %s: Access-Control-Expose-Headers %q", tt.method, tt.path, got)
		}
	}
}
