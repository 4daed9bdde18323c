package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// TestStatusAndNodesRefusalsReadAsSentences: what the status and nodes
// commands refuse, the operator reads as a sentence about their
// cluster, not prefixed with the name of the package that refused it.
func TestStatusAndNodesRefusalsReadAsSentences(t *testing.T) {
	ctx := context.Background()
	cfgPath := adminConfig(t)
	at := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	recordProbes(t, cfgPath, &store.ProbeRecord{Component: "node:n2", Node: "n2", Time: at.Add(-time.Second), OK: true, State: store.HealthUp})
	run := func(cmd func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error, args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := cmd(ctx, append(args, "--config", cfgPath), &out, &errb)
		return out.String(), err
	}
	nodes := func(ctx context.Context, args []string, out, errb *bytes.Buffer) error {
		return nodesCmd(ctx, args, out, errb, clock)
	}
	status := func(ctx context.Context, args []string, out, errb *bytes.Buffer) error {
		return statusCmd(ctx, args, out, errb, clock)
	}
	out, err := run(status, "maintenance", "add", "--components", "store", "--start", "2031-03-01T13:00:00Z", "--end", "2031-03-01T14:00:00Z", "--title", "Upgrade")
	if err != nil {
		t.Fatalf("maintenance add: %v", err)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "announced maintenance "))
	for _, tt := range []struct {
		name string
		cmd  func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) error
		args []string
		want string
	}{
		{"forget a running node", nodes, []string{"forget", "--node", "n2"}, "n2 is running"},
		{"forget an unknown node", nodes, []string{"forget", "--node", "nobody"}, "no such node"},
		{"maintenance of an unknown component", status, []string{"maintenance", "add", "--components", "bankidd",
			"--start", "2031-03-01T13:00:00Z", "--end", "2031-03-01T14:00:00Z", "--title", "t"}, "no such component"},
		{"maintenance in the past", status, []string{"maintenance", "add", "--components", "store",
			"--start", "2031-03-01T10:00:00Z", "--end", "2031-03-01T14:00:00Z", "--title", "t"}, "cannot start in the past"},
		{"end maintenance not begun", status, []string{"maintenance", "end", "--id", id}, "not under way"},
		{"an empty note", status, []string{"note", "--incident", "x", "--author", "ops", "--message", " "}, ""},
	} {
		_, err := run(tt.cmd, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want it to say %q", tt.name, err, tt.want)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "status: ") {
			t.Errorf("%s: %q names the package that refused it", tt.name, msg)
		}
	}
}

// recordProbes records probe results in the store of the node
// configured at cfgPath, as another node would.
func recordProbes(t *testing.T, cfgPath string, recs ...*store.ProbeRecord) {
	t.Helper()
	st := storeOf(t, cfgPath)
	defer st.Close()
	if err := st.RecordProbes(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// storeOf opens the store of the node configured at cfgPath; the caller
// closes it.
func storeOf(t *testing.T, cfgPath string) store.Store {
	t.Helper()
	c, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), c.Store)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
