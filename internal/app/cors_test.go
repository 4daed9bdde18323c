package app_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// TestCORSAtTheNode: through the node's whole handler, the endpoints a
// browser-based client calls answer preflights and let any origin read
// them, keeping the security headers every answer carries; the pages
// and the endpoints that use the session cookie (authorization, logout,
// login, the passkey ceremonies, the account) name no origin and answer
// no preflight (ADR 16).
func TestCORSAtTheNode(t *testing.T) {
	n := startNode(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(t *testing.T, method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, n.issuer+path, nil)
		req.Header.Set("Origin", "https://spa.example")
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		req.Header.Set("Access-Control-Request-Headers", "dpop")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	fetched := []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks",
		"/par", "/token", "/revoke", "/userinfo"}
	for _, path := range fetched {
		t.Run("preflight "+path, func(t *testing.T) {
			resp := send(t, http.MethodOptions, path)
			want := map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Headers": "Authorization, DPoP, Content-Type",
				"X-Content-Type-Options":       "nosniff",
				"X-Frame-Options":              "DENY",
			}
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("status %d, want 204", resp.StatusCode)
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
		})
	}
	navigations := []struct{ method, path string }{
		{http.MethodGet, "/authorize?client_id=nobody"},
		{http.MethodPost, "/authorize"},
		{http.MethodGet, "/logout"},
		{http.MethodGet, "/login?req=unknown"},
		{http.MethodGet, "/passkey/login?req=unknown"},
		{http.MethodPost, "/passkey/login/begin"},
		{http.MethodGet, "/account"},
	}
	for _, nav := range navigations {
		t.Run(nav.method+" "+nav.path, func(t *testing.T) {
			resp := send(t, nav.method, nav.path)
			pre := send(t, http.MethodOptions, nav.path)
			if pre.StatusCode/100 == 2 {
				t.Errorf("preflight answered %d", pre.StatusCode)
			}
			for _, r := range []*http.Response{resp, pre} {
				for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
					if v := r.Header.Get(k); v != "" {
						t.Errorf("%s %s (%d): %s: %q", r.Request.Method, nav.path, r.StatusCode, k, v)
					}
				}
			}
		})
	}
}

// spaResult is what the page in testdata/spa could read of each call
// (see spa.js); a call the browser refused is Blocked.
type spaResult struct {
	Failure   string
	Discovery spaRead
	Token     spaRead
	DPoPFirst spaRead `json:"dpopFirst"`
	DPoPRetry spaRead `json:"dpopRetry"`
	Userinfo  spaRead
	Authorize spaRead
}

type spaRead struct {
	Blocked   string
	Status    int
	Body      map[string]any
	DPoPNonce string `json:"dpopNonce"`
	Challenge string
	RequestID string `json:"requestID"`
}

// TestCORSInBrowser: a single-page app served from one origin
// (http://127.0.0.1:port) calls a node on another (http://localhost:port)
// with fetch() in headless Chromium, and the browser lets it read the
// answers: discovery; the token endpoint's invalid_grant for a code it
// never got, by a simple POST and, preflighted, with a DPoP proof, after
// reading the nonce the node asked for (use_dpop_nonce, DPoP-Nonce);
// UserInfo's challenge to an unknown access token; and the X-Request-Id
// of an answer, to quote when asking why. The authorization
// endpoint stays closed to it: the browser refuses the read.
//
// It needs Chromium; without it the test is skipped, or fails when the
// CI environment variable is set.
func TestCORSInBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	n := startNode(t)
	page := httptest.NewServer(http.FileServer(http.Dir("testdata/spa")))
	t.Cleanup(page.Close)
	err := n.app.Store.PutClient(context.Background(), &store.Client{ID: "spa", Name: "Single-page app",
		AuthMethod: store.AuthNone, RedirectURIs: []string{page.URL + "/cb"}, Source: "test", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"issuer": {n.issuer}, "client_id": {"spa"}}
	err = browsertest.Do(ctx, chromedp.Navigate(page.URL+"/index.html?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS(`body[data-done]`)))
	if err != nil {
		t.Fatalf("open the page and wait for its calls: %v", err)
	}
	raw, err := chromedp.Run(ctx, browsertest.Settled(chromedp.Text(chromedp.CSS("#result"))))
	if err != nil {
		t.Fatal(err)
	}
	var got spaResult
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	t.Logf("the page read: %s", raw)
	if got.Failure != "" {
		t.Fatalf("the page failed: %s", got.Failure)
	}
	if d := got.Discovery; d.Status != http.StatusOK || d.Body["issuer"] != n.issuer {
		t.Errorf("discovery: %+v, want 200 and issuer %s", d, n.issuer)
	}
	if tok := got.Token; tok.Status != http.StatusBadRequest || tok.Body["error"] != "invalid_grant" || tok.RequestID == "" {
		t.Errorf("token request: %+v, want 400 invalid_grant and an X-Request-Id to read", tok)
	}
	if first := got.DPoPFirst; first.Status != http.StatusBadRequest || first.Body["error"] != "use_dpop_nonce" || first.DPoPNonce == "" {
		t.Errorf("token request with a proof without a nonce: %+v, want 400 use_dpop_nonce and a DPoP-Nonce to read", first)
	}
	if retry := got.DPoPRetry; retry.Status != http.StatusBadRequest || retry.Body["error"] != "invalid_grant" {
		t.Errorf("token request with the nonce: %+v, want 400 invalid_grant", retry)
	}
	if ui := got.Userinfo; ui.Status != http.StatusUnauthorized || !strings.Contains(ui.Challenge, "invalid_token") {
		t.Errorf("userinfo: %+v, want 401 with an invalid_token challenge to read", ui)
	}
	if a := got.Authorize; a.Blocked != "TypeError" {
		t.Errorf("authorize: %+v, want the browser to refuse the read (TypeError)", a)
	}
}

// TestStrictTransport: a node whose issuer is https tells browsers to
// come back over HTTPS only (RFC 6797), though TLS ends in front of it;
// one on http://localhost says nothing of the kind (§7.2).
func TestStrictTransport(t *testing.T) {
	for _, tt := range []struct{ issuer, want string }{
		{"http://localhost:8080", ""},
		{"https://localhost:8443", "max-age=31536000"},
	} {
		t.Run(tt.issuer, func(t *testing.T) {
			env := map[string]string{"VARDE_ISSUER": tt.issuer, "VARDE_NODE": "test",
				config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db")}
			cfg, err := config.Load("", func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			salt := make([]byte, 32)
			_, _ = rand.Read(salt)
			a, err := app.New(context.Background(), cfg, app.Options{SubjectSalt: salt})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			for _, path := range []string{"/.well-known/openid-configuration", "/login", "/no-such-page"} {
				w := httptest.NewRecorder()
				a.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.issuer+path, nil))
				if got := w.Header().Get("Strict-Transport-Security"); got != tt.want {
					t.Errorf("GET %s: Strict-Transport-Security %q, want %q", path, got, tt.want)
				}
			}
		})
	}
}
