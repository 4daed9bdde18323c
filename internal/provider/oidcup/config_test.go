package oidcup

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/assurance"
)

func validConfig(t testing.TB) Config {
	return Config{
		ID: "bankid", Name: map[string]string{"en": "BankID", "nb": "BankID"}, Issuer: "https://auth.bankid.example",
		ClientID: "varde", AuthMethod: AuthPrivateKeyJWT, ClientKey: ecKey(t),
		RedirectURI: "https://id.varde.example" + CallbackPath("bankid"), MaxLevel: assurance.High,
		ACRMap: map[string]assurance.Level{"urn:bankid:high": assurance.High}, IdentifierClaim: "pid",
		IdentifierSchemes: []string{"no:fnr", "no:dnr"},
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil || strings.Count(err.Error(), "\n") < 8 {
		t.Fatalf("an empty config should report every problem at once: %v", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string // "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"valid with a secret", func(c *Config) { c.AuthMethod, c.ClientKey, c.ClientSecret = AuthClientSecretBasic, nil, "s3cret" }, ""},
		{"loopback http", func(c *Config) {
			c.Issuer, c.RedirectURI = "http://127.0.0.1:9000", "http://localhost:8080"+CallbackPath("bankid")
		}, ""},
		{"bad id", func(c *Config) { c.ID = "Bank ID" }, "id must be"},
		{"id too long", func(c *Config) { c.ID = strings.Repeat("a", 33) }, "id must be"},
		{"no english name", func(c *Config) { c.Name = map[string]string{"nb": "BankID"} }, "name"},
		{"http issuer", func(c *Config) { c.Issuer = "http://auth.bankid.example" }, "issuer: must use https"},
		{"issuer with fragment", func(c *Config) { c.Issuer = "https://auth.bankid.example#x" }, "issuer: must not have a fragment"},
		{"relative issuer", func(c *Config) { c.Issuer = "/auth" }, "issuer: not an absolute URL"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client_id"},
		{"unknown method", func(c *Config) { c.AuthMethod = "client_secret_post" }, "auth method"},
		{"jwt without key", func(c *Config) { c.ClientKey = nil }, "needs a client key"},
		{"jwt with secret", func(c *Config) { c.ClientSecret = "s" }, "not used with private_key_jwt"},
		{"basic without secret", func(c *Config) { c.AuthMethod, c.ClientKey = AuthClientSecretBasic, nil }, "needs a client secret"},
		{"basic with key", func(c *Config) { c.AuthMethod, c.ClientSecret = AuthClientSecretBasic, "s" }, "not used with client_secret_basic"},
		{"small RSA key", func(c *Config) { c.ClientKey = small }, "at least 2048"},
		{"alg not fitting", func(c *Config) { c.ClientKeyAlg = "RS256" }, "does not fit"},
		{"redirect elsewhere", func(c *Config) { c.RedirectURI = "https://id.varde.example/cb" }, "redirect_uri must be"},
		{"redirect with query", func(c *Config) { c.RedirectURI += "?x=1" }, "redirect_uri must be"},
		{"redirect under the issuer's path", func(c *Config) { c.RedirectURI = "https://id.varde.example/eid" + CallbackPath("bankid") }, ""},
		{"redirect under a path ending with /", func(c *Config) { c.RedirectURI = "https://id.varde.example/eid/" + CallbackPath("bankid") }, "redirect_uri must be"},
		{"redirect of another upstream", func(c *Config) { c.RedirectURI = "https://id.varde.example/eid" + CallbackPath("other") }, "redirect_uri must be"},
		{"bad scope", func(c *Config) { c.Scopes = []string{"open id"} }, "scope"},
		{"no max level", func(c *Config) { c.MaxLevel = assurance.None }, "max level"},
		{"empty acr map", func(c *Config) { c.ACRMap = nil }, "acr map"},
		{"acr to none", func(c *Config) { c.ACRMap["x"] = assurance.None }, "acr map"},
		{"no claim", func(c *Config) { c.IdentifierClaim = "" }, "identifier claim"},
		{"no schemes", func(c *Config) { c.IdentifierSchemes = nil }, "identifier scheme"},
		{"unknown scheme", func(c *Config) { c.IdentifierSchemes = []string{"xx:id"} }, "unknown"},
		{"bad passport state", func(c *Config) { c.IdentifierSchemes = []string{"passport:no"} }, "unknown"},
		{"negative timeout", func(c *Config) { c.Timeouts.Token = -time.Second }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewNeedsDependencies(t *testing.T) {
	_, err := New(validConfig(t), Deps{})
	if err == nil || !strings.Contains(err.Error(), "Challenges") || !strings.Contains(err.Error(), "Finisher") {
		t.Fatalf("New without dependencies: %v", err)
	}
	c := validConfig(t)
	c.ID = ""
	if _, err := New(c, Deps{Challenges: nil, Finisher: &finisher{}}); err == nil || !strings.Contains(err.Error(), "id must be") {
		t.Fatalf("New with a bad config: %v", err)
	}
}

// TestClientAssertionKeys: assertions signed through crypto.Signer with
// each key type verify with the published public key.
func TestClientAssertionKeys(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	v := newVarde(t)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  string
		want jose.SignatureAlgorithm
	}{
		{"P-256", ecKey(t), "", jose.ES256},
		{"P-384", p384, "", jose.ES384},
		{"P-521", p521, "", jose.ES512},
		{"RSA", rsaKey, "", jose.RS256},
		{"RSA-PSS", rsaKey, "PS256", jose.PS256},
		{"Ed25519", edKey, "", jose.EdDSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig(t)
			c.ClientKey, c.ClientKeyAlg = tc.key, tc.alg
			p, err := New(c, Deps{Challenges: v.db, Finisher: v.fin})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := p.assertion()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{tc.want})
			if err != nil {
				t.Fatal(err)
			}
			pub := p.ClientJWKS().Keys[0]
			if tok.Headers[0].KeyID != pub.KeyID || pub.Algorithm != string(tc.want) {
				t.Fatalf("kid %q alg %q, published %q %q", tok.Headers[0].KeyID, tok.Headers[0].Algorithm, pub.KeyID, pub.Algorithm)
			}
			if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				t.Fatalf("typ %v, want JWT", typ)
			}
			var cl map[string]any
			if err := tok.Claims(pub.Key, &cl); err != nil {
				t.Fatal(err)
			}
			if cl["iss"] != "varde" || cl["sub"] != "varde" || cl["aud"] != c.Issuer || cl["jti"] == "" {
				t.Fatalf("claims %v", cl)
			}
		})
	}
}

// TestMetadataEndpointsAsSecureAsTheIssuer: an upstream reached over
// https may not name an http endpoint, even one on loopback: the node
// would post its client credentials and the person's code in clear, to
// whatever listens on the node's own loopback (its profile or metrics
// listener, say), and send the person's browser to their own machine.
// An upstream on http loopback (a simulated eID, a test) may name http
// loopback endpoints, as before.
func TestMetadataEndpointsAsSecureAsTheIssuer(t *testing.T) {
	doc := func(iss string, override map[string]string) []byte {
		m := map[string]string{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "pushed_authorization_request_endpoint": iss + "/par",
		}
		for k, v := range override {
			m[k] = v
		}
		raw, _ := json.Marshal(m)
		return raw
	}
	const https, loop = "https://eid.example", "http://127.0.0.1:9000"
	for _, tc := range []struct {
		name, issuer, field, value, wantErr string
	}{
		{"https upstream, https endpoints", https, "", "", ""},
		{"https upstream, http loopback token endpoint", https, "token_endpoint", "http://127.0.0.1:6060/debug/pprof/symbol", "token_endpoint: must use https, as the issuer does"},
		{"https upstream, http localhost PAR endpoint", https, "pushed_authorization_request_endpoint", "http://localhost:9090/metrics", "pushed_authorization_request_endpoint: must use https, as the issuer does"},
		{"https upstream, http loopback jwks_uri", https, "jwks_uri", "http://[::1]:80/keys", "jwks_uri: must use https, as the issuer does"},
		{"https upstream, http loopback authorization endpoint", https, "authorization_endpoint", "http://localhost/authorize", "authorization_endpoint: must use https, as the issuer does"},
		{"loopback upstream, loopback endpoints", loop, "", "", ""},
		{"loopback upstream, https endpoint", loop, "token_endpoint", "https://eid.example/token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var override map[string]string
			if tc.field != "" {
				override = map[string]string{tc.field: tc.value}
			}
			_, err := parseMetadata(doc(tc.issuer, override), tc.issuer, AuthClientSecretBasic, "")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("parseMetadata: %v, want %q", err, tc.wantErr)
			}
		})
	}
}
