package demorp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// nonceIssuer is a stand-in for Varde that requires DPoP nonces (RFC
// 9449 §8, §9), with one nonce at its token endpoint and another at its
// UserInfo endpoint, as an authorization server and a resource server
// of their own may have, and hands out neither until asked: so Demo
// Bank's first proof at each is refused with use_dpop_nonce.
type nonceIssuer struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu sync.Mutex
	// oidcNonce is the nonce parameter of the last pushed request.
	oidcNonce string
	// tokenNonces and userinfoNonces are the DPoP nonces of the proofs
	// that came, in order ("" for none).
	tokenNonces, userinfoNonces []string
	// assertions are the jti of every client assertion.
	assertions []string
	// acr is the level its ID tokens name; high if empty.
	acr string
	// idClaims are added to its ID tokens' claims, or replace them.
	idClaims map[string]any
	// cookies go with the callback, besides the state cookie.
	cookies []*http.Cookie
	// now is the clock its ID tokens are issued by; nil means time.Now.
	now func() time.Time
}

const (
	asNonce = "nonce-of-the-token-endpoint"
	rsNonce = "nonce-of-the-userinfo-endpoint"
)

func newNonceIssuer(t *testing.T) *nonceIssuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &nonceIssuer{t: t, key: key}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "userinfo_endpoint": f.srv.URL + "/userinfo",
			"pushed_authorization_request_endpoint": f.srv.URL + "/par",
			"response_types_supported":              []string{"code"}, "subject_types_supported": []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.oidcNonce = r.PostFormValue("nonce")
		f.assertions = append(f.assertions, claim(t, r.PostFormValue("client_assertion"), "jti"))
		f.mu.Unlock()
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:1", "expires_in": 90})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		nonce := claim(t, r.Header.Get("DPoP"), "nonce")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tokenNonces = append(f.tokenNonces, nonce)
		jti := claim(t, r.PostFormValue("client_assertion"), "jti")
		for _, used := range f.assertions {
			if used == jti {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client assertion was already used"})
				return
			}
		}
		f.assertions = append(f.assertions, jti)
		if nonce != asNonce {
			w.Header().Set("DPoP-Nonce", asNonce)
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "use_dpop_nonce", "error_description": "a nonce is required"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 600, "id_token": f.idToken()})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		nonce := claim(t, r.Header.Get("DPoP"), "nonce")
		f.mu.Lock()
		f.userinfoNonces = append(f.userinfoNonces, nonce)
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "DPoP at" {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
			return
		}
		if nonce != rsNonce {
			w.Header().Set("DPoP-Nonce", rsNonce)
			w.Header().Set("WWW-Authenticate", `DPoP algs="ES256", error="use_dpop_nonce", error_description="a nonce is required"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "use_dpop_nonce"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"sub": "pairwise-sub"})
	})
	return f
}

func (f *nonceIssuer) idToken() string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Now()
	if f.now != nil {
		now = f.now()
	}
	acr := f.acr
	if acr == "" {
		acr = "http://eidas.europa.eu/LoA/high"
	}
	claims := map[string]any{
		"iss": f.srv.URL, "sub": "pairwise-sub", "aud": "demo-bank", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"nonce": f.oidcNonce, "acr": acr,
	}
	for k, v := range f.idClaims {
		claims[k] = v
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// bank is Demo Bank at f, with keys of its own for client assertions
// and DPoP, logging to log.
func (f *nonceIssuer) bank(log io.Writer) *RP {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	return &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(log, nil)), Now: time.Now,
	}
}

// login logs in at Demo Bank's handler h, asking for level acr ("" for
// none): the login form, then the callback with a code from f, in
// language lang. It returns the callback's response.
func (f *nonceIssuer) login(h http.Handler, acr, lang string) *httptest.ResponseRecorder {
	f.t.Helper()
	w := httptest.NewRecorder()
	login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(url.Values{"acr": {acr}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(w, login)
	if w.Code != http.StatusSeeOther {
		f.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var state string
	for _, c := range w.Result().Cookies() {
		if c.Name == "demobank_state" {
			state = c.Value
		}
	}
	cb := httptest.NewRequest(http.MethodGet, "/demo-bank/callback?"+url.Values{"code": {"c1"}, "state": {state}, "iss": {f.srv.URL}}.Encode(), nil)
	cb.Header.Set("Accept-Language", lang)
	cb.AddCookie(&http.Cookie{Name: "demobank_state", Value: state})
	for _, c := range f.cookies {
		cb.AddCookie(c)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, cb)
	return w
}

// claim is a string claim of a compact JWT, read without checking it;
// "" if it has none.
func claim(t *testing.T, token, name string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Errorf("JWT payload %q is not JSON", parts[1])
	}
	s, _ := claims[name].(string)
	return s
}

// TestDPoPNonceRetry: Demo Bank answers use_dpop_nonce as RFC 9449
// says: at the token endpoint (§8) it tries once more with the nonce
// and a new client assertion, and at UserInfo (§9) once more with the
// nonce of the refusal; the login then ends with a bound token.
func TestDPoPNonceRetry(t *testing.T) {
	f := newNonceIssuer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	w := f.login(mustHandler(t, rp), "", "")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != rp.BaseURL+"/account" {
		t.Fatalf("callback: %d %s %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var bound bool
	for _, s := range rp.sessions {
		bound = s.Bound
	}
	if !bound {
		t.Error("the session's token is not marked bound")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.tokenNonces, ","); got != ","+asNonce {
		t.Errorf("token requests' nonces %q, want none, then %s", f.tokenNonces, asNonce)
	}
	if got := strings.Join(f.userinfoNonces, ","); got != asNonce+","+rsNonce {
		t.Errorf("UserInfo requests' nonces %q, want the token endpoint's, then %s", f.userinfoNonces, rsNonce)
	}
	if len(f.assertions) != 3 {
		t.Errorf("client assertions %q, want three: one at PAR and a new one for each token request", f.assertions)
	}
}

// TestLevelBelowAskedRefused: Demo Bank lets a person in only at the
// level they chose or above it (OIDC Core §5.5.1.1: acr_values asks, it
// does not promise), says so in plain words when the ID token names a
// lower level or none, and refuses a level it does not offer before
// asking Varde for anything.
func TestLevelBelowAskedRefused(t *testing.T) {
	const (
		substantial = "http://eidas.europa.eu/LoA/substantial"
		high        = "http://eidas.europa.eu/LoA/high"
	)
	for _, tt := range []struct {
		name, asked, got string
		in               bool
	}{
		{name: "high for high", asked: high, got: high, in: true},
		{name: "high for substantial", asked: substantial, got: high, in: true},
		{name: "substantial for high", asked: high, got: substantial},
		{name: "a level not offered", asked: high, got: "http://eidas.europa.eu/LoA/low"},
		{name: "nothing asked", asked: "", got: substantial, in: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newNonceIssuer(t)
			f.acr = tt.got
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
				Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
				ACRValues: []string{substantial, high},
				Log:       slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
			}
			w := f.login(mustHandler(t, rp), tt.asked, "nb")
			if tt.in {
				if w.Code != http.StatusSeeOther || len(rp.sessions) != 1 {
					t.Fatalf("callback: %d, %d sessions, want in: %s", w.Code, len(rp.sessions), w.Body)
				}
				return
			}
			if w.Code != http.StatusForbidden || len(rp.sessions) != 0 || !strings.Contains(w.Body.String(), texts["nb"].ErrLevel) {
				t.Fatalf("callback: %d, %d sessions, want 403, none and %q:\n%s", w.Code, len(rp.sessions), texts["nb"].ErrLevel, w.Body)
			}
			// WCAG 3.3.7: the level chosen stays checked; 3.3.1: the
			// levels' fieldset is described by the error and the hint.
			for _, want := range []string{`value="` + tt.asked + `" checked>`, `<fieldset aria-describedby="error level-hint">`} {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("error page lacks %s:\n%s", want, w.Body)
				}
			}
		})
	}

	t.Run("a level the bank does not offer", func(t *testing.T) {
		f := newNonceIssuer(t)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
			Key: key, KeyID: "demo-bank-1", HTTPClient: f.srv.Client(), ACRValues: []string{substantial, high},
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
		w := httptest.NewRecorder()
		login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader("acr=low"))
		login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		login.Header.Set("Accept-Language", "en")
		mustHandler(t, rp).ServeHTTP(w, login)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), texts["en"].ErrLevelUnknown) {
			t.Fatalf("login: %d, want 400 and %q:\n%s", w.Code, texts["en"].ErrLevelUnknown, w.Body)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.assertions) != 0 {
			t.Errorf("Varde was asked %d times, want never", len(f.assertions))
		}
	})
}

// TestSessionsBounded: with maxSessions people logged in, a login that
// comes back to the callback gets a plain page with 503 and no session;
// once one of the sessions has expired, the next login goes in.
func TestSessionsBounded(t *testing.T) {
	f := newNonceIssuer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	h := mustHandler(t, rp)
	for i := range maxSessions {
		rp.sessions["s"+time.Duration(i).String()] = &loggedIn{expires: time.Now().Add(time.Hour)}
	}
	w := f.login(h, "", "en")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), texts["en"].ErrFull) || w.Header().Get("Retry-After") == "" {
		t.Errorf("full: status %d, Retry-After %q, want 503 and %q:\n%s", w.Code, w.Header().Get("Retry-After"), texts["en"].ErrFull, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			t.Errorf("full: session cookie %q set", c.Value)
		}
	}
	if len(rp.sessions) != maxSessions {
		t.Errorf("full: %d sessions, want %d", len(rp.sessions), maxSessions)
	}
	rp.sessions["s0s"].expires = time.Now().Add(-time.Second)
	if w := f.login(h, "", "en"); w.Code != http.StatusSeeOther {
		t.Errorf("after one expired: status %d, want 303:\n%s", w.Code, w.Body)
	}
	if len(rp.sessions) != maxSessions {
		t.Errorf("after one expired: %d sessions, want %d", len(rp.sessions), maxSessions)
	}
}

// TestCallbackRefusalLogged: what Varde says when a login comes back
// with an error (RFC 6749 §4.1.2.1), or with an ID token whose nonce is
// not this login's, goes to the log, where the bank's developer looks;
// the page says in plain words what happened and shows neither.
func TestCallbackRefusalLogged(t *testing.T) {
	for _, tt := range []struct {
		name  string
		query url.Values
		// otherNonce: the ID token names a nonce of another login.
		otherNonce bool
		want       string
		log        []string
	}{
		{name: "error", query: url.Values{"error": {"invalid_request"}, "error_description": {"acr_values names a level this client may not ask for"}},
			want: texts["en"].ErrNotCompleted, log: []string{"invalid_request", "acr_values names a level this client may not ask for"}},
		{name: "cancelled", query: url.Values{"error": {"access_denied"}, "error_description": {"the person cancelled"}},
			want: texts["en"].ErrCancelled, log: []string{"access_denied", "the person cancelled"}},
		{name: "another nonce", query: url.Values{"code": {"c1"}}, otherNonce: true,
			want: texts["en"].ErrToken, log: []string{"nonce"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newNonceIssuer(t)
			var log strings.Builder
			rp := f.bank(&log)
			h := mustHandler(t, rp)
			w := httptest.NewRecorder()
			login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
			login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			h.ServeHTTP(w, login)
			var state string
			for _, c := range w.Result().Cookies() {
				if c.Name == "demobank_state" {
					state = c.Value
				}
			}
			if tt.otherNonce {
				f.mu.Lock()
				f.oidcNonce = "nonce-of-another-login"
				f.mu.Unlock()
			}
			q := tt.query
			q.Set("state", state)
			q.Set("iss", f.srv.URL)
			cb := httptest.NewRequest(http.MethodGet, "/demo-bank/callback?"+q.Encode(), nil)
			cb.Header.Set("Accept-Language", "en")
			cb.AddCookie(&http.Cookie{Name: "demobank_state", Value: state})
			w = httptest.NewRecorder()
			h.ServeHTTP(w, cb)
			body := w.Body.String()
			if !strings.Contains(body, tt.want) || len(rp.sessions) != 0 {
				t.Errorf("status %d, %d sessions; want none and %q:\n%s", w.Code, len(rp.sessions), tt.want, body)
			}
			for _, s := range tt.log {
				if !strings.Contains(log.String(), s) {
					t.Errorf("log lacks %q: %s", s, log.String())
				}
				if strings.Contains(body, s) {
					t.Errorf("page shows %q:\n%s", s, body)
				}
			}
		})
	}
}

// TestCookiesSecureOverHTTPS: a bank served over https sets every cookie
// it sets or deletes (state, session, language) Secure, HttpOnly and
// SameSite=Lax under its path, so none of them goes out in clear text;
// over plain http, as the demo on localhost is, they carry no Secure.
func TestCookiesSecureOverHTTPS(t *testing.T) {
	for _, base := range []string{"https://bank.test/demo-bank", "http://localhost:8080/demo-bank"} {
		t.Run(base, func(t *testing.T) {
			f := newNonceIssuer(t)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: base,
				Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
			}
			h := mustHandler(t, rp)
			var cookies []*http.Cookie
			serve := func(r *http.Request) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				cookies = append(cookies, w.Result().Cookies()...)
				return w
			}
			login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
			login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			serve(login)
			if len(cookies) != 1 {
				t.Fatalf("login set %d cookies, want the state", len(cookies))
			}
			state := cookies[0].Value
			cb := httptest.NewRequest(http.MethodGet, "/demo-bank/callback?"+url.Values{"code": {"c1"}, "state": {state}, "iss": {f.srv.URL}}.Encode(), nil)
			cb.AddCookie(&http.Cookie{Name: "demobank_state", Value: state})
			if w := serve(cb); w.Code != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", w.Code, w.Body)
			}
			var sid string
			for _, c := range cookies {
				if c.Name == cookieName {
					sid = c.Value
				}
			}
			serve(httptest.NewRequest(http.MethodGet, "/demo-bank/?lang=da", nil))
			logout := httptest.NewRequest(http.MethodPost, "/demo-bank/logout", nil)
			logout.AddCookie(&http.Cookie{Name: cookieName, Value: sid})
			serve(logout)
			names := map[string]bool{}
			secure := strings.HasPrefix(base, "https://")
			for _, c := range cookies {
				names[c.Name] = true
				if c.Secure != secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/demo-bank/" {
					t.Errorf("cookie %s (max-age %d): Secure %v, HttpOnly %v, SameSite %v, Path %q; want Secure %v, HttpOnly, Lax, /demo-bank/",
						c.Name, c.MaxAge, c.Secure, c.HttpOnly, c.SameSite, c.Path, secure)
				}
			}
			if len(names) != 3 {
				t.Errorf("cookies set %v, want state, session and language", names)
			}
		})
	}
}

// TestBackchannelLogout: a logout token from Varde (OpenID Connect
// Back-Channel Logout 1.0 §2.6) ends the bank's session of that sid and
// no other; a token that is not one (an ID token with its nonce, one
// without the event, one for another client, one signed by another key)
// is refused with 400 and ends nothing.
func TestBackchannelLogout(t *testing.T) {
	f := newNonceIssuer(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(key *ecdsa.PrivateKey, claims map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType("logout+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logoutClaims := func(change func(map[string]any)) map[string]any {
		now := time.Now()
		c := map[string]any{"iss": f.srv.URL, "aud": "demo-bank", "sub": "pairwise-sub", "sid": "sid-1", "jti": random(8),
			"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "events": map[string]any{backchannelEvent: map[string]any{}}}
		if change != nil {
			change(c)
		}
		return c
	}
	for _, tt := range []struct {
		name   string
		token  string
		ended  bool
		status int
	}{
		{name: "logout token", token: sign(f.key, logoutClaims(nil)), ended: true, status: 200},
		{name: "sub alone", token: sign(f.key, logoutClaims(func(c map[string]any) { delete(c, "sid") })), ended: true, status: 200},
		{name: "another sid", token: sign(f.key, logoutClaims(func(c map[string]any) { c["sid"] = "sid-2" })), status: 200},
		{name: "no jti", token: sign(f.key, logoutClaims(func(c map[string]any) { delete(c, "jti") })), status: 400},
		{name: "with a nonce", token: sign(f.key, logoutClaims(func(c map[string]any) { c["nonce"] = "n" })), status: 400},
		// A claim present as null is present: a nonce of null is a nonce
		// (§2.4), and a null sid is no sid to fall back from to the sub.
		{name: "with a null nonce", token: sign(f.key, logoutClaims(func(c map[string]any) { c["nonce"] = nil })), status: 400},
		{name: "null sid", token: sign(f.key, logoutClaims(func(c map[string]any) { c["sid"] = nil })), status: 400},
		{name: "null sub", token: sign(f.key, logoutClaims(func(c map[string]any) { c["sub"] = nil })), status: 400},
		{name: "null iss", token: sign(f.key, logoutClaims(func(c map[string]any) { c["iss"] = nil })), status: 400},
		{name: "null aud", token: sign(f.key, logoutClaims(func(c map[string]any) { c["aud"] = nil })), status: 400},
		{name: "null exp", token: sign(f.key, logoutClaims(func(c map[string]any) { c["exp"] = nil })), status: 400},
		{name: "null iat", token: sign(f.key, logoutClaims(func(c map[string]any) { c["iat"] = nil })), status: 400},
		{name: "null jti", token: sign(f.key, logoutClaims(func(c map[string]any) { c["jti"] = nil })), status: 400},
		{name: "no event", token: sign(f.key, logoutClaims(func(c map[string]any) { delete(c, "events") })), status: 400},
		{name: "another client", token: sign(f.key, logoutClaims(func(c map[string]any) { c["aud"] = "other" })), status: 400},
		{name: "expired", token: sign(f.key, logoutClaims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), status: 400},
		{name: "another key", token: sign(other, logoutClaims(nil)), status: 400},
		{name: "none", token: "", status: 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
				HTTPClient: f.srv.Client(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
			}
			h := mustHandler(t, rp)
			exp := time.Now().Add(time.Hour)
			rp.sessions["a"] = &loggedIn{Claims: map[string]any{"sub": "pairwise-sub", "sid": "sid-1"}, expires: exp}
			rp.sessions["b"] = &loggedIn{Claims: map[string]any{"sub": "someone-else", "sid": "sid-3"}, expires: exp}
			r := httptest.NewRequest(http.MethodPost, "/demo-bank/backchannel-logout", strings.NewReader(url.Values{"logout_token": {tt.token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			_, stays := rp.sessions["a"]
			if stays == tt.ended || rp.sessions["b"] == nil {
				t.Errorf("session of the token's sid ended: %v, want %v; other session kept: %v", !stays, tt.ended, rp.sessions["b"] != nil)
			}
			if w.Code != tt.status {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status == http.StatusBadRequest && !strings.Contains(w.Body.String(), `"error":"invalid_request"`) {
				t.Errorf("body %s, want error invalid_request (§2.8)", w.Body)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store (§2.8)", w.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestIDTokenAZP: Demo Bank checks the ID token's authorized party as
// OIDC Core §3.1.3.7 asks: one for several audiences must name the bank
// in azp, and an azp naming another client is refused, even when the
// bank is among the audiences.
func TestIDTokenAZP(t *testing.T) {
	for _, tt := range []struct {
		name   string
		claims map[string]any
		in     bool
	}{
		{name: "the bank alone", in: true},
		{name: "azp the bank", claims: map[string]any{"azp": "demo-bank"}, in: true},
		{name: "several audiences, azp the bank", claims: map[string]any{"aud": []string{"demo-bank", "api"}, "azp": "demo-bank"}, in: true},
		{name: "several audiences, no azp", claims: map[string]any{"aud": []string{"demo-bank", "api"}}},
		{name: "azp another client", claims: map[string]any{"aud": []string{"demo-bank", "other"}, "azp": "other"}},
		{name: "one audience, azp another client", claims: map[string]any{"azp": "other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newNonceIssuer(t)
			f.idClaims = tt.claims
			var log strings.Builder
			rp := f.bank(&log)
			w := f.login(mustHandler(t, rp), "", "en")
			if tt.in {
				if w.Code != http.StatusSeeOther || len(rp.sessions) != 1 {
					t.Errorf("callback: %d, %d sessions, want in: %s", w.Code, len(rp.sessions), w.Body)
				}
				return
			}
			if w.Code != http.StatusBadGateway || len(rp.sessions) != 0 || !strings.Contains(w.Body.String(), texts["en"].ErrToken) {
				t.Errorf("callback: %d, %d sessions, want 502 and %q: %s", w.Code, len(rp.sessions), texts["en"].ErrToken, w.Body)
			}
			if !strings.Contains(log.String(), "azp") {
				t.Errorf("log does not say why: %s", log.String())
			}
		})
	}
}

// TestIDTokenNullClaims: an ID token with a claim the bank reads
// present as JSON null is refused, as one with a wrong value is: a null
// nonce is not the nonce the login sent (OIDC Core §3.1.3.7 step 11),
// and null is no subject, issuer, audience, time, level, session or
// authorized party. The log says why.
func TestIDTokenNullClaims(t *testing.T) {
	for _, name := range []string{"nonce", "sub", "iss", "aud", "exp", "iat", "acr", "sid", "azp"} {
		t.Run(name, func(t *testing.T) {
			f := newNonceIssuer(t)
			f.idClaims = map[string]any{name: nil}
			var log strings.Builder
			rp := f.bank(&log)
			w := f.login(mustHandler(t, rp), "", "en")
			if w.Code != http.StatusBadGateway || len(rp.sessions) != 0 || !strings.Contains(w.Body.String(), texts["en"].ErrToken) {
				t.Errorf("callback: %d, %d sessions, want 502 and %q: %s", w.Code, len(rp.sessions), texts["en"].ErrToken, w.Body)
			}
			// go-oidc reads exp and iat as numbers itself, and refuses
			// a null one before the bank reads any claim.
			said := name
			if name == "exp" || name == "iat" {
				said = "failed to unmarshal claims"
			}
			if !strings.Contains(log.String(), said) {
				t.Errorf("log does not say %q: %s", said, log.String())
			}
		})
	}
}

// TestLoginsInTwoTabs: a login begun in one tab still finishes after
// another was begun in a second tab of the same browser, and then the
// second one finishes too; a state the browser never began is refused.
func TestLoginsInTwoTabs(t *testing.T) {
	f := newNonceIssuer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	h := mustHandler(t, rp)
	jar := "" // the browser's demobank_state cookie
	nonces := []string{}
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		r.Header.Set("Accept-Language", "en")
		if jar != "" {
			r.AddCookie(&http.Cookie{Name: "demobank_state", Value: jar})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			if c.Name == "demobank_state" {
				jar = c.Value
				if c.MaxAge < 0 {
					jar = ""
				}
			}
		}
		return w
	}
	begin := func() string {
		r := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		serve(r)
		f.mu.Lock()
		nonces = append(nonces, f.oidcNonce)
		f.mu.Unlock()
		for state, p := range rp.pending {
			if p.nonce == nonces[len(nonces)-1] {
				return state
			}
		}
		t.Fatal("no login pending")
		return ""
	}
	finish := func(state, nonce string) *httptest.ResponseRecorder {
		f.mu.Lock()
		f.oidcNonce = nonce // Varde's ID token names the nonce of this tab's login
		f.mu.Unlock()
		return serve(httptest.NewRequest(http.MethodGet, "/demo-bank/callback?"+url.Values{"code": {"c1"}, "state": {state}, "iss": {f.srv.URL}}.Encode(), nil))
	}
	first, second := begin(), begin()
	if w := finish(first, nonces[0]); w.Code != http.StatusSeeOther {
		t.Errorf("first tab: %d, want 303 to the account:\n%s", w.Code, w.Body)
	}
	if w := finish(second, nonces[1]); w.Code != http.StatusSeeOther {
		t.Errorf("second tab: %d, want 303 to the account:\n%s", w.Code, w.Body)
	}
	if jar != "" {
		t.Errorf("state cookie %q left after both logins finished", jar)
	}
	begin()
	if w := finish("never-begun", nonces[2]); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), texts["en"].ErrState) {
		t.Errorf("a state never begun: %d, want 400 and %q", w.Code, texts["en"].ErrState)
	}
}

// TestLoginAgainEndsPreviousSession: a browser that logs in again while
// logged in gets a new session, and the one its cookie named ends at
// once, rather than staying usable until it expires; other browsers'
// sessions stay.
func TestLoginAgainEndsPreviousSession(t *testing.T) {
	f := newNonceIssuer(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	h := mustHandler(t, rp)
	exp := time.Now().Add(time.Hour)
	rp.sessions["old"] = &loggedIn{Claims: map[string]any{"sub": "pairwise-sub"}, expires: exp}
	rp.sessions["other"] = &loggedIn{Claims: map[string]any{"sub": "someone-else"}, expires: exp}
	f.cookies = []*http.Cookie{{Name: cookieName, Value: "old"}}
	w := f.login(h, "", "en")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", w.Code, w.Body)
	}
	var sid string
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			sid = c.Value
		}
	}
	if sid == "" || sid == "old" || rp.sessions[sid] == nil {
		t.Fatalf("new session %q not made", sid)
	}
	if rp.sessions["old"] != nil {
		t.Error("the browser's previous session is still live")
	}
	if rp.sessions["other"] == nil {
		t.Error("another browser's session ended")
	}
}

// TestPARResponseBounded: a pushed authorization response larger than
// maxResponse is not read to its end: the login stops with the page
// for a login that could not start, and the log names the limit.
func TestPARResponseBounded(t *testing.T) {
	for _, tt := range []struct {
		name   string
		pad    int
		status int
	}{
		{name: "small", pad: 1 << 10, status: http.StatusSeeOther},
		{name: "too large", pad: maxResponse, status: http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			defer srv.Close()
			mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, map[string]any{
					"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
					"jwks_uri": srv.URL + "/jwks", "pushed_authorization_request_endpoint": srv.URL + "/par",
				})
			})
			mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:1", "expires_in": 90,
					"padding": strings.Repeat("a", tt.pad)})
			})
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			var log strings.Builder
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://bank.test/demo-bank",
				Key: key, KeyID: "demo-bank-1", HTTPClient: srv.Client(),
				Log: slog.New(slog.NewTextHandler(&log, nil)), Now: time.Now,
			}
			w := httptest.NewRecorder()
			login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
			login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			login.Header.Set("Accept-Language", "en")
			mustHandler(t, rp).ServeHTTP(w, login)
			if w.Code != tt.status {
				t.Fatalf("login: %d, want %d\n%s", w.Code, tt.status, w.Body)
			}
			if tt.status == http.StatusBadGateway && (!strings.Contains(w.Body.String(), texts["en"].ErrStart) || !strings.Contains(log.String(), "larger than")) {
				t.Errorf("page or log does not say why:\n%s\n%s", w.Body, log.String())
			}
		})
	}
}

// TestBackchannelLogoutReplay: a logout token whose jti was taken before
// ends nothing, though it gets 200 (Varde sends it again, signed anew,
// when it did not see the first answer): so a copy of it cannot end the
// sessions of a later login with the same sid. Another jti still does.
func TestBackchannelLogoutReplay(t *testing.T) {
	f := newNonceIssuer(t)
	sign := func(jti string, exp time.Time) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType("logout+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(map[string]any{"iss": f.srv.URL, "aud": "demo-bank", "sub": "pairwise-sub", "sid": "sid-1",
			"jti": jti, "iat": time.Now().Unix(), "exp": exp.Unix(), "events": map[string]any{backchannelEvent: map[string]any{}}}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		HTTPClient: f.srv.Client(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	h := mustHandler(t, rp)
	exp := time.Now().Add(2 * time.Minute)
	first := sign("jti-1", exp)
	for _, step := range []struct {
		name, token string
		ended       bool
	}{
		{name: "first", token: first, ended: true},
		{name: "the same token again", token: first},
		{name: "the same jti signed anew", token: sign("jti-1", exp.Add(time.Minute))},
		{name: "another jti", token: sign("jti-2", exp), ended: true},
	} {
		rp.mu.Lock()
		rp.sessions["a"] = &loggedIn{Claims: map[string]any{"sub": "pairwise-sub", "sid": "sid-1"}, expires: time.Now().Add(time.Hour)}
		rp.mu.Unlock()
		r := httptest.NewRequest(http.MethodPost, "/demo-bank/backchannel-logout", strings.NewReader(url.Values{"logout_token": {step.token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		rp.mu.Lock()
		_, stays := rp.sessions["a"]
		rp.mu.Unlock()
		if w.Code != http.StatusOK || stays == step.ended {
			t.Errorf("%s: status %d, session ended %v; want 200, %v", step.name, w.Code, !stays, step.ended)
		}
	}
}

// TestRefusedPARKeepsLevel: when Varde refuses the pushed authorization
// request, Demo Bank's page with the error still has the level the
// person chose checked (WCAG 3.3.7), not the first again.
func TestRefusedPARKeepsLevel(t *testing.T) {
	const high = "http://eidas.europa.eu/LoA/high"
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "pushed_authorization_request_endpoint": srv.URL + "/par",
		})
	})
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "no"})
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", HTTPClient: srv.Client(),
		ACRValues: []string{"http://eidas.europa.eu/LoA/substantial", high},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	w := httptest.NewRecorder()
	login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(url.Values{"acr": {high}}.Encode()))
	login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	login.Header.Set("Accept-Language", "en")
	mustHandler(t, rp).ServeHTTP(w, login)
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), texts["en"].ErrStart) {
		t.Fatalf("login: %d, want 502 and %q\n%s", w.Code, texts["en"].ErrStart, w.Body)
	}
	if !strings.Contains(w.Body.String(), `value="`+high+`" checked>`) {
		t.Errorf("the level chosen is not checked:\n%s", w.Body)
	}
}

// TestCallbackErrorKeepsLevel: a login that comes back cancelled, with
// an error, with the wrong issuer, or with a code Varde will not redeem
// shows its error page with the level it asked for still checked.
func TestCallbackErrorKeepsLevel(t *testing.T) {
	const high = "http://eidas.europa.eu/LoA/high"
	for _, tt := range []struct {
		name  string
		query url.Values
		iss   string
		want  string
	}{
		{name: "cancelled", query: url.Values{"error": {"access_denied"}}, want: texts["en"].ErrCancelled},
		{name: "error", query: url.Values{"error": {"server_error"}}, want: texts["en"].ErrNotCompleted},
		{name: "no way in working", query: url.Values{"error": {"temporarily_unavailable"}}, want: texts["en"].ErrUnavailable},
		{name: "no way in reaches the level", query: url.Values{"error": {"unmet_authentication_requirements"}}, want: texts["en"].ErrUnmet},
		{name: "issuer", query: url.Values{"code": {"c1"}}, iss: "https://other.example", want: texts["en"].ErrIssuer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newNonceIssuer(t)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
				Key: key, KeyID: "demo-bank-1", HTTPClient: f.srv.Client(),
				ACRValues: []string{"http://eidas.europa.eu/LoA/substantial", high},
				Log:       slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
			}
			h := mustHandler(t, rp)
			w := httptest.NewRecorder()
			login := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(url.Values{"acr": {high}}.Encode()))
			login.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			h.ServeHTTP(w, login)
			var state string
			for _, c := range w.Result().Cookies() {
				if c.Name == "demobank_state" {
					state = c.Value
				}
			}
			q := tt.query
			q.Set("state", state)
			q.Set("iss", f.srv.URL)
			if tt.iss != "" {
				q.Set("iss", tt.iss)
			}
			cb := httptest.NewRequest(http.MethodGet, "/demo-bank/callback?"+q.Encode(), nil)
			cb.Header.Set("Accept-Language", "en")
			cb.AddCookie(&http.Cookie{Name: "demobank_state", Value: state})
			w = httptest.NewRecorder()
			h.ServeHTTP(w, cb)
			body := w.Body.String()
			if !strings.Contains(body, tt.want) || !strings.Contains(body, `value="`+high+`" checked`) {
				t.Errorf("status %d; want %q and the level High checked:\n%s", w.Code, tt.want, body)
			}
		})
	}
}

// TestIDTokenExpiryByTheBanksClock: the bank checks an ID token's expiry
// by its own clock (RP.Now), the clock Varde issued it by, not the
// machine's.
func TestIDTokenExpiryByTheBanksClock(t *testing.T) {
	f := newNonceIssuer(t)
	past := time.Now().Add(-2 * time.Hour)
	clock := func() time.Time { return past }
	f.now = clock
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: f.srv.URL, BaseURL: "http://bank.test/demo-bank",
		Key: key, KeyID: "demo-bank-1", DPoPKey: dpopKey, HTTPClient: f.srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock,
	}
	h := mustHandler(t, rp)
	if w := f.login(h, "", "en"); w.Code != http.StatusSeeOther {
		t.Errorf("an ID token valid by the bank's clock: status %d, want 303:\n%s", w.Code, w.Body)
	}
}
