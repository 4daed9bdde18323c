package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// AccountAttempt is the attempt ID of a login to the person's own
// account pages rather than for a relying party.
const AccountAttempt = ""

// Auditor records audit events; audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, e *store.AuditEvent)
	// Prepare readies e for a store write that appends it with what it
	// records (a new session).
	Prepare(ctx context.Context, e *store.AuditEvent)
}

// Health is what the broker needs from health monitoring: each
// provider's live state, and the outcome of every real login, with the
// account of a refusal (health.Monitor.ObserveRefusal).
type Health interface {
	State(component string) health.State
	Observe(component string, o health.Outcome)
	ObserveRefusal(component, account string)
}

// Broker routes logins to providers and turns their results into sessions.
type Broker struct {
	// Providers in the order the login page lists them.
	Providers    []provider.Provider
	AuthRequests store.AuthRequests
	Clients      store.Clients
	Persons      store.Persons
	Sessions     *session.Manager
	// Challenges holds link attempts (see LinkOptions); nil turns
	// linking off.
	Challenges store.Challenges
	Audit      Auditor
	Pages      *httpx.Pages
	// Health gives providers' states; nil treats every provider as up.
	Health Health
	// Continue ends a finished login for a relying party's request
	// (oidc.Provider.Continue, required): it has the new session stored by
	// calling save once, with the events it records (the consent), then
	// issues the code and returns where the browser goes next, usually
	// the client's redirect URI.
	Continue func(ctx context.Context, c *store.Client, req *store.AuthRequest, sess *store.Session,
		save func(events ...*store.AuditEvent) error) (string, error)
	// AccountURL is where an account login ends.
	AccountURL string
	// RequestLifetime is how long a relying party's request lives, and
	// how far on each keep moves its end (oidc.Provider's
	// AuthRequestLifetime; oidc.DefaultAuthRequestLifetime if 0).
	RequestLifetime time.Duration
	// KeepPages are the providers' login pages that show a login's time
	// limit (paths, without a query): a keep without script sends the
	// browser back only to one of them or to the broker's own page.
	KeepPages []string
	Metrics   *Metrics
	// Rand makes new persons' IDs (crypto/rand if nil).
	Rand io.Reader
	Now  func() time.Time
	Log  *slog.Logger
}

// Metrics are the broker's Prometheus collectors.
type Metrics struct {
	Logins *prometheus.CounterVec
	// Degraded counts the successful logins let through below the level
	// asked for by the client's degraded-mode policy, which Logins
	// counts too: during an outage, how many people logged in at a
	// lower level than their service normally needs.
	Degraded *prometheus.CounterVec
}

// NewMetrics registers the broker's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_logins_total",
			Help: "Logins finished by providers, by result, provider and assurance level reached.",
		}, []string{"result", "provider", "acr"}),
		Degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "varde_logins_degraded_total",
			Help: "Successful logins let through below the level asked for by the client's degraded-mode policy, by provider and assurance level reached.",
		}, []string{"provider", "acr"}),
	}
	reg.MustRegister(m.Logins, m.Degraded)
	return m
}

var (
	_ provider.Finisher        = (*Broker)(nil)
	_ provider.AccountFinisher = (*Broker)(nil)
)

// Register mounts the login pages and, with Challenges set, linking.
func (b *Broker) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", b.loginPage)
	mux.HandleFunc("GET /login/start", b.start)
	mux.HandleFunc("POST "+KeepPath, b.keepLogin)
	if b.Challenges != nil {
		mux.HandleFunc("POST /account/link", b.startLink)
		mux.HandleFunc("GET /account/link/refused", b.refusedPage)
		mux.Handle("/account/link", b.Pages.WrongMethod(http.MethodPost))
		mux.Handle("/account/link/refused", b.Pages.WrongMethod(http.MethodGet))
	}
	// A method the pages do not serve gets a page, not the mux's text.
	mux.Handle("/login", b.Pages.WrongMethod(http.MethodGet))
	mux.Handle("/login/start", b.Pages.WrongMethod(http.MethodGet))
	mux.Handle(KeepPath, b.Pages.WrongMethod(http.MethodPost))
}

// attempt is what the broker knows about a login in progress.
type attempt struct {
	req    *store.AuthRequest // nil for an account login
	client *store.Client
	// wanted is the level the request asks for; min is what the broker
	// accepts now: wanted, or the client's degraded-mode level when no
	// provider that can reach wanted is up (degraded is then true).
	wanted, min assurance.Level
	degraded    bool
	locale      string
}

// load resolves an attempt ID. An empty ID is an account login.
func (b *Broker) load(r *http.Request, id string) (*attempt, error) {
	if id == AccountAttempt {
		return &attempt{min: assurance.Low, locale: b.Pages.Locale(r, nil)}, nil
	}
	// Read once: an expired request comes with its record
	// (oidc.ExpiredRequestError), for attemptError to name its service.
	req, err := oidc.LiveRequest(r.Context(), b.AuthRequests, id, b.Now())
	if err != nil {
		return nil, err
	}
	return b.attemptOf(r, req)
}

// loadHeld is load from held, request id as Hold read it earlier in
// this same HTTP request, while held's expiry is still ahead: an
// expiry only ever moves forward (ExtendAuthRequest), so the request is
// live now as well, unless it was deleted since (cancelled, or used by
// another tab), and then the write of its code, which deletes it, finds
// nothing and stores no code (CreateAuthCodeForRequest), as it does
// for a request deleted after load read it. Its browser binding and
// client never change. Past held's expiry it is read again: a keep may
// have moved the end on.
func (b *Broker) loadHeld(r *http.Request, id string, held *store.AuthRequest) (*attempt, error) {
	if held == nil || held.ID != id || !held.ExpiresAt.After(b.Now()) {
		return b.load(r, id)
	}
	return b.attemptOf(r, held)
}

// attemptOf is the attempt for req, a live request just read: only in
// the browser it is bound to (errOtherBrowser), and only while its
// client is registered (clientGoneError).
func (b *Broker) attemptOf(r *http.Request, req *store.AuthRequest) (*attempt, error) {
	if !oidc.InBrowser(req, b.requestBrowser(r)) {
		return nil, errOtherBrowser
	}
	c, err := b.Clients.GetClient(r.Context(), req.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &clientGoneError{clientID: req.ClientID}
	}
	if err != nil {
		return nil, err
	}
	return b.attemptFor(r, req, c), nil
}

// errOtherBrowser: the login for a relying party is one that another
// browser began at the authorization endpoint (oidc.InBrowser, ADR 47).
// Its ID is no key to it: whoever learnt it (from the person's browser
// history, say) and logs in with it in a browser of their own must not
// get a code for the person's request, which, brought to the person's
// browser, would log them in to the service as someone else. It is
// store.ErrNotFound to errors.Is: for this browser there is no such
// login.
var errOtherBrowser = fmt.Errorf("broker: the login was begun in another browser: %w", store.ErrNotFound)

// ReasonOtherBrowser: a login for a relying party finished in another
// browser than the one that began it (errOtherBrowser). Refused, with no
// session; not the provider's failure.
const ReasonOtherBrowser = "browser_mismatch"

// clientGoneError is a login whose authorization request is still held
// but whose client is no longer registered: the relying party was
// deleted while the person was logging in, and the login cannot end
// anywhere. It is store.ErrNotFound to errors.Is, as a login nobody
// holds is.
type clientGoneError struct{ clientID string }

func (e *clientGoneError) Error() string {
	return "broker: the login's client is no longer registered"
}

func (e *clientGoneError) Unwrap() error { return store.ErrNotFound }

// clientGonePage tells the person that the service they were logging in
// to no longer uses Varde, so starting again here cannot help.
func clientGonePage() httpx.ErrorPage {
	return httpx.ErrorPage{Title: "error.clientgone.title", Message: "error.clientgone.message", Next: "error.clientgone.next"}
}

// attemptFor is the attempt for client c's request req.
func (b *Broker) attemptFor(r *http.Request, req *store.AuthRequest, c *store.Client) *attempt {
	a := b.levelOf(req, c)
	a.locale = b.Pages.Locale(r, req.UILocales)
	return a
}

// Begin takes over, from the authorization endpoint, client c's request
// req that needs a login (oidc.Provider.Login). When the relying party's
// provider_hint picks a provider that can serve it now (see route), the
// browser goes straight to that provider, one redirect fewer; otherwise
// to the login page, by a redirect, so that reloading the page does not
// present the authorization request again. A login the client's
// degraded-mode policy lets through below the level asked for always
// goes to the login page, whatever the hint, so the person reads there
// that it is.
func (b *Broker) Begin(w http.ResponseWriter, r *http.Request, req *store.AuthRequest, c *store.Client) {
	b.logUnknownHint(r, req, c)
	if req.ProviderHint != "" {
		a := b.attemptFor(r, req, c)
		if p := b.route(a, req.ProviderHint); p != nil && !a.degraded {
			b.startRouted(w, r, a, p, b.browserID(w, r))
			return
		}
	}
	http.Redirect(w, r, "/login?"+url.Values{"req": {req.ID}}.Encode(), http.StatusSeeOther)
}

// logUnknownHint logs a provider_hint of client c's request req that
// names no provider here (a typing error, an ID from another
// deployment), with the IDs there are: the person is left to choose, as
// for a provider that is down, and nothing tells the service's developer
// otherwise. The hint is safe to log: the authorization endpoint lets
// only lower-case letters, digits and '-' through.
func (b *Broker) logUnknownHint(r *http.Request, req *store.AuthRequest, c *store.Client) {
	hint := req.ProviderHint
	if hint == "" || hint == "any" {
		return
	}
	ids := make([]string, 0, len(b.Providers))
	for _, p := range b.Providers {
		if p.Info().ID == hint {
			return
		}
		ids = append(ids, p.Info().ID)
	}
	b.Log.InfoContext(r.Context(), "provider_hint names no provider here; the person chooses", "hint", hint, "client", c.ID,
		"providers", strings.Join(ids, ","), "req", httpx.RequestID(r.Context()))
}

// startRouted hands attempt a to p, which route chose for the relying
// party's provider_hint; for "any", the providers it went around are
// recorded.
func (b *Broker) startRouted(w http.ResponseWriter, r *http.Request, a *attempt, p provider.Provider, browser string) {
	if a.req.ProviderHint == "any" {
		down, _ := b.down(a)
		b.routedAround(r.Context(), a, a.req.ID, browser, down, false, ViaAny)
	}
	b.startAt(w, r, a, p)
}

// startAt hands attempt a to provider p.
func (b *Broker) startAt(w http.ResponseWriter, r *http.Request, a *attempt, p provider.Provider) {
	p.Start(w, r, a.forProvider())
}

// forProvider is what a provider is told about the attempt. A login to
// the person's own account is always fresh: it is how a person logs in
// again to change their ways in (ADR 9), and an eID's single sign-on
// session, perhaps the last person's on a shared computer, must not
// pass for it.
func (a *attempt) forProvider() provider.Attempt {
	pa := provider.Attempt{Locale: a.locale, MinLevel: a.min, Fresh: a.req == nil}
	if a.req != nil {
		pa.ID, pa.LoginHint = a.req.ID, a.req.LoginHint
		pa.Hinted = a.req.Pushed && a.req.ProviderHint != ""
		// What the relying party asked of the authentication's age goes
		// on to the provider: an eID's own single sign-on session must
		// not pass for the new login it asked for. prompt=select_account
		// asks for the same (OIDC Core §3.1.2.1): an eID that remembers
		// the person would otherwise log the account at hand in again
		// without asking, and with an eID the account is whoever
		// authenticates. prompt=login is what every OpenID provider
		// knows, where select_account is optional.
		pa.Fresh = slices.Contains(a.req.Prompt, "login") || slices.Contains(a.req.Prompt, "select_account") || a.req.MaxAge == 0
		// A max_age longer than a Duration holds (about 292 years) is no
		// limit, as the authorization endpoint takes it, and goes on as
		// none rather than wrapped around to one of a second.
		if a.req.MaxAge > 0 && int64(a.req.MaxAge) <= math.MaxInt64/int64(time.Second) {
			pa.MaxAge = time.Duration(a.req.MaxAge) * time.Second
		}
	}
	return pa
}

// Pushed is told by the authorization server that client c has pushed
// req (RFC 9126; oidc.Provider.Pushed). When the request's provider_hint
// routes to a provider that can get ready for a login
// (provider.Preparer), that provider starts on it now, in the
// background, while the relying party sends the browser to Varde: an
// upstream eID pushes its own request ahead, so the browser's visit to
// the authorization endpoint does not wait for that round trip. Begin
// routes again when the browser arrives, and the provider uses what it
// prepared only if it still fits.
func (b *Broker) Pushed(r *http.Request, req *store.AuthRequest, c *store.Client) {
	if req.ProviderHint == "" {
		return
	}
	// ui_locales, or the default language: the relying party's server
	// says nothing about the person's browser. A browser that asks for
	// another language changes the attempt, and the provider starts
	// afresh.
	a := b.attemptFor(r, req, c)
	if a.degraded {
		// Begin shows the login page first (see Begin).
		return
	}
	if p, ok := b.route(a, req.ProviderHint).(provider.Preparer); ok {
		p.Prepare(r.Context(), a.forProvider())
	}
}

// DegradedNow reports whether client c's degraded-mode policy applies to
// req now: c registered a degraded-mode level below the one req asks
// for, and no provider c accepts that can reach that level is up
// (applyDegradedPolicy). The authorization endpoint asks it before it
// reuses a degraded session by single sign-on (oidc.Provider.DegradedNow).
func (b *Broker) DegradedNow(req *store.AuthRequest, c *store.Client) bool {
	return b.levelOf(req, c).degraded
}

// levelOf is the attempt for client c's request req as far as its level
// goes: the level asked for, lowered by c's degraded-mode policy if it
// applies now.
func (b *Broker) levelOf(req *store.AuthRequest, c *store.Client) *attempt {
	min, ok := assurance.Minimum(req.ACRValues)
	if !ok {
		min = assurance.Low
	}
	a := &attempt{req: req, client: c, wanted: min, min: min}
	b.applyDegradedPolicy(a)
	return a
}

// WaysIn says what the login page can offer client c's request req now,
// as the page decides it: oidc.WaysNone when no provider c accepts can
// reach the level (lowered by c's degraded-mode policy if that applies),
// oidc.WaysDown when every one that can is down. The endpoint that ends
// a login the person goes back from asks it (oidc.Provider.WaysIn).
func (b *Broker) WaysIn(req *store.AuthRequest, c *store.Client) oidc.WaysIn {
	eligible := b.eligible(b.levelOf(req, c))
	if len(eligible) == 0 {
		return oidc.WaysNone
	}
	for _, p := range eligible {
		if b.state(p.Info().ID).Usable() {
			return oidc.WaysOffered
		}
	}
	return oidc.WaysDown
}

// applyDegradedPolicy lowers the attempt's level to the client's
// degraded-mode level when, and only when, the client registered one and
// no provider it accepts that can reach the requested level is up now.
// Without such a policy the level is never lowered. A provider only the
// persons enrolled with it can use (provider.Info.Enrolled: the passkey
// provider) does not keep the level up for everyone else while the
// providers everyone can use that reach it are all down; where there
// are none of those, it does, as there is then no outage to bridge
// (ADR 63). The enrolled provider is still offered, and a login through
// it at the level asked for is not degraded.
func (b *Broker) applyDegradedPolicy(a *attempt) {
	floor, err := assurance.Parse(a.client.DegradedLevel)
	if err != nil || floor >= a.wanted {
		return
	}
	var open, openUp, anyUp bool
	for _, p := range b.eligible(a) {
		info := p.Info()
		up := b.state(info.ID).Usable()
		anyUp = anyUp || up
		if !info.Enrolled {
			open, openUp = true, openUp || up
		}
	}
	if openUp || (!open && anyUp) {
		return
	}
	a.min, a.degraded = floor, true
}

// lowerable reports whether attempt a, not degraded now, would take a
// login at level through the provider info describes had its client's
// degraded-mode policy applied: the policy let the person choose it, and
// a way to log in that reaches the level asked for came back before the
// choice or the login reached Varde. The person is then told that the
// usual way works again, not that they chose wrong.
func (a *attempt) lowerable(info provider.Info, level assurance.Level) bool {
	if a.degraded || a.client == nil {
		return false
	}
	floor, err := assurance.Parse(a.client.DegradedLevel)
	if err != nil || floor >= a.wanted || level < floor {
		return false
	}
	lowered := *a
	lowered.min, lowered.degraded = floor, true
	return lowered.refusal(info) == ""
}

// eligible lists the providers attempt a may use (see refusal).
func (b *Broker) eligible(a *attempt) []provider.Provider {
	var out []provider.Provider
	for _, p := range b.Providers {
		if a.refusal(p.Info()) == "" {
			out = append(out, p)
		}
	}
	return out
}

// refusal says why attempt a may not use the provider info describes, as
// an audit reason, or "" when it may: the provider must be able to meet
// the attempt's level, and the client must accept it (all providers,
// unless its registration names some). The login page, the start of a
// login and Finish all decide by it, so a login ends only through a
// provider the person could have been offered.
func (a *attempt) refusal(info provider.Info) string {
	if info.MaxLevel < a.min {
		return ReasonInsufficientLevel
	}
	if a.client != nil && len(a.client.Providers) > 0 && !slices.Contains(a.client.Providers, info.ID) {
		return ReasonProviderNotAccepted
	}
	return ""
}

// Reasons of failed authentication events that Finish records when it
// refuses a result (see the package documentation).
const (
	// ReasonInsufficientLevel: the provider vouched for the person at a
	// level below what the attempt requires (or can never reach it).
	// The provider worked; Varde's policy refused the login.
	ReasonInsufficientLevel = "insufficient_level"
	// ReasonProviderNotAccepted: the login went through a provider the
	// client does not accept. The provider worked; the person took a way
	// in the relying party does not allow.
	ReasonProviderNotAccepted = "provider_not_accepted"
	// ReasonSessionError: the provider's result was good, and this
	// node could not start the session (its store failed).
	ReasonSessionError = "session_error"
	// ReasonOutcomeUnknown: the provider's result was good, and the
	// write of the session and its success event got no answer
	// (store.ErrOutcomeUnknown): both may have been stored, and the
	// person may be logged in after all. The event's
	// Details[DetailStored] is "unknown", and Details["session"] names the session that may
	// exist.
	ReasonOutcomeUnknown = "outcome_unknown"
	// ReasonAttemptExpired: the provider's result was good, and came
	// back after the login attempt had expired (the person took longer
	// than the attempt lasts). Not the provider's failure: a provider
	// slow to answer fails on its own time limits first.
	ReasonAttemptExpired = "attempt_expired"
	// ReasonClientGone: the provider's result was good, and came back
	// after the login's client was deleted, so the login has nowhere to
	// end. Not the provider's failure. The event names the client.
	ReasonClientGone = "client_gone"
	// ReasonIdentifierConflict: the provider's result proved
	// identifiers that Varde holds for different persons, so which
	// person logged in cannot be told. The provider worked; the login
	// is refused until an operator resolves the records.
	ReasonIdentifierConflict = "identifier_conflict"
	// ReasonInvalidIdentifier: the provider's result proved an
	// identifier that is no valid number of its scheme (a wrong check
	// digit, another kind than the scheme names, an unknown scheme).
	// It is the provider's failure and counts against its health.
	ReasonInvalidIdentifier = "invalid_identifier"
	// ReasonPersonBlocked: the provider's result was good, and is a
	// person whose Varde identity the help desk has blocked
	// (store.PersonBlocks, ADR 27). Refused whichever way in they
	// came, with a page saying so; not the provider's failure.
	ReasonPersonBlocked   = "person_blocked"
	reasonUnknownProvider = "unknown_provider"
)

// blockedPage tells a person whose Varde identity is blocked that it
// is, and that the help desk lifts the block: the page's help desk
// section names it, when the deployment has one (config support).
func blockedPage() httpx.ErrorPage {
	return httpx.ErrorPage{Title: "error.blocked.title", Message: "error.blocked.message", Next: "error.blocked.next"}
}

// blocked reports whether personID's Varde identity is blocked, as read
// from the store at each login, so a block made on any node, or beside
// it with varde persons block, is seen at once (a SQLite store's copy
// of a person is dropped within a second of another process's write).
// read, if not nil, is that person as this same HTTP request read,
// found or created them moments before (resolve): that is the read,
// not repeated. A person the store does not hold is not blocked: the
// caller finds out otherwise that there is nobody.
func (b *Broker) blocked(ctx context.Context, personID string, read *store.Person) (bool, error) {
	if read != nil && read.ID == personID {
		return read.Blocked(), nil
	}
	p, err := b.Persons.GetPerson(ctx, personID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.Blocked(), nil
}

// info describes the configured provider id; ok is false when there is
// none.
func (b *Broker) info(id string) (info provider.Info, ok bool) {
	if p := b.provider(id); p != nil {
		return p.Info(), true
	}
	return provider.Info{}, false
}

// route picks the provider for a hint: for "any", the first eligible
// provider that is up, else the first degraded one, else the first
// unknown one; for a provider id, that provider if it is eligible and
// usable. nil means the person chooses.
//
// Degraded comes before Unknown: a degraded provider is known to log
// people in, if slowly or with some failures, while one still unknown
// once the node serves (it waits for a first round of probes) is one
// whose probes have failed and never succeeded, or have not answered:
// a person sent there is more likely to be stranded.
func (b *Broker) route(a *attempt, hint string) provider.Provider {
	var degraded, unknown provider.Provider
	for _, p := range b.eligible(a) {
		id := p.Info().ID
		st := b.state(id)
		if !st.Usable() || (hint != "any" && hint != id) {
			continue
		}
		switch {
		case st == health.Up || hint == id:
			return p
		case st == health.Degraded && degraded == nil:
			degraded = p
		case unknown == nil:
			unknown = p
		}
	}
	if degraded != nil {
		return degraded
	}
	return unknown
}

// loginErrors maps a ?err= reason to the message key shown on the login page.
var loginErrors = map[string]string{
	"level":       "login.err.level",
	"provider":    "login.err.provider",
	"cancelled":   "login.err.cancelled",
	"failed":      "login.err.failed",
	"refused":     "login.err.refused",
	"unavailable": "login.err.unavailable",
	"conflict":    "login.err.conflict",
	"unknown":     "login.err.unknown",
	// The client's degraded-mode policy no longer applies: a way to log
	// in that reaches its level is back (attempt.lowerable).
	"restored": "login.err.restored",
}

type choice struct {
	ID, Name, URL string
	// State is the provider's health: a down provider is shown, marked
	// unavailable, without a link, so people see what is broken and what
	// else they can use.
	State string
	// Failed: the person's login through it just failed (lastFailed).
	Failed bool
}

type loginData struct {
	ClientName string
	Choices    []choice
	// Unavailable is true when at least one choice is down.
	Unavailable bool
	// Degraded is true when only a lower level than asked for is on
	// offer, under the client's degraded-mode policy.
	Degraded  bool
	Error     string
	Level     string
	CancelURL string
	// Account is true for a login to the person's own account, which
	// has no service to name.
	Account bool
	// Timeout says until when a service's login stays open; nil for an
	// account login, which runs under no request.
	Timeout *provider.LoginTimeout
}

// state is p's health state, Unknown without monitoring.
func (b *Broker) state(id string) health.State {
	if b.Health == nil {
		return health.Unknown
	}
	return b.Health.State(id)
}

func (b *Broker) observe(id string, o health.Outcome) {
	if b.Health != nil && id != "" {
		b.Health.Observe(id, o)
	}
}

func (b *Broker) loginPage(w http.ResponseWriter, r *http.Request) {
	browser := b.browserID(w, r)
	id := r.URL.Query().Get("req")
	a, err := b.load(r, id)
	if err != nil {
		b.attemptError(w, r, err)
		return
	}
	// A notice is shown only to the browser it was sent to: a link
	// from elsewhere opens the plain page (bindNotice).
	reason := ""
	if b.noticeBound(r) {
		reason = r.URL.Query().Get("err")
	}
	if reason == "blocked" {
		// Nothing here can let a blocked person in: the page says so
		// and who lifts it, with no choices, and a relying party's
		// login can only go back to the service (access_denied).
		e := blockedPage()
		if a.req != nil {
			e.CancelURL = cancelURL(a.req)
		}
		b.Pages.Error(w, r, http.StatusForbidden, a.locale, e)
		return
	}
	d := loginData{Error: loginErrors[reason], Level: a.min.String()}
	if a.client != nil {
		d.ClientName = a.client.Name
		d.CancelURL = cancelURL(a.req)
		d.Timeout = b.loginTimeout(r, a.req, a.locale, b.Now())
	} else {
		d.Account = true
	}
	d.Degraded = a.degraded
	// The relying party may let Varde choose (provider_hint=any) or
	// suggest one provider. Only on the first visit: after a failure or a
	// cancel the person chooses. Not when the login is degraded: the
	// person sees the page that says so, and chooses.
	if a.req != nil && a.req.ProviderHint != "" && r.URL.Query().Get("err") == "" && !a.degraded {
		if p := b.route(a, a.req.ProviderHint); p != nil {
			b.startRouted(w, r, a, p, browser)
			return
		}
	}
	usable := 0
	var down []string
	for _, p := range b.eligible(a) {
		info := p.Info()
		name := info.Name[a.locale]
		if name == "" {
			name = info.Name["en"]
		}
		c := choice{ID: info.ID, Name: name, State: string(b.state(info.ID))}
		if b.state(info.ID).Usable() {
			c.URL = "/login/start?" + url.Values{"req": {id}, "provider": {info.ID}}.Encode()
			usable++
		} else {
			d.Unavailable = true
			down = append(down, info.ID)
		}
		d.Choices = append(d.Choices, c)
	}
	if reason == "failed" || reason == "refused" {
		d.Choices = lastFailed(d.Choices, r.URL.Query().Get("from"))
	}
	// Shown down, so routed around it, or left with nothing to use.
	b.routedAround(r.Context(), a, id, browser, down, usable == 0, ViaPage)
	switch {
	case len(d.Choices) == 0:
		// Nothing this client accepts can reach the level it asks for.
		// An account login has no service to name or go back to.
		e := httpx.ErrorPage{Title: "login.none.title", Message: "login.none.message", Next: "login.none.next", CancelURL: d.CancelURL}
		if a.req == nil {
			e.Message, e.Next = "login.none.account.message", "login.none.account.next"
		}
		b.Pages.Error(w, r, http.StatusServiceUnavailable, a.locale, e)
	case usable == 0:
		// Everything it accepts is down: say so, show which, keep the
		// request, so reloading this page once one is back continues the
		// same login.
		d.Error, d.Unavailable = "login.err.allunavailable", false
		if a.req == nil {
			d.Error = "login.err.allunavailable.account"
		}
		b.Pages.Render(w, r, http.StatusServiceUnavailable, "login", a.locale, d)
	default:
		b.Pages.Render(w, r, http.StatusOK, "login", a.locale, d)
	}
}

// lastFailed moves the choice of the provider id, through which the
// person's login just failed, to the end of choices, marked: after a
// failure people take the first way offered again, and until its health
// catches up (many logins, or three probes) the one that failed would
// fail them again. It stays offered: the fault may have passed, and it
// may be the only way the service accepts.
func lastFailed(choices []choice, id string) []choice {
	i := slices.IndexFunc(choices, func(c choice) bool { return c.ID == id })
	if i < 0 {
		return choices
	}
	c := choices[i]
	c.Failed = c.URL != ""
	return append(slices.Delete(choices, i, i+1), c)
}

// cancelURL hands the request back to the OpenID endpoints, which send
// the person to the relying party with error=access_denied (OIDC Core
// §3.1.2.6).
func cancelURL(req *store.AuthRequest) string {
	return oidc.PathCancel + "?" + url.Values{"req": {req.ID}}.Encode()
}

func (b *Broker) start(w http.ResponseWriter, r *http.Request) {
	browser := b.browserID(w, r)
	id := r.URL.Query().Get("req")
	a, err := b.load(r, id)
	if err != nil {
		b.attemptError(w, r, err)
		return
	}
	want := r.URL.Query().Get("provider")
	eligible := b.eligible(a)
	i := slices.IndexFunc(eligible, func(p provider.Provider) bool { return p.Info().ID == want })
	if i >= 0 && !b.state(want).Usable() {
		// Down since the page was shown: back to the choice, which now
		// says so.
		_, anyUsable := b.down(a)
		b.routedAround(r.Context(), a, id, browser, []string{want}, !anyUsable, ViaStart)
		http.Redirect(w, r, b.bindNotice(w, "/login?"+url.Values{"req": {id}, "err": {"unavailable"}}.Encode()), http.StatusSeeOther)
		return
	}
	if info, ok := b.info(want); i < 0 && ok && a.lowerable(info, info.MaxLevel) {
		// Offered under the degraded-mode policy, which ended since the
		// page was shown: back to the choice, which offers the usual way.
		http.Redirect(w, r, b.bindNotice(w, "/login?"+url.Values{"req": {id}, "err": {"restored"}}.Encode()), http.StatusSeeOther)
		return
	}
	if i < 0 {
		// The login goes on: back to the choice of what it may use.
		e := httpx.ErrorPage{
			Title: "error.badrequest.title", Message: "login.unknownprovider.message", Next: "login.unknownprovider.next",
			BackURL: "/login?" + url.Values{"req": {id}}.Encode(),
		}
		if a.req == nil {
			e.Message = "login.unknownprovider.account.message"
		}
		b.Pages.Error(w, r, http.StatusBadRequest, a.locale, e)
		return
	}
	b.startAt(w, r, a, eligible[i])
}

func (b *Broker) attemptError(w http.ResponseWriter, r *http.Request, err error) {
	lang := b.Pages.Locale(r, nil)
	var gone *clientGoneError
	if errors.As(err, &gone) {
		b.Pages.Error(w, r, http.StatusGone, lang, clientGonePage())
		return
	}
	if errors.Is(err, errOtherBrowser) {
		// As for a callback from an eID that reaches another browser: go
		// back to the service and start again, in this browser.
		b.Pages.Error(w, r, http.StatusBadRequest, lang, httpx.BadRequestPage())
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		// A request that ran out of time, while the store still holds
		// it, tells which service to go back to, from the read that
		// found it expired (load); otherwise the store does not say
		// whether the request expired, was finished or never was.
		c := oidc.ExpiredClient(r.Context(), b.Clients, err, b.requestBrowser(r))
		if c != nil {
			b.Pages.Error(w, r, http.StatusBadRequest, lang, oidc.ExpiredLoginPage(c))
			return
		}
		b.Pages.Error(w, r, http.StatusBadRequest, lang, httpx.UnknownLoginPage())
		return
	}
	if store.Unavailable(err) {
		// Nothing about the login changed: the same page works once the
		// store answers again.
		b.Log.WarnContext(r.Context(), "load login attempt", "err", err, "req", httpx.RequestID(r.Context()))
		b.Pages.Unavailable(w, r, lang, httpx.UnavailablePage())
		return
	}
	b.Log.ErrorContext(r.Context(), "load login attempt", "err", err, "req", httpx.RequestID(r.Context()))
	b.Pages.Error(w, r, http.StatusInternalServerError, lang, httpx.ErrorPage{
		Title: "error.internal.title", Message: "error.internal.message", Next: "error.internal.next",
	})
}

// Finish implements provider.Finisher: it checks that the attempt may
// end through the provider that finished it, at the level it reached,
// links the result to a person, starts the session and returns the URL
// that continues the flow. A URL that carries a notice (the login
// failed, the person is blocked, the link was refused) is bound to this
// browser (bindNotice).
func (b *Broker) Finish(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result) (string, error) {
	next, err := b.finish(w, r, attemptID, res, nil)
	return b.bindNotice(w, next), err
}

// finish is Finish; held, if not nil, is the attempt's request as Hold
// read it earlier in this same HTTP request (loadHeld).
func (b *Broker) finish(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result, held *store.AuthRequest) (string, error) {
	// A provider never reaches more than it is configured for, whatever it
	// reports: a bug in one, or an upstream asserting more than it is
	// trusted with, cannot raise a level. A provider the broker does not
	// have reaches nothing.
	info, known := b.info(res.Provider)
	if res.Level > info.MaxLevel {
		b.Log.WarnContext(r.Context(), "provider reported a level above its maximum",
			"provider", res.Provider, "level", res.Level.String(), "max", info.MaxLevel.String())
		res.Level = info.MaxLevel
	}
	// A person is found by their identifiers, so each must have its one
	// spelling whichever provider proved it, and be a number of its
	// scheme at all: one that is not is the provider's failure, and
	// neither becomes a person nor is linked. (A provider the broker
	// does not have is refused below, and not charged.)
	ids, err := canonical(res.Identifiers)
	if err != nil && known {
		b.Log.WarnContext(r.Context(), "provider reported an identifier that is not valid", "provider", res.Provider, "err", err)
		return b.failed(r, attemptID, res.Provider, ReasonInvalidIdentifier, ""), nil
	}
	if err == nil {
		res.Identifiers = ids
	}
	if strings.HasPrefix(attemptID, linkPrefix) {
		return b.finishLink(w, r, attemptID, res)
	}
	ctx := r.Context()
	ev := &store.AuditEvent{Type: EventAuthentication, Provider: res.Provider, Level: res.Level.String(),
		Details: traced(map[string]string{"method": res.Method}, attemptID, b.requestBrowser(r))}
	a, err := b.loadHeld(r, attemptID, held)
	if err != nil {
		var gone *clientGoneError
		if errors.As(err, &gone) {
			// The login page for it says the service is gone.
			ev.ClientID = gone.clientID
			b.fail(ctx, ev, ReasonClientGone)
			return "/login?" + url.Values{"req": {attemptID}}.Encode(), nil
		}
		if errors.Is(err, errOtherBrowser) {
			// The login page in this browser says to start again.
			b.fail(ctx, ev, ReasonOtherBrowser)
			return "/login?" + url.Values{"req": {attemptID}}.Encode(), nil
		}
		if errors.Is(err, store.ErrNotFound) {
			b.fail(ctx, ev, ReasonAttemptExpired)
			return "/login?" + url.Values{"req": {attemptID}}.Encode(), nil
		}
		return "", err
	}
	if a.client != nil {
		ev.ClientID = a.client.ID
	}
	if !known {
		// Only the providers the broker was given report to it: anything
		// else is a wiring mistake, and nothing it says is believed.
		b.fail(ctx, ev, reasonUnknownProvider)
		return "", fmt.Errorf("broker: result from %q, which is not a configured provider", res.Provider)
	}
	b.observe(res.Provider, health.Success)
	// A provider that serves any login can be handed any attempt's ID (the
	// passkey provider takes it from its URL), so the broker checks here
	// again what it checked when it offered and started providers. Never
	// raise a level, never let a lower one through, never end a login
	// through a provider the client does not accept: the person is told
	// plainly and can pick another way to log in. Checked before the
	// result becomes a person, so a refused login creates nobody.
	why := a.refusal(info)
	if why == "" && res.Level < a.min {
		why = ReasonInsufficientLevel
	}
	if why != "" {
		ev.PersonID = b.existing(ctx, res)
		b.fail(ctx, ev, why)
		kind := "level"
		switch {
		case why == ReasonProviderNotAccepted:
			kind = "provider"
		case a.lowerable(info, res.Level):
			kind = "restored"
		}
		return "/login?" + url.Values{"req": {attemptID}, "err": {kind}}.Encode(), nil
	}
	proved := res.Level
	// Found by a number (not a provider's own person): the session is
	// stored only if the numbers still find the person (wayIn).
	byNumber := res.PersonID == ""
	personID, person, stale, err := b.resolve(ctx, &res)
	if errors.Is(err, errIdentifiersConflict) {
		// The provider answered; Varde's records cannot tell who this
		// is. Refused, not counted against the provider, and left for
		// an operator to sort out from the audit log.
		b.fail(ctx, ev, ReasonIdentifierConflict)
		b.Log.WarnContext(ctx, "login refused: its identifiers belong to different persons", "provider", res.Provider)
		return "/login?" + url.Values{"req": {attemptID}, "err": {"conflict"}}.Encode(), nil
	}
	if err != nil {
		// A result that names nobody is the provider's failure; any
		// other is this node's store (or randomness) failing to find or
		// create the person, which is not the provider's.
		why := provider.ReasonNodeError
		if res.PersonID == "" && len(res.Identifiers) == 0 {
			why = "unknown_person"
		}
		b.fail(ctx, ev, why)
		return "", err
	}
	ev.PersonID = personID
	// Checked on every login, whichever provider proved the person and
	// however (passkey, recovery code, an eID): a blocked person gets
	// no session, so no code ever reaches the relying party. From the
	// person as resolve read them, when it did, in this request and
	// moments ago: a second read would only narrow, not close, the
	// window in which a block lands before the session's write, and a
	// session stored in it gets nothing anyway, as the token endpoint
	// and the account pages read the block again (ADR 27).
	if blocked, err := b.blocked(ctx, personID, person); err != nil {
		b.fail(ctx, ev, provider.ReasonNodeError)
		return "", err
	} else if blocked {
		b.fail(ctx, ev, ReasonPersonBlocked)
		return "/login?" + url.Values{"req": {attemptID}, "err": {"blocked"}}.Encode(), nil
	}
	if res.Level < proved {
		// Found through an identifier linked from a weaker login: the
		// login reaches what the link did, not what the eID proved.
		ev.Level = res.Level.String()
		ev.Details["proved_level"] = proved.String()
		if res.Level < a.min {
			b.fail(ctx, ev, ReasonInsufficientLevel)
			return "/login?" + url.Values{"req": {attemptID}, "err": {"level"}}.Encode(), nil
		}
	}
	authTime := res.AuthTime
	if authTime.IsZero() {
		authTime = b.Now()
	}
	// Below what was asked for, and let through only by the client's
	// degraded-mode policy: say so in the session, and so in the tokens.
	degraded := res.Level < a.wanted
	if degraded {
		ev.Details["degraded"] = "true"
	}
	// The session lists no client yet: Continue lists the one the login
	// is for when it makes its code, in the same write, and only then.
	s := &store.Session{PersonID: personID, Provider: res.Provider, Level: res.Level.String(), AMR: res.AMR, AuthTime: authTime, Degraded: degraded,
		WayIn: wayIn(res, byNumber)}
	if a.req != nil && b.Continue == nil {
		b.fail(ctx, ev, ReasonSessionError)
		return "", errors.New("broker: Continue is not set")
	}
	n, err := b.Sessions.New(r, s)
	if err != nil {
		b.fail(ctx, ev, ReasonSessionError)
		return "", err
	}
	// The session and the events recording how it began are one atomic
	// write: the person waits for one commit, and a session exists if and
	// only if its authentication event does.
	ev.Result = store.ResultSuccess
	ev.Details["session"] = s.ID[:12]
	b.Audit.Prepare(ctx, ev)
	save := func(events ...*store.AuditEvent) error {
		err := b.Sessions.Save(ctx, w, r, n, append([]*store.AuditEvent{ev}, events...)...)
		switch {
		case err == nil:
			b.Metrics.Logins.WithLabelValues(store.ResultSuccess, res.Provider, res.Level.String()).Inc()
			if degraded {
				b.Metrics.Degraded.WithLabelValues(res.Provider, res.Level.String()).Inc()
			}
			b.noteUse(ctx, personID, stale)
			return nil
		case errors.Is(err, store.ErrOutcomeUnknown):
			// The success event may be stored with the session: the
			// failure says so, and names the session, rather than
			// that the login failed.
			ev.Details[DetailStored] = "unknown"
			b.fail(ctx, ev, ReasonOutcomeUnknown)
			return err
		}
		delete(ev.Details, "session")
		why := ReasonSessionError
		if errors.Is(err, store.ErrWayInGone) {
			why = reasonWayInRemoved
			if byNumber {
				why = reasonIdentifierRemoved
			}
		}
		b.fail(ctx, ev, why)
		return err
	}
	if a.req == nil {
		if err := save(); err != nil {
			return b.endedMeanwhile(ctx, attemptID, err)
		}
		return b.AccountURL, nil
	}
	next, err := b.Continue(ctx, a.client, a.req, s, save)
	if err != nil {
		return b.endedMeanwhile(ctx, attemptID, err)
	}
	return next, nil
}

// reasonIdentifierRemoved: the number a login found its person by was
// taken off them (ADR 44) as the login finished: its session is not
// stored (store.ErrWayInGone).
const reasonIdentifierRemoved = "identifier_removed"

// reasonWayInRemoved: the passkey or recovery code a login used was
// taken away by its person (a passkey removed, codes replaced, ADR 9)
// as the login finished: its session is not stored
// (store.ErrWayInGone).
const reasonWayInRemoved = "way_in_removed"

// wayIn is what the session of the login res must find its person
// still holding when it is stored (store.Session.WayIn): the numbers
// the login found the person by (byNumber), or the way in a provider
// that keeps its persons names (provider.Result.WayIn). The writes that
// take either away end the sessions the person has when they commit:
// one stored before is ended by them, and one not yet stored is not
// stored. Either way no session outlives the way in.
func wayIn(res provider.Result, byNumber bool) store.WayIn {
	w := res.WayIn.Clone()
	if byNumber {
		w.Identifiers = slices.Clone(res.Identifiers)
	}
	return w
}

// provider is the configured provider with ID id, nil if none.
func (b *Broker) provider(id string) provider.Provider {
	for _, p := range b.Providers {
		if p.Info().ID == id {
			return p
		}
	}
	return nil
}

// endedMeanwhile answers a login whose session was not stored because
// its number was removed, or its way in taken away, as it finished
// (store.ErrWayInGone), with the login page saying the login did not
// work; any other error is outcomeUnknown's.
func (b *Broker) endedMeanwhile(ctx context.Context, attemptID string, err error) (string, error) {
	if errors.Is(err, store.ErrWayInGone) {
		return "/login?" + url.Values{"req": {attemptID}, "err": {"failed"}}.Encode(), nil
	}
	return b.outcomeUnknown(ctx, attemptID, err)
}

// outcomeUnknown returns err, unless it is store.ErrOutcomeUnknown: then
// the session may have been stored, and the person is sent to a page
// saying they may be logged in already and to try the service again,
// rather than to one saying the login failed.
func (b *Broker) outcomeUnknown(ctx context.Context, attemptID string, err error) (string, error) {
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		return "", err
	}
	b.Log.ErrorContext(ctx, "login: the session may or may not have been stored", "err", err)
	return "/login?" + url.Values{"req": {attemptID}, "err": {"unknown"}}.Encode(), nil
}

// canonical returns ids in the canonical form package identity gives
// them (spaces gone, letters in upper case), or the first one's error
// that is no valid identifier of its scheme. The error names the scheme
// only if it is a known one, and never the value.
func canonical(ids []store.Identifier) ([]store.Identifier, error) {
	out := slices.Clone(ids)
	for i, id := range out {
		n, err := identity.Parse(id.Scheme, id.Value)
		if err != nil {
			return nil, err
		}
		out[i].Value = n.Value
	}
	return out, nil
}

// Types of the audit events resolve records besides a login's own.
const (
	// EventPersonCreated: an eID proved an identifier nobody held.
	EventPersonCreated = "person_created"
	// EventProfileUpdated: an eID reported another name or date of
	// birth for a person it proved; Details["claims"] names the claims.
	EventProfileUpdated = "profile_updated"
)

// resolve finds the person a result proves: the provider's own person, or
// the person holding any proven identifier, lowering res.Level to what
// the identifiers found reach for that person (linkedLevel). Beside
// the person's ID it returns the person as this request read, found or
// created them, nil if it did not (a provider's person it did not
// carry, provider.Result.Person), so that the block is not read again
// (blocked). An upstream provider that
// proves an identifier nobody holds yet introduces a new person, proofed
// by that provider at the level it reached, with the name and date of
// birth it gave; every later login proving the
// same identifier, through any provider, is the same person and so gets
// the same pairwise sub at each relying party.
//
// It returns too the numbers the person linked that the login proves and
// whose last use recorded is older than identifierUseEvery (staleLinked),
// for the login to record its use of once its session is stored.
func (b *Broker) resolve(ctx context.Context, res *provider.Result) (string, *store.Person, []store.Identifier, error) {
	if res.PersonID != "" {
		return res.PersonID, res.Person, nil, nil
	}
	if len(res.Identifiers) == 0 {
		return "", nil, nil, errors.New("result names no person and no identifier")
	}
	for attempt := 0; attempt < 2; attempt++ {
		found, err := b.lookup(ctx, res.Identifiers)
		if err == nil {
			res.Level = min(res.Level, linkedLevel(found, res.Identifiers))
			if !found.Blocked() {
				// A blocked person's login is refused: it changes
				// nothing of theirs.
				b.refreshProfile(ctx, found, *res)
			}
			return found.ID, found, staleLinked(found, res.Identifiers, b.Now()), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", nil, nil, err
		}
		p, err := b.newPerson(*res)
		if err != nil {
			return "", nil, nil, err
		}
		err = b.Persons.CreatePerson(ctx, p)
		if err == nil {
			b.Audit.Record(ctx, &store.AuditEvent{Type: EventPersonCreated, PersonID: p.ID, Provider: res.Provider,
				Level: res.Level.String(), Result: store.ResultSuccess, Details: map[string]string{"proofing": p.ProofingMethod}})
			return p.ID, p, nil, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return "", nil, nil, err
		}
		// Someone else created this person at the same moment: look again.
	}
	return "", nil, nil, errors.New("could not resolve the person")
}

// identifierUseEvery is how stale the recorded last use of a number the
// person linked may grow before a login through it records it again:
// the account page says on which day an eID they added was last used
// (ADR 57), and a write on every login would cost every eID login one
// more write for a date that moves once a day. An hour keeps that date
// right but for a login in the first hour of a day after one in the
// last hour of the day before.
const identifierUseEvery = time.Hour

// staleLinked are the numbers of ids that p holds as linked
// (store.Identifier.Linked) and last used, as recorded, more than
// identifierUseEvery before now; none for most logins.
func staleLinked(p *store.Person, ids []store.Identifier, now time.Time) []store.Identifier {
	var out []store.Identifier
	for _, id := range ids {
		held, ok := heldIdentifier(p, id)
		if ok && held.Linked() && held.LastUsedAt.Before(now.Add(-identifierUseEvery)) {
			out = append(out, store.Identifier{Scheme: id.Scheme, Value: id.Value})
		}
	}
	return out
}

// noteUse records, after a login's session was stored, that it used
// ids, numbers personID linked (staleLinked). The login does not wait on
// it failing: the date on the account page is only later, and the
// failure is logged, without the numbers.
func (b *Broker) noteUse(ctx context.Context, personID string, ids []store.Identifier) {
	if len(ids) == 0 {
		return
	}
	if err := b.Persons.NoteIdentifierUse(ctx, personID, ids, b.Now()); err != nil {
		b.Log.WarnContext(ctx, "record the use of a linked number", "err", err)
	}
}

// existing is the person a result proves if that person exists already,
// "" otherwise (or when the store cannot tell): unlike resolve, it never
// creates one. It names the person in the audit event of a refused login.
func (b *Broker) existing(ctx context.Context, res provider.Result) string {
	if res.PersonID != "" {
		return res.PersonID
	}
	if p, err := b.lookup(ctx, res.Identifiers); err == nil {
		return p.ID
	}
	return ""
}

// errIdentifiersConflict: a result's identifiers belong to more than one
// person.
var errIdentifiersConflict = errors.New("the identifiers proven belong to different persons")

// lookup finds the person holding any of ids. Identifiers held by two
// different persons are errIdentifiersConflict: which of them the login
// is cannot be told, so it is neither.
func (b *Broker) lookup(ctx context.Context, ids []store.Identifier) (*store.Person, error) {
	var found *store.Person
	for _, id := range ids {
		p, err := b.Persons.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if found != nil && found.ID != p.ID {
			return nil, errIdentifiersConflict
		}
		found = p
	}
	if found == nil {
		return nil, store.ErrNotFound
	}
	return found, nil
}

// linkedLevel is the most a login proving ids reaches as p, who holds
// at least one of them: no limit (High) if p was proofed with one of
// them, else the highest level any of them was linked from
// (store.Identifier.MaxLevel). A link made from a substantial session
// proved no more than that the eID's holder is p, whatever the eID
// reaches since; a level that cannot be read counts as Low.
func linkedLevel(p *store.Person, ids []store.Identifier) assurance.Level {
	best := assurance.Low
	for _, held := range p.Identifiers {
		if !slices.ContainsFunc(ids, func(id store.Identifier) bool { return id.Scheme == held.Scheme && id.Value == held.Value }) {
			continue
		}
		if held.MaxLevel == "" {
			return assurance.High
		}
		if lvl, err := assurance.Parse(held.MaxLevel); err == nil {
			best = max(best, lvl)
		}
	}
	return best
}

// refreshProfile keeps a person's name and date of birth as the eIDs
// that prove them report them: an eID takes them from the population
// register, where a name changes (by marriage, say) and the person's
// record at Varde should follow. A result changes only what it carries,
// and only when it reached at least the level the person was proofed
// at, so a weaker source never overwrites a stronger one. A failure is
// logged and the login goes on: the profile describes the person, it
// does not decide who they are.
func (b *Broker) refreshProfile(ctx context.Context, p *store.Person, res provider.Result) {
	proofed, err := assurance.Parse(p.ProofingLevel)
	if err != nil || res.Level < proofed {
		return
	}
	old := p.Profile()
	pr := old
	var changed []string
	for _, f := range []struct {
		name     string
		dst      *string
		reported string
	}{
		{"given_name", &pr.GivenName, res.GivenName},
		{"family_name", &pr.FamilyName, res.FamilyName},
		{"birthdate", &pr.BirthDate, res.BirthDate},
	} {
		if f.reported != "" && f.reported != *f.dst {
			*f.dst = f.reported
			changed = append(changed, f.name)
		}
	}
	if len(changed) == 0 {
		return
	}
	if err := b.Persons.UpdatePersonProfile(ctx, p.ID, pr); err != nil {
		b.Log.WarnContext(ctx, "update person's profile", "provider", res.Provider, "err", err)
		return
	}
	// Which claims changed, never their values: the audit log holds no
	// personal data beyond the person's ID.
	b.Audit.Record(ctx, &store.AuditEvent{Type: EventProfileUpdated, PersonID: p.ID, Provider: res.Provider,
		Level: res.Level.String(), Result: store.ResultSuccess, Details: map[string]string{"claims": strings.Join(changed, " ")}})
}

func (b *Broker) newPerson(res provider.Result) (*store.Person, error) {
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var id [16]byte
	handle := make([]byte, 32)
	if _, err := io.ReadFull(rnd, id[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, handle); err != nil {
		return nil, err
	}
	return &store.Person{
		ID: base64.RawURLEncoding.EncodeToString(id[:]), WebAuthnID: handle,
		Identifiers: res.Identifiers,
		GivenName:   res.GivenName, FamilyName: res.FamilyName, BirthDate: res.BirthDate,
		ProofingLevel: res.Level.String(), ProofingMethod: "upstream:" + res.Provider,
		Synthetic: synthetic(res.Identifiers), CreatedAt: b.Now(),
	}, nil
}

// synthetic reports whether ids are all numbers of synthetic test
// persons (identity.Number.Synthetic), as test eIDs assert them: the
// person made from them is a test person, not a real one.
func synthetic(ids []store.Identifier) bool {
	for _, id := range ids {
		n, err := identity.Parse(id.Scheme, id.Value)
		if err != nil || !n.Synthetic() {
			return false
		}
	}
	return len(ids) > 0
}

// Pending implements provider.Finisher.
func (b *Broker) Pending(ctx context.Context, attemptID string) (bool, error) {
	if attemptID == AccountAttempt {
		return true, nil
	}
	_, err := b.AuthRequests.GetAuthRequest(ctx, attemptID, b.Now())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Accepts implements provider.Finisher: the checks Finish makes before
// it takes a result, made beforehand.
func (b *Broker) Accepts(r *http.Request, attemptID, providerID string, level assurance.Level) (bool, error) {
	info, known := b.info(providerID)
	if !known || strings.HasPrefix(attemptID, linkPrefix) {
		return false, nil
	}
	a, err := b.load(r, attemptID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.accepts(info, level), nil
}

// accepts reports whether Finish would take, for attempt a, a result
// from the provider info describes at level.
func (a *attempt) accepts(info provider.Info, level assurance.Level) bool {
	return a.refusal(info) == "" && min(level, info.MaxLevel) >= a.min
}

// Fail implements provider.Finisher. The person is offered the choice
// again. A cancellation is the person's choice, and neither an
// unverified response nor a failure of this node's own is evidence
// about the provider; anything else counts against the provider's
// health.
func (b *Broker) Fail(w http.ResponseWriter, r *http.Request, attemptID, providerID, reason string) string {
	return b.bindNotice(w, b.failed(r, attemptID, providerID, reason, ""))
}

// FailAccount implements provider.AccountFinisher: Fail with reason
// provider.ReasonAccountRefused, which counts against the provider's
// health once per account in the login window, however often that
// account is refused.
func (b *Broker) FailAccount(w http.ResponseWriter, r *http.Request, attemptID, providerID, account string) string {
	return b.bindNotice(w, b.failed(r, attemptID, providerID, provider.ReasonAccountRefused, account))
}

// failed is Fail, with the account a refusal was about ("" if unknown).
func (b *Broker) failed(r *http.Request, attemptID, providerID, reason, account string) string {
	if strings.HasPrefix(attemptID, linkPrefix) {
		return b.failLink(r, attemptID, providerID, reason, account)
	}
	// The attempt handle comes from the ID itself, so it is recorded even
	// when the attempt can no longer be loaded.
	ev := &store.AuditEvent{Type: EventAuthentication, Provider: providerID, Details: traced(nil, attemptID, b.requestBrowser(r))}
	if a, err := b.load(r, attemptID); err == nil && a.client != nil {
		ev.ClientID = a.client.ID
	}
	b.fail(r.Context(), ev, reason)
	q := url.Values{"req": {attemptID}, "err": {b.failureKind(providerID, reason, account)}}
	if q.Get("err") != "cancelled" && reason != provider.ReasonNodeError && providerID != "" {
		// The choice lists the provider that failed last (loginPage).
		q.Set("from", providerID)
	}
	return "/login?" + q.Encode()
}

// failureKind observes the failure (observeFailure) and says what the
// person is told: "cancelled"; "refused", when the provider answered but
// for an account that cannot be used here, where trying the same again
// would fail the same way; or "failed".
func (b *Broker) failureKind(providerID, reason, account string) string {
	switch {
	case b.observeFailure(providerID, reason, account):
		return "cancelled"
	case reason == provider.ReasonAccountRefused:
		return "refused"
	}
	return "failed"
}

// observeFailure reports a provider's failure to health monitoring,
// unless its reason says the provider did not fail, and reports whether
// the person cancelled. A response that came back through the browser
// unconfirmed by the provider is left out: anyone who starts a login
// can forge one, and a handful would otherwise make a working provider
// Down. So is a failure of this node's own. A refused account counts
// once per account in the login window: one person retrying with an
// eID account Varde cannot use must not make the eID down for everyone.
func (b *Broker) observeFailure(providerID, reason, account string) (cancelled bool) {
	switch reason {
	case provider.ReasonCancelled:
		return true
	case provider.ReasonUnverifiedResponse, provider.ReasonNodeError:
	case provider.ReasonAccountRefused:
		if b.Health != nil && providerID != "" {
			b.Health.ObserveRefusal(providerID, account)
		}
	default:
		b.observe(providerID, health.Error)
	}
	return false
}

func (b *Broker) fail(ctx context.Context, ev *store.AuditEvent, reason string) {
	ev.Result = store.ResultFailure
	ev.Reason = reason
	b.Audit.Record(ctx, ev)
	b.Metrics.Logins.WithLabelValues(store.ResultFailure, ev.Provider, ev.Level).Inc()
}
