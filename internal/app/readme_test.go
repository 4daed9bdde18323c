package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

// TestReadmeRelyingPartyExample runs the README's "Integrating a
// relying party" as a developer would copy it: the shell lines that make
// the client's key and JWK set, a client registered as its
// `varde clients add` line says, with that JWK set, and its openid-client
// program, word for word but for the issuer's port, against a real
// node. The person logs in at the URL the program prints, and the
// program must print the person's pairwise sub, the level reached and
// the name UserInfo gave it.
func TestReadmeRelyingPartyExample(t *testing.T) {
	modules := filepath.Join(filepath.Dir(openIDClientScript(t)), "node_modules")
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := readmeSection(t, string(raw), "## Integrating a relying party")
	shell, program := fenced(t, section, "sh"), fenced(t, section, "js")
	keys, add, ok := strings.Cut(shell, "go run ./cmd/varde clients add")
	if !ok {
		t.Fatalf("the README's shell lines register no client with varde clients add:\n%s", shell)
	}
	for _, want := range []string{"--id kommune", "--jwks-file kommune.jwks.json", "--redirect-uri http://localhost:3000/callback", "--require-par", "--claims name"} {
		if !strings.Contains(add, want) {
			t.Fatalf("the README's varde clients add has no %s, which this test registers the client with:\n%s", want, add)
		}
	}

	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", keys)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's key lines: %v\n%s", err, out)
	}
	jwks, err := os.ReadFile(filepath.Join(dir, "kommune.jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 1 || !set.Keys[0].IsPublic() || set.Keys[0].KeyID != "kommune-1" {
		t.Fatalf("the README's JWK set %s: %v; want one public key, kommune-1", jwks, err)
	}

	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	n, _ := startNodeAt(t, "127.0.0.1:0", filepath.Join(t.TempDir(), "varde.db"), salt)
	c := &store.Client{
		ID: "kommune", Name: "Kommune", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
		RedirectURIs: []string{"http://localhost:3000/callback"}, RequirePAR: true, Claims: []string{"name"},
		Source: "cli", CreatedAt: time.Now(),
	}
	if err := n.app.Store.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	person := n.enrol(t, false)
	pk, err := n.app.Store.GetPasskey(ctx, person.Cred.ID)
	if err != nil {
		t.Fatal(err)
	}

	if !strings.Contains(program, `"http://localhost:8080"`) {
		t.Fatalf("the README's program does not name the demo's issuer, http://localhost:8080:\n%s", program)
	}
	script := filepath.Join(dir, "rp.mjs")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(program, "http://localhost:8080", n.issuer)), 0o600); err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(ctx, "node", script)
	node.Dir = dir
	node.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	node.Stderr = &stderr
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = node.Process.Kill(); _ = node.Wait() }()
	out := bufio.NewReader(stdout)
	first, err := out.ReadString('\n')
	authURL, ok := strings.CutPrefix(strings.TrimSpace(first), "log in at ")
	if err != nil || !ok {
		t.Fatalf("the README's program printed %q (%v), not the URL to log in at: %s", first, err, stderr.String())
	}
	browser := &loadgen.RP{Issuer: n.issuer, RedirectURI: c.RedirectURIs[0], HTTP: n.http}
	cb, err := browser.Authorize(ctx, person, authURL, loadgen.LoginOptions{})
	if err != nil {
		t.Fatalf("login at %s: %v", authURL, err)
	}
	if _, err := io.WriteString(stdin, cb.String()+"\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := node.Wait(); err != nil {
		t.Fatalf("the README's program: %v\n%s%s", err, rest, stderr.String())
	}
	sub := oidc.PairwiseSubject(salt, c.ID, pk.PersonID)
	for _, want := range []string{sub + " " + assurance.ACRHigh + " [ 'hwk', 'user', 'mfa' ]", "name: 'Kari Nordmann'"} {
		if !bytes.Contains(rest, []byte(want)) {
			t.Errorf("the README's program printed %q; want %q in it", rest, want)
		}
	}
}

// readmeSection is the part of a Markdown document from the heading
// to the next heading of its level.
func readmeSection(t *testing.T, doc, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("the README has no %q", heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	section, _, _ := strings.Cut(after, "\n"+level)
	return section
}

// fenced is the first code block of a language in a Markdown section.
func fenced(t *testing.T, section, lang string) string {
	t.Helper()
	_, after, ok := strings.Cut(section, "```"+lang+"\n")
	if !ok {
		t.Fatalf("no %s code block in:\n%s", lang, section)
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatalf("the %s code block does not end", lang)
	}
	return block
}
