package oidc

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	xoauth2 "golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// A node whose PostgreSQL server stops answers temporarily_unavailable
// (503, Retry-After, the request ID in the description) at the PAR and
// token endpoints, not server_error, and shows people the "cannot reach
// our records" page with 503; once the server runs again the same
// client's same requests succeed: the code was not spent.
func TestStoreUnavailableIs503(t *testing.T) {
	srv := pgtest.NewServer(t)
	db, err := sqlstore.OpenPostgres(context.Background(), srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := newHarnessOver(t, db)
	b := h.browser()
	verifier := xoauth2.GenerateVerifier()
	authURL, status, body := h.pushBank(bankForm("st", "n", verifier))
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	resp, _ := b.get(authURL)
	code := h.callback(resp, bankCB).Get("code")
	if code == "" {
		t.Fatal("no code")
	}
	tokenForm := func() url.Values {
		return h.bankAuth(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bankCB}, "code_verifier": {verifier}})
	}

	srv.Stop()
	unavailable := func(what string, status int, hdr http.Header, body map[string]any) {
		t.Helper()
		id := hdr.Get("X-Request-Id")
		desc, _ := body["error_description"].(string)
		if status != http.StatusServiceUnavailable || body["error"] != oauth2.CodeTemporarilyUnavailable || hdr.Get("Retry-After") != "30" ||
			id == "" || !strings.Contains(desc, id) {
			t.Errorf("%s with the store down: %d %v Retry-After %q, request %q; want 503 temporarily_unavailable, Retry-After 30, the request ID in the description",
				what, status, body, hdr.Get("Retry-After"), id)
		}
	}
	status, hdr, body := h.postForm(PathPAR, h.bankAuth(bankForm("st2", "n2", xoauth2.GenerateVerifier())), "")
	unavailable("PAR", status, hdr, body)
	status, hdr, body = h.postForm(PathToken, tokenForm(), "")
	unavailable("token", status, hdr, body)
	status, hdr, body = h.postForm(PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {taxCB}, "code_verifier": {verifier}}, taxID)
	unavailable("token, client_secret_basic", status, hdr, body)

	// A person at the authorization endpoint: the client cannot be read,
	// so nothing is redirected; the page says to try again.
	req, _ := http.NewRequest(http.MethodGet, h.issuer+PathAuthorize+"?"+taxQuery(nil).Encode(), nil)
	req.Header.Set("Accept-Language", "en")
	page, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := new(strings.Builder)
	_, _ = io.Copy(raw, page.Body)
	page.Body.Close()
	if page.StatusCode != http.StatusServiceUnavailable || page.Header.Get("Retry-After") == "" ||
		!strings.Contains(raw.String(), "reach our records") || !strings.Contains(raw.String(), page.Header.Get("X-Request-Id")) {
		t.Errorf("authorize with the store down: %d Retry-After %q, want 503 and the unavailable page with the request ID:\n%s",
			page.StatusCode, page.Header.Get("Retry-After"), raw)
	}
	for _, ep := range []string{"par", "token", "authorize"} {
		if n := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": ep, "error": oauth2.CodeTemporarilyUnavailable}); n < 1 {
			t.Errorf("%s: temporarily_unavailable counted %v times, want at least 1", ep, n)
		}
		if n := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": ep, "error": oauth2.CodeServerError}); n != 0 {
			t.Errorf("%s: server_error counted %v times, want 0", ep, n)
		}
	}

	srv.Start()
	// The client does as told: it tries again, once, and succeeds, since
	// the code was not spent. The connections the node held when the
	// server stopped do not fail it: a read on one runs again on
	// another, and a write sees that its session ended before it sends
	// anything, or runs again on a new connection if it sees it only in
	// its transaction.
	again := func(what string, want int, try func() (int, map[string]any)) map[string]any {
		t.Helper()
		status, body := try()
		if status != want {
			t.Fatalf("%s once the store is back: %d %v", what, status, body)
		}
		return body
	}
	body = again("token", http.StatusOK, func() (int, map[string]any) {
		status, _, body := h.postForm(PathToken, tokenForm(), "")
		return status, body
	})
	if body["id_token"] == nil {
		t.Errorf("token once the store is back: %v", body)
	}
	again("PAR", http.StatusCreated, func() (int, map[string]any) {
		_, status, body := h.pushBank(bankForm("st3", "n3", xoauth2.GenerateVerifier()))
		return status, body
	})
}
