package npmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrMissing is wrapped by Check's error when the package is not
// installed, or not at the pinned version.
var ErrMissing = errors.New("not installed as pinned")

// Check reports whether npm package name is installed in
// dir/node_modules at exactly the version dir/package.json pins, and
// returns its directory. An error wraps ErrMissing when it is absent or
// another version; any other error is a broken package.json.
func Check(dir, name string) (string, error) {
	var pinned struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := readJSON(filepath.Join(dir, "package.json"), &pinned); err != nil {
		return "", fmt.Errorf("%s pin: %w", name, err)
	}
	want := pinned.Dependencies[name]
	if want == "" {
		return "", fmt.Errorf("%s is not a dependency in %s", name, filepath.Join(dir, "package.json"))
	}
	pkg := filepath.Join(dir, "node_modules", name)
	var installed struct {
		Version string `json:"version"`
	}
	switch err := readJSON(filepath.Join(pkg, "package.json"), &installed); {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("%s: %w", name, ErrMissing)
	case err != nil:
		return "", fmt.Errorf("installed %s: %w", name, err)
	case installed.Version != want:
		return "", fmt.Errorf("%s %s installed, %s pinned: %w", name, installed.Version, want, ErrMissing)
	}
	return pkg, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
