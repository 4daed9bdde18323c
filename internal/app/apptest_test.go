package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// node is a real Varde node serving HTTP on 127.0.0.1, addressed as
// localhost (a WebAuthn RP ID cannot be an IP address).
type node struct {
	app    *app.App
	issuer string
	http   *http.Client
}

func startNode(t *testing.T) *node {
	t.Helper()
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	n, _ := startNodeAt(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "varde.db"), salt)
	return n
}

// startNodeAt starts a node listening on addr over the SQLite file at
// dsn; stop ends it (and is also run at cleanup), so a test can start
// another node on the same address and file: a restart.
func startNodeAt(t *testing.T, addr, dsn string, salt []byte) (n *node, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	env := map[string]string{
		"VARDE_ISSUER":    issuer,
		"VARDE_NODE":      "test",
		"VARDE_STORE_DSN": dsn,
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passkey.SyntheticEnrolment = true
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{SubjectSalt: salt})
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
	return &node{app: a, issuer: issuer, http: loadgen.NewHTTPClient(4)}, stop
}

// addRP registers a private_key_jwt client with PAR required and returns
// a relying party for it.
func (n *node) addRP(t *testing.T, id, sector string, claims ...string) *loadgen.RP {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: id + "-1", Algorithm: "ES256", Use: "sig"}}})
	redirect := "https://" + id + ".example/callback"
	err = n.app.Store.PutClient(context.Background(), &store.Client{
		ID: id, Name: id, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs: []string{redirect}, RequirePAR: true, SectorID: sector, Claims: claims,
		Source: "test", CreatedAt: time.Now(),
	})
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
	p := loadgen.NewDevice(n.issuer, synced)
	if err := loadgen.Enrol(context.Background(), n.http, n.issuer, p, "Kari", "Nordmann"); err != nil {
		t.Fatal(err)
	}
	return p
}
