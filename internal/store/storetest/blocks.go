package storetest

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func testPersonBlocks(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	later := now.Add(8 * time.Hour)
	p := fullPerson(t, "blocked")
	other := fullPerson(t, "bystander")
	for _, x := range []*store.Person{p, other} {
		wantErr(t, "CreatePerson "+x.ID, s.CreatePerson(ctx, x), nil)
	}
	wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, p.ID, [][]byte{hash("held-before-the-block")}, now), nil)
	session := func(id, person string, clients ...string) *store.Session {
		return createSessionOf(t, s, id, person, later, clients...)
	}
	told := session("b-told", p.ID, "bank")
	session("b-alone", p.ID)
	kept := session("b-other", other.ID, "bank")
	grant := func(id, person string, scope ...string) {
		g := fullGrant(t, id)
		g.PersonID, g.SessionID = person, "b-told"
		refresh := fullToken(t, id+"-refresh", store.TokenRefresh)
		refresh.GrantID, refresh.Scope = id, scope
		access := fullToken(t, id+"-access", store.TokenAccess)
		access.GrantID = id
		wantErr(t, "CreateGrantTokens "+id, s.CreateGrantTokens(ctx, g, nil, refresh, access), nil)
	}
	grant("b-offline", p.ID, "openid", "offline_access")
	grant("b-online", p.ID, "openid")
	grant("b-theirs", other.ID, "openid", "offline_access")
	access := func(id string) store.PersonAccess {
		t.Helper()
		a, err := s.PersonAccess(ctx, id, now)
		wantErr(t, "PersonAccess "+id, err, nil)
		return a
	}
	if got, want := access(p.ID), (store.PersonAccess{Sessions: 2, RefreshTokens: 2, Offline: 1}); got != want {
		t.Errorf("PersonAccess before the block = %+v, want %+v", got, want)
	}
	if got := access("nobody"); got != (store.PersonAccess{}) {
		t.Errorf("PersonAccess of nobody = %+v, want zeros", got)
	}
	event := func(typ string, person string, details map[string]string) *store.AuditEvent {
		return &store.AuditEvent{Time: now, Type: typ, PersonID: person, Result: store.ResultSuccess, Details: details}
	}
	block := func(id string) ([]*store.Session, error) {
		return s.BlockPerson(ctx, id, "stolen phone", now.In(loadZones(t).la), func(sessions, grants int) []*store.AuditEvent {
			return []*store.AuditEvent{event("person_blocked", id, map[string]string{
				"sessions": strconv.Itoa(sessions), "grants": strconv.Itoa(grants)})}
		})
	}
	events := func(id string) []string {
		t.Helper()
		return sessionsAndGrantsEvents(t, s, id)
	}

	t.Run("block", func(t *testing.T) {
		_, err := block("nobody")
		wantErr(t, "BlockPerson of nobody", err, store.ErrNotFound)
		ended, err := block(p.ID)
		wantErr(t, "BlockPerson", err, nil)
		var endedIDs []string
		for _, ss := range ended {
			endedIDs = append(endedIDs, ss.ID)
		}
		slices.Sort(endedIDs)
		if !slices.Equal(endedIDs, []string{"b-alone", "b-told"}) {
			t.Errorf("sessions ended %v, want [b-alone b-told]", endedIDs)
		}
		if got, want := events(p.ID), []string{"person_blocked 2 2"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		// Every read of the person says so, in UTC.
		reads := map[string]func() (*store.Person, error){
			"GetPerson":             func() (*store.Person, error) { return s.GetPerson(ctx, p.ID) },
			"GetPersonByIdentifier": func() (*store.Person, error) { return s.GetPersonByIdentifier(ctx, "no:fnr", "fnr-blocked") },
			"GetPersonByWebAuthnID": func() (*store.Person, error) { return s.GetPersonByWebAuthnID(ctx, p.WebAuthnID) },
		}
		for name, read := range reads {
			got, err := read()
			wantErr(t, name, err, nil)
			want := *p
			want.BlockedAt, want.BlockedReason = now.UTC(), "stolen phone"
			same(t, name+" of a blocked person", &want, got)
			if !got.Blocked() {
				t.Errorf("%s: Blocked() is false", name)
			}
		}
		for _, id := range endedIDs {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after the block", err, store.ErrNotFound)
		}
		_, err = s.GetSession(ctx, kept.ID, now)
		wantErr(t, "GetSession of another person's session", err, nil)
		// The relying party that got tokens in a session is told.
		pending, err := s.PendingSessionEnds(ctx, later, 10)
		wantErr(t, "PendingSessionEnds", err, nil)
		if len(pending) != 1 || pending[0].ID != told.ID {
			t.Errorf("pending ends %v, want only %s", pending, told.ID)
		}
		for id, revoked := range map[string]bool{"b-offline": true, "b-online": true, "b-theirs": false} {
			g, err := s.GetGrant(ctx, id)
			wantErr(t, "GetGrant "+id, err, nil)
			if got := !g.RevokedAt.IsZero(); got != revoked {
				t.Errorf("grant %s revoked = %v, want %v", id, got, revoked)
			} else if revoked && !g.RevokedAt.Equal(now) {
				t.Errorf("grant %s revoked at %v, want %v", id, g.RevokedAt, now)
			}
		}
		if got := access(p.ID); got != (store.PersonAccess{}) {
			t.Errorf("PersonAccess after the block = %+v, want zeros", got)
		}
		if got, want := access(other.ID), (store.PersonAccess{Sessions: 1, RefreshTokens: 1, Offline: 1}); got != want {
			t.Errorf("PersonAccess of another person = %+v, want %+v", got, want)
		}
		// Blocked already: nothing changes, no event.
		_, err = block(p.ID)
		wantErr(t, "BlockPerson again", err, store.ErrConflict)
		if got := events(p.ID); len(got) != 1 {
			t.Errorf("events after a second block %q, want the first only", got)
		}
	})

	// A link that read the person before the block and writes after it
	// adds nothing: the store refuses it in the same write.
	t.Run("link refused while blocked", func(t *testing.T) {
		fresh := store.Identifier{Scheme: "no:dnr", Value: "dnr-blocked", MaxLevel: "high"}
		raise := store.LevelChange{Identifier: store.Identifier{Scheme: "no:fnr", Value: "fnr-blocked", MaxLevel: "high"}}
		called := false
		linked := func([]store.LevelChange, int) []*store.AuditEvent {
			called = true
			return []*store.AuditEvent{event("link", p.ID, nil)}
		}
		for name, c := range map[string]struct {
			add   []store.Identifier
			raise []store.LevelChange
		}{
			"add":   {add: []store.Identifier{fresh}},
			"raise": {raise: []store.LevelChange{raise}},
			"both":  {add: []store.Identifier{fresh}, raise: []store.LevelChange{raise}},
		} {
			ended, err := s.LinkIdentifiers(ctx, p.ID, c.add, c.raise, "", now, linked)
			wantErr(t, "LinkIdentifiers to a blocked person, "+name, err, store.ErrBlocked)
			if len(ended) != 0 || called {
				t.Errorf("%s: ended %v, events asked for %v, want neither", name, ended, called)
			}
		}
		_, err := s.GetPersonByIdentifier(ctx, fresh.Scheme, fresh.Value)
		wantErr(t, "GetPersonByIdentifier of the refused identifier", err, store.ErrNotFound)
		got, err := s.GetPerson(ctx, p.ID)
		wantErr(t, "GetPerson", err, nil)
		want := *p
		want.BlockedAt, want.BlockedReason = now.UTC(), "stolen phone"
		same(t, "a blocked person after a refused link", &want, got)
		if got := events(p.ID); len(got) != 1 {
			t.Errorf("events after a refused link %q, want the block's only", got)
		}
		// Another person still links.
		_, err = s.LinkIdentifiers(ctx, other.ID, []store.Identifier{{Scheme: "no:dnr", Value: "dnr-bystander"}}, nil, "", now, nil)
		wantErr(t, "LinkIdentifiers to a person not blocked", err, nil)
	})

	// A passkey or recovery codes whose write began before the block and
	// lands after it are not stored: the store refuses them in the same
	// write (ADR 42), so nothing outlasts the block and its lifting.
	t.Run("passkeys and codes refused while blocked", func(t *testing.T) {
		called := false
		added := func(n int) []*store.AuditEvent {
			called = true
			return []*store.AuditEvent{event("passkey_added", p.ID, nil)}
		}
		refused := map[string]func() error{
			"CreatePasskey": func() error { return s.CreatePasskey(ctx, fullPasskey(t, p.ID, "blocked-plain"), 0, "") },
			"CreatePasskey under a cap": func() error {
				return s.CreatePasskey(ctx, fullPasskey(t, p.ID, "blocked-capped"), 5, "")
			},
			"CreatePasskey with an event": func() error {
				return s.CreatePasskey(ctx, fullPasskey(t, p.ID, "blocked-event"), 0, "", event("passkey_added", p.ID, nil))
			},
			"CreatePasskeyEndingOthers": func() error {
				_, err := s.CreatePasskeyEndingOthers(ctx, fullPasskey(t, p.ID, "blocked-ending"), 5, "", now, added)
				return err
			},
			"ReplaceRecoveryCodes": func() error {
				return s.ReplaceRecoveryCodes(ctx, p.ID, [][]byte{hash("blocked-code")}, now, event("recovery_codes_regenerated", p.ID, nil))
			},
			"ReplaceRecoveryCodesEndingOthers": func() error {
				_, err := s.ReplaceRecoveryCodesEndingOthers(ctx, p.ID, [][]byte{hash("blocked-code-ending")}, "", now, added)
				return err
			},
		}
		for name, write := range refused {
			wantErr(t, name+" for a blocked person", write(), store.ErrBlocked)
		}
		if called {
			t.Error("events asked for by a refused write")
		}
		keys, err := s.ListPasskeys(ctx, p.ID)
		wantErr(t, "ListPasskeys", err, nil)
		if len(keys) != 0 {
			t.Errorf("passkeys of a blocked person after refused additions: %d, want none", len(keys))
		}
		for _, h := range [][]byte{hash("blocked-code"), hash("blocked-code-ending")} {
			if has, err := s.HasRecoveryCode(ctx, p.ID, h); err != nil || has {
				t.Errorf("HasRecoveryCode of a refused code = %v, %v; want false", has, err)
			}
		}
		// The codes held before the block stay as they were.
		if n, err := s.CountRecoveryCodes(ctx, p.ID); err != nil || n != 1 {
			t.Errorf("CountRecoveryCodes after refused replacements = %d, %v; want the 1 held before", n, err)
		}
		if got := events(p.ID); len(got) != 1 {
			t.Errorf("events after refused additions %q, want the block's only", got)
		}
		// Dropping codes gives no way in: a blocked person's codes may go.
		wantErr(t, "ReplaceRecoveryCodes with none for a blocked person", s.ReplaceRecoveryCodes(ctx, p.ID, nil, now), nil)
		if n, err := s.CountRecoveryCodes(ctx, p.ID); err != nil || n != 0 {
			t.Errorf("CountRecoveryCodes after dropping them = %d, %v; want 0", n, err)
		}
		// Nor is the refusal anyone else's.
		wantErr(t, "CreatePasskey for a person not blocked", s.CreatePasskey(ctx, fullPasskey(t, other.ID, "bystander-key"), 5, ""), nil)
		wantErr(t, "ReplaceRecoveryCodes for a person not blocked", s.ReplaceRecoveryCodes(ctx, other.ID, [][]byte{hash("bystander-code")}, now), nil)
	})

	t.Run("unblock", func(t *testing.T) {
		wantErr(t, "UnblockPerson of nobody", s.UnblockPerson(ctx, "nobody", nil), store.ErrNotFound)
		wantErr(t, "UnblockPerson of one not blocked", s.UnblockPerson(ctx, other.ID, event("person_unblocked", other.ID, nil)), store.ErrConflict)
		if got := events(other.ID); len(got) != 0 {
			t.Errorf("events of a refused unblock %q, want none", got)
		}
		wantErr(t, "UnblockPerson", s.UnblockPerson(ctx, p.ID, event("person_unblocked", p.ID, nil)), nil)
		got, err := s.GetPerson(ctx, p.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "an unblocked person", p, got)
		// What was refused while blocked does not come back with it.
		if keys, err := s.ListPasskeys(ctx, p.ID); err != nil || len(keys) != 0 {
			t.Errorf("passkeys after the block is lifted: %d, %v; want none", len(keys), err)
		}
		if got, want := events(p.ID), []string{"person_unblocked  ", "person_blocked 2 2"}; !slices.Equal(got, want) {
			t.Errorf("events %q, want %q", got, want)
		}
		wantErr(t, "UnblockPerson again", s.UnblockPerson(ctx, p.ID, nil), store.ErrConflict)
		// The grants stay revoked: unblocking gives back no token.
		g, err := s.GetGrant(ctx, "b-offline")
		wantErr(t, "GetGrant", err, nil)
		if g.RevokedAt.IsZero() {
			t.Error("unblocking restored a revoked grant")
		}
		// Blocked again, later, for another reason.
		_, err = block(p.ID)
		wantErr(t, "BlockPerson after an unblock", err, nil)
		if got, _ := s.GetPerson(ctx, p.ID); got == nil || !strings.EqualFold(got.BlockedReason, "stolen phone") {
			t.Errorf("blocked again: %+v", got)
		}
	})
}

// createSessionOf stores a session id of person, live until expires,
// in which clients received tokens.
func createSessionOf(t *testing.T, s store.Store, id, person string, expires time.Time, clients ...string) *store.Session {
	t.Helper()
	ss := fullSession(t, id)
	ss.PersonID, ss.Clients, ss.Continues, ss.ExpiresAt = person, clients, "", expires
	wantErr(t, "CreateSession "+id, s.CreateSession(t.Context(), ss), nil)
	return ss
}

// sessionsAndGrantsEvents lists person's events, newest first, as
// their type and their details "sessions" and "grants".
func sessionsAndGrantsEvents(t *testing.T, s store.Store, person string) []string {
	t.Helper()
	got, err := s.ListPersonAudit(t.Context(), person, 100)
	wantErr(t, "ListPersonAudit", err, nil)
	var out []string
	for _, e := range got {
		out = append(out, e.Type+" "+e.Details["sessions"]+" "+e.Details["grants"])
	}
	return out
}
