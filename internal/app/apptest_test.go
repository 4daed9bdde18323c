package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// node is a real Varde node serving HTTP on 127.0.0.1, addressed as
// localhost (a WebAuthn RP ID cannot be an IP address).
type node struct {
	app    *app.App
	issuer string
	// origin is the issuer's scheme, host and port: the WebAuthn origin.
	origin string
	http   *http.Client
}

func startNode(t *testing.T) *node {
	t.Helper()
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	n, _ := startNodeAt(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "varde.db"), salt)
	return n
}

// startNodeAtPath is startNode with an issuer with the path base
// ("/eid"; "" for none); tune, if given, changes the configuration
// once it is loaded, its issuer known.
func startNodeAtPath(t *testing.T, base string, tune ...func(*config.Config)) *node {
	t.Helper()
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	n, _ := startNodeTuned(t, "127.0.0.1:0", base, map[string]string{config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db")}, salt, tune...)
	return n
}

// startNodeAt starts a node listening on addr over the SQLite file at
// dsn; stop ends it (and is also run at cleanup), so a test can start
// another node on the same address and file: a restart.
func startNodeAt(t *testing.T, addr, dsn string, salt []byte) (n *node, stop func()) {
	t.Helper()
	return startNodeWith(t, addr, map[string]string{config.EnvStoreDSN: dsn}, salt)
}

// startNodeWith is startNodeAt over the store that the environment
// variables st name.
func startNodeWith(t *testing.T, addr string, st map[string]string, salt []byte) (n *node, stop func()) {
	t.Helper()
	return startNodeUnder(t, addr, "", st, salt)
}

// startNodeUnder is startNodeWith for an issuer with the path base
// ("/eid"; "" for none).
func startNodeUnder(t *testing.T, addr, base string, st map[string]string, salt []byte) (n *node, stop func()) {
	t.Helper()
	return startNodeTuned(t, addr, base, st, salt)
}

// startNodeTuned is startNodeUnder with the configuration changed by
// tune once it is loaded.
func startNodeTuned(t *testing.T, addr, base string, st map[string]string, salt []byte, tune ...func(*config.Config)) (n *node, stop func()) {
	t.Helper()
	return startNodeOpts(t, addr, base, st, app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t)}, tune...)
}

// startNodeOpts is startNodeTuned with the node's options given whole.
func startNodeOpts(t *testing.T, addr, base string, st map[string]string, opt app.Options, tune ...func(*config.Config)) (n *node, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	issuer := origin + base
	env := map[string]string{
		"VARDE_ISSUER": issuer,
		"VARDE_NODE":   "test",
	}
	maps.Copy(env, st)
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passkey.SyntheticEnrolment = true
	for _, f := range tune {
		f(cfg)
	}
	if len(tune) > 0 {
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return &node{app: a, issuer: issuer, origin: origin, http: loadgen.NewHTTPClient(4)}, stop
}

// addRP registers a private_key_jwt client with PAR required and returns
// a relying party for it.
func (n *node) addRP(t *testing.T, id, sector string, claims ...string) *loadgen.RP {
	t.Helper()
	return n.addRPWith(t, id, sector, nil, claims...)
}

// addRPWith is addRP with the client's registration changed by mod, if
// it is not nil, before it is stored.
func (n *node) addRPWith(t *testing.T, id, sector string, mod func(*store.Client), claims ...string) *loadgen.RP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: id + "-1", Algorithm: "ES256", Use: "sig"}}})
	redirect := "https://" + id + ".example/callback"
	c := &store.Client{
		ID: id, Name: id, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs: []string{redirect}, RequirePAR: true, SectorID: sector, Claims: claims,
		Source: "test", CreatedAt: time.Now(),
	}
	if mod != nil {
		mod(c)
	}
	err = n.app.Store.PutClient(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	rp := &loadgen.RP{Issuer: n.issuer, ClientID: id, RedirectURI: redirect, Key: key, KeyID: id + "-1", HTTP: n.http}
	if err := rp.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rp
}

func (n *node) enrol(t *testing.T, synced bool) *loadgen.Person {
	t.Helper()
	p := loadgen.NewDevice(n.origin, synced)
	if err := loadgen.Enrol(context.Background(), n.http, n.issuer, p, "Kari", "Nordmann"); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigClientSharingSubjectsRefused: a client added to the
// configuration whose sector is the ID of a client added at run time
// (or the other way round) would give both the same pairwise subject
// identifiers; the node refuses to start and says which two.
func TestConfigClientSharingSubjectsRefused(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "varde.db")
	st, err := app.OpenStore(ctx, config.Store{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	err = st.AddClient(ctx, &store.Client{ID: "bank.example", Name: "Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Source: "cli", CreatedAt: time.Now()}, nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []config.Client{
		{ID: "shop", SectorID: "bank.example"}, // its sector is the stored client's ID
		{ID: "bank.example"},                   // replaces the stored client: no clash
	} {
		env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test", "VARDE_STORE_DSN": dsn}
		cfg, err := config.Load("", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		c.Name, c.AuthMethod, c.RedirectURIs = c.ID, store.AuthNone, []string{"https://" + c.ID + "/cb"}
		cfg.Clients = []config.Client{c}
		salt := make([]byte, 32)
		a, err := app.New(ctx, cfg, app.Options{SubjectSalt: salt})
		clash := c.SectorID != ""
		if clash && (err == nil || !strings.Contains(err.Error(), `"shop"`) || !strings.Contains(err.Error(), `"bank.example"`)) {
			t.Errorf("client %s: New = %v, want a refusal naming both clients", c.ID, err)
		}
		if !clash && err != nil {
			t.Errorf("client %s: New = %v", c.ID, err)
		}
		if a != nil {
			a.Close()
		}
	}
}

// TestSigningKeyStaysPublished: a node that runs for longer than a
// published key's lifetime keeps its key in the store, so every node
// keeps serving and accepting it while it signs.
func TestSigningKeyStaysPublished(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	a := clockedNode(t, &now, nil)
	for day := range 30 {
		now = now.Add(24 * time.Hour)
		a.Housekeep(ctx)
		keys, err := a.Store.ListPublicKeys(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, k := range keys {
			found = found || k.KID == a.Signer.KID()
		}
		if !found {
			t.Fatalf("day %d: the node's signing key is no longer published", day+1)
		}
	}
}

// TestClientTakenOutOfConfigRemoved: a client taken out of the
// configuration file is removed at the next start, with its grants
// revoked and a warning naming it; the file's other clients and clients
// added with the CLI stay.
func TestClientTakenOutOfConfigRemoved(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "varde.db")
	client := func(id string) config.Client {
		return config.Client{ID: id, Name: id, AuthMethod: store.AuthNone, RedirectURIs: []string{"https://" + id + ".example/cb"}}
	}
	start := func(clients ...config.Client) (*app.App, string) {
		t.Helper()
		env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test", "VARDE_STORE_DSN": dsn}
		cfg, err := config.Load("", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		cfg.Clients = clients
		var logs strings.Builder
		a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32), Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return a, logs.String()
	}

	a, _ := start(client("bank"), client("shop"))
	now := time.Now()
	err := errors.Join(
		a.Store.AddClient(ctx, &store.Client{ID: "tax", Name: "Tax", AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://tax.example/cb"}, Source: store.ClientSourceCLI, CreatedAt: now}, nil),
		a.Store.CreateGrantTokens(ctx, &store.Grant{ID: "g-shop", ClientID: "shop", CreatedAt: now}, nil,
			&store.Token{Hash: []byte("shop-refresh"), Kind: store.TokenRefresh, GrantID: "g-shop", ClientID: "shop", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}),
		a.Close(),
	)
	if err != nil {
		t.Fatal(err)
	}

	a, logs := start(client("bank"))
	defer a.Close()
	for id, want := range map[string]error{"bank": nil, "tax": nil, "shop": store.ErrNotFound} {
		if _, err := a.Store.GetClient(ctx, id); !errors.Is(err, want) {
			t.Errorf("client %s after the restart: %v, want %v", id, err, want)
		}
	}
	if g, err := a.Store.GetGrant(ctx, "g-shop"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("grant of the removed client: %v, revoked at %v; want revoked", err, g)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "client=shop") || strings.Contains(logs, "client=tax") {
		t.Errorf("start-up log should warn of shop's removal, and only of that:\n%s", logs)
	}
}

// TestSyntheticEnrolmentWarnedAtStart: a node that lets anyone create
// test persons says so at start-up, at warn level; one that does not,
// does not.
func TestSyntheticEnrolmentWarnedAtStart(t *testing.T) {
	for _, on := range []bool{true, false} {
		env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
			"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db")}
		cfg, err := config.Load("", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		cfg.Passkey.SyntheticEnrolment = on
		var logs strings.Builder
		a, err := app.New(context.Background(), cfg, app.Options{SubjectSalt: make([]byte, 32), Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		if warned := strings.Contains(logs.String(), `level=WARN msg="synthetic enrolment is on`); warned != on {
			t.Errorf("synthetic enrolment %v: warned %v\n%s", on, warned, logs.String())
		}
	}
}

// TestOneNodePerDatabase: a second node on the same SQLite file fails at
// once, naming the holder (ADRs 5 and 7: one node writes the file and
// keeps login flow state in its memory); once the first is closed,
// another can start.
func TestOneNodePerDatabase(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test",
		"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "data", "varde.db")}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// The signing key is given, so that a node makes up none (an RSA
	// key's generation may take a second or more on a busy machine) and
	// the second node's time is that of its lock.
	key, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opt := app.Options{SubjectSalt: make([]byte, 32), Signer: key}
	first, err := app.New(ctx, cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	// "At once" is well under SQLite's busy timeout (5 s), which a node
	// that reached the database before its lock would wait out; a lock
	// that waited for the first to close never returns.
	const atOnce = 3 * time.Second
	type started struct {
		a   *app.App
		err error
	}
	done := make(chan started, 1)
	go func() {
		a, err := app.New(ctx, cfg, opt)
		done <- started{a, err}
	}()
	var second started
	select {
	case second = <-done:
	case <-time.After(atOnce):
		t.Fatalf("the second node has not failed after %v; it must not wait", atOnce)
	}
	if err := second.err; !errors.Is(err, sqlstore.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d holds", os.Getpid())) {
		t.Errorf("second node: %v, want ErrLocked naming this process", err)
	}
	if second.a != nil {
		second.a.Close()
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := app.New(ctx, cfg, opt)
	if err != nil {
		t.Fatalf("a node after the first closed: %v", err)
	}
	third.Close()
}

// TestHousekeepLogsAuditAnchors: every hour the node logs the audit
// log's head, in the form `varde store verify --anchor` takes, and the
// anchor it logged checks out against the log later.
func TestHousekeepLogsAuditAnchors(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var logs bytes.Buffer
	a := clockedNode(t, &now, slog.New(slog.NewTextHandler(&logs, nil)))
	anchors := func() []string {
		var out []string
		for _, m := range regexp.MustCompile(`msg="audit log head" anchor=(\d+:[0-9a-f]{64})`).FindAllStringSubmatch(logs.String(), -1) {
			out = append(out, m[1])
		}
		return out
	}
	l := &audit.Log{Store: a.Store}
	for range 3 {
		if err := l.Append(ctx, &store.AuditEvent{Type: "authentication", Result: store.ResultSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	a.Housekeep(ctx)
	a.Housekeep(ctx) // within the hour: no second anchor
	got := anchors()
	if len(got) != 1 {
		t.Fatalf("anchors %q, want one", got)
	}
	if err := l.Append(ctx, &store.AuditEvent{Type: "token", Result: store.ResultSuccess}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	a.Housekeep(ctx)
	got = anchors()
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("anchors %q, want two different ones", got)
	}
	for _, anchor := range got {
		if err := l.CheckAnchor(ctx, anchor); err != nil {
			t.Errorf("logged anchor %s: %v", anchor, err)
		}
	}
}

// clockedNode is a node on localhost (not serving) whose clock reads
// *now and that logs to log (nil: nowhere); it is closed when the test
// ends.
func clockedNode(t *testing.T, now *time.Time, log *slog.Logger) *app.App {
	t.Helper()
	return clockedNodeAt(t, filepath.Join(t.TempDir(), "varde.db"), now, log)
}

// clockedNodeAt is clockedNode with its SQLite database at path.
func clockedNodeAt(t *testing.T, path string, now *time.Time, log *slog.Logger) *app.App {
	t.Helper()
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test", "VARDE_STORE_DSN": path}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{SubjectSalt: make([]byte, 32), Now: func() time.Time { return *now }, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestReadyzKeyPublicationLapsed: a node that cannot publish its signing
// key again, though its store answers, is ready until the publish TTL
// after its last publish, when the other nodes' key sets drop the key;
// from then on /readyz answers 503 and the node signs nothing.
func TestReadyzKeyPublicationLapsed(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "varde.db")
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test", "VARDE_STORE_DSN": path}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, stmt := range []string{
		"CREATE TRIGGER keys_no_insert BEFORE INSERT ON public_keys BEGIN SELECT RAISE(ABORT, 'read-only'); END",
		"CREATE TRIGGER keys_no_update BEFORE UPDATE ON public_keys BEGIN SELECT RAISE(ABORT, 'read-only'); END",
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	now = now.Add(keys.DefaultPublishTTL - time.Minute)
	a.Housekeep(ctx)
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Fatalf("readyz before the publish TTL = %d %s, want 200", rec.Code, rec.Body)
	}
	now = now.Add(time.Minute)
	a.Housekeep(ctx)
	if rec := readyz(a); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no longer published") {
		t.Errorf("readyz past the publish TTL = %d %q, want 503 naming the key's publication", rec.Code, rec.Body)
	}
	if _, err := a.Signer.SignJWT(map[string]string{"iss": "x"}); !errors.Is(err, keys.ErrLapsed) {
		t.Errorf("signing past the publish TTL: %v, want keys.ErrLapsed", err)
	}
}

// TestReadyzKeySetStale: a node whose store answers a ping but whose
// key set cannot be read for longer than keys.Set.MaxStale serves no
// JWKS and verifies nothing, and says so at /readyz with 503 (ADR 18).
func TestReadyzKeySetStale(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "varde.db")
	env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": "test", "VARDE_STORE_DSN": path}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: make([]byte, 32), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Fatalf("readyz = %d %s, want 200", rec.Code, rec.Body)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("ALTER TABLE public_keys RENAME TO public_keys_gone"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Fatalf("readyz with the key set read a minute ago = %d %s, want 200", rec.Code, rec.Body)
	}
	now = now.Add(keys.DefaultMaxStale)
	if rec := readyz(a); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "key set not read") {
		t.Errorf("readyz with the key set last read more than MaxStale ago = %d %q, want 503 naming the stale key set", rec.Code, rec.Body)
	}
	if _, err := raw.Exec("ALTER TABLE public_keys_gone RENAME TO public_keys"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if rec := readyz(a); rec.Code != http.StatusOK {
		t.Errorf("readyz once the key set is read again = %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestSharedKeyFileRefused: a node started with the key file of another
// node that has not left is refused, with a message naming both; once
// the other has left (a node renamed with its key file), it starts and
// the key is credited to it.
func TestSharedKeyFileRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "varde.db")
	key, err := keys.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := func(node string) (*app.App, error) {
		env := map[string]string{"VARDE_ISSUER": "http://localhost:8080", "VARDE_NODE": node, "VARDE_STORE_DSN": path}
		cfg, err := config.Load("", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		return app.New(ctx, cfg, app.Options{Signer: key, SubjectSalt: make([]byte, 32), Now: func() time.Time { return now }})
	}
	// Node a publishes the key, and is still running as far as the store
	// can tell (it recorded no departure).
	a, err := start("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	b, err := start("b")
	if err == nil {
		b.Close()
		t.Fatal("node b started with node a's key file")
	}
	for _, want := range []string{key.KID(), `node "a"`, `node is "b"`, "own key file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	db, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := db.ListPublicKeys(ctx, now); err != nil || len(ks) != 1 || ks[0].Node != "a" {
		t.Fatalf("keys after the refused start: %v, want a's alone", err)
	}
	// a stops (renamed b): b starts with the key, now its own.
	if err := db.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "a", LeftAt: now, Reason: store.NodeStopped}, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err = start("b")
	if err != nil {
		t.Fatalf("node b after a left: %v", err)
	}
	defer b.Close()
	if ks, err := b.Store.ListPublicKeys(ctx, now); err != nil || len(ks) != 1 || ks[0].Node != "b" {
		t.Errorf("keys after b started: %v, want the key credited to b", err)
	}
}
