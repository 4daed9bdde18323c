package oidcup

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
)

// thumbprint is key's RFC 7638 thumbprint, base64url.
func thumbprint(t *testing.T, key crypto.Signer) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestClientJWKSPublishesNextAndPrevious: the key set at JWKSPath holds
// the key that signs first, then the next key and the previous key,
// each with its RFC 7638 thumbprint as kid, use sig and the alg it
// signs (or would sign) client assertions with; every client assertion
// is signed with the current key alone, the ones signed ahead included.
func TestClientJWKSPublishesNextAndPrevious(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cur, next := ecKey(t), ecKey(t)
	_, prev, _ := ed25519.GenerateKey(rand.Reader)
	cfg := f.config(v, "fake")
	cfg.AuthMethod, cfg.ClientSecret, cfg.ClientKey, cfg.UsePAR = AuthPrivateKeyJWT, "", cur, true
	cfg.NextClientKey, cfg.PreviousClientKey = next, prev
	p := v.add(cfg)

	res, err := http.Get(v.srv.URL + JWKSPath("fake"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		key crypto.Signer
		alg string
	}{{cur, "ES256"}, {next, "ES256"}, {prev, "EdDSA"}}
	if len(set.Keys) != len(want) {
		t.Fatalf("JWKS holds %d keys, want %d", len(set.Keys), len(want))
	}
	for i, w := range want {
		k := set.Keys[i]
		if k.KeyID != thumbprint(t, w.key) || k.Use != "sig" || k.Algorithm != w.alg || !k.IsPublic() {
			t.Errorf("key %d: kid %q use %q alg %q public %v, want kid %q (thumbprint), use sig, alg %s, public",
				i, k.KeyID, k.Use, k.Algorithm, k.IsPublic(), thumbprint(t, w.key), w.alg)
		}
	}

	// Only the current key signs: the upstream knows it alone.
	f.with(func(f *fakeUpstream) { f.assertionKey = &set.Keys[0] })
	b := v.newBrowser()
	callback := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "", ""))
	waitAhead(t, p, aheadWant)
	if path, body := b.login(callback); path != "/finished" {
		t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
	}
	loginWorks(t, v, v.startURL("fake", "b", assurance.Substantial, "", ""))
	f.with(func(f *fakeUpstream) {
		if len(f.assertions) != 4 {
			t.Errorf("%d client assertions taken, want 4 (two logins' push and token request)", len(f.assertions))
		}
	})
}

// TestLoginAcrossRestartSignsWithNewKey: a node restarted with its next
// key as the current one signs every client assertion with it, for a
// login started before the restart too: what the node signed ahead with
// the old key is gone with the process that held it (ADR 53, 56). The
// upstream here knows only the new key by the time the person comes
// back, so any assertion signed with the old one fails the login.
func TestLoginAcrossRestartSignsWithNewKey(t *testing.T) {
	before := newVarde(t)
	// addr is the node's address, which the restarted process serves.
	var serving atomic.Pointer[http.ServeMux]
	serving.Store(before.mux)
	addr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serving.Load().ServeHTTP(w, r) }))
	t.Cleanup(addr.Close)
	start := func(attempt string) string {
		return addr.URL + "/start/fake?" + url.Values{"attempt": {attempt}, "min": {"substantial"}}.Encode()
	}

	f := newFakeUpstream(t, before.clock)
	oldKey, newKey := ecKey(t), ecKey(t)
	cfg := f.config(before, "fake")
	cfg.RedirectURI = addr.URL + CallbackPath("fake")
	cfg.AuthMethod, cfg.ClientSecret, cfg.ClientKey, cfg.NextClientKey, cfg.UsePAR = AuthPrivateKeyJWT, "", oldKey, newKey, true
	p := before.add(cfg)
	f.with(func(f *fakeUpstream) { f.assertionKey = &p.ClientJWKS().Keys[0] })

	b := newBrowser(t)
	callback := b.callbackURL(start("a"))
	waitAhead(t, p, aheadWant) // two assertions signed with the old key, in this node's memory

	// The restart: the same store and address, the next key current
	// and the old one previous.
	after := before.node(before.db)
	cfg.ClientKey, cfg.NextClientKey, cfg.PreviousClientKey = newKey, nil, oldKey
	q := after.add(cfg)
	serving.Store(after.mux)
	if got := q.ClientJWKS().Keys[0].KeyID; got != thumbprint(t, newKey) {
		t.Fatalf("the restarted node's first key is %s, want the new key's %s", got, thumbprint(t, newKey))
	}
	f.with(func(f *fakeUpstream) { f.assertionKey = &q.ClientJWKS().Keys[0] })

	if path, body := b.login(callback); path != "/finished" {
		t.Fatalf("login begun before the restart ended at %s: %.200s; audited %v", path, body, after.reasons())
	}
	loginWorks(t, after, start("b"))
	// Well within the ten seconds an assertion signed ahead is used.
	before.clock.Add(time.Second)
	loginWorks(t, after, start("c"))
}

// TestRotationKeysChecked: the next and previous keys are keys that
// could sign client assertions, each distinct from the others, and are
// used with private_key_jwt only; each problem is named.
func TestRotationKeysChecked(t *testing.T) {
	cur := ecKey(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := ecKey(t)
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"next is current", func(c *Config) { c.NextClientKey = cur }, "next client key is the same key as the client key"},
		{"previous is current", func(c *Config) { c.PreviousClientKey = cur }, "previous client key is the same key as the client key"},
		{"previous is next", func(c *Config) { c.NextClientKey, c.PreviousClientKey = other, other }, "previous client key is the same key as the next client key"},
		{"weak next", func(c *Config) { c.NextClientKey = weak }, "next client key: RSA key must have at least 2048 bits"},
		{"next on P-224", func(c *Config) { c.NextClientKey = p224 }, "next client key: ECDSA key must be on P-256, P-384 or P-521"},
		{"with a secret", func(c *Config) {
			c.AuthMethod, c.ClientKey, c.ClientSecret, c.NextClientKey = AuthClientSecretBasic, nil, "s", other
		}, "a client key is not used with client_secret_basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{
				ID: "fake", Name: map[string]string{"en": "Fake"}, Issuer: "https://eid.example", ClientID: "varde",
				AuthMethod: AuthPrivateKeyJWT, ClientKey: cur, RedirectURI: "https://varde.example" + CallbackPath("fake"),
				MaxLevel: assurance.High, ACRMap: map[string]assurance.Level{"x": assurance.High},
				IdentifierClaim: "pid", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("valid before the change: %v", err)
			}
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
