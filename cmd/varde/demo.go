package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
)

// demo runs a whole Varde on localhost: one node over embedded SQLite,
// synthetic enrolment switched on, and Demo Bank as a relying party.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen address; the host must be localhost (WebAuthn needs a name, not an IP)")
	dataDir := fs.String("data", "", "directory for the database, keys and subject salt, kept between runs: created readable by you only if it does not exist, and the key and salt files in it must be yours alone (default: a temporary directory, deleted on exit)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || host != "localhost" {
		return usageErrorf("demo: --addr %q: the host must be localhost, as in localhost:8080 (WebAuthn needs a name, not an IP address)", *addr)
	}
	dir, temp, keep := *dataDir, *dataDir == "", "kept for the next run with --data"
	if temp {
		dir, err = os.MkdirTemp("", "varde-demo-")
		if err != nil {
			return err
		}
		keep = "deleted when the demo stops"
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Run last, after Varde and the simulated eIDs have stopped: a
	// temporary directory is deleted, and a demo that served says that
	// it stopped and what became of its data.
	served := false
	defer func() {
		var removed error
		if temp {
			removed = os.RemoveAll(dir)
		}
		if served {
			fmt.Fprint(stdout, demoStopped(dir, temp, removed))
		}
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another demo running? try --addr localhost:8081)", *addr, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	issuer := fmt.Sprintf("http://localhost:%d", port)

	d, err := newDemo(ctx, dir, issuer, *logLevel, stderr, demoTuning{})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, `Varde demo is running.

  Demo Bank (a relying party):  %[1]s/demo-bank/
  Your Varde account:           %[1]s/account
  Status page:                  %[1]s/status
  OpenID discovery:             %[1]s/.well-known/openid-configuration
  Metrics:                      %[1]s/metrics

Open Demo Bank and choose "Log in with Varde". Then either:
  - "Passkey", then "Create a test person (demo)": Varde makes up a
    synthetic person, and your browser or phone creates a passkey for it;
  - or one of the simulated national eIDs, and pick a test person there.
The same test person gets the same identity at Demo Bank whichever eID
they used.

To add a simulated eID to a test person made with a passkey ("Add Demo
BankID" on the account page), note the number Varde shows when it makes
the person, and type it on the eID's login page instead of picking a
listed person: those are other people, and Varde gives no test person
a second birth number or D-number.

Simulated national eIDs (switch them down, slow or failing to watch
Varde route around them):
`, issuer)
	for _, s := range d.sims {
		fmt.Fprintf(stdout, "  %-12s %s\n               admin: %s/?token=%s\n", s.Name()+":", s.Issuer(), s.AdminURL(), s.AdminToken())
	}
	fmt.Fprintf(stdout, `
Data: %[1]s (%[2]s)
Press Ctrl+C to stop.
`, dir, keep)
	served = true
	return d.app.Serve(ctx, ln)
}

// demoStopped is the line the demo prints when it has stopped: what
// became of its data in dir, a temporary directory or one given with
// --data, where removed is how deleting a temporary one went. It begins
// on a line of its own, after the ^C a terminal echoes.
func demoStopped(dir string, temp bool, removed error) string {
	switch {
	case !temp:
		return fmt.Sprintf("\nVarde demo stopped. Its data is kept in %[1]s: varde demo --data %[1]s goes on with it.\n", dir)
	case removed != nil:
		return fmt.Sprintf("\nVarde demo stopped. Its data (%s) could not be deleted: %v\n", dir, removed)
	}
	return fmt.Sprintf("\nVarde demo stopped. Its data (%s) was deleted.\n", dir)
}

type demoNode struct {
	app   *app.App
	sims  []*providersim.Sim
	stops []func()
}

// Close stops Varde, then the simulated eIDs.
func (d *demoNode) Close() {
	if d.app != nil {
		d.app.Close()
	}
	for _, stop := range d.stops {
		stop()
	}
}

// demoSims are the simulated national eIDs the demo starts.
var demoSims = []struct {
	id, name string
	level    assurance.Level
}{
	{"bankid", "Demo BankID", assurance.High},
	{"minid", "Demo MinID", assurance.Substantial},
}

// demoSimNames names the simulated eIDs by ID, for Demo Bank.
func demoSimNames() map[string]string {
	names := make(map[string]string, len(demoSims))
	for _, ds := range demoSims {
		names[ds.id] = ds.name
	}
	return names
}

// startDemoSims starts the simulated eIDs, each with Varde registered as
// a private_key_jwt client, and returns Varde's upstream configuration
// for them. Varde pushes its requests to them (PAR), so that a sim
// switched to failing fails where Varde hears it from the sim's own
// server: an error that comes back through the browser could be forged
// and does not count against an upstream's health.
func (d *demoNode) startDemoSims(ctx context.Context, dir, issuer string, log *slog.Logger) ([]config.Upstream, error) {
	keyFile := filepath.Join(dir, "upstream-client-key.pem")
	clientKey, err := loadOrCreateSigner(keyFile)
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{clientKey.PublicJWK()}})
	if err != nil {
		return nil, err
	}
	acrs := map[string]string{assurance.ACRLow: "low", assurance.ACRSubstantial: "substantial", assurance.ACRHigh: "high"}
	var ups []config.Upstream
	for _, ds := range demoSims {
		simDir := filepath.Join(dir, "sim-"+ds.id)
		if err := os.MkdirAll(simDir, 0o700); err != nil {
			return nil, err
		}
		sim, stop, err := startSim(ctx, simDir, providersim.Config{
			ID: ds.id, Name: ds.name, Level: ds.level, Log: log.With("sim", ds.id),
			Clients: []providersim.Client{{ID: "varde", Name: "Varde", JWKS: jwks,
				RedirectURIs: []string{issuer + oidcup.CallbackPath(ds.id)}}},
		})
		if err != nil {
			return nil, err
		}
		d.sims, d.stops = append(d.sims, sim), append(d.stops, stop)
		ups = append(ups, config.Upstream{
			ID: ds.id, Name: map[string]string{"en": ds.name, "nb": ds.name, "da": ds.name}, Issuer: sim.Issuer(),
			ClientID: "varde", AuthMethod: store.AuthPrivateKeyJWT, ClientKeyFile: keyFile,
			UsePAR: true, PromptLogin: true, ForwardLoginHint: true, MaxLevel: ds.level.String(), ACRMap: acrs,
			IdentifierClaim: "national_id", IdentifierSchemes: []string{"no:fnr", "no:dnr"},
		})
	}
	return ups, nil
}

// demoTuning changes the demo node for tests: its configuration after
// loading, and its clock.
type demoTuning struct {
	Config func(*config.Config)
	Now    func() time.Time
}

// newDemo builds the demo node and Demo Bank. Keys and the subject salt
// live in dir, so a demo restarted with the same --data keeps its persons
// and their subject identifiers.
func newDemo(ctx context.Context, dir, issuer, logLevel string, stderr io.Writer, tune demoTuning) (*demoNode, error) {
	if tune.Now == nil {
		tune.Now = time.Now
	}
	signer, err := loadOrCreateSigner(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		return nil, err
	}
	// The demo signs RS256 too, for relying parties that verify nothing
	// else (ADR 32); its key is made once, like the ES256 one.
	rsaSigner, err := loadOrCreateKey(filepath.Join(dir, "rsa-signing-key.pem"), keys.RS256)
	if err != nil {
		return nil, err
	}
	saltFile := filepath.Join(dir, "subject-salt")
	salt, err := loadOrCreateSecret(saltFile)
	if err != nil {
		return nil, err
	}
	if len(salt) < minSimSaltSize {
		return nil, fmt.Errorf("--data: the subject salt %s holds %d bytes, not at least %d: "+
			"delete it to have a new one made (the demo's subject identifiers then change)", saltFile, len(salt), minSimSaltSize)
	}
	cfg, err := config.Load("", func(k string) string {
		return map[string]string{
			"VARDE_ISSUER":     issuer,
			"VARDE_NODE":       "demo",
			"VARDE_STORE_DSN":  filepath.Join(dir, "varde.db"),
			"VARDE_LOG_LEVEL":  logLevel,
			"VARDE_LOG_FORMAT": "text",
			"VARDE_LISTEN":     "localhost:0",
			// A person trying the demo reads times as people in Norway do.
			"VARDE_PAGES_TIME_ZONE": "Europe/Oslo",
		}[k]
	})
	if err != nil {
		return nil, err
	}
	cfg.Passkey.SyntheticEnrolment = true
	log := newLogger(stderr, cfg.Log)
	d := &demoNode{}
	if cfg.Upstreams, err = d.startDemoSims(ctx, dir, issuer, log); err != nil {
		d.Close()
		return nil, err
	}
	if tune.Config != nil {
		tune.Config(cfg)
	}
	if err := cfg.Validate(); err != nil {
		d.Close()
		return nil, err
	}

	bankKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		d.Close()
		return nil, err
	}
	bankJWK := jose.JSONWebKey{Key: &bankKey.PublicKey, KeyID: "demo-bank-1", Algorithm: "ES256", Use: "sig"}
	bankJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{bankJWK}})
	if err != nil {
		d.Close()
		return nil, err
	}
	bankDPoPKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		d.Close()
		return nil, err
	}
	bank := &demorp.RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: issuer, BaseURL: issuer + "/demo-bank",
		Key: bankKey, KeyID: bankJWK.KeyID, DPoPKey: bankDPoPKey,
		ACRValues:     []string{assurance.ACRSubstantial, assurance.ACRHigh},
		ProviderNames: demoSimNames(),
		HTTPClient:    &http.Client{Timeout: 10 * time.Second},
		Log:           log, Now: tune.Now,
	}
	bankHandler, err := bank.Handler()
	if err != nil {
		d.Close()
		return nil, err
	}
	a, err := app.New(ctx, cfg, app.Options{
		Log: log, Signer: signer, RSASigner: rsaSigner, SubjectSalt: salt, Now: tune.Now,
		Mount: func(mux *http.ServeMux) { mux.Handle("/demo-bank/", bankHandler) },
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.app = a
	err = a.Store.PutClient(ctx, &store.Client{
		ID: "demo-bank", Name: "Demo Bank", AuthMethod: store.AuthPrivateKeyJWT, JWKS: bankJWKS,
		RedirectURIs:           []string{issuer + "/demo-bank/callback"},
		PostLogoutRedirectURIs: []string{issuer + "/demo-bank/"},
		BackchannelLogoutURI:   issuer + "/demo-bank/backchannel-logout",
		RequirePAR:             true,
		DPoPBoundAccessTokens:  true,
		SectorID:               "demo-bank.example",
		Claims:                 []string{"name", "given_name", "family_name", "birthdate", "national_id"},
		Source:                 "demo", CreatedAt: tune.Now(),
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// loadOrCreateSigner reads the demo's ES256 signing key, creating it on
// first run (loadOrCreateKey).
func loadOrCreateSigner(path string) (*keys.Signer, error) {
	return loadOrCreateKey(path, keys.Algorithm)
}

// loadOrCreateKey reads the demo's signing key of alg (ES256: ECDSA
// P-256; RS256: RSA of keys.RSABits), creating it on first run. A key
// that is there is read as the node reads its own
// (config.ReadSecretFile): one that other users can read or write, or
// that is not a regular file or is too large, or of another algorithm,
// is refused, naming it.
func loadOrCreateKey(path string, alg jose.SignatureAlgorithm) (*keys.Signer, error) {
	raw, err := config.ReadSecretFile("signing key", path)
	if err == nil {
		s, err := keys.ParsePEM(raw)
		if err != nil {
			return nil, fmt.Errorf("signing key: %s: %w", path, err)
		}
		if s.Alg() != alg {
			return nil, fmt.Errorf("signing key: %s signs %s, not %s", path, s.Alg(), alg)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var k crypto.Signer
	if alg == keys.RS256 {
		k, err = rsa.GenerateKey(rand.Reader, keys.RSABits)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := writeNewSecret(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return keys.New(k, nil)
}

// loadOrCreateSecret reads the secret at path, a file of --data, making
// 32 random bytes there (a new file, mode 0600) on first run. It is read as a node
// reads its own secret files (config.ReadSecretFile): a file that others
// may read or write, or larger than 64 KiB, is refused, naming it.
func loadOrCreateSecret(path string) ([]byte, error) {
	raw, err := config.ReadSecretFile("--data", path)
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
	return b, writeNewSecret(path, b)
}

// writeNewSecret writes b to a new file at path, readable by this user
// only. It never replaces a file: one made there in between is left as
// it is and the write fails.
func writeNewSecret(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
