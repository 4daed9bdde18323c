package oauth2

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, OpenID Connect
// Core §3.1.2.6, RFC 7009 §2.2.1, RFC 9126 §2.3, RFC 9449 §5, §7.1, §8
// and §9).
const (
	CodeInvalidRequest           = "invalid_request"
	CodeInvalidClient            = "invalid_client"
	CodeInvalidGrant             = "invalid_grant"
	CodeUnauthorizedClient       = "unauthorized_client"
	CodeUnsupportedGrantType     = "unsupported_grant_type"
	CodeInvalidScope             = "invalid_scope"
	CodeAccessDenied             = "access_denied"
	CodeUnsupportedResponseType  = "unsupported_response_type"
	CodeServerError              = "server_error"
	CodeTemporarilyUnavailable   = "temporarily_unavailable"
	CodeLoginRequired            = "login_required"
	CodeInteractionRequired      = "interaction_required"
	CodeConsentRequired          = "consent_required"
	CodeInvalidRequestURI        = "invalid_request_uri"
	CodeRequestNotSupported      = "request_not_supported"
	CodeRequestURINotSupported   = "request_uri_not_supported"
	CodeRegistrationNotSupported = "registration_not_supported"
	CodeInvalidToken             = "invalid_token"
	CodeInsufficientScope        = "insufficient_scope"
	CodeInvalidDPoPProof         = "invalid_dpop_proof"
	CodeUseDPoPNonce             = "use_dpop_nonce"
	CodeUnsupportedTokenType     = "unsupported_token_type"
)

// Error is an OAuth 2.0 protocol error. Description is safe to show the
// client: it never carries internal details, and NewError keeps it to
// the characters RFC 6749 §5.2 allows.
type Error struct {
	Code        string
	Description string
	// Status is the HTTP status for JSON responses; zero means the code's
	// usual status (see StatusFor).
	Status int
	// Detail says more than Description for the log and the audit trail
	// only; it is never written to the caller.
	Detail string
	// Scope is, for insufficient_scope, the scope the resource needs,
	// which the challenge names (RFC 6750 §3).
	Scope string
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// HTTPStatus returns e.Status or the code's usual status.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return StatusFor(e.Code)
}

// StatusFor returns the HTTP status a JSON error with code carries.
func StatusFor(code string) int {
	switch code {
	case CodeInvalidClient, CodeInvalidToken:
		// RFC 6749 §5.2 (invalid_client), RFC 6750 §3.1 (invalid_token).
		return http.StatusUnauthorized
	case CodeAccessDenied, CodeInsufficientScope:
		// RFC 6750 §3.1 (insufficient_scope).
		return http.StatusForbidden
	case CodeServerError:
		return http.StatusInternalServerError
	case CodeTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// NewError returns an error with code and a description (fmt.Sprintf of
// format and args). RFC 6749 §4.1.2.1, §5.2: error_description MUST NOT
// hold characters outside %x20-21 / %x23-5B / %x5D-7E, so each other
// character (what args took from a request, a parameter's name say) is
// written as '?'.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: strings.Map(func(r rune) rune {
		if !descriptionChar(r) {
			return '?'
		}
		return r
	}, fmt.Sprintf(format, args...))}
}

// descriptionChar reports whether error_description may hold r (RFC
// 6749 §5.2), as RFC 6750 §3 allows inside its quoted values too.
func descriptionChar(r rune) bool {
	return r >= 0x20 && r <= 0x7e && r != '"' && r != '\\'
}

// InvalidRequest returns an invalid_request error.
func InvalidRequest(format string, args ...any) *Error {
	return NewError(CodeInvalidRequest, format, args...)
}

// InvalidClient returns an invalid_client error.
func InvalidClient(format string, args ...any) *Error {
	return NewError(CodeInvalidClient, format, args...)
}

// InvalidGrant returns an invalid_grant error.
func InvalidGrant(format string, args ...any) *Error {
	return NewError(CodeInvalidGrant, format, args...)
}

// InvalidScope returns an invalid_scope error.
func InvalidScope(format string, args ...any) *Error {
	return NewError(CodeInvalidScope, format, args...)
}

// UnauthorizedClient returns an unauthorized_client error.
func UnauthorizedClient(format string, args ...any) *Error {
	return NewError(CodeUnauthorizedClient, format, args...)
}

// UnsupportedGrantType returns an unsupported_grant_type error.
func UnsupportedGrantType(format string, args ...any) *Error {
	return NewError(CodeUnsupportedGrantType, format, args...)
}

// InsufficientScope returns an insufficient_scope error (RFC 6750 §3.1):
// the access token was not granted scope, which the resource needs.
func InsufficientScope(scope, format string, args ...any) *Error {
	e := NewError(CodeInsufficientScope, format, args...)
	e.Scope = scope
	return e
}

// UnsupportedTokenType returns an unsupported_token_type error (RFC 7009
// §2.2.1): the revocation endpoint does not revoke tokens of that type.
func UnsupportedTokenType(format string, args ...any) *Error {
	return NewError(CodeUnsupportedTokenType, format, args...)
}

// UnsupportedResponseType returns an unsupported_response_type error.
func UnsupportedResponseType(format string, args ...any) *Error {
	return NewError(CodeUnsupportedResponseType, format, args...)
}

// AccessDenied returns an access_denied error.
func AccessDenied(format string, args ...any) *Error {
	return NewError(CodeAccessDenied, format, args...)
}

// LoginRequired returns a login_required error.
func LoginRequired(format string, args ...any) *Error {
	return NewError(CodeLoginRequired, format, args...)
}

// ConsentRequired returns a consent_required error (OIDC Core §3.1.2.6).
func ConsentRequired(format string, args ...any) *Error {
	return NewError(CodeConsentRequired, format, args...)
}

// InvalidRequestURI returns an invalid_request_uri error.
func InvalidRequestURI(format string, args ...any) *Error {
	return NewError(CodeInvalidRequestURI, format, args...)
}

// InvalidToken returns an invalid_token error.
func InvalidToken(format string, args ...any) *Error {
	return NewError(CodeInvalidToken, format, args...)
}

// InvalidDPoPProof returns an invalid_dpop_proof error (RFC 9449 §5,
// §7.1). Its usual status is 400, right at the token endpoint; a
// protected resource answers 401 with a DPoP challenge (DPoPChallenge).
func InvalidDPoPProof(format string, args ...any) *Error {
	return NewError(CodeInvalidDPoPProof, format, args...)
}

// UseDPoPNonce returns a use_dpop_nonce error (RFC 9449 §8, §9): the
// proof must carry a nonce this server provided, which goes with the
// error in the DPoP-Nonce header. Its usual status is 400, right at the
// token and PAR endpoints; a protected resource answers 401 with a DPoP
// challenge (WriteDPoPError).
func UseDPoPNonce(format string, args ...any) *Error {
	return NewError(CodeUseDPoPNonce, format, args...)
}

// AsError returns the *Error in err's chain. Any other error becomes
// server_error with a fixed description: nothing about the cause leaves
// the server.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeServerError, Description: "internal error"}
}

// IsInternal reports whether err is not a protocol error, so it becomes
// server_error and should be logged.
func IsInternal(err error) bool {
	var e *Error
	return !errors.As(err, &e)
}

// WriteError writes err as a JSON error response (RFC 6749 §5.2): the
// *Error in err's chain, or server_error for anything else. invalid_client
// carries a Basic challenge (RFC 6749 §5.2: 401 with WWW-Authenticate),
// invalid_token and insufficient_scope a Bearer challenge (RFC 6750 §3).
// It is the only place protocol errors become JSON.
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	switch e.Code {
	case CodeInvalidClient:
		w.Header().Set("WWW-Authenticate", `Basic realm="varde"`)
	case CodeInvalidToken, CodeInsufficientScope:
		// Added, not set: a caller may have offered another scheme's
		// challenge first (RFC 9110 §11.6.1 allows several).
		w.Header().Add("WWW-Authenticate", BearerChallenge(e))
	}
	WriteJSON(w, e.HTTPStatus(), struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}

// WriteDPoPError writes err as a protected resource's refusal of a
// request that used the DPoP scheme (RFC 9449 §7.1, §9): invalid_token,
// invalid_dpop_proof and use_dpop_nonce are 401, insufficient_scope 403
// (RFC 6750 §3.1, which §7.1 refers to), with a DPoP challenge that
// names the error; anything else is written as WriteError writes it.
func WriteDPoPError(w http.ResponseWriter, err error) {
	e := AsError(err)
	status := http.StatusUnauthorized
	switch e.Code {
	case CodeInvalidToken, CodeInvalidDPoPProof, CodeUseDPoPNonce:
	case CodeInsufficientScope:
		status = http.StatusForbidden
	default:
		WriteError(w, err)
		return
	}
	w.Header().Set("WWW-Authenticate", DPoPChallenge(e))
	WriteJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}

// BearerChallenge is the WWW-Authenticate value for a protected resource
// error (RFC 6750 §3).
func BearerChallenge(e *Error) string {
	var b strings.Builder
	b.WriteString("Bearer ")
	writeErrorParams(&b, e)
	return b.String()
}

// writeErrorParams writes the auth-params of a challenge for e (RFC 6750
// §3): error, error_description if any, and scope if any, as quoted
// strings of the characters §3 allows.
func writeErrorParams(b *strings.Builder, e *Error) {
	b.WriteString(`error="`)
	b.WriteString(quoteSafe(e.Code))
	b.WriteString(`"`)
	if e.Description != "" {
		b.WriteString(`, error_description="`)
		b.WriteString(quoteSafe(e.Description))
		b.WriteString(`"`)
	}
	if e.Scope != "" {
		b.WriteString(`, scope="`)
		b.WriteString(quoteSafe(e.Scope))
		b.WriteString(`"`)
	}
}

// quoteSafe keeps only the characters RFC 6750 §3 allows inside quoted
// error values (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if !descriptionChar(r) {
			return -1
		}
		return r
	}, s)
}

// WriteJSON writes v as JSON with status. Token-bearing responses must
// not be cached (RFC 6749 §5.1), so every response says no-store.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error","error_description":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
