package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// runSim runs `varde provider-sim args…` in a goroutine until the
// returned cancel is called, and waits for its ready file.
func runSim(t *testing.T, readyFile string, args ...string) (providersim.Ready, *syncBuffer, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- providerSim(ctx, append(args, "--ready-file", readyFile), &stdout, &stderr) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("provider-sim did not stop")
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := providersim.ReadReadyFile(readyFile)
		if err == nil {
			return r, &stdout, stop
		}
		select {
		case err := <-done:
			t.Fatalf("provider-sim ended before it was ready: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no ready file: %v\n%s", err, stderr.String())
		}
	}
}

func fetchJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestProviderSimCommand runs `varde provider-sim --ready-file`, switches
// it with `varde provider fault --ready-file`, stops it by cancelling
// its context, and starts it again with the same --data and port: same
// issuer, same signing key.
func TestProviderSimCommand(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("a-client-secret-of-forty-characters-long\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "ready.json")
	data := filepath.Join(dir, "data")
	args := []string{"--name", "Demo BankID", "--id", "bankid", "--level", "high", "--data", data,
		"--admin-addr", "127.0.0.1:0", "--client-id", "varde", "--client-secret-file", secret,
		"--redirect-uri", "http://localhost:8080/upstream/bankid/callback"}

	r, stdout, stop := runSim(t, ready, append(args, "--addr", "127.0.0.1:0")...)
	if r.ID != "bankid" || r.Name != "Demo BankID" || r.Level != "high" || r.PID != os.Getpid() || len(r.AdminToken) < 32 {
		t.Errorf("ready file %+v", r)
	}
	if !strings.HasPrefix(r.Issuer, "http://localhost:") || !strings.Contains(stdout.String(), r.Issuer) || !strings.Contains(stdout.String(), r.AdminToken) {
		t.Errorf("issuer %q; output:\n%s", r.Issuer, stdout.String())
	}
	var meta struct {
		Issuer string `json:"issuer"`
	}
	fetchJSON(t, r.Issuer+"/.well-known/openid-configuration", &meta)
	if meta.Issuer != r.Issuer {
		t.Errorf("discovery issuer %q, want %q", meta.Issuer, r.Issuer)
	}
	var jwks1 struct{ Keys []struct{ Kid string } }
	fetchJSON(t, r.Issuer+"/jwks", &jwks1)

	var out bytes.Buffer
	if err := provider(context.Background(), []string{"fault", "--ready-file", ready, "--mode", "down"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != "fault: down" {
		t.Errorf("provider fault printed %q", out.String())
	}
	if _, err := net.DialTimeout("tcp", r.Addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while down: %v", err)
	}

	if err := stop(); err != nil {
		t.Fatalf("provider-sim returned %v", err)
	}
	if _, err := os.Stat(ready); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
	if c, err := net.DialTimeout("tcp", r.AdminURL[len("http://"):], time.Second); err == nil {
		c.Close()
		t.Error("admin listener still open after stop")
	}

	// Again on the same port with the same data: the same issuer and key.
	r2, _, stop2 := runSim(t, ready, append(args, "--addr", r.Addr)...)
	defer stop2()
	if r2.Issuer != r.Issuer {
		t.Errorf("restart issuer %q, want %q", r2.Issuer, r.Issuer)
	}
	var jwks2 struct{ Keys []struct{ Kid string } }
	fetchJSON(t, r2.Issuer+"/jwks", &jwks2)
	if len(jwks1.Keys) != 1 || len(jwks2.Keys) != 1 || jwks1.Keys[0].Kid != jwks2.Keys[0].Kid {
		t.Errorf("keys before %v, after restart %v", jwks1.Keys, jwks2.Keys)
	}
}

// TestProviderFaultCommand drives an in-process sim with `varde provider
// fault`.
func TestProviderFaultCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "sim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sim, err := providersim.Start(ctx, providersim.Config{
		ID: "minid", Name: "Demo MinID", Level: assurance.Substantial, Store: db,
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(sim.AdminToken()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	readableToken := filepath.Join(dir, "readable-token")
	if err := os.WriteFile(readableToken, []byte(sim.AdminToken()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readableToken, 0o644); err != nil {
		t.Fatal(err)
	}
	admin := []string{"fault", "--admin", sim.AdminURL(), "--token", sim.AdminToken()}
	for _, tc := range []struct {
		name    string
		args    []string
		want    string // output, or part of the error
		wantErr bool
		fault   providersim.Fault
	}{
		{"show", admin, "fault: ok", false, providersim.Fault{Mode: providersim.ModeOK}},
		{"slow", append(admin, "--mode", "slow", "--delay", "2s"), "fault: slow (2s)", false, providersim.Fault{Mode: providersim.ModeSlow, Delay: 2 * time.Second}},
		{"failing with token file", []string{"fault", "--admin", sim.AdminURL(), "--token-file", tokenFile, "--mode", "failing"}, "fault: failing", false, providersim.Fault{Mode: providersim.ModeFailing}},
		{"down", append(admin, "--mode", "down"), "fault: down", false, providersim.Fault{Mode: providersim.ModeDown}},
		{"ok", append(admin, "--mode", "ok"), "fault: ok", false, providersim.Fault{Mode: providersim.ModeOK}},
		{"wrong token", []string{"fault", "--admin", sim.AdminURL(), "--token", "not-the-token", "--mode", "down"}, "401", true, providersim.Fault{Mode: providersim.ModeOK}},
		{"bad mode", append(admin, "--mode", "sideways"), "mode must be", true, providersim.Fault{Mode: providersim.ModeOK}},
		{"no admin", []string{"fault", "--mode", "down"}, "--admin and --token", true, providersim.Fault{Mode: providersim.ModeOK}},
		{"no subcommand", []string{"faults"}, "", true, providersim.Fault{Mode: providersim.ModeOK}},
		{"token file others can read", []string{"fault", "--admin", sim.AdminURL(), "--token-file", readableToken, "--mode", "down"},
			"--token-file: " + readableToken + " has mode 0644", true, providersim.Fault{Mode: providersim.ModeOK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := provider(ctx, tc.args, &out, io.Discard)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %v, want one with %q", err, tc.want)
				}
			} else if err != nil || strings.TrimSpace(out.String()) != tc.want {
				t.Errorf("output %q, %v; want %q", out.String(), err, tc.want)
			}
			if got := sim.Fault(); got != tc.fault {
				t.Errorf("sim fault %v, want %v", got, tc.fault)
			}
		})
	}
}

// TestProviderSimFlags: bad flags are reported before anything starts,
// as usage errors (exit status 2) where the flags alone are wrong.
func TestProviderSimFlags(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	_ = os.WriteFile(secret, []byte("s3cret-s3cret-s3cret-s3cret-s3cret"), 0o600)
	// A secret others on the host can read is refused, as the node
	// refuses its own (config.ReadSecretFile).
	readable := filepath.Join(dir, "readable")
	_ = os.WriteFile(readable, []byte("s3cret-s3cret-s3cret-s3cret-s3cret"), 0o600)
	if err := os.Chmod(readable, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("s3cret-s3cret-s3cret-s3cret-s3c\n"), 0o600)
	huge := filepath.Join(dir, "huge.json")
	_ = os.WriteFile(huge, []byte(`{"keys":[]}`+strings.Repeat(" ", maxJWKSFileSize)), 0o600)
	base := []string{"--name", "Demo", "--id", "demo", "--redirect-uri", "http://localhost:8080/cb", "--data", filepath.Join(dir, "d")}
	// A subject salt cut short in the data directory is named, with the
	// flag that chose the directory.
	shortSalt := filepath.Join(dir, "short-salt")
	if err := os.MkdirAll(shortSalt, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(shortSalt, "subject-salt"), []byte("12345"), 0o600)
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		usage bool
	}{
		{"no client auth", base, "exactly one of", true},
		{"two client auths", append(base, "--client-secret-file", secret, "--client-jwks-uri", "http://localhost:8080/jwks"), "exactly one of", true},
		{"no name", []string{"--id", "x", "--client-secret-file", secret, "--redirect-uri", "http://localhost/cb"}, "--name and --id", true},
		{"bad level", append(base, "--client-secret-file", secret, "--level", "extreme"), "--level", true},
		{"bad fault", append(base, "--client-secret-file", secret, "--fault", "melting"), "--fault", true},
		{"public address", append(base, "--client-secret-file", secret, "--addr", "0.0.0.0:0"), "loopback", false},
		{"secret others can read", append(base, "--client-secret-file", readable), "--client-secret-file: " + readable + " has mode 0644", false},
		{"admin token others can read", append(base, "--client-secret-file", secret, "--admin-token-file", readable),
			"--admin-token-file: " + readable + " has mode 0644", false},
		{"empty secret", append(base, "--client-secret-file", empty), "--client-secret-file: " + empty + " holds no secret", true},
		{"short secret", append(base, "--client-secret-file", short), "--client-secret-file: the secret in " + short + " is shorter than 32 characters", true},
		{"short salt", []string{"--name", "Demo", "--id", "demo", "--redirect-uri", "http://localhost:8080/cb", "--data", shortSalt,
			"--client-secret-file", secret}, "sim demo: --data: the subject salt " + filepath.Join(shortSalt, "subject-salt") + " holds 5 bytes, not at least 32", false},
		{"huge jwks", append(base, "--client-jwks-file", huge), "--client-jwks-file: " + huge + " is larger than 1048576 bytes", false},
		{"keys cache without jwks uri", append(base, "--client-secret-file", secret, "--client-jwks-cache", "6h"), "--client-jwks-cache", true},
		{"negative keys cache", append(base, "--client-jwks-uri", "http://localhost:8080/jwks", "--client-jwks-cache", "-1s"), "--client-jwks-cache", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A sim that starts runs until its context ends: the
			// deadline turns that into a failure rather than a hang.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := providerSim(ctx, tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
			if _, usage := errors.AsType[*usageError](err); usage != tc.usage {
				t.Errorf("error %v: a usage error (exit status 2): %v, want %v", err, usage, tc.usage)
			}
		})
	}
	for _, args := range [][]string{
		{"fault", "--admin", "http://localhost:1"},
		{"fault", "--admin", "http://localhost:1", "--token", "t", "--mode", "melting"},
	} {
		if err := provider(context.Background(), args, io.Discard, io.Discard); exitStatus(err, io.Discard) != 2 {
			t.Errorf("provider %v: %v, want exit status 2", args, err)
		}
	}
}
