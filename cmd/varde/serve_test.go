package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
)

// rawSQLite opens the SQLite store that the configuration at cfgPath
// names as a plain database, past the store's own code, for a test to
// read or write what a node would not; closed when the test ends.
func rawSQLite(t *testing.T, cfgPath string) *sql.DB {
	t.Helper()
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAdminCommandsDoNotMigrate: the admin commands refuse a database
// whose schema is older than this varde's (its nodes run an older
// version; upgrading it is theirs to do) or newer (this varde would not
// see what the newer schema records), say which versions and what to
// do, and leave the schema as it was. store verify checks an older
// SQLite store without migrating it instead (TestStoreVerifyOfAnOlderSchema).
func TestAdminCommandsDoNotMigrate(t *testing.T) {
	cfgPath := adminConfig(t)
	db := rawSQLite(t, cfgPath)
	versions := func() string {
		t.Helper()
		var v string
		if err := db.QueryRow("SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var last int
	if err := db.QueryRow("SELECT max(version) FROM schema_migrations").Scan(&last); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	commands := [][]string{
		{"clients", "list"},
		{"keys", "list"},
		{"status", "incidents"},
		{"store", "verify"},
	}
	for _, tc := range []struct {
		name   string
		change func()
		says   string
	}{
		{"older", func() { exec("DELETE FROM schema_migrations WHERE version = ?", last) },
			fmt.Sprintf("the database is at schema %d, this varde needs %d: upgrade it by starting `varde serve` of this version", last-1, last)},
		{"newer", func() {
			exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'x', 1), (?, 'future', 1)", last, last+1)
		}, fmt.Sprintf("the database is at schema %d, which this varde (schema %d) does not know: run the varde of the version the nodes run", last+1, last)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			before := versions()
			for _, c := range commands {
				if tc.name == "older" && c[0] == "store" {
					continue
				}
				out, err := runCmd(t, append(c, "--config", cfgPath)...)
				if err == nil || !strings.Contains(err.Error(), tc.says) {
					t.Errorf("varde %s: %v, want it to say %q\n%s", strings.Join(c, " "), err, tc.says, out)
				}
			}
			if after := versions(); after != before {
				t.Errorf("schema versions after the commands: %s, before: %s", after, before)
			}
		})
	}
}

// TestServeRefusesSecretFilesOthersCanRead: a node whose signing key,
// subject salt, client secret or upstream key file other users can read
// (or its group can write) does not start, and says which setting, which
// file, its mode and how to fix it. Owner-only and group-readable files
// are accepted.
func TestServeRefusesSecretFilesOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	key, _ := keyFile(t, dir, "signing-key.pem")
	upKey, _ := keyFile(t, dir, "upstream-key.pem")
	salt := filepath.Join(dir, "salt")
	secret := filepath.Join(dir, "client-secret")
	for _, f := range []struct{ path, body string }{{salt, strings.Repeat("s", 32)}, {secret, strings.Repeat("x", 40)}} {
		if err := os.WriteFile(f.path, []byte(f.body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "varde.yaml")
	body := fmt.Sprintf(`version: 1
issuer: http://localhost:1
listen: "127.0.0.1:1"
node: n1
store: {dsn: %s}
keys: {signing_key_file: %s, subject_salt_file: %s}
clients:
  - {id: tax, name: Tax, auth_method: client_secret_basic, secret_file: %s, redirect_uris: ["https://tax.example/cb"]}
upstreams:
  - id: bankid
    name: {en: BankID}
    issuer: https://bankid.example
    client_id: varde
    auth_method: private_key_jwt
    client_key_file: %s
    max_level: high
    acr_map: {high: high}
    identifier_claim: pid
    identifier_schemes: [no:fnr, no:dnr]
`, filepath.Join(dir, "varde.db"), key, salt, secret, upKey)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// The listener is taken, so that a node that starts stops there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("VARDE_LISTEN", ln.Addr().String())
	for _, tc := range []struct {
		name, field, path string
		mode              os.FileMode
		says              string
	}{
		{"signing key world-readable", "keys.signing_key_file", key, 0o644, "other users can read or write it"},
		{"salt world-readable", "keys.subject_salt_file", salt, 0o604, "other users can read or write it"},
		{"salt group-writable", "keys.subject_salt_file", salt, 0o660, "its group can write it"},
		{"client secret world-readable", "client tax secret_file", secret, 0o644, "other users can read or write it"},
		{"upstream key world-readable", "upstream bankid client_key_file", upKey, 0o644, "other users can read or write it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(tc.path, tc.mode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(tc.path, 0o600)
			out, err := runCmd(t, "serve", "--config", cfgPath)
			want := fmt.Sprintf("%s: %s has mode %04o: %s", tc.field, tc.path, tc.mode, tc.says)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "chmod 600 "+tc.path) {
				t.Errorf("serve: %v, want it to say %q\n%s", err, want, out)
			}
		})
	}
	// Group-readable files are fine: the node gets as far as its
	// listener, which is taken, and says which setting holds the address
	// and what to do.
	for _, f := range []string{key, salt, secret, upKey} {
		if err := os.Chmod(f, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCmd(t, "serve", "--config", cfgPath)
	for _, want := range []string{
		fmt.Sprintf("listen (env VARDE_LISTEN): cannot listen on %q", ln.Addr().String()),
		"address already in use",
		"another process is listening there: stop it, or set listen to a free address",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("serve with group-readable files: %v, want it to say %q\n%s", err, want, out)
		}
	}
}

// TestServeSecondSignalStopsAtOnce: the first SIGINT starts a node's
// drain (/readyz answers 503 while it goes on serving); a second one,
// Ctrl-C pressed again, ends the process at once instead of being
// swallowed until the drain is over.
func TestServeSecondSignalStopsAtOnce(t *testing.T) {
	cfgPath, issuer := writeServeConfig(t, "shutdown: {drain: 1m}\n")
	p := startServeProcess(t, cfgPath)
	cmd, logs, done := p.cmd, p.logs, p.done
	readyz := func() int {
		res, err := http.Get(issuer + "/readyz")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, "the node to be ready", 20*time.Second, func() bool { return readyz() == http.StatusOK })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to drain", 10*time.Second, func() bool { return readyz() == http.StatusServiceUnavailable })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the node still runs 5s after a second SIGINT, draining for its 1m\n%s", logs.String())
	}
}

// writeServeConfig writes a single node's configuration on SQLite in a
// directory of its own, with extra appended, and returns its path and
// the node's issuer.
func writeServeConfig(t *testing.T, extra string) (cfgPath, issuer string) {
	t.Helper()
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, issuer := freeAddr(t)
	cfgPath = filepath.Join(dir, "varde.yaml")
	body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: n1\nstore: {dsn: %s}\nkeys: {subject_salt_file: %s}\n%s",
		issuer, addr, filepath.Join(dir, "varde.db"), salt, extra)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, issuer
}

// serveProcess is `varde serve` run as a process of its own (the test
// binary acting as varde), for a test to send it signals.
type serveProcess struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	// done is closed when the process has exited, with err its
	// outcome.
	done chan struct{}
	err  error
}

// startServeProcess starts `varde serve --config cfgPath`, killed when
// the test ends if it still runs.
func startServeProcess(t *testing.T, cfgPath string) *serveProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: exec.Command(exe, "serve", "--config", cfgPath), logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), childEnvMarker+"=1")
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestAdminCommandsWithoutConfig: a command that reads a node's
// configuration, run without --config and without the environment
// making one, says to give one, and exits with status 2, a command
// called wrongly.
func TestAdminCommandsWithoutConfig(t *testing.T) {
	for _, c := range [][]string{{"keys", "list"}, {"nodes", "list"}, {"clients", "list"}, {"store", "verify"}, {"status", "incidents"}, {"serve"}, {"config", "check"}} {
		var stderr bytes.Buffer
		code := exitStatus(run(c, io.Discard, &stderr), &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "no --config given") || !strings.Contains(stderr.String(), "issuer: required") {
			t.Errorf("varde %s: exit status %d, %q; want 2 and a word about --config", strings.Join(c, " "), code, stderr.String())
		}
	}
}

// TestServeSubjectSaltErrors: a node without a subject salt, or with
// one too short, does not start, and says which setting, which file and
// how to make a salt.
func TestServeSubjectSaltErrors(t *testing.T) {
	dir := t.TempDir()
	key, _ := keyFile(t, dir, "signing-key.pem")
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 16)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, keys string
		says       []string
	}{
		{"too short", fmt.Sprintf("{signing_key_file: %s, subject_salt_file: %s}", key, salt), []string{
			fmt.Sprintf("keys.subject_salt_file: %s holds 16 bytes, fewer than the 32 a subject salt needs", salt),
			"head -c 32 /dev/urandom > FILE",
		}},
		{"none", fmt.Sprintf("{signing_key_file: %s}", key), []string{
			"keys.subject_salt_file (env VARDE_SUBJECT_SALT_FILE) is required",
			"head -c 32 /dev/urandom > FILE",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := filepath.Join(dir, "varde.yaml")
			body := fmt.Sprintf("version: 1\nissuer: http://localhost:1\nlisten: \"127.0.0.1:0\"\nnode: n1\nstore: {dsn: %s}\nkeys: %s\n",
				filepath.Join(dir, "varde.db"), tc.keys)
			if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runCmd(t, "serve", "--config", cfgPath)
			for _, want := range tc.says {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("serve: %v, want it to say %q\n%s", err, want, out)
				}
			}
		})
	}
}

// TestServeBusyPortTouchesNoStore: a node whose listen, metrics.listen
// or debug.pprof_listen address is taken is refused, naming the setting, before it creates,
// migrates or writes its store: a second node started by mistake on a
// busy port leaves the database as it was.
func TestServeBusyPortTouchesNoStore(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, _ := freeAddr(t)
	for _, tc := range []struct {
		name, listen, metrics, pprof, says string
	}{
		{"listen", busy.Addr().String(), "", "", fmt.Sprintf("listen (env VARDE_LISTEN): cannot listen on %q", busy.Addr().String())},
		{"metrics.listen", free, busy.Addr().String(), "", fmt.Sprintf("metrics.listen (env VARDE_METRICS_LISTEN): cannot listen on %q", busy.Addr().String())},
		{"debug.pprof_listen", free, "", busy.Addr().String(), fmt.Sprintf("debug.pprof_listen (env VARDE_DEBUG_PPROF_LISTEN): cannot listen on %q", busy.Addr().String())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "varde.db")
			cfgPath := filepath.Join(dir, "varde.yaml")
			body := fmt.Sprintf("version: 1\nissuer: http://localhost:1\nlisten: %q\nnode: n1\nstore: {dsn: %s}\nkeys: {subject_salt_file: %s}\n",
				tc.listen, db, salt)
			if tc.metrics != "" {
				body += fmt.Sprintf("metrics: {listen: %q}\n", tc.metrics)
			}
			if tc.pprof != "" {
				body += fmt.Sprintf("debug: {pprof_listen: %q}\n", tc.pprof)
			}
			if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runCmd(t, "serve", "--config", cfgPath)
			if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "another process is listening there") {
				t.Errorf("serve: %v, want it to say %q\n%s", err, tc.says, out)
			}
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Errorf("the store %s was created by a node that could not listen (stat: %v)", db, err)
			}
		})
	}
}

// TestServeLogsSchemaMigrated: a node that creates or upgrades its
// store's schema says so at info, from which version to which; one that
// finds it at this build's version says nothing of it.
func TestServeLogsSchemaMigrated(t *testing.T) {
	cfgPath, issuer := writeServeConfig(t, "")
	run := func() string {
		t.Helper()
		p := startServeProcess(t, cfgPath)
		waitReady(t, issuer)
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		<-p.done
		return p.logs.String()
	}
	first := run()
	line := ""
	for l := range strings.Lines(first) {
		if strings.Contains(l, `"msg":"store schema migrated"`) {
			line = l
		}
	}
	if !strings.Contains(line, `"from":0`) || !strings.Contains(line, `"first":"0001_`) {
		t.Errorf("the first start logged no migration from schema 0:\n%s", first)
	}
	if again := run(); strings.Contains(again, "store schema migrated") {
		t.Errorf("a start at this build's schema logged a migration:\n%s", again)
	}
}

// TestServeLogsItsStop: a node told to stop (SIGTERM) on SQLite, which
// does not drain, says that it stops and, once it has, that it stopped,
// so that its log tells a stop asked for from a crash.
func TestServeLogsItsStop(t *testing.T) {
	cfgPath, issuer := writeServeConfig(t, "")
	p := startServeProcess(t, cfgPath)
	waitReady(t, issuer)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	logs := p.logs.String()
	if p.err != nil || !strings.Contains(logs, `"msg":"stopping: the listener closes`) || !strings.Contains(logs, `"grace":10000000000`) ||
		!strings.Contains(logs, `"msg":"varde stopped serving"`) {
		t.Errorf("a node stopped: %v, want a clean exit that logs its stop:\n%s", p.err, logs)
	}
}

// waitReady waits for the node at issuer to answer 200 at /readyz.
func waitReady(t *testing.T, issuer string) {
	t.Helper()
	waitFor(t, "the node to be ready", 20*time.Second, func() bool {
		res, err := http.Get(issuer + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}
