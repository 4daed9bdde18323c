package oidc

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// A relying party may send the browser to the authorization endpoint
// with a form POST (OIDC Core §3.1.2.1: the endpoint MUST support POST).
// Sent from the relying party's site, that POST is a cross-site one,
// and the browser sends none of Varde's cookies with it: they are
// SameSite=Lax, which a cross-site POST does not carry. Answered as it
// came, such a request would see no single sign-on session, and would
// mark the browser afresh (ADR 47), replacing the mark that binds every
// other login in progress in that browser: any web site could end a
// person's logins by posting to /authorize. So a POST that came from
// another site is answered with a page that posts the same form to the
// same endpoint again from Varde's own origin, with the cookies; with
// script it does so at once, without it the person presses Continue
// (ADR 58). Nothing is read, written or marked on the cross-site hop,
// and the parameters stay in the body: a redirect to GET would put
// login_hint and id_token_hint in the URL.
//
// The same holds for RP-Initiated Logout 1.0 §2, whose endpoint takes a
// POST too: posted from the relying party's site, the logout would find
// no session to end (no cookie came with it), answer that the person
// is logged out and send them back, while they stay logged in at Varde
// and every service could log them in again from it. So a cross-site
// POST to the logout endpoint is posted again from Varde's origin in
// the same way, and ends the session the browser holds.

// repostData is the page that posts a cross-site authorization request
// again from Varde's origin.
type repostData struct {
	Action string
	// Keys names the page's texts in the catalogue (Keys+".title",
	// ".message", ".continue"): a login's or a logout's.
	Keys string
	// Fields are the request's parameters, posted again as they came.
	Fields []Field
}

// crossSitePost reports whether r is a POST that another site made the
// browser send (Sec-Fetch-Site, or Origin against Host where a browser
// sends no Sec-Fetch-Site, as net/http's CrossOriginProtection decides):
// one that came without Varde's SameSite=Lax cookies. A request with
// neither header is not a browser's cross-site one, and is served as
// it came.
func crossSitePost(r *http.Request) bool {
	return r.Method == http.MethodPost && crossOrigin.Check(r) != nil
}

// repost answers a cross-site POST to action (the authorization or the
// logout endpoint) with the page that posts its form again from
// Varde's origin, in the texts under keys; form is the request's parsed
// form (its body and its query, all posted as the body). The page holds
// the request's parameters, login_hint or id_token_hint among them, so
// it is not stored.
func (p *Provider) repost(w http.ResponseWriter, r *http.Request, action, keys string, form url.Values) {
	d := repostData{Action: action, Keys: keys}
	for _, k := range slices.Sorted(maps.Keys(form)) {
		for _, v := range form[k] {
			d.Fields = append(d.Fields, Field{k, v})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	// Under Referrer-Policy: no-referrer a browser sends "Origin: null"
	// with the form this page posts (Fetch, "serializing a request
	// origin"), and one that sends no Sec-Fetch-Site would have it taken
	// for a cross-site POST again, and posted again, without end. So the
	// page says strict-origin itself, as Varde's pages do (ADR 59),
	// whatever their policy: the form carries Varde's origin, and a
	// Referer only that origin, never the path or query.
	w.Header().Set("Referrer-Policy", "strict-origin")
	// A page answering a POST has no language links (the link would GET
	// it without the form); ui_locales chooses its language.
	p.render(w, r, http.StatusOK, "repost", strings.Fields(form.Get("ui_locales")), d)
}
