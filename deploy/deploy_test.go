package deploy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vardeBin is the varde program the tests build once (TestMain), from
// this tree, to run as the unit would.
var vardeBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "varde-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	vardeBin = filepath.Join(dir, "varde")
	build := exec.Command("go", "build", "-o", vardeBin, "./cmd/varde")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/varde: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// unit is a systemd unit file as key=value settings by section, each
// key with its values in order (a key may repeat).
type unit map[string]map[string][]string

// readUnit reads the unit file at path: sections, settings, comments
// and blank lines (no line continuations; the examples have none).
func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a setting in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one is the single value of key in section, failing the test if it is
// missing or set more than once.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Fatalf("[%s] %s= is set %d times, want once", section, key, len(vs))
	}
	return vs[0]
}

// env is the unit's Environment= settings as NAME=VALUE, with the
// specifier %d (the credentials directory) replaced by creds.
func (u unit) env(t *testing.T, creds string) []string {
	t.Helper()
	var out []string
	for _, v := range u["Service"]["Environment"] {
		for _, kv := range strings.Fields(v) {
			if !strings.Contains(kv, "=") {
				t.Fatalf("Environment=%s: %q is no NAME=VALUE", v, kv)
			}
			out = append(out, strings.ReplaceAll(kv, "%d", creds))
		}
	}
	return out
}

// execStart is the unit's ExecStart= split into the program and its
// arguments (the examples quote nothing).
func (u unit) execStart(t *testing.T) (string, []string) {
	t.Helper()
	f := strings.Fields(u.one(t, "Service", "ExecStart"))
	if len(f) == 0 {
		t.Fatal("ExecStart= is empty")
	}
	return f[0], f[1:]
}

// flagValue is the value of --name (or -name) VALUE or --name=VALUE in
// args.
func flagValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if trimmed == name && a != trimmed && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(trimmed, name+"="); ok && a != trimmed {
			return v
		}
	}
	t.Fatalf("no --%s in %q", name, args)
	return ""
}

// render returns s with each old string replaced by its new one, failing
// the test if one is not there: an example changed without its test.
func render(t *testing.T, what, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s no longer has %q, which the test replaces", what, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lookPath finds a program the tests need, in /usr/sbin and /sbin too
// (nginx is there, which a user's PATH may lack), failing the test
// with how to install it.
func lookPath(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not installed; run %s (make test does)", name, install)
	return ""
}
