package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func fullPerson(t *testing.T, id string) *store.Person {
	return &store.Person{
		ID:         id,
		WebAuthnID: hash("webauthn-" + id),
		GivenName:  "Åse Marie",
		FamilyName: "Ødegård",
		BirthDate:  "1990-02-28",
		Identifiers: []store.Identifier{
			{Scheme: "no:fnr", Value: "fnr-" + id},
			{Scheme: "passport:NOR", Value: "pp-" + id},
		},
		ProofingLevel:  "high",
		ProofingMethod: "passport-nfc",
		Synthetic:      true,
		CreatedAt:      base(t),
	}
}

func testPersons(t *testing.T, s store.Store) {
	ctx := t.Context()

	t.Run("round trip and lookups", func(t *testing.T) {
		p := fullPerson(t, "p1")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)

		got, err := s.GetPerson(ctx, p.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "GetPerson", p, got)

		got, err = s.GetPersonByWebAuthnID(ctx, p.WebAuthnID)
		wantErr(t, "GetPersonByWebAuthnID", err, nil)
		same(t, "GetPersonByWebAuthnID", p, got)

		for _, ident := range p.Identifiers {
			got, err = s.GetPersonByIdentifier(ctx, ident.Scheme, ident.Value)
			wantErr(t, "GetPersonByIdentifier "+ident.Scheme, err, nil)
			same(t, "GetPersonByIdentifier "+ident.Scheme, p, got)
		}
	})

	t.Run("identifiers nil and empty", func(t *testing.T) {
		for _, p := range []*store.Person{
			{ID: "nil-ids", WebAuthnID: hash("nil-ids")},
			{ID: "empty-ids", WebAuthnID: hash("empty-ids"), Identifiers: []store.Identifier{}},
		} {
			wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
			got, err := s.GetPerson(ctx, p.ID)
			wantErr(t, "GetPerson", err, nil)
			same(t, "person "+p.ID, p, got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		p := fullPerson(t, "nf")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
		_, err := s.GetPerson(ctx, "nobody")
		wantErr(t, "GetPerson", err, store.ErrNotFound)
		_, err = s.GetPersonByWebAuthnID(ctx, hash("nobody"))
		wantErr(t, "GetPersonByWebAuthnID", err, store.ErrNotFound)
		_, err = s.GetPersonByIdentifier(ctx, "no:fnr", "unknown")
		wantErr(t, "GetPersonByIdentifier", err, store.ErrNotFound)
		// The same value under another scheme is another identifier.
		_, err = s.GetPersonByIdentifier(ctx, "no:dnr", p.Identifiers[0].Value)
		wantErr(t, "GetPersonByIdentifier other scheme", err, store.ErrNotFound)
		_, err = s.LinkIdentifiers(ctx, "nobody", []store.Identifier{{Scheme: "no:dnr", Value: "x"}}, nil, "", time.Now(), nil)
		wantErr(t, "LinkIdentifiers unknown person", err, store.ErrNotFound)
	})

	t.Run("update profile", func(t *testing.T) {
		p := fullPerson(t, "renamed")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
		// Read first, so a backend that keeps persons in memory has them.
		for range 2 {
			_, err := s.GetPersonByIdentifier(ctx, p.Identifiers[0].Scheme, p.Identifiers[0].Value)
			wantErr(t, "GetPersonByIdentifier", err, nil)
		}
		pr := store.Profile{GivenName: "Åse", FamilyName: "Nordmann-Ødegård", BirthDate: "1990-02-28"}
		wantErr(t, "UpdatePersonProfile", s.UpdatePersonProfile(ctx, p.ID, pr), nil)
		p.GivenName, p.FamilyName, p.BirthDate = pr.GivenName, pr.FamilyName, pr.BirthDate
		got, err := s.GetPerson(ctx, p.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "GetPerson after the update", p, got)
		got, err = s.GetPersonByIdentifier(ctx, p.Identifiers[0].Scheme, p.Identifiers[0].Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "GetPersonByIdentifier after the update", p, got)
		got, err = s.GetPersonByWebAuthnID(ctx, p.WebAuthnID)
		wantErr(t, "GetPersonByWebAuthnID", err, nil)
		same(t, "GetPersonByWebAuthnID after the update", p, got)

		wantErr(t, "UpdatePersonProfile unknown person", s.UpdatePersonProfile(ctx, "nobody", pr), store.ErrNotFound)
	})

	t.Run("create conflicts are atomic", func(t *testing.T) {
		owner := fullPerson(t, "owner")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, owner), nil)
		free := store.Identifier{Scheme: "dk:cpr", Value: "free-one"}
		tests := []struct {
			name string
			p    *store.Person
		}{
			{"same ID", &store.Person{ID: owner.ID, WebAuthnID: hash("other"),
				Identifiers: []store.Identifier{free}}},
			{"same WebAuthn ID", &store.Person{ID: "clash-webauthn", WebAuthnID: owner.WebAuthnID,
				Identifiers: []store.Identifier{free}}},
			{"identifier taken", &store.Person{ID: "clash-ident", WebAuthnID: hash("clash-ident"),
				Identifiers: []store.Identifier{free, owner.Identifiers[1]}}},
			{"identifier twice", &store.Person{ID: "clash-twice", WebAuthnID: hash("clash-twice"),
				Identifiers: []store.Identifier{free, free}}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreatePerson", s.CreatePerson(ctx, tt.p), store.ErrConflict)
				if tt.p.ID != owner.ID {
					_, err := s.GetPerson(ctx, tt.p.ID)
					wantErr(t, "GetPerson after failed create", err, store.ErrNotFound)
				}
				_, err := s.GetPersonByIdentifier(ctx, free.Scheme, free.Value)
				wantErr(t, "free identifier after failed create", err, store.ErrNotFound)
				got, err := s.GetPerson(ctx, owner.ID)
				wantErr(t, "GetPerson owner", err, nil)
				same(t, "owner", owner, got)
			})
		}
	})

	t.Run("add identifier", func(t *testing.T) {
		p := fullPerson(t, "adder")
		other := fullPerson(t, "other")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, other), nil)
		link := func(personID string, add []store.Identifier, raise ...store.LevelChange) error {
			_, err := s.LinkIdentifiers(ctx, personID, add, raise, "", time.Now(), nil)
			return err
		}

		dnr := store.Identifier{Scheme: "no:dnr", Value: "dnr-adder"}
		wantErr(t, "LinkIdentifiers", link(p.ID, []store.Identifier{dnr}), nil)
		p.Identifiers = append(p.Identifiers, dnr)
		got, err := s.GetPersonByIdentifier(ctx, dnr.Scheme, dnr.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "person after LinkIdentifiers", p, got)

		wantErr(t, "LinkIdentifiers own again", link(p.ID, []store.Identifier{dnr}), store.ErrConflict)

		relinked := store.Identifier{Scheme: "is:kt", Value: "kt-adder-linked", MaxLevel: "substantial"}
		wantErr(t, "LinkIdentifiers relinked", link(p.ID, []store.Identifier{relinked}), nil)
		raised := relinked
		raised.MaxLevel = "high"
		// A raise from a level the identifier is not at, or of one the
		// person does not hold, changes nothing.
		wantErr(t, "LinkIdentifiers stale raise", link(p.ID, nil, store.LevelChange{Identifier: raised, Was: "low"}), nil)
		wantErr(t, "LinkIdentifiers raise not held", link(other.ID, nil, store.LevelChange{Identifier: raised, Was: "substantial"}), nil)
		wantErr(t, "LinkIdentifiers raise unknown person", link("nobody", nil, store.LevelChange{Identifier: raised, Was: "substantial"}), store.ErrNotFound)
		got, err = s.GetPersonByIdentifier(ctx, raised.Scheme, raised.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "person after raises that change nothing", append(slices.Clone(p.Identifiers), relinked), got.Identifiers)
		got, err = s.GetPerson(ctx, other.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "the other person after a raise of what they do not hold", other, got)
		wantErr(t, "LinkIdentifiers raise", link(p.ID, nil, store.LevelChange{Identifier: raised, Was: "substantial"}), nil)
		p.Identifiers = append(p.Identifiers, raised)
		got, err = s.GetPersonByIdentifier(ctx, raised.Scheme, raised.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "person after the raise", p, got)
		wantErr(t, "LinkIdentifiers someone else's", link(p.ID, []store.Identifier{other.Identifiers[0]}), store.ErrConflict)
		got, err = s.GetPerson(ctx, p.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "person after failed LinkIdentifiers", p, got)

		nilIDs := &store.Person{ID: "starts-empty", WebAuthnID: hash("starts-empty")}
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, nilIDs), nil)
		first := store.Identifier{Scheme: "se:pnr", Value: "pnr-1"}
		wantErr(t, "LinkIdentifiers first", link(nilIDs.ID, []store.Identifier{first}), nil)
		got, err = s.GetPerson(ctx, nilIDs.ID)
		wantErr(t, "GetPerson", err, nil)
		same(t, "identifiers", []store.Identifier{first}, got.Identifiers)

		// A linked identifier keeps the level it was linked from, read
		// back through every lookup.
		linked := store.Identifier{Scheme: "dk:cpr", Value: "cpr-linked", MaxLevel: "substantial"}
		wantErr(t, "LinkIdentifiers linked", link(p.ID, []store.Identifier{linked}), nil)
		p.Identifiers = append(p.Identifiers, linked)
		got, err = s.GetPersonByIdentifier(ctx, linked.Scheme, linked.Value)
		wantErr(t, "GetPersonByIdentifier linked", err, nil)
		same(t, "person after a linked LinkIdentifiers", p, got)
		got, err = s.GetPersonByWebAuthnID(ctx, p.WebAuthnID)
		wantErr(t, "GetPersonByWebAuthnID linked", err, nil)
		same(t, "person after a linked LinkIdentifiers", p, got)
	})

	t.Run("concurrent create with one identifier", func(t *testing.T) {
		shared := store.Identifier{Scheme: "fi:hetu", Value: "contested"}
		errs := race(contenders, func(i int) error {
			return s.CreatePerson(ctx, &store.Person{
				ID: id("racer", i), WebAuthnID: hash(id("racer", i)), Identifiers: []store.Identifier{shared},
			})
		})
		w := oneWinner(t, errs, store.ErrConflict)
		if w < 0 {
			return
		}
		got, err := s.GetPersonByIdentifier(ctx, shared.Scheme, shared.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		if got.ID != id("racer", w) {
			t.Errorf("identifier belongs to %s, want the winner %s", got.ID, id("racer", w))
		}
		for i := range contenders {
			if i == w {
				continue
			}
			if _, err := s.GetPerson(ctx, id("racer", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("loser %d: GetPerson = %v, want ErrNotFound", i, err)
			}
		}
	})
	t.Run("link no second number of a scheme", func(t *testing.T) {
		testLinkNoSecondNumber(t, s)
	})
	t.Run("link refused once its session ended", func(t *testing.T) {
		testLinkAfterItsSessionEnded(t, s)
	})
	t.Run("link identifiers in one write", func(t *testing.T) {
		const person = "linker"
		p := fullPerson(t, person)
		p.Identifiers[1].MaxLevel = "low"
		other := fullPerson(t, "linker-other")
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, other), nil)
		for _, id := range []string{"s-linker-1", "s-linker-2", "s-linker-3"} {
			ss := fullSession(t, id)
			ss.PersonID = person
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		now := base(t)
		linked := func(n int) func([]store.LevelChange, int) []*store.AuditEvent {
			return func(raised []store.LevelChange, ended int) []*store.AuditEvent {
				return []*store.AuditEvent{{Time: now, Type: "link", PersonID: person, Result: store.ResultSuccess,
					Details: map[string]string{"n": fmt.Sprint(n), "raised": fmt.Sprint(len(raised)), "sessions_ended": fmt.Sprint(ended)}}}
			}
		}
		fresh := store.Identifier{Scheme: "no:dnr", Value: "dnr-linker", MaxLevel: "substantial"}
		taken := store.Identifier{Scheme: "no:fnr", Value: "fnr-linker-other", MaxLevel: "substantial"}
		raise := store.LevelChange{Identifier: store.Identifier{Scheme: "passport:NOR", Value: "pp-linker", MaxLevel: "substantial"}, Was: "low"}

		// One of them taken: nothing of the link is stored.
		_, err := s.LinkIdentifiers(ctx, person, []store.Identifier{fresh, taken}, []store.LevelChange{raise}, "s-linker-1", now, linked(1))
		wantErr(t, "LinkIdentifiers, one taken", err, store.ErrConflict)
		_, err = s.LinkIdentifiers(ctx, "nobody", []store.Identifier{{Scheme: "no:dnr", Value: "dnr-nobody"}}, nil, "", now, linked(2))
		wantErr(t, "LinkIdentifiers, unknown person", err, store.ErrNotFound)
		_, err = s.GetPersonByIdentifier(ctx, fresh.Scheme, fresh.Value)
		wantErr(t, "GetPersonByIdentifier of one added with one taken", err, store.ErrNotFound)
		got, err := s.GetPerson(ctx, person)
		wantErr(t, "GetPerson", err, nil)
		same(t, "person after a link refused", p, got)
		if _, err := s.GetSession(ctx, "s-linker-2", now); err != nil {
			t.Errorf("session after a link refused: %v", err)
		}

		// All of it: added, raised, the other sessions ended, the event.
		ended, err := s.LinkIdentifiers(ctx, person, []store.Identifier{fresh}, []store.LevelChange{raise}, "s-linker-1", now, linked(3))
		wantErr(t, "LinkIdentifiers", err, nil)
		if len(ended) != 2 {
			t.Errorf("LinkIdentifiers ended %d sessions, want 2", len(ended))
		}
		p.Identifiers[1].MaxLevel = "substantial"
		p.Identifiers = append(p.Identifiers, fresh)
		got, err = s.GetPerson(ctx, person)
		wantErr(t, "GetPerson", err, nil)
		same(t, "person after LinkIdentifiers", p, got)
		if _, err := s.GetSession(ctx, "s-linker-1", now); err != nil {
			t.Errorf("the linking session after LinkIdentifiers: %v", err)
		}
		_, err = s.GetSession(ctx, "s-linker-2", now)
		wantErr(t, "GetSession of another session after LinkIdentifiers", err, store.ErrNotFound)

		// A raise already made, nothing to add: nothing changes, no event.
		ended, err = s.LinkIdentifiers(ctx, person, nil, []store.LevelChange{raise}, "s-linker-1", now, linked(4))
		wantErr(t, "LinkIdentifiers, raised already", err, nil)
		if len(ended) != 0 {
			t.Errorf("LinkIdentifiers that changed nothing ended %d sessions", len(ended))
		}
		wantChangeEvents(t, s, person, "link", "3")
		events, err := s.ListPersonAudit(ctx, person, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if d := events[0].Details; d["raised"] != "1" || d["sessions_ended"] != "2" {
			t.Errorf("link event details %v, want 1 raised and 2 sessions ended", d)
		}
	})
}

func fullPasskey(t *testing.T, personID, name string) *store.Passkey {
	z := loadZones(t)
	return &store.Passkey{
		CredentialID:    hash("cred-" + name),
		PersonID:        personID,
		PublicKey:       append([]byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x00}, hash("pub-"+name)...),
		AttestationType: "packed",
		AAGUID:          hash("aaguid")[:16],
		SignCount:       41,
		Transports:      []string{"internal", "hybrid"},
		UserPresent:     true,
		UserVerified:    true,
		BackupEligible:  true,
		BackupState:     false,
		Name:            "Phone " + name,
		CreatedAt:       base(t).In(z.la),
		LastUsedAt:      base(t).Add(time.Hour).In(z.tokyo),
		MaxLevel:        "substantial",
	}
}

func sortPasskeys(ps []*store.Passkey) {
	slices.SortFunc(ps, func(a, b *store.Passkey) int { return bytes.Compare(a.CredentialID, b.CredentialID) })
}

func testPasskeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, p := range []string{"alice", "bob"} {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: p, WebAuthnID: hash(p)}), nil)
	}

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			p    *store.Passkey
		}{
			{"every field", fullPasskey(t, "alice", "rt-full")},
			{"zero values", &store.Passkey{CredentialID: hash("rt-zero"), PersonID: "alice"}},
			{"largest sign count", &store.Passkey{
				CredentialID: hash("rt-max"), PersonID: "alice", SignCount: math.MaxUint32,
				Transports: []string{}, BackupState: true,
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, tt.p, 0, ""), nil)
				got, err := s.GetPasskey(ctx, tt.p.CredentialID)
				wantErr(t, "GetPasskey", err, nil)
				same(t, "passkey", tt.p, got)
			})
		}
	})

	t.Run("create ending the other sessions in its write", func(t *testing.T) {
		const person = "pia"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		now := base(t)
		for id, who := range map[string]string{"s-pia-1": person, "s-pia-2": person, "s-pia-3": person, "s-pia-bob": "bob"} {
			ss := fullSession(t, id)
			ss.PersonID = who
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		added := func(n int) func(int) []*store.AuditEvent {
			return func(ended int) []*store.AuditEvent {
				return []*store.AuditEvent{{Time: now, Type: "passkey_added", PersonID: person, Result: store.ResultSuccess,
					Details: map[string]string{"n": fmt.Sprint(n), "sessions_ended": fmt.Sprint(ended)}}}
			}
		}
		// Refused: the credential taken, the cap reached, or no such
		// person. Nothing is stored and no session ends.
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, "bob", "pia-taken"), 0, ""), nil)
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, person, "pia-0"), 0, ""), nil)
		for _, c := range []struct {
			p    *store.Passkey
			max  int
			want error
		}{
			{fullPasskey(t, person, "pia-taken"), 0, store.ErrConflict},
			{fullPasskey(t, person, "pia-over"), 1, store.ErrLimit},
			{fullPasskey(t, "nobody", "pia-nobody"), 0, store.ErrNotFound},
		} {
			ended, err := s.CreatePasskeyEndingOthers(ctx, c.p, c.max, "s-pia-1", now, added(0))
			wantErr(t, "CreatePasskeyEndingOthers refused", err, c.want)
			if len(ended) != 0 {
				t.Errorf("a refused CreatePasskeyEndingOthers ended %d sessions", len(ended))
			}
		}
		for _, id := range []string{"s-pia-1", "s-pia-2", "s-pia-3"} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after a refused creation", err, nil)
		}
		p := fullPasskey(t, person, "pia-1")
		ended, err := s.CreatePasskeyEndingOthers(ctx, p, 5, "s-pia-1", now, added(1))
		wantErr(t, "CreatePasskeyEndingOthers", err, nil)
		var ids []string
		for _, e := range ended {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"s-pia-2", "s-pia-3"}) {
			t.Errorf("CreatePasskeyEndingOthers ended %v, want s-pia-2 and s-pia-3", ids)
		}
		got, err := s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "passkey", p, got)
		for id, want := range map[string]error{"s-pia-1": nil, "s-pia-2": store.ErrNotFound, "s-pia-3": store.ErrNotFound, "s-pia-bob": nil} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after CreatePasskeyEndingOthers", err, want)
		}
		// No other session left: the passkey is stored all the same.
		ended, err = s.CreatePasskeyEndingOthers(ctx, fullPasskey(t, person, "pia-2"), 0, "s-pia-1", now, added(2))
		wantErr(t, "CreatePasskeyEndingOthers again", err, nil)
		if len(ended) != 0 {
			t.Errorf("CreatePasskeyEndingOthers with no other session ended %d", len(ended))
		}
		wantChangeEvents(t, s, person, "passkey_added", "1", "2")
	})

	t.Run("no change from a session that ended", func(t *testing.T) {
		// The session making a change to the person's account (a way
		// in added, replaced, removed or renamed, everyone else logged
		// out, a service's access stopped) is read in the change's
		// write: one that ended after the caller read it (the person
		// logged out everywhere else), or another person's, adds,
		// replaces, removes, renames and revokes nothing, appends no
		// event, and ends no session.
		const person = "ned"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		now := base(t)
		for id, who := range map[string]string{"s-ned-1": person, "s-ned-2": person, "s-ned-bob": "bob"} {
			ss := fullSession(t, id)
			ss.PersonID = who
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		_, err := s.EndSession(ctx, "s-ned-1", now)
		wantErr(t, "EndSession", err, nil)
		kept := fullPasskey(t, person, "ned-kept")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, kept, 0, ""), nil)
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, person, [][]byte{hash("ned-code")}, now), nil)
		g := &store.Grant{ID: "g-ned", ClientID: "bank", PersonID: person, SessionID: "s-ned-2",
			Scope: []string{"openid", store.ScopeOfflineAccess}, CreatedAt: now}
		createGrantsWithTokens(t, s, []grantWithTokens{{g, []*store.Token{refreshToken("rt-ned", g, now, now.Add(time.Hour), time.Time{})}}})
		event := func(typ string) *store.AuditEvent {
			return &store.AuditEvent{Time: now, Type: typ, PersonID: person, Result: store.ResultSuccess}
		}
		for _, except := range []string{"s-ned-1", "s-ned-bob", "s-ned-never"} {
			// With no event too: the passkey's insert is then not its
			// write's only statement.
			err := s.CreatePasskey(ctx, fullPasskey(t, person, "ned-new-"+except), 0, except)
			wantErr(t, "CreatePasskey from "+except, err, store.ErrNotFound)
			err = s.CreatePasskey(ctx, fullPasskey(t, person, "ned-event-"+except), 0, except, event("passkey_added"))
			wantErr(t, "CreatePasskey with an event from "+except, err, store.ErrNotFound)
			err = s.RenamePasskey(ctx, person, kept.CredentialID, "Renamed from "+except, except, event("passkey_renamed"))
			wantErr(t, "RenamePasskey from "+except, err, store.ErrNotFound)
			revoked, err := s.RevokePersonClientGrants(ctx, person, "bank", except, now, event("offline_access_stopped"))
			wantErr(t, "RevokePersonClientGrants from "+except, err, store.ErrNotFound)
			if revoked != 0 {
				t.Errorf("RevokePersonClientGrants from %s revoked %d grants", except, revoked)
			}
			ended, err := s.CreatePasskeyEndingOthers(ctx, fullPasskey(t, person, "ned-new-"+except), 0, except, now, nil)
			wantErr(t, "CreatePasskeyEndingOthers from "+except, err, store.ErrNotFound)
			n := len(ended)
			ended, err = s.ReplaceRecoveryCodesEndingOthers(ctx, person, [][]byte{hash("ned-new-" + except)}, except, now, nil)
			wantErr(t, "ReplaceRecoveryCodesEndingOthers from "+except, err, store.ErrNotFound)
			n += len(ended)
			ended, err = s.DeletePasskey(ctx, person, kept.CredentialID, except, now, nil)
			wantErr(t, "DeletePasskey from "+except, err, store.ErrNotFound)
			n += len(ended)
			ended, err = s.EndPersonSessions(ctx, person, except, now, nil)
			wantErr(t, "EndPersonSessions from "+except, err, store.ErrNotFound)
			if n += len(ended); n != 0 {
				t.Errorf("changes from %s ended %d sessions", except, n)
			}
			for _, name := range []string{"ned-new-", "ned-event-"} {
				_, err = s.GetPasskey(ctx, fullPasskey(t, person, name+except).CredentialID)
				wantErr(t, "GetPasskey "+name+" added from "+except, err, store.ErrNotFound)
			}
		}
		if keys, err := s.ListPasskeys(ctx, person); err != nil || len(keys) != 1 || keys[0].Name != kept.Name {
			t.Errorf("passkeys after changes from sessions not theirs: %d, %v; want the one from before, as it was named", len(keys), err)
		}
		if got, err := s.GetGrant(ctx, g.ID); err != nil || !got.RevokedAt.IsZero() {
			t.Errorf("the grant after changes from sessions not theirs: %v, %v; want it live", got, err)
		}
		if evs, err := s.ListPersonAudit(ctx, person, 10); err != nil || len(evs) != 0 {
			t.Errorf("events after changes from sessions not theirs: %d, %v; want none", len(evs), err)
		}
		// From the session still theirs, each goes through.
		wantErr(t, "RenamePasskey from s-ned-2", s.RenamePasskey(ctx, person, kept.CredentialID, "Ned's phone", "s-ned-2"), nil)
		if n, err := s.RevokePersonClientGrants(ctx, person, "bank", "s-ned-2", now, nil); err != nil || n != 1 {
			t.Errorf("RevokePersonClientGrants from s-ned-2 = %d, %v; want 1, nil", n, err)
		}
		wantErr(t, "CreatePasskey from s-ned-2", s.CreatePasskey(ctx, fullPasskey(t, person, "ned-from-2"), 0, "s-ned-2"), nil)
		has, err := s.HasRecoveryCode(ctx, person, hash("ned-code"))
		if err != nil || !has {
			t.Errorf("the code from before: %v, %v; want it still held", has, err)
		}
		_, err = s.GetSession(ctx, "s-ned-2", now)
		wantErr(t, "GetSession s-ned-2", err, nil)
	})

	t.Run("create errors", func(t *testing.T) {
		p := fullPasskey(t, "alice", "dup")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		dup := fullPasskey(t, "bob", "dup")
		wantErr(t, "CreatePasskey duplicate", s.CreatePasskey(ctx, dup, 0, ""), store.ErrConflict)
		got, err := s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "passkey after failed create", p, got)

		wantErr(t, "CreatePasskey unknown person",
			s.CreatePasskey(ctx, fullPasskey(t, "nobody", "orphan"), 0, ""), store.ErrNotFound)
		_, err = s.GetPasskey(ctx, hash("cred-orphan"))
		wantErr(t, "GetPasskey orphan", err, store.ErrNotFound)
		_, err = s.GetPasskey(ctx, hash("never"))
		wantErr(t, "GetPasskey unknown", err, store.ErrNotFound)
	})

	t.Run("create with person", func(t *testing.T) {
		id := store.Identifier{Scheme: "no:fnr", Value: "41056912345"}
		newcomer := func(pid string) *store.Person {
			return &store.Person{ID: pid, WebAuthnID: hash(pid), GivenName: "Kari", Identifiers: []store.Identifier{id},
				ProofingLevel: "high", CreatedAt: base(t)}
		}
		// A credential taken already fails the write, and the person is
		// not left behind: their ID, user handle and identifier stay free.
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, "alice", "taken"), 0, ""), nil)
		taken := fullPasskey(t, "carol", "taken")
		wantErr(t, "CreatePersonWithPasskey taken credential", s.CreatePersonWithPasskey(ctx, newcomer("carol"), taken), store.ErrConflict)
		_, err := s.GetPerson(ctx, "carol")
		wantErr(t, "GetPerson after failed create", err, store.ErrNotFound)
		_, err = s.GetPersonByWebAuthnID(ctx, hash("carol"))
		wantErr(t, "GetPersonByWebAuthnID after failed create", err, store.ErrNotFound)
		_, err = s.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
		wantErr(t, "GetPersonByIdentifier after failed create", err, store.ErrNotFound)

		person, pk := newcomer("carol"), fullPasskey(t, "carol", "carol")
		wantErr(t, "CreatePersonWithPasskey", s.CreatePersonWithPasskey(ctx, person, pk), nil)
		got, err := s.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
		wantErr(t, "GetPersonByIdentifier", err, nil)
		same(t, "person", person, got)
		gotKey, err := s.GetPasskey(ctx, pk.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "passkey", pk, gotKey)

		// A person who cannot be stored (the identifier is carol's) takes
		// no passkey either.
		orphan := fullPasskey(t, "dave", "dave")
		wantErr(t, "CreatePersonWithPasskey taken identifier", s.CreatePersonWithPasskey(ctx, newcomer("dave"), orphan), store.ErrConflict)
		_, err = s.GetPasskey(ctx, orphan.CredentialID)
		wantErr(t, "GetPasskey after failed create", err, store.ErrNotFound)
		_, err = s.GetPerson(ctx, "dave")
		wantErr(t, "GetPerson after failed create", err, store.ErrNotFound)
	})

	t.Run("list", func(t *testing.T) {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "lister", WebAuthnID: hash("lister")}), nil)
		got, err := s.ListPasskeys(ctx, "lister")
		wantErr(t, "ListPasskeys", err, nil)
		if len(got) != 0 {
			t.Fatalf("ListPasskeys of a person without passkeys = %d", len(got))
		}
		want := []*store.Passkey{fullPasskey(t, "lister", "l1"), fullPasskey(t, "lister", "l2")}
		want[1].CreatedAt = want[1].CreatedAt.Add(time.Minute)
		for _, p := range want {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		}
		got, err = s.ListPasskeys(ctx, "lister")
		wantErr(t, "ListPasskeys", err, nil)
		sortPasskeys(got)
		sortPasskeys(want)
		same(t, "ListPasskeys", want, got)
	})

	t.Run("update use", func(t *testing.T) {
		p := fullPasskey(t, "bob", "use")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)

		use := store.PasskeyUse{SignCount: 42, BackupState: true, LastUsedAt: base(t).Add(2 * time.Hour)}
		wantErr(t, "UpdatePasskeyUse", s.UpdatePasskeyUse(ctx, p.CredentialID, 41, use), nil)
		p.SignCount, p.BackupState, p.LastUsedAt = use.SignCount, use.BackupState, use.LastUsedAt
		got, err := s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "passkey after use", p, got)

		stale := store.PasskeyUse{SignCount: 43, LastUsedAt: base(t).Add(3 * time.Hour)}
		wantErr(t, "UpdatePasskeyUse stale count", s.UpdatePasskeyUse(ctx, p.CredentialID, 41, stale), store.ErrConflict)
		got, err = s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "passkey after stale update", p, got)

		wantErr(t, "UpdatePasskeyUse unknown",
			s.UpdatePasskeyUse(ctx, hash("never"), 0, use), store.ErrNotFound)

		// Authenticators that do not count keep 0: 0 → 0 is a valid swap.
		z := &store.Passkey{CredentialID: hash("zero-count"), PersonID: "bob"}
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, z, 0, ""), nil)
		wantErr(t, "UpdatePasskeyUse 0→0",
			s.UpdatePasskeyUse(ctx, z.CredentialID, 0, store.PasskeyUse{LastUsedAt: base(t)}), nil)
	})

	t.Run("concurrent update use", func(t *testing.T) {
		p := fullPasskey(t, "bob", "contested")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		errs := race(contenders, func(i int) error {
			return s.UpdatePasskeyUse(ctx, p.CredentialID, p.SignCount,
				store.PasskeyUse{SignCount: p.SignCount + 1 + uint32(i), LastUsedAt: base(t)})
		})
		w := oneWinner(t, errs, store.ErrConflict)
		got, err := s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		if w >= 0 && got.SignCount != p.SignCount+1+uint32(w) {
			t.Errorf("SignCount = %d, want the winner's %d", got.SignCount, p.SignCount+1+uint32(w))
		}
	})

	t.Run("delete", func(t *testing.T) {
		p := fullPasskey(t, "alice", "del")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		wantErr(t, "DeletePasskey by another person", deletePasskey(ctx, s, "bob", p.CredentialID), store.ErrNotFound)
		_, err := s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey after refused delete", err, nil)
		wantErr(t, "DeletePasskey", deletePasskey(ctx, s, "alice", p.CredentialID), nil)
		_, err = s.GetPasskey(ctx, p.CredentialID)
		wantErr(t, "GetPasskey deleted", err, store.ErrNotFound)
		wantErr(t, "DeletePasskey again", deletePasskey(ctx, s, "alice", p.CredentialID), store.ErrNotFound)
	})

	t.Run("delete keeps a way in", func(t *testing.T) {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "erin", WebAuthnID: hash("erin")}), nil)
		first, last := fullPasskey(t, "erin", "erin-1"), fullPasskey(t, "erin", "erin-2")
		for _, p := range []*store.Passkey{first, last} {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		}
		wantErr(t, "DeletePasskey of one of two", deletePasskey(ctx, s, "erin", first.CredentialID), nil)
		wantErr(t, "DeletePasskey of the last, no codes", deletePasskey(ctx, s, "erin", last.CredentialID), store.ErrConflict)
		_, err := s.GetPasskey(ctx, last.CredentialID)
		wantErr(t, "GetPasskey after a refused delete", err, nil)
		// A help desk code expires within a day: it keeps no way in.
		_, err = s.IssueDeskCode(ctx, "erin", hash("erin-desk"), base(t).Add(time.Hour), base(t), false, nil)
		wantErr(t, "IssueDeskCode", err, nil)
		wantErr(t, "DeletePasskey of the last, a help desk code left", deletePasskey(ctx, s, "erin", last.CredentialID), store.ErrConflict)
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "erin", [][]byte{hash("erin-code")}, base(t)), nil)
		wantErr(t, "DeletePasskey of the last, a code left", deletePasskey(ctx, s, "erin", last.CredentialID), nil)
	})

	t.Run("concurrent delete keeps a way in", func(t *testing.T) {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "frank", WebAuthnID: hash("frank")}), nil)
		keys := make([]*store.Passkey, contenders)
		for i := range keys {
			keys[i] = fullPasskey(t, "frank", fmt.Sprint("frank-", i))
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, keys[i], 0, ""), nil)
		}
		errs := race(contenders, func(i int) error { return deletePasskey(ctx, s, "frank", keys[i].CredentialID) })
		removed := 0
		for i, err := range errs {
			switch {
			case err == nil:
				removed++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("DeletePasskey %d: %v, want nil or ErrConflict", i, err)
			}
		}
		left, err := s.ListPasskeys(ctx, "frank")
		wantErr(t, "ListPasskeys", err, nil)
		if removed != contenders-1 || len(left) != 1 {
			t.Errorf("%d of %d concurrent removals succeeded, %d passkeys left; want all but one removed and one left", removed, contenders, len(left))
		}
	})

	t.Run("create at the cap", func(t *testing.T) {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "gina", WebAuthnID: hash("gina")}), nil)
		wantErr(t, "CreatePasskey below the cap", s.CreatePasskey(ctx, fullPasskey(t, "gina", "gina-1"), 2, ""), nil)
		wantErr(t, "CreatePasskey to the cap", s.CreatePasskey(ctx, fullPasskey(t, "gina", "gina-2"), 2, ""), nil)
		over := fullPasskey(t, "gina", "gina-3")
		wantErr(t, "CreatePasskey over the cap", s.CreatePasskey(ctx, over, 2, ""), store.ErrLimit)
		_, err := s.GetPasskey(ctx, over.CredentialID)
		wantErr(t, "GetPasskey refused over the cap", err, store.ErrNotFound)
		wantErr(t, "CreatePasskey without a cap", s.CreatePasskey(ctx, over, 0, ""), nil)
		wantErr(t, "CreatePasskey capped, no person",
			s.CreatePasskey(ctx, fullPasskey(t, "nobody", "capped-orphan"), 2, ""), store.ErrNotFound)
	})

	t.Run("concurrent create keeps the cap", func(t *testing.T) {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "hugo", WebAuthnID: hash("hugo")}), nil)
		const max = 3
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, "hugo", "hugo-first"), max, ""), nil)
		keys := make([]*store.Passkey, contenders)
		for i := range keys {
			keys[i] = fullPasskey(t, "hugo", fmt.Sprint("hugo-", i))
		}
		errs := race(contenders, func(i int) error { return s.CreatePasskey(ctx, keys[i], max, "") })
		added := 0
		for i, err := range errs {
			switch {
			case err == nil:
				added++
			case !errors.Is(err, store.ErrLimit):
				t.Errorf("addition %d: %v, want nil or ErrLimit", i, err)
			}
		}
		got, err := s.ListPasskeys(ctx, "hugo")
		wantErr(t, "ListPasskeys", err, nil)
		if added != max-1 || len(got) != max {
			t.Errorf("%d of %d concurrent additions succeeded, %d passkeys held; want %d added and %d held", added, contenders, len(got), max-1, max)
		}
	})

	t.Run("delete with its events", func(t *testing.T) {
		const person = "ivy"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		first, last := fullPasskey(t, person, "ivy-1"), fullPasskey(t, person, "ivy-2")
		for _, p := range []*store.Passkey{first, last} {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		}
		removed := func(n int) *store.AuditEvent {
			return &store.AuditEvent{Time: base(t), Type: "passkey_removed", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"n": fmt.Sprint(n)}}
		}
		wantErr(t, "DeletePasskey with events", deletePasskey(ctx, s, person, first.CredentialID, removed(1), removed(2)), nil)
		wantErr(t, "DeletePasskey gone, with an event", deletePasskey(ctx, s, person, first.CredentialID, removed(3)), store.ErrNotFound)
		wantErr(t, "DeletePasskey of the last, with an event", deletePasskey(ctx, s, person, last.CredentialID, removed(4)), store.ErrConflict)
		wantChangeEvents(t, s, person, "passkey_removed", "1", "2")
	})

	t.Run("delete ends the other sessions in its write", func(t *testing.T) {
		const person = "lou"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: "lou-other", WebAuthnID: hash("lou-other")}), nil)
		first, last := fullPasskey(t, person, "lou-1"), fullPasskey(t, person, "lou-2")
		for _, p := range []*store.Passkey{first, last} {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		}
		for id, who := range map[string]string{"s-lou-1": person, "s-lou-2": person, "s-lou-3": person, "s-lou-other": "lou-other"} {
			ss := fullSession(t, id)
			ss.PersonID = who
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		now := base(t)
		removed := func(n int) func(int) []*store.AuditEvent {
			return func(ended int) []*store.AuditEvent {
				return []*store.AuditEvent{{Time: now, Type: "passkey_removed", PersonID: person, Result: store.ResultSuccess,
					Details: map[string]string{"n": fmt.Sprint(n), "sessions_ended": fmt.Sprint(ended)}}}
			}
		}
		// Refused: the last way in, or not the person's passkey. No
		// session ends.
		for _, c := range []struct {
			who  string
			cred []byte
			want error
		}{{"lou-other", first.CredentialID, store.ErrNotFound}, {person, []byte("no-such-passkey"), store.ErrNotFound}} {
			ended, err := s.DeletePasskey(ctx, c.who, c.cred, "s-lou-1", now, removed(0))
			wantErr(t, "DeletePasskey refused", err, c.want)
			if len(ended) != 0 {
				t.Errorf("a refused DeletePasskey ended %d sessions", len(ended))
			}
		}
		ended, err := s.DeletePasskey(ctx, person, first.CredentialID, "s-lou-1", now, removed(1))
		wantErr(t, "DeletePasskey", err, nil)
		var ids []string
		for _, e := range ended {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"s-lou-2", "s-lou-3"}) {
			t.Errorf("DeletePasskey ended %v, want s-lou-2 and s-lou-3", ids)
		}
		for id, want := range map[string]error{"s-lou-1": nil, "s-lou-2": store.ErrNotFound, "s-lou-3": store.ErrNotFound, "s-lou-other": nil} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after DeletePasskey", err, want)
		}
		ended, err = s.DeletePasskey(ctx, person, last.CredentialID, "s-lou-1", now, removed(2))
		wantErr(t, "DeletePasskey of the last", err, store.ErrConflict)
		if len(ended) != 0 {
			t.Errorf("a refused DeletePasskey ended %d sessions", len(ended))
		}
		_, err = s.GetSession(ctx, "s-lou-1", now)
		wantErr(t, "GetSession kept", err, nil)
		wantChangeEvents(t, s, person, "passkey_removed", "1")
		got, err := s.ListPersonAudit(ctx, person, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if len(got) != 1 || got[0].Details["sessions_ended"] != "2" {
			t.Errorf("events %+v, want one counting 2 sessions ended", got)
		}
	})

	t.Run("rename", func(t *testing.T) {
		const person = "nell"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		phone, laptop := fullPasskey(t, person, "nell-1"), fullPasskey(t, person, "nell-2")
		for _, p := range []*store.Passkey{phone, laptop} {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, p, 0, ""), nil)
		}
		renamed := func(n int) *store.AuditEvent {
			return &store.AuditEvent{Time: base(t), Type: "passkey_renamed", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"n": fmt.Sprint(n)}}
		}
		wantErr(t, "RenamePasskey", s.RenamePasskey(ctx, person, phone.CredentialID, "Telefon på hytta", "", renamed(1), renamed(2)), nil)
		wantErr(t, "RenamePasskey to another case of its own name", s.RenamePasskey(ctx, person, phone.CredentialID, "TELEFON på hytta", "", renamed(3)), nil)
		wantErr(t, "RenamePasskey to the other's name in another case", s.RenamePasskey(ctx, person, laptop.CredentialID, "telefon PÅ HYTTA", "", renamed(4)), store.ErrConflict)
		wantErr(t, "RenamePasskey by another person", s.RenamePasskey(ctx, "bob", laptop.CredentialID, "Bob's now", "", renamed(5)), store.ErrNotFound)
		wantErr(t, "RenamePasskey of no passkey", s.RenamePasskey(ctx, person, hash("no such credential"), "Gone", "", renamed(6)), store.ErrNotFound)
		wantErr(t, "RenamePasskey of no person", s.RenamePasskey(ctx, "nobody", laptop.CredentialID, "Nobody's", "", renamed(7)), store.ErrNotFound)
		got, err := s.ListPasskeys(ctx, person)
		wantErr(t, "ListPasskeys", err, nil)
		sortPasskeys(got)
		names := []string{got[0].Name, got[1].Name}
		want := []string{"TELEFON på hytta", laptop.Name}
		if !bytes.Equal(got[0].CredentialID, phone.CredentialID) {
			want[0], want[1] = want[1], want[0]
		}
		if !slices.Equal(names, want) {
			t.Errorf("names after the renames %q, want %q: only the renames that succeeded change a name", names, want)
		}
		// Everything else about the passkey stays as it was.
		phone.Name = "TELEFON på hytta"
		one, err := s.GetPasskey(ctx, phone.CredentialID)
		wantErr(t, "GetPasskey", err, nil)
		same(t, "renamed passkey", phone, one)
		wantChangeEvents(t, s, person, "passkey_renamed", "1", "2", "3")

		// A blocked person's account does not change until the help
		// desk lifts the block.
		const blocked = "nell-blocked"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: blocked, WebAuthnID: hash(blocked)}), nil)
		theirs := fullPasskey(t, blocked, "nell-blocked-1")
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, theirs, 0, ""), nil)
		_, err = s.BlockPerson(ctx, blocked, "stolen phone", base(t), nil)
		wantErr(t, "BlockPerson", err, nil)
		wantErr(t, "RenamePasskey of a blocked person", s.RenamePasskey(ctx, blocked, theirs.CredentialID, "Mine now", "", renamed(8)), store.ErrBlocked)
		if one, err := s.GetPasskey(ctx, theirs.CredentialID); err != nil || one.Name != theirs.Name {
			t.Errorf("a blocked person's passkey after a refused rename: %v, %v; want its name kept", one, err)
		}
		wantChangeEvents(t, s, blocked, "passkey_renamed")
	})

	t.Run("concurrent renames to one name", func(t *testing.T) {
		const person = "otto"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		keys := make([]*store.Passkey, contenders)
		for i := range keys {
			keys[i] = fullPasskey(t, person, fmt.Sprint("otto-", i))
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, keys[i], 0, ""), nil)
		}
		errs := race(contenders, func(i int) error { return s.RenamePasskey(ctx, person, keys[i].CredentialID, "Work laptop", "") })
		renamed := 0
		for i, err := range errs {
			switch {
			case err == nil:
				renamed++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("RenamePasskey %d: %v, want nil or ErrConflict", i, err)
			}
		}
		got, err := s.ListPasskeys(ctx, person)
		wantErr(t, "ListPasskeys", err, nil)
		named := 0
		for _, p := range got {
			if p.Name == "Work laptop" {
				named++
			}
		}
		if renamed != 1 || named != 1 {
			t.Errorf("%d of %d concurrent renames to one name succeeded, %d passkeys hold it; want one of each", renamed, contenders, named)
		}
	})

	t.Run("create with its events", func(t *testing.T) {
		const person = "jon"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		added := func(who string, n int) *store.AuditEvent {
			return &store.AuditEvent{Time: base(t), Type: "passkey_added", PersonID: who, Result: store.ResultSuccess,
				Details: map[string]string{"n": fmt.Sprint(n)}}
		}
		first := fullPasskey(t, person, "jon-1")
		wantErr(t, "CreatePasskey with events", s.CreatePasskey(ctx, first, 0, "", added(person, 1), added(person, 2)), nil)
		wantErr(t, "CreatePasskey at a cap, with an event", s.CreatePasskey(ctx, fullPasskey(t, person, "jon-2"), 2, "", added(person, 3)), nil)
		wantErr(t, "CreatePasskey past the cap, with an event", s.CreatePasskey(ctx, fullPasskey(t, person, "jon-3"), 2, "", added(person, 4)), store.ErrLimit)
		wantErr(t, "CreatePasskey taken, with an event", s.CreatePasskey(ctx, first, 0, "", added(person, 5)), store.ErrConflict)
		wantErr(t, "CreatePasskey taken under a cap, with an event", s.CreatePasskey(ctx, first, 9, "", added(person, 6)), store.ErrConflict)
		wantChangeEvents(t, s, person, "passkey_added", "1", "2", "3")

		const newcomer = "kim"
		p := fullPerson(t, newcomer)
		wantErr(t, "CreatePersonWithPasskey with an event", s.CreatePersonWithPasskey(ctx, p, fullPasskey(t, newcomer, "kim-1"), added(newcomer, 1)), nil)
		again := fullPerson(t, "kim-again")
		wantErr(t, "CreatePersonWithPasskey, its passkey taken, with an event",
			s.CreatePersonWithPasskey(ctx, again, fullPasskey(t, again.ID, "kim-1"), added(again.ID, 2)), store.ErrConflict)
		wantChangeEvents(t, s, newcomer, "passkey_added", "1")
		wantChangeEvents(t, s, again.ID, "passkey_added")
	})

}

// wantChangeEvents checks that person's audit events are of type typ,
// their Details "n" the ns in that order, appended one after the other,
// and that the whole chain verifies.
// deletePasskey is DeletePasskey ending no session but the person's
// other ones, with events, if any, appended in its write.
func deletePasskey(ctx context.Context, s store.Store, personID string, credentialID []byte, events ...*store.AuditEvent) error {
	_, err := s.DeletePasskey(ctx, personID, credentialID, "", time.Now(), func(int) []*store.AuditEvent { return events })
	return err
}

func wantChangeEvents(t *testing.T, s store.Store, person, typ string, ns ...string) {
	t.Helper()
	got, err := s.ListPersonAudit(t.Context(), person, 100)
	wantErr(t, "ListPersonAudit", err, nil)
	slices.SortFunc(got, func(a, b *store.AuditEvent) int { return int(a.Seq - b.Seq) })
	var gotNs []string
	for i, e := range got {
		if e.Type != typ || (i > 0 && e.Seq != got[i-1].Seq+1) {
			t.Errorf("event %d: %s at seq %d, want %s right after the one before", i, e.Type, e.Seq, typ)
		}
		gotNs = append(gotNs, e.Details["n"])
	}
	if !slices.Equal(gotNs, ns) {
		t.Errorf("events stored %v, want %v: each stored if and only if its change is", gotNs, ns)
	}
	all, err := s.ListAudit(t.Context(), 0, 1000)
	wantErr(t, "ListAudit", err, nil)
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Errorf("VerifyAuditChain: %v", err)
	}
}

func testRecoveryCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	for _, p := range []string{"carol", "dave"} {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: p, WebAuthnID: hash(p)}), nil)
	}
	count := func(t *testing.T, person string, want int) {
		t.Helper()
		n, err := s.CountRecoveryCodes(ctx, person)
		wantErr(t, "CountRecoveryCodes", err, nil)
		if n != want {
			t.Errorf("CountRecoveryCodes(%s) = %d, want %d", person, n, want)
		}
	}

	t.Run("use", func(t *testing.T) {
		count(t, "carol", 0)
		codes := [][]byte{hash("c1"), hash("c2"), hash("c3")}
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "carol", codes, now), nil)
		count(t, "carol", 3)
		count(t, "dave", 0)

		who, err := s.UseRecoveryCode(ctx, hash("c2"), now.Add(time.Minute))
		wantErr(t, "UseRecoveryCode", err, nil)
		if who != "carol" {
			t.Errorf("UseRecoveryCode = %q, want carol", who)
		}
		count(t, "carol", 2)
		_, err = s.UseRecoveryCode(ctx, hash("c2"), now.Add(2*time.Minute))
		wantErr(t, "UseRecoveryCode again", err, store.ErrNotFound)
		_, err = s.UseRecoveryCode(ctx, hash("never"), now)
		wantErr(t, "UseRecoveryCode unknown", err, store.ErrNotFound)
		count(t, "carol", 2)

		// A use restored at another time, or of an unused code, changes nothing.
		wantErr(t, "RestoreRecoveryCode other time", s.RestoreRecoveryCode(ctx, hash("c2"), now), store.ErrNotFound)
		wantErr(t, "RestoreRecoveryCode unused", s.RestoreRecoveryCode(ctx, hash("c1"), now.Add(time.Minute)), store.ErrNotFound)
		count(t, "carol", 2)
		wantErr(t, "RestoreRecoveryCode", s.RestoreRecoveryCode(ctx, hash("c2"), now.Add(time.Minute)), nil)
		count(t, "carol", 3)
		who, err = s.UseRecoveryCode(ctx, hash("c2"), now.Add(3*time.Minute))
		if err != nil || who != "carol" {
			t.Errorf("UseRecoveryCode after restore = %q, %v", who, err)
		}
		count(t, "carol", 2)

		// What the person holds, said without a code.
		for _, c := range []struct {
			person string
			want   store.RecoveryCodeSet
		}{
			{"carol", store.RecoveryCodeSet{Left: 2, Used: 1, MadeAt: now, LastUsedAt: now.Add(3 * time.Minute)}},
			{"dave", store.RecoveryCodeSet{}},
			{"nobody", store.RecoveryCodeSet{}},
		} {
			got, err := s.DescribeRecoveryCodes(ctx, c.person)
			wantErr(t, "DescribeRecoveryCodes "+c.person, err, nil)
			same(t, "the recovery codes of "+c.person, c.want, got)
		}
	})

	t.Run("replace", func(t *testing.T) {
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "dave", [][]byte{hash("d1"), hash("d2")}, now), nil)
		wantErr(t, "ReplaceRecoveryCodes again", s.ReplaceRecoveryCodes(ctx, "dave", [][]byte{hash("d3")}, now), nil)
		count(t, "dave", 1)
		_, err := s.UseRecoveryCode(ctx, hash("d1"), now)
		wantErr(t, "UseRecoveryCode replaced code", err, store.ErrNotFound)
		has := func(person, code string, want bool) {
			t.Helper()
			got, err := s.HasRecoveryCode(ctx, person, hash(code))
			wantErr(t, "HasRecoveryCode", err, nil)
			if got != want {
				t.Errorf("HasRecoveryCode(%s, %s) = %v, want %v", person, code, got, want)
			}
		}
		has("dave", "d3", true)
		has("dave", "d1", false)
		has("carol", "d3", false)
		has("nobody", "d3", false)
		who, err := s.UseRecoveryCode(ctx, hash("d3"), now)
		wantErr(t, "UseRecoveryCode new code", err, nil)
		if who != "dave" {
			t.Errorf("UseRecoveryCode = %q, want dave", who)
		}
		has("dave", "d3", true) // used, still held
		wantErr(t, "ReplaceRecoveryCodes with none", s.ReplaceRecoveryCodes(ctx, "dave", nil, now), nil)
		has("dave", "d3", false)
		count(t, "dave", 0)

		wantErr(t, "ReplaceRecoveryCodes unknown person",
			s.ReplaceRecoveryCodes(ctx, "nobody", [][]byte{hash("n1")}, now), store.ErrNotFound)
		wantErr(t, "ReplaceRecoveryCodes unknown person, no codes",
			s.ReplaceRecoveryCodes(ctx, "nobody", nil, now), store.ErrNotFound)
	})

	t.Run("concurrent use", func(t *testing.T) {
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "carol", [][]byte{hash("race")}, now), nil)
		whos := make([]string, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			whos[i], err = s.UseRecoveryCode(ctx, hash("race"), now)
			return err
		})
		if w := oneWinner(t, errs, store.ErrNotFound); w >= 0 && whos[w] != "carol" {
			t.Errorf("winner got %q, want carol", whos[w])
		}
		count(t, "carol", 0)
	})

	t.Run("replace with its events", func(t *testing.T) {
		replaced := func(person string, n int) *store.AuditEvent {
			return &store.AuditEvent{Time: now, Type: "recovery_codes_regenerated", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"n": fmt.Sprint(n)}}
		}
		wantErr(t, "ReplaceRecoveryCodes with events",
			s.ReplaceRecoveryCodes(ctx, "dave", [][]byte{hash("d-ev")}, now, replaced("dave", 1), replaced("dave", 2)), nil)
		count(t, "dave", 1)
		wantErr(t, "ReplaceRecoveryCodes unknown person, with an event",
			s.ReplaceRecoveryCodes(ctx, "nobody", [][]byte{hash("n-ev")}, now, replaced("nobody", 3)), store.ErrNotFound)
		// A code taken already: nothing replaced, no event.
		wantErr(t, "ReplaceRecoveryCodes with a code taken, with an event",
			s.ReplaceRecoveryCodes(ctx, "carol", [][]byte{hash("d-ev")}, now, replaced("carol", 4)), store.ErrConflict)
		wantChangeEvents(t, s, "dave", "recovery_codes_regenerated", "1", "2")
		wantChangeEvents(t, s, "nobody", "recovery_codes_regenerated")
		wantChangeEvents(t, s, "carol", "recovery_codes_regenerated")
	})

	t.Run("replace ends the other sessions in its write", func(t *testing.T) {
		const person = "rita"
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: hash(person)}), nil)
		for id, who := range map[string]string{"s-rita-1": person, "s-rita-2": person, "s-rita-3": person, "s-rita-carol": "carol"} {
			ss := fullSession(t, id)
			ss.PersonID = who
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		replaced := func(n int) func(int) []*store.AuditEvent {
			return func(ended int) []*store.AuditEvent {
				return []*store.AuditEvent{{Time: now, Type: "recovery_codes_regenerated", PersonID: person, Result: store.ResultSuccess,
					Details: map[string]string{"n": fmt.Sprint(n), "sessions_ended": fmt.Sprint(ended)}}}
			}
		}
		// Refused: a code taken already, or no such person. Nothing is
		// replaced and no session ends.
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "carol", [][]byte{hash("rita-taken")}, now), nil)
		for _, c := range []struct {
			who  string
			code []byte
			want error
		}{{person, hash("rita-taken"), store.ErrConflict}, {"nobody", hash("rita-nobody"), store.ErrNotFound}} {
			ended, err := s.ReplaceRecoveryCodesEndingOthers(ctx, c.who, [][]byte{hash("rita-new"), c.code}, "s-rita-1", now, replaced(0))
			wantErr(t, "ReplaceRecoveryCodesEndingOthers refused", err, c.want)
			if len(ended) != 0 {
				t.Errorf("a refused ReplaceRecoveryCodesEndingOthers ended %d sessions", len(ended))
			}
		}
		count(t, person, 0)
		for _, id := range []string{"s-rita-1", "s-rita-2", "s-rita-3"} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after a refused replacement", err, nil)
		}
		ended, err := s.ReplaceRecoveryCodesEndingOthers(ctx, person, [][]byte{hash("rita-1"), hash("rita-2")}, "s-rita-1", now, replaced(1))
		wantErr(t, "ReplaceRecoveryCodesEndingOthers", err, nil)
		var ids []string
		for _, e := range ended {
			ids = append(ids, e.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"s-rita-2", "s-rita-3"}) {
			t.Errorf("ReplaceRecoveryCodesEndingOthers ended %v, want s-rita-2 and s-rita-3", ids)
		}
		count(t, person, 2)
		for id, want := range map[string]error{"s-rita-1": nil, "s-rita-2": store.ErrNotFound, "s-rita-3": store.ErrNotFound, "s-rita-carol": nil} {
			_, err := s.GetSession(ctx, id, now)
			wantErr(t, "GetSession "+id+" after ReplaceRecoveryCodesEndingOthers", err, want)
		}
		// No other session left: the codes are replaced all the same.
		ended, err = s.ReplaceRecoveryCodesEndingOthers(ctx, person, [][]byte{hash("rita-3")}, "s-rita-1", now, replaced(2))
		wantErr(t, "ReplaceRecoveryCodesEndingOthers again", err, nil)
		if len(ended) != 0 {
			t.Errorf("ReplaceRecoveryCodesEndingOthers with no other session ended %d", len(ended))
		}
		count(t, person, 1)
		wantChangeEvents(t, s, person, "recovery_codes_regenerated", "1", "2")
		got, err := s.ListPersonAudit(ctx, person, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if len(got) != 2 || got[1].Details["sessions_ended"] != "2" || got[0].Details["sessions_ended"] != "0" {
			t.Errorf("events %+v, want the first counting 2 sessions ended, the second none", got)
		}
	})
}

// testLinkNoSecondNumber checks that a link adds no identifier of a
// scheme the person holds one of, read in the link's own write, so that
// two links at once cannot each add a different number of one scheme
// (ADR 42); the help desk's AddIdentifier still does (ADR 30).
func testLinkNoSecondNumber(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	const person = "numbered"
	p := fullPerson(t, person)
	wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
	ss := fullSession(t, "s-numbered-other")
	ss.PersonID = person
	wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
	called := false
	linked := func([]store.LevelChange, int) []*store.AuditEvent {
		called = true
		return []*store.AuditEvent{{Time: now, Type: "link", PersonID: person, Result: store.ResultSuccess}}
	}
	secondFnr := store.Identifier{Scheme: "no:fnr", Value: "fnr-numbered-second"}
	dnr := func(v string) store.Identifier { return store.Identifier{Scheme: "no:dnr", Value: v} }
	for name, add := range map[string][]store.Identifier{
		"a second of a scheme held":              {secondFnr},
		"a second of a scheme held, with others": {dnr("dnr-numbered-beside"), secondFnr},
		"two of one scheme":                      {dnr("dnr-numbered-1"), dnr("dnr-numbered-2")},
	} {
		ended, err := s.LinkIdentifiers(ctx, person, add, nil, "", now, linked)
		wantErr(t, "LinkIdentifiers of "+name, err, store.ErrSecondNumber)
		if len(ended) != 0 {
			t.Errorf("%s: ended %d sessions, want none", name, len(ended))
		}
		for _, id := range add {
			_, err := s.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
			wantErr(t, name+": GetPersonByIdentifier of a refused identifier", err, store.ErrNotFound)
		}
	}
	if called {
		t.Error("events asked for by a refused link")
	}
	got, err := s.GetPerson(ctx, person)
	wantErr(t, "GetPerson", err, nil)
	same(t, "person after refused links", p, got)
	if _, err := s.GetSession(ctx, ss.ID, now); err != nil {
		t.Errorf("session after refused links: %v", err)
	}
	// An identifier someone holds is taken before it is a second number.
	_, err = s.LinkIdentifiers(ctx, person, []store.Identifier{p.Identifiers[0]}, nil, "", now, nil)
	wantErr(t, "LinkIdentifiers of one's own identifier", err, store.ErrConflict)

	// Many links at once, each of another number of one scheme the
	// person does not hold: exactly one is added.
	errs := race(contenders, func(i int) error {
		_, err := s.LinkIdentifiers(ctx, person, []store.Identifier{dnr(id("dnr-racer", i))}, nil, "", now, nil)
		return err
	})
	w := oneWinner(t, errs, store.ErrSecondNumber)
	got, err = s.GetPerson(ctx, person)
	wantErr(t, "GetPerson", err, nil)
	if w >= 0 {
		same(t, "identifiers after links at once", append(slices.Clone(p.Identifiers), dnr(id("dnr-racer", w))), got.Identifiers)
	}
	for i := range contenders {
		if i == w {
			continue
		}
		_, err := s.GetPersonByIdentifier(ctx, "no:dnr", id("dnr-racer", i))
		wantErr(t, "GetPersonByIdentifier of a loser's number", err, store.ErrNotFound)
	}

	// The help desk adds a second number of a scheme (ADR 30).
	_, err = s.AddIdentifier(ctx, person, secondFnr, "", "", now, nil)
	wantErr(t, "AddIdentifier of a second number", err, nil)
	got, err = s.GetPersonByIdentifier(ctx, secondFnr.Scheme, secondFnr.Value)
	wantErr(t, "GetPersonByIdentifier of the help desk's number", err, nil)
	if got.ID != person {
		t.Errorf("the help desk's number belongs to %s, want %s", got.ID, person)
	}
}

// testLinkAfterItsSessionEnded: a link names the session it is made
// from (except), and the store reads that the session is still there in
// the same write as the person's identifiers. A removal of a number
// (RemoveIdentifier), which ends every session of the person, landing
// between the caller's look at the session and the link's write would
// otherwise see the number it removed linked again, from a session it
// ended. A session of another person is no session to link from either.
// In each case nothing is stored.
func testLinkAfterItsSessionEnded(t *testing.T, s store.Store) {
	ctx := t.Context()
	const person = "linker-ended"
	p := fullPerson(t, person)
	p.Identifiers = append(p.Identifiers, store.Identifier{Scheme: "no:dnr", Value: "dnr-" + person})
	wantErr(t, "CreatePerson", s.CreatePerson(ctx, p), nil)
	other := fullPerson(t, person+"-other")
	wantErr(t, "CreatePerson", s.CreatePerson(ctx, other), nil)
	for id, owner := range map[string]string{"s-linker-ended": person, "s-linker-ended-other": other.ID} {
		ss := fullSession(t, id)
		ss.PersonID = owner
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
	}
	now := base(t)
	gone := p.Identifiers[2]
	_, err := s.RemoveIdentifier(ctx, person, gone, now, nil)
	wantErr(t, "RemoveIdentifier", err, nil)
	p.Identifiers = p.Identifiers[:2]
	linked := func([]store.LevelChange, int) []*store.AuditEvent {
		return []*store.AuditEvent{{Time: now, Type: "link", PersonID: person, Result: store.ResultSuccess}}
	}
	for _, except := range []string{"s-linker-ended", "s-linker-ended-other", "s-linker-never"} {
		_, err = s.LinkIdentifiers(ctx, person, []store.Identifier{gone}, nil, except, now, linked)
		wantErr(t, "LinkIdentifiers from "+except, err, store.ErrNotFound)
	}
	_, err = s.GetPersonByIdentifier(ctx, gone.Scheme, gone.Value)
	wantErr(t, "GetPersonByIdentifier of the removed number", err, store.ErrNotFound)
	got, err := s.GetPerson(ctx, person)
	wantErr(t, "GetPerson", err, nil)
	same(t, "person after links from ended sessions", p, got)
	if _, err := s.GetSession(ctx, "s-linker-ended-other", now); err != nil {
		t.Errorf("the other person's session after a link named it: %v", err)
	}
	events, err := s.ListPersonAudit(ctx, person, 10)
	wantErr(t, "ListPersonAudit", err, nil)
	if len(events) != 0 {
		t.Errorf("events after links refused: %v", events)
	}
}
