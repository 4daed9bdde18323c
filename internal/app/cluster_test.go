package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// postgresNode starts a node over the PostgreSQL database at dsn with
// key and salt, at the time *now says, after calling each of more.
func postgresNode(t *testing.T, dsn, node string, key *keys.Signer, salt []byte, now *time.Time,
	more ...func(*config.Config, *app.Options)) (*app.App, error) {
	t.Helper()
	env := map[string]string{config.EnvIssuer: "http://localhost:8080", config.EnvNode: node,
		config.EnvStoreDriver: "postgres", config.EnvStoreDSN: dsn}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	opt := app.Options{Signer: key, SubjectSalt: salt, Now: func() time.Time { return *now }}
	for _, f := range more {
		f(cfg, &opt)
	}
	a, err := app.New(context.Background(), cfg, opt)
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

func readyz(a *app.App) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec
}

// TestNewKeyWaitsBeforeReady: a node whose signing key is new to a
// shared store reports ready only once every node's cached key set can
// hold the key; a node restarted with a published key is ready at once
// once that time has passed.
func TestNewKeyWaitsBeforeReady(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt := make([]byte, 32)
	keyA, _ := keys.Generate(rand.Reader)
	a, err := postgresNode(t, dsn, "a", keyA, salt, &now)
	if err != nil {
		t.Fatal(err)
	}
	if rec := readyz(a); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("readyz of a node with a new key = %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	now = now.Add(keys.DefaultCacheTTL)
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Fatalf("readyz once the key is known = %d, want 200", rec.Code)
	}
	a.Close()

	again, err := postgresNode(t, dsn, "a", keyA, salt, &now)
	if err != nil {
		t.Fatal(err)
	}
	if rec := readyz(again); rec.Code != http.StatusOK {
		t.Errorf("readyz of a node restarted with its published key = %d, want 200", rec.Code)
	}
}

// TestSharedKeyFileSeenWhileRunning: a node started with a running
// node's key file, which the start-up check let through (here: the
// running node was forgotten while it ran), is noticed by the running
// node within its key set's cache time: its /readyz answers 503 naming
// both nodes while the other holds the key. Once the other has left,
// the node's next housekeeping round takes the key back, logs it once,
// and /readyz answers 200 again.
func TestSharedKeyFileSeenWhileRunning(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt := make([]byte, 32)
	key, _ := keys.Generate(rand.Reader)
	var logs bytes.Buffer
	a, err := postgresNode(t, dsn, "a", key, salt, &now, func(_ *config.Config, opt *app.Options) {
		opt.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(keys.DefaultCacheTTL)
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Fatalf("readyz of a = %d %s, want 200", rec.Code, rec.Body)
	}
	if err := a.Store.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "a", LeftAt: now, Reason: store.NodeForgotten}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := postgresNode(t, dsn, "b", key, salt, &now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(keys.DefaultCacheTTL)
	rec := readyz(a)
	for _, want := range []string{key.KID(), `node "a"`, `node "b"`} {
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("readyz of a once b published its key = %d %q, want 503 naming %s", rec.Code, rec.Body, want)
		}
	}
	// round runs a housekeeping round and wants readyz to answer code
	// and the key to be credited to holder.
	round := func(when string, code int, holder string) {
		t.Helper()
		a.Housekeep(ctx)
		now = now.Add(keys.DefaultCacheTTL)
		if rec := readyz(a); rec.Code != code {
			t.Fatalf("readyz of a %s = %d %q, want %d", when, rec.Code, rec.Body, code)
		}
		if ks, err := a.Store.ListPublicKeys(ctx, now); err != nil || len(ks) != 1 || ks[0].Node != holder {
			t.Fatalf("keys %s: %v, want the key credited to %s", when, err, holder)
		}
	}
	round("while b holds the key", http.StatusServiceUnavailable, "b")
	now = now.Add(time.Second)
	if err := a.Store.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "b", LeftAt: now, Reason: store.NodeStopped}, nil); err != nil {
		t.Fatal(err)
	}
	round("once b left", http.StatusOK, "a")
	round("a round later", http.StatusOK, "a")
	if strings.Contains(logs.String(), "publish signing key") {
		t.Errorf("warned that the key could not be published while another node held it:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "signing key is this node's alone again"); n != 1 {
		t.Errorf("logged the key's return %d times, want once:\n%s", n, logs.String())
	}
}

// TestSaltPinned: a node whose subject salt differs from the one the
// store was first used with does not start, so that no node gives
// people other subject identifiers than the rest of the cluster.
func TestSaltPinned(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt, other := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(other)
	key := func() *keys.Signer { k, _ := keys.Generate(rand.Reader); return k }
	if _, err := postgresNode(t, dsn, "a", key(), salt, &now); err != nil {
		t.Fatal(err)
	}
	if _, err := postgresNode(t, dsn, "b", key(), other, &now); !errors.Is(err, app.ErrSaltChanged) {
		t.Fatalf("node with another salt: %v, want ErrSaltChanged", err)
	}
	if _, err := postgresNode(t, dsn, "b", key(), salt, &now); err != nil {
		t.Fatalf("node with the same salt: %v", err)
	}
}

// TestUndeclaredClientKeptInCluster: a node whose configuration file
// lacks a client that another node's declares does not remove it (nor
// revoke its grants) from the store they share; it says so.
func TestUndeclaredClientKeptInCluster(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt := make([]byte, 32)
	client := func(id string) config.Client {
		return config.Client{ID: id, Name: id, AuthMethod: store.AuthNone, RedirectURIs: []string{"https://" + id + ".example/cb"}}
	}
	declare := func(logs io.Writer, clients ...config.Client) func(*config.Config, *app.Options) {
		return func(cfg *config.Config, opt *app.Options) {
			cfg.Clients = clients
			opt.Log = slog.New(slog.NewTextHandler(logs, nil))
		}
	}
	key := func() *keys.Signer { k, _ := keys.Generate(rand.Reader); return k }
	a, err := postgresNode(t, dsn, "a", key(), salt, &now, declare(io.Discard, client("bank"), client("shop")))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.CreateGrantTokens(ctx, &store.Grant{ID: "g-shop", ClientID: "shop", CreatedAt: now}, nil,
		&store.Token{Hash: []byte("shop-refresh"), Kind: store.TokenRefresh, GrantID: "g-shop", ClientID: "shop",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if _, err := postgresNode(t, dsn, "b", key(), salt, &now, declare(&logs, client("bank"))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Store.GetClient(ctx, "shop"); err != nil {
		t.Errorf("client declared by node a only, after node b started: %v", err)
	}
	if g, err := a.Store.GetGrant(ctx, "g-shop"); err != nil || !g.RevokedAt.IsZero() {
		t.Errorf("its grant: %+v, %v; want it unrevoked", g, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "client=shop") {
		t.Errorf("node b's log does not name the client it kept:\n%s", logs.String())
	}
}

// TestSharedKeyFileRefusedAtOnce: two nodes started at the same moment
// over one PostgreSQL database with the same key file: exactly one
// starts, and the other is refused with the message naming both.
func TestSharedKeyFileRefusedAtOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	now := time.Now()
	salt := make([]byte, 32)
	for round := range 20 {
		key, err := keys.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		nodes := []string{fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)}
		errs := make([]error, len(nodes))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, node := range nodes {
			wg.Go(func() {
				<-start
				_, errs[i] = postgresNode(t, dsn, node, key, salt, &now)
			})
		}
		close(start)
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: nodes started with one key file at once: %v and %v, want exactly one refused", round, errs[0], errs[1])
		}
		refused := errs[0]
		if refused == nil {
			refused = errs[1]
		}
		for _, want := range []string{key.KID(), "own key file"} {
			if !strings.Contains(refused.Error(), want) {
				t.Errorf("round %d: error %q does not say %q", round, refused, want)
			}
		}
	}
}
