package app

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/config"
)

// TestPprofListener: profiles are served on their own loopback listener
// when debug.pprof_listen is set, never on the node's public handler, and
// not at all when it is unset.
func TestPprofListener(t *testing.T) {
	for _, tc := range []struct {
		name, listen string
		want         bool
	}{
		{"off", "", false},
		{"on", "127.0.0.1:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				config.EnvIssuer:      "http://localhost:8080",
				config.EnvNode:        "test",
				config.EnvStoreDSN:    filepath.Join(t.TempDir(), "varde.db"),
				config.EnvPprofListen: tc.listen,
			}
			cfg, err := config.Load("", func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			salt := make([]byte, 32)
			_, _ = rand.Read(salt)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, err := New(ctx, cfg, Options{SubjectSalt: salt})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()

			// The public handler never serves profiles.
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("public handler: /debug/pprof/cmdline answered %d, want 404", rec.Code)
			}

			addr := a.servePprof(ctx)
			if (addr != "") != tc.want {
				t.Fatalf("servePprof = %q, want a listener: %v", addr, tc.want)
			}
			if addr == "" {
				return
			}
			res, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), ".test") {
				t.Errorf("cmdline: %d %q", res.StatusCode, body)
			}
		})
	}
}
