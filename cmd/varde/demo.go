package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/demorp"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// demo runs a whole Varde on localhost: one node over embedded SQLite,
// synthetic enrolment switched on, and Demo Bank as a relying party.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen address; the host must be localhost (WebAuthn needs a name, not an IP)")
	dataDir := fs.String("data", "", "directory for the database and keys (default: a temporary directory, deleted on exit)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || host != "localhost" {
		return fmt.Errorf("--addr %q: the host must be localhost", *addr)
	}
	dir, keep := *dataDir, "kept for the next run with --data"
	if dir == "" {
		dir, err = os.MkdirTemp("", "varde-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		keep = "deleted when the demo stops"
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another demo running? try --addr localhost:8081)", *addr, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	issuer := fmt.Sprintf("http://localhost:%d", port)

	d, err := newDemo(ctx, dir, issuer, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer d.app.Close()
	fmt.Fprintf(stdout, `Varde demo is running.

  Demo Bank (a relying party):  %[1]s/demo-bank/
  Your Varde account:           %[1]s/account
  OpenID discovery:             %[1]s/.well-known/openid-configuration
  Metrics:                      %[1]s/metrics

Open Demo Bank and choose "Log in with Varde", then "Passkey", then
"Create a test person (demo)": Varde makes up a synthetic person, and
your browser or phone creates a passkey for it. Log out at Demo Bank and
log in again with that passkey.

Data: %[2]s (%[3]s)
Press Ctrl+C to stop.
`, issuer, dir, keep)
	return d.app.Serve(ctx, ln)
}

type demoNode struct {
	app *app.App
}

// newDemo builds the demo node and Demo Bank. Keys and the subject salt
// live in dir, so a demo restarted with the same --data keeps its persons
// and their subject identifiers.
func newDemo(ctx context.Context, dir, issuer, logLevel string, stderr io.Writer) (*demoNode, error) {
	signer, err := loadOrCreateSigner(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		return nil, err
	}
	salt, err := loadOrCreateSecret(filepath.Join(dir, "subject-salt"))
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load("", func(k string) string {
		return map[string]string{
			"VARDE_ISSUER":     issuer,
			"VARDE_NODE":       "demo",
			"VARDE_STORE_DSN":  filepath.Join(dir, "varde.db"),
			"VARDE_LOG_LEVEL":  logLevel,
			"VARDE_LOG_FORMAT": "text",
			"VARDE_LISTEN":     "localhost:0",
		}[k]
	})
	if err != nil {
		return nil, err
	}
	cfg.Passkey.SyntheticEnrolment = true
	log := newLogger(stderr, cfg.Log)

	bankKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	bankJWK := jose.JSONWebKey{Key: &bankKey.PublicKey, KeyID: "demo-bank-1", Algorithm: "ES256", Use: "sig"}
	bankJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{bankJWK}})
	if err != nil {
		return nil, err
	}
	bank := &demorp.RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: issuer, BaseURL: issuer + "/demo-bank",
		Key: bankKey, KeyID: bankJWK.KeyID,
		ACRValues:  []string{assurance.ACRSubstantial, assurance.ACRHigh},
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Log:        log, Now: time.Now,
	}
	a, err := app.New(ctx, cfg, app.Options{
		Log: log, Signer: signer, SubjectSalt: salt,
		Mount: func(mux *http.ServeMux) { mux.Handle("/demo-bank/", bank.Handler()) },
	})
	if err != nil {
		return nil, err
	}
	err = a.Store.PutClient(ctx, &store.Client{
		ID: "demo-bank", Name: "Demo Bank", AuthMethod: store.AuthPrivateKeyJWT, JWKS: bankJWKS,
		RedirectURIs:           []string{issuer + "/demo-bank/callback"},
		PostLogoutRedirectURIs: []string{issuer + "/demo-bank/"},
		RequirePAR:             true,
		SectorID:               "demo-bank.example",
		Claims:                 []string{"name", "given_name", "family_name", "birthdate", "national_id"},
		Source:                 "demo", CreatedAt: time.Now(),
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return &demoNode{app: a}, nil
}

// loadOrCreateSigner reads the demo's signing key, creating it on first run.
func loadOrCreateSigner(path string) (*keys.Signer, error) {
	if _, err := os.Stat(path); err == nil {
		return keys.LoadPEMFile(path)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return keys.New(k, nil)
}

func loadOrCreateSecret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return raw, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}
