package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// keyFile writes a new ECDSA P-256 key to a PEM file in dir and returns
// the file and the key's ID.
func keyFile(t *testing.T, dir, name string) (path, kid string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeyFile(t, dir, name, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// writeKeyFile writes the private key block to a PEM file in dir, mode
// 0600, and returns the file and the key's ID.
func writeKeyFile(t *testing.T, dir, name string, block *pem.Block) (path, kid string) {
	t.Helper()
	raw := pem.EncodeToMemory(block)
	path = filepath.Join(dir, name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := keys.ParsePEM(raw)
	if err != nil {
		t.Fatal(err)
	}
	return path, s.KID()
}

// fetchJWKS gets the JWKS of the node at issuer.
func fetchJWKS(t *testing.T, issuer string) jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get(issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestKeysRotateAndRetire: an operator rotates a node's signing key by
// restarting it with a new one, lists the keys, and retires the old one:
// it leaves the JWKS of the running node, and a node started with it
// again is refused. The key the node signs with, and the old one while
// ID tokens it signed may be valid, are retired only with --force, after
// which the node answers 503 at /readyz. Each retirement is in the audit
// log, with its reason.
func TestKeysRotateAndRetire(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	oldKey, oldKID := keyFile(t, dir, "old.pem")
	newKey, newKID := keyFile(t, dir, "new.pem")
	addr, issuer := freeAddr(t)
	cfgPath := filepath.Join(dir, "varde.yaml")
	withKey := func(key string) {
		t.Helper()
		body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: n1\nstore:\n  dsn: %s\nkeys:\n  subject_salt_file: %s\n  signing_key_file: %s\nlog:\n  level: warn\n",
			issuer, addr, filepath.Join(dir, "varde.db"), salt, key)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := func() (stop func() error) { return serveConfig(t, cfgPath, issuer) }
	jwksKIDs := func() []string {
		t.Helper()
		var out []string
		for _, k := range fetchJWKS(t, issuer).Keys {
			out = append(out, k.KeyID)
		}
		slices.Sort(out)
		return out
	}
	ready := func() int {
		t.Helper()
		res, err := http.Get(issuer + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}

	// The node runs with the old key, then is restarted with a new one.
	withKey(oldKey)
	if err := start()(); err != nil {
		t.Fatal(err)
	}
	withKey(newKey)
	stop := start()
	want := []string{oldKID, newKID}
	slices.Sort(want)
	if got := jwksKIDs(); !slices.Equal(got, want) {
		t.Fatalf("JWKS after the rotation %v, want both keys %v", got, want)
	}
	out, err := runCmd(t, "keys", "list", "--config", cfgPath)
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	for _, line := range []struct{ kid, state string }{{oldKID, "an older key of its node"}, {newKID, "its node's newest"}} {
		if !strings.Contains(out, line.kid) || !strings.Contains(out, line.state) {
			t.Errorf("keys list does not show %s as %q:\n%s", line.kid, line.state, out)
		}
	}

	// The key the node signs with: refused without --force.
	if out, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", newKID); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("retiring the newest key without --force: %v\n%s", err, out)
	}
	if ready() != http.StatusOK {
		t.Fatal("the node is not ready after a refused retirement")
	}
	if _, err := runCmd(t, "keys", "retire", "--config", cfgPath); exitStatus(err, &strings.Builder{}) != 2 {
		t.Errorf("keys retire without --kid: %v, want a usage error", err)
	}
	if _, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", "no-such-key"); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("retiring an unknown key: %v", err)
	}

	// The old key, right after the node switched: ID tokens it signed
	// may still be valid, so it is retired only with --force.
	if out, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", oldKID); err == nil ||
		!strings.Contains(err.Error(), "ID token lifetime (10m0s)") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("retiring the older key right after the rotation without --force: %v\n%s", err, out)
	}

	// Forced, as after a compromise: out of the running node's JWKS
	// within its cache's lifetime, and once only.
	out, err = runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", oldKID, "--reason", "key file on a lost laptop", "--force")
	if err != nil || !strings.Contains(out, "retired key "+oldKID+" of node n1") {
		t.Fatalf("keys retire: %v\n%s", err, out)
	}
	waitFor(t, "the retired key to leave the JWKS", 10*time.Second, func() bool { return slices.Equal(jwksKIDs(), []string{newKID}) })
	if ready() != http.StatusOK {
		t.Error("the node is not ready after an older key of it was retired")
	}
	// Again: it says so plainly, naming the key once, without the
	// store's words.
	if _, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", oldKID); err == nil ||
		!strings.Contains(err.Error(), "key "+oldKID+" was retired already, at ") || !strings.Contains(err.Error(), "nothing changed") ||
		strings.Count(err.Error(), oldKID) != 1 || strings.Contains(err.Error(), "conflict") {
		t.Errorf("retiring it again: %v", err)
	}
	if out, _ := runCmd(t, "keys", "list", "--config", cfgPath); !strings.Contains(out, "retired ") {
		t.Errorf("keys list does not show the retirement:\n%s", out)
	}

	// The node's own key, forced: the node stops taking traffic.
	if out, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", newKID, "--force"); err != nil || !strings.Contains(out, "503") {
		t.Fatalf("keys retire --force: %v\n%s", err, out)
	}
	waitFor(t, "the node to answer 503 at /readyz", 10*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
	if got := jwksKIDs(); len(got) != 0 {
		t.Errorf("JWKS after retiring every key: %v", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A node started with a retired key is refused.
	withKey(oldKey)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs syncBuffer
	if err := serve(ctx, []string{"--config", cfgPath}, &logs); err == nil || !strings.Contains(err.Error(), "retired") ||
		!strings.Contains(err.Error(), "new signing key") {
		t.Errorf("serve with a retired key: %v", err)
	}

	var retired []string
	for _, e := range auditEvents(t, cfgPath, "key_retired") {
		retired = append(retired, e.Details["kid"]+" "+e.Details["reason"])
	}
	if want := []string{oldKID + " key file on a lost laptop", newKID + " "}; !slices.Equal(retired, want) {
		t.Errorf("key_retired events %q, want %q", retired, want)
	}
}

// TestRetireOlderKeyAfterIDTokens: an older key of a node is retired
// without --force only once the ID tokens it may have signed before the
// node switched to its newest key have expired.
func TestRetireOlderKeyAfterIDTokens(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	switched := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, k := range []*store.PublicKey{
		{KID: "older", Node: "n1", JWK: []byte(`{}`), CreatedAt: switched.Add(-40 * time.Hour), ExpiresAt: switched.Add(6 * 24 * time.Hour)},
		{KID: "old", Node: "n1", JWK: []byte(`{}`), CreatedAt: switched.Add(-20 * time.Hour), ExpiresAt: switched.Add(7 * 24 * time.Hour)},
		{KID: "new", Node: "n1", JWK: []byte(`{}`), CreatedAt: switched, ExpiresAt: switched.Add(8 * 24 * time.Hour)},
	} {
		if err := db.PutPublicKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	lifetime := 10 * time.Minute
	var out strings.Builder
	if err := retireKey(ctx, db, "old", "", false, lifetime, switched.Add(lifetime-time.Second), &out); err == nil ||
		!strings.Contains(err.Error(), "--force") {
		t.Fatalf("retiring the older key while ID tokens it signed may be valid: %v, want a refusal naming --force", err)
	}
	if err := retireKey(ctx, db, "old", "", false, lifetime, switched.Add(lifetime), &out); err != nil {
		t.Fatalf("retiring the older key once they expired: %v", err)
	}
	// The node publishes its newest key again every day: the guard
	// counts from when it first published it, not from the republish.
	republished := switched.Add(24 * time.Hour)
	if err := db.PutPublicKey(ctx, &store.PublicKey{KID: "new", Node: "n1", JWK: []byte(`{}`), CreatedAt: republished,
		ExpiresAt: republished.Add(7 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := retireKey(ctx, db, "older", "", false, lifetime, republished.Add(time.Second), &out); err != nil {
		t.Fatalf("retiring an older key a day after the switch, just after the newest key was published again: %v", err)
	}
	// Relying parties that cached the JWKS keep the key for at most
	// its max-age after the nodes' caches drop it (ADR 18): the output
	// says how long.
	if want := "max-age=60, so one that honours HTTP caching stops trusting the key within 1m5s of now"; !strings.Contains(out.String(), want) {
		t.Errorf("keys retire says:\n%s\nwant it to say %q", out.String(), want)
	}
}

// TestListKeysFirstPublished: keys list shows when each key was first
// published, which the retire guard counts from, beside its last
// publish, in UTC whatever the host's time zone.
func TestListKeysFirstPublished(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("CET", 3600)
	t.Cleanup(func() { time.Local = local })
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	republished := first.Add(24 * time.Hour)
	for _, at := range []time.Time{first, republished} {
		if err := db.PutPublicKey(ctx, &store.PublicKey{KID: "k1", Node: "n1", JWK: []byte(`{"alg":"ES256"}`), CreatedAt: at,
			ExpiresAt: at.Add(7 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := listKeys(ctx, db, republished.Add(time.Hour), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("keys list:\n%s", out.String())
	}
	if got, want := strings.Fields(lines[0]), []string{"KID", "ALG", "NODE", "FIRST", "PUBLISHED", "LAST", "PUBLISHED", "EXPIRES", "STATE"}; !slices.Equal(got, want) {
		t.Errorf("keys list header %q, want %q", got, want)
	}
	if got, want := strings.Fields(lines[1])[:6], []string{"k1", "ES256", "n1", "2026-11-20T12:00:00Z", "2026-11-21T12:00:00Z", "2026-11-28T12:00:00Z"}; !slices.Equal(got, want) {
		t.Errorf("keys list row %q, want %q", got, want)
	}
}
