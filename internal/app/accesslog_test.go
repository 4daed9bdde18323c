package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/app"
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
			env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
				"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db"), config.EnvLogAccess: tc.access}
			cfg, err := config.Load("", func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			a, err := app.New(context.Background(), cfg, app.Options{SubjectSalt: make([]byte, 32), Log: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			logs.Reset()
			req := httptest.NewRequest(http.MethodPost, "/token?code=secret-code", strings.NewReader("grant_type=authorization_code&code=secret-body"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			a.Handler().ServeHTTP(httptest.NewRecorder(), req)
			out := logs.String()
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
