package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// TestBlockedPersonIsRefusedEverywhere: a person logs in with a passkey
// at a running node; the help desk blocks them with varde persons block
// against the node's store; within a second their session no longer
// works, and a new passkey login and a login through an eID that
// proves their number are refused with the page saying the Varde ID is
// blocked (403): no code reaches the relying party. Once the block is
// lifted, both logins work again, as the same person.
func TestBlockedPersonIsRefusedEverywhere(t *testing.T) {
	ctx := context.Background()
	bank := demoWithBank(t, "Bank")
	d, issuer, cfg := bank.d, bank.issuer, bank.cfg
	hc, rp, person := bankWithPerson(t, issuer, bank.key)
	p, err := d.app.Store.GetPersonByWebAuthnID(ctx, person.Auth.Options.UserHandle)
	if err != nil {
		t.Fatal(err)
	}
	number := p.Identifiers[0]
	identifier := number.Scheme + ":" + number.Value

	jar, _ := cookiejar.New(nil)
	before, err := rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	account := func() int {
		t.Helper()
		res, err := browser.Get(issuer + "/account")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := account(); got != http.StatusOK {
		t.Fatalf("the account page in the person's session: %d", got)
	}

	out, err := runCmd(t, "persons", "block", "--config", cfg, "--reason", "phone stolen", "--by", "help desk", identifier)
	if err != nil {
		t.Fatalf("persons block: %v\n%s", err, out)
	}
	// The node drops what it keeps of the person and their session
	// within a second of another process's write (package sqlstore).
	waitFor(t, "the person's session to end at the node", 3*time.Second, func() bool { return account() != http.StatusOK })
	if got := userinfoStatus(t, hc, issuer, before.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("userinfo with the access token from before the block: %d, want 401", got)
	}

	blocked := func(what string, err error) {
		t.Helper()
		var step *loadgen.StepError
		if !errors.As(err, &step) || step.Status != http.StatusForbidden || step.Code != "no redirect" ||
			!containsAny(step.Message, "Your Varde ID is blocked", "Varde-ID-en din er sperret") {
			t.Errorf("%s of a blocked person: %v, want the blocked page (403), no redirect to the service", what, err)
		}
	}
	_, err = rp.Login(ctx, person, loadgen.LoginOptions{})
	blocked("a passkey login", err)
	_, err = rp.LoginWith(ctx, loadgen.Brokered{Provider: "bankid", Number: number.Value}, loadgen.LoginOptions{})
	blocked("a login through Demo BankID", err)
	refused := map[string]bool{}
	for _, e := range auditEvents(t, cfg, "authentication") {
		if e.Reason == "person_blocked" && e.PersonID == p.ID {
			refused[e.Provider] = true
		}
	}
	if !refused["passkey"] || !refused["bankid"] {
		t.Errorf("refused logins audited for %v, want passkey and bankid", refused)
	}

	out, err = runCmd(t, "persons", "unblock", "--config", cfg, "--reason", "identity checked at the counter", identifier)
	if err != nil {
		t.Fatalf("persons unblock: %v\n%s", err, out)
	}
	var after *loadgen.Result
	waitFor(t, "a passkey login to work again", 3*time.Second, func() bool {
		after, err = rp.Login(ctx, person, loadgen.LoginOptions{})
		return err == nil
	})
	brokered, err := rp.LoginWith(ctx, loadgen.Brokered{Provider: "bankid", Number: number.Value}, loadgen.LoginOptions{})
	if err != nil {
		t.Fatalf("a login through Demo BankID after the unblock: %v", err)
	}
	if after.Claims["sub"] != before.Claims["sub"] || brokered.Claims["sub"] != before.Claims["sub"] {
		t.Errorf("sub after the unblock: passkey %v, bankid %v; want %v", after.Claims["sub"], brokered.Claims["sub"], before.Claims["sub"])
	}
}

// bankDemo is a running demo node with a bank registered at it, which
// authenticates with key (private_key_jwt) and gets refresh tokens.
type bankDemo struct {
	d      *demoNode
	issuer string
	// cfg configures the operators' commands for the node's store,
	// kept in dir.
	cfg, dir string
	key      *ecdsa.PrivateKey
}

// demoWithBank starts a demo node and registers the bank, client
// "bank", under name.
func demoWithBank(t *testing.T, name string) bankDemo {
	t.Helper()
	b := bankDemo{dir: t.TempDir()}
	b.d, b.issuer = startDemoIn(t, b.dir, demoTuning{})
	b.cfg = demoAdminConfig(t, b.dir, b.issuer)
	var err error
	if b.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.key.PublicKey, KeyID: "bank-1", Algorithm: "ES256", Use: "sig"}}})
	if err := b.d.app.Store.PutClient(context.Background(), &store.Client{ID: "bank", Name: name, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs: []string{"https://bank.example/cb"}, RequirePAR: true, RefreshTokens: true, SectorID: "bank.example", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return b
}

// demoAdminConfig writes a configuration for the operators' commands
// that works on the store of the demo node kept in dir, and returns its
// path.
func demoAdminConfig(t *testing.T, dir, issuer string) string {
	t.Helper()
	cfg := filepath.Join(dir, "admin.yaml")
	body := "version: 1\nissuer: " + issuer + "\nstore:\n  dsn: " + filepath.Join(dir, "varde.db") +
		"\nkeys:\n  subject_salt_file: " + filepath.Join(dir, "subject-salt") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
