package httpx

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	var seenID string
	var readErr error
	h := WithRequestID(AccessLog(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SecurityHeaders(LimitBody(8, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seenID = RequestID(r.Context())
			_, readErr = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusAccepted)
		})))))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/token?code=secret-code", strings.NewReader("0123456789")))
	if seenID == "" || w.Header().Get("X-Request-Id") != seenID {
		t.Errorf("request id %q, header %q", seenID, w.Header().Get("X-Request-Id"))
	}
	if readErr == nil {
		t.Error("a body over the limit was read without error")
	}
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || w.Header().Get("Referrer-Policy") != "strict-origin" {
		t.Errorf("security headers %v", w.Header())
	}
	line := logs.String()
	if !strings.Contains(line, "status=202") || !strings.Contains(line, "path=/token") || strings.Contains(line, "secret-code") {
		t.Errorf("access log %q: want status and path, never the query", line)
	}
}

// TestAccessLogAt: AccessLogAt writes its line at the level given, so a
// node logging at info has one per request when asked to; AccessLog's
// is at debug, and a logger at info drops it. Neither has the query,
// which may hold a code or a token, nor the body.
func TestAccessLogAt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mw    func(*slog.Logger, http.Handler) http.Handler
		lines int
	}{
		{"debug", AccessLog, 0},
		{"info", func(l *slog.Logger, h http.Handler) http.Handler { return AccessLogAt(l, slog.LevelInfo, nil, h) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := tc.mw(slog.New(slog.NewJSONHandler(&logs, nil)), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/token?code=secret-code&refresh_token=secret-token",
				strings.NewReader("client_assertion=secret-body")))
			out := logs.String()
			if n := strings.Count(out, `"msg":"http"`); n != tc.lines {
				t.Errorf("%d access lines, want %d:\n%s", n, tc.lines, out)
			}
			if tc.lines > 0 && (!strings.Contains(out, `"level":"INFO"`) || !strings.Contains(out, `"path":"/token"`) || !strings.Contains(out, `"status":204`)) {
				t.Errorf("access line %s: want it at info with the path and status", out)
			}
			if strings.Contains(out, "secret") {
				t.Errorf("access line %s has the query or the body", out)
			}
		})
	}
}

// TestAccessLogAtDisabled: a logger that drops the access log's level
// costs a request no look at its path: the check for a national
// identity number runs only for a line that is written.
func TestAccessLogAtDisabled(t *testing.T) {
	checked := 0
	private := func(string) bool { checked++; return false }
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var logs bytes.Buffer
		h := AccessLogAt(slog.New(slog.NewJSONHandler(&logs, nil)), level, private, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/authorize", nil))
		if w.Code != http.StatusNoContent {
			t.Errorf("level %v: status %d, want the handler's 204", level, w.Code)
		}
	}
	if checked != 1 {
		t.Errorf("path checked %d times, want once: for the info line only", checked)
	}
}
