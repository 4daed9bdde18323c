package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/keys"
)

// rsaKeyFile writes a new RSA key of keys.MinRSABits, PKCS #1, to a PEM
// file in dir and returns the file and the key's ID.
func rsaKeyFile(t *testing.T, dir, name string) (path, kid string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, keys.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	return writeKeyFile(t, dir, name, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// TestRSAKeyLifecycle: a node given keys.rsa_signing_key_file publishes
// its RSA key beside its ES256 key, each with kid, alg and use sig;
// varde keys list shows each as its node's newest of its algorithm; a
// client is added with --id-token-alg RS256 and listed so; the RSA key,
// retired with --force, leaves the JWKS and the node answers 503 at
// /readyz. A node without an RSA key does not start while such a client
// is registered, and the CLI on its configuration refuses to add one.
func TestRSAKeyLifecycle(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	ecKey, ecKID := keyFile(t, dir, "ec.pem")
	rsaKey, rsaKID := rsaKeyFile(t, dir, "rsa.pem")
	addr, issuer := freeAddr(t)
	cfgPath := filepath.Join(dir, "varde.yaml")
	write := func(rsaLine string) {
		t.Helper()
		body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: n1\nstore:\n  dsn: %s\nkeys:\n  subject_salt_file: %s\n  signing_key_file: %s\n%slog:\n  level: warn\n",
			issuer, addr, filepath.Join(dir, "varde.db"), salt, ecKey, rsaLine)
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("  rsa_signing_key_file: " + rsaKey + "\n")
	jwks := func() map[string]jose.JSONWebKey {
		t.Helper()
		out := map[string]jose.JSONWebKey{}
		for _, k := range fetchJWKS(t, issuer).Keys {
			out[k.KeyID] = k
		}
		return out
	}
	stop := serveConfig(t, cfgPath, issuer)
	set := jwks()
	if len(set) != 2 || set[ecKID].Algorithm != "ES256" || set[rsaKID].Algorithm != "RS256" ||
		set[ecKID].Use != "sig" || set[rsaKID].Use != "sig" {
		t.Fatalf("JWKS %v, want %s (ES256) and %s (RS256), both use sig", set, ecKID, rsaKID)
	}
	out, err := runCmd(t, "keys", "list", "--config", cfgPath)
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	for kid, alg := range map[string]string{ecKID: "ES256", rsaKID: "RS256"} {
		if !regexp.MustCompile(regexp.QuoteMeta(kid) + `\s+` + alg + `\s+n1\s.*its node's newest`).MatchString(out) {
			t.Errorf("keys list does not show %s as n1's newest %s key:\n%s", kid, alg, out)
		}
	}

	for _, bad := range []string{"HS256", "none", "rs256"} {
		out, err := runCmd(t, "clients", "add", "--config", cfgPath, "--id", "legacy", "--name", "Legacy",
			"--auth-method", "none", "--redirect-uri", "https://legacy.example/cb", "--id-token-alg", bad)
		if err == nil || !strings.Contains(err.Error(), "--id-token-alg") || !strings.Contains(err.Error(), "ES256 (the default) or RS256") {
			t.Errorf("clients add --id-token-alg %s: %v\n%s", bad, err, out)
		}
	}
	out, err = runCmd(t, "clients", "add", "--config", cfgPath, "--id", "legacy", "--name", "Legacy",
		"--auth-method", "none", "--redirect-uri", "https://legacy.example/cb", "--id-token-alg", "RS256")
	if err != nil || strings.Contains(strings.ToLower(out), "warning") {
		t.Fatalf("clients add --id-token-alg RS256: %v\n%s", err, out)
	}
	out, err = runCmd(t, "clients", "list", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "ID TOKEN") || !regexp.MustCompile(`legacy\s+Legacy\s+legacy \(client ID\)\s+none\s+false\s+false\s+RS256\s`).MatchString(out) {
		t.Errorf("clients list does not show legacy's RS256: %v\n%s", err, out)
	}

	out, err = runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", rsaKID)
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("retiring the node's RSA key without --force: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "keys", "retire", "--config", cfgPath, "--kid", rsaKID, "--force"); err != nil {
		t.Fatalf("keys retire --force: %v\n%s", err, out)
	}
	waitFor(t, "the RSA key to leave the JWKS", 10*time.Second, func() bool {
		set := jwks()
		_, there := set[rsaKID]
		return !there && len(set) == 1
	})
	waitFor(t, "the node to answer 503 at /readyz", 10*time.Second, func() bool {
		res, err := http.Get(issuer + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Without an RSA key: the CLI refuses another RS256 client, and the
	// node refuses to start while legacy is registered.
	write("")
	out, err = runCmd(t, "clients", "add", "--config", cfgPath, "--id", "legacy2", "--name", "Legacy 2",
		"--auth-method", "none", "--redirect-uri", "https://legacy2.example/cb", "--id-token-alg", "RS256")
	if err == nil || !strings.Contains(err.Error(), "--id-token-alg") || !strings.Contains(err.Error(), "keys.rsa_signing_key_file") {
		t.Errorf("clients add --id-token-alg RS256 on a node without an RSA key: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs syncBuffer
	err = serve(ctx, []string{"--config", cfgPath}, &logs)
	if err == nil || !strings.Contains(err.Error(), `client "legacy" wants its ID tokens signed RS256`) ||
		!strings.Contains(err.Error(), "keys.rsa_signing_key_file") {
		t.Errorf("serve without an RSA key, with an RS256 client: %v", err)
	}
	if out, err := runCmd(t, "config", "check", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), `client "legacy" wants its ID tokens signed RS256`) {
		t.Errorf("config check without an RSA key, with an RS256 client: %v\n%s", err, out)
	}
}
