package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/webhook"
)

// rpDoc is the relying parties' guide, read whole.
func rpDoc(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "relying-parties.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// docSection is the part of a Markdown document from the heading to the
// next heading of its level or above.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/relying-parties.md has no %q", heading)
	}
	level := strings.Count(heading[:strings.Index(heading, " ")], "#")
	for i := 1; i <= level; i++ {
		after, _, _ = strings.Cut(after, "\n"+strings.Repeat("#", i)+" ")
	}
	return after
}

// docBlocks are the code blocks of a language in a Markdown section, in
// order.
func docBlocks(section, lang string) []string {
	var blocks []string
	for {
		_, after, ok := strings.Cut(section, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, rest, _ := strings.Cut(after, "```\n")
		blocks = append(blocks, block)
		section = rest
	}
}

// TestRelyingPartiesRegistrationTable: the guide's table of registration
// settings names every setting of a client in the configuration file
// with the flag of varde clients add that sets it, and nothing else.
func TestRelyingPartiesRegistrationTable(t *testing.T) {
	section := docSection(t, rpDoc(t), "### Registration settings")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| `(--[a-z-]+)` \\| ")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = m[2]
	}
	for setting, flag := range clientFlags {
		switch got, ok := documented[setting]; {
		case !ok:
			t.Errorf("the registration table has no row for %s (%s)", setting, flag)
		case got != flag:
			t.Errorf("the registration table gives %s the flag %s; varde clients add sets it with %s", setting, got, flag)
		}
	}
	for setting := range documented {
		if _, ok := clientFlags[setting]; !ok {
			t.Errorf("the registration table names %s, which is no setting of a client", setting)
		}
	}
	claims := regexp.MustCompile("(?m)^\\| `claims` \\|.*\\| (.*) \\|$").FindStringSubmatch(section)
	if claims == nil {
		t.Fatal("the registration table has no row for claims")
	}
	for _, c := range config.KnownClaims() {
		if !strings.Contains(claims[1], "`"+c+"`") {
			t.Errorf("the registration table's claims do not name %s, which a client may receive", c)
		}
	}
}

// TestRelyingPartiesDemoClient follows the guide's "To try a client
// against the demo" word for word, but for the demo's port: the demo
// started with the data directory it names, the shell lines that make
// the client's key and JWK set, the configuration that names the demo's
// database, and its varde clients add line, run as varde. The running
// demo must then log a person in with that client (PAR, private_key_jwt
// with the key made, no acr_values: no level below substantial, the
// name claim), refresh its tokens, refuse a request for level low, send
// the person back to the post-logout redirect URI the line registered,
// and post a logout token for the login to its back-channel logout URI.
func TestRelyingPartiesDemoClient(t *testing.T) {
	for _, tool := range []string{"openssl", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: %v", tool, err)
		}
	}
	registration := docSection(t, rpDoc(t), "## Registration")
	shell, yaml := docBlocks(registration, "sh"), docBlocks(registration, "yaml")
	if len(shell) != 2 || len(yaml) != 1 {
		t.Fatalf("the guide's registration has %d shell and %d YAML blocks; this test runs two (the key, the client) and one (demo.yaml)", len(shell), len(yaml))
	}
	const demoLine = "go run ./cmd/varde demo --data ./demo-data"
	if !strings.Contains(registration, "`"+demoLine+"`") {
		t.Fatalf("the guide does not start the demo with %s", demoLine)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	demo := startDemo(t, "./demo-data")

	keys := exec.Command("bash", "-euo", "pipefail", "-c", shell[0])
	if out, err := keys.CombinedOutput(); err != nil {
		t.Fatalf("the guide's key lines: %v\n%s", err, out)
	}
	if !strings.Contains(yaml[0], "issuer: http://localhost:8080\n") {
		t.Fatalf("the guide's demo.yaml does not name the demo's issuer, http://localhost:8080:\n%s", yaml[0])
	}
	cfg := strings.ReplaceAll(yaml[0], "http://localhost:8080", demo.base)
	if err := os.WriteFile("demo.yaml", []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The service: its redirect and post-logout URIs are only read here,
	// and it takes the logout tokens at its back-channel logout URI. It
	// stands at the port the guide's localhost:3000 is made into.
	tokens := make(chan string, 4)
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/backchannel-logout" {
			tokens <- r.PostFormValue("logout_token")
		}
	}))
	defer rpSrv.Close()
	const service = "http://localhost:3000"
	args := shellWords(t, shell[1], "go run ./cmd/varde")
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, service, "http://localhost:"+rpSrv.URL[strings.LastIndex(rpSrv.URL, ":")+1:])
	}
	if out, err := runCmd(t, args...); err != nil {
		t.Fatalf("the guide's %q: %v\n%s", strings.Join(args, " "), err, out)
	}

	key := readECKey(t, "rp-key.pem")
	hc := loadgen.NewHTTPClient(2)
	rp := &loadgen.RP{Issuer: demo.base, ClientID: flagValue(t, args, "--id"), RedirectURI: flagValue(t, args, "--redirect-uri"),
		Key: key, KeyID: "kommune-1", HTTP: hc}
	ctx := context.Background()
	if err := rp.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	person := loadgen.NewDevice(demo.base, true)
	if err := loadgen.Enrol(ctx, hc, demo.base, person, "Kari", "Nordmann"); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Login(ctx, person, loadgen.LoginOptions{ACRValues: "http://eidas.europa.eu/LoA/low"}); err == nil ||
		!strings.Contains(err.Error(), "may not ask for (low)") {
		t.Errorf("a request for level low by the guide's client: %v, want it refused at PAR", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	login, err := rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatalf("login with the guide's client: %v", err)
	}
	if login.Claims["name"] != "Kari Nordmann" || login.Claims["acr"] != "http://eidas.europa.eu/LoA/substantial" {
		t.Errorf("ID token %v, want name Kari Nordmann and acr substantial (a synced passkey)", login.Claims)
	}
	if _, err := rp.Refresh(ctx, login.Token.RefreshToken); err != nil {
		t.Errorf("refresh with the guide's client: %v", err)
	}

	back := flagValue(t, args, "--post-logout-redirect-uri")
	q := url.Values{"id_token_hint": {login.RawIDToken}, "post_logout_redirect_uri": {back}, "state": {"s1"}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, demo.base+"/logout?"+q.Encode(), nil)
	for _, c := range jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != back+"?state=s1" {
		t.Errorf("logout with the guide's client: %d to %q, want 303 to %s?state=s1", res.StatusCode, loc, back)
	}
	select {
	case tok := <-tokens:
		var claims struct {
			SID    string         `json:"sid"`
			Events map[string]any `json:"events"`
		}
		// go-oidc's ID token verifier checks its signature, iss, aud and
		// exp as Back-Channel Logout 1.0 §2.6 asks.
		idt, err := rp.VerifyIDToken(ctx, tok)
		if err == nil {
			err = idt.Claims(&claims)
		}
		if err != nil || claims.SID != login.Claims["sid"] ||
			claims.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
			t.Errorf("logout token for the guide's client: %+v (%v), want the login's sid %v and the back-channel logout event", claims, err, login.Claims["sid"])
		}
	case <-time.After(15 * time.Second):
		t.Error("the guide's client got no logout token at its back-channel logout URI within 15 s")
	}
}

// shellWords is the command of a shell block that begins with prefix,
// its lines joined, as the shell splits it into words, without prefix.
func shellWords(t *testing.T, block, prefix string) []string {
	t.Helper()
	if !strings.HasPrefix(block, prefix+" ") {
		t.Fatalf("the block does not begin with %s:\n%s", prefix, block)
	}
	cmd := exec.Command("bash", "-euc", `words() { printf '%s\0' "$@"; }; words `+strings.TrimPrefix(block, prefix+" "))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("splitting %q: %v", block, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// flagValue is the value of the first flag in args.
func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	if i < 0 || i+1 == len(args) {
		t.Fatalf("%s is not given in %q", flag, args)
	}
	return args[i+1]
}

// readECKey reads an EC private key that openssl ecparam wrote.
func readECKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	for rest := raw; ; {
		if block, rest = pem.Decode(rest); block == nil || block.Type == "EC PRIVATE KEY" {
			break
		}
	}
	if block == nil {
		t.Fatalf("%s holds no EC PRIVATE KEY:\n%s", path, bytes.TrimSpace(raw))
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestRelyingPartiesLogoutDelivery: what the guide tells a relying party
// of the delivery of logout tokens is the schedule a node keeps.
func TestRelyingPartiesLogoutDelivery(t *testing.T) {
	section := strings.Join(strings.Fields(docSection(t, rpDoc(t), "## Logout")), " ")
	cfg := webhook.DefaultConfig()
	for _, want := range []string{
		fmt.Sprintf("Its `exp` is %s after its `iat`", spelledMinutes(t, oidc.LogoutTokenLifetime)),
		fmt.Sprintf("a timeout after %d seconds", int(cfg.AttemptTimeout.Seconds())),
		fmt.Sprintf("%d attempts over about three hours", cfg.MaxAttempts),
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the guide's Logout does not say %q", want)
		}
	}
	var total time.Duration
	for i, d := 0, cfg.FirstRetry; i < cfg.MaxAttempts-1; i++ {
		total += min(d, cfg.MaxDelay)
		d = time.Duration(float64(d) * cfg.Factor)
	}
	if total < 150*time.Minute || total > 210*time.Minute {
		t.Errorf("the retries take %v at most, not about three hours", total)
	}
}

// spelledMinutes is d, a whole number of minutes up to ten, in words.
func spelledMinutes(t *testing.T, d time.Duration) string {
	t.Helper()
	words := []string{"", "a minute", "two minutes", "three minutes", "four minutes", "five minutes"}
	m := int(d / time.Minute)
	if d%time.Minute != 0 || m < 1 || m >= len(words) {
		t.Fatalf("%v is no whole number of minutes up to five", d)
	}
	return words[m]
}

// TestRelyingPartiesErrorDescriptions: every error description the
// guide's Errors tables quote is one Varde's code writes: each part of
// it between ellipses is within one of the string literals of the
// packages under internal/, or is the whole of one, a format's verbs
// standing for any value.
func TestRelyingPartiesErrorDescriptions(t *testing.T) {
	section := docSection(t, rpDoc(t), "## Errors")
	var quoted []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "|") {
			for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(line, -1) {
				quoted = append(quoted, m[1])
			}
		}
	}
	if len(quoted) < 15 {
		t.Fatalf("the guide's Errors tables quote %d error descriptions; this test expects the table of common ones", len(quoted))
	}
	formats := sourceFormats(t, filepath.Join("..", "..", "internal"))
	for _, q := range quoted {
		for _, part := range strings.Split(q, "…") {
			part = strings.Trim(part, " ,;:")
			if len(part) < 10 {
				continue
			}
			if !slices.ContainsFunc(formats, func(f sourceFormat) bool { return f.writes(part) }) {
				t.Errorf("the guide quotes %q, which no string in internal/ writes", part)
			}
		}
	}
}

// sourceFormat is a string literal of Varde's code, as the text between
// its format verbs and as a pattern of the whole, each verb any value.
type sourceFormat struct {
	parts []string
	whole *regexp.Regexp
}

// writes reports whether text is within one of f's parts, or is the
// whole of f with values for its verbs, which are less than half of it
// (so that "%s: %s" writes nothing in particular).
func (f sourceFormat) writes(text string) bool {
	if slices.ContainsFunc(f.parts, func(p string) bool { return strings.Contains(p, text) }) {
		return true
	}
	fixed := 0
	for _, p := range f.parts {
		fixed += len(p)
	}
	return f.whole != nil && 2*fixed > len(text) && f.whole.MatchString(text)
}

// sourceFormats are the string literals of the Go files under dir, but
// tests.
func sourceFormats(t *testing.T, dir string) []sourceFormat {
	t.Helper()
	verb := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]`)
	var out []sourceFormat
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || len(s) < 10 {
				return true
			}
			sf := sourceFormat{parts: verb.Split(s, -1)}
			if len(sf.parts) > 1 {
				quoted := make([]string, len(sf.parts))
				for i, p := range sf.parts {
					quoted[i] = regexp.QuoteMeta(p)
				}
				sf.whole = regexp.MustCompile("^" + strings.Join(quoted, ".+") + "$")
			}
			out = append(out, sf)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
