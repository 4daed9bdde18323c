package oidc

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// idTokenHint holds the claims of an id_token_hint that logout uses.
type idTokenHint struct {
	Issuer   string       `json:"iss"`
	Audience jwt.Audience `json:"aud"`
	AZP      string       `json:"azp"`
	SID      string       `json:"sid"`
}

// idTokenTyp is the typ header of Varde's ID tokens (keys.Signer.SignJWT).
const idTokenTyp = "JWT"

// idTokenTyped reports whether the compact JWS raw is typed as Varde's
// ID tokens are. The same key signs logout tokens (LogoutTokenTyp) and
// status Security Event Tokens ("secevent+jwt"), whose iss and aud are
// an ID token's; their typ keeps either from passing for an ID token
// (RFC 8725 §3.11, Back-Channel Logout 1.0 §2.4) in an id_token_hint.
func idTokenTyped(raw string) bool {
	jws, err := jose.ParseSignedCompact(raw, keys.Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return false
	}
	typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string)
	return typ == idTokenTyp
}

// LogoutPage is the data of the "logout" page, which asks the person to
// confirm: the parameters go back in hidden fields.
type LogoutPage struct {
	Action string
	Fields []Field
	// AccountURL is a way back for a person who does not want to log
	// out (Provider.AccountURL); "" for none.
	AccountURL string
}

// LoggedOutPage is the data of the "loggedout" page.
type LoggedOutPage struct {
	// AccountURL leads on to logging in to the account again
	// (Provider.AccountURL); "" for none.
	AccountURL string
}

// logoutTokenField is the form field of the logout confirmation page
// that binds the confirmation to the session it was shown to.
const logoutTokenField = "confirm_token"

// logoutConfirmToken is the value of logoutTokenField for sess: keyed
// by SubjectSalt (under a key of its own, as SessionRef is) and bound to
// the session's ID, which a new login changes, so neither another site
// nor an older page of this one can make it.
func (p *Provider) logoutConfirmToken(sess *store.Session) string {
	return base64.RawURLEncoding.EncodeToString(saltMAC(p.SubjectSalt, "varde logout confirmation key v1", sess.ID))
}

// Field is a hidden form field.
type Field struct{ Name, Value string }

// logout is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0 §2, §3). It ends the person's session at Varde and queues
// a logout token for every client that got tokens in it and registered
// a back-channel logout URI (BackchannelLogout); tokens issued to
// clients stay until they expire.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	const ep = "logout"
	ctx := r.Context()
	if err := parseForm(r); err != nil {
		// 413 for a body over MaxBodySize, 400 for one that is malformed.
		p.errorPage(w, r, ep, pageBadRequest, oauth2.AsError(err).HTTPStatus(), err)
		return
	}
	form := r.Form
	if err := wellFormed(form); err != nil {
		p.errorPage(w, r, ep, pageLogoutBad, http.StatusBadRequest, err)
		return
	}
	if crossSitePost(r) {
		// Posted from another site, without Varde's cookies: it would end
		// no session. Posted again from Varde's origin, it ends the one
		// the browser holds (repost.go).
		p.repost(w, r, PathLogout, "repost.logout", form)
		return
	}
	var hint *idTokenHint
	if raw := form.Get("id_token_hint"); raw != "" {
		// §2: the OP MUST validate that it issued the ID token; it may
		// have expired.
		var h idTokenHint
		err := p.KeySet.Verify(ctx, raw, &h)
		switch {
		case errors.Is(err, keys.ErrUnknownKey):
			// Signed with a key no node publishes any more (retired,
			// ADR 18), the hint cannot be told from one made elsewhere,
			// but refusing it would strand the person the relying party
			// sent: the logout goes on as one without a hint, which
			// asks the person (§6) and trusts nothing the hint says.
			p.Log.InfoContext(ctx, "logout: id_token_hint signed by a key not published, asking the person",
				"req", httpx.RequestID(ctx))
		case err != nil || h.Issuer != p.Issuer || !idTokenTyped(raw):
			p.errorPage(w, r, ep, pageLogoutBad, http.StatusBadRequest, oauth2.InvalidRequest("id_token_hint was not issued here"))
			return
		default:
			hint = &h
		}
	}
	clientID := form.Get("client_id")
	if hint != nil {
		hinted := hint.AZP
		if hinted == "" && len(hint.Audience) == 1 {
			hinted = hint.Audience[0]
		}
		// §2: client_id, if given, must match the hint.
		if clientID != "" && !hint.Audience.Contains(clientID) {
			p.errorPage(w, r, ep, pageLogoutBad, http.StatusBadRequest, oauth2.InvalidRequest("client_id does not match id_token_hint"))
			return
		}
		if clientID == "" {
			clientID = hinted
		}
	}
	var c *store.Client
	if clientID != "" {
		var err error
		c, err = p.Clients.GetClient(ctx, clientID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
			return
		}
	}
	// §3: post_logout_redirect_uri must exactly match a registered value
	// of an identified client, or there is no redirect.
	redirect := ""
	if uri := form.Get("post_logout_redirect_uri"); uri != "" && c != nil && slices.Contains(c.PostLogoutRedirectURIs, uri) {
		redirect = uri
	} else if uri != "" {
		p.unusedLogoutRedirect(r, c)
	}
	locales := strings.Fields(form.Get("ui_locales"))
	sess := p.currentSession(r)
	confirmed := r.Method == http.MethodPost && form.Get("confirm") == "yes"
	// The hint's sid is its client's (SessionRef is per sector).
	hintMatches := hint != nil && sess != nil && c != nil && hint.Audience.Contains(c.ID) &&
		hint.SID == p.sessionRef(c, sess.Root())
	if sess != nil && confirmed && !hintMatches &&
		!hmac.Equal([]byte(form.Get(logoutTokenField)), []byte(p.logoutConfirmToken(sess))) {
		// A confirmation must come from the page this session was shown:
		// a form posted from elsewhere, a sibling subdomain included
		// (SameSite=Lax lets its cookie through), ends nothing.
		p.errorPage(w, r, ep, pageLogoutRefused, http.StatusForbidden,
			oauth2.InvalidRequest("logout confirmation without this session's %s", logoutTokenField))
		return
	}
	if sess != nil && !confirmed && !hintMatches {
		// §6: without a hint for this very session, ask the person first,
		// so a link elsewhere cannot log them out.
		page := LogoutPage{Action: PathLogout, Fields: []Field{{"confirm", "yes"}, {logoutTokenField, p.logoutConfirmToken(sess)}}, AccountURL: p.AccountURL}
		for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"} {
			if v := form.Get(k); v != "" {
				page.Fields = append(page.Fields, Field{k, v})
			}
		}
		p.render(w, r, http.StatusOK, "logout", locales, page)
		return
	}
	ended, err := p.Sessions.End(w, r)
	if err != nil {
		// The session may still be live in the store, and its clients
		// untold: say so rather than that the person is logged out, and
		// send them nowhere.
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return
	}
	if ended != nil {
		// The session manager has told the clients that got tokens in it
		// (SessionsEnded).
		p.audit(ctx, &store.AuditEvent{Type: "logout", PersonID: ended.PersonID, ClientID: clientID,
			Provider: ended.Provider, Level: ended.Level, Result: store.ResultSuccess})
	}
	if redirect != "" {
		params := url.Values{}
		if s := form.Get("state"); s != "" {
			params.Set("state", s)
		}
		if len(params) == 0 {
			http.Redirect(w, r, redirect, http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, withParams(redirect, params), http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "loggedout", locales, LoggedOutPage{AccountURL: p.AccountURL})
}

// unusedLogoutRedirect logs why a logout's post_logout_redirect_uri is
// not used, for the developer of client c (nil: none identified) whose
// person stays on Varde's page with nothing for the service (§3: there
// is no error to redirect with). Not the URI: it is the service's, and
// may carry what it should not have put there.
func (p *Provider) unusedLogoutRedirect(r *http.Request, c *store.Client) {
	why, client := "no client identified: send id_token_hint or client_id", ""
	if c != nil {
		why, client = "not one the client registered (post_logout_redirect_uris, matched exactly)", c.ID
	}
	p.Log.InfoContext(r.Context(), "logout: post_logout_redirect_uri not used", "why", why, "client", client,
		"req", httpx.RequestID(r.Context()))
}
