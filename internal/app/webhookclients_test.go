package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/webhook"
)

// TestWebhookGoesWhereTheClientSaysNow: once a changed status webhook is
// stored, no delivery goes to the old URL, even while this node still
// holds the client in its cache for logins.
func TestWebhookGoesWhereTheClientSaysNow(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
		"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db")}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cfg, Options{SubjectSalt: make([]byte, 32), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	var oldHits, newHits atomic.Int32
	receiver := func(n *atomic.Int32) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(s.Close)
		return s
	}
	oldURL, newURL := receiver(&oldHits).URL+"/status", receiver(&newHits).URL+"/status"
	client := func(url string) *store.Client {
		return &store.Client{ID: "bank", Name: "Bank", AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://bank.example/cb"}, StatusWebhook: url, CreatedAt: now}
	}
	mustPut(t, a.Store, client(oldURL))
	// A login reads the client through the node's cache.
	if _, err := a.clients.GetClient(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	// The operator moves the webhook (varde clients, another process).
	mustPut(t, a.Store, client(newURL))
	if n, err := a.webhooks.Notify(ctx, webhook.Event{Component: "store", From: store.HealthUp, To: store.HealthDown}); err != nil || n != 1 {
		t.Fatalf("Notify = %d, %v; want 1 delivery", n, err)
	}
	if _, err := a.webhooks.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if oldHits.Load() != 0 || newHits.Load() != 1 {
		t.Errorf("deliveries: %d to the old URL, %d to the new; want 0 and 1", oldHits.Load(), newHits.Load())
	}
}
