package archtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/varde-eid/varde"

// Protocol packages: faithful to their specs, no product decisions
// (STYLE.md). Listed here as they are added; subpackages are included.
var protocolPkgs = []string{
	"internal/oauth2", "internal/oidc", "internal/passkey", "internal/keys", "internal/httpx",
	"internal/sdjwt", "internal/oid4vci", "internal/oid4vp", "internal/statuslist",
}

// Policy packages decide; protocol code receives their decisions as values.
var policyPkgs = []string{
	"internal/broker", "internal/session", "internal/audit", "internal/provider",
	"internal/upstream", "internal/identity", "internal/health", "internal/status", "internal/app",
}

// Storage drivers: only the composition root picks one.
var driverPkgs = []string{
	module + "/internal/store/sqlstore", "modernc.org/sqlite", "github.com/jackc/pgx",
	"github.com/lib/pq", "github.com/mattn/go-sqlite3",
}

func abs(rel []string) []string {
	out := make([]string, len(rel))
	for i, r := range rel {
		out[i] = module + "/" + r
	}
	return out
}

// modulePackages lists every package of the module (not testdata).
func modulePackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		t.Fatal("not inside the module")
	}
	return listPackages(t, filepath.Dir(gomod), "./...")
}

func report(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Errorf("%s:\n\t%s", what, strings.Join(problems, "\n\t"))
	}
}

// TestPackageDocs: every package under cmd/, internal/ and web/ says what
// it owns in a doc.go (STYLE.md rule 1).
func TestPackageDocs(t *testing.T) {
	pkgs := modulePackages(t)
	var ours []pkg
	for _, p := range pkgs {
		if withinAny(p.ImportPath, abs([]string{"cmd", "internal", "web"})) {
			ours = append(ours, p)
		}
	}
	if len(ours) == 0 {
		t.Fatal("no packages found under cmd/, internal/ or web/")
	}
	report(t, "packages without a proper doc comment", missingDocs(ours))
}

// TestProtocolIndependence: protocol packages never depend on policy
// packages or storage drivers, directly or not (STYLE.md rule 2).
func TestProtocolIndependence(t *testing.T) {
	pkgs := modulePackages(t)
	forbidden := append(abs(policyPkgs), driverPkgs...)
	report(t, "protocol packages that depend on policy or drivers",
		forbiddenDeps(pkgs, abs(protocolPkgs), nil, forbidden))
}

// TestDriversOnlyInCompositionRoot: only internal/app and commands choose
// a storage driver; everything else sees the store interfaces. The test
// support package internal/pgtest speaks to PostgreSQL with pgx to make
// and drop the tests' databases.
func TestDriversOnlyInCompositionRoot(t *testing.T) {
	pkgs := modulePackages(t)
	report(t, "packages that depend on a storage driver",
		forbiddenDeps(pkgs, []string{module}, abs([]string{"internal/app", "cmd", "internal/store/sqlstore", "internal/pgtest"}), driverPkgs))
}

// TestAppIsTheRoot: nothing but commands imports the composition root.
func TestAppIsTheRoot(t *testing.T) {
	pkgs := modulePackages(t)
	report(t, "packages that depend on internal/app",
		forbiddenDeps(pkgs, []string{module}, abs([]string{"cmd", "internal/app"}), abs([]string{"internal/app"})))
}

// TestOnlyConfigReadsEnvironment: configuration is read once, by package
// config; cmd/varde may only pass os.Getenv and os.Environ, uncalled, to
// package config (STYLE.md rule 10). Test files may use the environment.
func TestOnlyConfigReadsEnvironment(t *testing.T) {
	pkgs := modulePackages(t)
	report(t, "non-test code that reads or changes the environment",
		envReaders(t, pkgs, abs([]string{"internal/config"}), abs([]string{"cmd/varde"})))
}
