package oidcup

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// Method is the provider.Result method of every upstream login.
const Method = provider.MethodUpstream

// BrowserCookie binds a login to the browser that started it (RFC 9700
// §4.7.1: state must be bound to the user agent). It holds a random
// value; the login's stored state holds its hash. It is the cookie's
// name over plain HTTP; over HTTPS it has a prefix (browserCookieName).
const BrowserCookie = "varde_upstream"

// Auditor records audit events; audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, e *store.AuditEvent)
}

// Deps are what a Provider needs from the rest of the node.
type Deps struct {
	// HTTPClient talks to the upstream. nil, or one without a transport,
	// means httpx.OutboundTransport (an answer's header bounded). It is
	// copied, and the copy never follows redirects; every request is
	// bounded by Config.Timeouts.
	HTTPClient *http.Client
	// Challenges holds each login's state, nonce and PKCE verifier,
	// single use (required).
	Challenges store.Challenges
	// SharedChallenges says that other nodes use Challenges too (a
	// shared PostgreSQL store, ADR 13). A request pushed early (Prepare)
	// is then also stored there, so that the node the browser reaches
	// can use it, and Start looks for one there. A single node keeps it
	// in memory only: storing it would be a write nobody reads, and
	// looking for it a store operation on every login.
	SharedChallenges bool
	// StateComponent and NodeComponent name the status components a
	// login that fails on Varde's side is audited against
	// (provider.DetailFault), never this upstream: StateComponent the
	// one that keeps the login state, for a failure to store or take
	// it ("store", the default; the node's own where flow state is
	// kept in memory), NodeComponent the node ("node:<name>"; default
	// "node"), for any other failure of its own, such as its random
	// source.
	StateComponent, NodeComponent string
	// Finisher receives the outcome (required): the broker.
	Finisher provider.Finisher
	// Pages renders plain-language error pages; nil falls back to plain
	// text.
	Pages *httpx.Pages
	// Audit may be nil (no audit log).
	Audit Auditor
	Now   func() time.Time
	Rand  io.Reader
	Log   *slog.Logger
}

// Provider logs people in at one upstream OpenID provider with the
// authorization code flow and reports what the upstream proved. It
// implements provider.Provider and provider.Router.
type Provider struct {
	cfg    Config
	t      Timeouts
	alg    jose.SignatureAlgorithm
	signer *keySigner // private_key_jwt only
	// published is the client key set served at JWKSPath: the signer's
	// public key, then the next and previous keys, which never sign.
	published []jose.JSONWebKey
	// jws signs client assertions with signer; built once, as it is
	// safe for concurrent use.
	jws      jose.Signer
	hc       *http.Client
	fin      provider.Finisher
	chal     store.Challenges
	pages    *httpx.Pages
	auditor  Auditor
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	meta     cached[*metadata]
	keys     cached[jwks]
	secureCk bool
	// cookiePath is the browser cookie's Path: the path Varde is served
	// under (the issuer's), so that it covers every provider's callback
	// and every page that starts an upstream login (the broker's /login,
	// /login/start, /authorize and /account/link), and Start sees the
	// cookie and keeps its value.
	cookiePath string
	prep       preparedSet
	// ahead holds client assertions signed ahead (private_key_jwt only).
	ahead aheadSet
	// shared is Deps.SharedChallenges.
	shared bool
	// accountKey keys accountHandle; random, and this process's own.
	accountKey []byte
	// stateAt and node are Deps.StateComponent and NodeComponent.
	stateAt, node string
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Router   = (*Provider)(nil)
	_ provider.Preparer = (*Provider)(nil)
)

// New checks cfg and d (every problem at once, before any I/O) and
// returns the provider. It does not contact the upstream: metadata and
// keys are fetched on first use, or by Probe.
func New(cfg Config, d Deps) (*Provider, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if d.Challenges == nil {
		errs = append(errs, errors.New("oidcup: Challenges is required"))
	}
	if d.Finisher == nil {
		errs = append(errs, errors.New("oidcup: Finisher is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &Provider{
		cfg: cfg, t: cfg.Timeouts.withDefaults(), fin: d.Finisher, chal: d.Challenges,
		pages: d.Pages, auditor: d.Audit, now: d.Now, rand: d.Rand, log: d.Log, shared: d.SharedChallenges,
		stateAt: cmp.Or(d.StateComponent, "store"), node: cmp.Or(d.NodeComponent, "node"),
	}
	p.cfg.Scopes = scopes(cfg.Scopes)
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.accountKey = make([]byte, 32)
	if _, err := io.ReadFull(p.rand, p.accountKey); err != nil {
		return nil, fmt.Errorf("upstream %q: random: %w", cfg.ID, err)
	}
	hc := http.Client{}
	if d.HTTPClient != nil {
		hc = *d.HTTPClient
	}
	if hc.Transport == nil {
		hc.Transport = httpx.OutboundTransport()
	}
	// A token or PAR request that is redirected would take the client's
	// credentials somewhere else; metadata must come from the URL asked.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p.hc = &hc
	if cfg.AuthMethod == AuthPrivateKeyJWT {
		alg, _ := assertionAlg(cfg.ClientKey, cfg.ClientKeyAlg) // checked by Validate
		s, err := newKeySigner(cfg.ClientKey, alg, cfg.KeyID, p.rand)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: client key: %w", cfg.ID, err)
		}
		p.alg, p.signer = alg, s
		set, err := cfg.ClientJWKS()
		if err != nil {
			return nil, err
		}
		p.published = set.Keys
		if p.jws, err = jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: s}, (&jose.SignerOptions{}).WithType("JWT")); err != nil {
			return nil, fmt.Errorf("upstream %q: client key: %w", cfg.ID, err)
		}
	}
	u, _ := url.Parse(cfg.RedirectURI)
	p.secureCk = u.Scheme == "https"
	if p.cookiePath = basePath(u.Path, cfg.ID); p.cookiePath == "" {
		p.cookiePath = "/"
	}
	return p, nil
}

// scopes puts openid first and drops repeats.
func scopes(in []string) []string {
	out := []string{"openid"}
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Info implements provider.Provider.
func (p *Provider) Info() provider.Info {
	return provider.Info{ID: p.cfg.ID, Name: p.cfg.Name, MaxLevel: p.cfg.MaxLevel}
}

// Register implements provider.Router: it mounts the callback and, for
// private_key_jwt, the client's public key set.
func (p *Provider) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+CallbackPath(p.cfg.ID), p.callback)
	if p.signer != nil {
		mux.HandleFunc("GET "+JWKSPath(p.cfg.ID), p.jwks)
	}
}

// ClientJWKS returns the public keys Varde authenticates with at the
// upstream (empty for client_secret_basic), for registering Varde there:
// first the key that signs, then the next and the previous key, if
// configured, which never sign (ADR 56).
func (p *Provider) ClientJWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, p.published...)}
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(p.ClientJWKS())
}

// loginState is what Start stores for the callback, under a key derived
// from the state value and the browser cookie's (loginKey).
type loginState struct {
	Provider string `json:"p"`
	Attempt  string `json:"a"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Locale   string `json:"l,omitempty"`
	// Started is when the request was sent (Unix seconds).
	Started int64 `json:"t"`
	// Fresh: the request asked for a new authentication (prompt=login
	// and max_age=0), for this attempt (provider.Attempt.Fresh) beyond
	// Config.PromptLogin; MaxAge: it carried that max_age, in seconds.
	// Either makes auth_time required.
	Fresh  bool  `json:"f,omitempty"`
	MaxAge int64 `json:"m,omitempty"`
	// Pushed: the request went to the upstream by PAR (RFC 9126), so
	// the browser never held the nonce and could not change it.
	Pushed bool `json:"pu,omitempty"`
}

// fresh says whether the request for st asked for a new authentication.
func (p *Provider) fresh(st *loginState) bool { return p.cfg.PromptLogin || st.Fresh }

// issued is what Start stores beside the login state, under a key of
// the state alone (stateKey): to whom it was issued, so that a callback
// that finds no login for its state and browser can tell another
// browser from a state that is unknown, used or expired.
type issued struct {
	// Browser is the SHA-256 of the browser cookie's value.
	Browser []byte `json:"b"`
	Locale  string `json:"l,omitempty"`
}

// loginKey is where a login's state is stored: a hash of the state and
// of the value of the browser cookie of the browser it was issued to,
// so that the store holds nothing a callback could be forged from, and
// only that browser's callback finds it (and spends it); per provider,
// so a state issued for one upstream is never found at another's
// callback.
func (p *Provider) loginKey(state, browser string) string {
	sum := sha256.Sum256([]byte("oidcup-login\x00" + p.cfg.ID + "\x00" + state + "\x00" + browser))
	return "upstream:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// stateKey is where what a state was issued to is stored: a hash of the
// state alone, per provider, in a namespace of its own, so that a
// store that bounds each namespace (package flowmem) keeps as many
// logins as before.
func (p *Provider) stateKey(state string) string {
	sum := sha256.Sum256([]byte("oidcup-issued\x00" + p.cfg.ID + "\x00" + state))
	return "upstream-issued:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Start implements provider.Provider: it stores a fresh state, nonce and
// PKCE verifier and sends the browser to the upstream's authorization
// endpoint (pushing the request first when PAR is used, unless Prepare
// pushed it already).
func (p *Provider) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) {
	ctx := r.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		p.failStart(w, r, a, discoveryFailed(err))
		return
	}
	browser, err := p.browserValue(r)
	if err != nil {
		p.failStart(w, r, a, p.nodeFailure(ReasonInternal, "%v", err))
		return
	}
	e := p.takePrepared(ctx, a, m)
	var sec secrets
	if e != nil {
		sec = e.secrets
	} else if sec, err = p.newSecrets(); err != nil {
		p.failStart(w, r, a, p.nodeFailure(ReasonInternal, "%v", err))
		return
	}
	sum := sha256.Sum256([]byte(browser))
	until := p.now().Add(p.t.Login)
	// First to whom, then the login: a login is never stored without
	// the record that tells its callbacks apart. The first before any
	// push: a node that cannot keep a login, its memory full, asks
	// nothing of the upstream. (A push that fails leaves it to expire.)
	is, err := json.Marshal(issued{Browser: sum[:], Locale: a.Locale})
	if err == nil {
		err = p.chal.PutChallenge(ctx, p.stateKey(sec.state), is, until)
	}
	if err != nil {
		p.notKept(w, r, a, err)
		return
	}
	var (
		params url.Values
		pushed bool
	)
	if e != nil {
		// RFC 9126 §4: only client_id and request_uri go in the front
		// channel.
		params, pushed = url.Values{"client_id": {p.cfg.ClientID}, "request_uri": {e.requestURI}}, true
	} else {
		params = p.authParams(a, sec)
		// RFC 9126 §5: an upstream that requires PAR gets every request
		// pushed; others when the configuration asks.
		if p.pushes(m) {
			if m.PAREndpoint == "" {
				p.failStart(w, r, a, reject(ReasonPAR, "PAR is configured but the upstream has no PAR endpoint"))
				return
			}
			requestURI, _, rej := p.push(ctx, m, params)
			if rej != nil && rej.status == http.StatusBadRequest && params.Has("login_hint") {
				// The hint is the relying party's, and so whoever wrote
				// the request's: an upstream that refuses it must not
				// fail the login, nor count as failing. Without it the
				// person types who they are at the upstream.
				p.log.InfoContext(ctx, "upstream refused the pushed request with a login hint; pushing it without", "provider", p.cfg.ID)
				params.Del("login_hint")
				requestURI, _, rej = p.push(ctx, m, params)
			}
			if rej != nil {
				p.meta.invalidate()
				p.failStart(w, r, a, rej)
				return
			}
			params, pushed = url.Values{"client_id": {p.cfg.ClientID}, "request_uri": {requestURI}}, true
		}
	}
	st, err := json.Marshal(loginState{Provider: p.cfg.ID, Attempt: a.ID, Nonce: sec.nonce, Verifier: sec.verifier, Locale: a.Locale,
		Started: p.now().Unix(), Fresh: a.Fresh, MaxAge: maxAgeSeconds(a), Pushed: pushed})
	if err == nil {
		err = p.chal.PutChallenge(ctx, p.loginKey(sec.state, browser), st, until)
	}
	if err != nil {
		p.notKept(w, r, a, err)
		return
	}
	p.setBrowserCookie(w, browser)
	http.Redirect(w, r, withParams(m.AuthorizationEndpoint, params), http.StatusSeeOther)
	if p.jws != nil {
		// While the person is at the upstream: the assertion of this
		// login's token request, and of the next login's push.
		go p.signAhead()
	}
}

// notKept answers a start whose login state could not be stored. When
// the store could not be reached (store.Unavailable) nothing was stored,
// and the attempt is the broker's still: the same start works once the
// store answers, and the upstream is not to blame. When the node's flow
// state is full (store.ErrFull: a flood of starts, or more logins than
// the node may hold; ADR 10, 24), the person is told it is busy and to
// try again in a minute, as the passkey ceremonies tell them: nothing
// is failed at the broker, and nothing is logged or audited, since a
// flood would fill both. Anything else is the node's failure.
func (p *Provider) notKept(w http.ResponseWriter, r *http.Request, a provider.Attempt, err error) {
	switch {
	case store.Unavailable(err):
		p.refused(r.Context(), "start", p.stateFailure(ReasonStoreUnavailable, "store login state: %v", err), nil)
		p.unavailable(w, r, a.Locale, "error.unavailable.next")
	case errors.Is(err, store.ErrFull):
		p.busy(w, r, a.Locale)
	default:
		p.failStart(w, r, a, p.stateFailure(provider.ErrorReason(err), "store login state: %v", err))
	}
}

// busy tells the person, in locale if set, that too many people are
// logging in at the node to start another login now (503, Retry-After).
func (p *Provider) busy(w http.ResponseWriter, r *http.Request, locale string) {
	w.Header().Set("Retry-After", strconv.Itoa(httpx.BusyRetry))
	if p.pages == nil {
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	p.pages.Error(w, r, http.StatusServiceUnavailable, p.lang(r, locale), httpx.BusyPage())
}

// pushes says whether authorization requests to this upstream are pushed
// (RFC 9126 §5: always if it requires PAR, else when configured).
func (p *Provider) pushes(m *metadata) bool {
	return m.RequirePAR || p.cfg.UsePAR
}

// secrets are one login's state, nonce and PKCE verifier.
type secrets struct {
	state, nonce, verifier string
}

// newSecrets makes a login's state, nonce and verifier, each of 256
// random bits (RFC 6749 §10.10, RFC 7636 §7.1: the verifier is 43
// characters of base64url).
func (p *Provider) newSecrets() (secrets, error) {
	var vals [3]string
	for i := range vals {
		v, err := p.random(32)
		if err != nil {
			return secrets{}, err
		}
		vals[i] = v
	}
	return secrets{state: vals[0], nonce: vals[1], verifier: vals[2]}, nil
}

// authParams is the authorization request for attempt a (OIDC Core
// §3.1.2.1), with PKCE S256 always (RFC 7636 §4.3, RFC 9700 §2.1.1).
func (p *Provider) authParams(a provider.Attempt, sec secrets) url.Values {
	params := url.Values{
		"response_type":         {"code"},
		"client_id":             {p.cfg.ClientID},
		"redirect_uri":          {p.cfg.RedirectURI},
		"scope":                 {strings.Join(p.cfg.Scopes, " ")},
		"state":                 {sec.state},
		"nonce":                 {sec.nonce},
		"code_challenge":        {s256(sec.verifier)},
		"code_challenge_method": {"S256"},
	}
	if acr := p.acrValues(a.MinLevel); len(acr) > 0 {
		params.Set("acr_values", strings.Join(acr, " "))
	}
	if a.Locale != "" {
		params.Set("ui_locales", a.Locale)
	}
	if a.LoginHint != "" && p.cfg.ForwardLoginHint {
		params.Set("login_hint", a.LoginHint)
	}
	switch {
	case p.cfg.PromptLogin || a.Fresh:
		// OIDC Core §3.1.2.1: the upstream must authenticate afresh.
		// max_age=0 asks the same (errata set 2) and makes auth_time
		// REQUIRED in the ID token, so a reused session shows.
		params.Set("prompt", "login")
		params.Set("max_age", "0")
	case a.MaxAge > 0:
		// The relying party's max_age, as it asked: auth_time is then
		// REQUIRED too, and Varde checks it against the request.
		params.Set("max_age", strconv.FormatInt(maxAgeSeconds(a), 10))
	}
	return params
}

// maxMaxAge is the longest max_age sent to an upstream, in seconds
// (68 years): some servers read max_age as a 32-bit number and refuse a
// request with a longer one. The relying party's max_age is anyone's
// choice (they send the request through their browser), and a pushed
// request the upstream refuses counts against its health: a longer
// one must not let anyone make a working upstream down. No session is
// older.
const maxMaxAge = math.MaxInt32

// maxAgeSeconds is a's max_age in whole seconds, rounded up so that it
// is never stricter than asked, and at most maxMaxAge; 0 if it has none.
func maxAgeSeconds(a provider.Attempt) int64 {
	if a.MaxAge <= 0 {
		return 0
	}
	// Rounded up without adding to the duration, which may be the
	// longest one there is.
	s := int64(a.MaxAge / time.Second)
	if a.MaxAge%time.Second != 0 {
		s++
	}
	return min(s, maxMaxAge)
}

// acrValues are the upstream acr values that meet min, lowest level
// first, so the upstream asks no more of the person than needed (OIDC
// Core §3.1.2.1: acr_values in order of preference).
func (p *Provider) acrValues(min assurance.Level) []string {
	var out []string
	for acr, l := range p.cfg.ACRMap {
		if l >= min {
			out = append(out, acr)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if d := int(p.cfg.ACRMap[a]) - int(p.cfg.ACRMap[b]); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}

// browserCookieName is the browser cookie's name, as the session
// cookie's (session.SecureName): with the __Host- prefix over HTTPS at
// the root of the host, so that browsers take it only from this host
// over HTTPS, and __Secure- under an issuer's path (ADR 25). Without
// it, a sibling subdomain or a plain-HTTP page of the host could set
// the cookie to a value it knows (cookie tossing) and so come to share
// the binding of the logins the browser starts.
func (p *Provider) browserCookieName() string {
	return session.SecureName(BrowserCookie, p.cookiePath, p.secureCk)
}

// browserValue returns the browser cookie's value, or a new one when the
// request has none.
func (p *Provider) browserValue(r *http.Request) (string, error) {
	if vs := p.browserValues(r); len(vs) > 0 {
		return vs[0], nil
	}
	return p.random(32)
}

// maxBrowserCookies bounds the browser cookies a callback looks for a
// login with, each a store operation.
const maxBrowserCookies = 4

// browserValues are the values of the browser cookies in r that Start
// could have set (43 characters), each once, at most maxBrowserCookies.
// A browser may send more than one: one set under another path (before
// the cookie covered the whole site) lives on until it expires.
func (p *Provider) browserValues(r *http.Request) []string {
	var out []string
	for _, c := range r.CookiesNamed(p.browserCookieName()) {
		if len(c.Value) == 43 && !slices.Contains(out, c.Value) {
			if out = append(out, c.Value); len(out) == maxBrowserCookies {
				break
			}
		}
	}
	return out
}

// setBrowserCookie sets the browser cookie to v for as long as the login
// state just stored lives (Timeouts.Login). Every Start sets it again,
// so a person who starts another login late in the cookie's life still
// has it when that login comes back; the value stays, so logins started
// earlier in this browser still find it too.
func (p *Provider) setBrowserCookie(w http.ResponseWriter, v string) {
	// SameSite=Lax: the upstream's redirect back is a top-level GET
	// navigation, which carries Lax cookies.
	// Rounded up to whole seconds, so it never ends before the state.
	http.SetCookie(w, &http.Cookie{Name: p.browserCookieName(), Value: v, Path: p.cookiePath,
		MaxAge: int((p.t.Login + time.Second - 1) / time.Second), HttpOnly: true, Secure: p.secureCk, SameSite: http.SameSiteLaxMode})
}

// issuedTo reports whether one of the browser cookie values is the one
// whose hash is want.
func issuedTo(values []string, want []byte) bool {
	for _, v := range values {
		sum := sha256.Sum256([]byte(v))
		if len(want) == len(sum) && subtle.ConstantTimeCompare(sum[:], want) == 1 {
			return true
		}
	}
	return false
}

// failStart records why a login could not start and hands the attempt
// back to the broker, which can offer another provider.
func (p *Provider) failStart(w http.ResponseWriter, r *http.Request, a provider.Attempt, rej *rejection) {
	p.refused(r.Context(), "start", rej, nil)
	http.Redirect(w, r, p.failed(w, r, a.ID, rej), http.StatusSeeOther)
}

// failed hands attempt's refusal to the broker and returns where the
// browser goes next. A refused account goes with a handle of the
// account (provider.AccountFinisher), so that it counts once against
// the upstream's health however often it is refused.
func (p *Provider) failed(w http.ResponseWriter, r *http.Request, attempt string, rej *rejection) string {
	reason := failReason(rej.reason)
	if rej.unverified {
		reason = provider.ReasonUnverifiedResponse
	}
	if af, ok := p.fin.(provider.AccountFinisher); ok && reason == provider.ReasonAccountRefused && rej.subject != "" {
		return af.FailAccount(w, r, attempt, p.cfg.ID, p.accountHandle(rej.subject))
	}
	return p.fin.Fail(w, r, attempt, p.cfg.ID, reason)
}

// accountHandle names the upstream account sub for the broker: the same
// for every login of the account at this node, and saying nothing of it.
// It is keyed with a secret of this process, not a plain hash: an
// upstream's sub may be a national identifier, which is too short a
// number not to be found again from its hash.
func (p *Provider) accountHandle(sub string) string {
	mac := hmac.New(sha256.New, p.accountKey)
	mac.Write([]byte(p.cfg.ID + "\x00" + sub))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// refused logs and audits a refusal. details must hold nothing secret or
// personal.
func (p *Provider) refused(ctx context.Context, stage string, rej *rejection, details map[string]string) {
	p.log.WarnContext(ctx, "upstream login refused", "provider", p.cfg.ID, "stage", stage, "reason", rej.reason,
		"err", rej.msg, "req", httpx.RequestID(ctx))
	if p.auditor == nil {
		return
	}
	d := map[string]string{"method": Method, "stage": stage}
	for k, v := range details {
		d[k] = v
	}
	if rej.fault != "" {
		d[provider.DetailFault] = rej.fault
	}
	p.auditor.Record(ctx, &store.AuditEvent{
		Time: p.now().UTC().Truncate(time.Microsecond), Type: "authentication", Provider: p.cfg.ID,
		Result: store.ResultFailure, Reason: rej.reason, Details: d,
	})
}

func (p *Provider) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// s256 is the PKCE S256 challenge (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// withParams adds params to an endpoint URL, keeping its own query
// (OIDC Core §3.1.2.1: the endpoint's query component must be kept).
func withParams(endpoint string, params url.Values) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String()
}

// errorPage shows a plain-language page for a callback that cannot go on.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, kind, locale string) {
	if p.pages == nil {
		http.Error(w, http.StatusText(status), status)
		return
	}
	p.pages.Error(w, r, status, p.lang(r, locale), httpx.ErrorPage{
		Title: "error." + kind + ".title", Message: "error." + kind + ".message", Next: "error." + kind + ".next",
	})
}

// unavailable tells the person, in locale if set, that the store could
// not be reached (store.Unavailable): 503 with Retry-After, nothing
// lost, and next, the key of what to do: try again in a minute, or,
// where the page cannot be used again (a callback), start the login
// again from where they began it.
func (p *Provider) unavailable(w http.ResponseWriter, r *http.Request, locale, next string) {
	if p.pages == nil {
		w.Header().Set("Retry-After", strconv.Itoa(httpx.UnavailableRetry))
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	e := httpx.UnavailablePage()
	e.Next = next
	p.pages.Unavailable(w, r, p.lang(r, locale), e)
}

// lang is the language of a page: locale if set and offered, else the
// browser's.
func (p *Provider) lang(r *http.Request, locale string) string {
	var pref []string
	if locale != "" {
		pref = []string{locale}
	}
	return p.pages.Locale(r, pref)
}
