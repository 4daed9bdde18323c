package oidcup

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/assurance"
)

// fakeUpstream is a hand-written OpenID provider whose behaviour each
// test sets: what its metadata advertises, whether its responses carry
// iss, and what its token endpoint returns, including ID tokens crafted
// to be wrong in one way each.
type fakeUpstream struct {
	t      testing.TB
	srv    *httptest.Server
	issuer string
	clock  *clock
	secret string
	fnr    string

	jwksFetches, discoveryFetches, tokenCalls atomic.Int64
	// parCalls counts PAR requests, answered or not.
	parCalls atomic.Int64

	mu sync.Mutex
	// signing is the key ID tokens are signed with; published are the
	// keys in the JWKS.
	signing   signingKey
	published []signingKey
	// meta overrides discovery fields (nil values delete them).
	meta map[string]any
	// discoveryDown makes the discovery endpoint answer 500;
	// discoveryDelay holds its answers back.
	discoveryDown  bool
	discoveryDelay time.Duration
	// respIss is the iss of authorization responses: nil means the
	// issuer, "" none.
	respIss *string
	// authError, if set, is the error of the authorization response.
	authError string
	// claims edits the ID token claims; sign replaces the signing.
	claims func(c map[string]any)
	sign   func(f *fakeUpstream, claims map[string]any) string
	// tokenHang makes the token endpoint wait until the client gives up;
	// tokenStatus, if set, is its status with an error body.
	tokenHang   bool
	tokenStatus int
	// tokenWAF refuses with a 403 page, as a firewall in front of the
	// token endpoint does, a token request whose code holds a '<'.
	tokenWAF bool
	// strictCode answers invalid_request (RFC 6749 §5.2, "otherwise
	// malformed") to a code with a character its codes never have, as
	// some servers do.
	strictCode bool
	// tokenBlocked refuses every token request with a 403 page, as a
	// firewall that blocks Varde does.
	tokenBlocked bool
	// ignorePKCE redeems a code whatever code_verifier comes with it, as
	// a server without PKCE does.
	ignorePKCE bool
	// requirePAR refuses front-channel requests without request_uri.
	requirePAR bool
	// parStatus, if set, is the PAR endpoint's status with an error body;
	// parDelay delays its answer.
	parStatus int
	parDelay  time.Duration
	// onPAR, if set, runs when a pushed request arrives.
	onPAR func()
	// parRefusesHint makes the PAR endpoint refuse a request with a
	// login_hint as invalid_request, as an upstream that does not know
	// the person it names would.
	parRefusesHint bool
	pushed         map[string]url.Values
	codes          map[string]url.Values
	// lastAuth is the last authorization request's parameters.
	lastAuth url.Values
	// assertionKey is Varde's public client key, for private_key_jwt.
	assertionKey *jose.JSONWebKey
	// assertions are the claims of every client assertion accepted, in
	// the order they came, with the endpoint that took each ("par" or
	// "token") as "endpoint".
	assertions []map[string]any
}

type signingKey struct {
	kid string
	key any // a crypto.Signer, or []byte for HMAC
	alg jose.SignatureAlgorithm
}

func (k signingKey) public() crypto.PublicKey { return k.key.(crypto.Signer).Public() }

// The fake upstream's own acr values and Varde's client_id there.
const (
	fakeSubstantial = "urn:fake:loa:substantial"
	fakeHigh        = "urn:fake:loa:high"
	fakeClient      = "varde"
)

func newFakeUpstream(t testing.TB, c *clock) *fakeUpstream {
	f := &fakeUpstream{t: t, clock: c, secret: rand.Text() + rand.Text(), fnr: fnr(t),
		pushed: map[string]url.Values{}, codes: map[string]url.Values{}}
	f.signing = signingKey{kid: "k1", key: ecKey(t), alg: jose.ES256}
	f.published = []signingKey{f.signing}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", f.jwks)
	mux.HandleFunc("GET /authorize", f.authorize)
	mux.HandleFunc("POST /par", f.par)
	mux.HandleFunc("POST /token", f.token)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	return f
}

// config is Varde's configuration for this upstream.
func (f *fakeUpstream) config(v *varde, id string) Config {
	return Config{
		ID: id, Name: map[string]string{"en": "Fake"}, Issuer: f.issuer, ClientID: fakeClient,
		AuthMethod: AuthClientSecretBasic, ClientSecret: f.secret, RedirectURI: v.redirectURI(id),
		MaxLevel: assurance.Substantial, ACRMap: map[string]assurance.Level{fakeSubstantial: assurance.Substantial, fakeHigh: assurance.High},
		IdentifierClaim: "pid", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
		Timeouts: Timeouts{Token: 2 * time.Second, Request: 2 * time.Second},
	}
}

func (f *fakeUpstream) with(fn func(f *fakeUpstream)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeUpstream) discovery(w http.ResponseWriter, r *http.Request) {
	f.discoveryFetches.Add(1)
	f.mu.Lock()
	delay := f.discoveryDelay
	f.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.discoveryDown {
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	m := map[string]any{
		"issuer":                                f.issuer,
		"authorization_endpoint":                f.issuer + "/authorize",
		"token_endpoint":                        f.issuer + "/token",
		"jwks_uri":                              f.issuer + "/jwks",
		"pushed_authorization_request_endpoint": f.issuer + "/par",
		"response_types_supported":              []string{"code"},
		"id_token_signing_alg_values_supported": []string{"ES256", "RS256", "HS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
		"acr_values_supported":                  []string{fakeSubstantial, fakeHigh},
	}
	if f.requirePAR {
		m["require_pushed_authorization_requests"] = true
	}
	for k, val := range f.meta {
		if val == nil {
			delete(m, k)
		} else {
			m[k] = val
		}
	}
	writeJSON(w, http.StatusOK, m)
}

func (f *fakeUpstream) jwks(w http.ResponseWriter, r *http.Request) {
	f.jwksFetches.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, k := range f.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	writeJSON(w, http.StatusOK, set)
}

func (f *fakeUpstream) authorize(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.URL.Query()
	if ru := q.Get("request_uri"); ru != "" {
		p, ok := f.pushed[ru]
		if !ok || q.Get("client_id") != p.Get("client_id") {
			http.Error(w, "unknown request_uri", http.StatusBadRequest)
			return
		}
		delete(f.pushed, ru)
		q = p
	} else if f.requirePAR {
		http.Error(w, "PAR required", http.StatusBadRequest)
		return
	}
	f.lastAuth = q
	if q.Get("client_id") != fakeClient || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		!strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:") && !strings.HasPrefix(q.Get("redirect_uri"), "https://127.0.0.1:") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	resp := url.Values{"state": {q.Get("state")}}
	switch {
	case f.respIss == nil:
		resp.Set("iss", f.issuer)
	case *f.respIss != "":
		resp.Set("iss", *f.respIss)
	}
	if f.authError != "" {
		resp.Set("error", f.authError)
	} else {
		code := rand.Text()
		f.codes[code] = q
		resp.Set("code", code)
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+resp.Encode(), http.StatusSeeOther)
}

// clientOK checks client_secret_basic or a private_key_jwt assertion
// signed by Varde's published client key (whose aud must be the issuer
// as a single string), and records the assertion. The caller holds f.mu.
func (f *fakeUpstream) clientOK(r *http.Request, clientKey *jose.JSONWebKey) bool {
	if user, pass, ok := r.BasicAuth(); ok {
		return user == fakeClient && pass == url.QueryEscape(f.secret)
	}
	if clientKey == nil || r.PostForm.Get("client_assertion_type") != AssertionType {
		return false
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return false
	}
	var c map[string]any
	if err := tok.Claims(clientKey.Key, &c); err != nil {
		return false
	}
	if c["iss"] != fakeClient || c["sub"] != fakeClient || c["aud"] != f.issuer || c["jti"] == nil {
		return false
	}
	c["endpoint"] = strings.TrimPrefix(r.URL.Path, "/")
	f.assertions = append(f.assertions, c)
	return true
}

func (f *fakeUpstream) par(w http.ResponseWriter, r *http.Request) {
	defer f.parCalls.Add(1)
	_ = r.ParseForm()
	f.mu.Lock()
	delay, on := f.parDelay, f.onPAR
	f.mu.Unlock()
	if on != nil {
		on()
	}
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.parStatus != 0 {
		writeJSON(w, f.parStatus, map[string]string{"error": "server_error"})
		return
	}
	if !f.clientOK(r, f.assertionKey) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	if ma := r.PostForm.Get("max_age"); ma != "" {
		// Servers built on Nimbus read max_age as a 32-bit number and
		// refuse one they cannot.
		if _, err := strconv.ParseInt(ma, 10, 32); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
			return
		}
	}
	if f.parRefusesHint && r.PostForm.Has("login_hint") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	p := url.Values{}
	for k, v := range r.PostForm {
		if !strings.HasPrefix(k, "client_assertion") {
			p[k] = v
		}
	}
	ru := "urn:ietf:params:oauth:request_uri:" + rand.Text()
	f.pushed[ru] = p
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": ru, "expires_in": 60})
}

func (f *fakeUpstream) token(w http.ResponseWriter, r *http.Request) {
	f.tokenCalls.Add(1)
	_ = r.ParseForm()
	f.mu.Lock()
	hang, status := f.tokenHang, f.tokenStatus
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenBlocked || f.tokenWAF && strings.Contains(r.PostForm.Get("code"), "<") {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("<html><body>Request blocked</body></html>"))
		return
	}
	if f.strictCode && strings.ContainsAny(r.PostForm.Get("code"), "!*'()") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "malformed code"})
		return
	}
	if status != 0 {
		writeJSON(w, status, map[string]string{"error": "invalid_grant", "error_description": "nope"})
		return
	}
	if !f.clientOK(r, f.assertionKey) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	q, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != q.Get("redirect_uri") ||
		!f.ignorePKCE && base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		// An OAuth request, not an OpenID one: no ID token.
		writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 60})
		return
	}
	now := f.clock.Now()
	claims := map[string]any{
		"iss": f.issuer, "sub": "upstream-sub-1", "aud": fakeClient, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "auth_time": now.Add(-10 * time.Second).Unix(), "nonce": q.Get("nonce"),
		"acr": fakeSubstantial, "amr": []string{"pin", "mfa", "not-registered"}, "pid": f.fnr,
	}
	if f.claims != nil {
		f.claims(claims)
	}
	var idt string
	if f.sign != nil {
		idt = f.sign(f, claims)
	} else {
		idt = signWith(f.t, f.signing, claims)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 60, "id_token": idt})
}

// signWith signs claims as a JWS with k.
func signWith(t testing.TB, k signingKey, claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return signPayload(t, k, payload)
}

// signPayload signs payload as it is, even if it is not JSON or not
// UTF-8.
func signPayload(t testing.TB, k signingKey, payload []byte) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Error(err)
		return ""
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Error(err)
		return ""
	}
	out, _ := jws.CompactSerialize()
	return out
}

// unsigned builds a JWS-shaped token with the given header and no valid
// signature.
func unsigned(header map[string]any, claims map[string]any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig
}
