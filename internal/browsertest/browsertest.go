package browsertest

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Options tune Start.
type Options struct {
	// Required makes a missing Chromium a test failure instead of a skip.
	Required bool
	// Timeout bounds everything done with the returned context; 60 s if
	// zero. No browser step can hang a test past it.
	Timeout time.Duration
	// Lang is the browser's language, sent as Accept-Language; "en-GB" if
	// empty.
	Lang string
}

// Chromium returns the path of the Chromium executable: chromium or
// chromium-browser on PATH, else /usr/bin/chromium.
func Chromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("chromium not found on PATH (install it with scripts/ensure-chromium.sh)")
}

// Start runs a fresh headless Chromium, with a new temporary profile, and
// returns the context of one tab in it, for chromedp.Do and chromedp.Run.
// The browser is closed when the test ends. Start skips the test with
// -short or when Chromium is missing, except that a missing Chromium
// fails the test when opt.Required is set.
func Start(t testing.TB, opt Options) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	path, err := Chromium()
	if err != nil {
		if opt.Required {
			t.Fatalf("%v; browser tests are required in this run", err)
		}
		t.Skipf("%v; skipping the browser test", err)
	}
	if opt.Timeout == 0 {
		opt.Timeout = 60 * time.Second
	}
	if opt.Lang == "" {
		opt.Lang = "en-GB"
	}
	// DefaultExecAllocatorOptions already run headless with --no-first-run,
	// --disable-background-networking and --disable-sync. Without a
	// user-data-dir flag chromedp makes a new profile directory and
	// removes it, with any leftover child processes, when the browser ends.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1024, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", opt.Lang),
		chromedp.Flag("accept-lang", opt.Lang),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(tab, opt.Timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so a browser that cannot start is reported as
	// such and not as the first step of the test failing.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return ctx
}

// EnableWebAuthn switches on the tab's WebAuthn domain, which virtual
// authenticators need.
func EnableWebAuthn() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{})
		return err
	})
}

// AddAuthenticator adds a virtual platform authenticator like a phone's
// or a laptop's: CTAP 2.1 over an internal transport, with discoverable
// credentials and user verification that always succeeds, and presence
// confirmed without a person. Its ID is stored in *id when id is not nil.
func AddAuthenticator(id *webauthn.AuthenticatorID) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
		if err == nil && id != nil {
			*id = res.AuthenticatorID
		}
		return err
	})
}

// RemoveAuthenticator removes the virtual authenticator *id, read when
// the action runs.
func RemoveAuthenticator(id *webauthn.AuthenticatorID) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: *id})
		return err
	})
}
