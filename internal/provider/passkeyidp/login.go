package passkeyidp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// loginData is the passkey_login page.
type loginData struct {
	Attempt    string
	RecoverURL string
	// EnrolURL is set when synthetic enrolment is on.
	EnrolURL string
	CSRF     string
	// ShowCancel: the login belongs to a relying party's request, so
	// there may be other ways to log in.
	ShowCancel bool
	// OtherWaysURL is set for an account login: the broker's login page,
	// which offers every way in, for a person without a passkey.
	OtherWaysURL string
	// Timeout says until when a service's login stays open
	// (provider.Hold), nil for an account login.
	Timeout *provider.LoginTimeout
}

func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	attempt, ok := attemptParam(r.URL.Query().Get("attempt"))
	if !ok {
		p.badRequest(w, r)
		return
	}
	// The broker's one read of the login says until when it stays open;
	// whether a passkey could end it is for the ceremony's finish.
	h, ok := p.hold(w, r, attempt, assurance.High)
	if !ok {
		return
	}
	token, err := p.formToken(w, r)
	if err != nil {
		p.internalError(w, r, "form token", err)
		return
	}
	q := url.Values{"attempt": {attempt}}.Encode()
	d := loginData{Attempt: attempt, RecoverURL: "/passkey/recover?" + q, CSRF: token, ShowCancel: attempt != ""}
	if attempt == "" {
		d.OtherWaysURL = reauthURL
	}
	if p.SyntheticEnrolment {
		d.EnrolURL = "/passkey/enrol?" + q
	}
	// The passkey ceremony's challenge is made when the person presses
	// the button, and lives on its own from then
	// (passkey.DefaultLifetime), so only the request's end is shown and
	// extended (ADR 50).
	d.Timeout = withBack(h.Timeout, attempt, loginPath)
	p.Pages.Render(w, r, http.StatusOK, "passkey_login", p.lang(r), d)
}

// withBack is t, the time limit a page for attempt shows, with the page
// to which a keep without script goes back: path (one of LoginPages),
// with the attempt; t as it is for "", a page that cannot be loaded
// again, which then offers no such keep.
func withBack(t *provider.LoginTimeout, attempt, path string) *provider.LoginTimeout {
	if t != nil && path != "" {
		t.Back = path + "?" + url.Values{"attempt": {attempt}}.Encode()
	}
	return t
}

// loginTimeout is what a page for attempt that shows no form of the
// login's own says of its service's login running out: nil for an
// account login, a Finisher that cannot say (not a provider.Holder), or
// a read that fails, after which the page simply does not say it.
func (p *Provider) loginTimeout(r *http.Request, attempt, path string) *provider.LoginTimeout {
	hr, ok := p.Finisher.(provider.Holder)
	if !ok || attempt == "" {
		return nil
	}
	h, err := hr.Hold(r, attempt, ID, assurance.High, p.lang(r))
	if err != nil {
		p.log().WarnContext(r.Context(), "login time limit", "err", err)
		return nil
	}
	return withBack(h.Timeout, attempt, path)
}

// The login pages of a service's login that say until when it stays
// open (LoginPages).
const (
	loginPath   = "/passkey/login"
	recoverPath = "/passkey/recover"
	enrolPath   = "/passkey/enrol"
)

// LoginPages are the pages that show a service's login's time limit,
// for the broker's keep without script (broker.Broker KeepPages), which
// sends the browser back to them only.
var LoginPages = []string{loginPath, recoverPath, enrolPath}

type beginRequest struct {
	Attempt string `json:"attempt"`
}

// loginBegin: POST /passkey/login/begin {"attempt": "…"} →
// {"ceremony": "…", "options": {"publicKey": {…}}}.
func (p *Provider) loginBegin(w http.ResponseWriter, r *http.Request) {
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return
	}
	var req beginRequest
	if err := decodeJSON(r, &req); err != nil {
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	if _, ok := attemptParam(req.Attempt); !ok {
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	id, opts, err := p.WebAuthn.BeginLogin(r.Context(), req.Attempt)
	if err != nil {
		p.beginFailed(w, r, "begin passkey login", err)
		return
	}
	writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: id, Options: opts})
}

// loginFinish: POST /passkey/login/finish?ceremony=… with the credential
// JSON → {"redirect": "…"}, or 400 {"error", "message"}; 503
// "unavailable" with Retry-After when the store could not be reached.
func (p *Provider) loginFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return
	}
	res, err := p.WebAuthn.FinishLogin(ctx, r.URL.Query().Get("ceremony"), readResponse(r))
	if err != nil {
		reason := passkey.Reason(err)
		ownFault := reason == provider.ReasonInternal
		if ownFault {
			// The store unreachable, or a write of the ceremony or the
			// passkey's use that got no answer, is audited as such, not
			// as a defect.
			reason = provider.ErrorReason(err)
		}
		// A passkey that verified but cannot be trusted (a copy of it may
		// be in other hands) is recorded as its person's, so that they see
		// the refused login on their account page (ADR 12) and operators
		// see whose passkey it was.
		ev := &store.AuditEvent{Type: "authentication", Result: store.ResultFailure, Reason: reason,
			Details: map[string]string{"method": "passkey", provider.DetailCeremony: provider.CeremonyUnknown}}
		// Named by its attempt and browser, the failure counts one
		// person however often they retry (package status).
		if attempt, found := passkey.AttemptOf(err); found {
			ev.Details = p.traceFound(r, attempt, ev.Details)
		}
		var ce *passkey.CredentialError
		if errors.As(err, &ce) {
			ev.PersonID = ce.PersonID
			ev.Details["credential"] = credentialRef(ce.CredentialID)
		}
		p.audit(ctx, ev)
		if ownFault {
			// A store that could not be reached is "try again", not a
			// failure of ours (failed). A write whose outcome is unknown
			// is a 500 whose message asks the person to try again: the
			// login did not happen, and a new ceremony is safe whether
			// or not the write was stored.
			p.failed(w, r, "finish passkey login", err)
			return
		}
		p.jsonError(w, r, statusFor(err), reason)
		return
	}
	result := passkeyResult(res.Person, res.UserVerified, res.BackupEligible, res.Passkey.MaxLevel, p.now())
	// The session is stored only if the person still holds this passkey.
	result.WayIn = store.WayIn{Passkey: res.Passkey.CredentialID}
	// Read by the ceremony's finish, in this request: the broker checks
	// the block on it rather than reading the person again.
	result.Person = res.Person
	next, err := p.Finisher.Finish(w, r, res.AttemptID, result)
	if err != nil {
		p.failed(w, r, "finish login", err)
		return
	}
	p.writeRedirect(w, next)
}

// errNoSession is reported by account endpoints called without one.
var errNoSession = errors.New("no session")

// reasonPersonBlocked is the audit reason of a change to the account
// that the store refused because the person was blocked after the
// change read them (store.ErrBlocked, ADR 42).
const reasonPersonBlocked = "person_blocked"

// reasonSessionEnded is the audit reason of a change to the account
// that the store refused because the session making it ended after the
// change read it (the person logged out everywhere else, or a change
// made elsewhere ended it): a session that has ended changes nothing.
const reasonSessionEnded = "session_ended"

// goneReason is the audit reason of a change to the account that the
// store refused because whoever asked for it is no longer logged in
// (store.ErrBlocked: the person was blocked; store.ErrNotFound: the
// session ended, or the person is gone) since the change read them; ""
// for any other error.
func goneReason(err error) string {
	switch {
	case errors.Is(err, store.ErrBlocked):
		return reasonPersonBlocked
	case errors.Is(err, store.ErrNotFound):
		return reasonSessionEnded
	}
	return ""
}

// personOf returns the person of the request's session; errNoSession
// if there is none, or its person is gone or blocked, and the store's error if it cannot tell, so that an
// outage is not shown as a request to log in again.
func (p *Provider) personOf(r *http.Request) (*store.Session, *store.Person, error) {
	s, err := p.Sessions.Current(r)
	if errors.Is(err, session.ErrNoSession) {
		return nil, nil, errNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	person, err := p.Persons.GetPerson(r.Context(), s.PersonID)
	if errors.Is(err, store.ErrNotFound) || err == nil && person.Blocked() {
		// A block ends the person's sessions (ADR 27); one stored as it
		// landed, after the broker read the person, is no session
		// either: whatever it changed would outlast the block (ADR 42).
		// Logging in again meets the broker's page saying so.
		return nil, nil, errNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	return s, person, nil
}

// pagePerson is personOf for a page: without a session it sends the
// browser to log in, on any other failure it answers with the error
// page, and then it reports false and the handler must stop.
func (p *Provider) pagePerson(w http.ResponseWriter, r *http.Request) (*store.Session, *store.Person, bool) {
	s, person, err := p.personOf(r)
	if errors.Is(err, errNoSession) {
		p.toLogin(w, r)
		return nil, nil, false
	}
	if err != nil {
		p.internalError(w, r, "account person", err)
		return nil, nil, false
	}
	return s, person, true
}

// traceFound marks d, the Details of a failed login's event, as of a
// ceremony found (provider.DetailCeremony), begun for attempt, and adds
// the handles of attempt and of r's browser where the Finisher can name
// them (provider.Tracer), and returns it.
func (p *Provider) traceFound(r *http.Request, attempt string, d map[string]string) map[string]string {
	d[provider.DetailCeremony] = provider.CeremonyFound
	if t, ok := p.Finisher.(provider.Tracer); ok {
		d = t.Trace(r, attempt, d)
	}
	return d
}
