package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestAuditEvents: varde audit events prints what the admin commands
// recorded, oldest first, with their details and without the client's
// address; --type and --client select, --limit stops and says how to
// read on with --after, and flags that select nothing possible are a
// command called wrongly.
func TestAuditEvents(t *testing.T) {
	cfg := adminConfig(t)
	for _, args := range [][]string{
		{"clients", "add", "--config", cfg, "--id", "tax", "--name", "Tax", "--auth-method", "none",
			"--redirect-uri", "https://tax.example.no/cb", "--sector", "tax.example", "--claims", "name"},
		{"clients", "add", "--config", cfg, "--id", "shop", "--name", "Shop", "--auth-method", "none",
			"--redirect-uri", "https://shop.example.no/cb"},
		{"clients", "remove", "--config", cfg, "--id", "tax"},
	} {
		if out, err := runCmd(t, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	events := func(args ...string) (stdout, stderr string, err error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err = run(append([]string{"audit", "events", "--config", cfg}, args...), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	out, _, err := events()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := [][]string{
		{"SEQ", "TIME", "TYPE", "DETAILS"},
		{"client_added", "success", "tax", "claims=name", "sector=tax.example", "via=cli"},
		{"client_added", "shop", `claims=""`, "sector=shop"},
		{"client_removed", "tax", "sector=tax.example", "via=cli"},
	}
	if len(lines) != len(want) {
		t.Fatalf("audit events printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, parts := range want {
		if !containsAll(lines[i], parts) {
			t.Errorf("line %d: %q, want it to hold %q", i, lines[i], parts)
		}
	}
	if strings.Contains(out, "addr=") {
		t.Errorf("audit events printed a client address:\n%s", out)
	}

	if out, _, _ := events("--type", "client_removed"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "client_removed") {
		t.Errorf("--type client_removed:\n%s", out)
	}
	if out, _, _ := events("--client", "shop"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "shop") {
		t.Errorf("--client shop:\n%s", out)
	}
	out, stderr, err := events("--limit", "1")
	seq := strings.Fields(strings.Split(out, "\n")[1])[0]
	if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(stderr, "run again with --after "+seq) {
		t.Errorf("--limit 1: %v\n%s%s", err, out, stderr)
	}
	if out, _, _ := events("--after", seq); strings.Count(out, "\n") != 3 {
		t.Errorf("--after %s:\n%s", seq, out)
	}
	if _, stderr, _ := events("--since", "2020-01-01", "--until", "2020-01-02"); !strings.Contains(stderr, "no event from 2020-01-01T00:00:00Z to 2020-01-03T00:00:00Z matches") {
		t.Errorf("a window without events: %q", stderr)
	}
	for _, args := range [][]string{{"--limit", "0"}, {"--since", "yesterday"}, {"--since", "2026-11-22", "--until", "2026-11-21"}} {
		if _, _, err := events(args...); exitStatus(err, &bytes.Buffer{}) != 2 {
			t.Errorf("audit events %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
