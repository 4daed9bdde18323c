package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/loadgen"
)

// TestRestartEndsFlowsKeepsPeople restarts a node on the same SQLite
// file, its login flow state in memory (ADR 7): what was in flight
// fails closed with a plain answer, what is durable (persons, passkeys,
// clients, pairwise subjects) is all there, and a client assertion made
// before the restart cannot be replayed into the new process.
func TestRestartEndsFlowsKeepsPeople(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "varde.db")
	salt := []byte("0123456789abcdef0123456789abcdef")
	n, stop := startNodeAt(t, "127.0.0.1:0", dsn, salt)
	addr := strings.TrimPrefix(n.issuer, "http://localhost")
	bank := n.addRP(t, "bank", "bank.example")
	person := n.enrol(t, false)
	before, err := bank.Login(ctx, person, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// In flight at the restart: a pushed request and an assertion the
	// client made (and may have used) a moment before.
	assertion := func(issued time.Time) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: bank.Key, KeyID: bank.KeyID}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: "bank", Subject: "bank", Audience: jwt.Audience{n.issuer}, ID: issued.String(),
			IssuedAt: jwt.NewNumericDate(issued), Expiry: jwt.NewNumericDate(issued.Add(time.Minute)),
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	par := func(n *node, assertion string) (*http.Response, map[string]any) {
		form := url.Values{
			"response_type": {"code"}, "client_id": {"bank"}, "redirect_uri": {bank.RedirectURI},
			"scope": {"openid"}, "state": {"s"}, "nonce": {"n"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion},
		}
		res, err := n.http.PostForm(n.issuer+"/par", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res, body
	}
	res, body := par(n, assertion(time.Now()))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PAR before the restart: %d %v", res.StatusCode, body)
	}
	requestURI, _ := body["request_uri"].(string)
	old := assertion(time.Now().Add(-2 * time.Second))

	stop()
	n2, _ := startNodeAt(t, "127.0.0.1"+addr, dsn, salt)
	if n2.issuer != n.issuer {
		t.Fatalf("restarted at %s, want %s", n2.issuer, n.issuer)
	}

	// The pushed request went with the process: the person is told the
	// login expired, in words, and is not sent anywhere.
	res, err = n2.http.Get(n2.issuer + "/authorize?client_id=bank&request_uri=" + url.QueryEscape(requestURI))
	if err != nil {
		t.Fatal(err)
	}
	page := readAll(res)
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.Contains(page, "<html") {
		t.Errorf("old request_uri after the restart: %d, Location %q; want 400 with a page", res.StatusCode, res.Header.Get("Location"))
	}

	// The old assertion cannot be checked against jti values the old
	// process saw, so it is refused; a fresh one is accepted.
	res, body = par(n2, old)
	if res.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_client" ||
		!strings.Contains(body["error_description"].(string), "restarted") {
		t.Errorf("assertion from before the restart: %d %v, want 401 invalid_client", res.StatusCode, body)
	}
	if res, body = par(n2, assertion(time.Now())); res.StatusCode != http.StatusCreated {
		t.Errorf("fresh assertion after the restart: %d %v", res.StatusCode, body)
	}

	// The person, their passkey and their subject at the bank outlive it.
	bank.HTTP = n2.http
	if err := bank.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := bank.Login(ctx, person, loadgen.LoginOptions{})
	if err != nil {
		t.Fatalf("login after the restart: %v", err)
	}
	if after.IDToken.Subject != before.IDToken.Subject {
		t.Errorf("sub changed across the restart: %s, then %s", before.IDToken.Subject, after.IDToken.Subject)
	}
}
