package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"

	"github.com/varde-eid/varde/internal/store"
)

// Browsers marks the browser an authorization request is presented in
// at the authorization endpoint, so that only that browser logs in for
// it, resumes it or cancels it (ADR 47). The ID of a login in progress
// travels in URLs (/login?req=…, and as the request_uri of a pushed
// request), where browser history, extensions and shared links show
// it; without the mark, whoever learnt it could finish the login as
// themselves in a browser of their own, and the code for the person's
// request, brought to the person's browser, would log them in to the
// relying party as someone else (session swapping). The broker's
// BrowserMarks implements it with its browser cookie.
type Browsers interface {
	// Mark returns the value of the cookie that marks r's browser,
	// setting one on w when r carries none (and in r, for the handlers
	// that read it later in the same request).
	Mark(w http.ResponseWriter, r *http.Request) (string, error)
	// Of returns the value of that cookie in r, "" without one.
	Of(r *http.Request) string
}

// BrowserBinding is what an authorization request keeps of the mark v
// of the browser it was presented in (store.AuthRequest.Browser): a
// hash, so that the store holds nothing a browser's cookie could be
// made from.
func BrowserBinding(v string) string {
	sum := sha256.Sum256([]byte("varde-login-browser\x00" + v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// InBrowser reports whether the browser whose mark is v ("" for none)
// may act on req: log in for it, resume it, cancel it. A pushed request
// not used at the authorization endpoint yet belongs to no browser. A
// request without a binding is one a node stored that does not bind
// requests (no Browsers, or a version before ADR 47), and any browser
// may act on it, as before.
func InBrowser(req *store.AuthRequest, v string) bool {
	switch {
	case req.Pushed && !req.Used:
		return false
	case req.Browser == "":
		return true
	}
	return v != "" && subtle.ConstantTimeCompare([]byte(BrowserBinding(v)), []byte(req.Browser)) == 1
}

// markBrowser is the binding of the browser r comes from, marked on w
// if it has no mark yet; "" when p binds no requests (Browsers nil).
func (p *Provider) markBrowser(w http.ResponseWriter, r *http.Request) (string, error) {
	if p.Browsers == nil {
		return "", nil
	}
	v, err := p.Browsers.Mark(w, r)
	if err != nil {
		return "", err
	}
	return BrowserBinding(v), nil
}

// browserOf is the mark of the browser r comes from, "" for none.
func (p *Provider) browserOf(r *http.Request) string {
	if p.Browsers == nil {
		return ""
	}
	return p.Browsers.Of(r)
}
