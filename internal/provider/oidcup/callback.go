package oidcup

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// Plain-language page kinds (keys "error.<kind>.title|message|next").
const (
	pageExpired    = "expired"
	pageBadRequest = "badrequest"
	pageInternal   = "internal"
)

// restartNext is the next step of a callback that met a store it could
// not reach: the callback cannot be used again, so the person starts the
// login again.
const restartNext = "error.unavailable.restart.next"

// callback is the redirect URI: the upstream's authorization response
// (RFC 6749 §4.1.2, OIDC Core §3.1.2.5). The checks run in this order:
// state (this browser's, then single use), iss (RFC 9207), error, then the code
// is redeemed and the ID token validated. Until the state is known the
// person gets a page; after, every refusal goes back to the broker
// through Finisher.Fail, so the person can choose another provider.
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	for _, k := range []string{"state", "code", "iss", "error"} {
		// RFC 6749 §3.1: parameters must not be repeated.
		if len(q[k]) > 1 {
			p.refused(ctx, "callback", reject(ReasonBadRequest, "parameter %s is repeated", k), nil)
			p.errorPage(w, r, http.StatusBadRequest, pageBadRequest, "")
			return
		}
	}
	state := q.Get("state")
	if state == "" {
		p.refused(ctx, "callback", reject(ReasonBadRequest, "state is missing"), nil)
		p.errorPage(w, r, http.StatusBadRequest, pageBadRequest, "")
		return
	}
	// RFC 6749 §10.12, RFC 9700 §4.7.1: the state is single use and
	// bound to this provider and to the browser that started the login.
	// Only that browser's callback finds the login, and spends it: one
	// sent first from another browser by whoever learnt the state (it
	// travels in URLs, through the person's browser and the eID) leaves
	// it for the person's.
	values := p.browserValues(r)
	raw, err := p.takeLogin(ctx, state, values)
	if errors.Is(err, store.ErrNotFound) {
		p.noLogin(w, r, state, values)
		return
	}
	if err == nil {
		p.forgetIssued(ctx, state)
	}
	if store.Unavailable(err) {
		// Nothing was taken: the state is still stored and the code was
		// not redeemed. The code may have expired at the upstream by the
		// time the store answers again, so the person starts again.
		p.refused(ctx, "callback", p.stateFailure(ReasonStoreUnavailable, "login state: %v", err), nil)
		p.unavailable(w, r, "", restartNext)
		return
	}
	var st loginState
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	if err == nil && st.Provider != p.cfg.ID {
		err = errors.New("login state belongs to another provider")
	}
	if err != nil {
		p.refused(ctx, "callback", p.stateFailure(provider.ErrorReason(err), "login state: %v", err), nil)
		p.errorPage(w, r, http.StatusInternalServerError, pageInternal, "")
		return
	}
	fail := func(rej *rejection, details map[string]string) {
		p.refused(ctx, "callback", rej, details)
		http.Redirect(w, r, p.failed(w, r, st.Attempt, rej), http.StatusSeeOther)
	}
	m, err := p.discovery(ctx)
	if err != nil {
		fail(discoveryFailed(err), nil)
		return
	}
	// RFC 9207 §2.4: a client that knows the upstream sends iss MUST
	// check it is present and MUST refuse a response whose iss differs
	// from the upstream's issuer (mix-up protection), errors included.
	iss, hasIss := q["iss"]
	switch {
	case m.ResponseIss && !hasIss:
		fail(reject(ReasonMixUp, "the upstream sends iss in responses but this one has none"), nil)
		return
	case hasIss && iss[0] != p.cfg.Issuer:
		fail(reject(ReasonMixUp, "iss in the response is not the upstream's issuer"), nil)
		return
	}
	// RFC 6749 §4.1.2.1.
	if e := q.Get("error"); e != "" {
		d := map[string]string{"upstream_error": safe(e)}
		if e == "access_denied" {
			fail(reject(ReasonCancelled, "the person cancelled at the upstream"), d)
			return
		}
		fail(reject(ReasonUpstreamError, "the upstream returned an error"), d)
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(reject(ReasonNoCode, "the response has neither code nor error"), nil)
		return
	}
	// A code no upstream issues is not sent to its token endpoint: what
	// a WAF or a strict server there answers to junk would count against
	// the upstream's health, and anyone who starts a login can send it.
	if !wellFormedCode(code) {
		fail(reject(ReasonMalformedCode, "the code is not 1 to %d visible ASCII characters", maxCodeLength), nil)
		return
	}
	idToken, rej := p.redeem(ctx, m, code, st.Verifier)
	if rej != nil {
		if rej.reason != ReasonInvalidGrant && rej.reason != ReasonTokenRefused && rej.reason != ReasonNoIDToken {
			// A failing token endpoint may have moved: look again.
			p.meta.invalidate()
		}
		// The scope went to the upstream in the authorization request,
		// as the nonce did (below): sent through the browser, its holder
		// can take openid out of it and log in with their own account,
		// and the upstream then rightly answers with no ID token.
		if rej.reason == ReasonNoIDToken && !st.Pushed {
			rej.unverified = true
		}
		fail(rej, nil)
		return
	}
	v, rej := p.checker(m, &st).check(ctx, idToken, st.Nonce, p.now(), func(ctx context.Context, refetch bool) (jose.JSONWebKeySet, error) {
		return p.keySet(ctx, m, refetch)
	})
	if rej != nil {
		// OIDC Core §3.1.2.1: the nonce goes to the upstream in the
		// authorization request. Sent through the browser, that request
		// can be changed by whoever holds the browser, who then logs in
		// with their own account and brings back a validly signed token
		// with their nonce: a bad nonce is then not the upstream's fault.
		// Pushed (RFC 9126), the browser never holds it, and a bad nonce
		// is the upstream's, if the code was this request's. The code
		// comes through the browser too: one of another login, that
		// of anyone's own, is refused by an upstream that checks PKCE,
		// but redeemed by one that does not (RFC 9700 §4.5; RFC 8414
		// §2: its metadata lists no S256), and then the nonce is that
		// other login's.
		if rej.reason == ReasonBadNonce && (!st.Pushed || !m.pkce()) {
			rej.unverified = true
		}
		fail(rej, nil)
		return
	}
	// prompt=login was sent: an authentication older than the request
	// is a reused session the upstream should not have used. So is one
	// older than the max_age sent (OIDC Core §3.1.2.1, §3.1.3.7 item
	// 13): passed on, it would reach a session the relying party's
	// request does not take, and the person would be sent to log in
	// again, to the same session.
	if why := p.stale(&st, v.authTime); why != "" {
		// Only a person with a session there meets it: it is about the
		// account, as the token's other claims are (checker.account).
		rej := reject(ReasonStaleAuthTime, "auth_time is older than %s", why)
		rej.subject = v.subject
		fail(rej, nil)
		return
	}
	if v.asserted > v.level {
		p.log.InfoContext(ctx, "upstream level capped", "provider", p.cfg.ID, "asserted", v.asserted.String(), "level", v.level.String())
	}
	res := provider.Result{
		Provider: p.cfg.ID, Identifiers: []store.Identifier{v.identifier}, Level: v.level,
		AMR: v.amr, AuthTime: p.inOurTime(&st, v.authTime), Method: Method,
		GivenName: v.givenName, FamilyName: v.familyName, BirthDate: v.birthDate,
	}
	next, err := p.fin.Finish(w, r, st.Attempt, res)
	if store.Unavailable(err) {
		// The state is taken and the code redeemed, so this callback
		// cannot be used again; nothing that could not be reached was
		// stored (no session, no cookie), and the attempt may still be
		// waiting at the broker. The person starts again.
		p.log.WarnContext(ctx, "finish upstream login", "provider", p.cfg.ID, "err", err, "req", httpx.RequestID(ctx))
		p.unavailable(w, r, st.Locale, restartNext)
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "finish upstream login", "provider", p.cfg.ID, "err", err, "req", httpx.RequestID(ctx))
		p.errorPage(w, r, http.StatusInternalServerError, pageInternal, st.Locale)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// takeLogin takes the login state for state that was issued to the
// browser with one of the cookie values (store.ErrNotFound if there is
// none).
func (p *Provider) takeLogin(ctx context.Context, state string, values []string) ([]byte, error) {
	for _, v := range values {
		raw, err := p.chal.TakeChallenge(ctx, p.loginKey(state, v), p.now())
		if !errors.Is(err, store.ErrNotFound) {
			return raw, err
		}
	}
	return nil, store.ErrNotFound
}

// forgetIssued takes what state was issued to, once its login is taken:
// it is not needed any more (a callback that finds no login is then a
// replay either way), and kept until it expired it would hold the
// store's room for Timeouts.Login after every login. A failure is only
// logged: the record expires.
func (p *Provider) forgetIssued(ctx context.Context, state string) {
	if _, err := p.chal.TakeChallenge(ctx, p.stateKey(state), p.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.DebugContext(ctx, "record of a used state not taken; it expires", "provider", p.cfg.ID, "err", err)
	}
}

// noLogin answers a callback that found no login for its state in this
// browser, telling from what the state was issued to (taken, so that
// it is read once) whether it came to another browser than the one that
// started: then someone is trying to log this browser in as themselves
// (login CSRF), or sends the callback first to spoil the person's login,
// or an eID app opened it in its own browser. The attempt is not failed:
// it may not be this browser's, and the person's own callback still
// finishes it. Otherwise the state is unknown (a forgery), used (a
// replay) or expired (a login that took too long).
func (p *Provider) noLogin(w http.ResponseWriter, r *http.Request, state string, values []string) {
	ctx := r.Context()
	raw, err := p.chal.TakeChallenge(ctx, p.stateKey(state), p.now())
	var is issued
	if err == nil {
		err = json.Unmarshal(raw, &is)
	}
	switch {
	case err == nil && !issuedTo(values, is.Browser):
		p.refused(ctx, "callback", reject(ReasonBrowserMismatch, "callback came to another browser"), nil)
		p.errorPage(w, r, http.StatusBadRequest, pageBadRequest, is.Locale)
	case err == nil || errors.Is(err, store.ErrNotFound):
		p.refused(ctx, "callback", reject(ReasonReplay, "state is unknown, used or expired"), nil)
		p.errorPage(w, r, http.StatusBadRequest, pageExpired, "")
	case store.Unavailable(err):
		p.refused(ctx, "callback", p.stateFailure(ReasonStoreUnavailable, "login state: %v", err), nil)
		p.unavailable(w, r, "", restartNext)
	default:
		p.refused(ctx, "callback", p.stateFailure(provider.ErrorReason(err), "login state: %v", err), nil)
		p.errorPage(w, r, http.StatusInternalServerError, pageInternal, "")
	}
}

// stale says why an authentication at authTime is too old for the
// login st ("" if it is not): older than the request, which asked for a
// new one (prompt=login), or, unless it is newer than the request,
// older than the request's max_age (at most maxMaxAge), as the
// authorization endpoint judges a session.
func (p *Provider) stale(st *loginState, authTime time.Time) string {
	started := time.Unix(st.Started, 0)
	if !authTime.Add(p.t.Leeway).Before(started) {
		return ""
	}
	if p.fresh(st) {
		return "the request despite prompt=login"
	}
	if st.MaxAge > 0 && p.now().Sub(authTime) > time.Duration(st.MaxAge)*time.Second {
		return "the request's max_age"
	}
	return ""
}

// inOurTime is the upstream's authTime for the login st in this node's
// time. An upstream's clock may be off by up to Timeouts.Leeway, which
// the checks allow. An auth_time after now is reported as now: it would
// otherwise go to the relying party in the future. And when the request
// asked for a new login or one within a max_age, an authentication the
// upstream dates within the leeway before the request was sent, which
// stale takes as new, is reported as made then: passed on as it is, it
// would look older than the relying party's request to the
// authorization endpoint, which would send the person to log in again,
// and again. Otherwise an earlier auth_time is the upstream's session,
// as it says.
func (p *Provider) inOurTime(st *loginState, authTime time.Time) time.Time {
	started, now := time.Unix(st.Started, 0), p.now()
	switch {
	case (p.fresh(st) || st.MaxAge > 0) && authTime.Before(started) && !authTime.Add(p.t.Leeway).Before(started):
		return started
	case authTime.After(now):
		return now
	}
	return authTime
}

// checker checks the ID token of the login st; auth_time is required
// when its request carried max_age.
func (p *Provider) checker(m *metadata, st *loginState) *checker {
	return &checker{
		issuer: p.cfg.Issuer, clientID: p.cfg.ClientID, trusted: p.cfg.TrustedAudiences, algs: m.algs,
		maxLevel: p.cfg.MaxLevel, acrMap: p.cfg.ACRMap, claim: p.cfg.IdentifierClaim, schemes: p.cfg.IdentifierSchemes,
		leeway: p.t.Leeway, maxAge: p.t.MaxTokenAge, authTime: p.fresh(st) || st.MaxAge > 0,
	}
}

// maxCodeLength bounds an authorization code from an upstream. RFC 6749
// sets no limit; codes in use are tens to a few hundred characters, and
// a JWT as a code stays well below this.
const maxCodeLength = 2048

// wellFormedCode reports whether code is 1*VSCHAR (RFC 6749 Appendix
// A.11: %x20-7E) and at most maxCodeLength long.
func wellFormedCode(code string) bool {
	if code == "" || len(code) > maxCodeLength {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < 0x20 || code[i] > 0x7e {
			return false
		}
	}
	return true
}
