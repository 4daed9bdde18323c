package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// adminConfig writes a node config whose store is a fresh SQLite file,
// created as the node creates it at its first start.
func adminConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, bytes.Repeat([]byte("s"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(dir, "varde.db")
	cfg := filepath.Join(dir, "varde.yaml")
	body := "version: 1\nissuer: http://localhost:8080\nstore:\n  dsn: " + dsn + "\nkeys:\n  subject_salt_file: " + salt + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), config.Store{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestClientsAddHugeJWKSFile(t *testing.T) {
	cfg := adminConfig(t)
	huge := filepath.Join(t.TempDir(), "huge.json")
	if err := os.WriteFile(huge, []byte(`{"keys":[]}`+strings.Repeat(" ", maxJWKSFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax Portal",
		"--jwks-file", huge, "--redirect-uri", "https://tax.example.no/callback")
	if want := "--jwks-file: " + huge + " is larger than 1048576 bytes"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one with %q", err, want)
	}
}

func TestClientsAddListRemove(t *testing.T) {
	cfg := adminConfig(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "tax.jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax Portal",
		"--jwks-file", jwksFile, "--redirect-uri", "https://tax.example.no/callback", "--require-par",
		"--levels", "substantial,high", "--claims", "name", "--providers", "passkey", "--degraded-level", "substantial",
		"--legacy-endpoint-audience", "--dpop", "--refresh-tokens")
	if err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "tax", "--name", "Again",
		"--jwks-file", jwksFile, "--redirect-uri", "https://tax.example.no/callback"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate add: %v", err)
	}
	out, err = runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tax", "Tax Portal", "private_key_jwt (endpoint aud) (DPoP)", "true", "substantial,high (degraded: substantial)", "passkey", "cli", "https://tax.example.no/callback"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	// PAR and REFRESH: required, and refresh tokens given.
	if !strings.Contains(out, "REFRESH") || !regexp.MustCompile(`\(DPoP\)\s+true\s+true\s+ES256\s+substantial`).MatchString(out) {
		t.Errorf("list does not show that it gets refresh tokens:\n%s", out)
	}
	if out, err := runCmd(t, "clients", "remove", "--config", cfg, "--id", "tax"); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if out, _ := runCmd(t, "clients", "list", "--config", cfg); strings.Contains(out, "Tax Portal") {
		t.Errorf("removed client still listed:\n%s", out)
	}
	if _, err := runCmd(t, "clients", "remove", "--config", cfg, "--id", "tax"); err == nil {
		t.Error("removing an unknown client succeeded")
	}
}

// TestClientsRemoveDeclared: a client the configuration file declares,
// which a node would add again at its next start, is not removed
// without --still-declared, and the error says what to do; with it, the
// client is removed at once and a warning says the file must change.
func TestClientsRemoveDeclared(t *testing.T) {
	cfgPath := adminConfig(t)
	appendFile(t, cfgPath, "clients:\n  - id: bank\n    name: Bank\n    auth_method: none\n"+
		"    redirect_uris: [\"https://bank.example/cb\"]\n")
	// As the node stores it at its start.
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := cfg.Clients[0].ToStore(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutClient(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	st.Close()
	listed := func() bool {
		t.Helper()
		out, err := runCmd(t, "clients", "list", "--config", cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out, "bank")
	}

	out, err := runCmd(t, "clients", "remove", "--config", cfgPath, "--id", "bank")
	for _, want := range []string{"client bank is declared in the configuration file " + cfgPath, "take it out of that file", "--still-declared"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("remove of a declared client: %v, want it to say %q\n%s", err, want, out)
		}
	}
	if !listed() {
		t.Error("the declared client was removed without --still-declared")
	}

	var stdout, stderr bytes.Buffer
	if err := run([]string{"clients", "remove", "--config", cfgPath, "--id", "bank", "--still-declared"}, &stdout, &stderr); err != nil {
		t.Fatalf("remove --still-declared: %v\n%s%s", err, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "removed client bank") ||
		!strings.Contains(stderr.String(), "WARNING: client bank is still declared in "+cfgPath) {
		t.Errorf("remove --still-declared printed %q and %q", &stdout, &stderr)
	}
	if listed() {
		t.Error("the client is still there after remove --still-declared")
	}
}

// TestClientsAddValidates: the CLI holds a client to the config file's
// rules and reports every problem at once.
func TestClientsAddValidates(t *testing.T) {
	cfg := adminConfig(t)
	_, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "shop", "--name", "Shop",
		"--auth-method", "private_key_jwt", "--redirect-uri", "http://shop.example/cb", "--levels", "extreme")
	if err == nil {
		t.Fatal("invalid client accepted")
	}
	for _, want := range []string{"--redirect-uri", "--levels", "--jwks-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if out, _ := runCmd(t, "clients", "list", "--config", cfg); strings.Contains(out, "shop") {
		t.Error("invalid client was stored")
	}
}

// TestClientsAddNamesFlags: the problems with a client given by flags
// name the flags, not the configuration file's clients[N] form, and a
// client of the file whose problem is the new client says so.
func TestClientsAddNamesFlags(t *testing.T) {
	cfg := adminConfig(t)
	appendFile(t, cfg, "clients:\n  - id: bank\n    auth_method: none\n    redirect_uris: [\"https://bank.example/cb\"]\n")
	_, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "shop", "--name", "Shop",
		"--redirect-uri", "https://shop.example/cb", "--redirect-uri", "http://shop.example/cb2", "--levels", "substantial,extreme",
		"--status-components", "store")
	if err == nil {
		t.Fatal("invalid client accepted")
	}
	for _, want := range []string{
		`--redirect-uri: "http://shop.example/cb2" must use https`,
		`--levels: "extreme" is not low, substantial or high`,
		"--status-components: needs --status-webhook",
		"clients add: --auth-method private_key_jwt needs --jwks-file or --jwks-uri",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A name with a line break would show as two clients in clients list;
	// a '*' is no wildcard.
	_, err = runCmd(t, "clients", "add", "--config", cfg, "--id", "shop", "--name", "Shop\nbank  Bank", "--auth-method", "none",
		"--redirect-uri", "https://shop.example/*")
	for _, want := range []string{`--name: "Shop\nbank  Bank" holds a control character`, `--redirect-uri: "https://shop.example/*" holds a '*'`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	_, err = runCmd(t, "clients", "add", "--config", cfg, "--id", "agency", "--name", "Agency", "--auth-method", "none",
		"--redirect-uri", "https://agency.example/cb", "--sector", "bank")
	if want := `sector "bank" is the ID of client "bank", which has no sector of its own, so the two would get the same subject identifiers: choose another --sector`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	_, err = runCmd(t, "clients", "add", "--config", cfg, "--id", "bank", "--name", "Bank", "--auth-method", "none",
		"--redirect-uri", "https://bank.example/cb")
	if want := `--id: "bank" is also clients[0].id`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	for _, e := range []error{err} {
		if e != nil && strings.Contains(e.Error(), "clients[1]") {
			t.Errorf("error names the new client as clients[1]: %v", e)
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	if out, err := runCmd(t, "version"); err != nil || !strings.HasPrefix(out, "varde ") {
		t.Errorf("version: %q %v", out, err)
	}
	if _, err := runCmd(t, "frobnicate"); err == nil {
		t.Error("unknown command accepted")
	}
}

// TestClientsAddStatusWebhook: --status-webhook and --status-components
// reach the stored client, under the config file's URL rule (https, http
// only to localhost) and component names.
func TestClientsAddStatusWebhook(t *testing.T) {
	cfg := adminConfig(t)
	base := []string{"clients", "add", "--config", cfg, "--auth-method", "none", "--redirect-uri", "https://shop.example/cb"}
	for _, tc := range []struct {
		id, hook, comps, want string
	}{
		{"plain", "http://shop.example/events", "", "https"},
		{"comps", "https://shop.example/events", "store,nowhere", `"nowhere" is not a component`},
		{"nohook", "", "store", "needs --status-webhook"},
	} {
		args := append(append([]string(nil), base...), "--id", tc.id, "--name", tc.id, "--status-webhook", tc.hook, "--status-components", tc.comps)
		if _, err := runCmd(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.id, err, tc.want)
		}
	}
	args := append(append([]string(nil), base...), "--id", "shop", "--name", "Shop",
		"--status-webhook", "https://shop.example/events?token=s3cret", "--status-components", "store, passkey",
		"--backchannel-logout-uri", "https://shop.example/logout?key=l0gout")
	if out, err := runCmd(t, args...); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err := runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The URLs are shown without their query, where a secret may sit.
	if !strings.Contains(out, "https://shop.example/events?redacted (store,passkey)") || !strings.Contains(out, "https://shop.example/logout?redacted") {
		t.Errorf("list lacks the webhook or the logout URI:\n%s", out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "l0gout") {
		t.Errorf("list shows a URL's query:\n%s", out)
	}
	if strings.Contains(out, "plain") || strings.Contains(out, "nohook") {
		t.Errorf("an invalid client was stored:\n%s", out)
	}
}

// TestClientsAddRefusesSharedSubjects: a client is refused when it would
// get the same subject identifiers as a client already registered, in the
// store or in the config file, without both naming the sector: a client
// ID that is another's sector, or a sector that is the ID of a client
// without one. Every clashing client is named. Naming the sector on both
// is allowed.
func TestClientsAddRefusesSharedSubjects(t *testing.T) {
	cfg := adminConfig(t)
	appendFile(t, cfg, "clients:\n  - id: bank\n    auth_method: none\n    sector_id: bank.example\n"+
		"    redirect_uris: [\"https://bank.example/cb\"]\n")
	add := func(id string, flags ...string) error {
		t.Helper()
		args := append([]string{"clients", "add", "--config", cfg, "--id", id, "--name", id, "--auth-method", "none",
			"--redirect-uri", "https://" + id + ".example/cb"}, flags...)
		_, err := runCmd(t, args...)
		return err
	}
	for _, id := range []string{"gov", "portal"} {
		if err := add(id); err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
	}
	if err := add("portal-app", "--sector", "portal.example"); err != nil {
		t.Fatalf("add portal-app: %v", err)
	}
	// A second client of bank's sector, in the store: a clash names both,
	// the file's and the store's.
	if err := add("bank-app", "--sector", "bank.example"); err != nil {
		t.Fatalf("add bank-app: %v", err)
	}
	for _, tc := range []struct {
		id    string
		flags []string
		want  string
	}{
		{"bank.example", nil, `client ID "bank.example" is the sector of 2 clients ("bank", "bank-app"), so all of them would get the same subject identifiers: add --sector bank.example`},
		{"agency", []string{"--sector", "gov"}, `sector "gov" is the ID of client "gov", which has no sector of its own`},
		{"portal.example", nil, `client ID "portal.example" is the sector of client "portal-app"`},
	} {
		if err := add(tc.id, tc.flags...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("add %s %v: error %v, want %q", tc.id, tc.flags, err, tc.want)
		}
	}
	// The sector named on both sides is a deliberate share.
	if err := add("portal.example", "--sector", "portal.example"); err != nil {
		t.Errorf("add portal.example naming its sector: %v", err)
	}
	out, err := runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if id, _, _ := strings.Cut(line, " "); id == "bank.example" || id == "agency" {
			t.Errorf("refused client %s was stored:\n%s", id, out)
		}
	}
}

// TestAdminCommandsNeedTheNodesDatabase: with a store.dsn where there is
// no database (a wrong --config, a typo), the admin commands say so and
// create nothing, rather than writing to a new database no node reads.
func TestAdminCommandsNeedTheNodesDatabase(t *testing.T) {
	cfg := adminConfig(t)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wrongDir := filepath.Join(t.TempDir(), "typo")
	dsn := filepath.Join(wrongDir, "varde.db")
	wrong := filepath.Join(t.TempDir(), "wrong.yaml")
	body := regexp.MustCompile(`dsn: .*`).ReplaceAllString(string(raw), "dsn: "+dsn)
	if err := os.WriteFile(wrong, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"clients", "add", "--config", wrong, "--id", "tax", "--name", "Tax", "--auth-method", "none", "--redirect-uri", "https://tax.example/cb"},
		{"clients", "list", "--config", wrong},
		{"clients", "remove", "--config", wrong, "--id", "tax"},
		{"status", "incidents", "--config", wrong},
		{"status", "maintenance", "list", "--config", wrong},
	} {
		_, err := runCmd(t, args...)
		if err == nil || !strings.Contains(err.Error(), "no database at "+dsn) || !strings.Contains(err.Error(), "--config") {
			t.Errorf("%v: error %v, want one naming %s and suggesting --config", args[:2], err, dsn)
		}
	}
	if _, err := os.Stat(wrongDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the admin commands created %s (%v)", wrongDir, err)
	}
	if out, err := runCmd(t, "clients", "list", "--config", cfg); err != nil {
		t.Errorf("list on the node's own database: %v\n%s", err, out)
	}
}

// TestUnknownVardeVariableRefused: a VARDE_* variable that is not a
// setting, such as VARDE_SIGNING_KEY for VARDE_SIGNING_KEY_FILE, stops
// the node and the admin commands, naming it.
func TestUnknownVardeVariableRefused(t *testing.T) {
	cfg := adminConfig(t)
	t.Setenv("VARDE_SIGNING_KEY", "/run/key.pem")
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "VARDE_SIGNING_KEY: no such setting") || !strings.Contains(err.Error(), "VARDE_SIGNING_KEY_FILE") {
			t.Errorf("%s: error %v, want VARDE_SIGNING_KEY refused and the settings listed", what, err)
		}
	}
	// A node that did start would stop at once: its context is done.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check("serve", serve(ctx, []string{"--config", cfg}, io.Discard))
	for _, args := range [][]string{{"clients", "list", "--config", cfg}, {"status", "incidents", "--config", cfg}} {
		_, err := runCmd(t, args...)
		check(strings.Join(args[:2], " "), err)
	}
}

// TestClientsAddBackchannelLogoutURI: --backchannel-logout-uri reaches
// the stored client under the config file's URL rule, and list shows it.
func TestClientsAddBackchannelLogoutURI(t *testing.T) {
	cfg := adminConfig(t)
	base := []string{"clients", "add", "--config", cfg, "--auth-method", "none", "--redirect-uri", "https://shop.example/cb"}
	for _, tc := range []struct{ id, uri, want string }{
		{"plain", "http://shop.example/logout", "https"},
		{"fragment", "https://shop.example/logout#now", "fragment"},
	} {
		args := append(append([]string(nil), base...), "--id", tc.id, "--name", tc.id, "--backchannel-logout-uri", tc.uri)
		if _, err := runCmd(t, args...); err == nil || !strings.Contains(err.Error(), "--backchannel-logout-uri") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want --backchannel-logout-uri and %q", tc.id, err, tc.want)
		}
	}
	args := append(append([]string(nil), base...), "--id", "shop", "--name", "Shop", "--backchannel-logout-uri", "https://shop.example/bcl")
	if out, err := runCmd(t, args...); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err := runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "BACK-CHANNEL LOGOUT") || !strings.Contains(out, "https://shop.example/bcl") {
		t.Errorf("list lacks the back-channel logout URI:\n%s", out)
	}
	if strings.Contains(out, "plain") || strings.Contains(out, "fragment") {
		t.Errorf("an invalid client was stored:\n%s", out)
	}
}

// TestClientsAddBackchannelLogoutSessionRequired: clients add takes
// --backchannel-logout-session-required with a back-channel logout URI,
// and refuses it, naming the flags, without one.
func TestClientsAddBackchannelLogoutSessionRequired(t *testing.T) {
	cfg := adminConfig(t)
	base := []string{"clients", "add", "--config", cfg, "--auth-method", "none", "--redirect-uri", "https://shop.example/cb",
		"--backchannel-logout-session-required"}
	_, err := runCmd(t, append(base, "--id", "alone", "--name", "Alone")...)
	if err == nil || !strings.Contains(err.Error(), "--backchannel-logout-session-required") || !strings.Contains(err.Error(), "--backchannel-logout-uri") {
		t.Errorf("without a URI: error %v, want both flags named", err)
	}
	if out, err := runCmd(t, append(base, "--id", "shop", "--name", "Shop", "--backchannel-logout-uri", "https://shop.example/bcl")...); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
}

// TestClientsAddResourceServer: a resource server is added without a
// redirect URI, with the clients whose tokens it may introspect; it must
// share their sector, whichever of the two is added first.
func TestClientsAddResourceServer(t *testing.T) {
	cfg := adminConfig(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("x", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	add := func(args ...string) error {
		_, err := runCmd(t, append([]string{"clients", "add", "--config", cfg}, args...)...)
		return err
	}
	if err := add("--id", "web", "--name", "Web", "--auth-method", "none", "--redirect-uri", "https://bank.example/cb", "--sector", "bank.example"); err != nil {
		t.Fatal(err)
	}
	rs := []string{"--name", "API", "--auth-method", "client_secret_basic", "--secret-file", secret, "--introspect-tokens-of", "web,app"}
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{"public", []string{"--id", "api0", "--name", "API", "--auth-method", "none", "--introspect-tokens-of", "web", "--sector", "bank.example"}, "not --auth-method none"},
		{"other sector", append([]string{"--id", "api1"}, rs...), `client "web" has another pairwise sector`},
		{"same sector", append([]string{"--id", "api2", "--sector", "bank.example"}, rs...), ""},
		// api2 names app, not yet added: added later, it must share the sector.
		{"named before, other sector", []string{"--id", "app", "--name", "App", "--auth-method", "none", "--redirect-uri", "https://app.example/cb"}, `client "api2" may introspect`},
		{"named before, same sector", []string{"--id", "app", "--name", "App", "--auth-method", "none", "--redirect-uri", "https://app.example/cb", "--sector", "bank.example"}, ""},
		{"no redirect uri, no introspection", []string{"--id", "lost", "--name", "Lost", "--auth-method", "none"}, "--redirect-uri"},
	} {
		err := add(tc.args...)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	out, err := runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^api2 .* web,app$`).MatchString(out) || strings.Contains(out, "api1") {
		t.Errorf("list:\n%s", out)
	}
}

// TestClientsListControlCharacters: a client stored before names with
// control characters, and URIs with spaces, were refused is listed on
// one line, its name and such a redirect URI quoted, and the columns
// after them stay in place.
func TestClientsListControlCharacters(t *testing.T) {
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*store.Client{
		{ID: "shop", Name: "Shop\nbank\tBank", AuthMethod: store.AuthNone,
			RedirectURIs: []string{"https://shop.example/c b", "https://shop.example/cb"}, CreatedAt: time.Now()},
		{ID: "tax", Name: "Tax Portal", AuthMethod: store.AuthNone, RedirectURIs: []string{"https://tax.example/cb"}, CreatedAt: time.Now()},
	} {
		if err := st.PutClient(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	out, err := runCmd(t, "clients", "list", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("clients list printed %d lines, want a header and one a client:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[1], `shop  "Shop\nbank\tBank"  shop (client ID)  none`) {
		t.Errorf("shop's line %q, want its name quoted and its auth method in the next column", lines[1])
	}
	if !strings.Contains(lines[1], `"https://shop.example/c b" https://shop.example/cb`) {
		t.Errorf("shop's line %q, want its redirect URI with a space quoted", lines[1])
	}
	if col := strings.Index(lines[2], "none"); col != strings.Index(lines[1], "none") {
		t.Errorf("the AUTH column is not aligned:\n%s", out)
	}
}

// TestClientsAddKeepsRemovedSector: a client ID that people logged in
// to, removed and added again with another sector, would give them all
// new subject identifiers: varde clients add refuses it, naming the old
// sector and both ways on, unless --sector-change-accepted names the
// old sector, and then the change is in the audit log. The same sector
// again, or an ID nobody logged in to, is added as before; an ID
// removed before removals recorded the sector is added with a warning.
func TestClientsAddKeepsRemovedSector(t *testing.T) {
	ctx := context.Background()
	cfg := adminConfig(t)
	dsn := filepath.Join(filepath.Dir(cfg), "varde.db")
	cmd := func(verb, id string, flags ...string) (string, error) {
		t.Helper()
		args := []string{"clients", verb, "--config", cfg, "--id", id}
		if verb == "add" {
			args = append(args, "--name", id, "--auth-method", "none", "--redirect-uri", "https://"+id+".example/cb")
		}
		return runCmd(t, append(args, flags...)...)
	}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
	// A login to shop leaves a consent event, as the authorization
	// endpoint records it; so does one to old, removed before removals
	// recorded the sector.
	audit := func(events ...*store.AuditEvent) {
		t.Helper()
		st, err := app.OpenStore(ctx, config.Store{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for _, e := range events {
			e.Time, e.Result = time.Now(), store.ResultSuccess
			if err := st.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	must(cmd("add", "shop", "--sector", "shop.example"))
	must(cmd("add", "tax"))
	audit(&store.AuditEvent{Type: "consent", PersonID: "p1", ClientID: "shop"},
		&store.AuditEvent{Type: "consent", PersonID: "p1", ClientID: "old"},
		&store.AuditEvent{Type: "client_removed", ClientID: "old", Details: map[string]string{"via": "cli"}})
	must(cmd("remove", "shop"))
	must(cmd("remove", "tax"))

	out, err := cmd("add", "shop")
	wants := []string{`client "shop" was removed on`, `the sector "shop.example"`, `"shop" (its ID: it has no sector_id)`,
		"new people", "add it with --sector shop.example", "add --sector-change-accepted shop.example"}
	if err == nil || !containsAll(err.Error(), wants) {
		t.Errorf("add shop without its sector: %v\n%s\nwant an error saying %q", err, out, wants)
	}
	if out, err := cmd("add", "shop", "--sector-change-accepted", "other.example"); err == nil {
		t.Errorf("add shop accepting a change from a sector it never had: no error\n%s", out)
	}
	must(cmd("add", "shop", "--sector", "shop.example"))
	must(cmd("remove", "shop"))
	must(cmd("add", "shop", "--sector-change-accepted", "shop.example"))
	must(cmd("add", "tax", "--sector", "tax.example"))
	if out := must(cmd("add", "old", "--sector", "old.example")); !strings.Contains(out, `WARNING: client "old" was removed on`) {
		t.Errorf("add old: no warning that its sector then is unknown:\n%s", out)
	}

	st, err := app.OpenStore(ctx, config.Store{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	changes, err := st.ListAuditRange(ctx, store.AuditQuery{Types: []string{"client_sector_changed"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].ClientID != "shop" || changes[0].Details["from"] != "shop.example" ||
		changes[0].Details["to"] != "shop" || changes[0].Details["via"] != "cli" {
		t.Errorf("sector changes in the audit log: %d, want shop's from shop.example to shop by the CLI", len(changes))
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestClientsListSector: clients list shows each client's sector, the
// one its people's subject identifiers are derived from (ADR 35): its
// sector_id, or its ID, marked as such, when it has none. A long
// sector widens its own column only: the columns after it stay aligned
// on every line.
func TestClientsListSector(t *testing.T) {
	cfg := adminConfig(t)
	long := "sector-" + strings.Repeat("x", 90) + ".example"
	for _, args := range [][]string{
		{"--id", "bank", "--name", "Bank", "--sector", long},
		{"--id", "tax", "--name", "Tax Portal"},
		{"--id", "tax-app", "--name", "Tax App", "--sector", "tax-sector"},
	} {
		args = append([]string{"clients", "add", "--config", cfg, "--auth-method", "none", "--redirect-uri", "https://rp.example/cb"}, args...)
		if out, err := runCmd(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	out, err := runCmd(t, "clients", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("clients list printed %d lines, want a header and one a client:\n%s", len(lines), out)
	}
	for _, want := range []string{
		`(?m)^ID +NAME +SECTOR +AUTH `,
		`(?m)^bank +Bank +` + regexp.QuoteMeta(long) + ` +none `,
		`(?m)^tax +Tax Portal +tax \(client ID\) +none `,
		`(?m)^tax-app +Tax App +tax-sector +none `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("list does not match %s:\n%s", want, out)
		}
	}
	col := strings.Index(lines[0], "AUTH")
	for _, l := range lines[1:] {
		if strings.Index(l, "none") != col {
			t.Errorf("the AUTH column is not aligned after a long sector:\n%s", out)
		}
	}
}

// TestClientsAddIsAudited: a relying party added at run time is in the
// audit log, with its sector and the claims it may receive, as its
// removal is; an add refused adds no event.
func TestClientsAddIsAudited(t *testing.T) {
	cfg := adminConfig(t)
	add := func(name string) error {
		_, err := runCmd(t, "clients", "add", "--config", cfg, "--id", "tax", "--name", name, "--auth-method", "none",
			"--redirect-uri", "https://tax.example.no/callback", "--sector", "tax.example", "--claims", "name,national_id")
		return err
	}
	if err := add("Tax Portal"); err != nil {
		t.Fatal(err)
	}
	if err := add("Again"); err == nil {
		t.Fatal("a second add of tax succeeded")
	}
	st, err := app.OpenStore(t.Context(), config.Store{DSN: filepath.Join(filepath.Dir(cfg), "varde.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	added, err := st.ListAuditRange(t.Context(), store.AuditQuery{Types: []string{"client_added"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 1 {
		t.Fatalf("%d client_added events, want 1", len(added))
	}
	want := map[string]string{"via": "cli", "sector": "tax.example", "claims": "name,national_id"}
	for k, v := range want {
		if added[0].ClientID != "tax" || added[0].Details[k] != v {
			t.Errorf("client_added: client %q, %s = %q, want tax, %q", added[0].ClientID, k, added[0].Details[k], v)
		}
	}
}
