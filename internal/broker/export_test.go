package broker

import (
	"net/http"
	"net/http/httptest"
)

// LinkCSRF is the link form's token for the browser of r, as a page the
// account page does not offer the form on would still let a person (or
// a forger) post it.
func LinkCSRF(b *Broker, r *http.Request) string { return b.linkCSRF(r) }

// NoticeCookieFor is the cookie a browser holds after being sent to
// target by the broker (bindNotice), nil if target carries no notice.
func NoticeCookieFor(b *Broker, target string) *http.Cookie {
	w := httptest.NewRecorder()
	b.bindNotice(w, target)
	if cs := w.Result().Cookies(); len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// NumberKind is the message key naming the kind of number of scheme.
func NumberKind(scheme string) string { return numberKind(scheme) }

// KeepCSRF is the login keep's token for request id in the browser
// marked browser, as a page rendered for that browser carries it.
func KeepCSRF(browser, id string) string { return keepCSRF(browser, id) }
