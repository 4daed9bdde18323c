package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/config"
)

// TestWaitingHandlerUnderIssuerPath: a node whose issuer has a path
// (ADR 25) answers, while it waits for its store, /readyz 503 and
// /healthz 200 under that path, the OpenID endpoints an OAuth JSON
// temporarily_unavailable and its pages the page in the person's
// language, all 503 with Retry-After and never cached.
func TestWaitingHandlerUnderIssuerPath(t *testing.T) {
	cfg, err := config.Parse([]byte("version: 1\nissuer: http://localhost:8080/eid\n"+
		"store: {driver: postgres, dsn: 'postgres://db.example/varde'}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := WaitingHandler(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		path, lang string
		status     int
		body       string
		retry      bool
	}{
		{"/eid/healthz", "", http.StatusOK, "ok", false},
		{"/eid/readyz", "", http.StatusServiceUnavailable, "waiting for the database", true},
		{"/eid/token", "", http.StatusServiceUnavailable, `"error":"temporarily_unavailable"`, true},
		{"/eid/.well-known/openid-configuration", "", http.StatusServiceUnavailable, `"error":"temporarily_unavailable"`, true},
		{"/eid/account", "nb", http.StatusServiceUnavailable, "Vi får ikke tak i opplysningene våre akkurat nå", true},
		{"/eid/account", "en", http.StatusServiceUnavailable, "We cannot reach our records right now", true},
		{"/eid/account", "da", http.StatusServiceUnavailable, `<html lang="da">`, true},
		{"/account", "en", http.StatusServiceUnavailable, "We cannot reach our records right now", true},
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.lang != "" {
			req.Header.Set("Accept-Language", tc.lang)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(string(b), tc.body) || (res.Header.Get("Retry-After") != "") != tc.retry {
			t.Errorf("%s (%s): %d, Retry-After %q, %.200s; want %d with %q, Retry-After %v",
				tc.path, tc.lang, res.StatusCode, res.Header.Get("Retry-After"), b, tc.status, tc.body, tc.retry)
		}
		if tc.retry && res.Header.Get("Cache-Control") != "no-store" && tc.path != "/eid/readyz" {
			t.Errorf("%s: Cache-Control %q, want no-store", tc.path, res.Header.Get("Cache-Control"))
		}
	}
}
