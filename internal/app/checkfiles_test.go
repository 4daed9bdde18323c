package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keys"
)

// filesConfig is a valid configuration whose signing key, subject salt,
// client secret and upstream key and secret are files in dir, each
// holding what a node can use.
func filesConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	for name, content := range map[string]string{
		"signing.pem": string(keyPEM), "rsa.pem": string(testRSAKeyPEM(t)), "salt": strings.Repeat("s", 32), "bank-secret": strings.Repeat("b", 40) + "\n",
		"bankid.pem": string(keyPEM), "minid-secret": "upstream-secret\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := `version: 1
issuer: https://login.example.no
store: {dsn: ` + filepath.Join(dir, "varde.db") + `}
keys:
  signing_key_file: ` + filepath.Join(dir, "signing.pem") + `
  rsa_signing_key_file: ` + filepath.Join(dir, "rsa.pem") + `
  subject_salt_file: ` + filepath.Join(dir, "salt") + `
clients:
  - id: bank
    auth_method: client_secret_basic
    secret_file: ` + filepath.Join(dir, "bank-secret") + `
    redirect_uris: [https://bank.example/cb]
upstreams:
  - {id: bankid, name: {en: BankID}, issuer: https://bankid.example.no, client_id: varde, auth_method: private_key_jwt,
     client_key_file: ` + filepath.Join(dir, "bankid.pem") + `, max_level: high, acr_map: {"urn:high": high},
     identifier_claim: pid, identifier_schemes: [no:fnr, no:dnr]}
  - {id: minid, name: {en: MinID}, issuer: https://minid.example.no, client_id: varde, auth_method: client_secret_basic,
     client_secret_file: ` + filepath.Join(dir, "minid-secret") + `, max_level: substantial, acr_map: {"urn:sub": substantial},
     identifier_claim: pid, identifier_schemes: [no:fnr, no:dnr]}
`
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// testRSAKeyPEM is one RSA key of keys.MinRSABits, PKCS #1, for the
// package's tests, made once.
var testRSAKeyPEM = func() func(t *testing.T) []byte {
	var once sync.Once
	var raw []byte
	var err error
	return func(t *testing.T) []byte {
		t.Helper()
		once.Do(func() {
			var k *rsa.PrivateKey
			if k, err = rsa.GenerateKey(rand.Reader, keys.MinRSABits); err == nil {
				raw = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
}()

var upstreamNamed = regexp.MustCompile(`upstream "?(bankid|minid)\b`)

// TestCheckFiles: CheckFiles reads every key and secret file a node
// reads at start and refuses each kind of bad one, naming its setting;
// with several bad files it names them all.
func TestCheckFiles(t *testing.T) {
	write := func(name, content string, mode os.FileMode) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		spoil func(dir string)
		want  []string
	}{
		{"all good", func(string) {}, nil},
		{"signing key not PEM", write("signing.pem", "not a key", 0o600), []string{"keys.signing_key_file"}},
		{"signing key readable by others", func(dir string) { _ = os.Chmod(filepath.Join(dir, "signing.pem"), 0o644) },
			[]string{"keys.signing_key_file", "mode 0644"}},
		{"RSA key readable by others", func(dir string) { _ = os.Chmod(filepath.Join(dir, "rsa.pem"), 0o640|0o004) },
			[]string{"keys.rsa_signing_key_file", "mode 0644"}},
		{"RSA key not PEM", write("rsa.pem", "not a key", 0o600), []string{"keys.rsa_signing_key_file"}},
		{"EC key as the RSA key", func(dir string) {
			raw, err := os.ReadFile(filepath.Join(dir, "signing.pem"))
			if err != nil {
				t.Fatal(err)
			}
			write("rsa.pem", string(raw), 0o600)(dir)
		}, []string{"keys.rsa_signing_key_file", "a key that signs ES256", "a key that signs RS256", "openssl genpkey -algorithm RSA"}},
		{"RSA key as the signing key", write("signing.pem", string(testRSAKeyPEM(t)), 0o600),
			[]string{"keys.signing_key_file", "a key that signs RS256", "a key that signs ES256", "openssl ecparam"}},
		{"salt missing", func(dir string) { _ = os.Remove(filepath.Join(dir, "salt")) }, []string{"keys.subject_salt_file", "no such file"}},
		{"salt short", write("salt", "short", 0o600), []string{"keys.subject_salt_file", "fewer than the 32"}},
		{"client secret short", write("bank-secret", "short\n", 0o600), []string{"client bank secret", "shorter than 32"}},
		{"client secret readable by others", func(dir string) { _ = os.Chmod(filepath.Join(dir, "bank-secret"), 0o604) },
			[]string{"client bank secret_file", "mode 0604"}},
		{"upstream key not PEM", write("bankid.pem", "nothing", 0o600), []string{"upstream bankid client_key_file", "no PEM block"}},
		{"upstream key missing", func(dir string) { _ = os.Remove(filepath.Join(dir, "bankid.pem")) },
			[]string{"upstream bankid client_key_file", "no such file"}},
		{"upstream key on P-224", func(dir string) {
			k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			write("bankid.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})), 0o600)(dir)
		}, []string{`upstream "bankid": client key`, "P-256, P-384 or P-521"}},
		{"upstream secret empty", write("minid-secret", " \n", 0o600), []string{"upstream minid client_secret_file", "is empty"}},
		{"all at once", func(dir string) {
			write("signing.pem", "x", 0o600)(dir)
			write("rsa.pem", "x", 0o600)(dir)
			write("salt", "x", 0o600)(dir)
			write("bank-secret", "x", 0o600)(dir)
			write("bankid.pem", "x", 0o600)(dir)
			write("minid-secret", "", 0o600)(dir)
		}, []string{"keys.signing_key_file", "keys.rsa_signing_key_file", "keys.subject_salt_file", "client bank secret", "upstream bankid client_key_file", "upstream minid client_secret_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filesConfig(t, dir)
			tc.spoil(dir)
			err := app.CheckFiles(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckFiles: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckFiles: no error, want one naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckFiles: %v\nwant it to name %q", err, w)
				}
			}
			// Each problem names its upstream once.
			for _, line := range strings.Split(err.Error(), "\n") {
				if n := len(upstreamNamed.FindAllString(line, -1)); n > 1 {
					t.Errorf("CheckFiles: %q names its upstream more than once", line)
				}
			}
		})
	}
}

// TestCheckFilesMakesUpNoKey: a configuration whose node makes up its
// keys at start (no signing_key_file) has no key file to check, and
// CheckFiles makes up none: an RSA key of keys.RSABits is thousands of
// allocations and a noticeable wait for varde config check.
func TestCheckFilesMakesUpNoKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filesConfig(t, dir)
	cfg.Keys.SigningKeyFile, cfg.Keys.RSASigningKeyFile = "", ""
	cfg.Clients, cfg.Upstreams = nil, nil
	allocs := testing.AllocsPerRun(1, func() {
		if err := app.CheckFiles(cfg); err != nil {
			t.Fatalf("CheckFiles: %v", err)
		}
	})
	// Reading the salt file takes about ten.
	if allocs > 200 {
		t.Errorf("CheckFiles: %.0f allocations, as many as making up a key takes", allocs)
	}
}
