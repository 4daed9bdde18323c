package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// testJWKS returns a JWK set with one fresh P-256 key: public, or with
// its private part if private is true.
func testJWKS(t testing.TB, private bool) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	if private {
		jwk.Key = k
	}
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fields returns the field paths of every *FieldError in err, in order.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("not a FieldError: %v", err)
		}
		out = append(out, fe.Field)
	}
	if err != nil {
		walk(err)
	}
	return out
}

const fullYAML = `
version: 1
issuer: https://id.example.no
listen: ":9000"
node: node-a
store:
  driver: sqlite
  dsn: /var/lib/varde/varde.db
keys:
  signing_key_file: /etc/varde/signing.pem
  subject_salt_file: /etc/varde/salt
oidc:
  code_lifetime: 30s
  refresh_token_lifetime: 12h
passkey:
  synthetic_enrolment: true
  synthetic_enrolment_on_public_issuer: true
session:
  lifetime: 4h
log:
  level: debug
  format: text
clients:
  - id: bank
    name: Demo Bank
    auth_method: private_key_jwt
    jwks:
      keys:
        - kty: EC
          crv: P-256
          x: WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis
          y: y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE
          use: sig
    redirect_uris: ["https://bank.example/cb"]
    require_par: true
    dpop_bound_access_tokens: true
    allowed_levels: [substantial, high]
    sector_id: bank.example
    claims: [name, birthdate, national_id]
  - id: tax
    auth_method: private_key_jwt
    jwks_uri: https://tax.example/jwks.json
    legacy_endpoint_audience: true
    redirect_uris: ["https://tax.example/cb", "http://127.0.0.1:3000/cb"]
    post_logout_redirect_uris: ["https://tax.example/bye"]
  - id: spa
    auth_method: none
    redirect_uris: ["http://localhost:5173/cb"]
`

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(fullYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9000" || c.Node != "node-a" || c.Store.DSN != "/var/lib/varde/varde.db" {
		t.Errorf("top level: %+v", c)
	}
	if c.OIDC.CodeLifetime != 30*time.Second || c.OIDC.RefreshTokenLifetime != 12*time.Hour || c.OIDC.PARLifetime != DefaultPARLifetime {
		t.Errorf("oidc: %+v", c.OIDC)
	}
	if c.Passkey.RPID != "id.example.no" || !slices.Equal(c.Passkey.Origins, []string{"https://id.example.no"}) || !c.Passkey.SyntheticEnrolment {
		t.Errorf("passkey: %+v", c.Passkey)
	}
	if c.Session.Lifetime != 4*time.Hour || c.Session.IdleTimeout != DefaultSessionIdleTimeout || c.Session.SecureCookie == nil || !*c.Session.SecureCookie {
		t.Errorf("session: %+v", c.Session)
	}
	if len(c.Clients) != 3 {
		t.Fatalf("clients: %d", len(c.Clients))
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(c.Clients[0].JWKS), &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() {
		t.Errorf("inline YAML jwks became %q (%v)", c.Clients[0].JWKS, err)
	}
	if !slices.Equal(c.Clients[0].Claims, []string{"name", "birthdate", "national_id"}) || !c.Clients[0].RequirePAR {
		t.Errorf("client 0: %+v", c.Clients[0])
	}
	if c.Clients[0].LegacyEndpointAudience || !c.Clients[1].LegacyEndpointAudience {
		t.Errorf("legacy_endpoint_audience: client 0 %v, client 1 %v", c.Clients[0].LegacyEndpointAudience, c.Clients[1].LegacyEndpointAudience)
	}
	if !c.Clients[0].DPoPBoundAccessTokens || c.Clients[1].DPoPBoundAccessTokens {
		t.Errorf("dpop_bound_access_tokens: client 0 %v, client 1 %v", c.Clients[0].DPoPBoundAccessTokens, c.Clients[1].DPoPBoundAccessTokens)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("version: 1\nissuer: https://id.example.no:8443\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Version: 1, Issuer: "https://id.example.no:8443", Listen: ":8080", Node: c.Node,
		Store: Store{Driver: "sqlite", DSN: "varde.db", FlowState: "memory"},
		Keys:  Keys{SigningKeyFile: "/etc/varde/signing-key.pem"},
		OIDC: OIDC{CodeLifetime: time.Minute, AuthRequestLifetime: 10 * time.Minute, PARLifetime: 90 * time.Second,
			AccessTokenLifetime: 10 * time.Minute, IDTokenLifetime: 10 * time.Minute, RefreshTokenLifetime: 8 * time.Hour,
			DPoPNonces: new(true), RefreshReuseInterval: new(30 * time.Second)},
		Passkey: Passkey{RPID: "id.example.no", Origins: []string{"https://id.example.no:8443"}},
		Session: Session{Lifetime: 8 * time.Hour, IdleTimeout: 30 * time.Minute, SecureCookie: c.Session.SecureCookie},
		Audit:   Audit{AddressRetention: 180 * 24 * time.Hour},
		Health:  Health{Interval: 5 * time.Second, ProbeTimeout: 3 * time.Second, SlowProbe: time.Second, FailuresToDown: 3, SuccessesToUp: 3},
		Status:  Status{OpenAfter: time.Minute, ResolveAfter: 5 * time.Minute, NodeGoneAfter: 24 * time.Hour},
		Pages:   Pages{TimeZone: "UTC"},
		Log:     Log{Level: "info", Format: "json"},
		// No drain for a single SQLite node: no other node takes over.
		Shutdown: Shutdown{Drain: new(time.Duration(0)), Grace: new(DefaultShutdownGrace)},
	}
	if c.Node == "" || c.Session.SecureCookie == nil || !*c.Session.SecureCookie {
		t.Fatalf("node %q, secure cookie %v", c.Node, c.Session.SecureCookie)
	}
	got, _ := json.Marshal(c)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("defaults\n got %s\nwant %s", got, exp)
	}
}

// TestDrainDefault: shutdown.drain is 5s with postgres and 0 with
// sqlite unless set, an explicit 0 is kept, and values out of range are
// refused.
func TestDrainDefault(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	const pg = "store: {driver: postgres, dsn: 'postgres://db/varde'}\n"
	for _, tc := range []struct {
		name, yaml string
		want       time.Duration
		problem    string
	}{
		{"sqlite", head, 0, ""},
		{"postgres", head + pg, DefaultSharedDrain, ""},
		{"postgres, none", head + pg + "shutdown: {drain: 0s}\n", 0, ""},
		{"set", head + "shutdown: {drain: 12s}\n", 12 * time.Second, ""},
		{"negative", head + "shutdown: {drain: -1s}\n", 0, "shutdown.drain"},
		{"too long", head + "shutdown: {drain: 2m}\n", 0, "shutdown.drain"},
		{"grace negative", head + "shutdown: {grace: -1s}\n", 0, "shutdown.grace"},
		{"grace too long", head + "shutdown: {grace: 6m}\n", 0, "shutdown.grace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(nil))
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err = %v, want a problem with %s", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Shutdown.Drain == nil || *c.Shutdown.Drain != tc.want {
				t.Errorf("drain = %v, want %v", c.Shutdown.Drain, tc.want)
			}
		})
	}
}

// TestStoreStartTimeout: store.start_timeout is 0 (wait for the
// database as long as it takes) unless set; it is refused negative, and
// with sqlite, whose node does not wait.
func TestStoreStartTimeout(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		want       time.Duration
		problem    string
	}{
		{"postgres", head + "store: {driver: postgres, dsn: 'postgres://db/varde'}\n", 0, ""},
		{"set", head + "store: {driver: postgres, dsn: 'postgres://db/varde', start_timeout: 10m}\n", 10 * time.Minute, ""},
		{"negative", head + "store: {driver: postgres, dsn: 'postgres://db/varde', start_timeout: -1s}\n", 0, "store.start_timeout: -1s is negative"},
		{"sqlite", head + "store: {start_timeout: 1m}\n", 0, "store.start_timeout: applies only to driver postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(nil))
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("err = %v, want %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.StartTimeout != tc.want {
				t.Errorf("start_timeout = %v, want %v", c.Store.StartTimeout, tc.want)
			}
		})
	}
}

func TestSecureCookieDefault(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		want   bool
	}{
		{"https://id.example.no", true},
		{"https://localhost:8443", true},
		{"http://localhost:8080", false},
		{"http://127.0.0.1:8080", false},
		{"http://[::1]:8080", false},
	} {
		c := Config{Issuer: tc.issuer}
		c.ApplyDefaults()
		if c.Session.SecureCookie == nil || *c.Session.SecureCookie != tc.want {
			t.Errorf("%s: secure cookie %v, want %v", tc.issuer, c.Session.SecureCookie, tc.want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "varde.yaml")
	if err := os.WriteFile(path, []byte(fullYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	e := env(map[string]string{
		EnvIssuer: "https://login.example.no", EnvListen: "127.0.0.1:7000", EnvNode: "n2",
		EnvStoreDriver: "sqlite", EnvStoreDSN: "/data/varde.db", EnvStoreFlowState: "store",
		EnvSigningKeyFile: "/run/key.pem", EnvSubjectSaltFile: "/run/salt",
		EnvLogLevel: "warn", EnvLogFormat: "json",
	})
	c, err := Load(path, e)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Issuer, c.Listen, c.Node, c.Store.Driver, c.Store.DSN, c.Store.FlowState, c.Keys.SigningKeyFile, c.Keys.SubjectSaltFile, c.Log.Level, c.Log.Format, c.Passkey.RPID}
	want := []string{"https://login.example.no", "127.0.0.1:7000", "n2", "sqlite", "/data/varde.db", "store", "/run/key.pem", "/run/salt", "warn", "json", "login.example.no"}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// Empty values leave the file's values.
	c, err = Load(path, env(map[string]string{EnvNode: ""}))
	if err != nil || c.Node != "node-a" {
		t.Errorf("empty env: node %q, %v", c.Node, err)
	}
}

func TestLoadEnvOnly(t *testing.T) {
	c, err := Load("", env(map[string]string{EnvIssuer: "http://localhost:8080"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != Version || c.Passkey.RPID != "localhost" || c.Passkey.Origins[0] != "http://localhost:8080" {
		t.Errorf("%+v", c)
	}
	if _, err := Load("", nil); err == nil || !strings.Contains(err.Error(), "issuer: required") {
		t.Errorf("no issuer: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.yaml"), "no such file"},
		{big, "larger than"},
	} {
		if _, err := Load(tc.path, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestStrict(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top-level field", head + "isuer: x\n", "field isuer not found"},
		{"unknown nested field", head + "oidc:\n  code_lifetme: 10s\n", "field code_lifetme not found"},
		{"unknown client field", head + "clients:\n  - id: a\n    redirect_uri: https://a.example/cb\n", "field redirect_uri not found"},
		{"wrong type", head + "listen: [1, 2]\n", "cannot unmarshal"},
		{"bad duration", head + "oidc:\n  code_lifetime: soon\n", "line 4: cannot unmarshal !!str `soon` into time.Duration (a duration with its unit, e.g. 90s, 10m or 8h)"},
		{"duration without unit", head + "session:\n  lifetime: 3600\n", "line 4: cannot unmarshal !!int `3600` into time.Duration (a duration with its unit, e.g. 90s, 10m or 8h)"},
		{"nested duration without unit", head + "health:\n  interval: 5\n", "line 4: cannot unmarshal !!int `5` into time.Duration (a duration with its unit"},
		{"duplicate key", head + "listen: a\nlisten: b\n", "already defined"},
		{"two documents", head + "---\nversion: 1\n", "more than one YAML document"},
		{"empty", "", "empty file"},
		{"not a mapping", "- 1\n", "cannot unmarshal"},
		{"client not a mapping", head + "clients: [bank]\n", "cannot unmarshal"},
		{"jwks not JSON-able", head + "clients:\n  - id: a\n    jwks: {1: 2}\n", "not representable as JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestValidateEverythingAtOnce checks that one broken file yields every
// problem, each with its path.
func TestValidateEverythingAtOnce(t *testing.T) {
	y := `
version: 2
issuer: http://id.example.no?x=1
listen: nowhere
node: "bad node"
store: {driver: mysql}
oidc: {code_lifetime: 5m, par_lifetime: -1s}
passkey: {rp_id: 10.0.0.1}
log: {level: loud, format: xml}
clients:
  - id: a
    auth_method: private_key_jwt
    redirect_uris: ["https://a.example/cb#frag", "http://a.example/cb", "/relative"]
    allowed_levels: [medium]
    claims: [email]
  - id: a
    auth_method: client_secret_basic
    redirect_uris: []
  - id: c
    auth_method: none
    secret_file: /etc/c
    redirect_uris: ["https://c.example/cb"]
  - auth_method: magic
    redirect_uris: ["https://d.example/cb"]
`
	_, err := Parse([]byte(y), nil)
	want := []string{
		"version",
		"issuer", "issuer",
		"listen",
		"node",
		"store.driver",
		"store.dsn",
		"oidc.code_lifetime",
		"oidc.par_lifetime",
		"passkey.rp_id",
		"log.level",
		"log.format",
		"clients[0]",
		"clients[0].redirect_uris[0]",
		"clients[0].redirect_uris[1]",
		"clients[0].redirect_uris[2]",
		"clients[0].allowed_levels[0]",
		"clients[0].claims[0]",
		"clients[1].id",
		"clients[1].secret_file",
		"clients[1].redirect_uris",
		"clients[2].secret_file",
		"clients[3].id",
		"clients[3].auth_method",
	}
	if got := fields(t, err); !slices.Equal(got, want) {
		t.Errorf("problems:\n%v\ngot fields  %q\nwant fields %q", err, got, want)
	}
	if err != nil && !strings.Contains(err.Error(), `clients[1].id: "a" is also clients[0].id`) {
		t.Errorf("duplicate ID message missing from:\n%v", err)
	}
}

// validBase is a valid configuration for TestValidate to break one field at
// a time.
func validBase(t *testing.T) Config {
	t.Helper()
	c := Config{
		Version: 1, Issuer: "https://id.example.no", Node: "n1",
		Keys: Keys{SigningKeyFile: "/etc/varde/signing-key.pem"},
		Clients: []Client{
			{ID: "bank", AuthMethod: "private_key_jwt", JWKS: testJWKS(t, false), RedirectURIs: []string{"https://bank.example/cb"}},
			{ID: "tax", AuthMethod: "client_secret_basic", SecretFile: "/etc/varde/tax", RedirectURIs: []string{"https://tax.example/cb"}},
		},
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("base config invalid: %v", err)
	}
	return c
}

func TestValidate(t *testing.T) {
	privateJWKS := testJWKS(t, true)
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		field  string // "" means valid
		msg    string
	}{
		{"valid", func(c *Config) {}, "", ""},
		{"support in full", func(c *Config) {
			c.Support = Support{URL: "https://help.example.no/eid", Phone: "+47 (800) 12-345", Hours: map[string]string{"nb": "Hverdager 8–16", "en": "Weekdays 8–16"}}
		}, "", ""},
		{"support phone only", func(c *Config) { c.Support.Phone = "800 12 345" }, "", ""},
		{"support url http", func(c *Config) { c.Support.URL = "http://help.example.no" }, "support.url", "https"},
		{"support url relative", func(c *Config) { c.Support.URL = "help.example.no" }, "support.url", "absolute"},
		{"support url javascript", func(c *Config) { c.Support.URL = "javascript:alert(1)" }, "support.url", "absolute"},
		{"support phone letters", func(c *Config) { c.Support.Phone = "call 800" }, "support.phone", "only digits"},
		{"support phone too short", func(c *Config) { c.Support.Phone = "+4" }, "support.phone", "3 to 20 digits"},
		{"support hours unknown language", func(c *Config) {
			c.Support = Support{Phone: "800 12 345", Hours: map[string]string{"sv": "Vardagar"}}
		}, "support.hours.sv", "not a page language"},
		{"support hours empty", func(c *Config) { c.Support = Support{Phone: "800 12 345", Hours: map[string]string{"en": " "}} }, "support.hours.en", "1 to 200"},
		{"support hours alone", func(c *Config) { c.Support.Hours = map[string]string{"en": "Weekdays"} }, "support.hours", "without support.url or support.phone"},
		{"issuer loopback http", func(c *Config) {
			c.Issuer, c.Passkey.RPID, c.Passkey.Origins = "http://localhost:8080", "localhost", []string{"http://localhost:8080"}
			f := false
			c.Session.SecureCookie = &f
		}, "", ""},
		{"issuer with path", func(c *Config) { c.Issuer = "https://id.example.no/varde" }, "", ""},
		{"issuer with two segments", func(c *Config) { c.Issuer = "https://id.example.no/eid/v-1.0_x~" }, "", ""},
		{"issuer path dot segment", func(c *Config) { c.Issuer = "https://id.example.no/eid/../x" }, "issuer", "empty, . or .."},
		{"issuer path empty segment", func(c *Config) { c.Issuer = "https://id.example.no/eid//x" }, "issuer", "empty, . or .."},
		{"issuer path escaped", func(c *Config) { c.Issuer = "https://id.example.no/e%2Fid" }, "issuer", "empty, . or .."},
		{"issuer path trailing slash", func(c *Config) { c.Issuer = "https://id.example.no/eid/" }, "issuer", `end with /: write it as "https://id.example.no/eid"`},
		{"issuer missing", func(c *Config) { c.Issuer = "" }, "issuer", "required"},
		{"issuer relative", func(c *Config) { c.Issuer = "id.example.no" }, "issuer", "absolute"},
		{"issuer http", func(c *Config) { c.Issuer = "http://id.example.no" }, "issuer", "https"},
		{"issuer query", func(c *Config) { c.Issuer = "https://id.example.no?a=b" }, "issuer", "query"},
		{"issuer fragment", func(c *Config) { c.Issuer = "https://id.example.no#x" }, "issuer", "fragment"},
		{"issuer space", func(c *Config) { c.Issuer = "https://id.example.no/my idp" }, "issuer", "white space"},
		{"issuer trailing slash", func(c *Config) { c.Issuer = "https://id.example.no/" }, "issuer", `end with /: write it as "https://id.example.no"`},
		{"issuer user info", func(c *Config) { c.Issuer = "https://u:p@id.example.no" }, "issuer", "user information"},
		{"code lifetime 61s", func(c *Config) { c.OIDC.CodeLifetime = 61 * time.Second }, "oidc.code_lifetime", "longer than 1m0s"},
		{"code lifetime 60s", func(c *Config) { c.OIDC.CodeLifetime = 60 * time.Second }, "", ""},
		{"lifetimes at their bounds", func(c *Config) {
			c.OIDC = OIDC{CodeLifetime: MaxCodeLifetime, AuthRequestLifetime: time.Hour, PARLifetime: 10 * time.Minute,
				AccessTokenLifetime: time.Hour, IDTokenLifetime: time.Hour, RefreshTokenLifetime: 90 * 24 * time.Hour}
		}, "", ""},
		{"access token lifetime 61m", func(c *Config) { c.OIDC.AccessTokenLifetime = 61 * time.Minute }, "oidc.access_token_lifetime", "longer than 1h0m0s"},
		{"ID token lifetime 2h", func(c *Config) { c.OIDC.IDTokenLifetime = 2 * time.Hour }, "oidc.id_token_lifetime", "longer than 1h0m0s"},
		{"refresh token lifetime 91 days", func(c *Config) { c.OIDC.RefreshTokenLifetime = 91 * 24 * time.Hour }, "oidc.refresh_token_lifetime", "longer than 2160h0m0s"},
		{"PAR lifetime 11m", func(c *Config) { c.OIDC.PARLifetime = 11 * time.Minute }, "oidc.par_lifetime", "longer than 10m0s"},
		{"auth request lifetime 2h", func(c *Config) { c.OIDC.AuthRequestLifetime = 2 * time.Hour }, "oidc.auth_request_lifetime", "longer than 1h0m0s"},
		{"session lifetime negative", func(c *Config) { c.Session.Lifetime = -time.Hour }, "session.lifetime", "positive"},
		{"session idle timeout negative", func(c *Config) { c.Session.IdleTimeout = -time.Minute }, "session.idle_timeout", "positive"},
		{"session idle timeout over lifetime", func(c *Config) { c.Session.IdleTimeout = 8*time.Hour + time.Second }, "session.idle_timeout", "longer than session.lifetime"},
		{"session idle timeout the lifetime", func(c *Config) { c.Session.IdleTimeout = 8 * time.Hour }, "", ""},
		{"address retention a day", func(c *Config) { c.Audit.AddressRetention = 24 * time.Hour }, "", ""},
		{"address retention 180 minutes", func(c *Config) { c.Audit.AddressRetention = 180 * time.Minute }, "audit.address_retention", "shorter than 24h0m0s"},
		{"address retention negative", func(c *Config) { c.Audit.AddressRetention = -time.Hour }, "audit.address_retention", "4320h"},
		{"insecure cookie on https", func(c *Config) { f := false; c.Session.SecureCookie = &f }, "session.secure_cookie", "https"},
		{"rp id parent domain", func(c *Config) { c.Passkey.RPID = "example.no" }, "", ""},
		{"issuer on an IP address", func(c *Config) {
			c.Issuer, c.Passkey.RPID, c.Passkey.Origins = "http://127.0.0.1:8080", "", nil
			c.ApplyDefaults()
		}, "passkey.rp_id", "use localhost"},
		{"rp id IPv4", func(c *Config) { c.Passkey.RPID = "192.0.2.1" }, "passkey.rp_id", "IP address"},
		{"rp id IPv6", func(c *Config) { c.Passkey.RPID = "::1" }, "passkey.rp_id", "IP address"},
		{"rp id other domain", func(c *Config) { c.Passkey.RPID = "example.com" }, "passkey.rp_id", "parent domain"},
		{"rp id suffix not label", func(c *Config) { c.Passkey.RPID = "ample.no" }, "passkey.rp_id", "parent domain"},
		{"rp id TLD", func(c *Config) { c.Passkey.RPID = "no" }, "passkey.rp_id", "top-level"},
		{"rp id with port", func(c *Config) { c.Passkey.RPID = "id.example.no:443" }, "passkey.rp_id", "without scheme or port"},
		{"origin sibling", func(c *Config) { c.Passkey.Origins = []string{"https://other.example.no"} }, "passkey.origins[0]", "not within rp_id"},
		{"origin with path", func(c *Config) { c.Passkey.Origins = []string{"https://id.example.no/x"} }, "passkey.origins[0]", "only scheme"},
		{"origin http", func(c *Config) { c.Passkey.Origins = []string{"http://id.example.no"} }, "passkey.origins[0]", "https"},
		{"postgres with flow state in memory", func(c *Config) { c.Store = Store{Driver: "postgres", DSN: "postgres://x", FlowState: "memory"} },
			"store.flow_state", "must be store with postgres, where several nodes share the database"},
		{"store driver unknown", func(c *Config) { c.Store.Driver = "mysql" }, "store.driver", `"mysql" is not sqlite`},
		{"public issuer without a signing key", func(c *Config) { c.Keys.SigningKeyFile = "" },
			"keys.signing_key_file", "openssl ecparam -name prime256v1 -genkey -noout -out signing-key.pem"},
		{"loopback issuer without a signing key", func(c *Config) {
			c.Issuer, c.Passkey.RPID, c.Passkey.Origins, c.Keys.SigningKeyFile = "https://localhost:8443", "localhost", []string{"https://localhost:8443"}, ""
		}, "", ""},
		{"synthetic enrolment on a public issuer", func(c *Config) { c.Passkey.SyntheticEnrolment = true },
			"passkey.synthetic_enrolment", "synthetic_enrolment_on_public_issuer: true"},
		{"synthetic enrolment on a public test issuer", func(c *Config) {
			c.Passkey.SyntheticEnrolment, c.Passkey.SyntheticEnrolmentOnPublicIssuer = true, true
		}, "", ""},
		{"synthetic enrolment on localhost", func(c *Config) {
			c.Issuer, c.Passkey.RPID, c.Passkey.Origins = "http://localhost:8080", "localhost", []string{"http://localhost:8080"}
			f := false
			c.Session.SecureCookie, c.Passkey.SyntheticEnrolment = &f, true
		}, "", ""},
		{"public issuer allowance alone", func(c *Config) { c.Passkey.SyntheticEnrolmentOnPublicIssuer = true },
			"passkey.synthetic_enrolment_on_public_issuer", "synthetic_enrolment is not"},
		{"flow state in the store with sqlite", func(c *Config) { c.Store.FlowState = "store" }, "", ""},
		{"postgres", func(c *Config) { c.Store = Store{Driver: "postgres", DSN: "postgres://x", FlowState: "store"} }, "", ""},
		{"postgres without a DSN", func(c *Config) { c.Store = Store{Driver: "postgres", FlowState: "store"} }, "store.dsn", "required"},
		{"flow state unknown", func(c *Config) { c.Store.FlowState = "redis" }, "store.flow_state", "not memory or store"},
		{"store dsn missing", func(c *Config) { c.Store.DSN = "" }, "store.dsn", "required"},
		{"code lifetime in milliseconds", func(c *Config) { c.OIDC.CodeLifetime = 60 * time.Millisecond }, "oidc.code_lifetime", "shorter than 1s"},
		{"access token lifetime under a second", func(c *Config) { c.OIDC.AccessTokenLifetime = 999 * time.Millisecond }, "oidc.access_token_lifetime", "shorter than 1s"},
		{"lifetimes of a second", func(c *Config) {
			c.OIDC.CodeLifetime, c.OIDC.AuthRequestLifetime, c.OIDC.PARLifetime = time.Second, time.Second, time.Second
			c.OIDC.AccessTokenLifetime, c.OIDC.IDTokenLifetime, c.OIDC.RefreshTokenLifetime = time.Second, time.Second, time.Second
			c.Session.Lifetime, c.Session.IdleTimeout = time.Second, time.Second
		}, "", ""},
		{"session lifetime in milliseconds", func(c *Config) { c.Session.Lifetime, c.Session.IdleTimeout = 8*time.Millisecond, time.Millisecond }, "session.lifetime", "shorter than 1s"},
		{"idle timeout in milliseconds", func(c *Config) { c.Session.IdleTimeout = 30 * time.Millisecond }, "session.idle_timeout", "shorter than 1s"},
		{"client name with a line break", func(c *Config) { c.Clients[0].Name = "Bank\nevil  Evil Bank" }, "clients[0].name", "control character"},
		{"client name with a tab", func(c *Config) { c.Clients[0].Name = "Bank\tX" }, "clients[0].name", "control character"},
		{"client name in letters of any script", func(c *Config) { c.Clients[0].Name = "Skatteetaten – Søknad ÆØÅ" }, "", ""},
		{"listen bad", func(c *Config) { c.Listen = "8080" }, "listen", "host:port"},
		{"listen port too large", func(c *Config) { c.Listen = ":99999" }, "listen", "from 0 to 65535"},
		{"listen port a service name", func(c *Config) { c.Listen = "0.0.0.0:https" }, "listen", "must be a number"},
		{"listen port empty", func(c *Config) { c.Listen = "127.0.0.1:" }, "listen", "must be a number"},
		{"listen any free port", func(c *Config) { c.Listen = "127.0.0.1:0" }, "", ""},
		{"metrics port too large", func(c *Config) { c.Metrics.Listen = "10.0.0.5:65536" }, "metrics.listen", "from 0 to 65535"},
		{"pprof port a service name", func(c *Config) { c.Debug.PprofListen = "127.0.0.1:pprof" }, "debug.pprof_listen", "must be a number"},
		{"node too long", func(c *Config) { c.Node = strings.Repeat("n", 64) }, "node", "63"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", "trace"},
		{"client id spaces", func(c *Config) { c.Clients[0].ID = "my bank" }, "clients[0].id", "printable"},
		{"client duplicate id", func(c *Config) { c.Clients[1].ID = "bank" }, "clients[1].id", "also clients[0].id"},
		{"client no auth method", func(c *Config) { c.Clients[0].AuthMethod = "" }, "clients[0].auth_method", "required"},
		{"client bad auth method", func(c *Config) { c.Clients[0].AuthMethod = "client_secret_post" }, "clients[0].auth_method", "client_secret_post"},
		{"pkjwt without keys", func(c *Config) { c.Clients[0].JWKS = "" }, "clients[0]", "needs jwks or jwks_uri"},
		{"pkjwt with both", func(c *Config) { c.Clients[0].JWKSURI = "https://bank.example/jwks" }, "clients[0]", "only one"},
		{"pkjwt with secret", func(c *Config) { c.Clients[0].SecretFile = "/s" }, "clients[0].secret_file", "must be empty"},
		{"jwks uri http", func(c *Config) { c.Clients[0].JWKS, c.Clients[0].JWKSURI = "", "http://bank.example/jwks" }, "clients[0].jwks_uri", "https"},
		{"jwks private key", func(c *Config) { c.Clients[0].JWKS = privateJWKS }, "clients[0].jwks", "private or symmetric"},
		{"jwks symmetric key", func(c *Config) { c.Clients[0].JWKS = `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}` }, "clients[0].jwks", "private or symmetric"},
		{"jwks not JSON", func(c *Config) { c.Clients[0].JWKS = "keys: []" }, "clients[0].jwks", "not a JSON JWK set"},
		{"jwks empty", func(c *Config) { c.Clients[0].JWKS = `{"keys":[]}` }, "clients[0].jwks", "no keys"},
		{"jwks bad key", func(c *Config) { c.Clients[0].JWKS = `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}` }, "clients[0].jwks", "keys[0]"},
		{"jwks enc key", func(c *Config) {
			c.Clients[0].JWKS = strings.Replace(testJWKS(t, false), `"use":"sig"`, `"use":"enc"`, 1)
		}, "clients[0].jwks", "use \"enc\""},
		{"basic without secret", func(c *Config) { c.Clients[1].SecretFile = "" }, "clients[1].secret_file", "required"},
		{"basic with jwks", func(c *Config) { c.Clients[1].JWKSURI = "https://tax.example/jwks" }, "clients[1]", "must be empty"},
		{"none with jwks", func(c *Config) {
			c.Clients[1].AuthMethod, c.Clients[1].SecretFile, c.Clients[1].JWKSURI = "none", "", "https://x.example/j"
		}, "clients[1]", "must be empty"},
		{"no redirect uris", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "clients[0].redirect_uris", "at least one"},
		{"redirect relative", func(c *Config) { c.Clients[0].RedirectURIs = []string{"/cb"} }, "clients[0].redirect_uris[0]", "absolute"},
		{"redirect fragment", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://bank.example/cb#x"} }, "clients[0].redirect_uris[0]", "fragment"},
		{"redirect http", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://bank.example/cb"} }, "clients[0].redirect_uris[0]", "https"},
		{"redirect custom scheme", func(c *Config) { c.Clients[0].RedirectURIs = []string{"com.bank.app:/cb"} }, "clients[0].redirect_uris[0]", "absolute"},
		{"redirect http loopback", func(c *Config) {
			c.Clients[0].RedirectURIs = []string{"http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:1/cb"}
		}, "", ""},
		{"redirect wildcard host", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://*.bank.example/cb"} }, "clients[0].redirect_uris[0]", "'*' in its host"},
		{"redirect wildcard path", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://bank.example/cb/*"} }, "clients[0].redirect_uris[0]", "no wildcard"},
		{"post logout wildcard", func(c *Config) { c.Clients[1].PostLogoutRedirectURIs = []string{"https://tax.example/*"} }, "clients[1].post_logout_redirect_uris[0]", "no wildcard"},
		{"redirect port too large", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://bank.example:84430/cb"} }, "clients[0].redirect_uris[0]", "port 84430"},
		{"redirect space", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://bank.example/c b"} }, "clients[0].redirect_uris[0]", "white space"},
		{"post logout no-break space", func(c *Config) { c.Clients[1].PostLogoutRedirectURIs = []string{"https://tax.example/bye\u00a0now"} }, "clients[1].post_logout_redirect_uris[0]", "white space"},
		{"webhook space", func(c *Config) { c.Clients[0].StatusWebhook = "https://bank.example/hook here" }, "clients[0].status_webhook", "%20"},
		{"redirect port zero", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://127.0.0.1:0/cb"} }, "clients[0].redirect_uris[0]", "port 0"},
		{"jwks uri wildcard host", func(c *Config) {
			c.Clients[0].JWKS, c.Clients[0].JWKSURI = "", "https://*.bank.example/jwks"
		}, "clients[0].jwks_uri", "'*' in its host"},
		{"webhook port too large", func(c *Config) { c.Clients[0].StatusWebhook = "https://bank.example:70000/events" }, "clients[0].status_webhook", "port 70000"},
		{"post logout http", func(c *Config) {
			c.Clients[1].PostLogoutRedirectURIs = []string{"https://tax.example/", "http://tax.example/"}
		}, "clients[1].post_logout_redirect_uris[1]", "https"},
		{"level acr uri", func(c *Config) { c.Clients[0].AllowedLevels = []string{"http://eidas.europa.eu/LoA/high"} }, "clients[0].allowed_levels[0]", "not low"},
		{"levels ok", func(c *Config) { c.Clients[0].AllowedLevels = []string{"low", "substantial", "high"} }, "", ""},
		{"claims ok", func(c *Config) { c.Clients[0].Claims = KnownClaims() }, "", ""},
		{"claim unknown", func(c *Config) { c.Clients[0].Claims = []string{"name", "email"} }, "clients[0].claims[1]", "email"},
		{"legacy endpoint audience", func(c *Config) { c.Clients[0].LegacyEndpointAudience = true }, "", ""},
		{"legacy endpoint audience without assertions", func(c *Config) { c.Clients[1].LegacyEndpointAudience = true },
			"clients[1].legacy_endpoint_audience", "only for auth_method private_key_jwt"},
		{"resource server without redirect uris", func(c *Config) {
			c.Clients[1].RedirectURIs, c.Clients[1].IntrospectTokensOf = nil, []string{"bank"}
			c.Clients[0].SectorID, c.Clients[1].SectorID = "bank.example", "bank.example"
		}, "", ""},
		{"resource server of another sector", func(c *Config) { c.Clients[1].IntrospectTokensOf = []string{"bank"} },
			"clients[1].introspect_tokens_of[0]", "another pairwise sector"},
		{"resource server of a client not in the file", func(c *Config) { c.Clients[1].IntrospectTokensOf = []string{"added-with-cli"} }, "", ""},
		{"resource server of itself", func(c *Config) { c.Clients[1].IntrospectTokensOf = []string{"tax"} },
			"clients[1].introspect_tokens_of[0]", "itself"},
		{"resource server names a client twice", func(c *Config) { c.Clients[1].IntrospectTokensOf = []string{"x", "y", "x"} },
			"clients[1].introspect_tokens_of[2]", "named twice"},
		{"resource server names nobody", func(c *Config) { c.Clients[1].IntrospectTokensOf = []string{""} },
			"clients[1].introspect_tokens_of[0]", "empty"},
		{"public resource server", func(c *Config) {
			c.Clients[1].AuthMethod, c.Clients[1].SecretFile, c.Clients[1].IntrospectTokensOf = "none", "", []string{"x"}
		}, "clients[1].introspect_tokens_of", "not auth_method none"},
		{"metrics on an internal address", func(c *Config) { c.Metrics.Listen = "10.0.0.5:9090" }, "", ""},
		{"metrics without port", func(c *Config) { c.Metrics.Listen = "10.0.0.5" }, "metrics.listen", "host:port"},
		{"metrics on the public listener", func(c *Config) { c.Metrics.Listen = c.Listen }, "metrics.listen", "public listener"},
		{"metrics on the public listener's port, IPv4", func(c *Config) { c.Metrics.Listen = "0.0.0.0:8080" }, "metrics.listen", "public listener"},
		{"metrics on the public listener's port, IPv6", func(c *Config) { c.Metrics.Listen = "[::]:8080" }, "metrics.listen", "public listener"},
		{"metrics on the public listener's port, one address", func(c *Config) { c.Metrics.Listen = "10.0.0.5:8080" }, "metrics.listen", "public listener"},
		{"metrics on the public listener's port written 08080", func(c *Config) { c.Metrics.Listen = "0.0.0.0:08080" }, "metrics.listen", "public listener"},
		{"metrics on another port", func(c *Config) { c.Metrics.Listen = "0.0.0.0:9090" }, "", ""},
		{"metrics and listen on port 0", func(c *Config) { c.Listen, c.Metrics.Listen = "127.0.0.1:0", "127.0.0.1:0" }, "", ""},
		{"metrics on another address, same port", func(c *Config) { c.Listen, c.Metrics.Listen = "10.0.0.4:8080", "10.0.0.5:8080" }, "", ""},
		{"pprof on the public listener's port", func(c *Config) { c.Debug.PprofListen = "localhost:8080" }, "debug.pprof_listen", "public listener"},
		{"pprof on metrics' port", func(c *Config) { c.Metrics.Listen, c.Debug.PprofListen = ":9090", "[::1]:9090" }, "debug.pprof_listen", "metrics.listen"},
		{"pprof on loopback", func(c *Config) { c.Debug.PprofListen = "127.0.0.1:6060" }, "", ""},
		{"pprof on localhost", func(c *Config) { c.Debug.PprofListen = "localhost:6060" }, "", ""},
		{"pprof on IPv6 loopback", func(c *Config) { c.Debug.PprofListen = "[::1]:6060" }, "", ""},
		{"pprof on every interface", func(c *Config) { c.Debug.PprofListen = ":6060" }, "debug.pprof_listen", "loopback"},
		{"pprof on a public address", func(c *Config) { c.Debug.PprofListen = "192.0.2.1:6060" }, "debug.pprof_listen", "loopback"},
		{"pprof without port", func(c *Config) { c.Debug.PprofListen = "127.0.0.1" }, "debug.pprof_listen", "host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			tc.change(&c)
			err := c.Validate()
			var got []string
			if err != nil {
				got = fields(t, err)
			}
			var want []string
			if tc.field != "" {
				want = []string{tc.field}
			}
			// A change may cause follow-on problems; the first must be the
			// one under test, with its message.
			if len(got) == 0 && len(want) == 0 {
				return
			}
			if len(got) == 0 || len(want) == 0 || got[0] != want[0] || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Validate() = %v\nwant field %q with %q", err, tc.field, tc.msg)
			}
		})
	}
}

func TestClientSecretAndToStore(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	short := filepath.Join(dir, "short")
	secret := strings.Repeat("s3cr3t-", 6)
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, want string
	}{
		{good, ""},
		{short, "shorter than 32"},
		{filepath.Join(dir, "missing"), "no such file"},
		{"", "no secret_file"},
	} {
		got, err := ClientSecret(Client{ID: "tax", SecretFile: tc.file})
		switch {
		case tc.want == "" && (err != nil || string(got) != secret):
			t.Errorf("%s: %q, %v", tc.file, got, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.file, err, tc.want)
		}
	}

	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	basic := Client{ID: "tax", Name: "Tax", AuthMethod: "client_secret_basic", SecretFile: good,
		RedirectURIs: []string{"https://tax.example/cb"}, AllowedLevels: []string{"high"}, Claims: []string{"name"}, SectorID: "gov", RequirePAR: true}
	sc, err := basic.ToStore(now)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	if string(sc.SecretHash) != string(sum[:]) || sc.Source != "config" || !sc.CreatedAt.Equal(now) ||
		sc.ID != "tax" || sc.Name != "Tax" || sc.SectorID != "gov" || !sc.RequirePAR || sc.JWKS != nil ||
		!slices.Equal(sc.RedirectURIs, basic.RedirectURIs) || !slices.Equal(sc.AllowedLevels, basic.AllowedLevels) || !slices.Equal(sc.Claims, basic.Claims) {
		t.Errorf("ToStore: %+v", sc)
	}
	sc.RedirectURIs[0] = "changed"
	if basic.RedirectURIs[0] == "changed" {
		t.Error("ToStore shares slices with the config")
	}

	pk := Client{ID: "bank", AuthMethod: "private_key_jwt", JWKS: "{\n  \"keys\": []\n}", RedirectURIs: []string{"https://bank.example/cb"},
		LegacyEndpointAudience: true, DPoPBoundAccessTokens: true}
	sc, err = pk.ToStore(now)
	if err != nil || string(sc.JWKS) != `{"keys":[]}` || sc.SecretHash != nil || !sc.LegacyEndpointAudience || !sc.DPoPBoundAccessTokens {
		t.Errorf("private_key_jwt ToStore: %+v, %v", sc, err)
	}
	short2 := basic
	short2.SecretFile = short
	if _, err := short2.ToStore(now); err == nil {
		t.Error("ToStore accepted a short secret")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullYAML))
	f.Add([]byte("version: 1\nissuer: http://localhost:8080\n"))
	f.Add([]byte("version: 1\nclients:\n  - id: a\n    jwks: {keys: [{kty: EC}]}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, nil)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		// Whatever parses is valid and stays valid.
		if c.Version != Version || c.Validate() != nil {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
	})
}

// TestExampleFile keeps varde.example.yaml in the repository root valid.
func TestExampleFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "varde.example.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Clients) != 4 || c.Issuer != "https://id.example.no" {
		t.Errorf("example: %+v", c)
	}
}

// TestDPoPNonces: oidc.dpop_nonces is on by default and read from the
// file or from VARDE_OIDC_DPOP_NONCES, the environment winning; an
// environment value that is not true or false is an error.
func TestDPoPNonces(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       bool
	}{
		{"on by default", head, nil, true},
		{"off in the file", head + "oidc:\n  dpop_nonces: false\n", nil, false},
		{"on in the file", head + "oidc:\n  dpop_nonces: true\n", nil, true},
		{"off from env", head, map[string]string{EnvOIDCDPoPNonces: "false"}, false},
		{"env over file", head + "oidc:\n  dpop_nonces: false\n", map[string]string{EnvOIDCDPoPNonces: "true"}, true},
		{"env 0", head, map[string]string{EnvOIDCDPoPNonces: "0"}, false},
		{"empty env leaves the file's", head + "oidc:\n  dpop_nonces: false\n", map[string]string{EnvOIDCDPoPNonces: ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.OIDC.DPoPNonces == nil || *c.OIDC.DPoPNonces != tc.want {
				t.Errorf("dpop_nonces = %v, want %v", c.OIDC.DPoPNonces, tc.want)
			}
		})
	}
	// A wrong value is reported with the file's problems, all at once.
	_, err := Parse([]byte(head+"listen: nowhere\n"), env(map[string]string{EnvOIDCDPoPNonces: "maybe"}))
	for _, want := range []string{`VARDE_OIDC_DPOP_NONCES: "maybe" is not true or false`, "listen:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := Parse([]byte(head+"oidc:\n  dpop_nonces: sometimes\n"), nil); err == nil || !strings.Contains(err.Error(), "cannot unmarshal") {
		t.Errorf("dpop_nonces: sometimes accepted: %v", err)
	}
}

// TestLogAccess: log.access is off by default and read from the file or
// from VARDE_LOG_ACCESS, the environment winning; a value that is not
// true or false is an error, from either.
func TestLogAccess(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       bool
	}{
		{"off by default", head, nil, false},
		{"on in the file", head + "log:\n  access: true\n", nil, true},
		{"on from env", head, map[string]string{EnvLogAccess: "true"}, true},
		{"env over file", head + "log:\n  access: true\n", map[string]string{EnvLogAccess: "false"}, false},
		{"empty env leaves the file's", head + "log:\n  access: true\n", map[string]string{EnvLogAccess: ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Log.AccessAtInfo(); got != tc.want {
				t.Errorf("log.access = %v, want %v", got, tc.want)
			}
		})
	}
	_, err := Parse([]byte(head+"listen: nowhere\n"), env(map[string]string{EnvLogAccess: "sometimes"}))
	for _, want := range []string{`VARDE_LOG_ACCESS: "sometimes" is not true or false`, "listen:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := Parse([]byte(head+"log:\n  access: sometimes\n"), nil); err == nil || !strings.Contains(err.Error(), "cannot unmarshal") {
		t.Errorf("log.access: sometimes accepted: %v", err)
	}
}

// TestPprofListen: debug.pprof_listen is off by default and read from
// the file or from VARDE_DEBUG_PPROF_LISTEN, the environment winning.
func TestPprofListen(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"off by default", head, nil, ""},
		{"from file", head + "debug:\n  pprof_listen: 127.0.0.1:6060\n", nil, "127.0.0.1:6060"},
		{"from env", head, map[string]string{EnvPprofListen: "localhost:6061"}, "localhost:6061"},
		{"env over file", head + "debug:\n  pprof_listen: 127.0.0.1:6060\n", map[string]string{EnvPprofListen: "[::1]:7070"}, "[::1]:7070"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Debug.PprofListen != tc.want {
				t.Errorf("pprof_listen = %q, want %q", c.Debug.PprofListen, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(head+"debug:\n  pprof_listen: 0.0.0.0:6060\n"), nil); err == nil || !strings.Contains(err.Error(), "debug.pprof_listen") {
		t.Errorf("pprof on 0.0.0.0 accepted: %v", err)
	}
}

func TestServerGCPercent(t *testing.T) {
	if pct, ok := ServerGCPercent(env(nil)); !ok || pct != DefaultServerGCPercent {
		t.Errorf("GOGC unset: %d, %v; want %d, true", pct, ok, DefaultServerGCPercent)
	}
	if _, ok := ServerGCPercent(env(map[string]string{"GOGC": "100"})); ok {
		t.Error("GOGC=100 set: the operator's choice must stay")
	}
}

// TestLoadEnviron: a VARDE_* variable that is not a setting stops the
// load, named, with the settings listed and the file's own problems
// reported alongside; known ones override the file as with Load, and
// other variables are no business of Varde's.
func TestLoadEnviron(t *testing.T) {
	path := filepath.Join(t.TempDir(), "varde.yaml")
	if err := os.WriteFile(path, []byte(fullYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := func(vars ...string) func() []string { return func() []string { return vars } }
	c, err := LoadEnviron(path, environ("HOME=/root", EnvNode+"=n2", EnvStoreFlowState+"=store", EnvScreenshots+"=/tmp/shots", "VARDE_X"))
	if err == nil || !strings.Contains(err.Error(), "VARDE_X: no such setting") {
		t.Errorf("a VARDE_* name without a value: %v, want it refused", err)
	}
	c, err = LoadEnviron(path, environ("HOME=/root", EnvNode+"=n2", EnvNode+"=n3", EnvStoreFlowState+"=store", EnvScreenshots+"=/tmp/shots"))
	if err != nil || c.Node != "n2" || c.Store.FlowState != "store" {
		t.Fatalf("known variables: node %q, flow state %q, %v", c.Node, c.Store.FlowState, err)
	}
	_, err = LoadEnviron(path, environ("VARDE_SIGNING_KEY=/run/key.pem", "VARDE_STORE_DNS=/data/varde.db", EnvListen+"=nowhere"))
	if err == nil {
		t.Fatal("unknown VARDE_* variables accepted")
	}
	for _, want := range []string{
		"environment: VARDE_SIGNING_KEY, VARDE_STORE_DNS: no such setting",
		strings.Join(EnvNames(), ", "),
		"listen:", // the file's problems, with the rest
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, name := range []string{EnvSigningKeyFile, EnvStoreFlowState, EnvPprofListen, EnvOIDCDPoPNonces} {
		if !slices.Contains(EnvNames(), name) {
			t.Errorf("EnvNames lacks %s", name)
		}
	}
}

// TestEnvNamesDocumented: varde.example.yaml lists every variable that
// overrides a setting, and README.md names them.
func TestEnvNamesDocumented(t *testing.T) {
	for _, file := range []string{"varde.example.yaml", "README.md"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range EnvNames() {
			if !strings.Contains(string(raw), name) {
				t.Errorf("%s does not mention %s", file, name)
			}
		}
	}
}

// TestSQLiteDSNNotPostgres: a PostgreSQL connection string given as the
// DSN of the default sqlite driver is refused, naming the driver to set
// and not the string, which may hold a password: it would otherwise be
// logged at start, and taken for a file name. So is a DSN with URI
// parameters, which may hold a key, without showing them.
func TestSQLiteDSNNotPostgres(t *testing.T) {
	for _, dsn := range []string{
		"postgres://varde:s3cret@db.internal:5432/varde?sslmode=verify-full",
		"postgresql://varde:s3cret@db.internal/varde",
		"host=db.internal user=varde password=s3cret dbname=varde",
		"password=s3cret host=db.internal",
	} {
		c := validBase(t)
		c.Store.DSN = dsn
		err := c.Validate()
		if err == nil {
			t.Errorf("Validate() with sqlite and %q = nil", dsn)
			continue
		}
		if got := fields(t, err); len(got) != 1 || got[0] != "store.dsn" || !strings.Contains(err.Error(), "store.driver: postgres") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate() with sqlite and %q = %v", dsn, err)
		}
	}
	for _, dsn := range []string{
		"file:varde.db?_pragma=key('s3cret')",
		"varde.db#s3cret",
	} {
		c := validBase(t)
		c.Store.DSN = dsn
		err := c.Validate()
		if got := fields(t, err); len(got) != 1 || got[0] != "store.dsn" || !strings.Contains(err.Error(), "path") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate() with sqlite and %q = %v", dsn, err)
		}
	}
	for _, dsn := range []string{"/var/lib/varde/varde.db", "varde.db", "./data/host=a.db"} {
		c := validBase(t)
		c.Store.DSN = dsn
		if err := c.Validate(); err != nil {
			t.Errorf("Validate() with sqlite and %q = %v", dsn, err)
		}
	}
}

// TestExampleSupport: the help desk the example file shows, commented
// out, loads and validates as written once its comment marks are taken
// away.
func TestExampleSupport(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "varde.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "# support:") {
			in = true
		}
		if in && !strings.HasPrefix(line, "#") {
			in = false
		}
		if in {
			line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		}
		out = append(out, line)
	}
	path := filepath.Join(t.TempDir(), "varde.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Support.URL == "" || c.Support.Phone == "" || len(c.Support.Hours) != 3 {
		t.Errorf("support = %+v", c.Support)
	}
}

// TestConfigFileWithDSNPasswordIsSecret: a configuration file whose
// store.dsn holds a password is checked as a secret file is: one that
// other users can read or write, or its group can write, is refused,
// naming the file, its mode and how to fix it, along with the other
// problems; owner-only and group-readable are accepted, and so is any
// mode for a file whose DSN holds no password.
func TestConfigFileWithDSNPasswordIsSecret(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, dsn string
		mode      os.FileMode
		says      string
	}{
		{"URL password, world-readable", "postgres://varde:s3cret@db.internal/varde", 0o644, "other users can read or write it"},
		{"key=value password, world-readable", "host=db.internal user=varde password=s3cret dbname=varde", 0o604, "other users can read or write it"},
		{"URL password, group-writable", "postgres://varde:s3cret@db.internal/varde", 0o660, "its group can write it"},
		{"URL password, group-readable", "postgres://varde:s3cret@db.internal/varde", 0o640, ""},
		{"URL password, owner only", "postgres://varde:s3cret@db.internal/varde", 0o600, ""},
		{"no password, world-readable", "postgres://varde@db.internal/varde", 0o644, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "varde.yaml")
			body := fmt.Sprintf("version: 1\nissuer: https://id.example.no\nnode: n1\nkeys: {signing_key_file: /etc/varde/key.pem}\n"+
				"store: {driver: postgres, dsn: %q}\n", tc.dsn)
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if tc.says == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			want := fmt.Sprintf("store.dsn holds a password, and its file: %s has mode %04o: %s", path, tc.mode, tc.says)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600 "+path) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Load: %v, want it to say %q", err, want)
			}
		})
	}
}

// TestPagesTimeZone: pages.time_zone is UTC by default, read from the
// file or from VARDE_PAGES_TIME_ZONE, the environment winning, and a
// name that is no zone is refused, naming the setting.
func TestPagesTimeZone(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"UTC by default", head, nil, "UTC"},
		{"from file", head + "pages:\n  time_zone: Europe/Oslo\n", nil, "Europe/Oslo"},
		{"from env", head, map[string]string{EnvPagesTimeZone: "Europe/Copenhagen"}, "Europe/Copenhagen"},
		{"env over file", head + "pages:\n  time_zone: Europe/Oslo\n", map[string]string{EnvPagesTimeZone: "Europe/Copenhagen"}, "Europe/Copenhagen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Pages.Location().String(); got != tc.want {
				t.Errorf("pages.time_zone = %q, want %q", got, tc.want)
			}
		})
	}
	for _, zone := range []string{"Europe/Olso", "Local", "local", "CET+1", "../../etc/passwd"} {
		_, err := Parse([]byte(head+"pages:\n  time_zone: '"+zone+"'\n"), nil)
		if err == nil || !strings.Contains(err.Error(), "pages.time_zone") || !strings.Contains(err.Error(), zone) {
			t.Errorf("time_zone %q: %v, want refused naming pages.time_zone and the zone", zone, err)
		}
	}
}

// TestTrustedProxies: server.trusted_proxies is empty by default (no
// proxy's X-Forwarded-For is believed), read from the file or from
// VARDE_SERVER_TRUSTED_PROXIES, a comma-separated list, the
// environment winning; each entry that is not an address or network is
// refused, named by its index.
func TestTrustedProxies(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"none by default", head, nil, nil},
		{"from file", head + "server:\n  trusted_proxies: [127.0.0.1, '10.0.0.0/8', '::1']\n", nil, []string{"127.0.0.1", "10.0.0.0/8", "::1"}},
		{"from env", head, map[string]string{EnvServerTrustedProxies: "127.0.0.1, 2001:db8::/32,"}, []string{"127.0.0.1", "2001:db8::/32"}},
		{"env over file", head + "server:\n  trusted_proxies: [127.0.0.1]\n", map[string]string{EnvServerTrustedProxies: "10.0.0.5"}, []string{"10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Server.TrustedProxies, tc.want) {
				t.Errorf("trusted_proxies = %q, want %q", c.Server.TrustedProxies, tc.want)
			}
			if _, err := c.Server.TrustedPrefixes(); err != nil {
				t.Error(err)
			}
		})
	}
	for _, tc := range []struct{ list, field, want string }{
		{"[127.0.0.1, proxy.example.no]", "server.trusted_proxies[1]", "not an IP address or network"},
		{"['10.0.0.1/8']", "server.trusted_proxies[0]", "the network is 10.0.0.0/8"},
		{"['0.0.0.0/0']", "server.trusted_proxies[0]", "every address"},
		{"['']", "server.trusted_proxies[0]", "empty"},
	} {
		_, err := Parse([]byte(head+"server:\n  trusted_proxies: "+tc.list+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s refused saying %q", tc.list, err, tc.field, tc.want)
		}
	}
	// From the environment, a bad entry is named by its index too.
	_, err := Parse([]byte(head), env(map[string]string{EnvServerTrustedProxies: "127.0.0.1,nginx"}))
	if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies[1]") || !strings.Contains(err.Error(), `"nginx"`) {
		t.Errorf("bad entry from env: %v", err)
	}
}

// TestRefreshReuseInterval: oidc.refresh_reuse_interval is 30s unless
// set, in the file or by VARDE_OIDC_REFRESH_REUSE_INTERVAL, the
// environment winning; 0 turns retries off; a negative interval, one
// over a minute or an environment value that is no duration is refused.
func TestRefreshReuseInterval(t *testing.T) {
	const head = "version: 1\nissuer: https://id.example.no\nkeys: {signing_key_file: /etc/varde/signing-key.pem}\n"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       time.Duration
	}{
		{"30s by default", head, nil, 30 * time.Second},
		{"set in the file", head + "oidc:\n  refresh_reuse_interval: 10s\n", nil, 10 * time.Second},
		{"off in the file", head + "oidc:\n  refresh_reuse_interval: 0s\n", nil, 0},
		{"a minute at most", head + "oidc:\n  refresh_reuse_interval: 1m\n", nil, time.Minute},
		{"from env", head, map[string]string{EnvOIDCRefreshReuseInterval: "45s"}, 45 * time.Second},
		{"env over file", head + "oidc:\n  refresh_reuse_interval: 10s\n", map[string]string{EnvOIDCRefreshReuseInterval: "0"}, 0},
		{"empty env leaves the file's", head + "oidc:\n  refresh_reuse_interval: 10s\n", map[string]string{EnvOIDCRefreshReuseInterval: ""}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.OIDC.RefreshReuseInterval == nil || *c.OIDC.RefreshReuseInterval != tc.want {
				t.Errorf("refresh_reuse_interval = %v, want %v", c.OIDC.RefreshReuseInterval, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"negative", head + "oidc:\n  refresh_reuse_interval: -1s\n", nil, "oidc.refresh_reuse_interval: -1s is negative"},
		{"over a minute", head + "oidc:\n  refresh_reuse_interval: 61s\n", nil, "oidc.refresh_reuse_interval: 1m1s is longer than 1m0s"},
		{"env over a minute", head, map[string]string{EnvOIDCRefreshReuseInterval: "2m"}, "oidc.refresh_reuse_interval: 2m0s is longer than 1m0s"},
		{"env no duration", head, map[string]string{EnvOIDCRefreshReuseInterval: "thirty"}, `VARDE_OIDC_REFRESH_REUSE_INTERVAL: "thirty" is not a duration such as 30s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v lacks %q", err, tc.want)
			}
		})
	}
	if !slices.Contains(EnvNames(), EnvOIDCRefreshReuseInterval) {
		t.Errorf("EnvNames() lacks %s", EnvOIDCRefreshReuseInterval)
	}
}
