package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// runningNode runs `varde serve` on localhost with a configuration file
// over a fresh SQLite file, until the test ends, and returns the file's
// path (for the admin commands) and the node's issuer. extra is appended
// to the file.
func runningNode(t *testing.T, extra string) (cfgPath, issuer string) {
	t.Helper()
	cfgPath, issuer = writeServeConfig(t, "passkey:\n  synthetic_enrolment: true\nlog:\n  level: warn\n"+extra)
	stop := serveConfig(t, cfgPath, issuer)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return cfgPath, issuer
}

// TestClientsRemoveRevokesTokens: removing a client revokes its grants,
// so a refresh token it holds is refused and an access token it handed
// on no longer opens userinfo, even after a client with the same ID is
// added again; the removal is in the audit log.
func TestClientsRemoveRevokesTokens(t *testing.T) {
	ctx := context.Background()
	cfg, issuer := runningNode(t, "")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bank-1", Algorithm: "ES256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "bank.jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	add := []string{"clients", "add", "--config", cfg, "--id", "bank", "--name", "Bank", "--jwks-file", jwksFile,
		"--redirect-uri", "https://bank.example/cb", "--require-par", "--refresh-tokens"}
	if out, err := runCmd(t, add...); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	hc, rp, person := bankWithPerson(t, issuer, key)
	login, err := rp.Login(ctx, person, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}

	bank := &keyClient{issuer: issuer, id: "bank", kid: "bank-1", key: key, http: hc}
	refresh := func(token string) (int, map[string]any) { t.Helper(); return bank.refresh(t, issuer, token) }
	userinfo := func(token string) int { t.Helper(); return userinfoStatus(t, hc, issuer, token) }
	status, body := refresh(login.Token.RefreshToken)
	next, _ := body["refresh_token"].(string)
	if status != http.StatusOK || next == "" || userinfo(login.AccessToken) != http.StatusOK {
		t.Fatalf("before removal: refresh %d %v, want 200 with a new refresh token; userinfo must answer", status, body)
	}

	out, err := runCmd(t, "clients", "remove", "--config", cfg, "--id", "bank")
	if err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if !strings.Contains(out, "grants revoked: 1 ") {
		t.Errorf("remove says %q, want it to count the one grant it revoked", out)
	}
	if out, err := runCmd(t, add...); err != nil {
		t.Fatalf("add again: %v\n%s", err, out)
	}
	if status, body := refresh(next); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh token of a removed client, added again: %d %v, want 400 invalid_grant", status, body)
	}
	for _, tok := range []string{login.AccessToken, body["access_token"].(string)} {
		if got := userinfo(tok); got != http.StatusUnauthorized {
			t.Errorf("userinfo with an access token of a removed client: %d, want 401", got)
		}
	}
	if !audited(t, cfg, "client_removed", "bank", "cli") {
		t.Error("the removal is not in the audit log")
	}
}

// bankWithPerson is relying party "bank" (https://bank.example/cb,
// private_key_jwt with key "bank-1", registered already) at the node at
// issuer, and a synthetic person enrolled there with one device-bound
// passkey; hc is the client both use.
func bankWithPerson(t *testing.T, issuer string, key *ecdsa.PrivateKey) (hc *http.Client, rp *loadgen.RP, person *loadgen.Person) {
	t.Helper()
	ctx := context.Background()
	hc = loadgen.NewHTTPClient(2)
	rp = &loadgen.RP{Issuer: issuer, ClientID: "bank", RedirectURI: "https://bank.example/cb", Key: key, KeyID: "bank-1", HTTP: hc}
	if err := rp.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	person = loadgen.NewDevice(issuer, false)
	if err := loadgen.Enrol(ctx, hc, issuer, person, "Kari", "Nordmann"); err != nil {
		t.Fatal(err)
	}
	return hc, rp, person
}

// audited reports whether the audit log of the node configured in cfg
// holds an event of type typ for client with details via.
func audited(t *testing.T, cfg, typ, client, via string) bool {
	t.Helper()
	for _, e := range auditEvents(t, cfg, typ) {
		if e.ClientID == client && e.Details["via"] == via {
			return true
		}
	}
	return false
}

// auditEvents returns the events of type typ in the audit log of the
// node configured in cfg, oldest first.
func auditEvents(t *testing.T, cfg, typ string) []*store.AuditEvent {
	t.Helper()
	st := storeOf(t, cfg)
	defer st.Close()
	events, err := st.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.AuditEvent
	for _, e := range events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// freeAddr is a free loopback address for a node to listen on, and the
// issuer on localhost that goes with it.
func freeAddr(t *testing.T) (addr, issuer string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close() // serve listens on it again
	return addr, "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]
}

// serveConfig runs `varde serve --config cfgPath` until the returned
// stop is called, and returns once the node at issuer answers /healthz;
// stop returns serve's error, with the node's log.
func serveConfig(t *testing.T, cfgPath, issuer string) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, []string{"--config", cfgPath}, &logs) }()
	waitFor(t, "the node to serve", 10*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve: %v\n%s", err, logs.String())
		default:
		}
		res, err := http.Get(issuer + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("serve: %w\n%s", err, logs.String())
		}
		return nil
	}
}

// keyClient is a relying party that authenticates with private_key_jwt
// (RFC 7523), its assertions made out to issuer.
type keyClient struct {
	issuer, id, kid string
	key             *ecdsa.PrivateKey
	http            *http.Client
}

// token posts form, with the client's authentication added, to the token
// endpoint at base (the issuer, or one node behind it) and returns the
// status and the decoded answer.
func (c *keyClient) token(t *testing.T, base string, form url.Values) (int, map[string]any) {
	t.Helper()
	return c.tokenWith(t, base, form, c.assertion(t))
}

// assertion is a fresh client assertion (RFC 7523 §3).
func (c *keyClient) assertion(t *testing.T) string {
	t.Helper()
	now := time.Now()
	assertion, err := jwt.Signed(mustSigner(t, c.key, c.kid)).Claims(jwt.Claims{
		Issuer: c.id, Subject: c.id, Audience: jwt.Audience{c.issuer}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return assertion
}

// tokenWith is token with the client assertion given.
func (c *keyClient) tokenWith(t *testing.T, base string, form url.Values, assertion string) (int, map[string]any) {
	t.Helper()
	form = maps.Clone(form)
	form.Set("client_id", c.id)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	res, err := c.http.PostForm(base+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	return res.StatusCode, body
}

// refresh redeems a refresh token at base.
func (c *keyClient) refresh(t *testing.T, base, token string) (int, map[string]any) {
	t.Helper()
	return c.token(t, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// userinfoStatus is the status of GET /userinfo at base with an access
// token.
func userinfoStatus(t *testing.T, hc *http.Client, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func mustSigner(t *testing.T, key *ecdsa.PrivateKey, kid string) jose.Signer {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSecondServeRefused: `varde serve` on a database another node
// serves fails at once with exit status 1, naming the holder; the admin
// commands still work on that database meanwhile.
func TestSecondServeRefused(t *testing.T) {
	cfg, _ := runningNode(t, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), childEnvMarker+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil ||
		!strings.Contains(stderr.String(), fmt.Sprintf("database in use by another node: process %d holds", os.Getpid())) {
		t.Errorf("second serve: %v, want exit status 1 at once, naming this process:\n%s", err, stderr.String())
	}
	if out, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "shop", "--name", "Shop", "--auth-method", "none",
		"--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Errorf("clients add while the node runs: %v\n%s", err, out)
	}
}
