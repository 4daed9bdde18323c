package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery     = "/.well-known/openid-configuration"
	PathJWKS          = "/jwks"
	PathPAR           = "/par"
	PathAuthorize     = "/authorize"
	PathResume        = "/authorize/resume"
	PathCancel        = "/authorize/cancel"
	PathToken         = "/token"
	PathRevocation    = "/revoke"
	PathIntrospection = "/introspect"
	PathUserinfo      = "/userinfo"
	PathLogout        = "/logout"
)

// PathAuthorizationServer is where RFC 8414 §3.1 puts the same metadata,
// for OAuth clients that look there. For an issuer with a path ("/eid"),
// RFC 8414 inserts this before the issuer's path; the node answers that
// location too (package app), and the proxy must forward it as well.
const PathAuthorizationServer = "/.well-known/oauth-authorization-server"

// RequestURIPrefix starts every request_uri the PAR endpoint returns
// (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// MaxBodySize caps every request body the endpoints read.
const MaxBodySize = 64 << 10

// Defaults for the Provider's lifetimes.
const (
	DefaultCodeLifetime         = 60 * time.Second
	MaxCodeLifetime             = 60 * time.Second
	DefaultPARLifetime          = 90 * time.Second
	DefaultAuthRequestLifetime  = 10 * time.Minute
	DefaultAccessTokenLifetime  = 10 * time.Minute
	DefaultIDTokenLifetime      = 10 * time.Minute
	DefaultRefreshTokenLifetime = 8 * time.Hour
	DefaultLogoutSignTimeout    = 5 * time.Second
)

// Sessions reads and ends the person's browser session at Varde.
// *session.Manager implements it. Any error from Current means "no
// session".
type Sessions interface {
	Current(r *http.Request) (*store.Session, error)
	// End ends the request's session (if any) and clears its cookie. It
	// returns the session it ended, nil if the request carried none; an
	// error means the session could not be ended.
	End(w http.ResponseWriter, r *http.Request) (*store.Session, error)
}

// LiveSessions says whether a session line has not ended, for refresh
// tokens that end with it (ADR 22). store.Sessions implements it.
type LiveSessions interface {
	SessionLineLive(ctx context.Context, root string, now time.Time) (bool, error)
}

// SessionClients records which clients received tokens in a session, for
// logout. store.Sessions implements it.
type SessionClients interface {
	AddSessionClient(ctx context.Context, sessionID, clientID string, e *store.AuditEvent) error
}

// Auditor appends to the audit log. It must not fail the request: it
// handles its own errors. *audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, e *store.AuditEvent)
	// Prepare readies e, as Record would, for a store write that appends
	// it with the record it is about: the time, redactions.
	Prepare(ctx context.Context, e *store.AuditEvent)
}

// Provider serves the OpenID Provider endpoints. Build it with every
// dependency set, then call Register once; Register fills zero optional
// fields with defaults. Do not change fields after Register.
type Provider struct {
	// Issuer is the issuer URL, exactly as in tokens (no trailing slash).
	Issuer string

	Clients      store.Clients
	AuthRequests store.AuthRequests
	AuthCodes    store.AuthCodes
	Grants       store.Grants
	Tokens       store.Tokens
	Persons      store.Persons

	Sessions       Sessions
	SessionClients SessionClients
	// LiveSessions says whether the session a grant without
	// offline_access came from is still live when its refresh token is
	// used (OIDC Core §11, ADR 22).
	LiveSessions LiveSessions
	// LogoutOutbox receives a logout token for every client that
	// registered a backchannel_logout_uri when a session it got tokens in
	// ends (Back-Channel Logout 1.0); nil: no back-channel logout, and
	// discovery does not offer it.
	LogoutOutbox LogoutOutbox

	// Signer signs ID tokens; KeySet serves /jwks and verifies
	// id_token_hint.
	Signer *keys.Signer
	// RSASigner signs the ID tokens and logout tokens of clients
	// registered for RS256 (store.Client.IDTokenAlg); nil: the node
	// signs ES256 only, discovery offers nothing else, and such a
	// client's tokens fail with server_error, never signed ES256 instead
	// (ADR 32). Its key set publishes it beside Signer's.
	RSASigner *keys.Signer
	KeySet    *keys.Set
	// ClientAuth authenticates clients at /par, /token and /revoke. Its
	// Audiences should be Audiences(Issuer): an assertion names the
	// issuer, or, from a client registered for it, one of the endpoint
	// URLs.
	ClientAuth *oauth2.ClientAuthenticator
	// DPoP verifies DPoP proofs (RFC 9449) at the PAR, token and userinfo
	// endpoints; nil: one over ClientAuth's replay cache, with this
	// Provider's clock and no nonces. With its Nonces set, every proof
	// must carry a nonce this server provided (§8, §9), and every
	// response of those endpoints carries the current one.
	DPoP *oauth2.DPoPVerifier
	// Audit may be nil (no audit log).
	Audit Auditor
	// Pages renders people-facing pages; nil falls back to plain text.
	Pages *httpx.Pages
	// AccountURL is the person's own account pages, which the logout
	// page links back to; "" for none.
	AccountURL string
	// LoginURL is where a request that needs a login goes; the broker
	// ends the login with Continue, or sends the browser back to
	// PathResume?req=reqID. Default "/login?req="+reqID.
	LoginURL func(reqID string) string
	// Login, if set, takes over client c's stored request req when it
	// needs a login at the authorization endpoint, by redirecting (to
	// LoginURL, or straight to a provider); nil redirects to LoginURL.
	Login func(w http.ResponseWriter, r *http.Request, req *store.AuthRequest, c *store.Client)
	// Browsers, if set, marks the browser each authorization request is
	// presented in, and only that browser may log in for it, resume it
	// or cancel it (ADR 47); nil binds no request to a browser.
	Browsers Browsers
	// Pushed, if set, is told of every request client c pushes (RFC
	// 9126), once it is stored and before the answer goes out; it must
	// return at once. The broker uses it to get the login ready.
	Pushed func(r *http.Request, req *store.AuthRequest, c *store.Client)
	// DegradedNow, if set, reports whether client c's degraded-mode
	// policy applies to req now: no provider that can reach the level it
	// asks for is up. A session that met a request only under that
	// policy is not reused by single sign-on once it no longer applies:
	// the person logs in again, at the level asked for. nil: the policy
	// always applies.
	DegradedNow func(req *store.AuthRequest, c *store.Client) bool
	// WaysIn, if set, says what the login page can offer client c's
	// request req now. A person who goes back to the client from a page
	// that offered no way to log in did not choose not to: the client
	// is told why (cancel), not that the person cancelled. nil: every
	// going back is a cancel.
	WaysIn func(req *store.AuthRequest, c *store.Client) WaysIn
	// SubjectSalt keys pairwise subject identifiers (OIDC Core §8.1). It
	// must be the same on every node and never change; at least 32 bytes.
	SubjectSalt []byte
	// StatusAPIPath and StatusPagePath, if set, are published in the
	// discovery document as status_endpoint and status_page.
	StatusAPIPath  string
	StatusPagePath string

	CodeLifetime         time.Duration // default and maximum 60 s
	PARLifetime          time.Duration // default 90 s
	AuthRequestLifetime  time.Duration // default 10 min
	AccessTokenLifetime  time.Duration // default 10 min
	IDTokenLifetime      time.Duration // default 10 min
	RefreshTokenLifetime time.Duration // default 8 h, counted from the code exchange
	// RefreshReuseInterval is how long after its rotation a refresh
	// token presented again by its own client, sender-constrained, is
	// taken for a retry after a lost answer (ADR 55); zero: never, every
	// use of a rotated refresh token revokes its grant.
	RefreshReuseInterval time.Duration
	// LogoutSignTimeout bounds how long the logout tokens of one session
	// end, signed up to four at once, are waited for (the signer takes no
	// context: a hardware module may stop answering); default 5 s.
	LogoutSignTimeout time.Duration

	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger
	// Metrics may be nil (metrics are kept but not exported).
	Metrics *Metrics

	// logoutSigning bounds the signing of logout tokens, so a signer
	// that stops answering leaves at most one session end's signing
	// running that nobody waits for (signLogouts).
	logoutSigning *keys.Bounded
	// keyless remembers the session ends SettleLeftoverEnds passed over
	// for want of an RSA key, so later rounds neither try nor report
	// them again.
	keyless keylessEnds
}

// Audiences returns this issuer's identifiers for
// oauth2.ClientAuthenticator.Audiences: the issuer itself, the one
// audience a client assertion may name, then the URLs of the endpoints
// that authenticate clients (token, PAR, revocation, introspection),
// accepted in its place only from a client registered with
// store.Client.LegacyEndpointAudience.
func Audiences(issuer string) []string {
	issuer = strings.TrimSuffix(issuer, "/")
	return []string{issuer, issuer + PathToken, issuer + PathPAR, issuer + PathRevocation, issuer + PathIntrospection}
}

// Check reports missing dependencies, all at once.
func (p *Provider) Check() error {
	var errs []error
	need := func(ok bool, name string) {
		if !ok {
			errs = append(errs, fmt.Errorf("oidc: %s is required", name))
		}
	}
	need(p.Issuer != "", "Issuer")
	need(p.Clients != nil, "Clients")
	need(p.AuthRequests != nil, "AuthRequests")
	need(p.AuthCodes != nil, "AuthCodes")
	need(p.Grants != nil, "Grants")
	need(p.Tokens != nil, "Tokens")
	need(p.Persons != nil, "Persons")
	need(p.Sessions != nil, "Sessions")
	need(p.SessionClients != nil, "SessionClients")
	need(p.LiveSessions != nil, "LiveSessions")
	need(p.Signer != nil, "Signer")
	need(p.KeySet != nil, "KeySet")
	need(p.ClientAuth != nil, "ClientAuth")
	if len(p.SubjectSalt) < 32 {
		errs = append(errs, errors.New("oidc: SubjectSalt must be at least 32 bytes"))
	}
	if p.DPoP != nil && p.DPoP.Nonces != nil && len(p.DPoP.Nonces.Key) < oauth2.MinDPoPNonceKeySize {
		errs = append(errs, fmt.Errorf("oidc: DPoP nonce key must be at least %d bytes", oauth2.MinDPoPNonceKeySize))
	}
	return errors.Join(errs...)
}

func (p *Provider) setDefaults() {
	p.Issuer = strings.TrimSuffix(p.Issuer, "/")
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.CodeLifetime, DefaultCodeLifetime)
	p.CodeLifetime = min(p.CodeLifetime, MaxCodeLifetime) // RFC 6749 §4.1.2: short-lived, 10 min at most
	def(&p.PARLifetime, DefaultPARLifetime)
	def(&p.AuthRequestLifetime, DefaultAuthRequestLifetime)
	def(&p.AccessTokenLifetime, DefaultAccessTokenLifetime)
	def(&p.IDTokenLifetime, DefaultIDTokenLifetime)
	def(&p.RefreshTokenLifetime, DefaultRefreshTokenLifetime)
	def(&p.LogoutSignTimeout, DefaultLogoutSignTimeout)
	if p.logoutSigning == nil {
		p.logoutSigning = keys.NewBounded()
	}
	if p.LoginURL == nil {
		p.LoginURL = func(id string) string { return "/login?req=" + id }
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.DPoP == nil && p.ClientAuth != nil {
		p.DPoP = &oauth2.DPoPVerifier{Replay: p.ClientAuth.Replay, Now: p.Now}
	}
	if p.Metrics == nil {
		p.Metrics, _ = NewMetrics(nil)
	}
}

// Register fills defaults and mounts every endpoint on mux.
//
// The endpoints a browser-based client calls with fetch() (discovery,
// JWKS, PAR, token, revocation, UserInfo) answer cross-origin requests
// from any origin, without credentials, and their preflights (ADR 16):
// RFC 9700 §2.6 allows CORS at the token, metadata and JWKS endpoints,
// RFC 7009 §2.3 at revocation, and OIDC Core §5.3 says UserInfo SHOULD
// support it. The authorization and logout endpoints and the pages
// behind them are navigations that use the session cookie: they answer
// no preflight and name no origin (RFC 9700 §2.6: CORS MUST NOT be
// supported at the authorization endpoint).
func (p *Provider) Register(mux *http.ServeMux) {
	p.setDefaults()
	p.handleFetch(mux, PathDiscovery, "discovery", p.discovery, http.MethodGet)
	p.handleFetch(mux, PathAuthorizationServer, "discovery", p.discovery, http.MethodGet)
	p.handleFetch(mux, PathJWKS, "jwks", p.jwks, http.MethodGet)
	p.handleFetch(mux, PathPAR, "par", p.dpopNonce(p.par), http.MethodPost)
	mux.Handle("GET "+PathAuthorize, p.endpoint("authorize", keepQuery(p.authorize)))
	mux.Handle("POST "+PathAuthorize, p.endpoint("authorize", keepQuery(p.authorize)))
	mux.Handle("GET "+PathResume, p.endpoint("resume", p.resume))
	mux.Handle("GET "+PathCancel, p.endpoint("cancel", p.cancelPage))
	mux.Handle("POST "+PathCancel, p.endpoint("cancel", p.cancel))
	p.handleFetch(mux, PathToken, "token", p.dpopNonce(p.token), http.MethodPost)
	p.handleFetch(mux, PathRevocation, "revocation", p.revocation, http.MethodPost)
	// Introspection is for resource servers, server to server, and takes
	// no public client: no CORS (ADR 16, ADR 17).
	mux.Handle("POST "+PathIntrospection, p.endpoint("introspection", p.introspection))
	mux.Handle(PathIntrospection, p.wrongMethod("introspection", http.MethodPost, http.MethodPost))
	p.handleFetch(mux, PathUserinfo, "userinfo", p.dpopNonce(p.userinfo), http.MethodGet, http.MethodPost)
	mux.Handle("GET "+PathLogout, p.endpoint("logout", keepQuery(p.logout)))
	mux.Handle("POST "+PathLogout, p.endpoint("logout", keepQuery(p.logout)))
	// A method the pages do not serve gets a page, not the mux's text.
	mux.Handle(PathAuthorize, p.wrongMethodPage(http.MethodGet, http.MethodPost))
	mux.Handle(PathResume, p.wrongMethodPage(http.MethodGet))
	mux.Handle(PathCancel, p.wrongMethodPage(http.MethodGet, http.MethodPost))
	mux.Handle(PathLogout, p.wrongMethodPage(http.MethodGet, http.MethodPost))
}

// wrongMethodPage answers a method a page the person's browser is sent
// to does not serve: 405 with Allow and a plain-language page
// (httpx.Pages.WrongMethod).
func (p *Provider) wrongMethodPage(methods ...string) http.Handler {
	if p.Pages != nil {
		return p.Pages.WrongMethod(methods...)
	}
	allow := strings.Join(append(slices.Clone(methods), http.MethodHead), ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	})
}

// keepQuery has the language links of the pages h answers with keep
// the relying party's whole request (httpx.KeepQuery).
func keepQuery(h func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { h(w, httpx.KeepQuery(r)) }
}

// corsMaxAge is how long a browser may reuse a preflight's answer:
// Chromium's cap. The answers never change while a node runs.
const corsMaxAge = 2 * time.Hour

// fetchCORS is the CORS of an endpoint a browser-based client calls
// with methods (ADR 16; OAuth 2.0 for Browser-Based Applications,
// draft-ietf-oauth-browser-based-apps-26 §6.3.3.4: the authorization
// server MUST send the CORS headers such a client needs).
func fetchCORS(methods ...string) httpx.CORS {
	return httpx.CORS{
		Methods: methods,
		// Beyond the CORS-safelisted headers: client authentication (RFC
		// 6749 §2.3.1) and access tokens (RFC 6750 §2.1, RFC 9449 §7.1)
		// in Authorization, DPoP proofs (RFC 9449 §4.1), and Content-Type,
		// which Fetch safelists for three media types only.
		Headers: []string{"Authorization", "DPoP", "Content-Type"},
		// What the client must read: the DPoP nonce for its next proof
		// (RFC 9449 §8.1, §9), and the challenge of a refused access
		// token or client, which says why (RFC 6750 §3, RFC 9449 §7.1);
		// and the answer's request ID (httpx.WithRequestID), which an
		// operator finds the answer by in the node's log.
		Expose: []string{oauth2.DPoPNonceHeader, "WWW-Authenticate", "X-Request-Id"},
		MaxAge: corsMaxAge,
	}
}

// handleFetch mounts h at path for each of methods, and a preflight
// answer at OPTIONS, with CORS for any origin and no credentials: these
// endpoints read no cookie (ADR 16). Any other method is answered 405
// with Allow (RFC 9110 §15.5.6) and an OAuth JSON invalid_request
// (RFC 6749 §5.2), with the CORS headers too, so that a script that
// used the wrong method can read why.
func (p *Provider) handleFetch(mux *http.ServeMux, path, name string, h func(http.ResponseWriter, *http.Request), methods ...string) {
	cors := fetchCORS(methods...)
	served := cors.Handler(p.endpoint(name, h))
	for _, m := range methods {
		mux.Handle(m+" "+path, served)
	}
	mux.Handle(http.MethodOptions+" "+path, cors.Preflight())
	mux.Handle(path, cors.Handler(p.wrongMethod(name, cors.Allow(), methods...)))
}

// wrongMethod answers a method the endpoint name does not serve: 405
// with allow in Allow (RFC 9110 §15.5.6) and an OAuth JSON
// invalid_request (RFC 6749 §5.2) naming the methods it serves.
func (p *Provider) wrongMethod(name, allow string, methods ...string) http.Handler {
	refused := oauth2.InvalidRequest("method not allowed: use %s", strings.Join(methods, " or "))
	refused.Status = http.StatusMethodNotAllowed
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		p.Metrics.errors.WithLabelValues(name, refused.Code).Inc()
		oauth2.WriteError(w, refused)
	})
}

// endpoint caps the body and measures the handler.
func (p *Provider) endpoint(name string, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
		}
		h(w, r)
		p.Metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

// formEncoded reports whether r's body is form-encoded, as the
// endpoints that take parameters in a body require (RFC 6749 §3.2, RFC
// 6750 §2.2).
func formEncoded(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded"
}

// parseForm parses the request's form, turning every failure into
// invalid_request (413 when the body is too large).
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &oauth2.Error{Code: oauth2.CodeInvalidRequest, Description: "request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return oauth2.InvalidRequest("malformed request")
	}
	return nil
}

// parameters are the request parameters Varde's endpoints read
// (TestEveryParameterReadIsJudged keeps the list whole). RFC 6749 §3.1:
// the server MUST ignore unrecognized parameters, so wellFormed judges
// these only; one Varde does not read may be one another specification
// lets a client repeat (RFC 8707 §2: resource).
var parameters = map[string]bool{
	// The authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1,
	// RFC 7636 §4.3, RFC 9126 §4, RFC 9449 §10; OIDC Core §7.2.1's
	// registration, refused) and Varde's own
	// provider_hint.
	"response_type": true, "client_id": true, "redirect_uri": true, "scope": true, "state": true,
	"response_mode": true, "nonce": true, "prompt": true, "max_age": true, "ui_locales": true,
	"id_token_hint": true, "login_hint": true, "acr_values": true, "request": true, "request_uri": true,
	"registration": true, "code_challenge": true, "code_challenge_method": true, "dpop_jkt": true, "provider_hint": true,
	// Token requests and client authentication (RFC 6749 §2.3.1, §4.1.3,
	// §6; RFC 7521 §4.2; RFC 7636 §4.5).
	"grant_type": true, "code": true, "code_verifier": true, "refresh_token": true,
	"client_secret": true, "client_assertion": true, "client_assertion_type": true,
	// Revocation and introspection (RFC 7009 §2.1, RFC 7662 §2.1).
	"token": true, "token_type_hint": true,
	// UserInfo (RFC 6750 §2.2), logout (RP-Initiated Logout §2) and the
	// logout page's own form, and the form of a queued logout token
	// (Back-Channel Logout §2.5).
	"access_token": true, "post_logout_redirect_uri": true, "logout_token": true, "confirm": true,
}

// wellFormed returns an invalid_request error naming the first
// parameter of form that Varde reads (parameters) and that occurs more
// than once (RFC 6749 §3.1, §3.2: parameters MUST NOT be included more
// than once), or whose value is not text: invalid UTF-8 or a NUL
// character, which no parameter of the protocol holds and which a store
// need not keep. Other parameters are ignored (RFC 6749 §3.1).
func wellFormed(form map[string][]string) error {
	var repeated, notText []string
	for k, v := range form {
		if !parameters[k] {
			continue
		}
		if len(v) > 1 {
			repeated = append(repeated, k)
		}
		for _, s := range v {
			if !isText(s) {
				notText = append(notText, k)
				break
			}
		}
	}
	if len(repeated) > 0 {
		return oauth2.InvalidRequest("parameter %s is repeated", minString(repeated))
	}
	if len(notText) > 0 {
		return oauth2.InvalidRequest("parameter %s is not valid UTF-8 text", minString(notText))
	}
	return nil
}

// isText reports whether s is valid UTF-8 without NUL characters.
func isText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func minString(s []string) string {
	m := s[0]
	for _, v := range s[1:] {
		m = min(m, v)
	}
	return m
}

// jsonError writes err as an OAuth JSON error, logging internal errors
// once and counting every error.
func (p *Provider) jsonError(w http.ResponseWriter, r *http.Request, endpoint string, err error) {
	oauth2.WriteError(w, p.refusal(w, r, endpoint, err))
}

// refusal is the one place an endpoint's error becomes the protocol
// error it answers with: it turns an error that means "try again"
// (retryable) into temporarily_unavailable with a Retry-After header on
// w (nil: none), logs an internal error once, and counts the error by
// endpoint and code.
func (p *Provider) refusal(w http.ResponseWriter, r *http.Request, endpoint string, err error) error {
	mapped, retry := retryable(r.Context(), err)
	if retry > 0 && w != nil {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	e := oauth2.AsError(mapped)
	switch {
	case store.Unavailable(err):
		p.Log.WarnContext(r.Context(), "oidc endpoint: store unavailable", "endpoint", endpoint, "err", err, "req", httpx.RequestID(r.Context()))
	case oauth2.IsInternal(mapped):
		p.Log.ErrorContext(r.Context(), "oidc endpoint", "endpoint", endpoint, "err", err, "req", httpx.RequestID(r.Context()))
	default:
		p.Log.DebugContext(r.Context(), "oidc request refused", "endpoint", endpoint, "error", e.Code, "description", e.Description, "detail", e.Detail)
	}
	p.Metrics.errors.WithLabelValues(endpoint, e.Code).Inc()
	return mapped
}

// retryLater reports whether err means "try again shortly" (the flow
// state full, or the store unavailable), which retryable turns into
// temporarily_unavailable.
func retryLater(err error) bool {
	return errors.Is(err, store.ErrFull) || store.Unavailable(err)
}

// storeRetry is the Retry-After, in seconds, of a JSON answer refused
// because the store could not be reached or is overloaded, or because
// this node cannot sign the client's ID tokens: long enough for a
// failover or a restart, or for a load balancer to take the node out,
// short enough that a client's retry finds it done.
const storeRetry = 30

// retryable turns an error that means "try again" into
// temporarily_unavailable (RFC 6749 §4.1.2.1, §5.2 as extended by the
// IANA OAuth registry; 503 with Retry-After), which a relying party can
// act on, instead of server_error, and returns the Retry-After in
// seconds with it:
//   - store.ErrFull, the node's flow state being full (a flood, or more
//     logins at once than it may hold); like every protocol refusal it
//     is not logged as an error, since a flood would fill the log too;
//   - store.ErrUnavailable, the store not reachable or overloaded (a
//     database restart or failover, too many connections, a lock not
//     had in time): the description carries the request ID, so that an
//     operator can find the log line the client quotes;
//   - ErrNoRSAKey, a client registered for RS256 ID tokens at a node
//     without an RSA key (ADR 32): the node's /readyz answers 503, so a
//     load balancer sends the client's retry to a node that has one.
//
// Any other error is returned as it is, with 0.
func retryable(ctx context.Context, err error) (error, int) {
	switch {
	case errors.Is(err, store.ErrFull):
		return oauth2.NewError(oauth2.CodeTemporarilyUnavailable, "too many logins are in progress here; try again in a minute"), httpx.BusyRetry
	case store.Unavailable(err):
		e := oauth2.NewError(oauth2.CodeTemporarilyUnavailable, "the service cannot reach its records just now; try again shortly; reference %s", httpx.RequestID(ctx))
		e.Detail = err.Error()
		return e, storeRetry
	case errors.Is(err, ErrNoRSAKey):
		e := oauth2.NewError(oauth2.CodeTemporarilyUnavailable, "this server cannot sign this client's ID tokens (RS256) just now; try again shortly; reference %s", httpx.RequestID(ctx))
		e.Detail = err.Error()
		return e, storeRetry
	}
	return err, 0
}

// Plain-language page kinds; each has title, message and next keys under
// "error.<kind>." in the locale catalogues.
const (
	pageBadRequest = "badrequest"
	pageExpired    = "expired"
	pageInternal   = "internal"
	pageRedirect   = "redirect"
	// pageUnavailable: the store could not be reached; nothing was lost,
	// try again in a minute (503).
	pageUnavailable = "unavailable"
	// pageLogoutRefused: a logout confirmation not made by the page shown
	// to the session; the person is still logged in.
	pageLogoutRefused = "logoutrefused"
	// pageLogoutBad: a logout request that was malformed or whose
	// id_token_hint Varde cannot use; nothing changed. Not the bad
	// request page, which tells the person to start a login again.
	pageLogoutBad = "logoutbad"
)

// errorPage shows a person a plain-language error page. err (for the
// log) is never shown.
// An error that means the store could not be reached shows the
// unavailable page with 503 and a Retry-After instead, whatever kind
// and status the caller chose.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, endpoint, kind string, status int, err error) {
	p.showError(w, r, endpoint, status, err, kindPage(kind))
}

// kindPage is the page of kind: its title, message and next keys.
func kindPage(kind string) httpx.ErrorPage {
	return httpx.ErrorPage{Title: "error." + kind + ".title", Message: "error." + kind + ".message", Next: "error." + kind + ".next"}
}

// showError is errorPage with the page given whole.
func (p *Provider) showError(w http.ResponseWriter, r *http.Request, endpoint string, status int, err error, page httpx.ErrorPage) {
	if store.Unavailable(err) {
		page, status = kindPage(pageUnavailable), http.StatusServiceUnavailable
		p.refusal(w, r, endpoint, err)
	} else {
		code := oauth2.AsError(err).Code
		if status >= 500 {
			p.Log.ErrorContext(r.Context(), "oidc endpoint", "endpoint", endpoint, "err", err, "req", httpx.RequestID(r.Context()))
		} else {
			p.Log.InfoContext(r.Context(), "oidc request refused", "endpoint", endpoint, "err", err, "req", httpx.RequestID(r.Context()))
		}
		p.Metrics.errors.WithLabelValues(endpoint, code).Inc()
	}
	if p.Pages == nil {
		http.Error(w, http.StatusText(status), status)
		return
	}
	lang := p.Pages.Locale(r, strings.Fields(formValue(r, "ui_locales")))
	p.Pages.Error(w, r, status, lang, page)
}

// render shows a page, or plain text without Pages.
func (p *Provider) render(w http.ResponseWriter, r *http.Request, status int, name string, uiLocales []string, data any) {
	if p.Pages == nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, name, status)
		return
	}
	p.Pages.Render(w, r, status, name, p.Pages.Locale(r, uiLocales), data)
}

func (p *Provider) audit(ctx context.Context, e *store.AuditEvent) {
	if p.Audit == nil {
		return
	}
	e.Time = p.Now()
	p.Audit.Record(ctx, e)
}

// auditWith readies e for a store write that appends it together with
// what it records (store.Grants.CreateGrantTokens,
// store.Tokens.RotateToken); nil when there is no audit log.
func (p *Provider) auditWith(ctx context.Context, e *store.AuditEvent) *store.AuditEvent {
	if p.Audit == nil {
		return nil
	}
	e.Time = p.Now()
	p.Audit.Prepare(ctx, e)
	return e
}

// randomToken returns n random bytes, base64url encoded.
func (p *Provider) randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.Rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// formValue reads a parameter from the parsed form if there is one, else
// from the query, without parsing the body.
func formValue(r *http.Request, key string) string {
	if r.Form != nil {
		return r.Form.Get(key)
	}
	return r.URL.Query().Get(key)
}
