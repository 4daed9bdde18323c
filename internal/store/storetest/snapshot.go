package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// snapshotCounts is what a snapshot test reads of person "p1".
type snapshotCounts struct {
	GivenName, Client               string
	Passkeys, Codes, Sessions       int
	Grants, PersonEvents, AllEvents int
}

// readSnapshotCounts reads p1's records through r at now.
func readSnapshotCounts(ctx context.Context, t *testing.T, r store.Snapshot, now time.Time) snapshotCounts {
	t.Helper()
	var c snapshotCounts
	p, err := r.GetPerson(ctx, "p1")
	wantErr(t, "GetPerson", err, nil)
	cl, err := r.GetClient(ctx, "bank")
	wantErr(t, "GetClient", err, nil)
	keys, err := r.ListPasskeys(ctx, "p1")
	wantErr(t, "ListPasskeys", err, nil)
	codes, err := r.DescribeRecoveryCodes(ctx, "p1")
	wantErr(t, "DescribeRecoveryCodes", err, nil)
	sessions, err := r.ListPersonSessions(ctx, "p1", now)
	wantErr(t, "ListPersonSessions", err, nil)
	grants, err := r.ListPersonGrants(ctx, "p1", now)
	wantErr(t, "ListPersonGrants", err, nil)
	mine, err := r.ListPersonAuditAfter(ctx, "p1", 0, 100)
	wantErr(t, "ListPersonAuditAfter", err, nil)
	all, err := r.ListAuditRange(ctx, store.AuditQuery{})
	wantErr(t, "ListAuditRange", err, nil)
	c.GivenName, c.Client = p.GivenName, cl.Name
	c.Passkeys, c.Codes, c.Sessions, c.Grants = len(keys), codes.Left, len(sessions), len(grants)
	c.PersonEvents, c.AllEvents = len(mine), len(all)
	return c
}

// snapshotReads checks store.Snapshots: reads in a's snapshot see
// nothing that b (the same store, or another node over the same
// database) commits after it began, while b's writes go through
// meanwhile; and the snapshot ends on every path.
func snapshotReads(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t).Add(time.Minute)
	wantErr(t, "AddClient", b.AddClient(ctx, &store.Client{ID: "bank", Name: "Bank", CreatedAt: base(t)}, nil), nil)
	wantErr(t, "CreatePerson", b.CreatePerson(ctx, fullPerson(t, "p1")), nil)
	wantErr(t, "CreatePasskey", b.CreatePasskey(ctx, fullPasskey(t, "p1", "first"), 0, ""), nil)
	wantErr(t, "ReplaceRecoveryCodes", b.ReplaceRecoveryCodes(ctx, "p1", [][]byte{hash("code-1")}, base(t)), nil)
	wantErr(t, "AppendAudit", b.AppendAudit(ctx, &store.AuditEvent{Type: "authentication", PersonID: "p1", Time: base(t)}), nil)
	before := snapshotCounts{GivenName: "Åse Marie", Client: "Bank", Passkeys: 1, Codes: 1, PersonEvents: 1, AllEvents: 1}

	// write commits, through b, a change of every record read: a writer
	// held back by the snapshot fails it by its deadline.
	write := func(t *testing.T) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		wantErr(t, "UpdatePersonProfile", b.UpdatePersonProfile(ctx, "p1", store.Profile{GivenName: "Åse", FamilyName: "Ødegård", BirthDate: "1990-02-28"}), nil)
		wantErr(t, "PutClient", b.PutClient(ctx, &store.Client{ID: "bank", Name: "Bank Renamed", CreatedAt: base(t)}), nil)
		wantErr(t, "CreatePasskey", b.CreatePasskey(ctx, fullPasskey(t, "p1", "second"), 0, ""), nil)
		wantErr(t, "ReplaceRecoveryCodes", b.ReplaceRecoveryCodes(ctx, "p1", [][]byte{hash("code-2"), hash("code-3")}, base(t)), nil)
		wantErr(t, "CreateSession", b.CreateSession(ctx, &store.Session{ID: "s1", PersonID: "p1", Provider: "passkey", Level: "high",
			CreatedAt: base(t), ExpiresAt: base(t).Add(time.Hour)},
			&store.AuditEvent{Type: "authentication", PersonID: "p1", Time: base(t)}), nil)
		g := fullGrant(t, "g1")
		wantErr(t, "CreateGrant", b.CreateGrant(ctx, g), nil)
	}
	after := snapshotCounts{GivenName: "Åse", Client: "Bank Renamed", Passkeys: 2, Codes: 2, Sessions: 1, Grants: 1, PersonEvents: 2, AllEvents: 2}

	t.Run("a write between two reads is not seen", func(t *testing.T) {
		err := a.ReadSnapshot(ctx, func(ctx context.Context, r store.Snapshot) error {
			same(t, "first read", before, readSnapshotCounts(ctx, t, r, now))
			write(t)
			same(t, "second read", before, readSnapshotCounts(ctx, t, r, now))
			return nil
		})
		wantErr(t, "ReadSnapshot", err, nil)
		same(t, "read after the snapshot", after, readSnapshotCounts(ctx, t, a, now))
	})

	t.Run("taken before fn is called", func(t *testing.T) {
		err := a.ReadSnapshot(ctx, func(ctx context.Context, r store.Snapshot) error {
			wantErr(t, "UpdatePersonProfile", b.UpdatePersonProfile(ctx, "p1", store.Profile{GivenName: "Åsa"}), nil)
			p, err := r.GetPerson(ctx, "p1")
			wantErr(t, "GetPerson", err, nil)
			same(t, "given name", "Åse", p.GivenName)
			return nil
		})
		wantErr(t, "ReadSnapshot", err, nil)
	})

	t.Run("ends on every path", func(t *testing.T) {
		errStop := errors.New("stop")
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		// More snapshots than any read pool holds connections: one left
		// open by an error or a panic would hold one for good.
		for i := range 40 {
			err := func() (err error) {
				defer func() {
					if v := recover(); v != nil {
						err = errStop
					}
				}()
				return a.ReadSnapshot(ctx, func(ctx context.Context, r store.Snapshot) error {
					if _, err := r.ListPasskeys(ctx, "p1"); err != nil {
						return err
					}
					if i%2 == 0 {
						panic("stop")
					}
					return errStop
				})
			}()
			wantErr(t, "ReadSnapshot", err, errStop)
		}
		err := a.ReadSnapshot(ctx, func(ctx context.Context, r store.Snapshot) error {
			_, err := r.ListPasskeys(ctx, "p1")
			return err
		})
		wantErr(t, "ReadSnapshot after the others", err, nil)
	})
}
