package passkeyidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/varde-eid/varde/internal/session"
)

// Two kinds of CSRF token, both stateless, so any node can check a form
// another node rendered:
//
//   - account forms carry HMAC-SHA256(session cookie value, label): only
//     a page that can read the session cookie could have made it, and it
//     changes with every session. The store keeps only the cookie's
//     hash, so a copy of the database does not yield tokens either.
//   - forms used before there is a session (recovery code, cancel, the
//     enrolled page's Continue) use the double-submit pattern: a random
//     value in a SameSite=Strict cookie that the form repeats. A
//     cross-site page can neither read the cookie nor make the browser
//     send it.
//
// The same cookie names the browser: state that only the browser that
// made it may use (the Continue ticket after an enrolment) keeps the
// browser's formBinding and is refused to any other, and an account
// login's recovery code tries are counted per browser.

const (
	csrfLabel      = "varde/passkeyidp/csrf/v1"
	bindingLabel   = "varde/passkeyidp/browser/v1/"
	formCookie     = "varde_form"
	csrfField      = "csrf"
	csrfHeader     = "X-CSRF-Token"
	formCookiePath = "/passkey/"
)

// sessionCSRF returns the account forms' token, "" without a session
// cookie.
func sessionCSRF(r *http.Request) string {
	c, err := r.Cookie(session.CookieName)
	if err != nil || c.Value == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(c.Value))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkSessionCSRF compares token with the session's token in constant
// time.
func checkSessionCSRF(r *http.Request, token string) bool {
	want := sessionCSRF(r)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// formToken returns the double-submit value, setting the cookie if the
// request has none.
func (p *Provider) formToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	v, err := p.randomID(32)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: formCookie, Value: v, Path: formCookiePath, HttpOnly: true,
		Secure: p.Sessions != nil && p.Sessions.Secure, SameSite: http.SameSiteStrictMode,
	})
	return v, nil
}

// formCookieValue is the request's form cookie, "" without one.
func formCookieValue(r *http.Request) string {
	c, err := r.Cookie(formCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// checkFormToken reports whether the posted form repeats the cookie.
func checkFormToken(r *http.Request) bool {
	v := formCookieValue(r)
	return v != "" && subtle.ConstantTimeCompare([]byte(v), []byte(r.PostFormValue(csrfField))) == 1
}

// formBinding names the browser whose form cookie is token without
// holding the token itself: a store that keeps it yields no form token.
func formBinding(token string) string {
	h := sha256.Sum256([]byte(bindingLabel + token))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// checkFormBinding reports whether the request comes from the browser
// that binding names.
func checkFormBinding(r *http.Request, binding string) bool {
	v := formCookieValue(r)
	return v != "" && binding != "" && subtle.ConstantTimeCompare([]byte(formBinding(v)), []byte(binding)) == 1
}
