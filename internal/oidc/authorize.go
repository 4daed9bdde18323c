package oidc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Length limits on free-form request parameters.
const (
	maxStateLen     = 1024
	maxNonceLen     = 512
	maxLoginHintLen = 256
	maxUILocales    = 10
	maxLocaleLen    = 35
)

// resolveRedirect checks redirect_uri against the client's registration
// by exact string comparison (RFC 9700 §2.1, §4.1.3; OIDC Core
// §3.1.2.1). OIDC Core §3.1.2.1 makes redirect_uri REQUIRED in an
// OpenID request, so it is, even for a client with one registered (which
// RFC 6749 §3.1.2.3 alone would let a client omit). It returns the
// redirect URI.
func resolveRedirect(c *store.Client, form url.Values) (string, error) {
	if len(form["redirect_uri"]) > 1 {
		return "", oauth2.InvalidRequest("parameter redirect_uri is repeated")
	}
	uri := form.Get("redirect_uri")
	if uri == "" {
		return "", oauth2.InvalidRequest("redirect_uri is required")
	}
	if !registeredRedirect(c, uri) {
		// Nearly registered is the usual mistake (a trailing slash, http
		// for https, localhost for 127.0.0.1): say that nothing less
		// than the same string will do, without naming what is
		// registered to whoever knows the client ID.
		return "", oauth2.InvalidRequest("redirect_uri is not registered for this client: it must be one of its registered redirect URIs, character for character (scheme, host, port, path, a trailing slash)")
	}
	return uri, nil
}

// registeredRedirect reports whether uri is one of c's redirect URIs:
// the same string (RFC 9700 §4.1.3), or, for a public client (a native
// app), a loopback redirect URI on another port (ADR 29). RFC 8252 §7.3:
// the server MUST allow any port in a loopback IP redirect URI, which a
// native app's listener gets from the operating system when it starts.
func registeredRedirect(c *store.Client, uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if c.AuthMethod != store.AuthNone {
		return false
	}
	want, ok := loopbackWithoutPort(uri)
	if !ok {
		return false
	}
	return slices.ContainsFunc(c.RedirectURIs, func(reg string) bool {
		got, ok := loopbackWithoutPort(reg)
		return ok && got == want
	})
}

// loopbackWithoutPort returns uri without its port if it is a loopback
// IP redirect URI (RFC 8252 §7.3): http, written so, on the IP literal
// 127.0.0.1 or [::1] (not localhost by name, which §8.3 advises
// against: a name can resolve elsewhere), with no port or a port from 1
// to 65535, and then the path and query or nothing. Whatever follows
// the port is kept, and compared exactly.
func loopbackWithoutPort(uri string) (string, bool) {
	for _, base := range []string{"http://127.0.0.1", "http://[::1]"} {
		rest, ok := strings.CutPrefix(uri, base)
		if !ok {
			continue
		}
		if after, ok := strings.CutPrefix(rest, ":"); ok {
			n := strings.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
			if n < 0 {
				n = len(after)
			}
			port, err := strconv.Atoi(after[:n])
			if n == 0 || n > 5 || err != nil || port < 1 || port > 65535 {
				return "", false
			}
			rest = after[n:]
		}
		if rest != "" && rest[0] != '/' && rest[0] != '?' {
			return "", false
		}
		return base + rest, true
	}
	return "", false
}

// redirectFor returns where a stored request's response goes, checking
// again that the client still has that redirect URI. A request stored
// without one comes from a node of an earlier release, which let a
// client with one redirect URI omit it; it goes to that one, and its
// token request must omit redirect_uri too (RFC 6749 §4.1.3).
func redirectFor(c *store.Client, stored string) (string, bool) {
	if stored == "" {
		if len(c.RedirectURIs) == 1 {
			return c.RedirectURIs[0], true
		}
		return "", false
	}
	return stored, registeredRedirect(c, stored)
}

// validateAuthParams validates an authorization request's parameters
// other than client_id and redirect_uri, for the authorization endpoint
// and PAR alike (RFC 9126 §2.1: a pushed request is validated as the
// authorization endpoint would). Errors are *oauth2.Error.
func (p *Provider) validateAuthParams(c *store.Client, form url.Values, redirectURI string, pushed bool) (*store.AuthRequest, error) {
	if err := p.canSignFor(c); err != nil {
		return nil, err
	}
	if err := wellFormed(form); err != nil {
		return nil, err
	}
	req := &store.AuthRequest{ClientID: c.ID, RedirectURI: redirectURI, MaxAge: -1, Pushed: pushed}
	// RFC 6749 §3.1: a parameter sent without a value is treated as if
	// it were omitted.
	if form.Get("request") != "" {
		// OIDC Core §3.1.2.6.
		return nil, oauth2.NewError(oauth2.CodeRequestNotSupported, "request objects are not supported")
	}
	if form.Get("registration") != "" {
		// OIDC Core §7.2.1, §3.1.2.6: client metadata sent with the
		// request (meant for a self-issued OP) is not applied here; a
		// client is what it was registered as, so the request is refused
		// rather than served as if the metadata had been taken.
		return nil, oauth2.NewError(oauth2.CodeRegistrationNotSupported, "the registration parameter is not supported: client metadata is set when the client is registered")
	}
	if form.Get("request_uri") != "" {
		// RFC 9126 §2.1: request_uri MUST NOT be pushed.
		return nil, oauth2.InvalidRequest("request_uri is not allowed here")
	}
	// RFC 6749 §3.1.1; only the code flow (RFC 9700 §2.1.2).
	switch rt := form.Get("response_type"); rt {
	case "":
		return nil, oauth2.InvalidRequest("response_type is required")
	case "code":
	default:
		return nil, oauth2.UnsupportedResponseType("only response_type=code is supported")
	}
	switch rm := form.Get("response_mode"); rm {
	case "", "query":
		req.ResponseMode = "query"
	default:
		return nil, oauth2.InvalidRequest("only response_mode=query is supported")
	}
	scope := strings.Fields(form.Get("scope"))
	// OIDC Core §3.1.2.1: scope MUST contain openid.
	if !slices.Contains(scope, "openid") {
		return nil, oauth2.InvalidScope("scope must include openid")
	}
	// OIDC Core §3.1.2.1, §5.4: scope values not understood are
	// ignored; §11: so is offline_access from a client not registered
	// for refresh tokens. What is kept is what the token response's
	// scope says was granted.
	for _, s := range scopesSupported {
		if slices.Contains(scope, s) && (s != scopeOfflineAccess || c.RefreshTokens) {
			req.Scope = append(req.Scope, s)
		}
	}
	req.State = form.Get("state")
	req.Nonce = form.Get("nonce")
	req.LoginHint = form.Get("login_hint")
	req.ProviderHint = form.Get("provider_hint")
	switch {
	case len(req.State) > maxStateLen:
		return nil, oauth2.InvalidRequest("state is too long")
	case len(req.Nonce) > maxNonceLen:
		return nil, oauth2.InvalidRequest("nonce is too long")
	case len(req.LoginHint) > maxLoginHintLen:
		return nil, oauth2.InvalidRequest("login_hint is too long")
	case !validProviderHint(req.ProviderHint):
		return nil, oauth2.InvalidRequest("provider_hint must be 'any' or a provider id (lower-case letters, digits and '-')")
	}
	// RFC 9449 §10: dpop_jkt binds the code to the key it names.
	if req.DPoPJKT = form.Get("dpop_jkt"); req.DPoPJKT != "" && !oauth2.ValidJKT(req.DPoPJKT) {
		return nil, oauth2.InvalidRequest("dpop_jkt must be a JWK SHA-256 thumbprint, base64url-encoded")
	}
	// RFC 7636 §4.3, RFC 9700 §2.1.1: PKCE is required, with S256.
	req.CodeChallenge = form.Get("code_challenge")
	req.CodeChallengeMethod = form.Get("code_challenge_method")
	switch {
	case req.CodeChallenge == "":
		return nil, oauth2.InvalidRequest("code_challenge is required (PKCE)")
	case req.CodeChallengeMethod != oauth2.MethodS256:
		return nil, oauth2.InvalidRequest("code_challenge_method must be S256")
	case !oauth2.ValidChallenge(req.CodeChallenge):
		return nil, oauth2.InvalidRequest("code_challenge must be BASE64URL(SHA-256(code_verifier)) without padding, 43 characters (RFC 7636 section 4.2)")
	}
	// RFC 9126 §5: a client registered to require PAR must use it.
	if c.RequirePAR && !pushed {
		return nil, oauth2.InvalidRequest("this client must use pushed authorization requests")
	}
	prompt, err := parsePrompt(form.Get("prompt"))
	if err != nil {
		return nil, err
	}
	req.Prompt = prompt
	// OIDC Core §3.1.2.1: max_age is a number of seconds, written in
	// decimal digits only: no sign, no space, no other base. One too
	// large for an int is no limit (maxAge), as one too large for a
	// Duration is.
	if ma := form.Get("max_age"); ma != "" {
		if strings.TrimLeft(ma, "0123456789") != "" {
			return nil, oauth2.InvalidRequest("max_age must be a non-negative integer")
		}
		n, err := strconv.Atoi(ma)
		if errors.Is(err, strconv.ErrRange) {
			n = math.MaxInt
		}
		req.MaxAge = n
	}
	acr, err := acrValues(c, form.Get("acr_values"))
	if err != nil {
		return nil, err
	}
	req.ACRValues = acr
	locales := strings.Fields(form.Get("ui_locales"))
	if len(locales) > maxUILocales {
		return nil, oauth2.InvalidRequest("too many ui_locales")
	}
	for _, l := range locales {
		if len(l) > maxLocaleLen {
			return nil, oauth2.InvalidRequest("ui_locales value is too long")
		}
	}
	req.UILocales = locales
	return req, nil
}

// maxHintSubjectLen bounds the sub of an id_token_hint kept with a
// request: Varde's pairwise subjects are 43 characters.
const maxHintSubjectLen = 255

// hintSubject returns the sub of the request's id_token_hint, "" when
// it has none. OIDC Core §3.1.2.1: the hint is an ID token the OP
// issued, expired or not; anything else is refused (invalid_request),
// as at the end_session_endpoint, a logout token or status token signed
// with the same key too (RFC 8725 §3.11). The person's session must
// be the hinted subject's for a code to be issued (Provider.satisfies):
// prompt=none gets login_required otherwise, and so does a request for
// which another person logs in (Provider.resume).
func (p *Provider) hintSubject(ctx context.Context, form url.Values) (string, error) {
	raw := form.Get("id_token_hint")
	if raw == "" {
		return "", nil
	}
	var claims struct {
		Issuer  string `json:"iss"`
		Subject string `json:"sub"`
	}
	if err := p.KeySet.Verify(ctx, raw, &claims); err != nil || claims.Issuer != p.Issuer || !idTokenTyped(raw) ||
		claims.Subject == "" || len(claims.Subject) > maxHintSubjectLen {
		return "", oauth2.InvalidRequest("id_token_hint was not issued here")
	}
	return claims.Subject, nil
}

// parsePrompt checks prompt (OIDC Core §3.1.2.1): known values only, and
// "none" alone. Varde shows no consent screen: what a client receives is
// set when it is registered. prompt=consent asks that the person be
// asked, and a server that cannot obtain consent MUST answer with an
// error, typically consent_required; so it is not advertised in
// prompt_values_supported, and a request with it is refused.
func parsePrompt(s string) ([]string, error) {
	var out []string
	for _, v := range strings.Fields(s) {
		if v == "consent" {
			return nil, oauth2.ConsentRequired("this server asks no consent of the person: what a client receives is set when it is registered")
		}
		if !slices.Contains(promptsSupported, v) {
			return nil, oauth2.InvalidRequest("unsupported prompt value")
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if slices.Contains(out, "none") && len(out) > 1 {
		return nil, oauth2.InvalidRequest("prompt=none cannot be combined with other values")
	}
	return out, nil
}

// acrValues checks acr_values against the known levels and the client's
// allowed levels, returning acr URIs. acr_values lists the values a
// relying party asks for in order of preference (OIDC Core §3.1.2.1),
// so one Varde does not know, as a relying party that also speaks to
// other providers may list, is passed over, and so is a level the client
// may not ask for; a list with none left is refused, so that no request
// for a level goes unmet unnoticed. A client restricted to some levels
// that sends no acr_values gets its lowest allowed level.
func acrValues(c *store.Client, s string) ([]string, error) {
	var out []string
	var notAllowed []string
	values := strings.Fields(s)
	for _, v := range values {
		l, err := assurance.Parse(v)
		if err != nil {
			continue
		}
		if len(c.AllowedLevels) > 0 && !slices.Contains(c.AllowedLevels, l.String()) {
			notAllowed = append(notAllowed, l.String())
			continue
		}
		if !slices.Contains(out, l.ACR()) {
			out = append(out, l.ACR())
		}
	}
	if len(out) == 0 && len(notAllowed) > 0 {
		return nil, oauth2.InvalidRequest("acr_values asks only for levels this client may not ask for (%s); it may ask for %s",
			strings.Join(notAllowed, ", "), strings.Join(c.AllowedLevels, ", "))
	}
	if len(out) == 0 && len(values) > 0 {
		return nil, oauth2.InvalidRequest("no value of acr_values is supported here: see acr_values_supported")
	}
	if len(out) == 0 && len(c.AllowedLevels) > 0 {
		lowest := assurance.None
		for _, name := range c.AllowedLevels {
			if l, err := assurance.Parse(name); err == nil && (lowest == assurance.None || l < lowest) {
				lowest = l
			}
		}
		if lowest != assurance.None {
			out = []string{lowest.ACR()}
		}
	}
	return out, nil
}

// authorize is the authorization endpoint (RFC 6749 §3.1, OIDC Core
// §3.1.2). Until the client and redirect URI are known to be good,
// errors are shown to the person and never redirected (RFC 6749
// §4.1.2.1, RFC 9700 §4.11).
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	const ep = "authorize"
	if err := parseForm(r); err != nil {
		// 413 for a body over MaxBodySize, 400 for one that is malformed.
		p.errorPage(w, r, ep, pageBadRequest, oauth2.AsError(err).HTTPStatus(), err)
		return
	}
	form := r.Form
	if crossSitePost(r) {
		// Without Varde's cookies: posted again from Varde's origin,
		// before anything is read or marked (repost.go).
		p.repost(w, r, PathAuthorize, "repost", form)
		return
	}
	ctx := r.Context()
	if len(form["client_id"]) != 1 || form.Get("client_id") == "" {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("client_id is missing or repeated"))
		return
	}
	c, err := p.Clients.GetClient(ctx, form.Get("client_id"))
	if errors.Is(err, store.ErrNotFound) {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("unknown client"))
		return
	}
	if err != nil {
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return
	}
	if requestObjectURI(form) {
		// OIDC Core §6, §3.1.2.6: a request object by reference is not
		// supported (request_uri_parameter_supported is false).
		p.refuseRequestURI(w, r, c, form)
		return
	}
	// An empty request_uri is omitted (RFC 6749 §3.1); a repeated one is
	// authorizePushed's to refuse.
	if form.Get("request_uri") != "" || len(form["request_uri"]) > 1 {
		p.authorizePushed(w, r, c, form)
		return
	}
	target, err := resolveRedirect(c, form)
	if err != nil {
		p.errorPage(w, r, ep, pageRedirect, http.StatusBadRequest, err)
		return
	}
	req, err := p.validateAuthParams(c, form, target, false)
	if err == nil {
		req.HintSubject, err = p.hintSubject(ctx, form)
	}
	if err != nil {
		p.redirectError(w, r, ep, target, firstValue(form, "state"), err)
		return
	}
	now := p.Now()
	req.CreatedAt, req.ExpiresAt = now, now.Add(p.AuthRequestLifetime)
	p.proceed(w, r, c, req, target, false)
}

func firstValue(form url.Values, key string) string {
	if v := form[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestObjectURI reports whether the request's request_uri refers to a
// request object (OIDC Core §6.2): one value, not Varde's PAR prefix (RFC
// 9126 §4). Others are authorizePushed's to judge.
func requestObjectURI(form url.Values) bool {
	v := form["request_uri"]
	return len(v) == 1 && v[0] != "" && !strings.HasPrefix(v[0], RequestURIPrefix)
}

// refuseRequestURI answers a request_uri that refers to a request object
// (OIDC Core §6.2) with request_uri_not_supported: at the client's
// redirect URI, with iss (RFC 9207 §2), when the request names a
// registered one, or else on a page.
func (p *Provider) refuseRequestURI(w http.ResponseWriter, r *http.Request, c *store.Client, form url.Values) {
	const ep = "authorize"
	e := oauth2.NewError(oauth2.CodeRequestURINotSupported, "request objects by reference are not supported; use pushed authorization requests")
	target, err := resolveRedirect(c, form)
	if err != nil {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, e)
		return
	}
	p.redirectError(w, r, ep, target, firstValue(form, "state"), e)
}

// authorizePushed serves an authorization request by reference to a
// pushed request (RFC 9126 §4). Other parameters are ignored.
func (p *Provider) authorizePushed(w http.ResponseWriter, r *http.Request, c *store.Client, form url.Values) {
	const ep = "authorize"
	ctx := r.Context()
	if len(form["request_uri"]) != 1 {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("request_uri is repeated"))
		return
	}
	id, ok := strings.CutPrefix(form.Get("request_uri"), RequestURIPrefix)
	if !ok || id == "" {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequestURI("request_uri was not issued here"))
		return
	}
	now := p.Now()
	req, err := p.AuthRequests.GetAuthRequest(ctx, id, now)
	if errors.Is(err, store.ErrNotFound) {
		// The client named itself (client_id) and is registered: the
		// page leads back to it.
		p.showError(w, r, ep, http.StatusBadRequest, oauth2.InvalidRequestURI("request_uri is unknown or expired"), ExpiredLoginPage(c))
		return
	}
	if err != nil {
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return
	}
	// RFC 9126 §4: the request must have been pushed by this client.
	if !req.Pushed || req.ClientID != c.ID {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequestURI("request_uri belongs to another client"))
		return
	}
	target, ok := redirectFor(c, req.RedirectURI)
	if !ok {
		p.errorPage(w, r, ep, pageRedirect, http.StatusBadRequest, oauth2.InvalidRequest("redirect_uri is no longer registered"))
		return
	}
	// The request was pushed to a node that could sign the client's ID
	// tokens; this one may not, and it is left unspent.
	if err := p.canSignFor(c); err != nil {
		p.redirectError(w, r, ep, target, req.State, err)
		return
	}
	// RFC 9126 §4: request_uri is one-time use. Marking it used is one
	// atomic step, so two concurrent uses cannot both start a login. The
	// person now has the full login time, not the PAR lifetime.
	// Bound to this browser in the same step (ADR 47): the request's
	// ID goes on in URLs, but only this browser logs in for it.
	browser, err := p.markBrowser(w, r)
	if err != nil {
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return
	}
	req.Used, req.Browser = true, browser
	req.ExpiresAt = now.Add(p.AuthRequestLifetime)
	err = p.AuthRequests.UseAuthRequest(ctx, req.ID, req.Browser, req.ExpiresAt, now)
	switch {
	case errors.Is(err, store.ErrConflict):
		p.errorPage(w, r, ep, pageExpired, http.StatusBadRequest, oauth2.InvalidRequestURI("request_uri was already used"))
		return
	case errors.Is(err, store.ErrNotFound):
		p.showError(w, r, ep, http.StatusBadRequest, oauth2.InvalidRequestURI("request_uri is unknown or expired"), ExpiredLoginPage(c))
		return
	case store.Unavailable(err):
		// The client and its redirect URI are verified: it learns it may
		// try again (RFC 6749 §4.1.2.1).
		p.redirectError(w, r, ep, target, req.State, err)
		return
	case err != nil:
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return
	}
	p.proceed(w, r, c, req, target, true)
}

// proceed issues a code if the current session satisfies req, and
// otherwise sends the person to log in (or, for prompt=none, returns
// login_required: OIDC Core §3.1.2.6).
func (p *Provider) proceed(w http.ResponseWriter, r *http.Request, c *store.Client, req *store.AuthRequest, target string, stored bool) {
	const ep = "authorize"
	ctx := r.Context()
	sess := p.currentSession(r)
	if p.satisfies(c, sess, req, false) {
		p.issueCode(w, r, ep, c, req, sess, stored)
		return
	}
	if slices.Contains(req.Prompt, "none") {
		if stored {
			p.deleteRequest(ctx, req.ID)
		}
		p.redirectError(w, r, ep, target, req.State, oauth2.LoginRequired("no session satisfies the request"))
		return
	}
	if !stored {
		id, err := p.randomToken(16)
		if err != nil {
			p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
			return
		}
		req.ID = id
		// Only this browser logs in for it (ADR 47).
		if req.Browser, err = p.markBrowser(w, r); err != nil {
			p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
			return
		}
		err = p.AuthRequests.CreateAuthRequest(ctx, req)
		if retryLater(err) {
			p.redirectError(w, r, ep, target, req.State, err)
			return
		}
		if err != nil {
			p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
			return
		}
	}
	if p.Login != nil {
		p.Login(w, r, req, c)
		return
	}
	http.Redirect(w, r, p.LoginURL(req.ID), http.StatusSeeOther)
}

func (p *Provider) currentSession(r *http.Request) *store.Session {
	s, err := p.Sessions.Current(r)
	if err != nil {
		return nil
	}
	return s
}

// satisfies reports whether sess meets req's constraints and client c's
// registration. resumed is true when the person was sent to log in for
// this request: then a login made after the request counts as fresh for
// prompt=login and max_age=0 (OIDC Core §3.1.2.1); a max_age above zero
// is held by the session's auth_time whenever it was made.
func (p *Provider) satisfies(c *store.Client, sess *store.Session, req *store.AuthRequest, resumed bool) bool {
	if sess == nil || sess.PersonID == "" {
		return false
	}
	// A client that accepts logins from some providers only gets no code
	// for a session made through another: as for a level too low, the
	// person logs in again, through a provider it accepts.
	if len(c.Providers) > 0 && !slices.Contains(c.Providers, sess.Provider) {
		return false
	}
	// OIDC Core §3.1.2.1: a request that names its person with
	// id_token_hint is not answered from another person's session; the
	// person logs in (or, with prompt=none, the client gets
	// login_required). When someone else then logs in for the request,
	// resume answers login_required (hintMismatch).
	if p.hintMismatch(c, sess, req) {
		return false
	}
	ok, degraded := levelMet(c, sess, req)
	if !ok {
		return false
	}
	// Degraded mode is for an outage: once a provider that can reach
	// the level asked for is up again, a degraded session is no longer
	// enough for it. A login that just ended (resumed) was let through
	// by the broker, which decided on the same health.
	if degraded && !resumed && p.DegradedNow != nil && !p.DegradedNow(req, c) {
		return false
	}
	// OIDC Core §3.1.2.1: select_account SHOULD let the person choose
	// the account, and MUST NOT silently answer with the one at hand: the
	// person is sent to the login page for this request, where they
	// choose how, and so as whom, to log in.
	if slices.Contains(req.Prompt, "select_account") && !resumed {
		return false
	}
	fresh := resumed && !sess.AuthTime.Before(req.CreatedAt.Truncate(time.Second))
	// OIDC Core §3.1.2.1 (errata set 2): max_age=0 is prompt=login.
	if (slices.Contains(req.Prompt, "login") || req.MaxAge == 0) && !fresh {
		return false
	}
	// OIDC Core §3.1.2.1: with max_age, the OP MUST actively
	// re-authenticate when the last authentication is older. That holds
	// by the session's auth_time now, when the code would be issued, for
	// a login made for this very request too: a request may wait up to
	// an hour (ADR 50), and a login made at its start may be past
	// max_age by the time the browser resumes it. It is counted in whole
	// seconds, as the ID token's auth_time is and the relying party
	// checks it.
	if req.MaxAge > 0 && p.Now().Truncate(time.Second).Sub(sess.AuthTime.Truncate(time.Second)) > maxAge(req.MaxAge) {
		return false
	}
	return true
}

// hintMismatch reports whether req names its person with id_token_hint
// and sess is another person's.
func (p *Provider) hintMismatch(c *store.Client, sess *store.Session, req *store.AuthRequest) bool {
	return req.HintSubject != "" && sess != nil && sess.PersonID != "" && p.subject(c, sess.PersonID) != req.HintSubject
}

// maxAge is a max_age of secs seconds as a duration. A max_age longer
// than a Duration holds (about 292 years) is no limit at all, not one
// that wraps around to a negative duration, which would ask every
// session to log in again.
func maxAge(secs int) time.Duration {
	if int64(secs) > math.MaxInt64/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(secs) * time.Second
}

// validProviderHint accepts Varde's provider_hint extension parameter:
// empty, "any", or something shaped like a provider id. Which providers
// exist and may be used is the broker's business, not the protocol's.
func validProviderHint(h string) bool {
	if len(h) > 32 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// levelMet reports whether sess's level is enough for req, and whether
// only because client c's degraded-mode policy let a degraded login
// through. That is decided for each request: a degraded session that
// fully meets what another client asks for, or that a client without
// such a policy accepts at the level it asked for, is not degraded for
// that client, and its tokens do not say so.
func levelMet(c *store.Client, sess *store.Session, req *store.AuthRequest) (ok, degraded bool) {
	level, err := assurance.Parse(sess.Level)
	switch {
	case err != nil:
		return false, false
	case assurance.Satisfies(level, req.ACRValues):
		return true, false
	case degradedAllowed(c, sess, level):
		return true, true
	}
	return false, false
}

// degradedAllowed reports whether a login below the requested level is
// enough under the client's degraded-mode policy: only a login the broker
// marked degraded (no provider meeting the request was up), and only at
// or above the level the client registered for that case. The tokens say
// so (the "degraded" claim), so the client can limit what the person may
// do and ask again (acr_values with prompt=login) later.
func degradedAllowed(c *store.Client, sess *store.Session, level assurance.Level) bool {
	if !sess.Degraded || c.DegradedLevel == "" {
		return false
	}
	floor, err := assurance.Parse(c.DegradedLevel)
	return err == nil && level >= floor
}

// resume continues a stored request after the person logged in.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	const ep = "resume"
	req, c, ok := p.loginInProgress(w, r, ep)
	if !ok {
		return
	}
	sess := p.currentSession(r)
	// OIDC Core §3.1.2.1: when the person the id_token_hint names is not
	// the one logged in, the server SHOULD answer with an error such as
	// login_required; sending the person to log in again would loop.
	if p.hintMismatch(c, sess, req) {
		p.endRequest(w, r, ep, c, req, "hint_mismatch", oauth2.LoginRequired("the person who logged in is not the one id_token_hint names"))
		return
	}
	if !p.satisfies(c, sess, req, true) {
		http.Redirect(w, r, p.LoginURL(req.ID), http.StatusSeeOther)
		return
	}
	p.issueCode(w, r, ep, c, req, sess, true)
}

// cancelPage (GET PathCancel?req=ID) asks the person whether to stop
// the login, and changes nothing: a link in a mail, a prefetch or a
// leaked URL cannot end someone's login. Its form posts to cancel.
func (p *Provider) cancelPage(w http.ResponseWriter, r *http.Request) {
	req, c, ok := p.loginInProgress(w, r, "cancel")
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	p.render(w, r, http.StatusOK, "cancel", req.UILocales, struct{ ClientName, Action, LoginURL string }{
		ClientName: c.Name, Action: PathCancel + "?" + url.Values{"req": {req.ID}}.Encode(), LoginURL: p.LoginURL(req.ID),
	})
}

// crossOrigin refuses a browser's request sent from another site
// (Sec-Fetch-Site, or Origin against Host, as net/http checks them).
var crossOrigin = http.NewCrossOriginProtection()

// cancel (POST PathCancel?req=ID, from Varde's own pages) ends a login
// the person chose not to finish: the client gets error=access_denied
// (OIDC Core §3.1.2.6) at its verified redirect URI. A post another site
// made the browser send is refused, and the login goes on.
//
// A post with neither Sec-Fetch-Site nor Origin is let through, with no
// token bound to the browser: every browser that can log in with a
// passkey sends Origin with a cross-site POST, so such a post comes from
// a program, and a program that has the request's unguessable ID can
// as well drive the login itself. Cancelling changes no account, session
// or consent; the most it can do is make the person start the login
// again.
func (p *Provider) cancel(w http.ResponseWriter, r *http.Request) {
	const ep = "cancel"
	if err := crossOrigin.Check(r); err != nil {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusForbidden, oauth2.InvalidRequest("cancel was posted from another site"))
		return
	}
	req, c, ok := p.loginInProgress(w, r, ep)
	if !ok {
		return
	}
	reason, e := p.goneBack(req, c)
	p.endRequest(w, r, ep, c, req, reason, e)
}

// WaysIn is what a login page can offer a request (Provider.WaysIn).
type WaysIn int

const (
	// WaysOffered: at least one way to log in that can meet the
	// request is up.
	WaysOffered WaysIn = iota
	// WaysDown: every way to log in that the client accepts and that
	// can reach the level asked for is down just now.
	WaysDown
	// WaysNone: no way to log in that the client accepts can reach the
	// level asked for, up or down.
	WaysNone
)

// CodeUnmetAuthenticationRequirements is OpenID Connect Unmet
// Authentication Requirements 1.0 §4's error: the server cannot meet
// the relying party's requirements for the authentication.
const CodeUnmetAuthenticationRequirements = "unmet_authentication_requirements"

// Reasons of the failed authentication event of a login the person
// went back from (goneBack). They are the broker's words for the same
// (broker.ReasonNoProviderAvailable, broker.ReasonInsufficientLevel),
// so that the audit log does not count people who could not log in as
// people who chose not to.
const (
	reasonCancelled           = "cancelled"
	reasonNoProviderAvailable = "no_provider_available"
	reasonInsufficientLevel   = "insufficient_level"
)

// goneBack is the audit reason and the error client c gets for request
// req when the person goes back to it from Varde's pages: access_denied
// when a way to log in was on offer and the person chose not to use it
// (OIDC Core §3.1.2.6); when none was, why, so the service can tell the
// person to try again later (temporarily_unavailable, RFC 6749
// §4.1.2.1) rather than that they cancelled, or its operator can see
// that it asks for a level its providers cannot reach. Nothing about
// the person is in either: WaysIn looks at the request and the client
// only, so a blocked person's going back is a cancel like any other.
func (p *Provider) goneBack(req *store.AuthRequest, c *store.Client) (reason string, err error) {
	ways := WaysOffered
	if p.WaysIn != nil {
		ways = p.WaysIn(req, c)
	}
	switch ways {
	case WaysDown:
		return reasonNoProviderAvailable, oauth2.NewError(oauth2.CodeTemporarilyUnavailable,
			"the person went back: none of the ways to log in that this client accepts at the level it asked for is working just now; try again later (status_page in discovery says more)")
	case WaysNone:
		return reasonInsufficientLevel, oauth2.NewError(CodeUnmetAuthenticationRequirements,
			"the person went back: none of the ways to log in that this client accepts can reach the level it asked for; ask for a lower level in acr_values, or have the operator register it for other providers")
	}
	return reasonCancelled, oauth2.AccessDenied("the person cancelled the login")
}

// endRequest ends the login for req, a stored request of client c, with
// an error: the request is deleted, a failed authentication is audited
// with reason, and the person is sent back to the client with e (or, if
// its redirect URI is no longer registered, shown a page).
func (p *Provider) endRequest(w http.ResponseWriter, r *http.Request, ep string, c *store.Client, req *store.AuthRequest, reason string, e error) {
	target, ok := redirectFor(c, req.RedirectURI)
	if !ok {
		p.errorPage(w, r, ep, pageRedirect, http.StatusBadRequest, oauth2.InvalidRequest("redirect_uri is no longer registered"))
		return
	}
	// The request was pushed to a node that could sign the client's ID
	// tokens; this one may not, and it is left unspent.
	if err := p.canSignFor(c); err != nil {
		p.redirectError(w, r, ep, target, req.State, err)
		return
	}
	p.deleteRequest(r.Context(), req.ID)
	p.audit(r.Context(), &store.AuditEvent{Type: "authentication", ClientID: c.ID, Result: store.ResultFailure, Reason: reason})
	p.redirectError(w, r, ep, target, req.State, e)
}

// loginInProgress loads the request a login is for (?req=ID), and its
// client, or writes the page that explains why it cannot continue.
func (p *Provider) loginInProgress(w http.ResponseWriter, r *http.Request, ep string) (*store.AuthRequest, *store.Client, bool) {
	ctx := r.Context()
	id := r.URL.Query().Get("req")
	if id == "" {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("req is missing"))
		return nil, nil, false
	}
	req, err := LiveRequest(ctx, p.AuthRequests, id, p.Now())
	if errors.Is(err, store.ErrNotFound) {
		c := ExpiredClient(ctx, p.Clients, err, p.browserOf(r))
		p.showError(w, r, ep, http.StatusBadRequest, oauth2.InvalidRequest("unknown or expired request"), ExpiredLoginPage(c))
		return nil, nil, false
	}
	if err != nil {
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return nil, nil, false
	}
	if req.Pushed && !req.Used {
		// A pushed request only becomes a login through /authorize.
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("request was not started"))
		return nil, nil, false
	}
	if !InBrowser(req, p.browserOf(r)) {
		// Its ID is no key to it: only the browser it was presented in
		// acts on it (ADR 47).
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("the login was begun in another browser"))
		return nil, nil, false
	}
	c, err := p.Clients.GetClient(ctx, req.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		p.errorPage(w, r, ep, pageBadRequest, http.StatusBadRequest, oauth2.InvalidRequest("client is gone"))
		return nil, nil, false
	}
	if err != nil {
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
		return nil, nil, false
	}
	return req, c, true
}

// errRedirectGone is authorized's error for a request whose redirect
// URI the client no longer has registered.
var errRedirectGone = errors.New("redirect_uri is no longer registered")

// issueCode stores an authorization code for the session and sends the
// browser back to the client (RFC 6749 §4.1.2, RFC 9207 §2).
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ep string, c *store.Client, req *store.AuthRequest, sess *store.Session, stored bool) {
	target, err := p.authorized(r.Context(), c, req, sess, stored)
	switch {
	case errors.Is(err, errRedirectGone):
		p.errorPage(w, r, ep, pageRedirect, http.StatusBadRequest, oauth2.InvalidRequest("redirect_uri is no longer registered"))
	case errors.Is(err, errSessionEnded):
		p.errorPage(w, r, ep, pageExpired, http.StatusBadRequest, oauth2.InvalidRequest("the session ended while the request was handled"))
	case errors.Is(err, store.ErrNotFound):
		// A concurrent request for the same login got its code first.
		p.errorPage(w, r, ep, pageExpired, http.StatusBadRequest, oauth2.InvalidRequest("request was already used"))
	case retryLater(err):
		// No room for the code, or no store to keep it in: the relying
		// party learns it may try again, and the request goes, as the
		// code would have taken it.
		if stored {
			p.deleteRequest(r.Context(), req.ID)
		}
		target, _ := redirectFor(c, req.RedirectURI)
		p.redirectError(w, r, ep, target, req.State, err)
	case err != nil:
		p.errorPage(w, r, ep, pageInternal, http.StatusInternalServerError, err)
	default:
		http.Redirect(w, r, target, http.StatusSeeOther)
	}
}

// Continue ends a login the broker has just finished for req, a stored
// request of client c, with the new session sess: it does what GET
// /authorize/resume does, without sending the browser there first, and
// returns where the browser goes: the client's redirect URI with the
// code, state and iss.
//
// sess is not stored yet, and lists the clients of the session it
// continues, if any, not c: Continue calls save exactly once, to store
// it listing c, together with the consent event, when the login ends at
// the client now
// (one atomic write, so the person waits for one commit), or with no
// event when it does not. The code is made first, and handed out only
// once save has succeeded: a code that cannot be made (the request was
// used meanwhile, the store failed) leaves the session stored with no
// consent, and a failed save leaves a code nobody ever sees, which
// expires. An error from save is returned, and nothing is issued; the
// request, which the code's write spent, is given back (restore), so
// that the login page the person is then sent to finds it. When
// the request cannot end here (the session does not satisfy it, its
// redirect URI is no longer registered, it was used meanwhile, the store
// failed) Continue returns the resume URL instead, whose page or
// redirect says what happens next.
func (p *Provider) Continue(ctx context.Context, c *store.Client, req *store.AuthRequest, sess *store.Session,
	save func(events ...*store.AuditEvent) error) (string, error) {
	resume := PathResume + "?" + url.Values{"req": {req.ID}}.Encode()
	direct := !(req.Pushed && !req.Used) && p.satisfies(c, sess, req, true)
	var target, code string
	if direct {
		target, direct = redirectFor(c, req.RedirectURI)
	}
	if direct {
		var err error
		if code, err = p.createCode(ctx, c, req, sess, true); err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				p.Log.WarnContext(ctx, "continue login", "err", err)
			}
			direct = false
		}
	}
	var events []*store.AuditEvent
	if direct {
		// The session lists the client once a code for it exists, in the
		// same write, so that it is told when the session ends
		// (Back-Channel Logout §2.7). Without a code it is not listed, and
		// not told of a session it got nothing from; the resume page
		// lists it with the code it makes.
		if !slices.Contains(sess.Clients, c.ID) {
			sess.Clients = append(slices.Clone(sess.Clients), c.ID)
		}
		if e := p.auditWith(ctx, consentEvent(c, sess)); e != nil {
			events = append(events, e)
		}
	}
	if err := save(events...); err != nil {
		if direct {
			p.restore(ctx, req)
		}
		return "", err
	}
	if !direct {
		return resume, nil
	}
	return codeRedirect(p.Issuer, target, code, req.State), nil
}

// restore stores req again after the write of a code for it deleted it
// (createCode) and the session that code was for could not be stored:
// the code goes to nobody, so the request is as unspent as before, and
// the page the person is sent to (the login page saying the login did
// not work, ADR 49, or that it may have been stored) finds it, with the
// ways in to try again. A restore that fails leaves the request gone,
// as it was: that page then says the login cannot be found.
func (p *Provider) restore(ctx context.Context, req *store.AuthRequest) {
	if err := p.AuthRequests.CreateAuthRequest(ctx, req); err != nil {
		p.Log.WarnContext(ctx, "continue login: the request its code spent is not given back", "err", err)
	}
}

// consentEvent records that sess's person lets client c have what its
// registration says it receives.
func consentEvent(c *store.Client, sess *store.Session) *store.AuditEvent {
	return &store.AuditEvent{
		Type: "consent", PersonID: sess.PersonID, ClientID: c.ID, Provider: sess.Provider, Level: sess.Level,
		Result:  store.ResultSuccess,
		Details: map[string]string{"claims": strings.Join(releasedClaims(c), " "), "basis": "registration"},
	}
}

// codeRedirect is the authorization response (RFC 6749 §4.1.2, RFC 9207
// §2) at the client's redirect URI target.
func codeRedirect(issuer, target, code, state string) string {
	params := url.Values{"code": {code}, "iss": {issuer}}
	if state != "" {
		params.Set("state", state)
	}
	return withParams(target, params)
}

// authorized stores an authorization code for the session and returns
// the client's redirect URI with it. It records the consent, and the
// client in the session unless sess lists it already. errRedirectGone
// and store.ErrNotFound (the request was used meanwhile) mean no code was
// issued.
func (p *Provider) authorized(ctx context.Context, c *store.Client, req *store.AuthRequest, sess *store.Session, stored bool) (string, error) {
	target, ok := redirectFor(c, req.RedirectURI)
	if !ok {
		return "", errRedirectGone
	}
	code, err := p.createCode(ctx, c, req, sess, stored)
	if err != nil {
		return "", err
	}
	consent := consentEvent(c, sess)
	if slices.Contains(sess.Clients, c.ID) {
		p.audit(ctx, consent)
		return codeRedirect(p.Issuer, target, code, req.State), nil
	}
	// A client the session does not list would never be told when it
	// ends (Back-Channel Logout §2.7): the code it was to get stays here,
	// unknown to anyone, until it expires. ErrNotFound: the session ended
	// since it was read, a logout in another tab say, and its relying
	// parties were told already. The consent is appended in the same
	// write, so the audit trail holds no consent for a code withheld, and
	// the person waits for one commit, not two.
	err = p.SessionClients.AddSessionClient(ctx, sess.ID, c.ID, p.auditWith(ctx, consent))
	if errors.Is(err, store.ErrNotFound) {
		return "", errSessionEnded
	}
	if err != nil {
		return "", fmt.Errorf("record session client: %w", err)
	}
	return codeRedirect(p.Issuer, target, code, req.State), nil
}

// errSessionEnded: the session a code was to be issued in ended
// meanwhile, so no code was handed out.
var errSessionEnded = errors.New("session ended")

// createCode stores a new code for req. A stored request is deleted in
// the same write (one store operation instead of two), so it yields one
// code at most: if it is already gone, the error wraps store.ErrNotFound
// and no code is stored.
func (p *Provider) createCode(ctx context.Context, c *store.Client, req *store.AuthRequest, sess *store.Session, stored bool) (string, error) {
	code, err := p.randomToken(32)
	if err != nil {
		return "", err
	}
	grantID, err := p.randomToken(16)
	if err != nil {
		return "", err
	}
	// The code is degraded if this request was let through below its
	// level, not because the session once was for another client.
	_, degraded := levelMet(c, sess, req)
	now := p.Now()
	ac := &store.AuthCode{
		Hash: hash(code), GrantID: grantID, ClientID: c.ID, RedirectURI: req.RedirectURI,
		Scope: req.Scope, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		SessionID: sess.Root(), PersonID: sess.PersonID, Provider: sess.Provider, Level: sess.Level,
		AMR: sess.AMR, AuthTime: sess.AuthTime, Degraded: degraded, DPoPJKT: req.DPoPJKT,
		CreatedAt: now, ExpiresAt: now.Add(p.CodeLifetime),
	}
	if stored {
		err = p.AuthCodes.CreateAuthCodeForRequest(ctx, ac, req.ID)
	} else {
		err = p.AuthCodes.CreateAuthCode(ctx, ac)
	}
	if err != nil {
		return "", fmt.Errorf("store code: %w", err)
	}
	return code, nil
}

func (p *Provider) deleteRequest(ctx context.Context, id string) {
	if err := p.AuthRequests.DeleteAuthRequest(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.Log.WarnContext(ctx, "delete auth request", "err", err)
	}
}

// redirectError sends an error to the client's verified redirect URI
// (RFC 6749 §4.1.2.1) with iss (RFC 9207 §2).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, ep, target, state string, err error) {
	// No Retry-After: the answer goes to the client through the
	// person's browser, which would not heed it.
	e := oauth2.AsError(p.refusal(nil, r, ep, err))
	params := url.Values{"error": {e.Code}, "iss": {p.Issuer}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	if state != "" {
		params.Set("state", state)
	}
	http.Redirect(w, r, withParams(target, params), http.StatusSeeOther)
}

// withParams appends params to uri's query, keeping the registered query
// as it is (RFC 6749 §3.1.2).
func withParams(uri string, params url.Values) string {
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i] // RFC 6749 §3.1.2: no fragment; registration should not allow one
	}
	switch {
	case !strings.Contains(uri, "?"):
		uri += "?"
	case !strings.HasSuffix(uri, "?") && !strings.HasSuffix(uri, "&"):
		uri += "&"
	}
	return uri + params.Encode()
}
