package app

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestClientCache runs the cache over a real SQLite store and changes the
// store behind its back, as `varde clients` in another process would.
func TestClientCache(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cc := newClientCache(db, time.Second, func() time.Time { return now })
	client := func(name string) *store.Client {
		return &store.Client{ID: "bank", Name: name, AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://bank.example/cb"}, CreatedAt: now}
	}
	name := func() string {
		t.Helper()
		c, err := cc.GetClient(ctx, "bank")
		if errors.Is(err, store.ErrNotFound) {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return c.Name
	}

	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"unknown client", func() {}, "(none)"},
		// Not found is not cached: a client added elsewhere works at once.
		{"added behind the cache", func() { mustPut(t, db, client("Bank 1")) }, "Bank 1"},
		{"changed behind the cache, within the TTL", func() { mustPut(t, db, client("Bank 2")) }, "Bank 1"},
		{"TTL passed", func() { now = now.Add(time.Second) }, "Bank 2"},
		{"callers get copies", func() {
			c, _ := cc.GetClient(ctx, "bank")
			c.Name, c.RedirectURIs[0] = "mutated", "https://evil.example/cb"
		}, "Bank 2"},
		{"changed through the cache", func() { mustPut(t, cc, client("Bank 3")) }, "Bank 3"},
		{"deleted through the cache", func() {
			if _, err := cc.DeleteClient(ctx, "bank", now, nil); err != nil {
				t.Fatal(err)
			}
		}, "(none)"},
		{"created through the cache", func() {
			if err := cc.AddClient(ctx, client("Bank 4"), nil); err != nil {
				t.Fatal(err)
			}
		}, "Bank 4"},
		{"deleted behind the cache, within the TTL", func() {
			if _, err := db.DeleteClient(ctx, "bank", now, nil); err != nil {
				t.Fatal(err)
			}
		}, "Bank 4"},
		{"clock went backwards", func() { now = now.Add(-time.Minute) }, "(none)"},
	}
	for _, s := range steps {
		s.do()
		if got := name(); got != s.want {
			t.Errorf("%s: client name %q, want %q", s.name, got, s.want)
		}
	}
	c, err := cc.GetClient(ctx, "bank")
	if err == nil && c.RedirectURIs[0] != "https://bank.example/cb" {
		t.Errorf("a caller's change reached the cache: %v", c.RedirectURIs)
	}
}

func mustPut(t *testing.T, cs store.Clients, c *store.Client) {
	t.Helper()
	if err := cs.PutClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}
