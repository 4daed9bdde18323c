package provider

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/store"
)

// Info describes a provider to the broker and the login page.
type Info struct {
	// ID is stable and URL-safe, e.g. "passkey", "bankid".
	ID string
	// Name is shown to people, by language tag ("en", "nb"); "en" is the
	// fallback.
	Name map[string]string
	// MaxLevel is the highest level the provider can deliver.
	MaxLevel assurance.Level
	// Enrolled: the provider logs in only the persons who set it up at
	// Varde beforehand (the passkey provider), so it is no way in for
	// everyone: while every provider that is reaches a client's level
	// is down, the client's degraded-mode policy applies though this
	// one is up (ADR 63).
	Enrolled bool
}

// Attempt is one login transaction the broker hands to a provider.
type Attempt struct {
	// ID identifies the transaction; the provider passes it back to
	// Finish unchanged. It is opaque to the provider.
	ID string
	// Locale is the language to show pages in ("nb", "en", "da").
	Locale string
	// MinLevel is the level the attempt needs; a provider may use it to
	// choose its method, the broker enforces it.
	MinLevel assurance.Level
	// LoginHint is the relying party's login_hint, if any.
	LoginHint string
	// Hinted: the relying party pushed its request naming a provider
	// (provider_hint), so a provider.Preparer may have been asked to
	// prepare this attempt, at this node or another.
	Hinted bool
	// Fresh: the relying party asked for a new authentication
	// (prompt=login, or max_age=0), or to choose the account
	// (prompt=select_account). A provider with single sign-on of its own
	// (an upstream eID) must not reuse it.
	Fresh bool
	// MaxAge, if not 0, is the relying party's max_age: a provider with
	// single sign-on of its own may reuse an authentication no older
	// than this, and must say when it was.
	MaxAge time.Duration
}

// Result is what a provider proved about the person in front of it.
type Result struct {
	Provider string
	// PersonID is set by providers that keep persons themselves (the
	// built-in passkey provider).
	PersonID string
	// Person, if not nil, is the person PersonID names as the provider
	// read them from the store while serving this same HTTP request
	// (the holder of the passkey or recovery code the login used). The
	// broker decides by it whether they are blocked rather than reading
	// them once more, moments later: the read is as fresh as the one it
	// saves, and a block landing after either is refused at the token
	// endpoint and the account pages all the same (ADR 27). A person
	// carried from an earlier request (a ceremony's or a ticket's
	// stored data) must not be set here: it may be older than a block.
	Person *store.Person
	// Identifiers are set by providers that prove identifiers (upstream
	// providers); the broker links them to a person.
	Identifiers []store.Identifier
	// GivenName, FamilyName and BirthDate (YYYY-MM-DD) are what an
	// upstream provider said about the person besides identifiers, each
	// "" when it said nothing usable. The broker gives them to a person
	// it creates from this result; it never changes an existing
	// person's.
	GivenName, FamilyName, BirthDate string
	// Level is what this login reached, computed from evidence.
	Level    assurance.Level
	AMR      []string
	AuthTime time.Time
	// Method is a short label for audit ("passkey", "recovery-code").
	Method string
	// WayIn names, for a provider that keeps persons whose ways in a
	// person can take away (a passkey removed, recovery codes replaced,
	// each in one write with the end of the person's other sessions,
	// ADR 9), the way in this login used: the broker stores the login's
	// session only if the person still holds it, read in the session's
	// own write (store.Session.WayIn), so a way in taken away as the
	// login finishes keeps no session. The zero WayIn (an enrolment,
	// whose passkey is new) names nothing. It is never logged or
	// audited.
	WayIn store.WayIn
}

// Provider authenticates persons.
type Provider interface {
	Info() Info
	// Start takes over the browser to authenticate for attempt a, by
	// rendering a page or redirecting. The provider later calls
	// Finisher.Finish (or Fail) with a.ID.
	Start(w http.ResponseWriter, r *http.Request, a Attempt)
}

// Preparer is a provider that can get ready for a login before the
// browser arrives. The broker calls Prepare when a relying party pushes a
// request (RFC 9126) whose provider_hint routes to the provider; Start
// uses what Prepare did for the same attempt if it still fits (same ID,
// level, locale and login hint), and otherwise does it afresh. Prepare
// returns at once, does its work in the background within bounded time
// and memory, and must be harmless to waste: the person may never come,
// or a single sign-on session may make the login unnecessary.
type Preparer interface {
	Prepare(ctx context.Context, a Attempt)
}

// Router is a provider that serves its own pages and endpoints; the app
// mounts them on the node's mux.
type Router interface {
	Register(mux *http.ServeMux)
}

// Finisher receives a provider's outcome. The broker implements it.
type Finisher interface {
	// Finish is called after the provider authenticated someone. It may
	// set cookies on w but writes no body: it returns the URL the browser
	// goes to next (back into the flow, or a page explaining why the
	// result is not enough), which the provider sends as a redirect or,
	// to script, as JSON. err is for failures the person cannot fix.
	Finish(w http.ResponseWriter, r *http.Request, attemptID string, res Result) (next string, err error)
	// Fail is called when the provider could not authenticate (the person
	// cancelled, or the provider failed); providerID is the caller's
	// Info().ID, and reason is short and machine-readable: one of the
	// Reason constants, or another reason ("upstream_error"), which
	// means the provider failed. It returns the URL to send the browser
	// to.
	Fail(w http.ResponseWriter, r *http.Request, attemptID, providerID, reason string) (next string)
	// Pending reports whether attemptID is a login the broker still
	// holds: the account login (""), or a relying party's request that
	// has not expired. A provider that keeps anything per attempt, such
	// as a count of tries, asks first, so that made-up IDs get nothing.
	// Link attempts cannot be looked at without being used up, and go
	// only to providers that prove identifiers; Pending reports false
	// for them.
	Pending(ctx context.Context, attemptID string) (bool, error)
	// Accepts reports whether Finish would take a result from provider
	// providerID at level for attemptID, as far as the attempt decides
	// it: the level it needs, and the providers its relying party
	// accepts. It is false for an attempt that is not pending, and for
	// link attempts. A provider asks before the person spends something
	// single-use on a login the broker would refuse, such as a recovery
	// code.
	Accepts(r *http.Request, attemptID, providerID string, level assurance.Level) (bool, error)
}

// AccountFinisher is a Finisher that can be told which account a
// refusal was about, so that one account refused again and again weighs
// as one, not as many, against the provider. The broker implements it;
// a provider that names the accounts it refuses looks for it by type
// assertion, and otherwise calls Fail with ReasonAccountRefused.
type AccountFinisher interface {
	// FailAccount is Fail with reason ReasonAccountRefused for the
	// account the provider vouched for. account is an opaque handle: the
	// same for every login of that account at this provider, never an
	// identifier or the provider's own name for the account, and never
	// recorded.
	FailAccount(w http.ResponseWriter, r *http.Request, attemptID, providerID, account string) (next string)
}

// ReasonAccountRefused: the provider answered for itself, vouching for
// an account (an upstream eID's signed ID token), and the login was
// refused on what it said about that account: no identifier, one that
// is invalid or of a scheme not accepted, an acr Varde does not map, an
// old single sign-on session passed off as the new login asked for.
// It may be that one account's alone (someone whose eID account has no
// national identifier, trying again and again), so it counts against
// the provider's health once per account (see AccountFinisher); many
// accounts refused are the provider failing everyone.
const ReasonAccountRefused = "account_refused"

// Reasons for Finisher.Fail that say the provider did not fail.
const (
	// ReasonCancelled: the person cancelled. It is their choice.
	ReasonCancelled = "cancelled"
	// ReasonUnverifiedResponse: the login failed on what came back
	// through the person's browser without the provider's own word for
	// it (an error in a redirect, a response refused as possibly
	// tampered with, a code the provider's server refused), or on an ID
	// token signed with a key the node has not fetched yet. Anyone who
	// starts a login can send such a response, so it is no evidence that
	// the provider is failing.
	ReasonUnverifiedResponse = "unverified_response"
	// ReasonNodeError: the login failed on this node's side (its store,
	// its random source), not the provider's.
	ReasonNodeError = "node_error"
)

// ReasonInternal, ReasonStoreUnavailable and ReasonOutcomeUnknown are
// the reasons of a failure audited on an error of Varde's own:
// ReasonStoreUnavailable when the store could not be reached or was
// overloaded and nothing was written (store.Unavailable; the person is
// asked to try again), so that an outage of the store is not read as a
// defect; ReasonOutcomeUnknown when a write got no answer and may have
// been stored (store.ErrOutcomeUnknown), as at a database failover;
// ReasonInternal for any other error.
const (
	ReasonInternal         = "internal"
	ReasonStoreUnavailable = "store_unavailable"
	// ReasonOutcomeUnknown: a write got no answer
	// (store.ErrOutcomeUnknown), so it may or may not have been stored.
	ReasonOutcomeUnknown = "outcome_unknown"
)

// DetailFault is the Details key of a failed login's audit event,
// recorded by a provider that is not Varde's own (an upstream eID), when
// the login failed on Varde's side (ReasonInternal,
// ReasonStoreUnavailable, ReasonOutcomeUnknown): its value is the status
// component that failed, "store" or the node's "node:<name>". The
// status page counts the people such a failure affected against that
// component, never against the provider, which did nothing wrong.
const DetailFault = "fault"

// DetailCeremony is the Details key of the audit event a provider
// records of a login ceremony of its own that failed (Varde's passkey
// provider: a passkey's, or a recovery or help desk code typed for a
// login the broker holds, which is always found): CeremonyFound when
// the ceremony was found, begun for the
// login attempt that the event then names through Tracer, or
// CeremonyUnknown when none was (made up, used already, past its time,
// or not read), which anyone can send. The status page counts a person
// only from a ceremony found that failed on Varde's side: a response
// that does not verify, anyone who begins a ceremony can send.
const (
	DetailCeremony  = "ceremony"
	CeremonyFound   = "found"
	CeremonyUnknown = "unknown"
)

// Tracer is implemented by a Finisher that can name, in a provider's
// own audit event of a failed login, the login attempt and the browser
// as the Finisher's own events do (the broker's handles), so that the
// people an outage affected are counted once per attempt and browser
// however often they retry. The broker implements it.
type Tracer interface {
	// Trace adds to details (a new map if nil), and returns, the
	// handles of attemptID and of r's browser.
	Trace(r *http.Request, attemptID string, details map[string]string) map[string]string
}

// MethodUpstream is the Details "method" of the audit events an upstream
// eID's own code records (package oidcup). A failed login it records is
// recorded again by the broker, with the login attempt and browser,
// when there is an attempt to hand back; one without (a callback whose
// state is missing, repeated, made up or spent) anyone can send. So the
// status page counts people from the broker's event, and from the
// eID's only the fault it names (DetailFault).
const MethodUpstream = "upstream"

// ErrorReason is the failure reason for err, an error of Varde's own:
// ReasonStoreUnavailable when store.Unavailable(err),
// ReasonOutcomeUnknown when err is store.ErrOutcomeUnknown,
// ReasonInternal otherwise.
func ErrorReason(err error) string {
	switch {
	case store.Unavailable(err):
		return ReasonStoreUnavailable
	case errors.Is(err, store.ErrOutcomeUnknown):
		return ReasonOutcomeUnknown
	}
	return ReasonInternal
}

// TimeoutDialog is what web/static/timeout.js needs to warn before a
// time limit ends and offer to extend it (WCAG 2.2 SC 2.2.1; ADR 50),
// and what the page's one "timeout-dialog" template shows: the
// session's limit on the account pages, a login request's on the login
// pages.
type TimeoutDialog struct {
	// ID names the dialog's elements; Keys is the prefix of its texts in
	// the locale catalogues ("timeout", "timeout.request").
	ID, Keys string
	// Latest is when the limit ends at the latest, however it is
	// extended, in the page's language.
	Latest string
	// EndsIn is how many seconds are left unless extended, Warn how
	// many seconds before that the page warns.
	EndsIn, Warn int
	// Extendable: a keep would move the end.
	Extendable bool
	// KeepURL takes a POST of KeepBody (JSON; "{}" if empty) with CSRF
	// in X-CSRF-Token, and answers a KeepAnswer.
	KeepURL, KeepBody, CSRF string
	// Without script, the page's own button beside the sentence that
	// says until when posts a plain form to KeepURL: the token as csrf,
	// KeepReq (a login request's ID, "" for the session) as req, and
	// Back, the page as a root-relative path with its query, which the
	// keep answers with a redirect to (303) if it is one of the pages
	// it knows (httpx.BackTo).
	KeepReq, Back string
	// Kept: the page was loaded after such a keep (KeptParam), and says
	// so beside the time it now shows.
	Kept bool
	// LogIn: once the limit has ended, the dialog offers to log in
	// again.
	LogIn bool
}

// KeptParam is the query parameter a keep without script adds to the
// page it sends the browser back to, so that the page says it kept the
// limit: the page is loaded anew and its focus starts at the top.
const KeptParam = "kept"

// Kept reports whether r is a page's GET after a keep without script
// (KeptParam).
func Kept(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Has(KeptParam)
}

// WithKept is page, a root-relative path with its query encoded as
// httpx.BackTo answers it and no fragment, with KeptParam added.
func WithKept(page string) string {
	if strings.Contains(page, "?") {
		return page + "&" + KeptParam + "=1"
	}
	return page + "?" + KeptParam + "=1"
}

// KeepAnswer is a keep endpoint's answer: how many seconds are left
// now, and whether another keep would move the end.
type KeepAnswer struct {
	EndsIn     int  `json:"ends_in"`
	Extendable bool `json:"extendable"`
	// Info, when the page's sentence about the limit names the end a
	// keep moves (a login's "stays open until"), is that sentence again
	// with the new end, in the page's language, for the page to show in
	// its place; "" where the sentence does not change (a session's idle
	// limit and latest end).
	Info string `json:"info,omitempty"`
}

// SecondsLeft is d in whole seconds, rounded up, never negative: a page
// told how long a limit has left says it ended only once it has.
func SecondsLeft(d time.Duration) int {
	return max(0, int((d+time.Second-1)/time.Second))
}

// MaxLoginTime bounds how long a service's login request may be kept
// open, counted from its creation (ADR 50): the broker's keep never
// moves its end past it.
const MaxLoginTime = time.Hour

// LoginTimeout is what a login page says of its relying party's request
// running out (Ends: when it ends unless extended, in the page's
// language), and its warning.
type LoginTimeout struct {
	Ends string
	TimeoutDialog
}

// Hold is what a Finisher says of an attempt to a provider's page for
// it: all that the page would otherwise ask Pending, Accepts and the
// login's time limit for, each a read of the same relying party's
// request.
type Hold struct {
	// Pending is what Finisher.Pending reports.
	Pending bool
	// Accepts is what Finisher.Accepts reports for the provider and
	// level asked about.
	Accepts bool
	// Timeout says until when the relying party's login stays open, and
	// how to warn before it ends; nil for an attempt with no time limit
	// of its own (the account login), and for a request this browser
	// may not act on.
	Timeout *LoginTimeout
	// Elsewhere is true for a relying party's login that another
	// browser began (ADR 47): held, but not this browser's to act on.
	// Its pages answer as the broker's login page does for it, with the
	// page that says to start again from the service (400), rather than
	// offer forms that can only fail.
	Elsewhere bool
	// Finish, if not nil, is Finisher.Finish for this attempt, deciding
	// on the request as Hold read it instead of reading it again: for a
	// page that ends the login in the same HTTP request it asked Hold
	// in (a recovery code's form), and only there.
	Finish func(w http.ResponseWriter, r *http.Request, res Result) (next string, err error)
}

// Holder is implemented by a Finisher that answers a provider's page
// from one read of the attempt (Hold), where Pending, Accepts and the
// time limit asked apart would each read it again within one HTTP
// request. A provider whose pages run under a relying party's login
// asks it when its Finisher has it, and Pending and Accepts otherwise.
type Holder interface {
	Hold(r *http.Request, attemptID, providerID string, level assurance.Level, lang string) (Hold, error)
}
