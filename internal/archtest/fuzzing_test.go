package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fuzzingDoc lists every input read from outside and its fuzz target
// (STYLE.md rule 12).
const fuzzingDoc = "docs/fuzzing.md"

var fuzzFuncRE = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)`)

// TestFuzzingInventory: docs/fuzzing.md cites only code and fuzz
// targets that exist, and cites every fuzz target in the module, so a
// target added without its line in the inventory, or one the inventory
// names after it has gone, fails.
func TestFuzzingInventory(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, fuzzingDoc))
	if err != nil {
		t.Fatal(err)
	}
	targets := fuzzTargets(t, root)
	report(t, fuzzingDoc+" is not the module's fuzz targets", inventoryProblems(root, string(doc), targets))
	// A walk that finds nothing would pass everything.
	if len(targets) < 40 {
		t.Errorf("only %d fuzz targets found", len(targets))
	}
}

// inventoryProblems are the citations of doc that do not resolve under
// root, and the targets doc does not cite.
func inventoryProblems(root, doc string, targets []string) []string {
	refs, problems := citations(doc)
	problems = append(problems, resolveCitations(root, refs)...)
	cited := map[string]bool{}
	for _, r := range refs {
		cited[r.file+":"+r.name] = true
	}
	for _, target := range targets {
		if !cited[target] {
			problems = append(problems, target+" is not in the inventory")
		}
	}
	return problems
}

// TestFuzzingInventoryCatchesRot: the checker finds the targets of the
// test module and reports the one its inventory leaves out and the one
// the inventory names that is not there.
func TestFuzzingInventoryCatchesRot(t *testing.T) {
	root := filepath.Join("testdata", "mod")
	doc := strings.Join([]string{
		"| input | parser | target |",
		"| --- | --- | --- |",
		"| a cookie | `internal/oidc/oidc.go:Cookie` | `internal/oidc/oidc_test.go:FuzzListed` |",
		"| gone | `internal/oidc/oidc.go:Cookie` | `internal/oidc/oidc_test.go:FuzzGone` |",
	}, "\n")
	targets := fuzzTargets(t, root)
	all := strings.Join(inventoryProblems(root, doc, targets), "\n")
	for _, want := range []string{"internal/oidc/oidc_test.go:FuzzUnlisted is not in the inventory", "FuzzGone"} {
		if !strings.Contains(all, want) {
			t.Errorf("checker missed %q; it reported:\n%s", want, all)
		}
	}
	if strings.Contains(all, "FuzzListed") {
		t.Errorf("checker wrongly reported FuzzListed:\n%s", all)
	}
}

// fuzzTargets is every fuzz target under root, as `file:FuzzName` with
// file relative to root.
func fuzzTargets(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		for _, m := range fuzzFuncRE.FindAllStringSubmatch(string(src), -1) {
			out = append(out, filepath.ToSlash(rel)+":"+m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
