package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// rs256RP registers a client for RS256 ID tokens (with refresh tokens,
// and the back-channel logout URI logout, if not empty) and returns its
// relying party, which accepts its ID tokens signed with algs alone
// (go-oidc's SupportedSigningAlgs).
func rs256RP(t *testing.T, n *node, id, logout string, algs ...string) *loadgen.RP {
	t.Helper()
	rp := n.addRPWith(t, id, id+".example", func(c *store.Client) {
		c.IDTokenAlg, c.RefreshTokens, c.BackchannelLogoutURI = store.IDTokenRS256, true, logout
	})
	return withIDTokenAlgs(t, rp, algs...)
}

// withIDTokenAlgs is a copy of rp that accepts ID tokens signed with
// algs alone.
func withIDTokenAlgs(t *testing.T, rp *loadgen.RP, algs ...string) *loadgen.RP {
	t.Helper()
	c := *rp
	c.IDTokenAlgs = algs
	if err := c.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &c
}

// jwsAlg is the alg header of the compact JWS raw.
func jwsAlg(t *testing.T, raw string) (alg, kid string) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, keys.Algorithms)
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return tok.Headers[0].Algorithm, tok.Headers[0].KeyID
}

// TestLocalhostNodeMakesUpItsKeys: a node on localhost without key
// files makes up its ES256 key and an RSA key of keys.RSABits at start,
// and publishes both (ADR 32).
func TestLocalhostNodeMakesUpItsKeys(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
		"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db")}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Signer.Alg() != keys.Algorithm || a.RSASigner == nil || a.RSASigner.Alg() != keys.RS256 {
		t.Fatalf("keys made up: %v and %v, want ES256 and RS256", a.Signer.Alg(), a.RSASigner)
	}
	if bits := a.RSASigner.PublicJWK().Key.(*rsa.PublicKey).N.BitLen(); bits != keys.RSABits {
		t.Errorf("RSA key of %d bits, want %d", bits, keys.RSABits)
	}
	published, err := a.Store.ListPublicKeys(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{a.Signer.KID(), a.RSASigner.KID()} {
		if !slices.ContainsFunc(published, func(k *store.PublicKey) bool { return k.KID == kid }) {
			t.Errorf("key %s is not published", kid)
		}
	}
}

// TestRS256ClientEndToEnd: a node with an RSA key lists RS256 beside ES256 in discovery and its RSA key in
// the JWKS; a client registered with id_token_signed_response_alg RS256
// logs in with go-oidc accepting RS256 alone, gets RS256 ID tokens at
// both grants, and logs out with one as id_token_hint; a relying party
// that accepts ES256 alone refuses its ID token. A client registered
// for nothing gets ES256, as before.
func TestRS256ClientEndToEnd(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	if n.app.RSASigner == nil {
		t.Fatal("the node has no RSA key")
	}
	if got := discoveryOf(t, n).IDTokenSigningAlgValuesSupported; !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("id_token_signing_alg_values_supported = %v, want [ES256 RS256]", got)
	}
	set := jwksOf(t, n)
	rsaKeys := set.Key(n.app.RSASigner.KID())
	if len(rsaKeys) != 1 || rsaKeys[0].Algorithm != "RS256" {
		t.Fatalf("JWKS has no RS256 key %s: %+v", n.app.RSASigner.KID(), set.Keys)
	}

	legacy := rs256RP(t, n, "legacy", "", "RS256")
	device := n.enrol(t, false)
	jar, _ := cookiejar.New(nil)
	in, err := legacy.Login(ctx, device, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatalf("login of an RS256 client, verified with RS256 alone: %v", err)
	}
	if alg, kid := jwsAlg(t, in.RawIDToken); alg != "RS256" || kid != n.app.RSASigner.KID() {
		t.Fatalf("ID token at the code grant: alg %s, kid %s; want RS256 by %s", alg, kid, n.app.RSASigner.KID())
	}
	refreshed, err := legacy.Refresh(ctx, in.Token.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := refreshed.Extra("id_token").(string)
	if alg, _ := jwsAlg(t, raw); alg != "RS256" {
		t.Fatalf("ID token at the refresh grant: alg %s, want RS256", alg)
	}
	if idt, err := legacy.VerifyIDToken(ctx, raw); err != nil || idt.Subject != in.IDToken.Subject {
		t.Fatalf("refreshed ID token: %v, %v; want the sub of the first", idt, err)
	}

	// A relying party that accepts ES256 alone, as it would if Varde
	// signed every ID token ES256, refuses the client's.
	strict := withIDTokenAlgs(t, legacy, "ES256")
	if _, err := strict.Login(ctx, device, loadgen.LoginOptions{}); err == nil || !strings.Contains(err.Error(), "id token") {
		t.Fatalf("an ES256-only relying party took an RS256 ID token: %v", err)
	}

	// RP-initiated logout with an RS256 ID token as id_token_hint.
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(n.issuer + "/logout?" + url.Values{"id_token_hint": {in.RawIDToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout with an RS256 id_token_hint: %d", res.StatusCode)
	}
	if after, err := legacy.Login(ctx, device, loadgen.LoginOptions{Jar: jar}); err != nil || after.SSO {
		t.Errorf("login after logout: sso %v, %v; want a new login", after != nil && after.SSO, err)
	}

	// The default is unchanged: ES256, verified with ES256 alone.
	bank := withIDTokenAlgs(t, n.addRP(t, "bank", "bank.example"), "ES256")
	at, err := bank.Login(ctx, device, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if alg, kid := jwsAlg(t, at.RawIDToken); alg != "ES256" || kid != n.app.Signer.KID() {
		t.Fatalf("ID token of a client registered for nothing: alg %s, kid %s; want ES256 by %s", alg, kid, n.app.Signer.KID())
	}
}

// jwksOf fetches the node's JWKS and checks that every key in it has
// kid, alg and use sig.
func jwksOf(t *testing.T, n *node) jose.JSONWebKeySet {
	t.Helper()
	res, err := n.http.Get(n.issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KeyID == "" || k.Use != "sig" || (k.Algorithm != "ES256" && k.Algorithm != "RS256") {
			t.Errorf("JWK without kid, alg or use sig: kid %q alg %q use %q", k.KeyID, k.Algorithm, k.Use)
		}
	}
	return set
}

// TestRS256LogoutToken: the logout token sent to a client registered for
// RS256 is signed RS256 (Back-Channel Logout 1.0 §2.6: the relying
// party validates it as it validates ID tokens), and verifies with the
// node's JWKS.
func TestRS256LogoutToken(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	endpoint, tokens := logoutEndpoint(t)
	legacy := rs256RP(t, n, "legacy", endpoint, "RS256")
	jar, _ := cookiejar.New(nil)
	in, err := legacy.Login(ctx, n.enrol(t, false), loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&http.Client{Jar: jar}).Get(n.issuer + "/logout?" + url.Values{"id_token_hint": {in.RawIDToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var raw string
	select {
	case raw = <-tokens:
	case <-time.After(15 * time.Second):
		t.Fatal("no logout token within 15 s")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("logout token is not RS256: %v", err)
	}
	set := jwksOf(t, n)
	key := set.Key(tok.Headers[0].KeyID)
	if len(key) != 1 || key[0].Algorithm != "RS256" {
		t.Fatalf("logout token's kid %s is no RS256 key of the JWKS", tok.Headers[0].KeyID)
	}
	var claims oidc.LogoutClaims
	if err := tok.Claims(key[0].Key, &claims); err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	if claims.Audience != "legacy" || claims.Subject != in.IDToken.Subject || claims.SessionID != in.Claims["sid"] {
		t.Errorf("logout token %+v; want aud legacy, sub %s, sid %v", claims, in.IDToken.Subject, in.Claims["sid"])
	}
}

// TestRS256ClientWhileRunning: of two nodes over one PostgreSQL
// database, one with an RSA key and one without, both ready, a client
// switched to RS256 while both run (varde clients remove, then add
// --id-token-alg RS256, through a store of its own) is found by the one
// without at its next housekeeping round, before any request for it:
// its /readyz answers 503 naming the client and the setting that
// fixes it, it logs that once, and /healthz stays 200. It refuses the
// client's pushed request with temporarily_unavailable, counted in
// varde_oidc_errors_total, while the other node logs the client in
// with an RS256 ID token. Once the client is switched back, the node is
// ready again.
func TestRS256ClientWhileRunning(t *testing.T) {
	ctx := context.Background()
	sc, keyed, keyless, logs := keyedAndKeyless(t, nil)
	rp := keyed.addRP(t, "legacy", "legacy.example")
	for _, n := range []*node{keyed, keyless} {
		waitReady(t, n)
	}

	cli, err := app.OpenStore(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	switchTo := func(alg string) { t.Helper(); switchIDTokenAlg(t, cli, "legacy", alg) }
	switchTo(store.IDTokenRS256)
	keyless.app.Housekeep(ctx)
	for range 2 {
		status, body := get(t, keyless, "/readyz")
		if status != http.StatusServiceUnavailable || !strings.Contains(body, `"legacy"`) || !strings.Contains(body, "keys.rsa_signing_key_file") {
			t.Fatalf("readyz of the node without an RSA key, once a client wants RS256: %d %q; want 503 naming the client and keys.rsa_signing_key_file",
				status, body)
		}
	}
	if status, _ := get(t, keyless, "/healthz"); status != http.StatusOK {
		t.Errorf("healthz of the node without an RSA key: %d, want 200", status)
	}
	if status, body := get(t, keyed, "/readyz"); status != http.StatusOK {
		t.Errorf("readyz of the node with an RSA key: %d %q, want 200", status, body)
	}

	parRefused(t, keyless, rp)
	if _, body := get(t, keyless, "/metrics"); !strings.Contains(body, `varde_oidc_errors_total{endpoint="par",error="temporarily_unavailable"} 1`) {
		t.Error("the refused PAR is not counted in varde_oidc_errors_total")
	}
	if n := strings.Count(logs.String(), "wants its ID tokens signed RS256"); n != 1 {
		t.Errorf("the client that wants RS256 logged %d times, want once:\n%s", n, logs.String())
	}

	in, err := withIDTokenAlgs(t, rp, "RS256").Login(ctx, keyed.enrol(t, false), loadgen.LoginOptions{})
	if err != nil {
		t.Fatalf("login of the RS256 client at the node with an RSA key: %v", err)
	}
	if alg, _ := jwsAlg(t, in.RawIDToken); alg != "RS256" {
		t.Errorf("ID token signed %s, want RS256", alg)
	}

	switchTo(store.IDTokenES256)
	waitReady(t, keyless)
	if !strings.Contains(logs.String(), "no longer wants RS256") {
		t.Errorf("the client switched back is not logged:\n%s", logs.String())
	}

	// Switched to RS256 again, the client is found by the first request
	// for it once the client cache's copy (a second) is old.
	switchTo(store.IDTokenRS256)
	time.Sleep(1100 * time.Millisecond)
	parRefused(t, keyless, rp)
	if status, body := get(t, keyless, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, `"legacy"`) {
		t.Errorf("readyz once a request found the client wants RS256: %d %q, want 503 naming it", status, body)
	}
}

// keyedAndKeyless starts two nodes over one new PostgreSQL database
// (sc): keyed, node "a", with an RSA key and the clock now (time.Now if
// nil), and keyless, node "b", without one, which logs to logs.
func keyedAndKeyless(t *testing.T, now func() time.Time) (sc config.Store, keyed, keyless *node, logs *app.SyncBuffer) {
	t.Helper()
	sc = config.Store{Driver: "postgres", DSN: pgtest.NewDatabase(t)}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	named := func(name string) func(*config.Config) { return func(c *config.Config) { c.Node = name } }
	keyed, _ = startNodeOpts(t, "127.0.0.1:0", "", storeEnv(sc),
		app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t), Now: now}, named("a"))
	es256, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logs = &app.SyncBuffer{}
	keyless, _ = startNodeOpts(t, "127.0.0.1:0", "", storeEnv(sc),
		app.Options{SubjectSalt: salt, Signer: es256, Log: slog.New(slog.NewTextHandler(logs, nil))}, named("b"))
	if keyless.app.RSASigner != nil {
		t.Fatal("node b has an RSA key")
	}
	return sc, keyed, keyless, logs
}

// switchIDTokenAlg registers the client with ID id again in st, as
// varde clients add does, now wanting its ID tokens signed with alg.
func switchIDTokenAlg(t *testing.T, st store.Store, id, alg string) {
	t.Helper()
	ctx := context.Background()
	c, err := st.GetClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.RemoveClient(ctx, st, c.ID, store.ClientSourceCLI, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.IDTokenAlg, c.Source, c.CreatedAt = alg, store.ClientSourceCLI, time.Now()
	if err := st.AddClient(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
}

// TestRS256LogoutAtAKeylessNode: a person logged in to an RS256 client
// at a node with an RSA key logs out at a node without one, which was
// running when the client switched to RS256 (ADR 32). That node cannot
// sign the client's logout token, and leaves the session's end pending
// rather than lose it or sign it ES256; the node with the key queues
// it at its housekeeping, once the end is left over
// (oidc.LeftoverEndsAfter), and the relying party gets it once, signed
// RS256 with that node's key, naming the session it ended.
func TestRS256LogoutAtAKeylessNode(t *testing.T) {
	ctx := context.Background()
	// Node a's clock runs ahead once the person has logged out, to the
	// time its housekeeping takes the end as left over.
	var ahead atomic.Int64
	sc, keyed, keyless, logs := keyedAndKeyless(t, func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) })
	endpoint, tokens := logoutEndpoint(t)
	rp := keyed.addRPWith(t, "legacy", "legacy.example", func(c *store.Client) { c.BackchannelLogoutURI = endpoint })
	cli, err := app.OpenStore(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	switchIDTokenAlg(t, cli, "legacy", store.IDTokenRS256)

	jar, _ := cookiejar.New(nil)
	in, err := withIDTokenAlgs(t, rp, "RS256").Login(ctx, keyed.enrol(t, false), loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatalf("login at the node with an RSA key: %v", err)
	}
	// Cookies are not told apart by port: node b has the session.
	logOutAt(t, keyless, jar)
	select {
	case raw := <-tokens:
		t.Fatalf("a logout token from the node without an RSA key: %s", raw)
	case <-time.After(time.Second):
	}
	if !strings.Contains(logs.String(), "back-channel logout left to a node with an RSA key") {
		t.Errorf("node b does not say the logout is left to a node with an RSA key:\n%s", logs.String())
	}
	if ends, err := cli.PendingSessionEnds(ctx, time.Now().Add(time.Minute), 10); err != nil || len(ends) != 1 {
		t.Fatalf("pending ends after the logout at node b: %d, %v; want the session's", len(ends), err)
	}

	ahead.Store(int64(2 * oidc.LeftoverEndsAfter))
	keyed.app.Housekeep(ctx)
	raw := nextLogoutToken(t, tokens, "the housekeeping of the node with an RSA key")
	if alg, kid := jwsAlg(t, raw); alg != "RS256" || kid != keyed.app.RSASigner.KID() {
		t.Errorf("logout token signed %s with %s, want RS256 with node a's RSA key %s", alg, kid, keyed.app.RSASigner.KID())
	}
	payload, err := gooidc.NewRemoteKeySet(ctx, keyed.issuer+"/jwks").VerifySignature(ctx, raw)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var claims struct{ Aud, Sub, Sid string }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Aud != "legacy" || claims.Sub != in.IDToken.Subject || claims.Sid == "" || claims.Sid != in.Claims["sid"] {
		t.Errorf("logout token %+v; want aud legacy, sub %s and sid %v", claims, in.IDToken.Subject, in.Claims["sid"])
	}
	if ends, err := cli.PendingSessionEnds(ctx, time.Now().Add(time.Hour), 10); err != nil || len(ends) != 0 {
		t.Errorf("pending ends once node a queued the token: %d, %v; want none", len(ends), err)
	}
	keyed.app.Housekeep(ctx)
	select {
	case raw := <-tokens:
		t.Errorf("a second logout token: %s", raw)
	case <-time.After(500 * time.Millisecond):
	}
}

// logOutAt logs the person whose session is in jar out at n, confirming
// on the page that asks, as a person does.
func logOutAt(t *testing.T, n *node, jar http.CookieJar) {
	t.Helper()
	b := &http.Client{Jar: jar}
	res, err := b.Get(n.issuer + "/logout")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="confirm_token" value="([^"]+)"`).FindSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("logout page at %s: %d, no confirmation:\n%s", n.issuer, res.StatusCode, page)
	}
	res, err = b.PostForm(n.issuer+"/logout", url.Values{"confirm": {"yes"}, "confirm_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout at %s: %d", n.issuer, res.StatusCode)
	}
}

// parRefused checks that n refuses rp's pushed authorization request
// with temporarily_unavailable.
func parRefused(t *testing.T, n *node, rp *loadgen.RP) {
	t.Helper()
	var body map[string]any
	status := post(t, n, rp, "/par", url.Values{"response_type": {"code"}, "redirect_uri": {rp.RedirectURI}, "scope": {"openid"},
		"code_challenge_method": {"S256"}, "code_challenge": {strings.Repeat("c", 43)}}, &body)
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("PAR of the RS256 client at the node without an RSA key: %d %v; want 503 temporarily_unavailable", status, body)
	}
}

// waitReady waits, for 20 s at most, until n's /readyz answers 200.
func waitReady(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get(t, n, "/readyz")
		if status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz of %s: %d %q after 20 s", n.issuer, status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get fetches path from n and returns the status and body.
func get(t *testing.T, n *node, path string) (int, string) {
	t.Helper()
	res, err := n.http.Get(n.issuer + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}
