package oidc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProtocolBoundary keeps the protocol packages free of policy and
// drivers (STYLE rule 2) and documented (rule 1): it lists what they
// import, transitively, outside tests.
func TestProtocolBoundary(t *testing.T) {
	const mod = "github.com/varde-eid/varde/internal/"
	forbidden := []string{"broker", "session", "audit", "provider", "store/sqlstore", "store/storetest", "app", "config", "passkey"}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goBin, "list", "-f", "{{.ImportPath}}\t{{.Doc}}\t{{join .Deps \" \"}}",
		mod+"keys", mod+"oauth2", mod+"oidc").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("go list output:\n%s", out)
	}
	for _, line := range lines {
		pkg, rest, _ := strings.Cut(line, "\t")
		doc, deps, _ := strings.Cut(rest, "\t")
		if !strings.HasPrefix(doc, "Package ") {
			t.Errorf("%s has no package doc comment", pkg)
		}
		for _, dep := range strings.Fields(deps) {
			for _, f := range forbidden {
				if dep == mod+f || strings.HasPrefix(dep, mod+f+"/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
