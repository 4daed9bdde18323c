package passkeyidp_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/browsertest"
)

// TestBrowserSessionTimeout runs web/static/timeout.js in headless
// Chromium with a session that ends after 10 s unused (ADR 50, WCAG 2.2
// SC 2.2.1): the account page warns before the end in a modal dialog
// that has the focus on its one button; Enter keeps the session, which
// then outlives the end it would have had, and the page says so in a
// status message; left alone, the dialog says the person was logged out
// and offers to log in again, and the session has indeed ended.
func TestBrowserSessionTimeout(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	h := newHarness(t, true)
	const idle = 10 * time.Second
	h.p.Sessions.Now = time.Now
	h.p.Sessions.Lifetime, h.p.Sessions.IdleTimeout = time.Hour, idle
	h.db.SetSessionIdleTimeout(idle)

	dialog := `dialog#session-timeout`
	var loaded time.Time
	var focused, described bool
	var status, kept string
	err := browsertest.Do(ctx,
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(new(webauthn.AuthenticatorID)),
		enrolInBrowser(h, ""),
		chromedp.WaitVisible(`#session-timeout-info`),
		chromedp.Func(func(context.Context, *chromedp.Target) error { loaded = time.Now(); return nil }),
		// The warning, 5 s before the end (half the idle timeout, which
		// is under two minutes here): modal, its button focused.
		chromedp.WaitVisible(dialog+`[open]`),
		into(&focused, chromedp.Evaluate[bool](`document.activeElement === document.querySelector("#session-timeout [data-role=keep]")`)),
		into(&described, chromedp.Evaluate[bool](`(() => { const d = document.querySelector("#session-timeout");
			return d.getAttribute("aria-labelledby") === "session-timeout-title" && !!document.getElementById(d.getAttribute("aria-describedby")); })()`)),
		// One key keeps the session.
		chromedp.KeyEvent("\r"),
		chromedp.WaitNotVisible(dialog),
		into(&status, chromedp.Poll[string](`document.querySelector("#session-timeout-status").textContent`)),
	)
	if err != nil {
		t.Fatalf("warning before the session ends: %v", err)
	}
	if !focused || !described {
		t.Errorf("warning: focus on its button %v, labelled and described %v; want both", focused, described)
	}
	if status != "You are still logged in." {
		t.Errorf("status after keeping the session = %q", status)
	}
	// Past the end the session would have had unkept, it is still there.
	time.Sleep(time.Until(loaded.Add(idle + time.Second)))
	err = browsertest.Do(ctx,
		chromedp.Navigate(h.origin+"/account"),
		chromedp.WaitVisible(`#session-timeout-info`),
		into(&kept, chromedp.Location()),
	)
	if err != nil || kept != h.origin+"/account" {
		t.Fatalf("account page after the end the session would have had: at %q, %v", kept, err)
	}

	// Left alone: the dialog says the person is logged out and offers to
	// log in again, with the focus there; the session has ended.
	var loginFocused bool
	var title, after string
	err = browsertest.Do(ctx,
		chromedp.WaitVisible(dialog+` [data-role=login]`),
		into(&loginFocused, chromedp.Evaluate[bool](`document.activeElement === document.querySelector("#session-timeout [data-role=login]")`)),
		into(&title, chromedp.Text(`#session-timeout-title`)),
		chromedp.Navigate(h.origin+"/account"),
		into(&after, chromedp.Location()),
	)
	if err != nil {
		t.Fatalf("the session ending in the browser: %v", err)
	}
	if !loginFocused || title != "You have been logged out" {
		t.Errorf("after the end: login link focused %v, dialog title %q", loginFocused, title)
	}
	if after != h.origin+"/login" {
		t.Errorf("account page after the session ended: at %q, want the login page", after)
	}
}

// TestBrowserSessionKeptAcrossTabs: two tabs of one browser show the
// account page of a session that ends after 10 s unused; both warn
// before the end, and "Stay logged in" in the first closes the
// second's warning at once, with no question to the server, saying
// that the person is still logged in (ADR 50).
func TestBrowserSessionKeptAcrossTabs(t *testing.T) {
	first := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	h := newHarness(t, true)
	const idle = 10 * time.Second
	h.p.Sessions.Now = time.Now
	h.p.Sessions.Lifetime, h.p.Sessions.IdleTimeout = time.Hour, idle
	h.db.SetSessionIdleTimeout(idle)

	dialog := `dialog#session-timeout`
	err := browsertest.Do(first,
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(new(webauthn.AuthenticatorID)),
		enrolInBrowser(h, ""),
		chromedp.WaitVisible(`#session-timeout-info`),
	)
	if err != nil {
		t.Fatalf("first tab: %v", err)
	}
	second, cancel := chromedp.NewContext(first)
	defer cancel()
	if err := browsertest.Do(second, chromedp.Navigate(h.origin+"/account"), chromedp.WaitVisible(`#session-timeout-info`)); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	for name, tab := range map[string]context.Context{"first": first, "second": second} {
		if err := browsertest.Do(tab, chromedp.WaitVisible(dialog+`[open]`)); err != nil {
			t.Fatalf("%s tab's warning: %v", name, err)
		}
	}
	if err := browsertest.Do(first, chromedp.Click(dialog+` [data-role=keep]`), chromedp.WaitNotVisible(dialog)); err != nil {
		t.Fatalf("stay logged in, in the first tab: %v", err)
	}
	// At once: before the second tab's own end, 5 s after its warning.
	soon, cancelSoon := context.WithTimeout(second, 4*time.Second)
	defer cancelSoon()
	var status string
	err = browsertest.Do(soon,
		chromedp.WaitNotVisible(dialog),
		into(&status, chromedp.Poll[string](`document.querySelector("#session-timeout-status").textContent`)),
	)
	if err != nil || status != "You are still logged in." {
		t.Fatalf("the second tab after the first kept the session: %v, saying %q", err, status)
	}
}
