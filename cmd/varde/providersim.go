package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const providerUsage = `usage: varde provider fault [--ready-file F | --admin URL --token T|--token-file F] [--mode ok|down|slow|failing] [--delay 3s]

  fault    read or switch a simulated provider's fault (see varde provider-sim)
`

// providerSim runs one simulated national identity provider until ctx
// ends (SIGINT, SIGTERM).
func providerSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("provider-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", `name shown on its pages, e.g. "Demo BankID" (required)`)
	id := fs.String("id", "", "short ID: lower-case letters, digits, '-', e.g. bankid (required)")
	addr := fs.String("addr", "localhost:0", "issuer listen address, on loopback")
	adminAddr := fs.String("admin-addr", "localhost:0", "admin API listen address, on loopback")
	issuerHost := fs.String("issuer-host", "localhost", "host name in the issuer and admin URLs")
	level := fs.String("level", "substantial", "level of every login: low, substantial or high")
	dataDir := fs.String("data", "", "directory for the database and keys (default: a temporary directory, deleted on exit)")
	clientID := fs.String("client-id", "varde", "client ID of the relying party (Varde)")
	clientName := fs.String("client-name", "Varde", "the relying party's name, shown on the login page")
	jwksURI := fs.String("client-jwks-uri", "", "URL of the client's JWK set (private_key_jwt)")
	jwksFile := fs.String("client-jwks-file", "", "file with the client's JWK set (private_key_jwt)")
	jwksCache := fs.Duration("client-jwks-cache", 0, "how long the keys fetched from --client-jwks-uri are used, also for an unknown kid, "+
		"as an eID that caches them, e.g. 6h (default: 5m, and fetched again at most every 30s for an unknown kid)")
	secretFile := fs.String("client-secret-file", "", "file with the client secret (client_secret_basic), at least 32 characters, not readable by other users")
	requirePAR := fs.Bool("client-require-par", false, "refuse authorization requests that were not pushed first")
	var redirects listFlag
	fs.Var(&redirects, "redirect-uri", "the client's redirect URI, e.g. http://localhost:8080/upstream/bankid/callback (repeatable, required)")
	fault := fs.String("fault", "ok", "fault at start: ok, down, slow or failing")
	delay := fs.String("delay", "", "delay of the slow fault (default 3s)")
	tokenFile := fs.String("admin-token-file", "", "file with the admin token, not readable by other users (default: random, printed)")
	readyFile := fs.String("ready-file", "", "write the issuer, admin URL and token as JSON to this file once ready")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	if *name == "" || *id == "" {
		problems = append(problems, "--name and --id are required")
	}
	lvl, err := assurance.Parse(*level)
	if err != nil {
		problems = append(problems, "--level must be low, substantial or high")
	}
	client := providersim.Client{ID: *clientID, Name: *clientName, RedirectURIs: redirects, JWKSURI: *jwksURI, RequirePAR: *requirePAR}
	if *jwksFile != "" {
		raw, err := readJWKSFile("--client-jwks-file", *jwksFile)
		if err != nil {
			return err
		}
		if !json.Valid(raw) {
			return errors.New("--client-jwks-file: not JSON")
		}
		client.JWKS = raw
	}
	if *secretFile != "" {
		raw, err := config.ReadSecretFile("--client-secret-file", *secretFile)
		if err != nil {
			return err
		}
		client.Secret = strings.TrimSpace(string(raw))
		switch {
		case client.Secret == "":
			problems = append(problems, "--client-secret-file: "+*secretFile+" holds no secret")
		case len(client.Secret) < config.MinSecretLength:
			// The node holds its clients' secrets to the same rule.
			problems = append(problems, fmt.Sprintf("--client-secret-file: the secret in %s is shorter than %d characters",
				*secretFile, config.MinSecretLength))
		}
	}
	if n := countSet(*jwksURI, *jwksFile, *secretFile); n != 1 {
		problems = append(problems, "give exactly one of --client-jwks-uri, --client-jwks-file and --client-secret-file")
	}
	if len(redirects) == 0 {
		problems = append(problems, "--redirect-uri is required")
	}
	if *jwksCache < 0 || *jwksCache > 0 && *jwksURI == "" {
		problems = append(problems, "--client-jwks-cache must be a positive duration, given with --client-jwks-uri")
	}
	f, err := providersim.ParseFault(*fault, "")
	if err != nil {
		problems = append(problems, "--fault: "+err.Error())
	}
	var slowDelay time.Duration
	if *delay != "" {
		d, err := providersim.ParseFault(string(providersim.ModeSlow), *delay)
		if err != nil {
			problems = append(problems, "--delay: "+err.Error())
		}
		slowDelay = d.Delay
	}
	var token string
	if *tokenFile != "" {
		raw, err := config.ReadSecretFile("--admin-token-file", *tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(raw))
	}
	if len(problems) > 0 {
		fs.Usage()
		return usageErrorf("provider-sim: %s", strings.Join(problems, "; "))
	}

	dir, keep := *dataDir, "kept for the next run with --data"
	if dir == "" {
		if dir, err = os.MkdirTemp("", "varde-sim-"+*id+"-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		keep = "deleted when the sim stops"
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log := newLogger(stderr, config.Log{Level: *logLevel, Format: "text"})
	sim, closeSim, err := startSim(ctx, dir, providersim.Config{
		ID: *id, Name: *name, Level: lvl, Addr: *addr, AdminAddr: *adminAddr, IssuerHost: *issuerHost,
		Clients: []providersim.Client{client}, ClientKeysCache: *jwksCache, Fault: f, SlowDelay: slowDelay, AdminToken: token, Log: log,
	})
	if err != nil {
		return err
	}
	defer closeSim()
	ready := sim.Ready()
	ready.PID = os.Getpid()
	fmt.Fprintf(stdout, `%[1]s (a simulated eID, level %[2]s) is running.

  Issuer:       %[3]s
  Admin page:   %[4]s/?token=%[5]s
  Admin API:    %[4]s/fault  (Authorization: Bearer %[5]s)
  Fault now:    %[6]s

Switch it with: varde provider fault --admin %[4]s --token %[5]s --mode down|slow|failing|ok
Data: %[7]s (%[8]s)
`, ready.Name, ready.Level, ready.Issuer, ready.AdminURL, ready.AdminToken, sim.Fault(), dir, keep)
	if *readyFile != "" {
		if err := providersim.WriteReadyFile(*readyFile, ready); err != nil {
			return err
		}
		defer os.Remove(*readyFile)
	}
	<-ctx.Done()
	return nil
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// minSimSaltSize is the shortest subject salt providersim.Start and a
// demo node take.
const minSimSaltSize = 32

// startSim starts a simulated provider over SQLite in dir, with its
// signing key and subject salt kept there, so a sim restarted with the
// same dir signs with the same key and gives the same subjects. cfg's
// Store, Signer and SubjectSalt are filled in. The returned function
// stops the sim and closes its store.
func startSim(ctx context.Context, dir string, cfg providersim.Config) (*providersim.Sim, func(), error) {
	signer, err := loadOrCreateSigner(filepath.Join(dir, "signing-key.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	saltFile := filepath.Join(dir, "subject-salt")
	salt, err := loadOrCreateSecret(saltFile)
	if err != nil {
		return nil, nil, fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	if len(salt) < minSimSaltSize {
		return nil, nil, fmt.Errorf("sim %s: --data: the subject salt %s holds %d bytes, not at least %d: "+
			"delete it to have a new one made (the sim's subject identifiers then change)", cfg.ID, saltFile, len(salt), minSimSaltSize)
	}
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "sim.db"))
	if err != nil {
		return nil, nil, fmt.Errorf("sim %s: %w", cfg.ID, err)
	}
	// Like a Varde node on SQLite, the sim keeps login flow state in
	// memory (ADR 7).
	cfg.Store, cfg.Signer, cfg.SubjectSalt = flowmem.Over(db, flowmem.New(flowmem.Options{Now: cfg.Now})), signer, salt
	sim, err := providersim.Start(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return sim, func() {
		sim.Close()
		db.Close()
	}, nil
}

// provider switches a running sim: `varde provider fault …`.
func provider(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := groupHelp(providerUsage, args, stderr); err != nil {
		return err
	}
	if args[0] != "fault" {
		return unknownSubcommand("provider", providerUsage, args[0], stderr, "fault")
	}
	fs := flag.NewFlagSet("provider fault", flag.ContinueOnError)
	fs.SetOutput(stderr)
	readyFile := fs.String("ready-file", "", "the sim's ready file (gives --admin and --token)")
	adminURL := fs.String("admin", "", "the sim's admin URL, e.g. http://localhost:9101")
	token := fs.String("token", "", "the sim's admin token")
	tokenFile := fs.String("token-file", "", "file with the sim's admin token, not readable by other users")
	mode := fs.String("mode", "", "ok, down, slow or failing (default: only show the current fault)")
	delay := fs.String("delay", "", "delay of the slow fault, e.g. 3s (default the sim's)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the sim")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *readyFile != "" {
		r, err := providersim.ReadReadyFile(*readyFile)
		if err != nil {
			return err
		}
		if *adminURL == "" {
			*adminURL = r.AdminURL
		}
		if *token == "" && *tokenFile == "" {
			*token = r.AdminToken
		}
	}
	if *tokenFile != "" {
		raw, err := config.ReadSecretFile("--token-file", *tokenFile)
		if err != nil {
			return err
		}
		*token = strings.TrimSpace(string(raw))
	}
	if *adminURL == "" || *token == "" {
		fs.Usage()
		return usageErrorf("provider fault: --admin and --token (or --ready-file) are required")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := &providersim.AdminClient{URL: *adminURL, Token: *token}
	var f providersim.Fault
	var err error
	if *mode == "" {
		f, err = c.Fault(ctx)
	} else {
		want, perr := providersim.ParseFault(*mode, *delay)
		if perr != nil {
			return usageErrorf("provider fault: %w", perr)
		}
		f, err = c.SetFault(ctx, want)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "fault:", f)
	return nil
}
