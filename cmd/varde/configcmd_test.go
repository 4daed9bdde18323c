package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// checkedConfig writes a configuration for a public issuer to dir whose
// signing key, subject salt, client secret and upstream secret are good
// files beside it, and returns its path.
func checkedConfig(t *testing.T, dir string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"signing.pem": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})),
		"salt":        strings.Repeat("s", 32), "bank-secret": strings.Repeat("b", 40) + "\n", "minid-secret": "upstream-secret\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "varde.yaml")
	yaml := `version: 1
issuer: https://login.example.no
listen: 127.0.0.1:0
store: {dsn: ` + filepath.Join(dir, "varde.db") + `}
keys:
  signing_key_file: ` + filepath.Join(dir, "signing.pem") + `
  subject_salt_file: ` + filepath.Join(dir, "salt") + `
clients:
  - id: bank
    auth_method: client_secret_basic
    secret_file: ` + filepath.Join(dir, "bank-secret") + `
    redirect_uris: [https://bank.example/cb]
upstreams:
  - {id: minid, name: {en: MinID}, issuer: https://minid.example.no, client_id: varde, auth_method: client_secret_basic,
     client_secret_file: ` + filepath.Join(dir, "minid-secret") + `, max_level: substantial, acr_map: {"urn:sub": substantial},
     identifier_claim: pid, identifier_schemes: [no:fnr, no:dnr]}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigCheck: varde config check reads every key and secret file a
// node reads at start, exits 1 naming each bad one by its setting, and
// 0 when all can serve, without printing what they hold and without
// creating the database.
func TestConfigCheck(t *testing.T) {
	put := func(name, content string) func(dir string) {
		return func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		spoil func(dir string)
		want  []string
	}{
		{"good", func(string) {}, nil},
		{"signing key", put("signing.pem", "-----BEGIN NOTHING-----"), []string{"keys.signing_key_file"}},
		{"salt", put("salt", "short"), []string{"keys.subject_salt_file", "fewer than the 32"}},
		{"salt others read", func(dir string) { _ = os.Chmod(filepath.Join(dir, "salt"), 0o644) },
			[]string{"keys.subject_salt_file", "mode 0644"}},
		{"client secret", put("bank-secret", "short"), []string{"client bank secret", "shorter than 32"}},
		{"client secret missing", func(dir string) { _ = os.Remove(filepath.Join(dir, "bank-secret")) },
			[]string{"client bank secret_file", "no such file"}},
		{"upstream secret", put("minid-secret", "\n"), []string{"upstream minid client_secret_file", "is empty"}},
		{"every one", func(dir string) {
			put("signing.pem", "x")(dir)
			put("salt", "x")(dir)
			put("bank-secret", "x")(dir)
			put("minid-secret", "")(dir)
		}, []string{"keys.signing_key_file", "keys.subject_salt_file", "client bank secret", "upstream minid client_secret_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := checkedConfig(t, dir)
			tc.spoil(dir)
			var stdout, stderr bytes.Buffer
			code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
			if _, err := os.Stat(filepath.Join(dir, "varde.db")); !os.IsNotExist(err) {
				t.Errorf("the check made the database: %v", err)
			}
			if strings.Contains(stdout.String()+stderr.String(), strings.Repeat("b", 40)) {
				t.Errorf("the check printed the client secret:\n%s%s", &stdout, &stderr)
			}
			if len(tc.want) == 0 {
				if code != 0 || !strings.Contains(stdout.String(), path+": ") {
					t.Fatalf("exit status %d, stdout %q, stderr %q; want 0 and the file named", code, &stdout, &stderr)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q\nwant it to name %q", &stderr, w)
				}
			}
		})
	}
}

// TestServeNamesEveryBadFile: varde serve reads the files as varde
// config check does, so it too names every bad one before it starts.
func TestServeNamesEveryBadFile(t *testing.T) {
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	for _, name := range []string{"salt", "minid-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := runCmd(t, "serve", "--config", path)
	for _, w := range []string{"keys.subject_salt_file", "upstream minid client_secret_file"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("serve: %v\nwant it to name %q", err, w)
		}
	}
}

// TestConfigCheckCalledWrongly: a config command it does not have, or a
// word left over, exits 2.
func TestConfigCheckCalledWrongly(t *testing.T) {
	for _, args := range [][]string{{"config", "lint"}, {"config", "check", "extra"}, {"config"}} {
		var stdout, stderr bytes.Buffer
		if code := exitStatus(run(args, &stdout, &stderr), &stderr); code != 2 {
			t.Errorf("varde %s: exit status %d, want 2\n%s", strings.Join(args, " "), code, &stderr)
		}
	}
}

// TestConfigCheckComparesStoreSalt: when the node's store exists,
// config check compares the subject salt with the one the store was
// first used with, reading the store only (no pin written, no schema
// change), and exits 1 if it differs; when it does not exist, it says the
// store was not checked, and creates nothing. SQLite and PostgreSQL.
func TestConfigCheckComparesStoreSalt(t *testing.T) {
	ctx := context.Background()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			path := checkedConfig(t, dir)
			sc := config.Store{Driver: driver, DSN: filepath.Join(dir, "varde.db")}
			if driver == "postgres" {
				sc.DSN = pgtest.NewDatabase(t)
				usePostgres(t, path, sc.DSN)
			}
			check := func() (int, string, string) {
				var stdout, stderr bytes.Buffer
				code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
				return code, stdout.String(), stderr.String()
			}
			// Without a store: no SQLite file, or a PostgreSQL database
			// (which must exist before any node starts) without Varde's
			// tables.
			code, out, errOut := check()
			want := map[string]string{"sqlite": "the store was not checked: no database at", "postgres": `holds no Varde store yet`}[driver]
			if code != 0 || !strings.Contains(out, want) || strings.Contains(out, "no database at database") {
				t.Errorf("without a store: exit status %d, %q %q; want 0 and %q", code, out, errOut, want)
			}
			// An admin command says the same, and to start a node first.
			says := map[string]string{"sqlite": "no database at " + sc.DSN + ", the store.dsn from", "postgres": "holds no Varde store, the store.dsn from"}[driver]
			if out, err := runCmd(t, "clients", "list", "--config", path); err == nil || !strings.Contains(err.Error(), says) ||
				strings.Contains(err.Error(), "no database at database") || !strings.Contains(err.Error(), "start the node once") {
				t.Errorf("clients list without a store: %v\n%s", err, out)
			}
			if driver == "sqlite" {
				if _, err := os.Stat(sc.DSN); !os.IsNotExist(err) {
					t.Errorf("the check made the database: %v", err)
				}
			}
			st, err := app.OpenStore(ctx, sc)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if code, out, errOut := check(); code != 0 || !strings.Contains(out, "holds no subject salt yet") {
				t.Errorf("with a store and no salt pinned: exit status %d, %q %q", code, out, errOut)
			}
			if _, err := st.Pinned(ctx, "subject_salt"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the check pinned its salt: %v", err)
			}
			m := hmac.New(sha256.New, []byte(strings.Repeat("s", 32)))
			m.Write([]byte("varde subject salt fingerprint v1"))
			if _, err := st.Pin(ctx, "subject_salt", m.Sum(nil), time.Now()); err != nil {
				t.Fatal(err)
			}
			if code, out, errOut := check(); code != 0 || !strings.Contains(out, "the subject salt is the one the store at") {
				t.Errorf("with the store's salt: exit status %d, %q %q", code, out, errOut)
			}
			if err := os.WriteFile(filepath.Join(dir, "salt"), []byte(strings.Repeat("t", 32)), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, out, errOut := check(); code != 1 || !strings.Contains(errOut, "the subject salt differs from the one this store was first used with") {
				t.Errorf("with another salt: exit status %d, %q %q; want 1 and the salt named", code, out, errOut)
			}
		})
	}
}

// TestConfigCheckReportsSettingsAndFiles: config check reports the
// settings' problems and, in the same run, those of the key and secret
// files that the valid settings name; a client or upstream with a
// problem of its own is not read.
func TestConfigCheckReportsSettingsAndFiles(t *testing.T) {
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A setting that names no file is wrong, and so are the salt and a
	// client's secret; the upstream has a problem of its own and its
	// secret file is not read.
	body := strings.Replace(string(raw), "listen: 127.0.0.1:0", "listen: nowhere", 1)
	body = strings.Replace(body, "max_level: substantial", "max_level: supreme", 1)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"salt": "short", "bank-secret": "short", "minid-secret": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, w := range []string{"listen", "upstreams[0].max_level", "keys.subject_salt_file", "fewer than the 32", "client bank secret", "shorter than 32"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q\nwant it to name %q", &stderr, w)
		}
	}
	if strings.Contains(stderr.String(), "upstream minid client_secret_file") {
		t.Errorf("stderr %q\nreads the secret of an upstream whose settings are not valid", &stderr)
	}
}

// TestConfigCheckClientsAgainstStore: a client the file declares that
// would share subject identifiers with one added with varde clients add
// makes config check exit 1 naming both, as serve refuses to start; a
// client once declared and since taken out of the file, which a start
// removes, is no clash.
func TestConfigCheckClientsAgainstStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	st, err := app.OpenStore(ctx, config.Store{Driver: "sqlite", DSN: filepath.Join(dir, "varde.db")})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if out, err := runCmd(t, "clients", "add", "--config", path, "--id", "tax", "--name", "Tax", "--auth-method", "none",
		"--redirect-uri", "https://tax.example/cb", "--sector", "shop"); err != nil {
		t.Fatalf("clients add: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The file now declares a client "shop", without a sector of its
	// own: its sector is "shop", tax's too.
	clash := strings.Replace(string(raw), "upstreams:", "  - {id: shop, auth_method: none, redirect_uris: [https://shop.example/cb]}\nupstreams:", 1)
	if err := os.WriteFile(path, []byte(clash), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `client "shop" in the configuration and client "tax" in the store would get the same subject identifiers`) {
		t.Errorf("config check of a clashing client: exit status %d, %q %q; want 1 and both named", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	if code := exitStatus(run([]string{"serve", "--config", path}, &stdout, &stderr), &stderr); code != 1 || !strings.Contains(stderr.String(), `client "shop" in the configuration and client "tax" in the store`) {
		t.Fatalf("serve with a clashing client: exit status %d, %q; want it refused as config check said", code, stderr.String())
	}
	// A client "tax2" with sector "shop2", stored from the file by an
	// earlier start, is out of the file now: a start removes it before
	// it could clash with the file's new client "shop2".
	st, err = app.OpenStore(ctx, config.Store{Driver: "sqlite", DSN: filepath.Join(dir, "varde.db")})
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutClient(ctx, &store.Client{ID: "tax2", Name: "Tax 2", AuthMethod: "none", RedirectURIs: []string{"https://tax.example/cb2"},
		SectorID: "shop2", Source: store.ClientSourceConfig, CreatedAt: time.Now()})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	later := strings.Replace(string(raw), "upstreams:", "  - {id: shop2, auth_method: none, redirect_uris: [https://shop.example/cb2]}\nupstreams:", 1)
	if err := os.WriteFile(path, []byte(later), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr); code != 0 {
		t.Errorf("config check with a client the file no longer declares: exit status %d, %q %q; want 0", code, stdout.String(), stderr.String())
	}
}

// TestConfigCheckSaysWhoseAddressHeaderIsBelieved: varde config check
// says whom the node believes X-Forwarded-For from, or that it believes
// no one and logs each request's TCP peer; a bad entry is an error
// naming it.
func TestConfigCheckSaysWhoseAddressHeaderIsBelieved(t *testing.T) {
	for _, tc := range []struct{ name, env, want string }{
		{"none", "", "X-Forwarded-For is believed from no one (server.trusted_proxies is empty): each request's client is its TCP peer"},
		{"some", "127.0.0.1, 10.0.0.0/24", "X-Forwarded-For is believed only from 127.0.0.1, 10.0.0.0/24 (server.trusted_proxies)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := checkedConfig(t, t.TempDir())
			t.Setenv(config.EnvServerTrustedProxies, tc.env)
			var stdout, stderr bytes.Buffer
			code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
			if code != 0 || !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("exit status %d, stdout %q, stderr %q; want 0 and %q", code, &stdout, &stderr, tc.want)
			}
		})
	}
	path := checkedConfig(t, t.TempDir())
	t.Setenv(config.EnvServerTrustedProxies, "127.0.0.1,nginx.internal")
	var stdout, stderr bytes.Buffer
	code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), `server.trusted_proxies[1]: "nginx.internal" is not an IP address or network`) {
		t.Errorf("exit status %d, stderr %q; want 1 naming the entry", code, &stderr)
	}
}

// TestConfigCheckSaysHowLongAddressesAreKept: varde config check says
// after how long the client addresses in the audit log are deleted
// (audit.address_retention, ADR 38), in days as well as in the
// duration the setting is written in.
func TestConfigCheckSaysHowLongAddressesAreKept(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"default", "", "client addresses in the audit log are deleted 180 days (4320h0m0s, audit.address_retention) after their event, " +
			"unless a hold keeps them longer (varde audit hold list);"},
		{"set", "audit:\n  address_retention: 36h\n", "client addresses in the audit log are deleted 1.5 days (36h0m0s, audit.address_retention) after their event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := checkedConfig(t, t.TempDir())
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tc.file); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var stdout, stderr bytes.Buffer
			code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
			if code != 0 || !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("exit status %d, stdout %q, stderr %q; want 0 and %q", code, &stdout, &stderr, tc.want)
			}
		})
	}
}

// TestConfigCheckSectorChanged: a client the file declares with another
// sector than the one it was stored with, after a person logged in to
// it, makes config check exit 1 naming the client, both sectors and the
// setting that accepts the change, as serve refuses to start; with
// sector_id_change_accepted naming the old sector, the file passes.
func TestConfigCheckSectorChanged(t *testing.T) {
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	// An earlier start stored shop from the file, and a person logged in
	// to it.
	inStore(t, dir, func(ctx context.Context, st store.Store) error {
		return errors.Join(
			st.PutClient(ctx, &store.Client{ID: "shop", Name: "Shop", AuthMethod: "none", RedirectURIs: []string{"https://shop.example/cb"},
				SectorID: "shop.example", Source: store.ClientSourceConfig, CreatedAt: time.Now()}),
			st.AppendAudit(ctx, &store.AuditEvent{Time: time.Now(), Type: "consent", PersonID: "p1", ClientID: "shop", Result: store.ResultSuccess}))
	})
	declare := declarer(t, path)
	declare("{id: shop, auth_method: none, redirect_uris: [https://shop.example/cb]}")
	wants := []string{`client "shop" has the sector "shop.example"`, `"shop" (its ID: it has no sector_id)`, "new people",
		`give it sector_id: "shop.example" again`, `add sector_id_change_accepted: "shop.example"`}
	var stdout, stderr bytes.Buffer
	if code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr); code != 1 || !containsAll(stderr.String(), wants) {
		t.Errorf("config check of a client whose sector changed: exit status %d, %q %q; want 1 and %q", code, &stdout, &stderr, wants)
	}
	stderr.Reset()
	if code := exitStatus(run([]string{"serve", "--config", path}, &stdout, &stderr), &stderr); code != 1 || !containsAll(stderr.String(), wants) {
		t.Errorf("serve with a client whose sector changed: exit status %d, %q; want it refused as config check said", code, &stderr)
	}
	declare("{id: shop, auth_method: none, redirect_uris: [https://shop.example/cb], sector_id_change_accepted: shop.example}")
	stdout.Reset()
	stderr.Reset()
	if code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr); code != 0 {
		t.Errorf("config check of a change accepted: exit status %d, %q %q; want 0", code, &stdout, &stderr)
	}
}

// TestConfigCheckWarnsOfUnknownSector: a client the file declares whose
// ID was removed, with people who had logged in to it, before removals
// recorded the sector, gets the warning varde serve logs and varde
// clients add prints (its old sector is not known), and config check
// still exits 0: a node starts with it.
func TestConfigCheckWarnsOfUnknownSector(t *testing.T) {
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	inStore(t, dir, func(ctx context.Context, st store.Store) error {
		return errors.Join(
			st.AppendAudit(ctx, &store.AuditEvent{Time: time.Now(), Type: "consent", PersonID: "p1", ClientID: "old", Result: store.ResultSuccess}),
			st.AppendAudit(ctx, &store.AuditEvent{Time: time.Now(), Type: "client_removed", ClientID: "old", Result: store.ResultSuccess,
				Details: map[string]string{"via": "cli"}}))
	})
	declarer(t, path)("{id: old, auth_method: none, redirect_uris: [https://old.example/cb], sector_id: old.example}")
	var stdout, stderr bytes.Buffer
	code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
	want := []string{`WARNING: client "old" was removed on `, `, and people had logged in to it, under a sector not recorded then: unless it was "old.example"`}
	if code != 0 || !containsAll(stderr.String(), want) || strings.Contains(stdout.String(), "WARNING") {
		t.Errorf("config check of a client whose old sector is unknown: exit status %d, stdout %q, stderr %q; want 0 and on stderr %q",
			code, &stdout, &stderr, want)
	}
	if !strings.Contains(stdout.String(), "can serve") {
		t.Errorf("config check: stdout %q, want it to say the configuration can serve", &stdout)
	}
}

// inStore runs write on the SQLite store of the configuration
// checkedConfig wrote to dir, as an earlier node would have.
func inStore(t *testing.T, dir string, write func(context.Context, store.Store) error) {
	t.Helper()
	ctx := context.Background()
	st, err := app.OpenStore(ctx, config.Store{Driver: "sqlite", DSN: filepath.Join(dir, "varde.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(write(ctx, st), st.Close()); err != nil {
		t.Fatal(err)
	}
}

// declarer returns a function that rewrites the configuration file at
// path as it is now, with one more client, given as a YAML flow
// mapping.
func declarer(t *testing.T, path string) func(client string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return func(client string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.Replace(string(raw), "upstreams:", "  - "+client+"\nupstreams:", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// usePostgres rewrites the configuration checkedConfig wrote at path
// for the node's store to be the PostgreSQL database at dsn.
func usePostgres(t *testing.T, path, dsn string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(raw), "store: {dsn: "+filepath.Join(filepath.Dir(path), "varde.db")+"}",
		fmt.Sprintf("store: {driver: postgres, dsn: %q}", dsn), 1)
	if body == string(raw) {
		t.Fatal("the configuration names no SQLite store to replace")
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConfigCheckSaysClientsWereNotChecked: a store whose subject salt
// config check could read, and whose clients it could not, never
// passes as checked. Clients it may not read (a role without the
// right), which a node would fail on at start too, make it exit 1
// saying so; clients held locked past the server's statement_timeout,
// a store busy now, make it say, as of a store it cannot reach, that
// they were not checked and that the node checks them when it starts.
func TestConfigCheckSaysClientsWereNotChecked(t *testing.T) {
	ctx := context.Background()
	reader, check := readerStore(t)
	admin, role := reader.Admin, reader.Name
	t.Run("clients it may not read", func(t *testing.T) {
		if _, err := admin.Exec(ctx, "REVOKE SELECT ON clients FROM "+role); err != nil {
			t.Fatal(err)
		}
		defer admin.Exec(ctx, "GRANT SELECT ON clients TO "+role)
		code, out, errOut := check(reader.DSN)
		if code != 1 || strings.Contains(out, "can serve") ||
			!strings.Contains(errOut, "the clients the file declares could not be checked against those of the store at") ||
			!strings.Contains(errOut, "42501") || strings.Count(errOut, "list clients") != 1 {
			t.Errorf("exit status %d, %q %q; want 1, the clients named as not checked, with the server's refusal (42501), "+
				"each step said once", code, out, errOut)
		}
	})
	// Each stored client takes the role 30s to read, and the salt no
	// time: the server's statement_timeout, or config check's own bound
	// (storeCheckTimeout), ends the read of the clients.
	for _, stmt := range []string{"ALTER TABLE clients ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY slow ON clients FOR SELECT TO " + role + " USING (pg_sleep(30) IS NOT NULL)"} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]struct{ dsn, why string }{
		"the server's statement_timeout":       {reader.DSN + "&options=-c%20statement_timeout%3D300", "57014"},
		"config check's own bound on the read": {reader.DSN, "deadline exceeded"},
	} {
		t.Run("clients too slow to read within "+name, func(t *testing.T) {
			code, out, errOut := check(c.dsn)
			if code != 0 || !strings.Contains(out, "can serve") || !strings.Contains(out, "holds no subject salt yet") ||
				!strings.Contains(out, "the clients the file declares were not checked against those of the store") ||
				!strings.Contains(out, c.why) || !strings.Contains(out, "the node checks them when it starts") {
				t.Errorf("exit status %d, %q %q; want 0, saying the clients were not checked, and why (%s)", code, out, errOut, c.why)
			}
		})
	}
}

// readerStore makes a PostgreSQL store holding one client added with
// varde clients add, and a role, reader, that may read its tables, for
// tests of what config check says of a store it cannot read all of.
// check runs config check on a fresh copy of the configuration with dsn
// as its store, returning its exit status and output.
func readerStore(t *testing.T) (reader *pgtest.Role, check func(dsn string) (code int, stdout, stderr string)) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	dsn := pgtest.NewDatabase(t)
	st, err := app.OpenStore(ctx, config.Store{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutClient(ctx, &store.Client{ID: "tax", Name: "Tax", AuthMethod: "none", RedirectURIs: []string{"https://tax.example/cb"},
		Source: store.ClientSourceCLI, CreatedAt: time.Now()})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	reader = pgtest.NewRole(t, dsn)
	if _, err := reader.Admin.Exec(ctx, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+reader.Name); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check = func(dsn string) (code int, stdout, stderr string) {
		if err := os.WriteFile(path, written, 0o600); err != nil {
			t.Fatal(err)
		}
		usePostgres(t, path, dsn)
		var out, errOut bytes.Buffer
		code = exitStatus(run([]string{"config", "check", "--config", path}, &out, &errOut), &errOut)
		return code, out.String(), errOut.String()
	}
	return reader, check
}

// TestConfigCheckSaysSaltWasNotChecked: a store whose subject salt config
// check could not read never passes as checked. A salt it may not read
// (a role without the right), which a node would fail on at start too,
// makes it exit 1 saying so; a salt held locked past the server's
// statement_timeout, a store busy now, or a schema this build does not
// read as it is (the node of this version upgrades it when it starts),
// make it say that the store was not checked and that the node
// compares the salt when it starts.
func TestConfigCheckSaysSaltWasNotChecked(t *testing.T) {
	ctx := context.Background()
	reader, check := readerStore(t)
	admin := reader.Admin
	t.Run("salt it may not read", func(t *testing.T) {
		if _, err := admin.Exec(ctx, "REVOKE SELECT ON pins FROM "+reader.Name); err != nil {
			t.Fatal(err)
		}
		defer admin.Exec(ctx, "GRANT SELECT ON pins TO "+reader.Name)
		code, out, errOut := check(reader.DSN)
		if code != 1 || strings.Contains(out, "can serve") ||
			!strings.Contains(errOut, "the subject salt could not be compared with the one the store at") ||
			!strings.Contains(errOut, "42501") {
			t.Errorf("exit status %d, %q %q; want 1, the salt named as not compared, with the server's refusal (42501)", code, out, errOut)
		}
	})
	t.Run("salt locked past the server's statement_timeout", func(t *testing.T) {
		tx, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "LOCK TABLE pins IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := check(reader.DSN + "&options=-c%20statement_timeout%3D300")
		if code != 0 || !strings.Contains(out, "can serve") || !strings.Contains(out, "the store was not checked") ||
			!strings.Contains(out, "57014") || !strings.Contains(out, "the node compares the subject salt with the store's when it starts") {
			t.Errorf("exit status %d, %q %q; want 0, saying the store was not checked, and why (57014)", code, out, errOut)
		}
	})
	t.Run("a store of an older schema", func(t *testing.T) {
		var last int
		if err := admin.QueryRow(ctx, "SELECT max(version) FROM schema_migrations").Scan(&last); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "DELETE FROM schema_migrations WHERE version = $1", last); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := check(reader.DSN)
		if code != 0 || !strings.Contains(out, "can serve") || !strings.Contains(out, "the store was not checked") ||
			!strings.Contains(out, "upgrade it by starting `varde serve` of this version") {
			t.Errorf("exit status %d, %q %q; want 0, saying the store was not checked, and why (its schema)", code, out, errOut)
		}
	})
}
