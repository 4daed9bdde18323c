package browsertest

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Options tune Start.
type Options struct {
	// Required makes a missing Chromium a test failure instead of a skip.
	Required bool
	// Timeout bounds everything done with the returned context; 3
	// minutes if zero, room for a loaded machine. No browser step can
	// hang a test past it.
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
// The browser is closed when the test ends. The context keeps the tab's
// last navigation events, for Trace. Start skips the test with
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
		opt.Timeout = 3 * time.Minute
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
	ctx, err = Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// Do runs the steps in order, as chromedp.Do does, each made Settled:
// a step that found its element and then failed to act on it because
// the page's node ids were renewed in between runs again. Use it in
// place of chromedp.Do for steps that click, type or read elements.
// The tab's trace (see Trace) says when each step began and how it
// ended, so that a step that hangs is named among the page's events.
func Do(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	tr, _ := ctx.Value(traceKey{}).(*trace)
	settled := make([]chromedp.Action[chromedp.Void], len(steps))
	for i, s := range steps {
		settled[i] = tr.step(i+1, len(steps), Settled(s))
	}
	return chromedp.Do(ctx, settled...)
}

// Settled returns a, run again (up to a few times, and while the
// context lasts) when it fails only because an element node it found was
// gone by the time it acted on it (see NodeGone).
//
// chromedp's element actions (Click, SendKeys, SetValue, Text, …) find
// the element, then act on its DevTools node id. Chromium renews every
// node id of a page when the page finishes parsing (DOMContentLoaded,
// after its deferred scripts ran) and when it navigates, so an element
// found while a page is still loading can lose its id before the click
// or the typing reaches it: "Could not find node with given id". On a
// loaded machine the window between the two is wide enough to hit. Such
// a failure comes before any input reaches the page (the node id is
// resolved first), so running the whole action again, which finds the
// element anew, clicks or types once.
func Settled[T any](a chromedp.Action[T]) chromedp.Action[T] {
	return func(ctx context.Context, t *chromedp.Target) (T, error) {
		for try := 1; ; try++ {
			v, err := a(ctx, t)
			if err == nil || !NodeGone(err) || try == settleTries || ctx.Err() != nil {
				return v, err
			}
		}
	}
}

// settleTries bounds how often Settled runs an action. Node ids are
// renewed once per parsed document, so two tries are almost always
// enough; the rest is for a page that redirects or reloads itself.
const settleTries = 5

// NodeGone reports whether err is Chromium's answer to a command naming
// a node id it no longer knows, or a node no longer in the page: the page
// renewed its node ids, navigated, or replaced the element after it was
// found.
func NodeGone(err error) bool {
	var e *cdproto.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Message {
	case "Could not find node with given id", "No node with given id found",
		"Node with given id does not belong to the document", "Node is detached from document":
		return true
	}
	return false
}

// Loaded waits until the current page has loaded (its load event has
// fired) and the browser has drawn it since, so that a click that
// follows lands on the page as it is shown. A wait cut short by the page
// navigating goes on at the next page; it gives up when the context
// ends, or after a page that keeps navigating.
func Loaded() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for try := 1; ; try++ {
			_, err := chromedp.Evaluate[bool](loadedJS, chromedp.EvalAwaitPromise)(ctx, t)
			if err == nil || try == loadedTries || ctx.Err() != nil {
				return err
			}
			if _, err := chromedp.Sleep(50*time.Millisecond)(ctx, t); err != nil {
				return err
			}
		}
	})
}

// loadedJS resolves two animation frames after the page's load event,
// which it may already have had: by then a frame of the loaded page has
// been drawn.
const loadedJS = `new Promise(resolve => {
  const drawn = () => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)));
  if (document.readyState === "complete") drawn(); else addEventListener("load", drawn, {once: true});
})`

// loadedTries bounds how often Loaded starts waiting again after the
// page navigated away under it (200 tries, 50 ms apart: 10 s of pages).
const loadedTries = 200

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
