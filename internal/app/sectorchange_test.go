package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// TestSectorChangeOnlyOnPurpose: a node started again with a client's
// sector_id edited in its configuration, after a person logged in to
// the client, refuses to start, and varde config check refuses the file,
// both naming the client, the old and the new sector, what would happen
// to its users and the setting that accepts the change. With
// sector_id_change_accepted naming the old sector the node starts: the
// refresh token issued before is refused (invalid_grant), so no ID
// token with the new sub follows one with the old (OIDC Core §12.2),
// the person's next login brings a new sub, and the change is in the
// audit log, once, however often the node starts with that file.
func TestSectorChangeOnlyOnPurpose(t *testing.T) {
	for _, tc := range backends {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, salt := storeEnv(tc.store(t)), make([]byte, 32)
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			declare := declareSector(bankClient(t, key))

			n, stop := startNodeTuned(t, "127.0.0.1:0", "", st, salt, declare("bank.example", ""))
			addr := strings.TrimPrefix(n.origin, "http://localhost")
			addr = "127.0.0.1" + addr
			person := n.enrol(t, false)
			first, err := bankRP(t, n, key).Login(ctx, person, loadgen.LoginOptions{Scope: "offline_access"})
			if err != nil {
				t.Fatal(err)
			}
			if first.Token.RefreshToken == "" {
				t.Fatal("the login brought no refresh token")
			}
			stop()

			// Edited: the client's ID becomes its sector.
			cfg := storeConfig(t, n.issuer, st)
			declare("", "")(cfg)
			cfg.Passkey.SyntheticEnrolment = true
			wants := []string{`client "bank"`, `"bank.example"`, `sector "bank"`, "new people", "sector_id_change_accepted: \"bank.example\""}
			if _, err := app.CheckStoreClients(ctx, cfg); !errors.Is(err, app.ErrClientsClash) || !containsAll(err.Error(), wants) {
				t.Errorf("CheckStoreClients with the sector edited = %v\nwant ErrClientsClash saying %q", err, wants)
			}
			a, err := app.New(ctx, cfg, app.Options{SubjectSalt: salt})
			if a != nil {
				a.Close()
			}
			if !errors.Is(err, app.ErrSectorChanged) || !containsAll(err.Error(), wants) {
				t.Fatalf("New with the sector edited = %v\nwant ErrSectorChanged saying %q", err, wants)
			}

			// Accepted: the node starts, and has revoked what was issued.
			n, stop = startNodeTuned(t, addr, "", st, salt, declare("", "bank.example"))
			rp := bankRP(t, n, key)
			_, err = rp.Refresh(ctx, first.Token.RefreshToken)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("refresh token issued before the change: %v, want invalid_grant", err)
			}
			// Nor does its access token answer with the old sub.
			req, _ := http.NewRequest(http.MethodGet, n.issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+first.AccessToken)
			res, err := n.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Errorf("userinfo with an access token issued before the change: %d %q, want 401 invalid_token",
					res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			again, err := rp.Login(ctx, person, loadgen.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if again.IDToken.Subject == first.IDToken.Subject {
				t.Errorf("sub after the change = %q, the same as before", again.IDToken.Subject)
			}
			stop()

			// Started again with that file: nothing more changes.
			n, _ = startNodeTuned(t, addr, "", st, salt, declare("", "bank.example"))
			events, err := n.app.Store.ListAuditRange(ctx, store.AuditQuery{ClientID: "bank", Types: []string{"client_sector_changed"}})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"from": "bank.example", "to": "bank", "via": "config", "people": "true"}
			if len(events) != 1 || fmt.Sprint(events[0].Details) != fmt.Sprint(want) {
				t.Errorf("sector changes in the audit log: %d, want 1 with %v", len(events), want)
				for _, e := range events {
					t.Logf("%+v", e.Details)
				}
			}
			third, err := bankRP(t, n, key).Login(ctx, person, loadgen.LoginOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if third.IDToken.Subject != again.IDToken.Subject {
				t.Errorf("sub at the next start = %q, want %q as after the change", third.IDToken.Subject, again.IDToken.Subject)
			}
		})
	}
}

// TestSectorChangeBeforeAnyLogin: a client nobody has logged in to may
// change its sector without saying so: no person's sub changes. The
// change is still audited.
func TestSectorChangeBeforeAnyLogin(t *testing.T) {
	ctx := context.Background()
	st, key := sqliteWithBankKey(t)
	bank := bankClient(t, key)
	_, stop := startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), func(cfg *config.Config) { cfg.Clients = []config.Client{bank} })
	stop()
	bank.SectorID = "bank.example"
	n, _ := startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), func(cfg *config.Config) { cfg.Clients = []config.Client{bank} })
	c, err := n.app.Store.GetClient(ctx, "bank")
	if err != nil || c.Sector() != "bank.example" {
		t.Fatalf("client after the restart: %v, %v; want the sector bank.example", c, err)
	}
	events, err := n.app.Store.ListAuditRange(ctx, store.AuditQuery{ClientID: "bank", Types: []string{"client_sector_changed"}})
	if err != nil || len(events) != 1 || events[0].Details["people"] != "false" {
		t.Errorf("sector changes in the audit log: %v (%v), want one, with no people", events, err)
	}
}

// TestSectorOfClientDeclaredAgain: a client taken out of the
// configuration file is removed at the next start, its sector recorded
// with the removal; declared again later with another sector, after
// people logged in to it, it is refused as an edited sector is, naming
// the removal, and accepted when the file names the old sector.
func TestSectorOfClientDeclaredAgain(t *testing.T) {
	ctx := context.Background()
	st, key := sqliteWithBankKey(t)
	bank := bankClient(t, key)
	bank.SectorID = "bank.example"
	declare := func(clients ...config.Client) func(*config.Config) {
		return func(cfg *config.Config) { cfg.Clients = clients }
	}
	n, stop := startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare(bank))
	if _, err := bankRP(t, n, key).Login(ctx, n.enrol(t, false), loadgen.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	_, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare())
	stop()

	bank.SectorID = ""
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test"}
	for k, v := range st {
		env[k] = v
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clients = []config.Client{bank}
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32)})
	if a != nil {
		a.Close()
	}
	wants := []string{`client "bank" was removed on`, `the sector "bank.example"`, `sector_id_change_accepted: "bank.example"`}
	if !errors.Is(err, app.ErrSectorChanged) || !containsAll(err.Error(), wants) {
		t.Fatalf("New with bank declared again under another sector = %v\nwant ErrSectorChanged saying %q", err, wants)
	}
	bank.SectorIDChangeAccepted = "bank.example"
	n, _ = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare(bank))
	events, err := n.app.Store.ListAuditRange(ctx, store.AuditQuery{ClientID: "bank", Types: []string{"client_sector_changed"}})
	if err != nil || len(events) != 1 || events[0].Details["from"] != "bank.example" || events[0].Details["to"] != "bank" {
		t.Errorf("sector changes in the audit log: %v (%v), want one, from bank.example to bank", events, err)
	}
}

// TestSectorChangeUndoneIsNotReplayed: a change of sector that was
// undone on purpose (the file of one node accepting the way back) is
// not made again by another node that starts with the file of before
// the undo, which still accepts the first change: that node is refused
// as one with the old sector is, naming the undo, and the sector stays.
// Removed and declared again, the client takes the change once more,
// and is not held to the changes made before its removal.
func TestSectorChangeUndoneIsNotReplayed(t *testing.T) {
	ctx := context.Background()
	st, key := sqliteWithBankKey(t)
	declare := declareSector(bankClient(t, key))
	n, stop := startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("bank.example", ""))
	if _, err := bankRP(t, n, key).Login(ctx, n.enrol(t, false), loadgen.LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	stop()
	// Changed on purpose, then undone on purpose.
	_, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("", "bank.example"))
	stop()
	_, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("bank.example", "bank"))
	stop()

	// A node with the file of before the undo.
	cfg := storeConfig(t, "http://localhost:8080", st)
	declare("", "bank.example")(cfg)
	wants := []string{`client "bank" was changed from the sector "bank.example" to "bank"`, "changed back since",
		`sector_id_change_accepted: "bank.example"`, `give the client the sector "bank.example"`}
	if _, err := app.CheckStoreClients(ctx, cfg); !errors.Is(err, app.ErrClientsClash) || !containsAll(err.Error(), wants) {
		t.Errorf("CheckStoreClients with the file of before the undo = %v\nwant ErrClientsClash saying %q", err, wants)
	}
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32)})
	if a != nil {
		a.Close()
	}
	if !errors.Is(err, app.ErrSectorChanged) || !containsAll(err.Error(), wants) {
		t.Fatalf("New with the file of before the undo = %v\nwant ErrSectorChanged saying %q", err, wants)
	}
	n, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("bank.example", "bank"))
	if c, err := n.app.Store.GetClient(ctx, "bank"); err != nil || c.Sector() != "bank.example" {
		t.Errorf("client after the refused start: %+v, %v; want the sector bank.example", c, err)
	}
	events, err := n.app.Store.ListAuditRange(ctx, store.AuditQuery{ClientID: "bank", Types: []string{"client_sector_changed"}})
	if err != nil || len(events) != 2 {
		t.Errorf("sector changes in the audit log: %d (%v), want 2: the change and its undo", len(events), err)
	}
	stop()

	// Made again on purpose, as the refusal says: removed, then
	// declared again accepting the change.
	_, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), func(cfg *config.Config) { cfg.Clients = nil })
	stop()
	n, stop = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("", "bank.example"))
	if c, err := n.app.Store.GetClient(ctx, "bank"); err != nil || c.Sector() != "bank" {
		t.Errorf("client removed and declared again: %+v, %v; want the sector bank", c, err)
	}
	stop()
	// Declared again, it is not held to the changes made before its
	// removal: the change back is accepted once more.
	n, _ = startNodeTuned(t, "127.0.0.1:0", "", st, make([]byte, 32), declare("bank.example", "bank"))
	if c, err := n.app.Store.GetClient(ctx, "bank"); err != nil || c.Sector() != "bank.example" {
		t.Errorf("client declared again, then changed back: %+v, %v; want the sector bank.example", c, err)
	}
}

// declareSector is a tune declaring c alone, with the sector and the
// accepted change given.
func declareSector(c config.Client) func(sector, accepted string) func(*config.Config) {
	return func(sector, accepted string) func(*config.Config) {
		return func(cfg *config.Config) {
			c := c
			c.SectorID, c.SectorIDChangeAccepted = sector, accepted
			cfg.Clients = []config.Client{c}
		}
	}
}

// storeConfig is the configuration of a node named test at issuer over
// the store st, declaring no client.
func storeConfig(t *testing.T, issuer string, st map[string]string) *config.Config {
	t.Helper()
	env := map[string]string{"VARDE_ISSUER": issuer, "VARDE_NODE": "test"}
	for k, v := range st {
		env[k] = v
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// bankClient is a configured private_key_jwt client "bank" with key,
// given refresh tokens.
func bankClient(t *testing.T, key *ecdsa.PrivateKey) config.Client {
	t.Helper()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bank-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return config.Client{ID: "bank", Name: "Bank", AuthMethod: store.AuthPrivateKeyJWT, JWKS: string(jwks),
		RedirectURIs: []string{"https://bank.example/callback"}, RequirePAR: true, RefreshTokens: true}
}

// bankRP is the relying party of bankClient at n.
func bankRP(t *testing.T, n *node, key *ecdsa.PrivateKey) *loadgen.RP {
	t.Helper()
	rp := &loadgen.RP{Issuer: n.issuer, ClientID: "bank", RedirectURI: "https://bank.example/callback", Key: key, KeyID: "bank-1", HTTP: n.http}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rp.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	return rp
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// sqliteWithBankKey is the environment of nodes over one SQLite store in
// a new directory, and a key for the client bank to authenticate with.
func sqliteWithBankKey(t *testing.T) (map[string]string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db")}, key
}
