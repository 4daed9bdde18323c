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
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || w.Header().Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers %v", w.Header())
	}
	line := logs.String()
	if !strings.Contains(line, "status=202") || !strings.Contains(line, "path=/token") || strings.Contains(line, "secret-code") {
		t.Errorf("access log %q: want status and path, never the query", line)
	}
}
