package oauth2

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code, desc string
		challenge  string
	}{
		{"invalid_request", InvalidRequest("code is required"), 400, "invalid_request", "code is required", ""},
		{"invalid_client", InvalidClient("client secret is wrong"), 401, "invalid_client", "client secret is wrong", `Basic realm="varde"`},
		{"invalid_token", &Error{Code: CodeInvalidToken, Description: `bad "token"`}, 401, "invalid_token", `bad "token"`, `Bearer error="invalid_token", error_description="bad token"`},
		// RFC 6750 §3.1: 403, with the scope the resource needs.
		{"insufficient_scope", InsufficientScope("openid", "not granted openid"), 403, "insufficient_scope", "not granted openid",
			`Bearer error="insufficient_scope", error_description="not granted openid", scope="openid"`},
		// RFC 6749 §5.2: error_description holds %x20-21 / %x23-5B /
		// %x5D-7E only; what a request put in it is made to fit.
		{"description from the request", InvalidRequest("parameter %s is repeated", "\"\u00f8\\\x01\xff"), 400, "invalid_request", "parameter ????? is repeated", ""},
		{"wrapped", fmt.Errorf("grant: %w", InvalidGrant("code has expired")), 400, "invalid_grant", "code has expired", ""},
		{"explicit status", &Error{Code: CodeInvalidRequest, Description: "too big", Status: 413}, 413, "invalid_request", "too big", ""},
		{"internal error never leaks", errors.New("sql: database is locked at /var/lib/varde"), 500, "server_error", "internal error", ""},
		{"temporarily_unavailable", NewError(CodeTemporarilyUnavailable, "try later"), 503, "temporarily_unavailable", "try later", ""},
		// RFC 9449 §5: at the token endpoint, a plain 400.
		{"invalid_dpop_proof", InvalidDPoPProof("DPoP proof was already used"), 400, "invalid_dpop_proof", "DPoP proof was already used", ""},
		// RFC 9449 §8: at the token and PAR endpoints, a plain 400.
		{"use_dpop_nonce", UseDPoPNonce("DPoP proof has no nonce"), 400, "use_dpop_nonce", "DPoP proof has no nonce", ""},
		// RFC 7009 §2.2.1: at the revocation endpoint, a plain 400.
		{"unsupported_token_type", UnsupportedTokenType("token_type_hint id_token is not revoked here"), 400, "unsupported_token_type", "token_type_hint id_token is not revoked here", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tt.err)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["error"] != tt.code || body["error_description"] != tt.desc || len(body) != 2 {
				t.Errorf("body = %v", body)
			}
		})
	}
}

func TestStatusFor(t *testing.T) {
	for code, want := range map[string]int{
		CodeInvalidRequest: 400, CodeInvalidClient: 401, CodeInvalidGrant: 400, CodeUnauthorizedClient: 400,
		CodeUnsupportedGrantType: 400, CodeInvalidScope: 400, CodeAccessDenied: 403, CodeUnsupportedResponseType: 400,
		CodeServerError: 500, CodeTemporarilyUnavailable: 503, CodeLoginRequired: 400, CodeInteractionRequired: 400,
		CodeInvalidRequestURI: 400, CodeInvalidToken: 401, CodeInsufficientScope: 403, CodeInvalidDPoPProof: 400, CodeUseDPoPNonce: 400, CodeUnsupportedTokenType: 400,
	} {
		if got := StatusFor(code); got != want {
			t.Errorf("StatusFor(%s) = %d, want %d", code, got, want)
		}
	}
	if http.StatusText(StatusFor("anything")) == "" {
		t.Error("unknown code has no status")
	}
}

// TestWriteDPoPError: a protected resource refuses a DPoP request with
// 401 (403 for insufficient_scope) and a DPoP challenge naming the error
// (RFC 9449 §7.1, §9).
func TestWriteDPoPError(t *testing.T) {
	algs := `DPoP algs="ES256 ES384 EdDSA PS256 RS256"`
	tests := []struct {
		name      string
		err       error
		status    int
		code      string
		challenge string
	}{
		{"invalid_dpop_proof", InvalidDPoPProof("DPoP proof was already used"), 401, "invalid_dpop_proof",
			algs + `, error="invalid_dpop_proof", error_description="DPoP proof was already used"`},
		{"invalid_token", InvalidToken("access token is unknown"), 401, "invalid_token",
			algs + `, error="invalid_token", error_description="access token is unknown"`},
		// RFC 9449 §9: a resource server asks for a nonce with 401 too.
		{"use_dpop_nonce", UseDPoPNonce("DPoP proof has no nonce"), 401, "use_dpop_nonce",
			algs + `, error="use_dpop_nonce", error_description="DPoP proof has no nonce"`},
		// RFC 9449 §7.1 uses RFC 6750 §3.1's codes: 403 here.
		{"insufficient_scope", InsufficientScope("openid", "not granted openid"), 403, "insufficient_scope",
			algs + `, error="insufficient_scope", error_description="not granted openid", scope="openid"`},
		{"invalid_request as WriteError writes it", InvalidRequest("no"), 400, "invalid_request", ""},
		{"internal error never leaks", errors.New("sql: closed"), 500, "server_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteDPoPError(rec, tt.err)
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status || body.Error != tt.code || rec.Header().Get("WWW-Authenticate") != tt.challenge {
				t.Fatalf("%d %s %q", rec.Code, rec.Body, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}
