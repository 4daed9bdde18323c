package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestCORS: a preflight is answered 204 with the methods, headers and
// max-age of the resource; every other answer, errors included, says
// any origin may read it and which headers it may read, the same with
// an Origin or without one (so no Vary); credentials are never allowed.
func TestCORS(t *testing.T) {
	read := CORS{Methods: []string{http.MethodGet}, Headers: []string{"Authorization"}, MaxAge: time.Hour}
	write := CORS{Methods: []string{http.MethodPost}, Headers: []string{"Authorization", "DPoP", "Content-Type"},
		Expose: []string{"DPoP-Nonce", "WWW-Authenticate"}, MaxAge: 2 * time.Hour}
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "dpop,content-type"}
	absent := ""
	tests := []struct {
		name    string
		cors    CORS
		method  string
		headers map[string]string
		status  int
		want    map[string]string
	}{
		{"preflight of a POST resource", write, http.MethodOptions, preflight, http.StatusNoContent, map[string]string{
			"Access-Control-Allow-Origin":      "*",
			"Access-Control-Allow-Methods":     "POST",
			"Access-Control-Allow-Headers":     "Authorization, DPoP, Content-Type",
			"Access-Control-Max-Age":           "7200",
			"Access-Control-Allow-Credentials": absent,
			"Allow":                            "POST, OPTIONS",
			"Vary":                             absent,
			"X-Next":                           absent,
		}},
		{"preflight of a GET resource", read, http.MethodOptions, map[string]string{"Origin": "https://app.example",
			"Access-Control-Request-Method": "GET"}, http.StatusNoContent, map[string]string{
			"Access-Control-Allow-Origin":   "*",
			"Access-Control-Allow-Methods":  "GET",
			"Access-Control-Allow-Headers":  "Authorization",
			"Access-Control-Max-Age":        "3600",
			"Access-Control-Expose-Headers": absent,
			"Allow":                         "GET, HEAD, OPTIONS",
		}},
		{"OPTIONS that is no preflight", write, http.MethodOptions, nil, http.StatusNoContent, map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "POST",
			"Allow":                        "POST, OPTIONS",
		}},
		{"request from a page, refused", write, http.MethodPost, map[string]string{"Origin": "https://app.example"}, http.StatusBadRequest, map[string]string{
			"Access-Control-Allow-Origin":      "*",
			"Access-Control-Expose-Headers":    "DPoP-Nonce, WWW-Authenticate",
			"Access-Control-Allow-Credentials": absent,
			"Access-Control-Allow-Methods":     absent,
			"Access-Control-Max-Age":           absent,
			"Vary":                             absent,
			"X-Next":                           "served",
		}},
		{"request without an Origin", write, http.MethodPost, nil, http.StatusBadRequest, map[string]string{
			"Access-Control-Allow-Origin":   "*",
			"Access-Control-Expose-Headers": "DPoP-Nonce, WWW-Authenticate",
			"Vary":                          absent,
			"X-Next":                        "served",
		}},
		{"GET from a page", read, http.MethodGet, map[string]string{"Origin": "https://app.example"}, http.StatusBadRequest, map[string]string{
			"Access-Control-Allow-Origin":   "*",
			"Access-Control-Expose-Headers": absent,
			"X-Next":                        "served",
		}},
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Next", "served")
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle(tt.cors.Methods[0]+" /r", tt.cors.Handler(next))
			mux.Handle("OPTIONS /r", tt.cors.Preflight())
			req := httptest.NewRequest(tt.method, "/r", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			for k, want := range tt.want {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}
