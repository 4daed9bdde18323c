package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestRemovedClientsLoginsEnd: once a client is removed, a code issued
// to it just before is refused at the token endpoint, and a request it
// pushed just before is refused at the authorization endpoint (though
// the person's session would give a code at once), even when a client
// with the same ID was added again at once; the client added again logs
// people in as a new one. The removal and the new registration go
// through a store of their own, as `varde clients` or another node make
// them: on SQLite the node keeps logins in flight in its memory, on
// PostgreSQL in the database.
func TestRemovedClientsLoginsEnd(t *testing.T) {
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			sc := tc.store(t)
			n, _ := startNodeWith(t, "127.0.0.1:0", storeEnv(sc), make([]byte, 32))
			rp := n.addRP(t, "bank", "bank.example")
			person := n.enrol(t, false)
			// A first login leaves the person a session at Varde, so that
			// the authorization endpoint answers the next request at once.
			jar, _ := cookiejar.New(nil)
			if _, err := rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar}); err != nil {
				t.Fatal(err)
			}
			browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			authorize := func(requestURI string) *http.Response {
				t.Helper()
				res, err := browser.Get(n.issuer + "/authorize?" + url.Values{"client_id": {rp.ClientID}, "request_uri": {requestURI}}.Encode())
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res
			}
			uri, verifier := push(t, n, rp)
			res := authorize(uri)
			loc, _ := res.Location()
			code := loc.Query().Get("code")
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), rp.RedirectURI+"?") || code == "" {
				t.Fatalf("authorize with a session: %d to %v, want 303 to the callback with a code", res.StatusCode, loc)
			}
			pending, _ := push(t, n, rp)

			other, err := app.OpenStore(ctx, sc)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			c, err := other.GetClient(ctx, rp.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := app.RemoveClient(ctx, other, c.ID, store.ClientSourceCLI, time.Now()); err != nil {
				t.Fatal(err)
			}
			c.CreatedAt = time.Now()
			if err := other.AddClient(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
			// The node serves a client's registration from memory for up
			// to a second: wait until it has read the new one.
			time.Sleep(1100 * time.Millisecond)

			status, body := redeem(t, n, rp, code, verifier)
			if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("code issued before the removal, redeemed after the client was added again: %d %v, want 400 invalid_grant", status, body)
			}
			if res := authorize(pending); res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
				t.Errorf("request pushed before the removal, used after the client was added again: %d to %q, want 400 and no redirect",
					res.StatusCode, res.Header.Get("Location"))
			}
			if _, err := rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar}); err != nil {
				t.Errorf("login at the client added again: %v", err)
			}
		})
	}
}

// backends are the stores a node runs on: a new, empty one of each.
var backends = []struct {
	name  string
	store func(t *testing.T) config.Store
}{
	{"sqlite", func(t *testing.T) config.Store { return config.Store{DSN: filepath.Join(t.TempDir(), "varde.db")} }},
	{"postgres", func(t *testing.T) config.Store { return config.Store{Driver: "postgres", DSN: pgtest.NewDatabase(t)} }},
}

// storeEnv is the environment that names sc to a node.
func storeEnv(sc config.Store) map[string]string {
	return map[string]string{config.EnvStoreDriver: sc.Driver, config.EnvStoreDSN: sc.DSN}
}

// push sends rp's pushed authorization request (RFC 9126) to n and
// returns its request_uri and the PKCE verifier.
func push(t *testing.T, n *node, rp *loadgen.RP) (requestURI, verifier string) {
	t.Helper()
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	status := post(t, n, rp, "/par", url.Values{"response_type": {"code"}, "redirect_uri": {rp.RedirectURI}, "scope": {"openid"},
		"state": {rand.Text()}, "nonce": {rand.Text()}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}, &par)
	if status != http.StatusCreated || par.RequestURI == "" {
		t.Fatalf("par: %d", status)
	}
	return par.RequestURI, verifier
}

// redeem exchanges code at n's token endpoint for rp.
func redeem(t *testing.T, n *node, rp *loadgen.RP, code, verifier string) (int, map[string]any) {
	t.Helper()
	var body map[string]any
	status := post(t, n, rp, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {rp.RedirectURI}, "code_verifier": {verifier}}, &body)
	return status, body
}

// post sends form to path at n with rp's client authentication
// (private_key_jwt, RFC 7523) and decodes the answer into v.
func post(t *testing.T, n *node, rp *loadgen.RP, path string, form url.Values, v any) int {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: rp.Key, KeyID: rp.KeyID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: rp.ClientID, Subject: rp.ClientID, Audience: jwt.Audience{n.issuer},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	form.Set("client_id", rp.ClientID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	res, err := n.http.PostForm(n.issuer+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("%s: %d, %v", path, res.StatusCode, err)
	}
	return res.StatusCode
}
