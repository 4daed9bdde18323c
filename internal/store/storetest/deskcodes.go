package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testDeskCodes checks the help desk's one-time codes (store.DeskCodes,
// ADR 62): one a person, good until it expires, used once, left out of
// what the person holds of recovery codes, and never issued to a
// blocked person.
func testDeskCodes(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	day := 24 * time.Hour
	for _, p := range []string{"hilde", "ivar", "jon"} {
		wantErr(t, "CreatePerson", s.CreatePerson(ctx, &store.Person{ID: p, WebAuthnID: hash(p)}), nil)
	}
	issued := func(person string, n int) *store.AuditEvent {
		return &store.AuditEvent{Time: now, Type: "recovery_issued", PersonID: person, Result: store.ResultSuccess,
			Details: map[string]string{"n": fmt.Sprint(n)}}
	}
	use := func(t *testing.T, code string, at time.Time, want error) string {
		t.Helper()
		who, err := s.UseDeskCode(ctx, hash(code), at)
		wantErr(t, "UseDeskCode "+code, err, want)
		return who
	}

	t.Run("use once, before it expires", func(t *testing.T) {
		wantErr(t, "IssueDeskCode", s.IssueDeskCode(ctx, "hilde", hash("desk-h1"), now.Add(day), now, issued("hilde", 1)), nil)
		// A help desk code is none of the person's recovery codes.
		if n, err := s.CountRecoveryCodes(ctx, "hilde"); err != nil || n != 0 {
			t.Errorf("CountRecoveryCodes with a help desk code = %d, %v; want 0", n, err)
		}
		got, err := s.DescribeRecoveryCodes(ctx, "hilde")
		wantErr(t, "DescribeRecoveryCodes", err, nil)
		same(t, "the recovery codes of a person with a help desk code", store.RecoveryCodeSet{}, got)
		_, err = s.UseRecoveryCode(ctx, hash("desk-h1"), now)
		wantErr(t, "UseRecoveryCode of a help desk code", err, store.ErrNotFound)

		if who := use(t, "desk-h1", now.Add(day-time.Second), nil); who != "hilde" {
			t.Errorf("UseDeskCode = %q, want hilde", who)
		}
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
		wantErr(t, "IssueDeskCode", s.IssueDeskCode(ctx, "ivar", hash("desk-i1"), now.Add(day), now, issued("ivar", 1)), nil)
		use(t, "desk-i1", now.Add(day), store.ErrExpired)
		use(t, "desk-i1", now.Add(2*day), store.ErrExpired)
		if err := s.IssueDeskCode(ctx, "ivar", hash("desk-i0"), now, now, issued("ivar", 0)); err == nil {
			t.Error("IssueDeskCode expiring as it is issued: no error")
		}
	})

	t.Run("a new code replaces the one before", func(t *testing.T) {
		wantErr(t, "ReplaceRecoveryCodes", s.ReplaceRecoveryCodes(ctx, "jon", [][]byte{hash("jon-code")}, now), nil)
		wantErr(t, "IssueDeskCode", s.IssueDeskCode(ctx, "jon", hash("desk-j1"), now.Add(day), now, issued("jon", 1)), nil)
		wantErr(t, "IssueDeskCode again", s.IssueDeskCode(ctx, "jon", hash("desk-j2"), now.Add(day), now, issued("jon", 2)), nil)
		use(t, "desk-j1", now, store.ErrNotFound)
		if has, err := s.HasRecoveryCode(ctx, "jon", hash("desk-j1")); err != nil || has {
			t.Errorf("HasRecoveryCode of a replaced help desk code = %v, %v; want false", has, err)
		}
		// The person's recovery codes stay.
		if n, err := s.CountRecoveryCodes(ctx, "jon"); err != nil || n != 1 {
			t.Errorf("CountRecoveryCodes after a help desk code = %d, %v; want 1", n, err)
		}
		// A hash taken: nothing issued, no event.
		wantErr(t, "IssueDeskCode with a hash taken",
			s.IssueDeskCode(ctx, "hilde", hash("desk-j2"), now.Add(day), now, issued("hilde", 3)), store.ErrConflict)
		use(t, "desk-j2", now, nil)
		wantChangeEvents(t, s, "jon", "recovery_issued", "1", "2")
	})

	t.Run("nobody and a blocked person get none", func(t *testing.T) {
		wantErr(t, "IssueDeskCode to nobody",
			s.IssueDeskCode(ctx, "nobody", hash("desk-n"), now.Add(day), now, issued("nobody", 1)), store.ErrNotFound)
		_, err := s.BlockPerson(ctx, "ivar", "stolen phone", now, nil)
		wantErr(t, "BlockPerson", err, nil)
		wantErr(t, "IssueDeskCode to a blocked person",
			s.IssueDeskCode(ctx, "ivar", hash("desk-i2"), now.Add(day), now, issued("ivar", 2)), store.ErrBlocked)
		use(t, "desk-i2", now, store.ErrNotFound)
		wantChangeEvents(t, s, "nobody", "recovery_issued")
	})

	t.Run("concurrent use", func(t *testing.T) {
		wantErr(t, "IssueDeskCode", s.IssueDeskCode(ctx, "hilde", hash("desk-race"), now.Add(day), now, issued("hilde", 4)), nil)
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
