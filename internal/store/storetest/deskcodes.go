package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testDeskCodes checks the help desk's one-time codes (store.DeskCodes,
// ADR 62): one a person, good until it expires, used once, left out of
// what the person holds of recovery codes, issued in one write with the
// end of the person's access (and, if asked, their passkeys), and never
// to a blocked person.
func testDeskCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	day := 24 * time.Hour
	for _, p := range []string{"hilde", "ivar", "jon", "kari"} {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: p, WebAuthnID: hash(p)}), nil)
	}
	// issue issues code to person, its event numbered n.
	issue := func(person, code string, n int, removePasskeys bool) ([]*store.Session, error) {
		return s.IssueDeskCode(ctx, person, hash(code), now.Add(day), now, removePasskeys, func(passkeys, sessions, grants int) []*store.AuditEvent {
			return []*store.AuditEvent{{Time: now, Type: "recovery_issued", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"n": fmt.Sprint(n), "passkeys": fmt.Sprint(passkeys),
					"sessions": fmt.Sprint(sessions), "grants": fmt.Sprint(grants)}}}
		})
	}
	issued := func(t *testing.T, person, code string, n int) {
		t.Helper()
		_, err := issue(person, code, n, false)
		wantErr(t, "IssueDeskCode "+code, err, nil)
	}
	use := func(t *testing.T, code string, at time.Time, want error) string {
		t.Helper()
		who, err := s.UseDeskCode(ctx, hash(code), at)
		wantErr(t, "UseDeskCode "+code, err, want)
		return who
	}

	t.Run("use once, before it expires", func(t *testing.T) {
		issued(t, "hilde", "desk-h1", 1)
		// A help desk code is none of the person's recovery codes.
		if n, err := s.CountRecoveryCodes(ctx, "hilde"); err != nil || n != 0 {
			t.Errorf("CountRecoveryCodes with a help desk code = %d, %v; want 0", n, err)
		}
		got, err := s.DescribeRecoveryCodes(ctx, "hilde")
		wantErr(t, "DescribeRecoveryCodes", err, nil)
		same(t, "the recovery codes of a person with a help desk code", store.RecoveryCodeSet{}, got)
		_, err = s.UseRecoveryCode(ctx, hash("desk-h1"), now)
		wantErr(t, "UseRecoveryCode of a help desk code", err, store.ErrNotFound)

		held := func(person string, want store.DeskCode) {
			t.Helper()
			got, err := s.GetDeskCode(ctx, person)
			wantErr(t, "GetDeskCode "+person, err, nil)
			same(t, "the help desk code of "+person, want, got)
		}
		held("hilde", store.DeskCode{IssuedAt: now, ExpiresAt: now.Add(day)})
		for _, person := range []string{"jon", "nobody"} {
			_, err := s.GetDeskCode(ctx, person)
			wantErr(t, "GetDeskCode of "+person+", who holds none", err, store.ErrNotFound)
		}
		if who := use(t, "desk-h1", now.Add(day-time.Second), nil); who != "hilde" {
			t.Errorf("UseDeskCode = %q, want hilde", who)
		}
		held("hilde", store.DeskCode{IssuedAt: now, ExpiresAt: now.Add(day), UsedAt: now.Add(day - time.Second)})
		use(t, "desk-h1", now.Add(day-time.Second), store.ErrUsed)
		use(t, "desk-never", now, store.ErrNotFound)
		// A session opened with it names it as its way in: still held
		// once used, as a recovery code is.
		if has, err := s.HasRecoveryCode(ctx, "hilde", hash("desk-h1")); err != nil || !has {
			t.Errorf("HasRecoveryCode of a used help desk code = %v, %v; want true", has, err)
		}
		// Given back (the person turned out blocked), it is good again.
		wantErr(t, "RestoreRecoveryCode", s.RestoreRecoveryCode(ctx, hash("desk-h1"), now.Add(day-time.Second)), nil)
		use(t, "desk-h1", now.Add(day-time.Second), nil)
		wantChangeEvents(t, s, "hilde", "recovery_issued", "1")
	})

	t.Run("expired", func(t *testing.T) {
		issued(t, "ivar", "desk-i1", 1)
		use(t, "desk-i1", now.Add(day), store.ErrExpired)
		use(t, "desk-i1", now.Add(2*day), store.ErrExpired)
		if _, err := s.IssueDeskCode(ctx, "ivar", hash("desk-i0"), now, now, false, nil); err == nil {
			t.Error("IssueDeskCode expiring as it is issued: no error")
		}
	})

	t.Run("a new code replaces the one before", func(t *testing.T) {
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "jon", [][]byte{hash("jon-code")}, now), nil)
		issued(t, "jon", "desk-j1", 1)
		issued(t, "jon", "desk-j2", 2)
		use(t, "desk-j1", now, store.ErrNotFound)
		if has, err := s.HasRecoveryCode(ctx, "jon", hash("desk-j1")); err != nil || has {
			t.Errorf("HasRecoveryCode of a replaced help desk code = %v, %v; want false", has, err)
		}
		// The person's recovery codes stay.
		if n, err := s.CountRecoveryCodes(ctx, "jon"); err != nil || n != 1 {
			t.Errorf("CountRecoveryCodes after a help desk code = %d, %v; want 1", n, err)
		}
		// A hash taken: nothing issued, no event.
		_, err := issue("hilde", "desk-j2", 3, false)
		wantErr(t, "IssueDeskCode with a hash taken", err, store.ErrConflict)
		use(t, "desk-j2", now, nil)
		wantChangeEvents(t, s, "jon", "recovery_issued", "1", "2")
		// New recovery codes, made once the person is back, take the
		// help desk code with the old ones.
		issued(t, "jon", "desk-j3", 3)
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "jon", [][]byte{hash("jon-code-2")}, now), nil)
		for _, code := range []string{"desk-j2", "desk-j3"} {
			if has, err := s.HasRecoveryCode(ctx, "jon", hash(code)); err != nil || has {
				t.Errorf("HasRecoveryCode of %s after new recovery codes = %v, %v; want false", code, has, err)
			}
		}
	})

	t.Run("ends access, and removes the passkeys if asked, in its write", func(t *testing.T) {
		for id, who := range map[string]string{"s-kari-1": "kari", "s-kari-2": "kari", "s-kari-jon": "jon"} {
			ss := fullSession(t, id)
			ss.PersonID = who
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		for _, name := range []string{"kari-phone", "kari-tablet"} {
			wantErr(t, "CreatePasskey", s.CreatePasskey(ctx, fullPasskey(t, "kari", name), 0, ""), nil)
		}
		ended, err := issue("kari", "desk-k1", 1, false)
		wantErr(t, "IssueDeskCode keeping the passkeys", err, nil)
		if len(ended) != 2 {
			t.Errorf("IssueDeskCode ended %d sessions, want kari's 2", len(ended))
		}
		if keys, err := s.ListPasskeys(ctx, "kari"); err != nil || len(keys) != 2 {
			t.Errorf("ListPasskeys after a code without removal = %d, %v; want 2", len(keys), err)
		}
		ended, err = issue("kari", "desk-k2", 2, true)
		wantErr(t, "IssueDeskCode removing the passkeys", err, nil)
		if len(ended) != 0 {
			t.Errorf("IssueDeskCode again ended %d sessions, want none left", len(ended))
		}
		if keys, err := s.ListPasskeys(ctx, "kari"); err != nil || len(keys) != 0 {
			t.Errorf("ListPasskeys after a code with removal = %d, %v; want 0", len(keys), err)
		}
		if _, err := s.GetSession(ctx, "s-kari-jon", now); err != nil {
			t.Errorf("another person's session: %v", err)
		}
		got, err := s.ListPersonAudit(ctx, "kari", 10)
		wantErr(t, "ListPersonAudit", err, nil)
		var details []string
		for _, e := range got {
			details = append(details, e.Details["n"]+": "+e.Details["passkeys"]+" "+e.Details["sessions"]+" "+e.Details["grants"])
		}
		same(t, "the events of the codes issued, newest first", []string{"2: 2 0 0", "1: 0 2 0"}, details)
	})

	t.Run("nobody and a blocked person get none", func(t *testing.T) {
		_, err := issue("nobody", "desk-n", 1, true)
		wantErr(t, "IssueDeskCode to nobody", err, store.ErrNotFound)
		_, err = s.BlockPerson(ctx, "ivar", "stolen phone", now, nil)
		wantErr(t, "BlockPerson", err, nil)
		_, err = issue("ivar", "desk-i2", 2, true)
		wantErr(t, "IssueDeskCode to a blocked person", err, store.ErrBlocked)
		use(t, "desk-i2", now, store.ErrNotFound)
		wantChangeEvents(t, s, "nobody", "recovery_issued")
	})

	t.Run("concurrent use", func(t *testing.T) {
		issued(t, "hilde", "desk-race", 4)
		whos := make([]string, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			whos[i], err = s.UseDeskCode(ctx, hash("desk-race"), now.Add(time.Minute))
			return err
		})
		if w := oneWinner(t, errs, store.ErrUsed); w >= 0 && whos[w] != "hilde" {
			t.Errorf("winner got %q, want hilde", whos[w])
		}
	})
}

// testSweptDeskCodes checks that the sweep deletes a help desk code
// SpentDeskCodeAge after it expired, used or not, and no sooner, and
// never a recovery code, which does not expire.
func testSweptDeskCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	day := 24 * time.Hour
	// Each person's code expired (or expires) at exp; used, if not zero,
	// at used.
	codes := []struct {
		person    string
		exp, used time.Time
		kept      bool
	}{
		{"used-long-ago", now.Add(-store.SpentDeskCodeAge - time.Second), now.Add(-store.SpentDeskCodeAge - time.Hour), false},
		{"unused-long-ago", now.Add(-store.SpentDeskCodeAge), time.Time{}, false},
		{"used-lately", now.Add(-store.SpentDeskCodeAge + time.Second), now.Add(-store.SpentDeskCodeAge - time.Hour), true},
		{"unused-lately", now.Add(-time.Second), time.Time{}, true},
		{"live", now.Add(time.Hour), time.Time{}, true},
	}
	for _, c := range codes {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: c.person, WebAuthnID: hash(c.person)}), nil)
		// A recovery code is never swept, however old.
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, c.person, [][]byte{hash("code-" + c.person)}, c.exp.Add(-10*day)), nil)
		_, err := s.IssueDeskCode(ctx, c.person, hash("desk-"+c.person), c.exp, c.exp.Add(-day), false, nil)
		wantErr(t, "IssueDeskCode "+c.person, err, nil)
		if !c.used.IsZero() {
			_, err := s.UseDeskCode(ctx, hash("desk-"+c.person), c.used)
			wantErr(t, "UseDeskCode "+c.person, err, nil)
		}
	}
	n, err := s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired", err, nil)
	if n != 2 {
		t.Errorf("DeleteExpired removed %d records, want the 2 help desk codes long expired", n)
	}
	for _, c := range codes {
		_, err := s.GetDeskCode(ctx, c.person)
		want := error(nil)
		if !c.kept {
			want = store.ErrNotFound
		}
		wantErr(t, "GetDeskCode after the sweep of "+c.person, err, want)
		if n, err := s.CountRecoveryCodes(ctx, c.person); err != nil || n != 1 {
			t.Errorf("CountRecoveryCodes of %s after the sweep = %d, %v; want 1", c.person, n, err)
		}
	}
	// The live code still logs its person in.
	if who, err := s.UseDeskCode(ctx, hash("desk-live"), now); err != nil || who != "live" {
		t.Errorf("UseDeskCode of the live code after the sweep = %q, %v; want live", who, err)
	}
}
