package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
)

// TestConfigCheckSigningKeyAgainstStore: config check refuses, as a
// node's start does, a signing key that the store holds as another
// running node's (two nodes given one key file) or as retired, and
// passes the node's own key and one whose node has left.
func TestConfigCheckSigningKeyAgainstStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := checkedConfig(t, dir)
	dsn := pgtest.NewDatabase(t)
	usePostgres(t, path, dsn)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(raw, "node: node-b\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	pemKey, err := os.ReadFile(filepath.Join(dir, "signing.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.ParsePEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	kid := signer.KID()
	jwk, err := json.Marshal(signer.PublicJWK())
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, config.Store{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := exitStatus(run([]string{"config", "check", "--config", path}, &stdout, &stderr), &stderr)
		return code, stdout.String(), stderr.String()
	}
	publish := func(node string, at time.Time) {
		t.Helper()
		k := &store.PublicKey{KID: kid, Node: node, JWK: jwk, CreatedAt: at, ExpiresAt: at.Add(keys.DefaultPublishTTL)}
		if err := st.PutPublicKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}

	// The key published by node-b itself: a restart of node-b.
	publish("node-b", time.Now().Add(-time.Hour))
	if code, out, errOut := check(); code != 0 {
		t.Errorf("with the node's own key: exit status %d, %q %q; want 0", code, out, errOut)
	}

	// The same key file given to node-a, which runs.
	publish("node-a", time.Now().Add(-time.Minute))
	code, out, errOut := check()
	for _, want := range []string{`keys.signing_key_file: its key (kid ` + kid + `) is node "node-a"'s signing key`,
		"each node needs its own key file", "varde nodes forget --node node-a"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("with another running node's key: exit status %d, %q %q; want 1 and %q", code, out, errOut, want)
		}
	}
	if strings.Contains(out, "can serve") {
		t.Errorf("with another running node's key, config check says it can serve: %q", out)
	}
	// A node started from the file is refused the same way.
	var stdout, stderr bytes.Buffer
	if code := exitStatus(run([]string{"serve", "--config", path}, &stdout, &stderr), &stderr); code != 1 ||
		!strings.Contains(stderr.String(), `is node "node-a"'s signing key`) {
		t.Fatalf("serve with another running node's key: exit status %d, %q; want it refused as config check said", code, stderr.String())
	}

	// Once node-a has left (stopped cleanly, or forgotten), node-b may
	// take the key.
	if err := st.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "node-a", LeftAt: time.Now(), Reason: store.NodeStopped}, nil); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := check(); code != 0 {
		t.Errorf("with the key of a node that left: exit status %d, %q %q; want 0", code, out, errOut)
	}

	// A retired key is published by no node again.
	if _, err := st.RetirePublicKey(ctx, kid, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = check()
	for _, want := range []string{"keys.signing_key_file: its key (kid " + kid + ") was retired at", "give this node a new key"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("with a retired key: exit status %d, %q %q; want 1 and %q", code, out, errOut, want)
		}
	}
}
