package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPostgres opens the PostgreSQL database at dsn, closed at cleanup.
func openPostgres(t testing.TB, dsn string) *DB {
	t.Helper()
	return closedAtCleanup(t)(OpenPostgres(context.Background(), dsn))
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t, pgtest.NewDatabase(t)) })
}

// TestPostgresNodes runs two DB values over one database, as two nodes
// would, and checks that neither trusts what it remembers of the other's
// writes.
func TestPostgresNodes(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)

	t.Run("audit chain", func(t *testing.T) {
		ctx := t.Context()
		const goroutines, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, 2*goroutines)
		for _, db := range []*DB{a, b} {
			for range goroutines {
				wg.Go(func() {
					for range each {
						if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()}); err != nil {
							errs <- err
							return
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		all, err := a.ListAudit(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2*goroutines*each {
			t.Errorf("%d events, want %d", len(all), 2*goroutines*each)
		}
		if err := store.VerifyAuditChain(nil, all); err != nil {
			t.Error(err)
		}
	})

	t.Run("records written by the other node", func(t *testing.T) {
		ctx := t.Context()
		now := time.Now().UTC()
		p := &store.Person{ID: "p-1", GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1990-01-01",
			Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01019012345"}}, CreatedAt: now}
		if err := a.CreatePerson(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetPerson(ctx, p.ID); err != nil { // read, as a cache would keep it
			t.Fatal(err)
		}
		if err := b.UpdatePersonProfile(ctx, p.ID, store.Profile{GivenName: "Kari Anne", FamilyName: "Nordmann", BirthDate: "1990-01-01"}); err != nil {
			t.Fatal(err)
		}
		if got, err := a.GetPerson(ctx, p.ID); err != nil || got.GivenName != "Kari Anne" {
			t.Errorf("node a reads %+v, %v after node b renamed the person", got, err)
		}

		s := &store.Session{ID: "s-1", PersonID: p.ID, Provider: "passkey", Level: "high", AuthTime: now,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetSession(ctx, s.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := b.AddSessionClient(ctx, s.ID, "bank"); err != nil {
			t.Fatal(err)
		}
		if got, err := a.GetSession(ctx, s.ID, now); err != nil || len(got.Clients) != 1 {
			t.Errorf("node a reads %+v, %v after node b added a client", got, err)
		}
		if err := b.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := a.GetSession(ctx, s.ID, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("node a still finds the session node b ended (logout): %v", err)
		}

		r := &store.AuthRequest{ID: "r-1", ClientID: "bank", RedirectURI: "https://bank.example/cb", Pushed: true,
			CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := a.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := b.UseAuthRequest(ctx, r.ID, now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if err := a.UseAuthRequest(ctx, r.ID, now.Add(time.Minute), now); !errors.Is(err, store.ErrConflict) {
			t.Errorf("a pushed request used at node b was used again at node a: %v", err)
		}
	})

	t.Run("read, change, write", func(t *testing.T) {
		ctx := t.Context()
		now := time.Now().UTC()
		// Clients added to one session at both nodes at once: none lost.
		s := &store.Session{ID: "s-2", PersonID: "p-1", Provider: "passkey", Level: "high", AuthTime: now,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		const adders = 8
		var wg sync.WaitGroup
		for i := range adders {
			db := []*DB{a, b}[i%2]
			wg.Go(func() {
				if err := db.AddSessionClient(ctx, s.ID, "client-"+string(rune('a'+i))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, err := b.GetSession(ctx, s.ID, now); err != nil || len(got.Clients) != adders {
			t.Errorf("session after %d concurrent additions: %v, %v", adders, got, err)
		}

		// Two identifiers added to one person at both nodes at once.
		q := &store.Person{ID: "p-2", Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02029012345"}}, CreatedAt: now}
		if err := a.CreatePerson(ctx, q); err != nil {
			t.Fatal(err)
		}
		for i, db := range []*DB{a, b} {
			wg.Go(func() {
				if err := db.AddIdentifier(ctx, q.ID, store.Identifier{Scheme: "test:" + string(rune('a'+i)), Value: "1"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, err := a.GetPerson(ctx, q.ID); err != nil || len(got.Identifiers) != 3 {
			t.Errorf("person after two concurrent additions: %v, %v", got, err)
		}

		// A person's last two passkeys removed at both nodes at once: one
		// removal must be refused, or the person is locked out.
		for round := range 10 {
			pid := "p-del-" + string(rune('a'+round))
			if err := a.CreatePerson(ctx, &store.Person{ID: pid, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			keys := [][]byte{[]byte(pid + "-1"), []byte(pid + "-2")}
			for _, k := range keys {
				if err := a.CreatePasskey(ctx, &store.Passkey{CredentialID: k, PersonID: pid, CreatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			errs := make([]error, 2)
			for i, db := range []*DB{a, b} {
				wg.Go(func() { errs[i] = db.DeletePasskey(ctx, pid, keys[i]) })
			}
			wg.Wait()
			left, err := a.ListPasskeys(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 || (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: %d passkeys left, removals returned %v and %v; want 1 left, one refused", round, len(left), errs[0], errs[1])
			}
		}
	})

	t.Run("webhook claims", func(t *testing.T) {
		// Both nodes claim due deliveries at once, many times over: no
		// delivery may be leased to both, or its receiver gets it twice.
		ctx := t.Context()
		now := time.Now().UTC()
		const n = 200
		var ds []*store.WebhookDelivery
		for i := range n {
			ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("wh-%03d", i), ClientID: "bank", URL: "https://bank.example/status",
				Event: "component_state", Payload: []byte("{}"), ContentType: "application/jwt",
				CreatedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Second)})
		}
		if err := a.EnqueueWebhooks(ctx, ds); err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			claimed = map[string]string{}
		)
		for i := range 8 {
			db, node := []*DB{a, b}[i%2], fmt.Sprint("node-", i)
			wg.Go(func() {
				for range 20 {
					got, err := db.ClaimWebhooks(ctx, node, now, now.Add(time.Minute), 5)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, d := range got {
						if other, ok := claimed[d.ID]; ok {
							t.Errorf("delivery %s leased to %s and %s", d.ID, other, node)
						}
						claimed[d.ID] = node
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != n {
			t.Errorf("%d of %d deliveries claimed", len(claimed), n)
		}
	})

	t.Run("incident timeline", func(t *testing.T) {
		// Both nodes add to one incident's timeline at once: every entry
		// is kept, numbered 1, 2, 3, … without a gap or a repeat.
		ctx := t.Context()
		now := time.Now().UTC()
		in := &store.Incident{ID: "inc-1", Component: "bankid", StartedAt: now, OpenedAt: now}
		if err := a.OpenIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		const writers, each = 8, 5
		var wg sync.WaitGroup
		for i := range writers {
			db := []*DB{a, b}[i%2]
			wg.Go(func() {
				for range each {
					u := &store.IncidentUpdate{IncidentID: in.ID, Time: now, Kind: store.UpdateOperator, Message: "note", Author: "ops"}
					if err := db.AddIncidentUpdate(ctx, u); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := b.GetIncident(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Updates) != writers*each {
			t.Fatalf("%d timeline entries, want %d", len(got.Updates), writers*each)
		}
		for i, u := range got.Updates {
			if u.Seq != i+1 {
				t.Fatalf("entry %d has seq %d", i, u.Seq)
			}
		}
	})

	t.Run("one code, two nodes", func(t *testing.T) {
		ctx := t.Context()
		now := time.Now().UTC()
		for i := range 20 {
			c := &store.AuthCode{Hash: []byte{byte(i), 1, 2, 3}, GrantID: "g", ClientID: "bank", PersonID: "p-1",
				Level: "high", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
			if err := a.CreateAuthCode(ctx, c); err != nil {
				t.Fatal(err)
			}
			var wins, losses int
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, db := range []*DB{a, b, a, b} {
				wg.Go(func() {
					_, err := db.RedeemAuthCode(ctx, c.Hash, now)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
						losses++
					default:
						t.Errorf("redeem: %v", err)
					}
				})
			}
			wg.Wait()
			if wins != 1 || losses != 3 {
				t.Fatalf("code %d: %d redemptions won, %d lost; want 1 and 3", i, wins, losses)
			}
		}
	})
}

// TestPostgresMigrateTogether opens one new database from several nodes
// at once: each migration is applied once and every node starts.
func TestPostgresMigrateTogether(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const nodes = 4
	var wg sync.WaitGroup
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() { dbs[i], errs[i] = OpenPostgres(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if t.Failed() {
		return
	}
	var n, versions int
	if err := dbs[0].r.QueryRowContext(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(dbs[0].d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || versions != len(ms) {
		t.Errorf("schema_migrations has %d rows of %d versions, want %d", n, versions, len(ms))
	}
}

func TestPostgresAuditLogAppendOnly(t *testing.T) {
	ctx := t.Context()
	db := openPostgres(t, pgtest.NewDatabase(t))
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "x", Result: store.ResultSuccess, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Fatalf("check of a sound database: %v", err)
	}
	for _, q := range []string{
		"UPDATE audit_log SET result = 'failure'",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
	} {
		if _, err := db.w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	all, err := db.ListAudit(ctx, 0, 10)
	if err != nil || len(all) != 1 || all[0].Result != store.ResultSuccess {
		t.Errorf("log after refused changes: %v, %v", all, err)
	}
	if _, err := db.w.ExecContext(ctx, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckIntegrity(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("check with a trigger disabled: %v, want ErrCorrupt", err)
	}
	if err := db.BackupTo(ctx, t.TempDir()+"/b.db"); !errors.Is(err, ErrBackupUnsupported) {
		t.Errorf("backup of a PostgreSQL store: %v, want ErrBackupUnsupported", err)
	}
}

func TestOpenExistingPostgres(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	if db, err := OpenExistingPostgres(ctx, dsn); !errors.Is(err, ErrNoDatabase) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open an empty database as existing: %v, want ErrNoDatabase", err)
	}
	openPostgres(t, dsn)
	db, err := OpenExistingPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	const secret = "s3cret-pw"
	for _, dsn := range []string{
		"postgres://varde:" + secret + "@127.0.0.1:1/varde?sslmode=disable&connect_timeout=2",
		"postgres://varde:" + secret + "@[::1/varde", // not a URL
	} {
		db, err := OpenPostgres(ctx, dsn)
		if err == nil {
			db.Close()
			t.Fatalf("%q opened", dsn)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if got := DescribeDSN("postgres", "postgres://varde:"+secret+"@db.example:5433/idp"); strings.Contains(got, secret) ||
		got != `database "idp" on db.example:5433` {
		t.Errorf("DescribeDSN = %q", got)
	}
}

func TestRebindDollar(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                              "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c = ?": "SELECT a FROM t WHERE b = $1 AND c = $2",
		"SELECT '?' || ? FROM \"?\" LIMIT ?":    "SELECT '?' || $1 FROM \"?\" LIMIT $2",
		"VALUES (?, ?, ?), (?, ?, ?)":           "VALUES ($1, $2, $3), ($4, $5, $6)",
	} {
		if got := rebindDollar(in); got != want {
			t.Errorf("rebindDollar(%q) = %q, want %q", in, got, want)
		}
	}
}
