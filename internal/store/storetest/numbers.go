package storetest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func testPersonNumbers(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	later := now.Add(8 * time.Hour)
	one := func(id string, ident store.Identifier) *store.Person {
		p := fullPerson(t, id)
		p.Identifiers = []store.Identifier{ident}
		return p
	}
	dnr := store.Identifier{Scheme: "no:dnr", Value: "dnr-kept", MaxLevel: "substantial"}
	kept := one("kept", dnr)
	eidOnly := one("eid-only", store.Identifier{Scheme: "no:fnr", Value: "fnr-eid-only"})
	withPasskey := one("with-passkey", store.Identifier{Scheme: "no:fnr", Value: "fnr-with-passkey"})
	withCodes := one("with-codes", store.Identifier{Scheme: "no:fnr", Value: "fnr-with-codes"})
	blocked := one("blocked-one", store.Identifier{Scheme: "no:fnr", Value: "fnr-blocked-one"})
	twoIDs := fullPerson(t, "two-ids")
	for _, p := range []*store.Person{kept, eidOnly, withPasskey, withCodes, blocked, twoIDs} {
		wantErr(t, "CreatePerson "+p.ID, s.CreatePerson(ctx, p), nil)
	}
	wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, withPasskey.ID, "pk-numbers"), 0, ""), nil)
	wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, withCodes.ID, [][]byte{hash("code-numbers")}, now), nil)
	_, err := s.BlockPerson(ctx, blocked.ID, "stolen phone", now, nil)
	wantErr(t, "BlockPerson", err, nil)
	createSessionOf(t, s, "n-kept", kept.ID, later, "bank")
	createSessionOf(t, s, "n-eid", eidOnly.ID, later, "bank")
	createGrantsOf(t, s, map[string]string{"n-kept-grant": kept.ID, "n-eid-grant": eidOnly.ID})
	event := countsEvent(now, "identifier_added")
	events := func(id string) []string {
		t.Helper()
		return sessionsAndGrantsEvents(t, s, id)
	}
	holder := func(ident store.Identifier) string {
		t.Helper()
		p, err := s.GetPersonByIdentifier(ctx, ident.Scheme, ident.Value)
		if err != nil {
			return err.Error()
		}
		return p.ID
	}
	person := func(id string) *store.Person {
		t.Helper()
		p, err := s.GetPerson(ctx, id)
		wantErr(t, "GetPerson "+id, err, nil)
		return p
	}

	t.Run("add", func(t *testing.T) {
		fnr := store.Identifier{Scheme: "no:fnr", Value: "fnr-kept"}
		ended, err := s.AddIdentifier(ctx, kept.ID, fnr, "", "", now, event(kept.ID))
		wantErr(t, "AddIdentifier", err, nil)
		if len(ended) != 0 {
			t.Errorf("adding an identifier ended sessions %v", ended)
		}
		// Both numbers find the person, the old one as it was.
		want := *kept
		want.Identifiers = []store.Identifier{dnr, fnr}
		same(t, "the person with a new number", &want, person(kept.ID))
		for _, ident := range want.Identifiers {
			if got := holder(ident); got != kept.ID {
				t.Errorf("%s is held by %s, want %s", ident.Scheme, got, kept.ID)
			}
		}
		if got, want := events(kept.ID), []string{"identifier_added 0 0"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		_, err = s.GetSession(ctx, "n-kept", now)
		wantErr(t, "GetSession of the person's session", err, nil)
		// A second number of the same scheme is a number of theirs too.
		fnr2 := store.Identifier{Scheme: "no:fnr", Value: "fnr-kept-2"}
		_, err = s.AddIdentifier(ctx, kept.ID, fnr2, "", "", now, nil)
		wantErr(t, "AddIdentifier of a second birth number", err, nil)
		if got := holder(fnr2); got != kept.ID {
			t.Errorf("the second birth number is held by %s", got)
		}
	})

	t.Run("refused", func(t *testing.T) {
		before := events(kept.ID)
		for _, tt := range []struct {
			name, person, retire string
			ident                store.Identifier
			want                 error
		}{
			{"one held by another", kept.ID, "", eidOnly.Identifiers[0], store.ErrConflict},
			{"one held already", kept.ID, "", dnr, store.ErrConflict},
			{"to nobody", "nobody", "", store.Identifier{Scheme: "no:fnr", Value: "fnr-nobody"}, store.ErrNotFound},
			{"retiring nobody", kept.ID, "nobody", eidOnly.Identifiers[0], store.ErrNotFound},
			{"retiring the person itself", kept.ID, kept.ID, dnr, store.ErrConflict},
			{"retiring one not holding it", kept.ID, eidOnly.ID, withCodes.Identifiers[0], store.ErrConflict},
			{"retiring one with a passkey", kept.ID, withPasskey.ID, withPasskey.Identifiers[0], store.ErrConflict},
			{"retiring one with recovery codes", kept.ID, withCodes.ID, withCodes.Identifiers[0], store.ErrConflict},
			{"retiring one with other identifiers", kept.ID, twoIDs.ID, twoIDs.Identifiers[0], store.ErrConflict},
			{"retiring one blocked", kept.ID, blocked.ID, blocked.Identifiers[0], store.ErrConflict},
			{"to one blocked", blocked.ID, "", store.Identifier{Scheme: "no:fnr", Value: "fnr-to-blocked"}, store.ErrBlocked},
			{"to one blocked, retiring another", blocked.ID, eidOnly.ID, eidOnly.Identifiers[0], store.ErrBlocked},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.AddIdentifier(ctx, tt.person, tt.ident, tt.retire, "merged", now, event(tt.person))
				wantErr(t, "AddIdentifier", err, tt.want)
			})
		}
		if got := events(kept.ID); !slices.Equal(got, before) {
			t.Errorf("events after refused changes %q, want %q", got, before)
		}
		for _, p := range []*store.Person{eidOnly, withPasskey, withCodes, twoIDs} {
			same(t, "person "+p.ID+" after refused changes", p, person(p.ID))
		}
		if p := person(blocked.ID); !slices.Equal(p.Identifiers, blocked.Identifiers) || p.BlockedReason != "stolen phone" {
			t.Errorf("the blocked person after a refused move: %+v", p)
		}
	})

	t.Run("merge", func(t *testing.T) {
		moved := eidOnly.Identifiers[0]
		ended, err := s.AddIdentifier(ctx, kept.ID, moved, eidOnly.ID, "merged into kept", now.In(loadZones(t).la), event(eidOnly.ID))
		wantErr(t, "AddIdentifier retiring", err, nil)
		if len(ended) != 1 || ended[0].ID != "n-eid" {
			t.Errorf("sessions ended %v, want n-eid", ended)
		}
		if got := holder(moved); got != kept.ID {
			t.Errorf("the moved number is held by %s, want %s", got, kept.ID)
		}
		if got := person(kept.ID).Identifiers; len(got) != 4 || got[3] != moved {
			t.Errorf("the person's identifiers %v, want the moved one last", got)
		}
		want := *eidOnly
		want.Identifiers = []store.Identifier{}
		want.BlockedAt, want.BlockedReason = now.UTC(), "merged into kept"
		same(t, "the retired person", &want, person(eidOnly.ID))
		_, err = s.GetSession(ctx, "n-eid", now)
		wantErr(t, "GetSession of the retired person", err, store.ErrNotFound)
		_, err = s.GetSession(ctx, "n-kept", now)
		wantErr(t, "GetSession of the person kept", err, nil)
		pending, err := s.PendingSessionEnds(ctx, later, 10)
		wantErr(t, "PendingSessionEnds", err, nil)
		if len(pending) != 1 || pending[0].ID != "n-eid" {
			t.Errorf("pending ends %v, want only n-eid", pending)
		}
		for id, revoked := range map[string]bool{"n-eid-grant": true, "n-kept-grant": false} {
			g, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant "+id, err, nil)
			if got := !g.RevokedAt.IsZero(); got != revoked {
				t.Errorf("grant %s revoked = %v, want %v", id, got, revoked)
			}
		}
		if got, want := events(eidOnly.ID), []string{"identifier_added 1 1"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		// Nothing is left to move.
		_, err = s.AddIdentifier(ctx, kept.ID, moved, eidOnly.ID, "again", now, nil)
		wantErr(t, "AddIdentifier retiring again", err, store.ErrConflict)
	})
}

func testRemoveIdentifier(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	later := now.Add(8 * time.Hour)
	dnr := store.Identifier{Scheme: "no:dnr", Value: "dnr-unlinked"}
	linked := store.Identifier{Scheme: "no:fnr", Value: "fnr-linked", MaxLevel: "substantial"}
	p := fullPerson(t, "unlinked")
	p.Identifiers = []store.Identifier{dnr, linked}
	other := fullPerson(t, "unlinked-other")
	lone := fullPerson(t, "unlinked-lone")
	lone.Identifiers = []store.Identifier{{Scheme: "no:fnr", Value: "fnr-lone"}}
	for _, q := range []*store.Person{p, other, lone} {
		wantErr(t, "CreatePerson "+q.ID, s.CreatePerson(ctx, q), nil)
	}
	createSessionOf(t, s, "r-one", p.ID, later, "bank")
	createSessionOf(t, s, "r-two", p.ID, later)
	createSessionOf(t, s, "r-other", other.ID, later, "bank")
	createGrantsOf(t, s, map[string]string{"r-grant": p.ID, "r-other-grant": other.ID})
	event := countsEvent(now, "identifier_removed")
	person := func(id string) *store.Person {
		t.Helper()
		q, err := s.GetPerson(ctx, id)
		wantErr(t, "GetPerson "+id, err, nil)
		return q
	}

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, person string
			ident        store.Identifier
			want         error
		}{
			{"one held by another", p.ID, other.Identifiers[0], store.ErrConflict},
			{"one held by nobody", p.ID, store.Identifier{Scheme: "no:fnr", Value: "fnr-nobody"}, store.ErrConflict},
			{"one of another scheme with the value", p.ID, store.Identifier{Scheme: "no:fnr", Value: dnr.Value}, store.ErrConflict},
			{"the last one", lone.ID, lone.Identifiers[0], store.ErrConflict},
			{"of nobody", "nobody", dnr, store.ErrNotFound},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.RemoveIdentifier(ctx, tt.person, tt.ident, now, event(tt.person))
				wantErr(t, "RemoveIdentifier", err, tt.want)
			})
		}
		for _, q := range []*store.Person{p, other, lone} {
			same(t, "person "+q.ID+" after refused removals", q, person(q.ID))
			if got := sessionsAndGrantsEvents(t, s, q.ID); len(got) != 0 {
				t.Errorf("events of %s after refused removals: %q", q.ID, got)
			}
		}
		_, err := s.GetSession(ctx, "r-one", now)
		wantErr(t, "GetSession after refused removals", err, nil)
	})

	t.Run("remove", func(t *testing.T) {
		// The value alone does not name the identifier: the scheme does
		// too, and the level it was linked at is not asked for.
		ended, err := s.RemoveIdentifier(ctx, p.ID, store.Identifier{Scheme: linked.Scheme, Value: linked.Value}, now.In(loadZones(t).tokyo), event(p.ID))
		wantErr(t, "RemoveIdentifier", err, nil)
		var ids []string
		for _, ss := range ended {
			ids = append(ids, ss.ID)
		}
		slices.Sort(ids)
		if want := []string{"r-one", "r-two"}; !slices.Equal(ids, want) {
			t.Errorf("sessions ended %q, want %q", ids, want)
		}
		want := *p
		want.Identifiers = []store.Identifier{dnr}
		same(t, "the person without the number", &want, person(p.ID))
		_, err = s.GetPersonByIdentifier(ctx, linked.Scheme, linked.Value)
		wantErr(t, "GetPersonByIdentifier of the removed number", err, store.ErrNotFound)
		if q, err := s.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value); err != nil || q.ID != p.ID {
			t.Errorf("the number kept finds %v, %v; want %s", q, err, p.ID)
		}
		for id, live := range map[string]bool{"r-one": false, "r-two": false, "r-other": true} {
			_, err := s.GetSession(ctx, id, now)
			if got := err == nil; got != live {
				t.Errorf("session %s live = %v (%v), want %v", id, got, err, live)
			}
		}
		// Only the session a service got tokens in is one to tell it of.
		pending, err := s.PendingSessionEnds(ctx, later, 10)
		wantErr(t, "PendingSessionEnds", err, nil)
		if len(pending) != 1 || pending[0].ID != "r-one" {
			t.Errorf("pending ends %v, want only r-one", pending)
		}
		for id, revoked := range map[string]bool{"r-grant": true, "r-other-grant": false} {
			g, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant "+id, err, nil)
			if got := !g.RevokedAt.IsZero(); got != revoked {
				t.Errorf("grant %s revoked = %v, want %v", id, got, revoked)
			}
		}
		if got, want := sessionsAndGrantsEvents(t, s, p.ID), []string{"identifier_removed 2 1"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		// The number is nobody's: it can be given again, to anyone.
		_, err = s.AddIdentifier(ctx, other.ID, linked, "", "", now, nil)
		wantErr(t, "AddIdentifier of the removed number to another", err, nil)
		// What is left is their last number.
		_, err = s.RemoveIdentifier(ctx, p.ID, dnr, now, nil)
		wantErr(t, "RemoveIdentifier of the last number", err, store.ErrConflict)
	})

	t.Run("blocked", func(t *testing.T) {
		_, err := s.BlockPerson(ctx, other.ID, "stolen phone", now, nil)
		wantErr(t, "BlockPerson", err, nil)
		_, err = s.RemoveIdentifier(ctx, other.ID, linked, now, event(other.ID))
		wantErr(t, "RemoveIdentifier from a blocked person", err, nil)
		q := person(other.ID)
		if !q.Blocked() || slices.ContainsFunc(q.Identifiers, func(id store.Identifier) bool { return id.Value == linked.Value }) {
			t.Errorf("the blocked person after the removal: %+v", q)
		}
	})
}

// createGrantsOf stores each grant named in grants, of the person it
// maps to, with a refresh token and no session.
func createGrantsOf(t *testing.T, s store.Store, grants map[string]string) {
	t.Helper()
	for id, person := range grants {
		g := fullGrant(t, id)
		g.PersonID, g.SessionID = person, ""
		refresh := fullToken(t, id+"-refresh", store.TokenRefresh)
		refresh.GrantID = id
		wantErr(t, "CreateGrantTokens "+id, s.CreateGrantTokens(t.Context(), g, nil, refresh), nil)
	}
}

// countsEvent makes, for a person, the events argument of the
// PersonNumbers methods: one event of type typ at now with the counts
// it is given.
func countsEvent(now time.Time, typ string) func(person string) func(sessions, grants int) []*store.AuditEvent {
	return func(person string) func(sessions, grants int) []*store.AuditEvent {
		return func(sessions, grants int) []*store.AuditEvent {
			return []*store.AuditEvent{{Time: now, Type: typ, PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"sessions": strconv.Itoa(sessions), "grants": strconv.Itoa(grants)}}}
		}
	}
}
