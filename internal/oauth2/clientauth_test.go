package oauth2

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const (
	issuer   = "https://id.example.no"
	tokenURL = issuer + "/token"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func jwks(keys ...testKey) json.RawMessage {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	raw, _ := json.Marshal(set)
	return raw
}

func newECKey(t testing.TB, kid string) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid, jose.ES256, k}
}

// sign builds a client assertion as a client would, with go-jose.
func sign(t testing.TB, k testKey, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func claimsFor(client string, now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer: client, Subject: client, Audience: jwt.Audience{issuer},
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ID: rand.Text(),
	}
}

type fixture struct {
	auth  *ClientAuthenticator
	clock *testClock
	ec    testKey
	ed    testKey
	rsa   testKey
	// served is what the jwks_uri server returns; fetches counts requests.
	// With down set it answers 503.
	mu      sync.Mutex
	served  json.RawMessage
	fetches atomic.Int64
	down    atomic.Bool
}

const basicID = "bank client:1" // needs form-urlencoding in Basic
const basicSecret = "correct horse battery staple, 32+ chars long"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{clock: &testClock{t: t0}, ec: newECKey(t, "ec1")}
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	f.ed = testKey{"ed1", jose.EdDSA, edk}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.rsa = testKey{"rsa1", jose.PS256, rk}
	f.served = jwks(f.rsa)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.fetches.Add(1)
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.served)
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256([]byte(basicSecret))
	for _, c := range []*store.Client{
		{ID: "jwt", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(f.ec, f.ed)},
		{ID: "jwt-uri", AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"},
		{ID: basicID, AuthMethod: store.AuthClientSecretBasic, SecretHash: sum[:]},
		{ID: "public", AuthMethod: store.AuthNone},
	} {
		if err := db.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.auth = &ClientAuthenticator{
		Clients: db, Replay: db, Audiences: []string{issuer, tokenURL, issuer + "/par"},
		HTTPClient: srv.Client(), Now: f.clock.Now,
	}
	return f
}

func formRequest(form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func assertionForm(tok string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "client_assertion_type": {AssertionType}, "client_assertion": {tok}}
}

func basicRequest(user, pass string, form url.Values) *http.Request {
	r := formRequest(form)
	r.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return r
}

func wantClient(t *testing.T, c *store.Client, err error, id string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if c.ID != id {
		t.Fatalf("client = %s, want %s", c.ID, id)
	}
}

func wantError(t *testing.T, err error, code, desc string) {
	t.Helper()
	e := AsError(err)
	if err == nil || e.Code != code || !strings.Contains(e.Description, desc) {
		t.Fatalf("err = %v, want %s containing %q", err, code, desc)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	f := newFixture(t)
	stranger := newECKey(t, "ec1") // same kid, different key: a forgery
	hmacKey := testKey{"ec1", jose.HS256, nil}
	now := t0
	mod := func(fn func(*jwt.Claims)) jwt.Claims {
		c := claimsFor("jwt", now)
		fn(&c)
		return c
	}
	tests := []struct {
		name string
		tok  string
		form url.Values // extra parameters
		code string
		desc string
	}{
		{"valid ES256", sign(t, f.ec, claimsFor("jwt", now)), nil, "", ""},
		{"valid EdDSA", sign(t, f.ed, claimsFor("jwt", now)), nil, "", ""},
		{"valid without kid", sign(t, testKey{"", jose.ES256, f.ec.key}, claimsFor("jwt", now)), nil, "", ""},
		{"matching client_id", sign(t, f.ec, claimsFor("jwt", now)), url.Values{"client_id": {"jwt"}}, "", ""},
		{"forged with another key", sign(t, stranger, claimsFor("jwt", now)), nil, CodeInvalidClient, "signature is invalid"},
		{"unknown kid", sign(t, testKey{"nope", jose.ES256, f.ec.key}, claimsFor("jwt", now)), nil, CodeInvalidClient, "no key registered for the client has the client assertion's kid and can check an ES256 signature (its kid and alg headers)"},
		{"expired", sign(t, f.ec, mod(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute)) })), nil, CodeInvalidClient, "expired"},
		{"exp too far", sign(t, f.ec, mod(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(time.Hour)) })), nil, CodeInvalidClient, "client assertion expires too far in the future: exp may be at most 300 seconds from now"},
		{"no exp", sign(t, f.ec, mod(func(c *jwt.Claims) { c.Expiry = nil })), nil, CodeInvalidClient, "no exp"},
		{"nbf future", sign(t, f.ec, mod(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) })), nil, CodeInvalidClient, "not valid yet"},
		{"iat future", sign(t, f.ec, mod(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) })), nil, CodeInvalidClient, "issued in the future"},
		{"no jti", sign(t, f.ec, mod(func(c *jwt.Claims) { c.ID = "" })), nil, CodeInvalidClient, "no jti"},
		{"NUL in jti", sign(t, f.ec, mod(func(c *jwt.Claims) { c.ID = "a\x00b" })), nil, CodeInvalidClient, "NUL"},
		{"sub differs", sign(t, f.ec, mod(func(c *jwt.Claims) { c.Subject = "someone" })), nil, CodeInvalidClient, "iss and sub"},
		{"unknown client", sign(t, f.ec, claimsFor("ghost", now)), nil, CodeInvalidClient, "unknown client"},
		{"basic client using jwt", sign(t, f.ec, claimsFor(basicID, now)), nil, CodeInvalidClient, "does not authenticate this way"},
		{"client_id mismatch", sign(t, f.ec, claimsFor("jwt", now)), url.Values{"client_id": {"public"}}, CodeInvalidClient, "does not match"},
		{"alg none", unsignedJWT(claimsFor("jwt", now)), nil, CodeInvalidClient, "asymmetric"},
		{"HS256", signHMAC(t, hmacKey, claimsFor("jwt", now)), nil, CodeInvalidClient, "asymmetric"},
		{"garbage", "a.b.c", nil, CodeInvalidClient, "asymmetric"},
		{"empty", "", nil, CodeInvalidClient, "missing"},
		{"too large", strings.Repeat("a", maxAssertionSize+1), nil, CodeInvalidClient, "too large"},
		{"wrong type", sign(t, f.ec, claimsFor("jwt", now)), url.Values{"client_assertion_type": {"urn:other"}}, CodeInvalidClient, "client_assertion_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := assertionForm(tt.tok)
			for k, v := range tt.form {
				form[k] = v
			}
			c, err := f.auth.Authenticate(formRequest(form))
			if tt.code == "" {
				wantClient(t, c, err, "jwt")
				return
			}
			wantError(t, err, tt.code, tt.desc)
		})
	}
}

// TestAssertionAudience: an assertion's aud is the issuer identifier
// alone (draft-ietf-oauth-rfc7523bis), as a string or a one-element
// array. An endpoint URL is accepted in its place only from a client
// registered for it, and never an array that names anything else, this
// server's endpoints included.
func TestAssertionAudience(t *testing.T) {
	f := newFixture(t)
	legacy := &store.Client{ID: "jwt-legacy", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(f.ec), LegacyEndpointAudience: true}
	if err := f.auth.Clients.AddClient(t.Context(), legacy, nil); err != nil {
		t.Fatal(err)
	}
	const parURL = issuer + "/par"
	tests := []struct {
		name   string
		client string
		aud    any // a string, or a JSON array
		desc   string
	}{
		{"issuer", "jwt", issuer, ""},
		// FAPI 2.0 Security Profile §5.3.2.1 item 8: the issuer as a
		// string only.
		{"issuer alone in an array", "jwt", []string{issuer}, "a JSON string, not an array"},
		{"token endpoint", "jwt", tokenURL, "must be the issuer identifier " + issuer},
		{"PAR endpoint", "jwt", parURL, "must be the issuer identifier"},
		{"issuer with a trailing slash", "jwt", issuer + "/", "must be the issuer identifier"},
		{"another server", "jwt", "https://evil.example", "must be the issuer identifier"},
		{"issuer next to another server", "jwt", []string{"https://evil.example", issuer}, "a JSON string, not an array"},
		{"issuer next to the token endpoint", "jwt", []string{issuer, tokenURL}, "a JSON string, not an array"},
		{"empty array", "jwt", []string{}, "a JSON string, not an array"},
		{"no aud", "jwt", nil, "one audience: the issuer identifier"},
		{"legacy: issuer", legacy.ID, issuer, ""},
		{"legacy: issuer alone in an array", legacy.ID, []string{issuer}, ""},
		{"legacy: issuer next to another server", legacy.ID, []string{"https://evil.example", issuer}, "one audience"},
		{"legacy: token endpoint", legacy.ID, tokenURL, ""},
		{"legacy: PAR endpoint alone in an array", legacy.ID, []string{parURL}, ""},
		{"legacy: token endpoint next to another server", legacy.ID, []string{"https://evil.example", tokenURL}, "one audience"},
		{"legacy: another server", legacy.ID, "https://evil.example/token", "must be the issuer identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := f.clock.Now()
			claims := map[string]any{"iss": tt.client, "sub": tt.client, "jti": rand.Text(),
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
			if tt.aud != nil {
				claims["aud"] = tt.aud
			}
			c, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.ec, claims))))
			if tt.desc == "" {
				wantClient(t, c, err, tt.client)
				return
			}
			wantError(t, err, CodeInvalidClient, tt.desc)
		})
	}
}

func unsignedJWT(c jwt.Claims) string {
	payload, _ := json.Marshal(c)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func signHMAC(t *testing.T, k testKey, c jwt.Claims) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, (&jose.SignerOptions{}).WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAssertionReplay(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, f.ec, claimsFor("jwt", t0))
	c, err := f.auth.Authenticate(formRequest(assertionForm(tok)))
	wantClient(t, c, err, "jwt")
	_, err = f.auth.Authenticate(formRequest(assertionForm(tok)))
	wantError(t, err, CodeInvalidClient, "already used")

	// A forged assertion reusing a fresh jti must not burn it.
	claims := claimsFor("jwt", t0)
	_, err = f.auth.Authenticate(formRequest(assertionForm(sign(t, newECKey(t, "ec1"), claims))))
	wantError(t, err, CodeInvalidClient, "signature")
	c, err = f.auth.Authenticate(formRequest(assertionForm(sign(t, f.ec, claims))))
	wantClient(t, c, err, "jwt")
}

// TestAssertionCheckSpendsNothing: Check takes an assertion without
// spending its jti, as often as it is asked; Record spends it once.
func TestAssertionCheckSpendsNothing(t *testing.T) {
	f := newFixture(t)
	tok := sign(t, f.ec, claimsFor("jwt", t0))
	for range 2 {
		ca, err := f.auth.Check(formRequest(assertionForm(tok)))
		wantClient(t, ca.Client, err, "jwt")
	}
	ca, err := f.auth.Check(formRequest(assertionForm(tok)))
	wantClient(t, ca.Client, err, "jwt")
	if err := f.auth.Record(context.Background(), ca); err != nil {
		t.Fatalf("first Record: %v", err)
	}
	wantError(t, f.auth.Record(context.Background(), ca), CodeInvalidClient, "already used")
	_, err = f.auth.Authenticate(formRequest(assertionForm(tok)))
	wantError(t, err, CodeInvalidClient, "already used")
}

// TestAssertionReplayWindow: OIDC Core §9 — an assertion is used once
// for as long as it is accepted, up to the last moment its exp and the
// leeway allow, when the replay cache lets go of its jti.
func TestAssertionReplayWindow(t *testing.T) {
	last := t0.Add(time.Minute + DefaultLeeway) // exp + leeway
	tests := []struct {
		name string
		at   time.Time
		want string
	}{
		{"a second before exp+leeway", last.Add(-time.Second), "already used"},
		{"at exp+leeway", last, "expired"},
		{"after exp+leeway", last.Add(time.Second), "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := sign(t, f.ec, claimsFor("jwt", t0))
			c, err := f.auth.Authenticate(formRequest(assertionForm(tok)))
			wantClient(t, c, err, "jwt")
			f.clock.Add(tt.at.Sub(t0))
			_, err = f.auth.Authenticate(formRequest(assertionForm(tok)))
			wantError(t, err, CodeInvalidClient, tt.want)
		})
	}
}

func TestAssertionClockSkew(t *testing.T) {
	f := newFixture(t)
	// exp 20 s in the past is within the 30 s leeway; 40 s is not.
	c := claimsFor("jwt", t0)
	c.Expiry = jwt.NewNumericDate(t0.Add(-20 * time.Second))
	got, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.ec, c))))
	wantClient(t, got, err, "jwt")
	c = claimsFor("jwt", t0)
	c.Expiry = jwt.NewNumericDate(t0.Add(-40 * time.Second))
	_, err = f.auth.Authenticate(formRequest(assertionForm(sign(t, f.ec, c))))
	wantError(t, err, CodeInvalidClient, "expired")
}

func TestJWKSURIFetchCacheAndRotation(t *testing.T) {
	f := newFixture(t)
	auth := func(k testKey) error {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, k, claimsFor("jwt-uri", f.clock.Now())))))
		return err
	}
	if err := auth(f.rsa); err != nil {
		t.Fatal(err)
	}
	if err := auth(f.rsa); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 (cached)", n)
	}
	// The client rotates to a new key: the unknown kid triggers a refetch.
	rs256, _ := rsa.GenerateKey(rand.Reader, 2048)
	next := testKey{"rsa2", jose.RS256, rs256}
	f.mu.Lock()
	f.served = jwks(f.rsa, next)
	f.mu.Unlock()
	f.clock.Add(DefaultJWKSRefetch)
	if err := auth(next); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// Unknown kids do not make every request a fetch.
	for range 3 {
		if err := auth(newECKey(t, "made-up")); err == nil {
			t.Fatal("unknown key accepted")
		}
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (refetch is rate limited)", n)
	}
	// The key the server does not list is refused whatever it claims.
	if err := auth(f.ec); err == nil {
		t.Fatal("key of another client accepted")
	}
}

func TestClientSecretBasic(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		user, pass string
		form       url.Values
		code, desc string
	}{
		{"valid", basicID, basicSecret, nil, "", ""},
		{"valid with client_id", basicID, basicSecret, url.Values{"client_id": {basicID}}, "", ""},
		{"wrong secret", basicID, basicSecret + "x", nil, CodeInvalidClient, "secret is wrong"},
		{"empty secret", basicID, "", nil, CodeInvalidClient, "secret is wrong"},
		{"unknown client", "nobody", basicSecret, nil, CodeInvalidClient, "unknown client"},
		{"jwt client with secret", "jwt", basicSecret, nil, CodeInvalidClient, "does not authenticate this way"},
		{"client_id mismatch", basicID, basicSecret, url.Values{"client_id": {"public"}}, CodeInvalidClient, "does not match"},
		{"two methods", basicID, basicSecret, url.Values{"client_assertion": {"x"}}, CodeInvalidRequest,
			"more than one client authentication method used (client_secret_basic, private_key_jwt): send only the one the client is registered for"},
		{"three methods", basicID, basicSecret, url.Values{"client_assertion_type": {"x"}, "client_secret": {"s"}}, CodeInvalidRequest,
			"(client_secret_basic, private_key_jwt, client_secret_post)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}}
			for k, v := range tt.form {
				form[k] = v
			}
			c, err := f.auth.Authenticate(basicRequest(tt.user, tt.pass, form))
			if tt.code == "" {
				wantClient(t, c, err, basicID)
				return
			}
			wantError(t, err, tt.code, tt.desc)
		})
	}
	// Basic without form-urlencoding of the ID: "bank client:1" has a
	// colon, so the raw form splits at the wrong place.
	r := formRequest(url.Values{})
	r.SetBasicAuth(basicID, basicSecret)
	if _, err := f.auth.Authenticate(r); err == nil {
		t.Fatal("un-encoded Basic credentials with a colon accepted")
	}
}

// TestJWKSURIDown: while a client's jwks_uri fails, its keys last
// fetched are used, and the jwks_uri is tried again at most every
// JWKSRefetch, not on every request: each try can take the whole HTTP
// timeout, which every token request of the client would wait out.
// TestJWKSURINotFetchedForBadClaims: an assertion whose claims already
// fail (expired, for another audience, without jti, of another issuer
// than its sub) is refused before its signature is checked, so one with
// an unknown kid makes the node fetch no jwks_uri: knowing a client_id
// does not let anyone make it fetch.
func TestJWKSURINotFetchedForBadClaims(t *testing.T) {
	f := newFixture(t)
	stranger := newECKey(t, "unknown-kid")
	now := f.clock.Now()
	expired := claimsFor("jwt-uri", now.Add(-time.Hour))
	otherAud := claimsFor("jwt-uri", now)
	otherAud.Audience = jwt.Audience{"https://elsewhere.example"}
	noJTI := claimsFor("jwt-uri", now)
	noJTI.ID = ""
	otherSub := claimsFor("jwt-uri", now)
	otherSub.Subject = "someone"
	for _, c := range []jwt.Claims{expired, otherAud, noJTI, otherSub} {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, stranger, c))))
		if err == nil || AsError(err).Code != CodeInvalidClient {
			t.Fatalf("err = %v, want invalid_client", err)
		}
	}
	if n := f.fetches.Load(); n != 0 {
		t.Fatalf("fetches = %d, want 0: the claims alone refuse these", n)
	}
	// The same key with good claims is checked against the jwks_uri.
	if _, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, stranger, claimsFor("jwt-uri", now))))); err == nil {
		t.Fatal("unknown key accepted")
	}
	if n := f.fetches.Load(); n == 0 {
		t.Fatal("a well-formed assertion was not checked against the jwks_uri")
	}
}

func TestJWKSURIDown(t *testing.T) {
	f := newFixture(t)
	auth := func() error {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor("jwt-uri", f.clock.Now())))))
		return err
	}
	if err := auth(); err != nil {
		t.Fatal(err)
	}
	f.down.Store(true)
	f.clock.Add(DefaultJWKSCacheTTL)
	for range 3 {
		if err := auth(); err != nil {
			t.Fatalf("stale keys not used while the jwks_uri is down: %v", err)
		}
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (one failed try, then the stale keys)", n)
	}
	f.clock.Add(DefaultJWKSRefetch)
	if err := auth(); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3 (tried again after JWKSRefetch)", n)
	}
	// Back up: the next try fetches the keys and they are cached again.
	f.down.Store(false)
	f.clock.Add(DefaultJWKSRefetch)
	for range 2 {
		if err := auth(); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.fetches.Load(); n != 4 {
		t.Fatalf("fetches = %d, want 4", n)
	}
}

// TestJWKSURINeverFetched: a jwks_uri that fails before its keys were
// ever fetched is tried again at most every JWKSRefetch too; meanwhile
// the client's assertions are refused without a request to it.
func TestJWKSURINeverFetched(t *testing.T) {
	f := newFixture(t)
	auth := func() error {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor("jwt-uri", f.clock.Now())))))
		return err
	}
	f.down.Store(true)
	for range 3 {
		wantError(t, auth(), CodeInvalidClient, "could not fetch")
	}
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1 (tried once, then refused without a try)", n)
	}
	f.down.Store(false)
	f.clock.Add(DefaultJWKSRefetch)
	if err := auth(); err != nil {
		t.Fatal(err)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
}

func TestOtherMethods(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		form       url.Values
		header     string
		code, desc string
		want       string
	}{
		{"public client", url.Values{"client_id": {"public"}}, "", "", "", "public"},
		{"confidential without credentials", url.Values{"client_id": {"jwt"}}, "", CodeInvalidClient, "does not authenticate this way", ""},
		{"nothing", url.Values{}, "", CodeInvalidClient, "required", ""},
		{"client_secret_post", url.Values{"client_id": {basicID}, "client_secret": {basicSecret}}, "", CodeInvalidClient, "client_secret_post is not supported: send the client ID and secret in the Authorization header (client_secret_basic", ""},
		{"bearer header", url.Values{"client_id": {"public"}}, "Bearer abc", CodeInvalidClient, "Authorization scheme", ""},
		// A Basic header that does not decode is malformed Basic
		// credentials, not an unsupported scheme.
		{"basic not base64", url.Values{}, "Basic !!!", CodeInvalidClient, "Basic credentials are not", ""},
		{"basic without colon", url.Values{}, "basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")), CodeInvalidClient, "Basic credentials are not", ""},
		{"repeated client_id", url.Values{"client_id": {"public", "jwt"}}, "", CodeInvalidRequest, "repeated", ""},
		// RFC 6749 §3.1: a parameter sent without a value is treated as
		// if it were omitted, as some libraries send an empty
		// client_secret for a public client.
		{"public client, empty client_secret", url.Values{"client_id": {"public"}, "client_secret": {""}}, "", "", "", "public"},
		{"public client, empty assertion parameters", url.Values{"client_id": {"public"}, "client_assertion": {""}, "client_assertion_type": {""}}, "", "", "", "public"},
		{"basic, empty client_secret", url.Values{"client_secret": {""}},
			"Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basicID)+":"+url.QueryEscape(basicSecret))), "", "", basicID},
		{"confidential, empty client_secret", url.Values{"client_id": {"jwt"}, "client_secret": {""}}, "", CodeInvalidClient, "does not authenticate this way", ""},
		{"empty client_id", url.Values{"client_id": {""}}, "", CodeInvalidClient, "required", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := formRequest(tt.form)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			c, err := f.auth.Authenticate(r)
			if tt.code == "" {
				wantClient(t, c, err, tt.want)
				return
			}
			wantError(t, err, tt.code, tt.desc)
		})
	}
	// Credentials in the query string are not read (RFC 6749 §2.3.1).
	r := httptest.NewRequest(http.MethodPost, tokenURL+"?client_id=public", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err := f.auth.Authenticate(r)
	wantError(t, err, CodeInvalidClient, "required")
}

// FuzzClientAssertion feeds arbitrary assertions to the parser and the
// signature check. The client's key signed none of the seeds, so nothing
// may ever verify.
func FuzzClientAssertion(f *testing.F) {
	signer := newECKey(f, "k")
	client := newECKey(f, "k")
	a := &ClientAuthenticator{Audiences: []string{issuer}, Now: func() time.Time { return t0 }}
	c := &store.Client{ID: "jwt", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(client)}
	f.Add(sign(f, signer, claimsFor("jwt", t0)))
	f.Add(unsignedJWT(claimsFor("jwt", t0)))
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.")
	f.Add("....")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parseAssertion(raw)
		if err != nil {
			if AsError(err).Code != CodeInvalidClient {
				t.Fatalf("parse error %v is not invalid_client", err)
			}
			return
		}
		_, _ = a.checkClaims(c, &p.claims)
		if _, err := a.verifySignature(context.Background(), c, p); err == nil {
			t.Fatalf("verified an assertion the client never signed: %q", raw)
		}
	})
}

// TestInlineJWKSChange: registered key sets are parsed once and cached
// by content, so a client whose keys are replaced is held to the new set
// on the very next request: the retired key is refused at once.
func TestInlineJWKSChange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := func(k testKey) error {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, k, claimsFor("jwt", f.clock.Now())))))
		return err
	}
	for range 2 { // the second is answered from the parsed cache
		if err := auth(f.ec); err != nil {
			t.Fatal(err)
		}
	}
	next := newECKey(t, "ec2")
	if err := f.auth.Clients.PutClient(ctx, &store.Client{ID: "jwt", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(next)}); err != nil {
		t.Fatal(err)
	}
	if err := auth(f.ec); err == nil {
		t.Error("retired key accepted after the client's keys changed")
	}
	if err := auth(next); err != nil {
		t.Errorf("new key refused: %v", err)
	}
}

// forgetful is a replay cache that began remembering at since, like one
// in a process's memory after a restart.
type forgetful struct {
	store.ReplayCache
	since time.Time
}

func (f forgetful) RemembersSince() time.Time { return f.since }

func TestAssertionBeforeReplayHorizon(t *testing.T) {
	f := newFixture(t)
	restart := t0.Add(-10 * time.Second)
	f.auth.Replay = forgetful{f.auth.Replay, restart}
	tests := []struct {
		name string
		mod  func(*jwt.Claims)
		ok   bool
	}{
		{"issued after the restart", func(c *jwt.Claims) {}, true},
		{"issued in the restart's second", func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(restart) }, true},
		{"issued before the restart", func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(restart.Add(-time.Second)) }, false},
		// Without iat, exp says when it could have been made: at the
		// earliest exp − 5 min − 30 s.
		{"no iat, exp too late to predate", func(c *jwt.Claims) {
			c.IssuedAt = nil
			c.Expiry = jwt.NewNumericDate(restart.Add(5*time.Minute + 30*time.Second))
		}, true},
		{"no iat, exp early enough to predate", func(c *jwt.Claims) {
			c.IssuedAt = nil
			c.Expiry = jwt.NewNumericDate(restart.Add(5*time.Minute + 29*time.Second))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claimsFor("jwt", t0)
			tt.mod(&c)
			got, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.ec, c))))
			if tt.ok {
				wantClient(t, got, err, "jwt")
				return
			}
			wantError(t, err, CodeInvalidClient, "before this server restarted")
		})
	}
}

// signTyped is sign with the typ header set to typ, or left out when
// typ is empty.
func signTyped(t testing.TB, k testKey, typ string, claims any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", k.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAssertionTyp: a JWT that says it is something else, a DPoP proof
// or a logout token, is not a client assertion
// (draft-ietf-oauth-rfc7523bis §4); no typ, "JWT" and
// "client-authentication+jwt" are.
func TestAssertionTyp(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		typ string
		ok  bool
	}{
		{"", true},
		{"JWT", true},
		{"jwt", true},
		{"client-authentication+jwt", true},
		{"application/client-authentication+jwt", true},
		{"dpop+jwt", false},
		{"logout+jwt", false},
		{"secevent+jwt", false},
		{"at+jwt", false},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			c, err := f.auth.Authenticate(formRequest(assertionForm(signTyped(t, f.ec, tt.typ, claimsFor("jwt", f.clock.Now())))))
			if tt.ok {
				wantClient(t, c, err, "jwt")
				return
			}
			wantError(t, err, CodeInvalidClient, "typ")
		})
	}
}

// TestJWKSURIRedirectRefused: a jwks_uri that redirects, here to
// another server serving the client's keys, is not followed: the client
// is refused as invalid_client saying so, and the log names the
// redirect.
func TestJWKSURIRedirectRefused(t *testing.T) {
	f := newFixture(t)
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks(f.rsa))
	}))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.RedirectHandler(other.URL+"/jwks?key=s3cret", http.StatusFound))
	t.Cleanup(redirect.Close)
	if err := f.auth.Clients.AddClient(context.Background(), &store.Client{
		ID: "jwt-redirect", AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: redirect.URL + "/jwks?token=s3cret",
	}, nil); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	f.auth.Log = slog.New(slog.NewTextHandler(&logged, nil))
	_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor("jwt-redirect", f.clock.Now())))))
	wantError(t, err, CodeInvalidClient, "redirect, which is not followed")
	if strings.Contains(AsError(err).Description, other.URL) {
		t.Errorf("description %q names the redirect target", AsError(err).Description)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target fetched %d times, want 0", n)
	}
	// The jwks_uri and the redirect's target are logged without their
	// query, where a client may keep a secret.
	if !strings.Contains(logged.String(), "redirect refused") || !strings.Contains(logged.String(), other.URL+"/jwks?redacted") ||
		!strings.Contains(logged.String(), redirect.URL+"/jwks?redacted") || strings.Contains(logged.String(), "s3cret") {
		t.Errorf("log = %q, want the refused redirect and its target, without their query", logged.String())
	}
}

// TestJWKSURIOneFetchAtATime: requests that need a client's jwks_uri
// while it is being fetched wait for that fetch and share its keys: a
// burst of assertions, which anyone knowing the client_id can send,
// makes one request to the client's server, not one each.
func TestJWKSURIOneFetchAtATime(t *testing.T) {
	f := newFixture(t)
	var fetches atomic.Int32
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks(f.rsa))
	}))
	t.Cleanup(slow.Close)
	if err := f.auth.Clients.AddClient(context.Background(), &store.Client{
		ID: "jwt-slow", AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: slow.URL + "/jwks",
	}, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		tok := sign(t, f.rsa, claimsFor("jwt-slow", f.clock.Now()))
		go func() {
			_, err := f.auth.Authenticate(formRequest(assertionForm(tok)))
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // every request has asked for the keys
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := fetches.Load(); got != 1 {
		t.Fatalf("jwks_uri fetched %d times for %d requests at once, want 1", got, n)
	}
}

// TestAssertionWithoutKidTriesFewKeys: an assertion without a kid is
// checked only against the client's keys of its algorithm's type and
// curve, and refused, saying why, when more than MaxKeysWithoutKid of
// them remain: anyone knowing a client_id can send one, and each key
// tried is a signature check.
func TestAssertionWithoutKidTriesFewKeys(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var many []testKey
	for i := range MaxKeysWithoutKid + 1 {
		many = append(many, newECKey(t, fmt.Sprintf("ec%d", i)))
	}
	// RSA and Ed25519 keys, and EC keys on another curve, are not tried
	// for an ES256 assertion.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mixed := []testKey{many[0], f.rsa, f.ed, {"p384", "", p384}}
	for range MaxKeysWithoutKid {
		_, edk, _ := ed25519.GenerateKey(rand.Reader)
		mixed = append(mixed, testKey{"", "", edk})
	}
	for _, c := range []*store.Client{
		{ID: "jwt-many", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(many...)},
		{ID: "jwt-mixed", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks(mixed...)},
	} {
		if err := f.auth.Clients.AddClient(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(k testKey, client string) (*store.Client, error) {
		return f.auth.Authenticate(formRequest(assertionForm(sign(t, k, claimsFor(client, f.clock.Now())))))
	}
	last := many[len(many)-1]
	_, err = auth(testKey{"", jose.ES256, last.key}, "jwt-many")
	wantError(t, err, CodeInvalidClient, fmt.Sprintf("no kid, and %d of the client's keys could have made it", len(many)))
	c, err := auth(last, "jwt-many")
	wantClient(t, c, err, "jwt-many")
	c, err = auth(testKey{"", jose.ES256, many[0].key}, "jwt-mixed")
	wantClient(t, c, err, "jwt-mixed")
	_, err = auth(testKey{"", jose.ES256, newECKey(t, "").key}, "jwt-mixed")
	wantError(t, err, CodeInvalidClient, "signature is invalid")
}

// TestJWKSCacheBounded: the keys fetched from jwks_uri values are kept
// for at most maxFetchedJWKS of them, the longest unused dropped first,
// so the cache does not keep growing with the jwks_uri of every client
// registered and removed while the node runs.
func TestJWKSCacheBounded(t *testing.T) {
	f := newFixture(t)
	a := f.auth
	for i := range maxFetchedJWKS + 10 {
		f.clock.Add(time.Millisecond)
		a.storeJWKS(fmt.Sprintf("https://rp%d.example/jwks", i), &fetchedJWKS{fetchedAt: f.clock.Now()})
		if i == 0 {
			continue
		}
		// The first is used all along.
		f.clock.Add(time.Millisecond)
		if _, err := a.fetchJWKS(context.Background(), "https://rp0.example/jwks", false); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.jwks) != maxFetchedJWKS {
		t.Errorf("%d jwks_uri values cached, want %d", len(a.jwks), maxFetchedJWKS)
	}
	for _, uri := range []string{"https://rp0.example/jwks", fmt.Sprintf("https://rp%d.example/jwks", maxFetchedJWKS+9)} {
		if a.jwks[uri] == nil {
			t.Errorf("%s dropped", uri)
		}
	}
	if a.jwks["https://rp1.example/jwks"] != nil {
		t.Error("the longest unused jwks_uri kept")
	}
}

// TestJWKSURIRotationWithoutKid: a client with one key need not name it
// (OpenID Connect Core §10.1.1), so when it replaces that key its
// assertions carry no kid either; the keys the server holds do not
// verify them, and that too makes the jwks_uri fetched again (at the same
// bounded rate as an unknown kid, which anyone can send at will), so the
// client is not refused until the cache expires.
func TestJWKSURIRotationWithoutKid(t *testing.T) {
	f := newFixture(t)
	auth := func(k testKey) error {
		_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, k, claimsFor("jwt-uri", f.clock.Now())))))
		return err
	}
	old := testKey{"", f.rsa.alg, f.rsa.key}
	f.mu.Lock()
	f.served = jwks(old)
	f.mu.Unlock()
	if err := auth(old); err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	next := testKey{"", jose.PS256, other}
	f.mu.Lock()
	f.served = jwks(next)
	f.mu.Unlock()
	f.clock.Add(DefaultJWKSRefetch)
	if err := auth(next); err != nil {
		t.Fatalf("assertion with the client's new key, no kid: %v", err)
	}
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (refetched for the new key)", n)
	}
	// A bad signature right after is refused without another fetch: the
	// refetch is rate limited.
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, auth(testKey{"", jose.PS256, stranger}), CodeInvalidClient, "signature is invalid")
	if n := f.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d after a bad signature within JWKSRefetch, want 2", n)
	}
}

// TestWrongMethodNotTold: a client that authenticates another way than
// it is registered for is refused with invalid_client, and the answer
// does not say which method it is registered for (RFC 6749 §5.2): that
// is only in the error's Detail, for the log and the audit trail.
func TestWrongMethodNotTold(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, registered string
		r                *http.Request
	}{
		{"public form for a private_key_jwt client", store.AuthPrivateKeyJWT, formRequest(url.Values{"client_id": {"jwt"}})},
		{"secret for a private_key_jwt client", store.AuthPrivateKeyJWT, basicRequest("jwt", basicSecret, nil)},
		{"assertion for a client_secret_basic client", store.AuthClientSecretBasic,
			formRequest(assertionForm(sign(t, f.ec, claimsFor(basicID, f.clock.Now()))))},
		{"public form for a client_secret_basic client", store.AuthClientSecretBasic, formRequest(url.Values{"client_id": {basicID}})},
	} {
		_, err := f.auth.Authenticate(tc.r)
		e := AsError(err)
		rec := httptest.NewRecorder()
		WriteError(rec, err)
		body := rec.Body.String()
		if e.Code != CodeInvalidClient || rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d %s, want 401 invalid_client", tc.name, rec.Code, body)
		}
		for _, m := range []string{store.AuthPrivateKeyJWT, store.AuthClientSecretBasic, store.AuthNone} {
			if strings.Contains(body, m) {
				t.Errorf("%s: the answer %s names the method %s", tc.name, body, m)
			}
		}
		if !strings.Contains(e.Detail, tc.registered) {
			t.Errorf("%s: Detail = %q, want the registered method %s for the log", tc.name, e.Detail, tc.registered)
		}
	}
}

// TestJWKSURIContentType: a jwks_uri answer is taken only as
// application/json or application/jwk-set+json (RFC 7517 §8.5.1), with
// parameters such as charset; anything else, an error or login page
// served with 200 say, is refused, saying so.
func TestJWKSURIContentType(t *testing.T) {
	f := newFixture(t)
	for i, tc := range []struct {
		contentType string
		ok          bool
	}{
		{"application/json", true},
		{"application/jwk-set+json; charset=utf-8", true},
		{"Application/JSON;charset=UTF-8", true},
		{"text/html; charset=utf-8", false},
		{"text/plain", false},
		{"", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = []string{tc.contentType}
			_, _ = w.Write(jwks(f.rsa))
		}))
		t.Cleanup(srv.Close)
		id := fmt.Sprintf("jwt-ct-%d", i)
		if err := f.auth.Clients.AddClient(context.Background(), &store.Client{
			ID: id, AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks",
		}, nil); err != nil {
			t.Fatal(err)
		}
		c, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor(id, f.clock.Now())))))
		if tc.ok {
			wantClient(t, c, err, id)
			continue
		}
		wantError(t, err, CodeInvalidClient, "Content-Type other than application/json or application/jwk-set+json")
	}
}

// TestJWKSURIAnswerBounded: what a jwks_uri answers is read only up to
// a bound, its header as its body: a server that sends a header of a
// MiB, or keys followed by a GiB, has its client refused, the node
// having read no more than the bound of either.
func TestJWKSURIAnswerBounded(t *testing.T) {
	f := newFixture(t)
	// The client the node passes: a timeout, and no transport of its own.
	f.auth.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	big := strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter)
	}{
		{"a header of a MiB", func(w http.ResponseWriter) {
			w.Header().Set("X-Padding", big)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwks(f.rsa))
		}},
		{"a body of a GiB", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwks(f.rsa)[:1])
			for range 1 << 10 {
				if _, err := io.WriteString(w, big); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.serve(w) }))
			t.Cleanup(srv.Close)
			id := "jwt-bounded-" + strings.ReplaceAll(tc.name, " ", "-")
			if err := f.auth.Clients.AddClient(context.Background(), &store.Client{
				ID: id, AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks",
			}, nil); err != nil {
				t.Fatal(err)
			}
			_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor(id, f.clock.Now())))))
			wantError(t, err, CodeInvalidClient, "could not fetch the client's jwks_uri")
		})
	}
}

// TestJWKSURIDripBounded: a jwks_uri that sends its header at once and
// then its body a byte at a time, never ending, is given up after the
// fetch's 5 s in all, not 5 s per read.
func TestJWKSURIDripBounded(t *testing.T) {
	f := newFixture(t)
	f.auth.HTTPClient = nil // the default: 5 s for the whole fetch
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	if err := f.auth.Clients.AddClient(context.Background(), &store.Client{
		ID: "jwt-drip", AuthMethod: store.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks",
	}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := f.auth.Authenticate(formRequest(assertionForm(sign(t, f.rsa, claimsFor("jwt-drip", f.clock.Now())))))
	wantError(t, err, CodeInvalidClient, "could not fetch the client's jwks_uri")
	if took := time.Since(start); took < 4*time.Second || took > 10*time.Second {
		t.Errorf("a dripping jwks_uri was given up after %v, want about 5 s", took)
	}
}
