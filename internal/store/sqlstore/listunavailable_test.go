package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/sqlitetest"
	"github.com/varde-eid/varde/internal/store"
)

// A list whose query cannot even start, because another process holds
// the SQLite file's lock past the busy timeout, fails with
// store.ErrUnavailable (503 "try again"), as its rows' errors do, not
// with an error its callers take for a failure of Varde's.
func TestListQueryLockedIsUnavailable(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "varde.db"))
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	hq := store.HealthQuery{Since: now.Add(-time.Hour), Until: now}
	cases := []struct {
		name string
		list func(ctx context.Context) error
	}{
		{"ListClients", func(ctx context.Context) error { _, err := db.ListClients(ctx); return err }},
		{"ListAudit", func(ctx context.Context) error { _, err := db.ListAudit(ctx, 0, 10); return err }},
		{"ListPersonAudit", func(ctx context.Context) error { _, err := db.ListPersonAudit(ctx, "p1", 10); return err }},
		{"ListAuditRange", func(ctx context.Context) error {
			_, err := db.ListAuditRange(ctx, store.AuditQuery{Since: hq.Since, Until: now})
			return err
		}},
		{"ListPasskeys", func(ctx context.Context) error { _, err := db.ListPasskeys(ctx, "p1"); return err }},
		{"ListPublicKeys", func(ctx context.Context) error { _, err := db.ListPublicKeys(ctx, now); return err }},
		{"ListNodeDepartures", func(ctx context.Context) error { _, err := db.ListNodeDepartures(ctx); return err }},
		{"PendingSessionEnds", func(ctx context.Context) error { _, err := db.PendingSessionEnds(ctx, now, 10); return err }},
		{"ListProbes", func(ctx context.Context) error { _, err := db.ListProbes(ctx, hq); return err }},
		{"SummarizeProbes", func(ctx context.Context) error { _, err := db.SummarizeProbes(ctx, hq, time.Minute); return err }},
		{"ListHealthTransitions", func(ctx context.Context) error { _, err := db.ListHealthTransitions(ctx, hq); return err }},
		{"ListIncidents", func(ctx context.Context) error { _, err := db.ListIncidents(ctx, store.IncidentQuery{}); return err }},
		{"ListMaintenance", func(ctx context.Context) error { _, err := db.ListMaintenance(ctx, hq.Since, now); return err }},
		{"ListWebhookDeliveries", func(ctx context.Context) error { _, err := db.ListWebhookDeliveries(ctx, "c1", 10); return err }},
	}
	release := sqlitetest.LockAll(t, db)
	// Each case waits out the busy timeout, all at once on connections
	// of their own.
	db.r.SetMaxOpenConns(len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { errs[i] = c.list(t.Context()) })
	}
	wg.Wait()
	release()
	for i, c := range cases {
		if !store.Unavailable(errs[i]) {
			t.Errorf("%s with the file locked: %v, want store.ErrUnavailable", c.name, errs[i])
		}
	}
	for _, c := range cases {
		if err := c.list(t.Context()); err != nil {
			t.Errorf("%s once the lock is let go: %v", c.name, err)
		}
	}
}

// An integrity check that cannot read the file, because another process
// holds its lock past the busy timeout, says the store is unavailable
// (try again), not that the database is damaged or the check failed.
func TestCheckIntegrityLockedIsUnavailable(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "varde.db"))
	release := sqlitetest.LockAll(t, db)
	err := db.CheckIntegrity(t.Context())
	release()
	if !store.Unavailable(err) || errors.Is(err, ErrCorrupt) {
		t.Errorf("CheckIntegrity with the file locked: %v, want store.ErrUnavailable and not ErrCorrupt", err)
	}
	if err := db.CheckIntegrity(t.Context()); err != nil {
		t.Errorf("CheckIntegrity once the lock is let go: %v", err)
	}
}
