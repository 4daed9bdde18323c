package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/keys"
)

// TestDemoInBrowser runs `varde demo` and uses it in headless Chromium as
// a person would, with a virtual authenticator for the passkey: Demo Bank
// → Varde → create a test person and passkey → recovery codes → back at
// Demo Bank, logged in; log out (at Varde too); log in again with the same
// passkey and get the same subject identifier; switch languages.
//
// It needs Chromium; without it the test is skipped, or fails when the
// CI environment variable is set. VARDE_SCREENSHOTS=dir saves a
// screenshot of each page to dir.
func TestDemoInBrowser(t *testing.T) {
	b, auth := newBrowser(t)
	ctx := b.ctx
	base := startDemo(t, filepath.Join(t.TempDir(), "data")).base

	// Demo Bank's home page offers the levels by name, not as URIs.
	b.do("open Demo Bank", chromedp.Navigate(base+"/demo-bank/"), chromedp.WaitVisible(chromedp.ID("login")))
	b.shot("bank-home")
	b.want("h1", "Log in to Demo Bank")
	levels := b.text("fieldset")
	for _, want := range []string{"Substantial", "High"} {
		if !strings.Contains(levels, want) {
			t.Errorf("level choices %q lack %q", levels, want)
		}
	}
	if strings.Contains(levels, "eidas.europa.eu") {
		t.Errorf("level choices show raw acr values: %q", levels)
	}

	// Log in, asking for level high: Varde's login page lists the passkey
	// provider for Demo Bank.
	b.do("ask for high and log in with Varde",
		chromedp.Click(chromedp.CSS(`input[name=acr][value$="/high"]`)),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("provider-passkey")))
	b.shot("varde-login")
	b.want("h1", "Log in")
	b.wantIn("main", "Demo Bank")

	// The language menu switches the page to Norwegian and back.
	b.do("switch Varde to Norwegian",
		chromedp.Click(chromedp.CSS(`.langs a[hreflang=nb]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang=nb] #provider-passkey`)))
	b.shot("varde-login-nb")
	b.want("h1", "Logg inn")
	b.want("#provider-passkey", "Passnøkkel")
	b.do("switch Varde back to English",
		chromedp.Click(chromedp.CSS(`.langs a[hreflang=en]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang=en] #provider-passkey`)))

	// Choose the passkey provider, then enrol a synthetic person.
	ceremony := chromedp.CSS(`.passkey-ceremony [data-role=button]`)
	b.do("choose the passkey provider",
		chromedp.Click(chromedp.ID("provider-passkey")),
		chromedp.WaitVisible(ceremony))
	b.want("h1", "Log in with your passkey")
	b.do("follow the link to create a test person",
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Create a test person (demo)"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.passkey-ceremony [data-role=button]`)))
	b.want("h1", "Create a test person")
	b.do("fill in the test person",
		chromedp.SendKeys(chromedp.ID("given_name"), "Kari"),
		chromedp.SendKeys(chromedp.ID("family_name"), "Nordmann"),
		chromedp.SetValue(chromedp.ID("birth_date"), "1990-05-17"))
	b.shot("varde-enrol")
	b.do("create the person and passkey",
		chromedp.Click(chromedp.CSS(`form.passkey-ceremony [data-role=button]`)),
		chromedp.WaitVisible(chromedp.CSS(`code.codes`)))
	b.shot("varde-codes")
	b.want("h1", "Your test person is ready")
	b.wantIn("main", "Kari Nordmann")
	if codes := b.count(`code.codes`); codes < 5 {
		t.Errorf("%d recovery codes shown", codes)
	}

	// Continue: back at Demo Bank, logged in at level high.
	b.do("continue to Demo Bank",
		chromedp.Click(chromedp.Search(`//form[@action="/passkey/enrolled/continue"]//button`)),
		chromedp.WaitVisible(chromedp.ID("welcome")))
	b.shot("bank-account")
	b.want("#welcome", "Hello, Kari Nordmann")
	b.want("#name", "Kari Nordmann")
	b.want("#birthdate", "1990-05-17")
	b.want("#level", "High")
	b.wantIn("#claims", `"acr": "http://eidas.europa.eu/LoA/high"`)
	b.want("#provider", "Passkey")
	if id := b.text("#national-id"); len(id) != 11 {
		t.Errorf("national identity number = %q", id)
	}
	sub := b.text("#sub")
	if len(sub) < 16 {
		t.Fatalf("sub = %q", sub)
	}
	b.wantIn("#claims", sub)
	// Demo Bank's access token is bound to its key (DPoP), and Varde's
	// UserInfo endpoint answered it for the same person.
	b.wantIn("#token-binding", "Bound to this bank's key (DPoP)")

	// Log out at Demo Bank: RP-initiated logout ends Varde's session too,
	// and Varde sends the browser back to Demo Bank's home page.
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login")))
	b.want("h1", "Log in to Demo Bank")
	// Without a session the account page sends the person to every way
	// in, not only passkeys.
	b.do("look at Varde's account page", chromedp.Navigate(base+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
	b.want("h1", "Log in")

	// Log in again, at the default level, with the same passkey: no
	// enrolment, and the same subject identifier.
	b.do("log in again",
		chromedp.Navigate(base+"/demo-bank/"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.Click(chromedp.ID("provider-passkey")),
		chromedp.WaitVisible(ceremony))
	b.shot("varde-passkey-login")
	b.do("use the passkey", chromedp.Click(ceremony), chromedp.WaitVisible(chromedp.ID("welcome")))
	b.want("#name", "Kari Nordmann")
	b.want("#level", "High")
	if again := b.text("#sub"); again != sub {
		t.Errorf("sub after logging in again = %q, first time %q", again, sub)
	}
	creds, err := chromedp.Run(ctx, chromedp.Action[webauthn.GetCredentialsResult](func(ctx context.Context, tg *chromedp.Target) (webauthn.GetCredentialsResult, error) {
		return cdp.Call(ctx, tg, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth})
	}))
	if err != nil {
		t.Fatalf("read the virtual authenticator: %v", err)
	}
	if n := len(creds.Credentials); n != 1 || creds.Credentials[0].SignCount < 2 {
		t.Errorf("authenticator holds %d credentials, %+v; want one, used twice", n, creds.Credentials)
	}

	// Demo Bank in Norwegian.
	b.do("switch Demo Bank to Norwegian",
		chromedp.Click(chromedp.CSS(`.langs a[hreflang=nb]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang=nb] #welcome`)))
	b.shot("bank-account-nb")
	b.want("#welcome", "Hei, Kari Nordmann")
	b.want("#level", "Høyt")
	b.want("#logout", "Logg ut")

	// Log out at Varde instead: Varde tells Demo Bank by back-channel
	// logout, and Demo Bank's session ends with Varde's, so its account
	// page sends the person to log in again.
	b.do("log out at Varde",
		chromedp.Navigate(base+"/logout"),
		chromedp.Click(chromedp.CSS(`main form button[type=submit]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.do("open Demo Bank's account page", chromedp.Navigate(base+"/demo-bank/account"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if b.count("#login") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Demo Bank still shows the account 15 s after the person logged out at Varde:\n%s", b.where())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDemoFlags: the demo refuses an address WebAuthn cannot use, as a
// usage error (exit status 2) that shows the form it wants.
func TestDemoFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"IP address", []string{"--addr", "127.0.0.1:0"}, "the host must be localhost, as in localhost:8080"},
		{"no host", []string{"--addr", ":0"}, "the host must be localhost"},
		{"no port", []string{"--addr", "localhost"}, "the host must be localhost"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := demo(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("demo(%q) = %v, want an error with %q", tt.args, err, tt.want)
			}
			if code := exitStatus(err, io.Discard); code != 2 {
				t.Errorf("demo(%q): exit status %d, want 2", tt.args, code)
			}
		})
	}
}

// TestDemoDataKept: a demo restarted with the same --data signs with the
// same key and pairs subjects with the same salt, so its persons and
// their subject identifiers survive.
func TestDemoDataKept(t *testing.T) {
	dir := t.TempDir()
	var kids, salts []string
	for range 2 {
		s, err := loadOrCreateSigner(filepath.Join(dir, "signing-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		salt, err := loadOrCreateSecret(filepath.Join(dir, "subject-salt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(salt) != 32 {
			t.Fatalf("salt of %d bytes", len(salt))
		}
		kids, salts = append(kids, s.KID()), append(salts, string(salt))
	}
	if kids[0] != kids[1] || salts[0] != salts[1] {
		t.Errorf("second start: key %s, then %s; salt kept %v", kids[0], kids[1], salts[0] == salts[1])
	}
}

// TestDemoRSAKeyKept: the demo's RSA key, which signs the ID tokens of
// relying parties registered for RS256, is made once and read again by
// a demo restarted with the same --data; an ES256 key where it should
// be is refused, naming both algorithms.
func TestDemoRSAKeyKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rsa-signing-key.pem")
	first, err := loadOrCreateKey(path, keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadOrCreateKey(path, keys.RS256)
	if err != nil {
		t.Fatal(err)
	}
	if first.Alg() != keys.RS256 || first.KID() != again.KID() {
		t.Errorf("RSA key: %s %s, then %s", first.Alg(), first.KID(), again.KID())
	}
	if _, err := loadOrCreateKey(path, keys.Algorithm); err == nil || !strings.Contains(err.Error(), "signs RS256, not ES256") {
		t.Errorf("an RSA key read as the ES256 one: %v", err)
	}
}

// TestDemoSaltFileChecked: the demo makes its subject salt readable by
// its user only, and refuses one in --data that others may read, one
// too large to be a salt, or one too short, naming the file.
func TestDemoSaltFileChecked(t *testing.T) {
	dir := t.TempDir()
	salt := filepath.Join(dir, "subject-salt")
	if _, err := loadOrCreateSecret(salt); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(salt); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("salt made with mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	for _, tc := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"world-readable", bytes.Repeat([]byte{1}, 32), 0o644, "has mode 0644"},
		{"group-writable", bytes.Repeat([]byte{1}, 32), 0o660, "has mode 0660"},
		{"huge", bytes.Repeat([]byte{1}, 1<<20), 0o600, "is larger than"},
		{"short", []byte("12345"), 0o600, "holds 5 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			salt := filepath.Join(dir, "subject-salt")
			if err := os.WriteFile(salt, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(salt, tc.mode); err != nil {
				t.Fatal(err)
			}
			d, err := newDemo(t.Context(), dir, "http://localhost:1", "error", io.Discard, demoTuning{})
			if err == nil {
				d.Close()
				t.Fatal("demo started")
			}
			if !strings.Contains(err.Error(), "--data") || !strings.Contains(err.Error(), salt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want --data, %s and %q", err, salt, tc.want)
			}
		})
	}
}

// runningDemo is a `varde demo` started by a test.
type runningDemo struct {
	// base is the URL it serves, as it printed it; stdout what it
	// printed.
	base   string
	stdout *syncBuffer
	// stop stops it as Ctrl+C does and waits for it to end; the test's
	// end stops it too.
	stop func()
}

// startDemo runs `varde demo` on a free port, with --data data unless
// data is "" (a temporary directory then), and returns it once it has
// printed its addresses.
func startDemo(t *testing.T, data string) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	args := []string{"--addr", "localhost:0"}
	if data != "" {
		args = append(args, "--data", data)
	}
	done := make(chan error, 1)
	go func() { done <- demo(ctx, args, &stdout, &stderr) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("demo: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("demo did not stop within 15 s")
			}
			if t.Failed() {
				t.Logf("demo's log:\n%s", stderr.String())
			}
		})
	}
	t.Cleanup(stop)
	bank := regexp.MustCompile(`Demo Bank \(a relying party\): +(http://localhost:\d+)/demo-bank/\n`)
	deadline := time.After(15 * time.Second)
	for {
		if m := bank.FindStringSubmatch(stdout.String()); m != nil {
			return &runningDemo{base: m[1], stdout: &stdout, stop: stop}
		}
		select {
		case err := <-done:
			t.Fatalf("demo stopped before printing its URLs: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("demo printed no Demo Bank URL within 15 s:\n%s", stdout.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// newBrowser opens a tab of headless Chromium with a virtual
// authenticator, whose ID it returns too. Without Chromium the test is
// skipped, or fails when the CI environment variable is set.
// VARDE_SCREENSHOTS=dir saves the screenshots the test asks for to dir.
func newBrowser(t *testing.T) (*browser, webauthn.AuthenticatorID) {
	t.Helper()
	return newBrowserIn(t, "")
}

// newBrowserIn is newBrowser with lang as the browser's language
// (browsertest.Options.Lang).
func newBrowserIn(t *testing.T, lang string) (*browser, webauthn.AuthenticatorID) {
	t.Helper()
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != "", Lang: lang})
	b := &browser{t: t, ctx: ctx, shots: os.Getenv("VARDE_SCREENSHOTS")}
	var auth webauthn.AuthenticatorID
	b.do("add a virtual authenticator", browsertest.EnableWebAuthn(), browsertest.AddAuthenticator(&auth))
	return b, auth
}

// browser is one tab and the test using it: every step that fails ends
// the test with where the browser was and what it showed.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	// A step that hangs fails on its own, leaving the browser's time to
	// say where it hung.
	ctx, cancel := context.WithTimeout(b.ctx, stepLimit)
	defer cancel()
	if err := browsertest.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", step, err, b.where())
	}
}

// stepLimit bounds one step of a walk through the pages: a few seconds
// on a loaded machine, well inside the browser's three minutes.
const stepLimit = time.Minute

// where describes the page, for failure messages.
func (b *browser) where() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return "at " + loc + ":\n" + body + "\nlast navigation events:\n" + browsertest.Trace(b.ctx)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, browsertest.Settled(chromedp.Text(chromedp.CSS(sel))))
	if err != nil {
		b.t.Fatalf("text of %s: %v\n%s", sel, err, b.where())
	}
	return strings.TrimSpace(s)
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// want checks the visible text of the first element matching sel.
func (b *browser) want(sel, text string) {
	b.t.Helper()
	if got := b.text(sel); got != text {
		b.t.Errorf("%s shows %q, want %q", sel, got, text)
	}
}

// wantIn checks that the element's visible text contains text.
func (b *browser) wantIn(sel, text string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, text) {
		b.t.Errorf("%s shows %q, want it to contain %q", sel, got, text)
	}
}

// shot saves a screenshot of the whole page as name.png when screenshots
// were asked for.
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644)
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestDemoSecretsChecked: the demo, provider-sim and bench read the
// signing key and subject salt they keep as the node reads its own: a
// file others can read, one too large, or one that is not a regular file
// is refused, naming it, and never replaced by a new one.
func TestDemoSecretsChecked(t *testing.T) {
	key := func(t *testing.T, path string) {
		if _, err := loadOrCreateSigner(path); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		make  func(t *testing.T, path string)
		mode  os.FileMode
		want  string
		check func(path string) error
	}{
		{"key readable by others", key, 0o644, "mode 0644",
			func(p string) error { _, err := loadOrCreateSigner(p); return err }},
		{"salt readable by others", func(t *testing.T, p string) {
			if _, err := loadOrCreateSecret(p); err != nil {
				t.Fatal(err)
			}
		}, 0o604, "mode 0604", func(p string) error { _, err := loadOrCreateSecret(p); return err }},
		{"key too large", func(t *testing.T, p string) {
			if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
				t.Fatal(err)
			}
		}, 0o600, "larger than", func(p string) error { _, err := loadOrCreateSigner(p); return err }},
		{"key a directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, 0o700, "not a regular file", func(p string) error { _, err := loadOrCreateSigner(p); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			tt.make(t, path)
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Stat(path)
			err := tt.check(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want an error naming %s with %q", err, path, tt.want)
			}
			after, _ := os.Stat(path)
			if before.Size() != after.Size() || !before.ModTime().Equal(after.ModTime()) {
				t.Errorf("%s was changed", path)
			}
		})
	}
}
