package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/keys"
	oa "github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// code gets an authorization code for the tax office in b.
func (h *harness) code(b *browser, verifier string) string {
	h.t.Helper()
	q := taxQuery(func(q url.Values) { q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier)) })
	resp, _ := b.get(h.issuer + PathAuthorize + "?" + q.Encode())
	return h.callback(resp, taxCB).Get("code")
}

func codeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {taxCB}, "code_verifier": {verifier}}
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 200 {
		t.Fatalf("first redemption: %d %v", status, body)
	}
	access := body["access_token"].(string)
	refresh := body["refresh_token"].(string)
	if h.userinfoStatus(access) != 200 {
		t.Fatal("access token does not work")
	}
	status, _, body = h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", status, body)
	}
	// RFC 6749 §4.1.2: what the code issued is revoked.
	if h.userinfoStatus(access) != 401 {
		t.Fatal("access token still works after code replay")
	}
	status, _, _ = h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, taxID)
	if status != 400 {
		t.Fatal("refresh token still works after code replay")
	}
	var audited bool
	for _, e := range h.auditEvents("token") {
		audited = audited || e.Reason == "code_replay" && e.PersonID == h.person.ID
	}
	if !audited {
		t.Fatal("code replay not audited")
	}
}

// TestCodeAloneSpendsNothing: whoever holds only a code, not the
// client's PKCE verifier or credentials, is refused without spending it
// (RFC 7636 §4.6, RFC 9700 §4.5.3), so the client still redeems it;
// and replaying it afterwards revokes nothing the client was issued.
// Only a replay that passes every check is a use twice (RFC 6749
// §4.1.2, TestCodeReplayRevokesTokens).
func TestCodeAloneSpendsNothing(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	attempts := []struct {
		name   string
		form   url.Values
		client string
	}{
		{"wrong verifier", codeForm(code, oauth2.GenerateVerifier()), taxID},
		{"no verifier", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {taxCB}}, taxID},
		{"another client", codeForm(code, verifier), mobileID},
		{"another redirect_uri", func() url.Values { f := codeForm(code, verifier); f.Set("redirect_uri", taxCB2); return f }(), taxID},
	}
	for _, a := range attempts {
		if status, _, body := h.postForm(PathToken, a.form, a.client); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("%s: %d %v", a.name, status, body)
		}
	}
	status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	if status != 200 {
		t.Fatalf("the client, after those: %d %v", status, body)
	}
	access := body["access_token"].(string)
	for _, a := range attempts {
		if status, _, body := h.postForm(PathToken, a.form, a.client); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("%s, after the redemption: %d %v", a.name, status, body)
		}
	}
	if h.userinfoStatus(access) != 200 {
		t.Fatal("a replay by a holder of the code alone revoked the client's tokens")
	}
	var pkce, replay int
	for _, e := range h.auditEvents("token") {
		switch e.Reason {
		case "pkce_failed":
			pkce++
		case "code_replay":
			replay++
		}
	}
	if pkce != 4 || replay != 0 {
		t.Fatalf("audited %d pkce_failed and %d code_replay, want 4 and 0", pkce, replay)
	}
}

func TestTokenErrors(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	// Log in once so the codes below need no login.
	h.code(b, oauth2.GenerateVerifier())
	tests := []struct {
		name   string
		form   func(code, verifier string) url.Values
		client string // Basic client; "" means the form carries authentication
		after  func() // runs between getting the code and redeeming it
		status int
		code   string
	}{
		{"missing verifier", func(c, v string) url.Values { f := codeForm(c, v); f.Del("code_verifier"); return f }, taxID, nil, 400, "invalid_grant"},
		{"wrong verifier", func(c, v string) url.Values { return codeForm(c, oauth2.GenerateVerifier()) }, taxID, nil, 400, "invalid_grant"},
		{"short verifier", func(c, v string) url.Values { return codeForm(c, "abc") }, taxID, nil, 400, "invalid_grant"},
		{"wrong redirect_uri", func(c, v string) url.Values { f := codeForm(c, v); f.Set("redirect_uri", taxCB2); return f }, taxID, nil, 400, "invalid_grant"},
		{"missing redirect_uri", func(c, v string) url.Values { f := codeForm(c, v); f.Del("redirect_uri"); return f }, taxID, nil, 400, "invalid_grant"},
		{"wrong client", codeForm, mobileID, nil, 400, "invalid_grant"},
		{"expired code", codeForm, taxID, func() { h.clock.Add(61 * time.Second) }, 400, "invalid_grant"},
		{"unknown code", func(c, v string) url.Values { return codeForm("nope", v) }, taxID, nil, 400, "invalid_grant"},
		{"no code", func(c, v string) url.Values { f := codeForm(c, v); f.Del("code"); return f }, taxID, nil, 400, "invalid_request"},
		{"unsupported grant", func(c, v string) url.Values { f := codeForm(c, v); f.Set("grant_type", "password"); return f }, taxID, nil, 400, "unsupported_grant_type"},
		{"no grant_type", func(c, v string) url.Values { f := codeForm(c, v); f.Del("grant_type"); return f }, taxID, nil, 400, "invalid_request"},
		{"repeated code", func(c, v string) url.Values { f := codeForm(c, v); f.Add("code", c); return f }, taxID, nil, 400, "invalid_request"},
		{"NUL in code", func(c, v string) url.Values { return codeForm(c+"\x00", v) }, taxID, nil, 400, "invalid_request"},
		{"verifier not UTF-8", func(c, v string) url.Values { return codeForm(c, v[:len(v)-1]+"\xff") }, taxID, nil, 400, "invalid_request"},
		{"no client auth", func(c, v string) url.Values { f := codeForm(c, v); f.Set("client_id", taxID); return f }, "", nil, 401, "invalid_client"},
		{"forged assertion", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_assertion_type", oa.AssertionType)
			f.Set("client_assertion", forgedAssertion(h))
			return f
		}, "", nil, 401, "invalid_client"},
		{"alg none assertion", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_assertion_type", oa.AssertionType)
			f.Set("client_assertion", noneAssertion(h))
			return f
		}, "", nil, 401, "invalid_client"},
		{"expired assertion", func(c, v string) url.Values {
			f := codeForm(c, v)
			f.Set("client_assertion_type", oa.AssertionType)
			f.Set("client_assertion", h.assertion(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(h.clock.Now().Add(-time.Hour)) }))
			return f
		}, "", nil, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			code := h.code(b, verifier)
			if tt.after != nil {
				tt.after()
			}
			status, hdr, body := h.postForm(PathToken, tt.form(code, verifier), tt.client)
			if status != tt.status || body["error"] != tt.code {
				t.Fatalf("%d %v, want %d %s", status, body, tt.status, tt.code)
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store")
			}
			if tt.status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
		})
	}
	if v := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "token", "error": "invalid_client"}); v != 4 {
		t.Fatalf("invalid_client metric = %v", v)
	}
}

// TestRefusalsSayWhatIsValid: a code_challenge, code_verifier or
// grant_type that is not one Varde takes is refused with a description
// that says what one it takes looks like, so that the relying party's
// developer can mend the request from the answer alone.
func TestRefusalsSayWhatIsValid(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	verifier := oauth2.GenerateVerifier()
	par := h.bankAuth(bankForm("st", "n", verifier))
	par.Set("code_challenge", "short")
	hint := h.bankAuth(bankForm("st", "n", verifier))
	hint.Set("provider_hint", "BankID")
	tests := []struct {
		name   string
		path   string
		form   url.Values
		client string
		code   string
		want   string
	}{
		{"code_challenge not S256's", PathPAR, par, "", "invalid_request", "code_challenge must be BASE64URL(SHA-256(code_verifier)) without padding, 43 characters (RFC 7636 section 4.2)"},
		{"provider_hint not an ID", PathPAR, hint, "", "invalid_request", "provider_hint must be 'any' or a provider id (lower-case letters, digits and '-')"},
		{"code_verifier too short", PathToken, codeForm(h.code(b, verifier), "abc"), taxID, "invalid_grant", "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~' (RFC 7636 section 4.1)"},
		{"a parameter not UTF-8", PathToken, codeForm(h.code(b, verifier), "v\xff"), taxID, "invalid_request", "parameter code_verifier is not valid UTF-8 text"},
		{"grant_type Varde does not offer", PathToken, url.Values{"grant_type": {"client_credentials"}}, taxID, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token (see grant_types_supported)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := h.postForm(tt.path, tt.form, tt.client)
			if status != 400 || body["error"] != tt.code || body["error_description"] != tt.want {
				t.Errorf("%d %v, want 400 %s: %s", status, body, tt.code, tt.want)
			}
			// RFC 6749 §5.2: error_description is printable ASCII only,
			// without '"' and '\\'.
			got, _ := body["error_description"].(string)
			for _, r := range got {
				if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
					t.Errorf("error_description %q holds %q, which RFC 6749 §5.2 does not allow", got, r)
				}
			}
		})
	}
}

func noneAssertion(h *harness) string {
	tok := h.assertion(nil)
	parts := strings.Split(tok, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}

func TestReplayedAssertionAtTokenEndpoint(t *testing.T) {
	h := newHarness(t)
	bank := h.rp(bankID, bankCB)
	b := h.browser()
	h.loginBank(bank, b)
	// Push with one assertion, then push again with the same one.
	f := h.bankAuth(bankForm("s", "n", oauth2.GenerateVerifier()))
	if status, _, body := h.postForm(PathPAR, f, ""); status != 201 {
		t.Fatalf("%d %v", status, body)
	}
	f.Set("code_challenge", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()))
	status, _, body := h.postForm(PathPAR, f, "")
	if status != 401 || body["error"] != "invalid_client" || !strings.Contains(body["error_description"].(string), "already used") {
		t.Fatalf("replayed assertion: %d %v", status, body)
	}
}

// TestAssertionAudienceIsTheIssuer: at /par and /token a client
// assertion must name the issuer identifier and nothing else
// (draft-ietf-oauth-rfc7523bis); an endpoint URL is accepted only from a
// client registered with LegacyEndpointAudience, and then alone.
func TestAssertionAudienceIsTheIssuer(t *testing.T) {
	h := newHarness(t)
	code := func() (string, string) {
		t.Helper()
		verifier, state := oauth2.GenerateVerifier(), rand.Text()
		authURL, status, body := h.pushBank(bankForm(state, "n", verifier))
		if status != http.StatusCreated {
			t.Fatalf("PAR: %d %v", status, body)
		}
		resp, _ := h.browser().get(authURL)
		return h.callback(resp, bankCB).Get("code"), verifier
	}
	authenticate := func(path string, aud ...string) (int, map[string]any) {
		t.Helper()
		form := bankForm("s", "n", oauth2.GenerateVerifier())
		if path == PathToken {
			c, verifier := code()
			form = url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {bankCB}, "code_verifier": {verifier}}
		}
		if path == PathRevocation || path == PathIntrospection {
			form = url.Values{"token": {rand.Text()}}
		}
		form.Set("client_assertion_type", oa.AssertionType)
		form.Set("client_assertion", h.assertion(func(c *jwt.Claims) { c.Audience = aud }))
		status, _, body := h.postForm(path, form, "")
		return status, body
	}
	const other = "https://other-server.example"
	tests := []struct {
		name   string
		legacy bool
		path   string
		aud    []string
		status int
	}{
		{"PAR: issuer", false, PathPAR, []string{h.issuer}, http.StatusCreated},
		{"PAR: PAR endpoint", false, PathPAR, []string{h.issuer + PathPAR}, http.StatusUnauthorized},
		{"PAR: token endpoint", false, PathPAR, []string{h.issuer + PathToken}, http.StatusUnauthorized},
		{"PAR: issuer next to another server", false, PathPAR, []string{other, h.issuer}, http.StatusUnauthorized},
		{"token: issuer", false, PathToken, []string{h.issuer}, http.StatusOK},
		{"token: token endpoint", false, PathToken, []string{h.issuer + PathToken}, http.StatusUnauthorized},
		{"token: token endpoint next to another server", false, PathToken, []string{other, h.issuer + PathToken}, http.StatusUnauthorized},
		{"legacy PAR: PAR endpoint", true, PathPAR, []string{h.issuer + PathPAR}, http.StatusCreated},
		{"legacy token: token endpoint", true, PathToken, []string{h.issuer + PathToken}, http.StatusOK},
		{"legacy token: token endpoint next to another server", true, PathToken, []string{other, h.issuer + PathToken}, http.StatusUnauthorized},
		{"revocation: issuer", false, PathRevocation, []string{h.issuer}, http.StatusOK},
		{"revocation: revocation endpoint", false, PathRevocation, []string{h.issuer + PathRevocation}, http.StatusUnauthorized},
		{"introspection: introspection endpoint", false, PathIntrospection, []string{h.issuer + PathIntrospection}, http.StatusUnauthorized},
		{"legacy revocation: revocation endpoint", true, PathRevocation, []string{h.issuer + PathRevocation}, http.StatusOK},
		{"legacy revocation: token endpoint", true, PathRevocation, []string{h.issuer + PathToken}, http.StatusOK},
		{"legacy introspection: introspection endpoint", true, PathIntrospection, []string{h.issuer + PathIntrospection}, http.StatusOK},
		{"legacy introspection: introspection endpoint next to another server", true, PathIntrospection, []string{other, h.issuer + PathIntrospection}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		c, err := h.db.GetClient(t.Context(), bankID)
		if err != nil {
			t.Fatal(err)
		}
		c.LegacyEndpointAudience = tt.legacy
		if err := h.db.PutClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		status, body := authenticate(tt.path, tt.aud...)
		if status != tt.status || status == http.StatusUnauthorized && body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v %v, want %d", tt.name, status, body["error"], body["error_description"], tt.status)
		}
	}
}

func TestMalformedTokenRequests(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		ctype  string
		body   string
		status int
	}{
		{"json body", "application/json", `{"grant_type":"authorization_code"}`, 400},
		{"no content type", "", "grant_type=authorization_code", 400},
		{"bad encoding", "application/x-www-form-urlencoded", "grant_type=%zz&code=%", 400},
		{"oversize", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=" + strings.Repeat("a", MaxBodySize), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, h.issuer+PathToken, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			req.SetBasicAuth(taxID, h.secrets[taxID])
			status, _, body := h.do(req)
			if status != tt.status || body["error"] != "invalid_request" {
				t.Fatalf("%d %v", status, body)
			}
		})
	}
	// Oversize PAR bodies are refused the same way.
	req, _ := http.NewRequest(http.MethodPost, h.issuer+PathPAR, strings.NewReader("scope="+strings.Repeat("a", MaxBodySize)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, _, body := h.do(req); status != 413 || body["error"] != "invalid_request" {
		t.Fatalf("PAR oversize: %d %v", status, body)
	}
	// GET is not a token request.
	resp, err := http.Get(h.issuer + PathToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /token: %d", resp.StatusCode)
	}
}

func TestUserinfoErrors(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	tests := []struct {
		name      string
		header    string
		before    func()
		status    int
		challenge string
	}{
		{"no token", "", nil, 401, `Bearer realm="varde"`},
		{"unknown token", "Bearer nope", nil, 401, `Bearer error="invalid_token"`},
		{"refresh token", "Bearer " + l.token.RefreshToken, nil, 401, `Bearer error="invalid_token"`},
		{"basic scheme", "Basic eDp5", nil, 401, `Bearer realm="varde"`},
		{"scheme alone", "Bearer", nil, 400, `Bearer error="invalid_request"`},
		{"token too long", "Bearer " + strings.Repeat("a", maxBearerLen+1), nil, 400, `Bearer error="invalid_request"`},
		{"dpop scheme alone", "DPoP ", nil, 400, `DPoP algs=`},
		{"valid, lowercase scheme", "bearer " + l.token.AccessToken, nil, 200, ""},
		// RFC 6750 §2.1: "Bearer" 1*SP b64token.
		{"valid, spaces after the scheme", "Bearer   " + l.token.AccessToken, nil, 200, ""},
		{"scheme and spaces alone", "Bearer   ", nil, 400, `Bearer error="invalid_request"`},
		{"expired", "Bearer " + l.token.AccessToken, func() { h.clock.Add(DefaultAccessTokenLifetime) }, 401, `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			req, _ := http.NewRequest(http.MethodGet, h.issuer+PathUserinfo, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			status, hdr, _ := h.do(req)
			if status != tt.status || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), tt.challenge) {
				t.Fatalf("%d %q", status, hdr.Get("WWW-Authenticate"))
			}
		})
	}
}

// Two redemptions of one code at once: at most one gets tokens, and
// whatever it got is revoked by the other (the replay).
func TestConcurrentCodeRedemption(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	for round := range 5 {
		verifier := oauth2.GenerateVerifier()
		code := h.code(b, verifier)
		type result struct {
			status int
			body   map[string]any
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				req, _ := http.NewRequest(http.MethodPost, h.issuer+PathToken, strings.NewReader(codeForm(code, verifier).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(taxID, h.secrets[taxID])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					results <- result{status: -1}
					return
				}
				defer resp.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				results <- result{resp.StatusCode, body}
			}()
		}
		ok := 0
		var access string
		for range 2 {
			r := <-results
			switch r.status {
			case 200:
				ok++
				access, _ = r.body["access_token"].(string)
			case 400:
				if r.body["error"] != "invalid_grant" {
					t.Fatalf("round %d: %v", round, r.body)
				}
			default:
				t.Fatalf("round %d: status %d %v", round, r.status, r.body)
			}
		}
		if ok > 1 {
			t.Fatalf("round %d: both redemptions got tokens", round)
		}
		if access != "" && h.userinfoStatus(access) != 401 {
			t.Fatalf("round %d: token from a replayed code still works", round)
		}
	}
}

// TestRefreshNarrowsScope: RFC 6749 §6 — a refresh may ask for less
// scope and gets exactly that; asking for more is invalid_scope.
func TestRefreshNarrowsScope(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	l := tax.loginFront(h.browser(), oauth2.SetAuthURLParam("scope", "openid profile"))
	refresh := func(scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}
		if scope != "" {
			form.Set("scope", scope)
		}
		status, _, body := h.postForm(PathToken, form, taxID)
		return status, body
	}
	if status, body := refresh("openid profile email"); status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("wider scope: %d %v", status, body)
	}
	status, body := refresh("openid")
	if status != 200 || body["scope"] != "openid" {
		t.Fatalf("narrower scope: %d %v", status, body)
	}
	tok, err := h.db.GetToken(context.Background(), hash(body["access_token"].(string)))
	if err != nil || !slices.Equal(tok.Scope, []string{"openid"}) {
		t.Fatalf("stored access token scope = %v (%v)", tok, err)
	}
}

// flakyKey is a signing key whose Sign fails while down is set, as an
// unreachable hardware module would.
type flakyKey struct {
	crypto.Signer
	down atomic.Bool
}

func (k *flakyKey) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.down.Load() {
		return nil, errors.New("signing module unreachable")
	}
	return k.Signer.Sign(rnd, digest, opts)
}

// TestFailedRefreshKeepsToken: a refresh that fails on the server's side
// uses nothing up. The relying party's retry with the same refresh token
// succeeds instead of being taken for a reuse that revokes the grant,
// and only the refresh that succeeded is audited.
func TestFailedRefreshKeepsToken(t *testing.T) {
	h := newHarness(t)
	l := h.rp(taxID, taxCB).loginFront(h.browser())
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := &flakyKey{Signer: priv}
	signer, err := keys.New(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.p.Signer = signer
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}
	tokenEvents := func() int {
		n := 0
		for _, e := range h.auditEvents("token") {
			if e.Result == store.ResultSuccess && e.Details["grant_type"] == "refresh_token" {
				n++
			}
		}
		return n
	}

	key.down.Store(true)
	status, _, body := h.postForm(PathToken, refresh, taxID)
	if status != http.StatusInternalServerError || body["error"] != "server_error" {
		t.Fatalf("refresh while signing fails: %d %v", status, body)
	}
	if n := tokenEvents(); n != 0 {
		t.Fatalf("a failed refresh was audited as issued (%d events)", n)
	}
	key.down.Store(false)
	status, _, body = h.postForm(PathToken, refresh, taxID)
	if status != http.StatusOK {
		t.Fatalf("retry after a failed refresh: %d %v", status, body)
	}
	if h.userinfoStatus(body["access_token"].(string)) != http.StatusOK {
		t.Fatal("the retry's access token does not work: the grant was revoked")
	}
	if n := tokenEvents(); n != 1 {
		t.Fatalf("%d refresh token events, want 1", n)
	}
	// The token the retry used up is now spent.
	if status, _, _ = h.postForm(PathToken, refresh, taxID); status != http.StatusBadRequest {
		t.Fatalf("third use of the same refresh token: %d", status)
	}
}

// TestRefreshExpiresAtExpiresAt: a refresh token is expired from the
// instant of its ExpiresAt on, for the refresh grant as for
// introspection (RFC 7662 §2.2), so the two never disagree.
func TestRefreshExpiresAtExpiresAt(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	l := tax.loginFront(h.browser())
	tok, err := h.db.GetToken(context.Background(), hash(l.token.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Add(tok.ExpiresAt.Sub(h.clock.Now()))
	if got := h.introspect(t, taxID, l.token.RefreshToken, nil); got.Active {
		t.Fatal("introspection calls a refresh token active at its ExpiresAt")
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}
	if status, _, body := h.postForm(PathToken, form, taxID); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh at ExpiresAt: %d %v, want invalid_grant", status, body)
	}
}

// TestCodeAfterSessionEndedIsRefused: a code whose session ended before
// it was redeemed (the person logged out, or their sessions were ended)
// yields no tokens, with or without offline_access: the relying party
// was told of the session's end (Back-Channel Logout §2.7) before it
// could have had tokens from it, and tokens issued now would outlive a
// logout the person has already seen. Refused as invalid_grant and
// audited; the relying party starts a new login.
func TestCodeAfterSessionEndedIsRefused(t *testing.T) {
	for _, scope := range []string{"openid", "openid offline_access"} {
		t.Run(scope, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			verifier := oauth2.GenerateVerifier()
			q := taxQuery(func(q url.Values) {
				q.Set("scope", scope)
				q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
			})
			resp, _ := b.get(h.issuer + PathAuthorize + "?" + q.Encode())
			code := h.callback(resp, taxCB).Get("code")
			h.logOut(b)
			status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" || body["access_token"] != nil {
				t.Fatalf("code redeemed after its session ended: %d %v, want 400 invalid_grant", status, body)
			}
			var audited bool
			for _, e := range h.auditEvents("token") {
				audited = audited || e.Reason == "session_ended" && e.Result == store.ResultFailure && e.PersonID == h.person.ID
			}
			if !audited {
				t.Error("the refusal was not audited")
			}
		})
	}
}

// TestAssertionAudienceAsAnArray: FAPI 2.0 Security Profile §5.3.2.1
// item 8 (the OpenID FAPI 2.0 suite's "array as audience fails"): the
// issuer is accepted as a JSON string only, not as a one-element array,
// at PAR as at every endpoint that authenticates clients; a client
// registered with legacy_endpoint_audience may still send the array
// (ADR 51).
func TestAssertionAudienceAsAnArray(t *testing.T) {
	h := newHarness(t)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: h.bankKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "bank-1"))
	if err != nil {
		t.Fatal(err)
	}
	push := func(aud any) (int, map[string]any) {
		t.Helper()
		now := h.clock.Now()
		assertion, err := jwt.Signed(signer).Claims(map[string]any{"iss": bankID, "sub": bankID, "aud": aud, "jti": rand.Text(),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		form := bankForm("s", "n", oauth2.GenerateVerifier())
		form.Set("client_assertion_type", oa.AssertionType)
		form.Set("client_assertion", assertion)
		status, _, body := h.postForm(PathPAR, form, "")
		return status, body
	}
	if status, body := push(h.issuer); status != http.StatusCreated {
		t.Fatalf("issuer as a string: %d %v", status, body)
	}
	status, body := push([]string{h.issuer})
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || !strings.Contains(body2str(body, "error_description"), "not an array") {
		t.Fatalf("issuer in an array: %d %v", status, body)
	}
	c, err := h.db.GetClient(t.Context(), bankID)
	if err != nil {
		t.Fatal(err)
	}
	c.LegacyEndpointAudience = true
	if err := h.db.PutClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if status, body := push([]string{h.issuer}); status != http.StatusCreated {
		t.Fatalf("legacy client, issuer in an array: %d %v", status, body)
	}
}
