package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLeftoverArgumentsRefused: a word left after the flags (most often
// the second word of a value that was not quoted) is refused by name,
// with a hint, before the command does anything; Go's flag parser would
// otherwise stop there and drop every flag after it. Only status export
// takes a positional argument, DIR, and exactly one. A flag the help
// calls required, missing, is a usage error as well.
func TestLeftoverArgumentsRefused(t *testing.T) {
	cfg := adminConfig(t)
	dir := t.TempDir()
	missing, out := filepath.Join(dir, "none.yaml"), filepath.Join(dir, "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax", "Portal", "--auth-method", "none",
			"--redirect-uri", "https://tax.example/cb", "--require-par", "--levels", "high"},
			`clients add: unexpected argument "Portal": quote values with spaces: --name "Tax Portal"`},
		{[]string{"clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax", "--require-par", "true", "--levels", "high"},
			`unexpected argument "true": --require-par takes no value`},
		{[]string{"clients", "list", "--config", cfg, "all"}, `clients list: unexpected argument "all"`},
		{[]string{"clients", "remove", "--config", cfg, "tax"}, `clients remove: unexpected argument "tax"`},
		{[]string{"status", "note", "--config", cfg, "--incident", "i1", "--author", "Ops", "--message", "Fixed", "now"},
			`status note: unexpected argument "now": quote values with spaces: --message "Fixed now"`},
		{[]string{"status", "maintenance", "list", "--config", cfg, "soon"}, `status maintenance list: unexpected argument "soon"`},
		{[]string{"status", "export", "--config", cfg}, "status export: missing DIR"},
		{[]string{"status", "export", "--config", cfg, out, "--quiet"}, `unexpected argument "--quiet": flags go before any other argument`},
		{[]string{"serve", "--config", missing, "now"}, `serve: unexpected argument "now"`},
		{[]string{"demo", "--addr", "localhost:0", "quick"}, `demo: unexpected argument "quick"`},
		{[]string{"provider", "fault", "--admin", "http://localhost:9", "--token", "t", "--mode", "down", "now"},
			`provider fault: unexpected argument "now"`},
		{[]string{"provider-sim", "--name", "Demo", "BankID", "--id", "bankid"}, `quote values with spaces: --name "Demo BankID"`},
		{[]string{"bench", "--duration", "1s", "fast"}, `bench: unexpected argument "fast"`},
		{[]string{"resilience", "--users", "2", "more"}, `resilience: unexpected argument "more"`},
		{[]string{"clients", "add", "--nope"}, "flag provided but not defined"},
		{[]string{"clients", "add", "--config", cfg, "--id", "tax", "--auth-method", "none", "--redirect-uri", "https://tax.example/cb"},
			"clients add: --id and --name are required"},
		{[]string{"clients", "remove", "--config", cfg}, "clients remove: --id is required"},
		{[]string{"version", "--short"}, `version: unexpected argument "--short"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
	} {
		t.Run(strings.Join(tc.args[:min(2, len(tc.args))], " "), func(t *testing.T) {
			_, err := runCmd(t, tc.args...)
			if _, ok := errors.AsType[*usageError](err); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: error %v, want a usage error with %q", tc.args, err, tc.want)
			}
		})
	}
	if out, err := runCmd(t, "clients", "list", "--config", cfg); err != nil || strings.Contains(out, "tax") {
		t.Errorf("a refused client was stored (%v):\n%s", err, out)
	}
}

// TestHelpOnStdout: usage asked for with -h or --help is printed on
// stdout and the command succeeds (exit status 0); a flag the command
// does not have still prints the usage on stderr and exits with 2.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "-h"}, {"serve", "--help"}, {"clients", "add", "-h"}, {"provider-sim", "--help"},
		{"bench", "-h"}, {"store", "backup", "-h"}, {"keys", "list", "--help"}, {"config", "check", "-h"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(args, &stdout, &stderr)
		if code := exitStatus(err, &stderr); code != 0 || !strings.Contains(stdout.String(), "-config") && !strings.Contains(stdout.String(), "-name") && !strings.Contains(stdout.String(), "-target") {
			t.Errorf("varde %s: exit status %d, stdout %q, stderr %q; want 0 and the flags on stdout", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("varde %s: stderr %q, want nothing", strings.Join(args, " "), stderr.String())
		}
	}
	// A command group's usage, asked for, is the group's answer too.
	for _, args := range [][]string{
		{"clients", "-h"}, {"clients", "--help"}, {"keys", "-h"}, {"nodes", "--help"}, {"store", "-h"},
		{"status", "-h"}, {"status", "maintenance", "--help"}, {"provider", "-h"}, {"clients", "help"},
		{"version", "-h"}, {"version", "--help"}, {"version", "help"}, {"config", "-h"}, {"config", "help"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(args, &stdout, &stderr)
		if code := exitStatus(err, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "usage: varde "+args[0]) || stderr.Len() != 0 {
			t.Errorf("varde %s: exit status %d, stdout %q, stderr %q; want 0 and the group's usage on stdout only", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	err := run([]string{"serve", "--frobnicate"}, &stdout, &stderr)
	if code := exitStatus(err, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "-config") {
		t.Errorf("serve --frobnicate: exit status %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, stdout.String(), stderr.String())
	}
	// An unknown subcommand is a command called wrongly: the usage on
	// stderr, status 2, and the error names the group's commands.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "frob"}, "add, list, remove"},
		{[]string{"keys", "frob"}, "list, retire"},
		{[]string{"nodes", "frob"}, "list, forget"},
		{[]string{"store", "frob"}, "backup, verify"},
		{[]string{"status", "frob"}, "incidents, note"},
		{[]string{"provider", "frob"}, "fault"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(tc.args, &stdout, &stderr)
		if code := exitStatus(err, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage: varde "+tc.args[0]) ||
			!strings.Contains(stderr.String(), `"frob"`) || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("varde %s: exit status %d, stdout %q, stderr %q; want 2, the usage on stderr and %q", strings.Join(tc.args, " "), code, stdout.String(), stderr.String(), tc.want)
		}
	}
}

// TestExitStatus: a command called wrongly, or a node refused its
// configuration, exits with status 2 and says why; any other failure
// exits with 1.
func TestExitStatus(t *testing.T) {
	cfg := adminConfig(t)
	bad := filepath.Join(t.TempDir(), "varde.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nissuer: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax", "Portal", "--auth-method", "none",
			"--redirect-uri", "https://tax.example/cb", "--require-par"}, 2, `unexpected argument "Portal"`},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"version", "--short"}, 2, `version: unexpected argument "--short"`},
		{[]string{"clients", "remove", "--config", cfg, "--id", "nobody"}, 1, "remove nobody"},
		{[]string{"serve", "--config", bad}, 2, `issuer: "nope" is not an absolute URL`},
		{[]string{"config", "check", "--config", bad}, 1, `issuer: "nope" is not an absolute URL`},
	} {
		if status, stderr := runChild(t, tc.args...); status != tc.status || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit status %d, want %d and %q on stderr:\n%s", tc.args, status, tc.status, tc.want, stderr)
		}
	}
}

// runChild runs varde with args in a process of its own, and returns
// its exit status and what it wrote on stderr.
func runChild(t *testing.T, args ...string) (int, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnvMarker+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}
