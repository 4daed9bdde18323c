package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestRootCommandsOnNodeStore: an operator runs the admin commands with
// sudo on the store of a node that runs as an unprivileged user (the
// systemd example's varde). They work, and leave nothing in the store's
// directory that is root's, which the node could not open; varde serve
// run as root on that store is refused, naming its user, before it
// creates anything. The store layer's TestRootOnNodeStore starts the
// node as that user around such commands, and TestCheckUser runs the
// check for any user.
func TestRootCommandsOnNodeStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the store to another user; sqlstore's TestCheckUser runs the check for any user")
	}
	const nodeUID = 65534
	cfgPath := adminConfig(t)
	cfg, err := config.LoadEnviron(cfgPath, func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cfg.Store.DSN)
	for _, p := range []string{dir, cfg.Store.DSN} {
		if err := os.Chown(p, nodeUID, nodeUID); err != nil {
			t.Fatal(err)
		}
	}
	storeFiles := func(step string) {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Name(), filepath.Base(cfg.Store.DSN)) {
				continue // the configuration and salt, root's
			}
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != nodeUID {
				t.Errorf("after %s: %s belongs to uid %d, not the node's user", step, e.Name(), st.Uid)
			}
		}
	}
	for _, c := range [][]string{
		{"config", "check"},
		{"clients", "add", "--id", "tax", "--name", "Tax Portal", "--auth-method", "client_secret_basic", "--secret-file", writeClientSecret(t), "--redirect-uri", "https://tax.example.no/callback"},
		{"clients", "list"},
		{"keys", "list"},
		{"nodes", "list"},
		{"status", "incidents"},
		{"persons", "show", "no:fnr:15076500565"},
		{"store", "verify"},
	} {
		step := "varde " + strings.Join(c[:2], " ")
		out, err := runCmd(t, append(append([]string{}, c[:2]...), append([]string{"--config", cfgPath}, c[2:]...)...)...)
		if err != nil && !(c[0] == "persons" && strings.Contains(err.Error(), "no person")) {
			t.Errorf("%s as root: %v\n%s", step, err, out)
		}
		storeFiles(step)
	}
	out, err := runCmd(t, "serve", "--config", cfgPath)
	if !errors.Is(err, sqlstore.ErrWrongUser) || !strings.Contains(err.Error(), "sudo -u nobody varde serve") {
		t.Errorf("varde serve as root on the store of uid %d: %v, want it refused, saying to run it as that user\n%s", nodeUID, err, out)
	}
	// Nor is it started again by systemd, which restarts a node that
	// fails but not one that exits with status 2.
	if status, stderr := runChild(t, "serve", "--config", cfgPath); status != 2 || !strings.Contains(stderr, "sudo -u nobody varde serve") {
		t.Errorf("varde serve as root on the store of uid %d: exit status %d, want 2\n%s", nodeUID, status, stderr)
	}
	storeFiles("varde serve")
	if _, err := os.Stat(cfg.Store.DSN + ".lock"); err == nil {
		t.Error("varde serve as root made the lock file")
	}
}

// writeClientSecret writes a client secret file, and returns its path.
func writeClientSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tax.secret")
	if err := os.WriteFile(p, []byte(strings.Repeat("x", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
