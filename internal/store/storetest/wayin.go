package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testSessionWayIn: a session is stored only if its person still holds
// the way in its login used (Session.WayIn), read in the session's own
// write; otherwise ErrWayInGone, and neither the session nor its events
// are stored.
func testSessionWayIn(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	for _, id := range []string{"wi-owner", "wi-other"} {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, fullPerson(t, id)), nil)
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, id, id), 0, ""), nil)
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, id, [][]byte{hash("code-" + id)}, now), nil)
	}
	if _, err := s.UseRecoveryCode(ctx, hash("code-wi-owner"), now); err != nil {
		t.Fatal(err)
	}
	fnr := func(person string) store.Identifier {
		return store.Identifier{Scheme: "no:fnr", Value: "fnr-" + person}
	}
	nobodys := store.Identifier{Scheme: "no:dnr", Value: "dnr-nobody"}
	own := fullPasskey(t, "wi-owner", "wi-owner").CredentialID
	tests := []struct {
		name  string
		wayIn store.WayIn
		want  error
	}{
		{"nothing named", store.WayIn{}, nil},
		{"the person's passkey", store.WayIn{Passkey: own}, nil},
		{"another's passkey", store.WayIn{Passkey: fullPasskey(t, "wi-other", "wi-other").CredentialID}, store.ErrWayInGone},
		{"an unknown passkey", store.WayIn{Passkey: hash("cred-nobody")}, store.ErrWayInGone},
		{"the person's used code", store.WayIn{RecoveryCode: hash("code-wi-owner")}, nil},
		{"another's code", store.WayIn{RecoveryCode: hash("code-wi-other")}, store.ErrWayInGone},
		{"the person's number", store.WayIn{Identifiers: []store.Identifier{fnr("wi-owner")}}, nil},
		{"the person's number and one nobody holds", store.WayIn{Identifiers: []store.Identifier{nobodys, fnr("wi-owner")}}, nil},
		{"only a number nobody holds", store.WayIn{Identifiers: []store.Identifier{nobodys}}, store.ErrWayInGone},
		{"another's number", store.WayIn{Identifiers: []store.Identifier{fnr("wi-other")}}, store.ErrWayInGone},
		{"the person's number and another's", store.WayIn{Identifiers: []store.Identifier{fnr("wi-owner"), fnr("wi-other")}}, store.ErrWayInGone},
		{"a number of the person's in another scheme", store.WayIn{Identifiers: []store.Identifier{{Scheme: "no:dnr", Value: "fnr-wi-owner"}}}, store.ErrWayInGone},
		{"passkey held, number not", store.WayIn{Passkey: own, Identifiers: []store.Identifier{fnr("wi-other")}}, store.ErrWayInGone},
		{"passkey and number held", store.WayIn{Passkey: own, Identifiers: []store.Identifier{fnr("wi-owner")}}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := &store.Session{ID: fmt.Sprint("s-wi-", i), PersonID: "wi-owner", Provider: "passkey", Level: "high",
				CreatedAt: now, ExpiresAt: now.Add(time.Hour), WayIn: tt.wayIn}
			ev := &store.AuditEvent{Time: now, Type: "authentication", PersonID: "wi-owner", Result: store.ResultSuccess,
				Details: map[string]string{"session": ss.ID}}
			// With events and without: the two are different writes in
			// some backends.
			for _, events := range [][]*store.AuditEvent{{ev}, nil} {
				ss.ID += "-x"
				err := s.CreateSession(ctx, ss, events...)
				wantErr(t, "CreateSession", err, tt.want)
				got, gerr := s.GetSession(ctx, ss.ID, now)
				if tt.want != nil {
					wantErr(t, "GetSession of a session refused", gerr, store.ErrNotFound)
					continue
				}
				wantErr(t, "GetSession", gerr, nil)
				if !got.WayIn.IsZero() {
					t.Errorf("a session read back names a way in: %+v", got.WayIn)
				}
			}
		})
	}
	events, err := s.ListPersonAudit(ctx, "wi-owner", 100)
	wantErr(t, "ListPersonAudit", err, nil)
	stored := 0
	for _, tt := range tests {
		if tt.want == nil {
			stored++
		}
	}
	if len(events) != stored {
		t.Errorf("%d events of the sessions' writes, want %d: one for each session stored, none for those refused", len(events), stored)
	}

	t.Run("taken away", func(t *testing.T) {
		wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, "wi-owner", "wi-second"), 0, ""), nil)
		second := fullPasskey(t, "wi-owner", "wi-second").CredentialID
		_, err := s.DeletePasskey(ctx, "wi-owner", second, "", now, nil)
		wantErr(t, "DeletePasskey", err, nil)
		_, err = s.ReplaceRecoveryCodesEndingOthers(ctx, "wi-owner", [][]byte{hash("code-wi-new")}, "", now, nil)
		wantErr(t, "ReplaceRecoveryCodesEndingOthers", err, nil)
		_, err = s.RemoveIdentifier(ctx, "wi-owner", fnr("wi-owner"), now, nil)
		wantErr(t, "RemoveIdentifier", err, nil)
		for _, c := range []struct {
			name  string
			wayIn store.WayIn
			want  error
		}{
			{"passkey removed", store.WayIn{Passkey: second}, store.ErrWayInGone},
			{"codes replaced", store.WayIn{RecoveryCode: hash("code-wi-owner")}, store.ErrWayInGone},
			{"number removed", store.WayIn{Identifiers: []store.Identifier{fnr("wi-owner")}}, store.ErrWayInGone},
			{"the new code", store.WayIn{RecoveryCode: hash("code-wi-new")}, nil},
			{"a number still held", store.WayIn{Identifiers: []store.Identifier{fnr("wi-owner"), {Scheme: "passport:NOR", Value: "pp-wi-owner"}}}, nil},
		} {
			ss := &store.Session{ID: "s-wi-gone-" + c.name, PersonID: "wi-owner", CreatedAt: now, ExpiresAt: now.Add(time.Hour), WayIn: c.wayIn}
			wantErr(t, "CreateSession with "+c.name, s.CreateSession(ctx, ss), c.want)
		}
	})
}

// sharedSessionWhileWayInGoes races, on two nodes, a login's session
// holding a way in against the write that takes that way in away (a
// passkey removed, codes replaced, a number removed), which ends the
// person's sessions as it commits. Whichever commits first, no session
// is left: the session is either stored first and ended by the removal,
// or refused (ErrWayInGone) because the removal came first.
func sharedSessionWhileWayInGoes(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t)
	const persons = 12
	kinds := []struct {
		name   string
		wayIn  func(person string) store.WayIn
		remove func(s store.Store, person string) error
	}{
		{"passkey", func(p string) store.WayIn { return store.WayIn{Passkey: hash("cred-" + p + "-login")} },
			func(s store.Store, p string) error {
				_, err := s.DeletePasskey(ctx, p, hash("cred-"+p+"-login"), "", now, nil)
				return err
			}},
		{"code", func(p string) store.WayIn { return store.WayIn{RecoveryCode: hash("code-" + p)} },
			func(s store.Store, p string) error {
				_, err := s.ReplaceRecoveryCodesEndingOthers(ctx, p, [][]byte{hash("code-new-" + p)}, "", now, nil)
				return err
			}},
		{"number", func(p string) store.WayIn {
			return store.WayIn{Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "fnr-" + p}}}
		}, func(s store.Store, p string) error {
			_, err := s.RemoveIdentifier(ctx, p, store.Identifier{Scheme: "no:fnr", Value: "fnr-" + p}, now, nil)
			return err
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 2*persons)
			for i := range persons {
				p := fmt.Sprintf("wg-%s-%d", k.name, i)
				wantErr(t, "CreatePerson", a.CreatePerson(ctx, fullPerson(t, p)), nil)
				wantErr(t, "CreatePasskey", a.CreatePasskey(ctx, fullPasskey(t, p, p+"-login"), 0, ""), nil)
				wantErr(t, "CreatePasskey", a.CreatePasskey(ctx, fullPasskey(t, p, p+"-kept"), 0, ""), nil)
				wantErr(t, "ReplaceRecoveryCodes", a.ReplaceRecoveryCodes(ctx, p, [][]byte{hash("code-" + p)}, now), nil)
				// Each node logs some persons in and takes the way in
				// from others, so that both orders of commit happen.
				login, remover := a, b
				if i%2 == 1 {
					login, remover = b, a
				}
				wg.Go(func() {
					ss := &store.Session{ID: "s-" + p, PersonID: p, CreatedAt: now, ExpiresAt: now.Add(time.Hour), WayIn: k.wayIn(p)}
					ev := &store.AuditEvent{Time: now, Type: "authentication", PersonID: p, Result: store.ResultSuccess}
					err := login.CreateSession(ctx, ss, ev)
					if errors.Is(err, store.ErrWayInGone) {
						err = nil
					}
					errs <- err
				})
				wg.Go(func() { errs <- k.remove(remover, p) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("a login's session racing the removal of its way in: %v", err)
				}
			}
			for i := range persons {
				p := fmt.Sprintf("wg-%s-%d", k.name, i)
				for _, s := range []store.Store{a, b} {
					live, err := s.ListPersonSessions(ctx, p, now)
					wantErr(t, "ListPersonSessions", err, nil)
					if len(live) != 0 {
						t.Errorf("%s: a session outlives the removal of the %s it was opened with", p, k.name)
					}
				}
			}
		})
	}
}
