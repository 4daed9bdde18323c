package main

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// writeKey writes key as a PKCS#8 PEM file dir/name, mode 0600, and
// returns its path.
func writeKey(t *testing.T, dir, name string, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rotatingConfig is checkedConfig with a second upstream, bankid, that
// authenticates with private_key_jwt and is half-way through a
// rotation of its client key: client_key_file (current.pem),
// client_next_key_file (next.pem) and client_previous_key_file
// (previous.pem), each a P-256 key of its own.
func rotatingConfig(t *testing.T, dir string) (path string, keys map[string]*ecdsa.PrivateKey) {
	t.Helper()
	path = checkedConfig(t, dir)
	keys = map[string]*ecdsa.PrivateKey{}
	for _, name := range []string{"current", "next", "previous"} {
		keys[name] = newECKey(t)
		writeKey(t, dir, name+".pem", keys[name])
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(`  - {id: bankid, name: {en: BankID}, issuer: https://bankid.example.no, client_id: varde, auth_method: private_key_jwt,
     client_key_file: ` + filepath.Join(dir, "current.pem") + `, client_next_key_file: ` + filepath.Join(dir, "next.pem") + `,
     client_previous_key_file: ` + filepath.Join(dir, "previous.pem") + `,
     max_level: high, acr_map: {"urn:high": high}, identifier_claim: pid, identifier_schemes: [no:fnr, no:dnr]}
`); err != nil {
		t.Fatal(err)
	}
	return path, keys
}

// configCheckSays runs varde config check on path and wants exit status
// 0 if want is empty, else 1 and stderr naming each of want.
func configCheckSays(t *testing.T, path string, want ...string) (stdout string) {
	t.Helper()
	var out, stderr bytes.Buffer
	code := exitStatus(run([]string{"config", "check", "--config", path}, &out, &stderr), &stderr)
	switch {
	case len(want) == 0 && code != 0:
		t.Fatalf("exit status %d, stderr %q; want 0", code, &stderr)
	case len(want) > 0 && code != 1:
		t.Errorf("exit status %d, want 1", code)
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q\nwant it to name %q", &stderr, w)
		}
	}
	return out.String()
}

// thumbprintKID is key's RFC 7638 thumbprint.
func thumbprintKID(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestConfigCheckNamesTheUpstreamKeys: a configuration that can serve
// is reported with the key each private_key_jwt upstream signs with
// and those it publishes beside it, by kid, so that an operator can
// compare them with what the eID holds.
func TestConfigCheckNamesTheUpstreamKeys(t *testing.T) {
	path, keys := rotatingConfig(t, t.TempDir())
	out := configCheckSays(t, path)
	want := "upstream bankid: client assertions are signed with the key " + thumbprintKID(t, keys["current"]) + " (client_key_file); " +
		"/upstream/bankid/jwks also publishes, never signing, the next key " + thumbprintKID(t, keys["next"]) + " (client_next_key_file) " +
		"and the previous key " + thumbprintKID(t, keys["previous"]) + " (client_previous_key_file)"
	if !strings.Contains(out, want+"\n") {
		t.Errorf("stdout %q\nwant the line %q", out, want)
	}
	if strings.Contains(out, "upstream minid") {
		t.Errorf("stdout %q\nnames the keys of minid, which has a client secret", out)
	}
}

// TestConfigCheckRotationKeys: varde config check reads an upstream's
// next and previous client key files as it reads client_key_file, and
// names each problem with its setting: a file it cannot read, one others
// may read, one whose key cannot sign client assertions, one that holds
// a key another of the three files holds, and either setting with
// client_secret_basic.
func TestConfigCheckRotationKeys(t *testing.T) {
	put := func(name string, key any) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { writeKey(t, dir, name, key) }
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			raw, err := os.ReadFile(filepath.Join(dir, from))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, to), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  []string
	}{
		{"good", func(*testing.T, string) {}, nil},
		{"next missing", func(t *testing.T, dir string) { _ = os.Remove(filepath.Join(dir, "next.pem")) },
			[]string{"upstream bankid client_next_key_file", "no such file"}},
		{"next others read", func(t *testing.T, dir string) { _ = os.Chmod(filepath.Join(dir, "next.pem"), 0o644) },
			[]string{"upstream bankid client_next_key_file", "mode 0644"}},
		{"next too weak", put("next.pem", weak), []string{"upstream bankid client_next_key_file", "RSA key must have at least 2048 bits"}},
		{"next not a signing key", put("next.pem", x25519), []string{"upstream bankid client_next_key_file", "not a signing key"}},
		{"next is current", copyFile("current.pem", "next.pem"),
			[]string{"upstream bankid client_next_key_file", "holds the same key as client_key_file", "client_next_key_file is a new key"}},
		{"previous is current", copyFile("current.pem", "previous.pem"),
			[]string{"upstream bankid client_previous_key_file", "holds the same key as client_key_file"}},
		{"previous is next", copyFile("next.pem", "previous.pem"),
			[]string{"upstream bankid client_previous_key_file", "holds the same key as client_next_key_file"}},
		{"previous others read", func(t *testing.T, dir string) { _ = os.Chmod(filepath.Join(dir, "previous.pem"), 0o640|0o004) },
			[]string{"upstream bankid client_previous_key_file", "mode 0644"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, _ := rotatingConfig(t, dir)
			tc.spoil(t, dir)
			configCheckSays(t, path, tc.want...)
		})
	}
}

// TestConfigCheckRotationSettings: the same file named twice, and a
// next or previous key with client_secret_basic, are refused as
// settings, before any file is read.
func TestConfigCheckRotationSettings(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"next is client_key_file", "next.pem,", "current.pem,", []string{"upstreams[1].client_next_key_file", "names client_key_file's file"}},
		{"previous is next", "previous.pem,", "next.pem,", []string{"upstreams[1].client_previous_key_file", "names client_next_key_file's file"}},
		{"with a secret", "client_secret_file: ", "client_next_key_file: x, client_secret_file: ",
			[]string{"upstreams[0].client_next_key_file", "not used with client_secret_basic"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, _ := rotatingConfig(t, dir)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(raw), tc.from, tc.to, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			configCheckSays(t, path, tc.want...)
		})
	}
}

// TestUpstreamJWKS: varde upstream jwks prints the public keys of the
// upstream's three key files, current first, each with its RFC 7638
// thumbprint as kid, use sig and alg, and nothing private; an unknown
// upstream, one with a client secret, and a missing ID are errors.
func TestUpstreamJWKS(t *testing.T) {
	dir := t.TempDir()
	path, keys := rotatingConfig(t, dir)
	var stdout, stderr bytes.Buffer
	if code := exitStatus(run([]string{"upstream", "jwks", "--config", path, "bankid"}, &stdout, &stderr), &stderr); code != 0 {
		t.Fatalf("exit status %d: %s", code, &stderr)
	}
	if strings.Contains(stdout.String(), `"d"`) {
		t.Errorf("printed a private key:\n%s", &stdout)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(stdout.Bytes(), &set); err != nil {
		t.Fatalf("not a JWK set: %v\n%s", err, &stdout)
	}
	order := []string{"current", "next", "previous"}
	if len(set.Keys) != len(order) {
		t.Fatalf("%d keys, want %d:\n%s", len(set.Keys), len(order), &stdout)
	}
	for i, name := range order {
		k := set.Keys[i]
		if k.KeyID != thumbprintKID(t, keys[name]) || k.Use != "sig" || k.Algorithm != "ES256" || !k.IsPublic() {
			t.Errorf("key %d (%s): kid %q use %q alg %q, want its thumbprint, sig, ES256", i, name, k.KeyID, k.Use, k.Algorithm)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"upstream", "jwks", "--config", path, "nemid"}, 1, `no upstream "nemid"; the configuration's upstreams are minid, bankid`},
		{[]string{"upstream", "jwks", "--config", path, "minid"}, 1, "upstream minid authenticates Varde with client_secret_basic"},
		{[]string{"upstream", "jwks", "--config", path}, 2, "missing ID"},
		{[]string{"upstream", "keys", "--config", path, "bankid"}, 2, `unknown upstream command "keys"`},
	} {
		var stdout, stderr bytes.Buffer
		code := exitStatus(run(tc.args, &stdout, &stderr), &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("varde %s: exit status %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, &stderr, tc.code, tc.want)
		}
	}
}
