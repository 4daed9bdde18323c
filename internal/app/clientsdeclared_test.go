package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/store"
)

// TestDeclaredClientsAudited: a client of the configuration file is in
// the audit log as varde clients add puts one there: client_added, via
// config, with its sector and claims, when a node first stores it, and
// client_changed, naming the settings, when a node stores a change of
// it; once per change, not at every start of every node. Over
// PostgreSQL, two nodes start with each file.
func TestDeclaredClientsAudited(t *testing.T) {
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, salt := storeEnv(tc.store(t)), make([]byte, 32)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			bank := bankClient(t, key)
			bank.Claims = []string{"name"}
			nodes := 1
			if tc.name == "postgres" {
				nodes = 2
			}
			// start starts the nodes with c declared, one after another,
			// the first still running as the next starts, twice, and
			// returns the client's events in the audit log.
			start := func(c config.Client) []*store.AuditEvent {
				t.Helper()
				var evs []*store.AuditEvent
				for range 2 {
					var stops []func()
					for i := range nodes {
						opt := app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t)}
						if i > 0 {
							// Each node signs with a key of its own.
							signer, err := keys.Generate(rand.Reader)
							if err != nil {
								t.Fatal(err)
							}
							opt = app.Options{SubjectSalt: salt, Signer: signer}
						}
						n, stop := startNodeOpts(t, "127.0.0.1:0", "", st, opt, func(cfg *config.Config) {
							cfg.Node = fmt.Sprint("node-", i)
							cfg.Clients = []config.Client{c}
						})
						stops = append(stops, stop)
						evs, err = n.app.Store.ListAuditRange(ctx, store.AuditQuery{ClientID: "bank", Types: []string{"client_added", "client_changed"}})
						if err != nil {
							t.Fatal(err)
						}
					}
					for _, stop := range stops {
						stop()
					}
				}
				return evs
			}
			evs := start(bank)
			want := map[string]string{"via": "config", "sector": "bank", "claims": "name"}
			if len(evs) != 1 || evs[0].Type != "client_added" || fmt.Sprint(evs[0].Details) != fmt.Sprint(want) {
				t.Fatalf("after two starts with the client: %d events, want one client_added with %v", len(evs), want)
			}

			bank.Name, bank.RedirectURIs = "Bank, renamed", append(bank.RedirectURIs, "https://bank.example/other")
			evs = start(bank)
			want = map[string]string{"via": "config", "sector": "bank", "claims": "name", "changed": "name,redirect_uris"}
			if len(evs) != 2 || evs[1].Type != "client_changed" || fmt.Sprint(evs[1].Details) != fmt.Sprint(want) {
				t.Errorf("after two starts with the client changed: %d events, want client_added and client_changed with %v", len(evs), want)
				for _, e := range evs {
					t.Logf("%s %v", e.Type, e.Details)
				}
			}
		})
	}
}
