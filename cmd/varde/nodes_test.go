package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestNodesStopAndForget: a node that stops cleanly says so, and varde
// nodes list shows it stopped; a node that crashed an hour ago is
// silent, and varde nodes forget takes it off the status page, audited
// with the reason. A running node is not forgotten.
func TestNodesStopAndForget(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := keyFile(t, dir, "key.pem")
	addr, issuer := freeAddr(t)
	cfgPath := filepath.Join(dir, "varde.yaml")
	body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: n1\nstore:\n  dsn: %s\nkeys:\n  subject_salt_file: %s\n  signing_key_file: %s\nlog:\n  level: warn\n",
		issuer, addr, filepath.Join(dir, "varde.db"), salt, key)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	list := func() string {
		t.Helper()
		out, err := runCmd(t, "nodes", "list", "--config", cfgPath)
		if err != nil {
			t.Fatalf("nodes list: %v\n%s", err, out)
		}
		return out
	}
	line := func(out, node string) string {
		for l := range strings.Lines(out) {
			if strings.HasPrefix(l, node+" ") {
				return l
			}
		}
		return ""
	}

	stop := serveConfig(t, cfgPath, issuer)
	waitFor(t, "n1 to record a probe result", 10*time.Second, func() bool { return strings.Contains(line(list(), "n1"), "running") })
	if out, err := runCmd(t, "nodes", "forget", "--config", cfgPath, "--node", "n1"); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("forgetting a running node: %v\n%s", err, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if l := line(list(), "n1"); !strings.Contains(l, "stopped") {
		t.Errorf("n1 after a clean stop: %q, want stopped", l)
	}

	// A node that crashed an hour ago.
	recordProbes(t, cfgPath, &store.ProbeRecord{Component: "node:ghost", Node: "ghost", Time: time.Now().Add(-time.Hour), OK: true, State: store.HealthUp})
	if l := line(list(), "ghost"); !strings.Contains(l, "silent") {
		t.Errorf("ghost an hour after its last probe: %q, want silent", l)
	}
	if _, err := runCmd(t, "nodes", "forget", "--config", cfgPath); exitStatus(err, &strings.Builder{}) != 2 {
		t.Errorf("nodes forget without --node: %v, want a usage error", err)
	}
	if out, err := runCmd(t, "nodes", "forget", "--config", cfgPath, "--node", "nobody"); err == nil || !strings.Contains(err.Error(), "no such node") {
		t.Errorf("forgetting an unknown node: %v\n%s", err, out)
	}
	out, err := runCmd(t, "nodes", "forget", "--config", cfgPath, "--node", "ghost", "--reason", "disk died")
	if err != nil || !strings.Contains(out, "forgot node ghost") {
		t.Fatalf("nodes forget: %v\n%s", err, out)
	}
	if l := line(list(), "ghost"); !strings.Contains(l, "forgotten") {
		t.Errorf("ghost after forgetting it: %q, want forgotten", l)
	}
	evs := auditEvents(t, cfgPath, "node_forgotten")
	if len(evs) != 1 || evs[0].Details["node"] != "ghost" || evs[0].Details["reason"] != "disk died" {
		t.Errorf("node_forgotten events %+v, want one for ghost with its reason", evs)
	}
}

// TestNodesAtTime: nodes list and nodes forget read the time from the
// clock they are given: a node silent for ten minutes at that time is
// listed as silent, and is forgotten at that time, in the output and in
// the audit log.
//
// Times are printed in UTC whatever the host's time zone, as status
// prints them.
func TestNodesAtTime(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("CET", 3600)
	t.Cleanup(func() { time.Local = local })
	ctx := context.Background()
	cfgPath := adminConfig(t)
	at := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	cmd := func(args ...string) (string, error) {
		t.Helper()
		var out, errb strings.Builder
		err := nodesCmd(ctx, append(args, "--config", cfgPath), &out, &errb, func() time.Time { return at })
		return out.String(), err
	}
	recordProbes(t, cfgPath, &store.ProbeRecord{Component: "node:ghost", Node: "ghost", Time: at.Add(-10 * time.Minute), OK: true, State: store.HealthUp})
	out, err := cmd("list")
	if err != nil {
		t.Fatalf("nodes list: %v", err)
	}
	want := "NODE   LAST PROBE            STATE\n" +
		"ghost  2031-03-01T11:50:00Z  silent: down on the status page (varde nodes forget, if it will never come back)\n"
	if out != want {
		t.Errorf("nodes list at %s:\n%s\nwant:\n%s", at.Format(time.RFC3339), out, want)
	}
	out, err = cmd("forget", "--node", "ghost")
	if err != nil {
		t.Fatalf("nodes forget: %v", err)
	}
	if want := "forgot node ghost at 2031-03-01T12:00:00Z.\n"; !strings.HasPrefix(out, want) {
		t.Errorf("nodes forget at %s: %q, want it to begin %q", at.Format(time.RFC3339), out, want)
	}
	if evs := auditEvents(t, cfgPath, "node_forgotten"); len(evs) != 1 || !evs[0].Time.Equal(at) {
		t.Errorf("node_forgotten events %+v, want one at %s", evs, at.Format(time.RFC3339))
	}
}
