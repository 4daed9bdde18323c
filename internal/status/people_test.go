package status_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// outageOpened is a node whose bankid has been down long enough to open
// an incident, recounting people affected every round; it returns the
// incident.
func outageOpened(t *testing.T) (*harness, *countingStore, *store.Incident) {
	t.Helper()
	h, cs := countedNode(t)
	h.svc.Config.RecountEvery = 5 * time.Second
	h.round()
	h.fail.Store(true)
	for range 30 {
		h.round()
		if open := h.open(); len(open) == 1 {
			return h, cs, open[0]
		}
	}
	t.Fatal("no incident opened")
	return nil, nil, nil
}

// TestRecountReadsOnlyNewEvents: while an incident is open, each recount
// of the people affected reads the audit events logged since the last,
// not the whole window again.
func TestRecountReadsOnlyNewEvents(t *testing.T) {
	h, cs, in := outageOpened(t)
	const each = 10
	for round := range 20 {
		for i := range each {
			attempt := fmt.Sprintf("r%d-%d", round, i)
			h.audit(h.clk.Now(), "authentication", "failure", "token_timeout", "bankid", "", attempt, "b"+attempt)
		}
		cs.audit.Store(0)
		h.round()
		if n := cs.audit.Load(); n != each {
			t.Fatalf("round %d read %d audit events, want the %d logged since the last", round, n, each)
		}
	}
	got, err := h.db.GetIncident(context.Background(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.FailedAttempts != 20*each || got.PeopleAffected != 20*each {
		t.Errorf("failed %d, people %d; want %d each", got.FailedAttempts, got.PeopleAffected, 20*each)
	}
}

// TestRecountAgreesWithAFullCount: counting on from the last count gives
// what counting the whole window gives, round after round, with events
// logged late by another node, stamped ahead by a node whose clock runs
// fast, reloads, and people found later, through the incident's
// recovery, a relapse and resolution.
func TestRecountAgreesWithAFullCount(t *testing.T) {
	ctx := context.Background()
	h, _, in := outageOpened(t)
	full := &status.Service{Store: h.db, Monitor: h.mon, Node: "n1", Now: h.clk.Now}
	check := func(when string) {
		t.Helper()
		got, err := h.db.GetIncident(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		end := got.RecoveredAt
		if end.IsZero() {
			end = h.clk.Now()
		}
		want, err := full.Affected(ctx, []string{"bankid"}, got.StartedAt, end)
		if err != nil {
			t.Fatal(err)
		}
		if g := (status.Affected{People: got.PeopleAffected, FailedAttempts: got.FailedAttempts, Rerouted: got.Rerouted}); g != want {
			t.Errorf("%s: recounted %+v, a full count gives %+v", when, g, want)
		}
	}
	now := h.clk.Now
	steps := []func(){
		func() {
			h.auditVia(now().Add(-time.Second), "routing", "rerouted", "provider_down", "bankid", "", "a1", "bA", "start")
			h.audit(now().Add(-time.Second), "routing", "failure", "no_provider_available", "bankid", "", "c1", "bC")
			h.audit(now().Add(7*time.Second), "authentication", "failure", "token_error", "bankid", "", "s1", "bS") // a clock ahead
		},
		func() {
			h.audit(now(), "authentication", "success", "", "passkey", "pA", "a1", "bA")                              // A got in another way
			h.audit(now(), "routing", "failure", "no_provider_available", "bankid", "", "c1", "bC")                   // C reloads
			h.audit(now().Add(-30*time.Second), "authentication", "failure", "token_error", "bankid", "", "l1", "bL") // logged late
		},
		func() {
			h.audit(now(), "authentication", "success", "", "minid", "pC", "c2", "bC") // C's browser logs in
			h.audit(now(), "authentication", "failure", "cancelled", "bankid", "", "d1", "bD")
		},
		func() {},
	}
	for i, step := range steps {
		step()
		h.round()
		check(fmt.Sprintf("round %d", i))
	}
	h.fail.Store(false)
	for i := 0; len(h.open()) == 1; i++ {
		h.fail.Store(i >= 20 && i < 26) // a relapse
		if i%3 == 0 {
			h.audit(now().Add(-time.Second), "authentication", "failure", "token_error", "bankid", "", fmt.Sprintf("x%d", i), "bX")
		}
		h.round()
		check(fmt.Sprintf("recovering, round %d", i))
		if i > 200 {
			t.Fatal("never resolved")
		}
	}
	check("resolved")
}

// TestRecountKeepsCountedAtWhileFiguresStand: a recount that finds the
// figures as they were leaves the incident as stored, its CountedAt
// too, so what feeds an Atom entry's updated does not move; a recount
// that finds a new failure moves it.
func TestRecountKeepsCountedAtWhileFiguresStand(t *testing.T) {
	ctx := context.Background()
	h, _, in := outageOpened(t)
	h.audit(h.clk.Now(), "authentication", "failure", "token_timeout", "bankid", "", "a1", "bA")
	h.round()
	before, err := h.db.GetIncident(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before.FailedAttempts != 1 || before.CountedAt.IsZero() {
		t.Fatalf("failed %d, counted at %v; want 1, counted", before.FailedAttempts, before.CountedAt)
	}
	for range 10 {
		h.round()
	}
	got, err := h.db.GetIncident(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CountedAt.Equal(before.CountedAt) || got.Version != before.Version {
		t.Errorf("recounts that found nothing new moved counted_at %v to %v (version %d to %d)",
			before.CountedAt, got.CountedAt, before.Version, got.Version)
	}
	h.audit(h.clk.Now(), "authentication", "failure", "token_timeout", "bankid", "", "a2", "bB")
	h.round()
	if got, err = h.db.GetIncident(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if got.FailedAttempts != 2 || !got.CountedAt.After(before.CountedAt) {
		t.Errorf("after a new failure: failed %d, counted at %v; want 2, after %v", got.FailedAttempts, got.CountedAt, before.CountedAt)
	}
}

// TestRelapseStoredWhenTimelineSaysSoAlready: an incident stored as
// recovered whose timeline's last automatic entry already says the
// component is down (its recovered entry was never written) is stored
// as not recovered once the component is measured down, though no
// entry is added and the figures do not change.
func TestRelapseStoredWhenTimelineSaysSoAlready(t *testing.T) {
	ctx := context.Background()
	h, _, in := outageOpened(t)
	for range 5 {
		h.round()
	}
	got, err := h.db.GetIncident(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.db.AddIncidentUpdate(ctx, &store.IncidentUpdate{IncidentID: in.ID, Time: h.clk.Now(), Kind: store.UpdateState,
		State: got.Severity, Author: status.Author}); err != nil {
		t.Fatal(err)
	}
	got.RecoveredAt = h.clk.Now()
	if err := h.db.UpdateIncident(ctx, got); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		h.round()
	}
	if got, err = h.db.GetIncident(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if !got.RecoveredAt.IsZero() || !got.ResolvedAt.IsZero() {
		t.Errorf("component still down, incident stored recovered at %v, resolved at %v", got.RecoveredAt, got.ResolvedAt)
	}
}

// TestStoreUnavailableCountsAsInternal: a passkey login that failed
// because the store could not be reached (store_unavailable), or whose
// write got no answer (outcome_unknown, no session named), counts
// against the passkey provider as one that failed on another error of
// Varde's (internal) does: through it, the person could not get in. A
// failure of the node's own on a provider's good result (node_error),
// or a good result whose session may be stored (outcome_unknown with
// the session that may exist), does not count.
func TestStoreUnavailableCountsAsInternal(t *testing.T) {
	failures := []struct {
		reason string
		stored string // broker.DetailStored
	}{
		{provider.ReasonInternal, ""},
		{provider.ReasonStoreUnavailable, ""},
		{provider.ReasonOutcomeUnknown, ""},
		{provider.ReasonNodeError, ""},
		{broker.ReasonOutcomeUnknown, "unknown"},
	}
	var evs []*store.AuditEvent
	for i, f := range failures {
		e := &store.AuditEvent{Reason: f.reason, Details: map[string]string{broker.DetailAttempt: fmt.Sprint("a", i), broker.DetailBrowser: fmt.Sprint("b", i)}}
		if f.stored != "" {
			e.Details[broker.DetailStored] = f.stored
		}
		evs = append(evs, e)
	}
	if got, want := passkeyFailures(t, evs), (status.Affected{People: 3, FailedAttempts: 3}); got != want {
		t.Errorf("affected = %+v, want %+v", got, want)
	}
}

// passkeyFailures records evs as failed logins through the passkey
// provider, a minute apart, and counts them over the hour that holds
// them.
func passkeyFailures(t *testing.T, evs []*store.AuditEvent) status.Affected {
	t.Helper()
	ctx := context.Background()
	db := openDB(t)
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	s := &status.Service{Store: db, Now: func() time.Time { return base.Add(time.Hour) }}
	for i, e := range evs {
		e.Time, e.Type, e.Result, e.Provider = base.Add(time.Duration(i+1)*time.Minute), broker.EventAuthentication, store.ResultFailure, "passkey"
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Affected(ctx, []string{"passkey"}, base, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestVardeFailureAtUpstreamCountsAgainstComponent: a login through an
// upstream eID that failed on Varde's side — its login state could not
// be stored or taken (internal, store_unavailable, outcome_unknown), or
// the node failed itself — is counted against the component that
// failed, which the eID names in provider.DetailFault, and not against
// the eID. A failure of the eID's own still counts against it, once:
// from the broker's event, which names the attempt, not from the eID's
// own record of it.
func TestVardeFailureAtUpstreamCountsAgainstComponent(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	s := &status.Service{Store: db, Now: func() time.Time { return base.Add(time.Hour) }}
	// Each as the eID's code records it, then as the broker does when
	// the eID hands the attempt back ("" when it does not).
	failures := []struct{ reason, fault, broker string }{
		{provider.ReasonInternal, "store", provider.ReasonNodeError},
		{provider.ReasonStoreUnavailable, "store", ""},
		{provider.ReasonOutcomeUnknown, "store", provider.ReasonNodeError},
		{provider.ReasonInternal, "node:a", provider.ReasonNodeError},
		{"token_endpoint_error", "", "upstream_error"},
	}
	for i, f := range failures {
		at := base.Add(time.Duration(i+1) * time.Minute)
		e := &store.AuditEvent{Time: at, Type: broker.EventAuthentication, Result: store.ResultFailure,
			Reason: f.reason, Provider: "bankid", Details: map[string]string{"method": provider.MethodUpstream}}
		if f.fault != "" {
			e.Details[provider.DetailFault] = f.fault
		}
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if f.broker == "" {
			continue
		}
		e = &store.AuditEvent{Time: at, Type: broker.EventAuthentication, Result: store.ResultFailure, Reason: f.broker, Provider: "bankid",
			Details: map[string]string{broker.DetailAttempt: fmt.Sprint("a", i), broker.DetailBrowser: fmt.Sprint("b", i)}}
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		component string
		want      status.Affected
	}{
		{"bankid", status.Affected{People: 1, FailedAttempts: 1}},
		{"store", status.Affected{People: 3, FailedAttempts: 3}},
		{"node:a", status.Affected{People: 1, FailedAttempts: 1}},
		{"node:b", status.Affected{}},
	} {
		got, err := s.Affected(ctx, []string{tc.component}, base, base.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("affected by %s = %+v, want %+v", tc.component, got, tc.want)
		}
	}
}

// TestPasskeyFailureCountsOneAttemptAndNoJunk: Varde's passkey provider's
// own record of a failed login counts, as a person, the login attempt
// its ceremony was begun for (its retries are one person, several
// failed attempts), and only when it failed on Varde's side (internal,
// store_unavailable, outcome_unknown): a response that does not verify
// (bad input, a replay, an unknown passkey) anyone who begins a
// ceremony can send, and one to a ceremony not found (made up, used
// already) anyone at all, so neither counts.
func TestPasskeyFailureCountsOneAttemptAndNoJunk(t *testing.T) {
	failures := []struct {
		reason, ceremony, attempt, browser string
	}{
		{provider.ReasonInternal, provider.CeremonyFound, "a1", "b1"},
		{provider.ReasonStoreUnavailable, provider.CeremonyFound, "a1", "b1"}, // the same attempt, again
		{provider.ReasonOutcomeUnknown, provider.CeremonyFound, "a2", "b2"},
		{"bad_input", provider.CeremonyFound, "a3", "b3"},
		{"unknown_credential", provider.CeremonyFound, "a4", "b4"},
		{"replay", provider.CeremonyUnknown, "", ""},
		{provider.ReasonStoreUnavailable, provider.CeremonyUnknown, "", ""},
		{provider.ReasonInternal, provider.CeremonyUnknown, "", "b5"},
	}
	var evs []*store.AuditEvent
	for _, f := range failures {
		evs = append(evs, &store.AuditEvent{Reason: f.reason, Details: tracedDetails("passkey", f.ceremony, f.attempt, f.browser)})
	}
	if got, want := passkeyFailures(t, evs), (status.Affected{People: 2, FailedAttempts: 3}); got != want {
		t.Errorf("affected = %+v, want %+v", got, want)
	}
}

// TestRecoveryCodeFailureCountsOnlyVardesOwn: a recovery code (or help
// desk code) that logs nobody in because of what was typed or sent — a
// code that cannot be one, a wrong, used or expired code, too many
// tries, a made-up form cookie — is the person's mistake or anyone's
// junk, not an outage, and counts nobody, whether its event names its
// login attempt or, from a node that predates that, names none. Only a
// failure on Varde's side (internal, store_unavailable, outcome_unknown)
// of a login attempt the broker holds counts, once per attempt however
// often the person tries again, and once per browser for the account's
// login, which has no attempt.
func TestRecoveryCodeFailureCountsOnlyVardesOwn(t *testing.T) {
	failures := []struct {
		reason, method, ceremony, attempt, browser string
	}{
		{provider.ReasonStoreUnavailable, "recovery-code", provider.CeremonyFound, "a1", "b1"},
		{provider.ReasonStoreUnavailable, "recovery-code", provider.CeremonyFound, "a1", "b1"}, // the same attempt, again
		{provider.ReasonInternal, "recovery-code", provider.CeremonyFound, "", "b2"},           // the account's login
		{provider.ReasonInternal, "recovery-code", provider.CeremonyFound, "", "b2"},
		{provider.ReasonOutcomeUnknown, "desk-code", provider.CeremonyFound, "a3", "b3"},
		{"malformed_recovery_code", "recovery-code", provider.CeremonyFound, "a4", "b4"},
		{"invalid_recovery_code", "recovery-code", provider.CeremonyFound, "a5", "b5"},
		{"rate_limited", "recovery-code", provider.CeremonyFound, "a6", "b6"},
		{"unknown_browser", "recovery-code", provider.CeremonyFound, "", "b7"},
		{"used_desk_code", "desk-code", provider.CeremonyFound, "a8", "b8"},
		{"expired_desk_code", "desk-code", provider.CeremonyFound, "a9", "b9"},
		// As a node that predates the ceremony detail records them.
		{"malformed_recovery_code", "recovery-code", "", "", ""},
		{"invalid_recovery_code", "recovery-code", "", "", ""},
		{"rate_limited", "recovery-code", "", "", ""},
		{"unknown_browser", "recovery-code", "", "", ""},
		{"used_desk_code", "desk-code", "", "", ""},
		{"expired_desk_code", "desk-code", "", "", ""},
	}
	var evs []*store.AuditEvent
	for _, f := range failures {
		evs = append(evs, &store.AuditEvent{Reason: f.reason, Details: tracedDetails(f.method, f.ceremony, f.attempt, f.browser)})
	}
	if got, want := passkeyFailures(t, evs), (status.Affected{People: 3, FailedAttempts: 5}); got != want {
		t.Errorf("affected = %+v, want %+v", got, want)
	}
}

// tracedDetails are the Details of the passkey provider's event of a
// failed login by method: the ceremony, the attempt's and the browser's
// handles, each left out when "".
func tracedDetails(method, ceremony, attempt, browser string) map[string]string {
	d := map[string]string{"method": method}
	for k, v := range map[string]string{provider.DetailCeremony: ceremony, broker.DetailAttempt: attempt, broker.DetailBrowser: browser} {
		if v != "" {
			d[k] = v
		}
	}
	return d
}
