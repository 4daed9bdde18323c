package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemoSaysItStopped: stopped as Ctrl+C stops it, the demo says so,
// and what became of its data: the temporary directory deleted, or the
// one given with --data kept, with how to use it again.
func TestDemoSaysItStopped(t *testing.T) {
	t.Run("temporary data", func(t *testing.T) {
		d := startDemo(t, "")
		m := regexp.MustCompile(`Data: (\S+) \(deleted when the demo stops\)`).FindStringSubmatch(d.stdout.String())
		if m == nil {
			t.Fatalf("no data directory printed:\n%s", d.stdout.String())
		}
		d.stop()
		if want := "\nVarde demo stopped. Its data (" + m[1] + ") was deleted.\n"; !strings.HasSuffix(d.stdout.String(), want) {
			t.Errorf("printed at the end:\n%s\nwant it to end with %q", d.stdout.String(), want)
		}
		if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the data directory is still there: %v", err)
		}
	})
	t.Run("data kept", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		d := startDemo(t, dir)
		d.stop()
		want := "\nVarde demo stopped. Its data is kept in " + dir + ": varde demo --data " + dir + " goes on with it.\n"
		if !strings.HasSuffix(d.stdout.String(), want) {
			t.Errorf("printed at the end:\n%s\nwant it to end with %q", d.stdout.String(), want)
		}
		if _, err := os.Stat(filepath.Join(dir, "varde.db")); err != nil {
			t.Errorf("the data is gone: %v", err)
		}
	})
}
