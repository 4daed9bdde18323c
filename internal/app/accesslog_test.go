package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/config"
)

// TestAccessLogSetting: with log.access, a node logging at info writes
// one access line per request, without its query or body; without it,
// the line is at debug and a node at info writes none.
func TestAccessLogSetting(t *testing.T) {
	for _, tc := range []struct {
		access string
		lines  int
	}{{"false", 0}, {"true", 1}} {
		t.Run("access="+tc.access, func(t *testing.T) {
			a, logs := loggingNode(t, tc.access)
			req := httptest.NewRequest(http.MethodPost, "/token?code=secret-code", strings.NewReader("grant_type=authorization_code&code=secret-body"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			a.Handler().ServeHTTP(httptest.NewRecorder(), req)
			out := logs()
			if n := strings.Count(out, `"msg":"http"`); n != tc.lines {
				t.Errorf("%d access lines at info, want %d:\n%s", n, tc.lines, out)
			}
			if tc.lines > 0 && !strings.Contains(out, `"path":"/token"`) {
				t.Errorf("access line lacks the path:\n%s", out)
			}
			if strings.Contains(out, "secret-") {
				t.Errorf("the log has the query or the body:\n%s", out)
			}
		})
	}
}

// TestAccessLogWithoutNationalIDs: a path that holds what looks like a
// national identity number, which anyone can request, is not written to
// the access log: the line says the path was redacted.
func TestAccessLogWithoutNationalIDs(t *testing.T) {
	a, logs := loggingNode(t, "true")
	for _, p := range []string{"/account/17058512345", "/lookup/170585-1234"} {
		a.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	a.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	out := logs()
	if strings.Contains(out, "17058512345") || strings.Contains(out, "170585-1234") {
		t.Errorf("the access log has a national identity number:\n%s", out)
	}
	if n := strings.Count(out, `"path":"(redacted)"`); n != 2 || !strings.Contains(out, `"path":"/healthz"`) {
		t.Errorf("want two paths redacted and /healthz as it is:\n%s", out)
	}
}

// loggingNode is a node whose log.access is access, logging at info,
// and a function that returns what it logged since it started.
func loggingNode(t *testing.T, access string) (*App, func() string) {
	t.Helper()
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
		"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db"), config.EnvLogAccess: access}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a, err := New(context.Background(), cfg, Options{SubjectSalt: make([]byte, 32), Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	started := len(logs.String())
	return a, func() string { return logs.String()[started:] }
}
