package storetest

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testUnlinkIdentifier checks Persons.UnlinkIdentifier: a person takes
// off an identifier a link added, never one they were proofed with nor
// their last, from a session still theirs, ending their other sessions
// and recording it in the same write (ADR 57).
func testUnlinkIdentifier(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	later := now.Add(8 * time.Hour)
	own := store.Identifier{Scheme: "no:dnr", Value: "dnr-unlinker"}
	linkedAt := now.Add(-time.Hour)
	linked := store.Identifier{Scheme: "no:fnr", Value: "fnr-unlinker", MaxLevel: "substantial",
		LinkedThrough: "bankid", LinkedAt: linkedAt.In(loadZones(t).tokyo).Add(789 * time.Nanosecond)}
	p := fullPerson(t, "unlinker")
	p.Identifiers = []store.Identifier{own, linked}
	other := fullPerson(t, "unlinker-other")
	lone := fullPerson(t, "unlinker-lone")
	loneLinked := store.Identifier{Scheme: "no:fnr", Value: "fnr-unlinker-lone", MaxLevel: "substantial"}
	lone.Identifiers = []store.Identifier{loneLinked}
	for _, q := range []*store.Person{p, other, lone} {
		wantErr(t, "CreatePerson "+q.ID, s.CreatePerson(ctx, q), nil)
	}
	createSessionOf(t, s, "u-self", p.ID, later)
	createSessionOf(t, s, "u-elsewhere", p.ID, later, "bank")
	createSessionOf(t, s, "u-other", other.ID, later, "bank")
	createSessionOf(t, s, "u-lone", lone.ID, later)
	ended, err := s.EndSession(ctx, "u-lone", now)
	wantErr(t, "EndSession", err, nil)
	if ended == nil {
		t.Fatal("EndSession ended nothing")
	}
	createSessionOf(t, s, "u-lone-live", lone.ID, later)
	createGrantsOf(t, s, map[string]string{"u-grant": p.ID})
	event := func(person string) func(n int) []*store.AuditEvent {
		return func(n int) []*store.AuditEvent {
			return []*store.AuditEvent{{Time: now, Type: "link_removed", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"sessions": strconv.Itoa(n)}}}
		}
	}
	person := func(id string) *store.Person {
		t.Helper()
		q, err := s.GetPerson(ctx, id)
		wantErr(t, "GetPerson "+id, err, nil)
		return q
	}

	t.Run("kept as linked", func(t *testing.T) {
		// Who linked it and when come back as stored, the time in UTC
		// to the microsecond, through every lookup.
		want := linked
		want.LinkedAt = linkedAt.UTC().Truncate(time.Microsecond)
		for name, got := range map[string]*store.Person{"GetPerson": person(p.ID)} {
			if i := slices.IndexFunc(got.Identifiers, func(h store.Identifier) bool { return h.Value == linked.Value }); i < 0 {
				t.Fatalf("%s: the linked identifier is missing: %+v", name, got.Identifiers)
			} else {
				same(t, name+" linked identifier", want, got.Identifiers[i])
				if !got.Identifiers[i].Linked() || got.Identifiers[0].Linked() {
					t.Errorf("%s: Linked of %+v", name, got.Identifiers)
				}
			}
		}
		byID, err := s.GetPersonByIdentifier(ctx, linked.Scheme, linked.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "GetPersonByIdentifier linked identifier", want, byID.Identifiers[1])
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, person, except string
			ident                store.Identifier
			want                 error
		}{
			{"one proofed with", p.ID, "u-self", own, store.ErrConflict},
			{"one held by another", p.ID, "u-self", other.Identifiers[0], store.ErrNotFound},
			{"one of another scheme with the value", p.ID, "u-self", store.Identifier{Scheme: "no:dnr", Value: linked.Value}, store.ErrNotFound},
			{"the last one", lone.ID, "u-lone-live", loneLinked, store.ErrConflict},
			{"from a session that ended", lone.ID, "u-lone", loneLinked, store.ErrNotFound},
			{"from another person's session", p.ID, "u-other", linked, store.ErrNotFound},
			{"from a session never stored", p.ID, "u-never", linked, store.ErrNotFound},
			{"of nobody", "nobody", "", linked, store.ErrNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ended, err := s.UnlinkIdentifier(ctx, tt.person, tt.ident, tt.except, now, event(tt.person))
				wantErr(t, "UnlinkIdentifier", err, tt.want)
				if len(ended) != 0 {
					t.Errorf("a refused unlink ended %d sessions", len(ended))
				}
			})
		}
		for _, q := range []*store.Person{p, other, lone} {
			got := person(q.ID)
			want := *q
			want.Identifiers = slices.Clone(q.Identifiers)
			for i := range want.Identifiers {
				if !want.Identifiers[i].LinkedAt.IsZero() {
					want.Identifiers[i].LinkedAt = want.Identifiers[i].LinkedAt.UTC().Truncate(time.Microsecond)
				}
			}
			same(t, "person "+q.ID+" after refused unlinks", &want, got)
			if evs := sessionsAndGrantsEvents(t, s, q.ID); len(evs) != 0 {
				t.Errorf("events of %s after refused unlinks: %q", q.ID, evs)
			}
		}
		for _, id := range []string{"u-self", "u-elsewhere", "u-other", "u-lone-live"} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after refused unlinks", err, nil)
		}
	})

	t.Run("unlink", func(t *testing.T) {
		// The value and scheme name it; its level and who linked it are
		// not asked for.
		ended, err := s.UnlinkIdentifier(ctx, p.ID, store.Identifier{Scheme: linked.Scheme, Value: linked.Value}, "u-self", now.In(loadZones(t).tokyo), event(p.ID))
		wantErr(t, "UnlinkIdentifier", err, nil)
		if len(ended) != 1 || ended[0].ID != "u-elsewhere" {
			t.Errorf("sessions ended %v, want only u-elsewhere", ended)
		}
		want := *p
		want.Identifiers = []store.Identifier{own}
		same(t, "the person without the linked number", &want, person(p.ID))
		_, err = s.GetPersonByIdentifier(ctx, linked.Scheme, linked.Value)
		wantErr(t, "GetPersonByIdentifier of the unlinked number", err, store.ErrNotFound)
		for id, live := range map[string]bool{"u-self": true, "u-elsewhere": false, "u-other": true} {
			_, err := s.GetSession(ctx, id, now)
			if got := err == nil; got != live {
				t.Errorf("session %s live = %v (%v), want %v", id, got, err, live)
			}
		}
		// The session a service got tokens in is one to tell it of.
		pending, err := s.PendingSessionEnds(ctx, later, 10)
		wantErr(t, "PendingSessionEnds", err, nil)
		if !slices.ContainsFunc(pending, func(ss *store.Session) bool { return ss.ID == "u-elsewhere" }) {
			t.Errorf("pending ends %v, want u-elsewhere among them", pending)
		}
		// Grants stay, as after a passkey removed: the person stops a
		// service's access on their own.
		g, err := s.GetGrant(ctx, "u-grant")
		wantErr(t, "GetGrant", err, nil)
		if !g.RevokedAt.IsZero() {
			t.Errorf("grant revoked at %v by an unlink", g.RevokedAt)
		}
		if got, want := sessionsAndGrantsEvents(t, s, p.ID), []string{"link_removed 1 "}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		// Unlinked already: not found, nothing more ends.
		ended, err = s.UnlinkIdentifier(ctx, p.ID, linked, "u-self", now, event(p.ID))
		wantErr(t, "UnlinkIdentifier again", err, store.ErrNotFound)
		if len(ended) != 0 {
			t.Errorf("a second unlink ended %d sessions", len(ended))
		}
		// The number is nobody's: a link gives it to anyone again.
		_, err = s.LinkIdentifiers(ctx, other.ID, []store.Identifier{{Scheme: "no:dnr", Value: "dnr-relinked", MaxLevel: "substantial"}}, nil, "", now, nil)
		wantErr(t, "LinkIdentifiers to another", err, nil)
		_, err = s.LinkIdentifiers(ctx, p.ID, []store.Identifier{linked}, nil, "u-self", now, nil)
		wantErr(t, "LinkIdentifiers of the unlinked number again", err, nil)
	})

	t.Run("concurrent unlinks keep a number", func(t *testing.T) {
		// Two linked numbers and nothing else: of two unlinks at once,
		// one of each number, only one is made.
		two := fullPerson(t, "unlinker-two")
		two.Identifiers = []store.Identifier{
			{Scheme: "no:fnr", Value: "fnr-unlinker-two", MaxLevel: "substantial"},
			{Scheme: "no:dnr", Value: "dnr-unlinker-two", MaxLevel: "substantial"},
		}
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, two), nil)
		errs := race(2, func(i int) error {
			_, err := s.UnlinkIdentifier(ctx, two.ID, two.Identifiers[i], "", now, event(two.ID))
			return err
		})
		if oneWinner(t, errs, store.ErrConflict) < 0 {
			t.Errorf("no unlink succeeded: %v", errors.Join(errs...))
		}
		if got := person(two.ID).Identifiers; len(got) != 1 {
			t.Errorf("identifiers after two unlinks at once: %+v", got)
		}
	})
}
