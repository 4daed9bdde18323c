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
//     send it. Over HTTPS it is a __Host- cookie (see formCookieName),
//     which a sibling subdomain cannot plant.
//
// The same cookie names the browser: state that only the browser that
// made it may use (the Continue ticket after an enrolment) keeps the
// browser's formBinding and is refused to any other, and an account
// login's recovery code tries are counted per browser.

const (
	csrfLabel    = "varde/passkeyidp/csrf/v1"
	bindingLabel = "varde/passkeyidp/browser/v1/"
	formCookie   = "varde_form"
	csrfField    = "csrf"
	csrfHeader   = "X-CSRF-Token"
)

// secure reports whether the provider's cookies carry the Secure flag:
// as the session's do, always but on http://localhost.
func (p *Provider) secure() bool { return p.Sessions != nil && p.Sessions.Secure }

// formCookieName is the double-submit cookie's name: with the __Host-
// prefix when Secure (RFC 6265bis §4.1.3.2), so that browsers take it
// only from this host over HTTPS, with Path=/ and no Domain. Without it a
// sibling subdomain could set the cookie to a value it knows and post
// the forms it guards (a recovery code of its own, say) through a
// visitor's browser. A node served under a path has the __Secure-
// prefix instead, which does not keep sibling subdomains out (see
// session.SecureName).
func (p *Provider) formCookieName() string {
	return session.SecureName(formCookie, p.cookiePath(), p.secure())
}

// cookiePath is the Path of the provider's cookies, the session's.
func (p *Provider) cookiePath() string {
	if p.Sessions == nil {
		return "/"
	}
	return p.Sessions.CookiePath()
}

// sessionCSRF returns the account forms' token, "" without a session
// cookie.
func (p *Provider) sessionCSRF(r *http.Request) string {
	tok := p.Sessions.Token(r)
	if tok == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkSessionCSRF compares token with the session's token in constant
// time.
func (p *Provider) checkSessionCSRF(r *http.Request, token string) bool {
	want := p.sessionCSRF(r)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// formToken returns the double-submit value, setting the cookie if the
// request has none.
func (p *Provider) formToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if v := p.formCookieValue(r); len(v) == 43 {
		return v, nil
	}
	v, err := p.randomID(32)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{
		Name: p.formCookieName(), Value: v, Path: p.cookiePath(), HttpOnly: true,
		Secure: p.secure(), SameSite: http.SameSiteStrictMode,
	})
	return v, nil
}

// formCookieValue is the request's form cookie, "" without one.
func (p *Provider) formCookieValue(r *http.Request) string {
	c, err := r.Cookie(p.formCookieName())
	if err != nil {
		return ""
	}
	return c.Value
}

// checkFormToken reports whether the posted form repeats the cookie.
// The caller has read the form (httpx.Pages.ReadForm), so that one too
// large is not taken for a forgery.
func (p *Provider) checkFormToken(r *http.Request) bool {
	v := p.formCookieValue(r)
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
func (p *Provider) checkFormBinding(r *http.Request, binding string) bool {
	v := p.formCookieValue(r)
	return v != "" && binding != "" && subtle.ConstantTimeCompare([]byte(formBinding(v)), []byte(binding)) == 1
}
