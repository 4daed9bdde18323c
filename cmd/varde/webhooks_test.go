package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// TestStatusWebhooks: an operator sees a relying party's notifications,
// newest first, with where each stands.
func TestStatusWebhooks(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenExistingStore(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ds := []*store.WebhookDelivery{
		{ID: "w1", CreatedAt: now.Add(-3 * time.Hour), DeliveredAt: now.Add(-3 * time.Hour), Attempts: 1},
		{ID: "w2", CreatedAt: now.Add(-2 * time.Hour), AbandonedAt: now.Add(-time.Minute), Attempts: 12, LastError: "status 503"},
		{ID: "w3", CreatedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(45 * time.Second), Attempts: 2, LastError: "connection refused"},
	}
	for _, d := range ds {
		d.ClientID, d.URL, d.Event, d.ContentType = "bank", "https://bank.example/hook?token=s3cret", "component_state", "application/secevent+jwt"
	}
	other := &store.WebhookDelivery{ID: "w4", ClientID: "shop", URL: "https://shop.example/hook", Event: "component_state", CreatedAt: now}
	if err := st.EnqueueWebhooks(ctx, append(ds, other)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, err := runCmd(t, "status", "webhooks", "--config", cfgPath, "--client", "bank")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CREATED") {
		t.Fatalf("output:\n%s", out)
	}
	for i, want := range []string{"next attempt in 4", "ABANDONED", "delivered"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("line %d %q lacks %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[1], "connection refused") || !strings.Contains(lines[2], "status 503") || strings.Contains(out, "shop") {
		t.Errorf("output:\n%s", out)
	}
	// The URL is shown without its query, where a secret may sit.
	if strings.Contains(out, "s3cret") || !strings.Contains(lines[1], "https://bank.example/hook?redacted") {
		t.Errorf("the URL's query is shown:\n%s", out)
	}
	if out, err := runCmd(t, "status", "webhooks", "--config", cfgPath, "--client", "nobody"); err != nil || !strings.Contains(out, "no webhook deliveries to nobody: no client nobody is registered") {
		t.Errorf("an unknown client: %v\n%s", err, out)
	}
	// A registered client with no deliveries: the output says whether it
	// registers anywhere to send them.
	if out, err := runCmd(t, "clients", "add", "--config", cfgPath, "--id", "shop2", "--name", "Shop", "--auth-method", "none",
		"--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatalf("clients add: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "status", "webhooks", "--config", cfgPath, "--client", "shop2"); err != nil ||
		!strings.Contains(out, "no webhook deliveries to shop2: it registers neither a status webhook nor a back-channel logout URI") {
		t.Errorf("a client without URLs: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "clients", "add", "--config", cfgPath, "--id", "shop3", "--name", "Shop", "--auth-method", "none",
		"--redirect-uri", "https://shop.example/cb", "--backchannel-logout-uri", "https://shop.example/logout"); err != nil {
		t.Fatalf("clients add: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "status", "webhooks", "--config", cfgPath, "--client", "shop3"); err != nil ||
		!strings.Contains(out, "no webhook deliveries to shop3 (finished ones are kept 30 days)") {
		t.Errorf("a client with a URL and nothing sent yet: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "status", "webhooks", "--config", cfgPath); exitStatus(err, &strings.Builder{}) != 2 {
		t.Errorf("without --client: %v", err)
	}
}
