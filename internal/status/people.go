package status

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// Audit event vocabulary written by package broker.
const (
	eventAuthentication = broker.EventAuthentication
	eventRouting        = broker.EventRouting
	resultRerouted      = broker.ResultRerouted
	detailAttempt       = broker.DetailAttempt
	detailBrowser       = broker.DetailBrowser
	// reasonCancelled is the failure reason of a person's own cancel.
	reasonCancelled = provider.ReasonCancelled
	// reasonUnverified is a failure on a response that came back
	// through the browser without the provider's word for it: anyone
	// can forge one, so it shows no one was affected.
	reasonUnverified = provider.ReasonUnverifiedResponse
	// reasonNotAccepted is a login through a provider the relying party
	// does not accept: the provider worked.
	reasonNotAccepted = broker.ReasonProviderNotAccepted
	// reasonInsufficientLevel is a login the provider vouched for at a
	// level the relying party does not accept: the provider worked, and
	// Varde's policy refused the person.
	reasonInsufficientLevel = broker.ReasonInsufficientLevel
	// reasonNodeError is a failure of the Varde node's own, not the
	// provider's.
	reasonNodeError = provider.ReasonNodeError
	// reasonSessionError is a good result from the provider for which
	// the node could not start a session: the node's failure too.
	reasonSessionError = broker.ReasonSessionError
	// reasonOutcomeUnknown is a good result from the provider whose
	// session the node's store may or may not have stored: the node's
	// failure too.
	reasonOutcomeUnknown = broker.ReasonOutcomeUnknown
	// reasonAttemptExpired is a good result from the provider that came
	// back after the login attempt expired: the person took too long.
	reasonAttemptExpired = broker.ReasonAttemptExpired
	// reasonClientGone is a good result from the provider for a login
	// whose client was deleted meanwhile.
	reasonClientGone = broker.ReasonClientGone
)

// notTheProvider are the reasons of failed logins through a provider
// that are not the provider's failure.
var notTheProvider = []string{reasonCancelled, reasonUnverified, reasonNotAccepted, reasonInsufficientLevel, reasonNodeError, reasonSessionError, reasonOutcomeUnknown, reasonAttemptExpired, reasonClientGone}

// vardesOwn are the reasons of a provider's failed ceremony that are
// errors of Varde's, not of what the browser sent.
var vardesOwn = []string{provider.ReasonInternal, provider.ReasonStoreUnavailable, provider.ReasonOutcomeUnknown}

// The Details "method" of the passkey provider's events of a recovery
// code and of a help desk code (package passkeyidp).
const (
	methodRecoveryCode = "recovery-code"
	methodDeskCode     = "desk-code"
)

// codeRejected are the reasons of the passkey provider's events of a
// recovery or help desk code that logged nobody in because of what was
// typed or sent: never an error of Varde's.
var codeRejected = []string{"malformed_recovery_code", "invalid_recovery_code", "used_desk_code", "expired_desk_code", "rate_limited", "unknown_browser"}

// auditPage is how many audit events one read returns.
const auditPage = 2000

// Affected is what an outage did to people, counted from the audit log.
type Affected struct {
	// People is the number of distinct people whose logins failed or
	// were rerouted.
	People int64
	// FailedAttempts counts failed logins through the components, and
	// login attempts that found every provider they could use down.
	FailedAttempts int64
	// Rerouted counts login attempts that met a component down or failing
	// and then got through another provider.
	Rerouted int64
}

// attemptTrace is what the audit log says about one login attempt.
type attemptTrace struct {
	affected bool
	browser  string
	// person is who the attempt authenticated, and through which
	// provider; empty if it never got through.
	person, via string
	// routingFailed is set once an all-down page was counted.
	routingFailed bool
}

// Affected counts, over [from, to), the people whose logins through
// components failed or who were rerouted around them (see the package
// documentation). Events up to Config.CountGrace after to tell whether
// an affected attempt got through in the end.
func (s *Service) Affected(ctx context.Context, components []string, from, to time.Time) (Affected, error) {
	t := newTally(components, from)
	if err := s.advance(ctx, t, to); err != nil {
		return Affected{}, err
	}
	return t.result(), nil
}

// maxHeld bounds the events a tally holds to look at again.
const maxHeld = auditPage

// tally is a count of people affected over [from, to) kept between
// counts, so that each reads only the audit events appended since the
// last (Service.advance), while to grows with an open incident. The
// audit log is one hash chain: every event's Seq is one more than the
// one before, and an event is appended only after the one before it was
// written (under the chain's lock, on every node), so the events after
// the last Seq read are all those not read yet, whichever node wrote
// them and whatever their Time.
type tally struct {
	components []string
	from       time.Time
	// to and until are the window and how far its events were tracked
	// at the last count; capped is set when until was the count's now,
	// so that events stamped later may still come into the window.
	to, until time.Time
	capped    bool
	// after is the Seq of the last event read; read is set once the
	// first count was made.
	after int64
	read  bool

	attempts      map[string]*attemptTrace
	affected      map[string]*attemptTrace // the affected ones, by attempt
	browserPerson map[string]string
	loose         map[string]bool // affected events that name no attempt
	failed        int64
	// held are the events read that may count later, when the window
	// grows: those stamped at or after until (a node whose clock runs
	// ahead; not tracked yet) and those at or after to that would count
	// inside it. overflow is set when there were more than maxHeld.
	held     []heldEvent
	overflow bool
}

type heldEvent struct {
	ev      *store.AuditEvent
	tracked bool
}

func newTally(components []string, from time.Time) *tally {
	t := &tally{components: slices.Clone(components), from: from}
	t.reset()
	return t
}

// reset forgets every event read.
func (t *tally) reset() {
	*t = tally{components: t.components, from: t.from,
		attempts: map[string]*attemptTrace{}, affected: map[string]*attemptTrace{},
		browserPerson: map[string]string{}, loose: map[string]bool{}}
}

// carriesOn reports whether the count so far can go on to the window to
// with events tracked up to until: the window must not shrink (what
// counted would have to be taken back), and events must not have been
// left unread that the new window takes in.
func (t *tally) carriesOn(to, until time.Time) bool {
	switch {
	case !t.read || t.overflow || to.Before(t.to) || until.Before(t.until):
		return false
	case t.capped:
		return true // what was stamped later is held
	}
	return until.Equal(t.until) && to.Equal(t.to)
}

// advance brings t up to the window [t.from, to), reading the audit
// events appended since it last read, or all of the window's if it
// cannot carry on (see carriesOn): once the first time, and again when
// an incident recovers (its window ends earlier than the last count) or
// relapses after its count's grace ended.
func (s *Service) advance(ctx context.Context, t *tally, to time.Time) error {
	until, capped := to.Add(s.cfg().CountGrace), false
	if now := s.now(); until.After(now) {
		until, capped = now.Add(time.Microsecond), true
	}
	if !t.carriesOn(to, until) {
		t.reset()
	}
	q := store.AuditQuery{Types: []string{eventAuthentication, eventRouting}, AfterSeq: t.after, Limit: auditPage}
	if !t.read {
		// Bounded by time, through the log's index by time; later reads
		// go by Seq, through its primary key, and skip what is outside.
		q.Since = t.from
		if !capped {
			q.Until = until
		}
	}
	t.to, t.until, t.capped, t.read = to, until, capped, true
	held := t.held
	t.held = nil
	for _, h := range held {
		t.take(h.ev, h.tracked)
	}
	for {
		evs, err := s.Store.ListAuditRange(ctx, q)
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		for _, ev := range evs {
			t.after = max(t.after, ev.Seq)
			t.take(ev, false)
		}
		if len(evs) < auditPage {
			return nil
		}
		q.AfterSeq = evs[len(evs)-1].Seq
	}
}

// take counts one event (tracked: its attempt, browser and person were
// taken in already).
func (t *tally) take(ev *store.AuditEvent, tracked bool) {
	switch {
	case ev.Time.Before(t.from):
		return
	case !ev.Time.Before(t.until):
		t.hold(ev, tracked)
		return
	case !tracked:
		t.track(ev)
	}
	switch {
	case !t.counts(ev):
	case ev.Time.Before(t.to):
		t.hit(ev)
	default:
		t.hold(ev, true)
	}
}

// hold keeps ev to look at again, if the window can still grow to take
// it in.
func (t *tally) hold(ev *store.AuditEvent, tracked bool) {
	if !t.capped {
		return
	}
	if len(t.held) >= maxHeld {
		t.overflow = true
		return
	}
	t.held = append(t.held, heldEvent{ev, tracked})
}

// track takes in what ev says of its attempt, browser and person.
func (t *tally) track(ev *store.AuditEvent) {
	attempt, browser := ev.Details[detailAttempt], ev.Details[detailBrowser]
	success := ev.Type == eventAuthentication && ev.Result == store.ResultSuccess
	if success && browser != "" && ev.PersonID != "" {
		t.browserPerson[browser] = ev.PersonID
	}
	if attempt == "" {
		return
	}
	a := t.attempts[attempt]
	if a == nil {
		a = &attemptTrace{}
		t.attempts[attempt] = a
	}
	if browser != "" {
		a.browser = browser
	}
	if success && a.person == "" {
		a.person, a.via = ev.PersonID, ev.Provider
	}
}

// counts reports whether ev, inside the window, shows someone affected
// by the components.
func (t *tally) counts(ev *store.AuditEvent) bool {
	if fault := ev.Details[provider.DetailFault]; fault != "" {
		// A login through an upstream eID that failed on Varde's side
		// (its store, or the node) is that component's failure, never
		// the eID's.
		return ev.Type == eventAuthentication && ev.Result == store.ResultFailure && slices.Contains(t.components, fault)
	}
	if c := ev.Details[provider.DetailCeremony]; c != "" {
		// Varde's passkey provider's own record of a ceremony that
		// failed (a passkey's, or a recovery code's typed for a login
		// the broker holds): someone was kept out only by an error of
		// Varde's on a ceremony begun for a login attempt, which the
		// event names. A response that does not verify, or a code
		// mistyped, wrong, used or past its time, anyone who begins a
		// ceremony can send; one to a ceremony not found, anyone at all.
		return c == provider.CeremonyFound && ev.Type == eventAuthentication && ev.Result == store.ResultFailure &&
			slices.Contains(t.components, ev.Provider) && slices.Contains(vardesOwn, ev.Reason)
	}
	if m := ev.Details["method"]; (m == methodRecoveryCode || m == methodDeskCode) && slices.Contains(codeRejected, ev.Reason) {
		// A code rejected, recorded by a node that predates the
		// ceremony detail: what the person typed or sent, not an
		// outage. (The broker's events of a code's login that failed
		// past the provider have the same method and other reasons.)
		return false
	}
	if ev.Details["method"] == provider.MethodUpstream {
		// The eID's own record of a failure the broker records again
		// with its attempt (counted then), or of a callback with no
		// login behind it, which anyone can send.
		return false
	}
	if !slices.Contains(t.components, ev.Provider) {
		return false
	}
	switch {
	case ev.Type == eventAuthentication && ev.Result == store.ResultFailure && ev.Reason == reasonOutcomeUnknown:
		// The broker's, for a good result whose session may be stored
		// (DetailStored), is the node's; Varde's own passkey provider's,
		// for a ceremony whose write got no answer, left the person
		// outside, as its other errors of Varde's do.
		return ev.Details[broker.DetailStored] == ""
	case ev.Type == eventAuthentication && ev.Result == store.ResultFailure:
		return !slices.Contains(notTheProvider, ev.Reason)
	case ev.Type == eventRouting && ev.Result == resultRerouted:
		// Only a person headed for the provider was rerouted; one who
		// merely saw it listed as down was not.
		via := ev.Details[broker.DetailVia]
		return via == broker.ViaStart || via == broker.ViaHint
	}
	return ev.Type == eventRouting && ev.Result == store.ResultFailure
}

// hit counts ev, which counts (see counts) and is inside the window.
func (t *tally) hit(ev *store.AuditEvent) {
	attempt, browser := ev.Details[detailAttempt], ev.Details[detailBrowser]
	a := t.attempts[attempt]
	switch {
	case ev.Type == eventAuthentication:
		t.failed++
	case ev.Type == eventRouting && ev.Result == store.ResultFailure:
		// The all-down page, shown again on every reload: one failed
		// attempt per login attempt.
		if a == nil || !a.routingFailed {
			t.failed++
		}
		if a != nil {
			a.routingFailed = true
		}
	}
	switch {
	case a != nil:
		a.affected = true
		t.affected[attempt] = a
	case browser != "":
		t.loose["b:"+browser] = true
	default:
		t.loose["e:"+strconv.FormatInt(ev.Seq, 10)] = true
	}
}

// result is the count so far.
func (t *tally) result() Affected {
	out := Affected{FailedAttempts: t.failed}
	people := map[string]bool{}
	for id, a := range t.affected {
		switch {
		case a.person != "":
			people["p:"+a.person] = true
			if !slices.Contains(t.components, a.via) {
				out.Rerouted++
			}
		case a.browser != "" && t.browserPerson[a.browser] != "":
			people["p:"+t.browserPerson[a.browser]] = true
		case a.browser != "":
			people["b:"+a.browser] = true
		default:
			people["a:"+id] = true
		}
	}
	for k := range t.loose {
		if p := t.browserPerson[k[2:]]; k[0] == 'b' && p != "" {
			k = "p:" + p
		}
		people[k] = true
	}
	out.People = int64(len(people))
	return out
}
