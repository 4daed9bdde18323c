package npmtest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	write := func(t *testing.T, path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		pin       string
		installed string // "" for none
		missing   bool
		ok        bool
	}{
		{"pinned version installed", `{"dependencies":{"lib":"1.2.3"}}`, `{"version":"1.2.3"}`, false, true},
		{"not installed", `{"dependencies":{"lib":"1.2.3"}}`, "", true, false},
		{"another version", `{"dependencies":{"lib":"1.2.3"}}`, `{"version":"1.2.4"}`, true, false},
		{"not a dependency", `{"dependencies":{}}`, `{"version":"1.2.3"}`, false, false},
		{"broken package.json", `{`, `{"version":"1.2.3"}`, false, false},
		{"broken installed package.json", `{"dependencies":{"lib":"1.2.3"}}`, `{`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "package.json"), tt.pin)
			if tt.installed != "" {
				write(t, filepath.Join(dir, "node_modules", "lib", "package.json"), tt.installed)
			}
			pkg, err := Check(dir, "lib")
			if (err == nil) != tt.ok || errors.Is(err, ErrMissing) != tt.missing {
				t.Fatalf("Check = %q, %v", pkg, err)
			}
			if tt.ok && pkg != filepath.Join(dir, "node_modules", "lib") {
				t.Fatalf("directory %q", pkg)
			}
		})
	}
}
