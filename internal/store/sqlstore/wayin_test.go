package sqlstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestPostgresSessionWaitsForARemovalUnderWay: on PostgreSQL, another
// node's write takes a way in away (its row deleted, not committed yet)
// as a login that used that way in stores its session. The session's
// write must wait for the removal, and then store nothing: under read
// committed, a session committed while the removal is under way would
// be missed by the removal's end of the person's sessions (a statement
// that ran before it) and outlive the way in. The removal here is the
// statements the store's own removals run, on the other node's
// connection, held open.
func TestPostgresSessionWaitsForARemovalUnderWay(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	db, other := openPostgres(t, dsn), openPostgres(t, dsn)
	ctx := context.Background()
	sum := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	tests := []struct {
		name   string
		wayIn  func(person string) store.WayIn
		delete string
		args   func(person string) []any
	}{
		{"passkey removed", func(p string) store.WayIn { return store.WayIn{Passkey: sum("cred-" + p)} },
			"DELETE FROM passkeys WHERE credential_id = $1", func(p string) []any { return []any{sum("cred-" + p)} }},
		{"codes replaced", func(p string) store.WayIn { return store.WayIn{RecoveryCode: sum("code-" + p)} },
			"DELETE FROM recovery_codes WHERE person_id = $1", func(p string) []any { return []any{p} }},
		{"number removed", func(p string) store.WayIn {
			return store.WayIn{Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "fnr-" + p}}}
		}, "DELETE FROM person_identifiers WHERE scheme = 'no:fnr' AND value = $1", func(p string) []any { return []any{"fnr-" + p} }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			person := string(rune('a'+i)) + "-person"
			now := time.Now()
			p := &store.Person{ID: person, WebAuthnID: sum("webauthn-" + person), ProofingLevel: "high", ProofingMethod: "eid",
				Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "fnr-" + person}, {Scheme: "no:dnr", Value: "dnr-" + person}}, CreatedAt: now}
			if err := db.CreatePerson(ctx, p); err != nil {
				t.Fatal(err)
			}
			if err := db.CreatePasskey(ctx, &store.Passkey{CredentialID: sum("cred-" + person), PersonID: person, PublicKey: []byte{1},
				AttestationType: "none", Name: "phone", CreatedAt: now, LastUsedAt: now}, 0, ""); err != nil {
				t.Fatal(err)
			}
			if err := db.ReplaceRecoveryCodes(ctx, person, [][]byte{sum("code-" + person)}, now); err != nil {
				t.Fatal(err)
			}

			removal, err := other.w.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer removal.Rollback()
			if _, err := removal.ExecContext(ctx, "SELECT 1 FROM persons WHERE id = $1 FOR UPDATE", person); err != nil {
				t.Fatal(err)
			}
			if _, err := removal.ExecContext(ctx, tt.delete, tt.args(person)...); err != nil {
				t.Fatal(err)
			}

			stored := make(chan error, 1)
			go func() {
				s := &store.Session{ID: "s-" + person, PersonID: person, CreatedAt: now, ExpiresAt: now.Add(time.Hour), WayIn: tt.wayIn(person)}
				stored <- db.CreateSession(ctx, s, &store.AuditEvent{Time: now, Type: "authentication", PersonID: person, Result: store.ResultSuccess})
			}()
			select {
			case err := <-stored:
				t.Fatalf("the session's write did not wait for the removal under way: %v", err)
			case <-time.After(300 * time.Millisecond):
			}
			if _, err := removal.ExecContext(ctx, "DELETE FROM sessions WHERE person_id = $1", person); err != nil {
				t.Fatal(err)
			}
			if err := removal.Commit(); err != nil {
				t.Fatal(err)
			}
			if err := <-stored; !errors.Is(err, store.ErrWayInGone) {
				t.Errorf("the session's write after the removal: %v, want ErrWayInGone", err)
			}
			live, err := db.ListPersonSessions(ctx, person, now)
			if err != nil || len(live) != 0 {
				t.Errorf("sessions after the removal: %d, %v; want none", len(live), err)
			}
		})
	}
}
