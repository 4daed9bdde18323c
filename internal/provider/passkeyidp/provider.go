package passkeyidp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// ID is the provider's stable ID.
const ID = "passkey"

// Auditor records audit events; audit.Log implements it.
type Auditor interface {
	Record(ctx context.Context, e *store.AuditEvent)
	// Prepare readies e for a store write that appends it with what it
	// records (the end of the person's other sessions).
	Prepare(ctx context.Context, e *store.AuditEvent)
}

// Provider is Varde's built-in passkey identity provider. It implements
// provider.Provider and provider.Router. Build it with named fields;
// Now, Rand and Log have defaults.
type Provider struct {
	// WebAuthn runs the ceremonies.
	WebAuthn      *passkey.Service
	Persons       store.Persons
	Passkeys      store.Passkeys
	RecoveryCodes store.RecoveryCodes
	// DeskCodes, if set, lets the recovery page take a code from the
	// help desk too (ADR 62), where a recovery code is typed.
	DeskCodes store.DeskCodes
	// Challenges holds the single-use tickets between enrolment and the
	// page that shows recovery codes once.
	Challenges store.Challenges
	// Limits counts recovery code tries per attempt (per browser for an
	// account login).
	Limits store.ReplayCache
	// BrowserKey signs the mark of a browser given the account recovery
	// form (knowBrowser): at least MinBrowserKeySize bytes, the same on
	// every node, secret.
	BrowserKey []byte
	// CursorKey seals the cursors of the activity pages (cursor.go):
	// MinCursorKeySize bytes, the same on every node, secret.
	CursorKey []byte
	// Sessions is read by the account pages; the broker starts sessions.
	Sessions *session.Manager
	Finisher provider.Finisher
	Pages    *httpx.Pages
	Audit    Auditor
	// History, if set, gives the account page the person's recent
	// activity from the audit log; Clients names the services in it,
	// and ProviderName the other ways to log in, in a language ("" when
	// it does not know the provider).
	History      store.AuditLog
	Clients      store.Clients
	ProviderName func(id, lang string) string
	// Grants, if set, lets the account page list the services that can
	// reach the person's data while they are away (offline_access) and
	// stop them.
	Grants store.Grants
	// AddressRetention is how long the audit log keeps an event's
	// client address (audit.address_retention, ADR 38), which the
	// activity pages tell the person; zero says a limited time.
	AddressRetention time.Duration
	// SyntheticEnrolment lets visitors create synthetic test persons.
	SyntheticEnrolment bool
	Now                func() time.Time
	Rand               io.Reader
	Log                *slog.Logger
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Router   = (*Provider)(nil)
)

// Limits and sizes.
const (
	// MaxRecoveryTries is how many recovery codes one attempt, or one
	// browser's account login, may try.
	MaxRecoveryTries = 5
	// MaxPasskeys is how many passkeys one person may hold: more than
	// anyone needs, and it bounds what a person's account page lists and
	// what every registration sends the authenticator to exclude.
	MaxPasskeys = 20
	// RecoveryCodeCount is how many codes a person gets at a time.
	RecoveryCodeCount = 10
	// ticketLifetime bounds the pages that show recovery codes once and
	// the enrolled page's Continue button.
	ticketLifetime = 10 * time.Minute
	// maxJSON caps JSON request bodies other than WebAuthn responses.
	maxJSON = 8 << 10
	// maxAttempt caps attempt IDs taken from requests.
	maxAttempt = 256
)

// Info implements provider.Provider.
func (p *Provider) Info() provider.Info {
	return provider.Info{ID: ID, Name: map[string]string{"en": "Passkey", "nb": "Passnøkkel", "da": "Adgangsnøgle"}, MaxLevel: assurance.High, Enrolled: true}
}

// Start implements provider.Provider: it sends the browser to the login
// page for a.
func (p *Provider) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) {
	q := url.Values{"attempt": {a.ID}}
	if a.Locale != "" {
		q.Set("lang", a.Locale)
	}
	http.Redirect(w, r, "/passkey/login?"+q.Encode(), http.StatusSeeOther)
}

// Register implements provider.Router.
func (p *Provider) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /passkey/login", p.loginPage)
	mux.HandleFunc("POST /passkey/login/begin", p.loginBegin)
	mux.HandleFunc("POST /passkey/login/finish", p.loginFinish)
	mux.HandleFunc("POST /passkey/cancel", p.cancel)

	mux.HandleFunc("GET /passkey/recover", p.recoverPage)
	mux.HandleFunc("POST /passkey/recover", p.recoverSubmit)

	mux.HandleFunc("GET /passkey/enrol", p.enrolPage)
	mux.HandleFunc("POST /passkey/enrol/begin", p.enrolBegin)
	mux.HandleFunc("POST /passkey/enrol/finish", p.enrolFinish)
	mux.HandleFunc("GET /passkey/enrolled", p.enrolledPage)
	mux.HandleFunc("POST /passkey/enrolled/continue", p.enrolledContinue)

	mux.HandleFunc("GET /account", p.accountPage)
	mux.HandleFunc("GET "+historyPath, p.historyPage)
	mux.HandleFunc("POST /account/passkeys/begin", p.addBegin)
	mux.HandleFunc("POST /account/passkeys/finish", p.addFinish)
	mux.HandleFunc("POST /account/passkeys/cancel", p.addCancel)
	mux.HandleFunc("GET "+removePath, p.removeConfirmPage)
	mux.HandleFunc("POST "+removePath, p.removePasskey)
	mux.HandleFunc("GET "+renamePath, p.renamePage)
	mux.HandleFunc("POST "+renamePath, p.renamePasskey)
	mux.HandleFunc("GET "+unlinkPath, p.unlinkConfirmPage)
	mux.HandleFunc("POST "+unlinkPath, p.unlinkEID)
	mux.HandleFunc("GET "+newCodesPath, p.newCodesConfirmPage)
	mux.HandleFunc("POST /account/recovery-codes", p.newCodes)
	mux.HandleFunc("GET /account/recovery-codes", p.codesPage)
	mux.HandleFunc("POST /account/sessions/end-others", p.endElsewhere)
	mux.HandleFunc("POST /account/services/stop", p.stopService)
	mux.HandleFunc("POST "+keepPath, p.keepSession)

	// A method an address does not serve gets 405 with Allow and a
	// plain-language page, not the mux's English text.
	get, post := http.MethodGet, http.MethodPost
	for path, methods := range map[string][]string{
		"/passkey/login": {get}, "/passkey/login/begin": {post}, "/passkey/login/finish": {post},
		"/passkey/cancel": {post}, "/passkey/recover": {get, post},
		"/passkey/enrol": {get}, "/passkey/enrol/begin": {post}, "/passkey/enrol/finish": {post},
		"/passkey/enrolled": {get}, "/passkey/enrolled/continue": {post},
		"/account": {get}, "/account/passkeys/begin": {post}, "/account/passkeys/finish": {post},
		"/account/passkeys/cancel": {post}, "/account/passkeys/remove": {get, post}, "/account/passkeys/rename": {get, post},
		"/account/recovery-codes": {get, post}, "/account/recovery-codes/new": {get},
		"/account/sessions/end-others": {post}, "/account/services/stop": {post}, unlinkPath: {get, post},
		keepPath: {post},
	} {
		mux.Handle(path, p.Pages.WrongMethod(methods...))
	}
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Provider) rand() io.Reader {
	if p.Rand != nil {
		return p.Rand
	}
	return rand.Reader
}

func (p *Provider) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Provider) randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand(), b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (p *Provider) lang(r *http.Request) string { return p.Pages.Locale(r, nil) }

// attemptParam reads the attempt ID; "" is an account login.
func attemptParam(v string) (string, bool) {
	return v, len(v) <= maxAttempt
}

// level is what a login reaches: the person's proofing level capped by
// what the authenticator supports (assurance.FromEvidence).
func level(person *store.Person, a assurance.Authenticator) assurance.Level {
	proofing, err := assurance.Parse(person.ProofingLevel)
	if err != nil {
		return assurance.None
	}
	return assurance.FromEvidence(proofing, a)
}

// passkeyResult is the provider.Result of a login with a passkey whose
// store.Passkey.MaxLevel is maxLevel ("" for none): the level its
// authenticator and the person's proofing give, and no more than
// maxLevel, the level of the login that added it.
func passkeyResult(person *store.Person, uv, be bool, maxLevel string, at time.Time) provider.Result {
	a := assurance.Authenticator{Kind: assurance.KindPasskey, UserVerified: uv, BackupEligible: be}
	l := level(person, a)
	if maxLevel != "" {
		capped, err := assurance.Parse(maxLevel)
		if err != nil {
			capped = assurance.None // unreadable: fail closed
		}
		l = min(l, capped)
	}
	return provider.Result{
		Provider: ID, PersonID: person.ID, Level: l, AMR: assurance.AMR(a),
		AuthTime: at, Method: "passkey",
	}
}

// methodRecoveryCode is the provider.Result Method of a recovery code
// login, which the broker records in the login's audit event.
const methodRecoveryCode = "recovery-code"

// eventRecoveryIssued is the audit event of a code the help desk gave
// the person (varde persons recover, ADR 62).
const eventRecoveryIssued = "recovery_issued"

// methodDeskCode is the provider.Result Method of a login with a code
// from the help desk (ADR 62).
const methodDeskCode = "desk-code"

// recoveryResult is the provider.Result of a recovery code login, or
// with desk, of a help desk code's: the assurance package says what
// each reaches.
func recoveryResult(person *store.Person, at time.Time, desk bool) provider.Result {
	a, method := assurance.Authenticator{Kind: assurance.KindRecoveryCode}, methodRecoveryCode
	if desk {
		a, method = assurance.Authenticator{Kind: assurance.KindDeskCode}, methodDeskCode
	}
	return provider.Result{
		Provider: ID, PersonID: person.ID, Level: level(person, a), AMR: assurance.AMR(a),
		AuthTime: at, Method: method,
	}
}

func (p *Provider) audit(ctx context.Context, e *store.AuditEvent) {
	if p.Audit == nil {
		return
	}
	e.Provider = ID
	if e.Time.IsZero() {
		e.Time = p.now().UTC().Truncate(time.Microsecond)
	}
	p.Audit.Record(ctx, e)
}

func (p *Provider) auditFailure(ctx context.Context, typ, reason, method, personID string) {
	p.audit(ctx, &store.AuditEvent{Type: typ, Result: store.ResultFailure, Reason: reason, PersonID: personID,
		Details: map[string]string{"method": method}})
}

// --- JSON API -----------------------------------------------------------

// isJSON reports whether the request declares a JSON body. JSON endpoints
// require it: a cross-site HTML form cannot send application/json, and a
// cross-site script can only do so after a CORS preflight, which we never
// answer. That is their CSRF protection (the account ones also check a
// token).
// The pages that ask before a change to the person's ways in.
const (
	removePath   = "/account/passkeys/remove"
	renamePath   = "/account/passkeys/rename"
	newCodesPath = "/account/recovery-codes/new"
)

// isForm reports whether r's body is a plain HTML form.
func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// readBody reads at most limit bytes; more is an error.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("body too large")
	}
	return b, nil
}

// readResponse reads a WebAuthn response for the passkey service, which
// uses up the ceremony whatever it is given: at most one byte more than
// passkey.MaxResponseSize, so that one too large is seen as such, and
// nothing if the body cannot be read, which the service refuses as bad
// input.
func readResponse(r *http.Request) []byte {
	b, err := io.ReadAll(io.LimitReader(r.Body, passkey.MaxResponseSize+1))
	if err != nil {
		return nil
	}
	return b
}

func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r, maxJSON)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the JSON error body: a machine-readable code and a
// plain-language message in the page language.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (p *Provider) jsonError(w http.ResponseWriter, r *http.Request, status int, code string) {
	writeJSON(w, status, apiError{Error: code, Message: p.Pages.T(p.lang(r), "passkey.err."+code)})
}

// ceremonyError is jsonError for a failed ceremony of a kind ("add",
// "enrol"): where a message would speak of a login, such as "replay",
// the kind has words of its own, passkey.err.CODE.KIND.
func (p *Provider) ceremonyError(w http.ResponseWriter, r *http.Request, status int, code, kind string) {
	lang := p.lang(r)
	key := "passkey.err." + code + "." + kind
	msg := p.Pages.T(lang, key)
	if msg == key {
		msg = p.Pages.T(lang, "passkey.err."+code)
	}
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

// busyRetry is the Retry-After, in seconds, of a begin refused because
// the node's flow state is full.
const busyRetry = httpx.BusyRetry

// storeRetry is the Retry-After, in seconds, of an answer refused
// because the store could not be reached or is overloaded
// (store.ErrUnavailable): long enough for a database restart or
// failover.
const storeRetry = httpx.UnavailableRetry

// beginFailed answers a begin endpoint whose ceremony could not be
// started, or an enrolment's finish whose tickets could not be stored.
// When the flow state is full (store.ErrFull: a flood of begins, or
// more logins than the node may hold), that is 503 "busy"
// with Retry-After, not logged, since a flood would fill the log too;
// anything else is as failed answers it.
func (p *Provider) beginFailed(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if errors.Is(err, store.ErrFull) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		p.jsonError(w, r, http.StatusServiceUnavailable, "busy")
		return
	}
	p.failed(w, r, msg, err)
}

// failed answers a JSON endpoint that failed on Varde's side, and logs
// why. When the store could not be reached (store.Unavailable: nothing
// was written, and the same request may succeed shortly) that is 503
// "unavailable" with Retry-After; anything else, a write whose outcome
// is unknown among them, is 500 "internal".
func (p *Provider) failed(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if store.Unavailable(err) {
		p.log().WarnContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
		w.Header().Set("Retry-After", strconv.Itoa(storeRetry))
		p.jsonError(w, r, http.StatusServiceUnavailable, "unavailable")
		return
	}
	p.log().ErrorContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
	p.jsonError(w, r, http.StatusInternalServerError, "internal")
}

// ceremonyReply is what the begin endpoints return.
type ceremonyReply struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

type redirectReply struct {
	Redirect string `json:"redirect"`
}

// writeRedirect answers a ceremony's finish with where the page's
// script sends the browser next: ref, a path on this node or a relying
// party's URL, as the browser must follow it (httpx.Pages.URL: under
// the issuer's path).
func (p *Provider) writeRedirect(w http.ResponseWriter, ref string) {
	writeJSON(w, http.StatusOK, redirectReply{Redirect: p.Pages.URL(ref)})
}

// statusFor is the HTTP status of a failed ceremony.
func statusFor(err error) int {
	switch passkey.Reason(err) {
	case "internal":
		return http.StatusInternalServerError
	case "passkey_limit":
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// --- pages --------------------------------------------------------------

// internalError tells the person that Varde failed. The page of a login
// to a service sends them to that service if it keeps failing; the
// account pages and the account's own login have no service to name.
//
// When the store could not be reached (store.ErrUnavailable) the page
// says so instead: 503 with Retry-After, nothing lost, try again in a
// minute.
func (p *Provider) internalError(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if store.Unavailable(err) {
		p.log().WarnContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
		p.Pages.Unavailable(w, r, p.lang(r), httpx.UnavailablePage())
		return
	}
	p.log().ErrorContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
	next := "error.internal.next"
	if forAccount(r) {
		next = "error.internal.account.next"
	}
	p.Pages.Error(w, r, http.StatusInternalServerError, p.lang(r), httpx.ErrorPage{
		Title: "error.internal.title", Message: "error.internal.message", Next: next,
	})
}

// forAccount reports whether r is for the account rather than for a
// service: an account page, or a passkey or recovery code login whose
// attempt is the account's (broker.AccountAttempt, the empty one).
func forAccount(r *http.Request) bool {
	switch {
	case r.URL.Path == "/account" || strings.HasPrefix(r.URL.Path, "/account/"):
		return true
	case r.URL.Path == "/passkey/login" || r.URL.Path == "/passkey/recover":
		return r.FormValue("attempt") == ""
	}
	return false
}

// hold reports whether the broker holds attempt (when it does not, or
// cannot tell, it has told the person so: a page for a login nobody
// holds, made up, expired or finished, would offer forms that can only
// fail), and for a page that also asks it, whether the broker would take
// a result at level for attempt, and until when its login stays open:
// from one read of the attempt when the Finisher is a provider.Holder,
// otherwise from Pending and Accepts, with no time limit shown. ok is
// false when the page must not be shown (no such login, or another
// browser's), and the person has been told why.
func (p *Provider) hold(w http.ResponseWriter, r *http.Request, attempt string, level assurance.Level) (h provider.Hold, ok bool) {
	var err error
	if hr, isHolder := p.Finisher.(provider.Holder); isHolder {
		h, err = hr.Hold(r, attempt, ID, level, p.lang(r))
	} else if h.Pending, err = p.Finisher.Pending(r.Context(), attempt); err == nil && h.Pending {
		h.Accepts, err = p.Finisher.Accepts(r, attempt, ID, level)
	}
	if err != nil {
		p.internalError(w, r, "login attempt", err)
		return h, false
	}
	switch {
	case !h.Pending:
		p.Pages.Error(w, r, http.StatusBadRequest, p.lang(r), httpx.UnknownLoginPage())
		return h, false
	case h.Elsewhere:
		// A login another browser began (ADR 47) is answered as the
		// broker's login page answers it: go back to the service and
		// start again, here. Not with a form only that browser could
		// use, nor with a recovery code being "not enough".
		p.badRequest(w, r)
		return h, false
	}
	return h, true
}

func (p *Provider) badRequest(w http.ResponseWriter, r *http.Request) {
	p.Pages.Error(w, r, http.StatusBadRequest, p.lang(r), httpx.BadRequestPage())
}

func (p *Provider) forbidden(w http.ResponseWriter, r *http.Request) {
	p.Pages.Error(w, r, http.StatusForbidden, p.lang(r), httpx.ErrorPage{
		Title: "passkey.csrf.title", Message: "passkey.csrf.message", Next: "passkey.csrf.next",
	})
}

func (p *Provider) notFound(w http.ResponseWriter, r *http.Request) {
	p.Pages.Error(w, r, http.StatusNotFound, p.lang(r), httpx.NotFoundPage())
}

// finish hands a result to the broker and sends the browser on.
func (p *Provider) finishRedirect(w http.ResponseWriter, r *http.Request, attempt string, res provider.Result) {
	next, err := p.Finisher.Finish(w, r, attempt, res)
	p.redirectNext(w, r, next, err)
}

// finishHeld is finishRedirect for a login whose hold this request
// asked for: through h.Finish, on the request as the hold read it,
// when the Finisher gave one.
func (p *Provider) finishHeld(w http.ResponseWriter, r *http.Request, h provider.Hold, attempt string, res provider.Result) {
	if h.Finish == nil {
		p.finishRedirect(w, r, attempt, res)
		return
	}
	next, err := h.Finish(w, r, res)
	p.redirectNext(w, r, next, err)
}

// redirectNext sends the browser where the Finisher said, or, if it
// failed, shows the error page.
func (p *Provider) redirectNext(w http.ResponseWriter, r *http.Request, next string, err error) {
	if err != nil {
		p.internalError(w, r, "finish login", err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// cancel gives the attempt back to the broker, which offers other ways
// to log in.
func (p *Provider) cancel(w http.ResponseWriter, r *http.Request) {
	if !p.Pages.ReadForm(w, r, p.lang(r)) {
		return
	}
	attempt, ok := attemptParam(r.PostFormValue("attempt"))
	if !ok {
		p.badRequest(w, r)
		return
	}
	if !p.checkFormToken(r) {
		p.forbidden(w, r)
		return
	}
	http.Redirect(w, r, p.Finisher.Fail(w, r, attempt, ID, "cancelled"), http.StatusSeeOther)
}
