package passkeyidp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// TestBrowser runs web/static/passkey.js in headless Chromium with the
// DevTools virtual authenticator: enrolment, login and adding a passkey,
// end to end through the real pages. It is skipped with -short or when
// Chromium is not installed, except that it fails without Chromium when
// the CI environment variable is set.
func TestBrowser(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	h := newHarness(t, true)

	var first webauthn.AuthenticatorID
	// marks: the refused field is described by the message, it has the
	// focus, the given name is not marked.
	var marks string
	button := `.passkey-ceremony button[data-role=button]`
	err := browsertest.Do(ctx,
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(&first),
		// Enrol a test person.
		chromedp.Navigate(h.origin+"/passkey/enrol?attempt=js-enrol"),
		chromedp.WaitVisible(button),
		chromedp.SendKeys(`#given_name`, "Ola"),
		chromedp.SendKeys(`#family_name`, "Nordmann"),
		chromedp.Click(`input[name=kind][value=dnr]`),
		// A date of birth the server refuses: the field is marked
		// invalid, described by the message, and focused.
		chromedp.SetValue(`#birth_date`, "2030-01-01"),
		chromedp.Click(button),
		chromedp.WaitVisible(`#birth_date[aria-invalid=true]`),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			marks, err = chromedp.Evaluate[string](`(() => {
				const b = document.querySelector("#birth_date"), m = document.querySelector("[data-role=message]");
				return [m.id !== "" && b.getAttribute("aria-describedby") === "birth-hint " + m.id,
					document.activeElement === b,
					document.querySelector("#given_name").hasAttribute("aria-invalid")].join(" ");
			})()`)(ctx, t)
			return err
		}),
		chromedp.SetValue(`#birth_date`, ""),
		chromedp.Click(button),
		chromedp.WaitVisible(`code.codes`),
		chromedp.Click(`form[action="/passkey/enrolled/continue"] button`),
		chromedp.WaitVisible(`#resumed`),
	)
	if err != nil {
		t.Fatalf("enrolment in the browser: %v", err)
	}
	if marks != "true true false" {
		t.Errorf("refused birth date: described by the message, focused, given name marked = %s; want true true false", marks)
	}
	res := h.fin.last(t)
	if res.Attempt != "js-enrol" || res.Result.Level != assurance.High {
		t.Fatalf("enrolment result = %+v", res)
	}
	person := res.Result.PersonID

	// Log in with the passkey the browser made.
	err = browsertest.Do(ctx,
		chromedp.Navigate(h.origin+"/passkey/login?attempt=js-login"),
		chromedp.WaitVisible(button),
		chromedp.Click(button),
		chromedp.WaitVisible(`#resumed`),
	)
	if err != nil {
		t.Fatalf("login in the browser: %v", err)
	}
	res = h.fin.last(t)
	if res.Attempt != "js-login" || res.Result.PersonID != person || res.Result.Level != assurance.High {
		t.Fatalf("login result = %+v", res)
	}

	// Add a passkey on the account page: the same authenticator is
	// excluded and the page says so; a second one works.
	var message string
	var noticeFocused bool
	var second webauthn.AuthenticatorID
	err = browsertest.Do(ctx,
		chromedp.Navigate(h.origin+"/account"),
		chromedp.WaitVisible(button),
		chromedp.SendKeys(`#passkey-name`, "Browser key"),
		chromedp.Click(button),
		chromedp.WaitVisible(`[data-role=message].error`),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			message, err = chromedp.Text(`[data-role=message]`)(ctx, t)
			return err
		}),
		browsertest.RemoveAuthenticator(&first),
		browsertest.AddAuthenticator(&second),
		chromedp.Click(button),
		chromedp.WaitVisible(`.notice[role=status]`),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			noticeFocused, err = chromedp.Evaluate[bool](`document.activeElement === document.querySelector(".notice[role=status]")`)(ctx, t)
			return err
		}),
	)
	if err != nil {
		t.Fatalf("adding a passkey in the browser: %v", err)
	}
	// The page the browser lands on after the change puts the focus on
	// the notice, so that a screen reader reads it first (WCAG 4.1.3).
	if !noticeFocused {
		t.Error("the notice after adding a passkey is not focused")
	}
	if !strings.Contains(message, "already registered") {
		t.Errorf("message for an excluded authenticator = %q", message)
	}
	keys, err := h.db.ListPasskeys(ctx, person)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d passkeys after adding in the browser, %v", len(keys), err)
	}

	// A ceremony the browser calls off (NotAllowedError, here from a
	// user verification that fails) is told to the server, which ends it
	// and audits it as cancelled, not as a refused change.
	var third webauthn.AuthenticatorID
	err = browsertest.Do(ctx,
		browsertest.RemoveAuthenticator(&second),
		browsertest.AddAuthenticator(&third),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: third, IsUserVerified: false})
			return err
		}),
		chromedp.SendKeys(`#passkey-name`, "Called off"),
		chromedp.Click(button),
		chromedp.WaitVisible(`[data-role=message].error`),
	)
	if err != nil {
		t.Fatalf("a called-off ceremony in the browser: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !hasEvent(h.auditEvents(t), "passkey_added", store.ResultFailure, "cancelled") {
		if time.Now().After(deadline) {
			t.Fatalf("the called-off ceremony is not audited as cancelled: %v", h.auditEvents(t))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Removing a passkey asks first, on a page that names it and takes
	// the focus to its heading (WCAG 2.2 SC 3.3.4); "No, keep it" keeps
	// it, "Yes, remove it" removes it.
	remove := `button[aria-label="Remove the passkey Browser key"]`
	var title, askedFocus string
	var keptAt string
	err = browsertest.Do(ctx,
		chromedp.Navigate(h.origin+"/account"),
		chromedp.WaitVisible(remove),
		chromedp.Click(remove),
		chromedp.WaitVisible(`form[action="/account/passkeys/remove"] button.danger`),
		into(&title, chromedp.Title()),
		into(&askedFocus, chromedp.Evaluate[string](`document.activeElement.tagName + " " + document.activeElement.textContent`)),
		chromedp.Click(`a[href="/account"].button`),
		chromedp.WaitVisible(remove),
		into(&keptAt, chromedp.Location()),
	)
	if err != nil {
		t.Fatalf("asked to remove a passkey, keeping it: %v", err)
	}
	if !strings.HasPrefix(title, "Remove the passkey “Browser key”?") || askedFocus != "H1 Remove the passkey “Browser key”?" {
		t.Errorf("the page asking to remove a passkey: title %q, focus on %q", title, askedFocus)
	}
	if keys, _ := h.db.ListPasskeys(ctx, person); len(keys) != 2 || !strings.HasSuffix(keptAt, "/account") {
		t.Fatalf("after No, keep it: %d passkeys, at %s", len(keys), keptAt)
	}
	var removedNotice string
	err = browsertest.Do(ctx,
		chromedp.Click(remove),
		chromedp.WaitVisible(`form[action="/account/passkeys/remove"] button.danger`),
		chromedp.Click(`form[action="/account/passkeys/remove"] button`),
		chromedp.WaitVisible(`.notice[role=status]`),
		into(&removedNotice, chromedp.Text(`.notice[role=status]`)),
	)
	if err != nil {
		t.Fatalf("removing a passkey in the browser: %v", err)
	}
	if keys, _ := h.db.ListPasskeys(ctx, person); len(keys) != 1 || !strings.Contains(removedNotice, "The passkey was removed") {
		t.Fatalf("after Yes, remove it: %d passkeys, notice %q", len(keys), removedNotice)
	}

	// Renaming the passkey left, by keyboard: its page takes the focus to
	// its heading; an empty name comes back with the error summary
	// focused, whose link leads to the field; a name typed there and
	// Enter rename it.
	var renameFocus, errorTitle, errorFocus, linkFocus, renamedNotice string
	err = browsertest.Do(ctx,
		chromedp.Click(`form[action="/account/passkeys/rename"] button`),
		chromedp.WaitVisible(`form[action="/account/passkeys/rename"] #passkey-name`),
		into(&renameFocus, chromedp.Evaluate[string](`document.activeElement.tagName`)),
		into(new(string), chromedp.Evaluate[string](`document.querySelector("#passkey-name").value = ""`)),
		chromedp.SendKeys(`#passkey-name`, "\r"),
		chromedp.WaitVisible(`.error-summary`),
		into(&errorTitle, chromedp.Title()),
		into(&errorFocus, chromedp.Evaluate[string](`document.activeElement.className`)),
		chromedp.Click(`.error-summary a`),
		into(&linkFocus, chromedp.Evaluate[string](`document.activeElement.id`)),
		chromedp.SendKeys(`#passkey-name`, "My phone\r"),
		chromedp.WaitVisible(`.notice[role=status]`),
		into(&renamedNotice, chromedp.Text(`.notice[role=status]`)),
	)
	if err != nil {
		t.Fatalf("renaming a passkey in the browser: %v", err)
	}
	if renameFocus != "H1" || !strings.HasPrefix(errorTitle, "Error: Rename the passkey") || errorFocus != "notice error-summary" || linkFocus != "passkey-name" {
		t.Errorf("rename page: focus on %q; after an empty name title %q, focus on %q, and the summary's link leads to %q",
			renameFocus, errorTitle, errorFocus, linkFocus)
	}
	if keys, _ := h.db.ListPasskeys(ctx, person); len(keys) != 1 || keys[0].Name != "My phone" || !strings.Contains(renamedNotice, "The passkey was renamed.") {
		t.Fatalf("after the rename: %+v, notice %q", keys, renamedNotice)
	}

	// New recovery codes, while the person holds some, ask first too.
	var codes []string
	err = browsertest.Do(ctx,
		chromedp.Click(`form[action="/account/recovery-codes/new"] button`),
		chromedp.WaitVisible(`form[action="/account/recovery-codes"] button.danger`),
		into(&title, chromedp.Title()),
		chromedp.Click(`form[action="/account/recovery-codes"] button`),
		chromedp.WaitVisible(`code.codes`),
		into(&codes, chromedp.Evaluate[[]string](`[...document.querySelectorAll("code.codes")].map(c => c.textContent)`)),
	)
	if err != nil {
		t.Fatalf("new recovery codes in the browser: %v", err)
	}
	if !strings.HasPrefix(title, "Make new recovery codes?") || len(codes) != passkeyidp.RecoveryCodeCount {
		t.Errorf("new recovery codes: asked with title %q, then %d codes shown", title, len(codes))
	}
}

// enrolInBrowser enrols the test person Ola Nordmann through the
// enrolment page in the browser, with its virtual authenticator, for
// attempt ("" for the account), and continues from the page that shows
// the recovery codes.
func enrolInBrowser(h *harness, attempt string) chromedp.Action[chromedp.Void] {
	button := `.passkey-ceremony button[data-role=button]`
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		return browsertest.Do(ctx,
			chromedp.Navigate(h.origin+"/passkey/enrol?"+url.Values{"attempt": {attempt}}.Encode()),
			chromedp.WaitVisible(button),
			chromedp.SendKeys(`#given_name`, "Ola"),
			chromedp.SendKeys(`#family_name`, "Nordmann"),
			chromedp.Click(button),
			chromedp.WaitVisible(`code.codes`),
			chromedp.Click(`form[action="/passkey/enrolled/continue"] button`),
		)
	})
}

// into runs a and keeps what it reads in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		v, err := a(ctx, t)
		*dst = v
		return err
	})
}

// sessionsRefused is the real store that cannot start a session, as
// when the database refuses the write.
type sessionsRefused struct{ store.Sessions }

func (sessionsRefused) CreateSession(context.Context, *store.Session, ...*store.AuditEvent) error {
	return errors.New("disk full")
}

// TestBrowserShowsHelpDesk: a passkey login that fails on Varde's side
// shows the operator's help desk under passkey.js's message, as an
// error page does; before the error it is not shown. A login that
// cannot begin because the store cannot be reached says to try again
// in a minute, and hides the help desk again: nobody there can mend it.
// So does a 503 or 429 that a proxy in front answers itself, with no
// JSON, at the begin or at the finish.
func TestBrowserShowsHelpDesk(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	h := newHarness(t, true)
	h.p.Pages.Support = &httpx.Support{Phone: "+47 22 00 00 00"}
	var auth webauthn.AuthenticatorID
	button := `.passkey-ceremony button[data-role=button]`
	var before, after, afterUnavailable bool
	var phone, unavailable string
	var release func()
	visible := `(() => { const s = document.querySelector("#support"); return !!s && s.offsetParent !== null; })()`
	err := browsertest.Do(ctx,
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(&auth),
		enrolInBrowser(h, "js-enrol"),
		chromedp.WaitVisible(`#resumed`),
		chromedp.Func(func(context.Context, *chromedp.Target) error {
			h.fin.sessions = &session.Manager{Store: sessionsRefused{h.db}, Lifetime: time.Hour, Now: func() time.Time { return h.now }}
			return nil
		}),
		chromedp.Navigate(h.origin+"/passkey/login?attempt=js-login"),
		chromedp.WaitVisible(button),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			before, err = chromedp.Evaluate[bool](visible)(ctx, t)
			return err
		}),
		chromedp.Click(button),
		chromedp.WaitVisible(`[data-role=message].error`),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			if after, err = chromedp.Evaluate[bool](visible)(ctx, t); err != nil {
				return err
			}
			phone, err = chromedp.Evaluate[string](`(document.querySelector("#support-phone") || {}).textContent || ""`)(ctx, t)
			return err
		}),
		chromedp.Func(func(context.Context, *chromedp.Target) error {
			release = lockStore(t, h)
			return nil
		}),
		chromedp.Click(button),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			// The begin waits out the store's busy timeout first.
			unavailable, err = chromedp.Poll[string](`(() => { const m = document.querySelector("[data-role=message]").textContent; return m.includes("reach our records") && m; })()`,
				chromedp.WithPollingTimeout(30*time.Second))(ctx, t)
			if err != nil {
				return err
			}
			afterUnavailable, err = chromedp.Evaluate[bool](visible)(ctx, t)
			return err
		}),
	)
	if release != nil {
		release()
	}
	if err != nil {
		t.Fatalf("a failed login in the browser: %v", err)
	}
	if before || !after || phone != "+47 22 00 00 00" {
		t.Errorf("help desk shown before the error %v, after it %v, phone %q; want false, true, +47 22 00 00 00", before, after, phone)
	}
	if afterUnavailable || !strings.Contains(unavailable, "Try again in a minute") {
		t.Errorf("with the store locked: help desk shown %v, message %q; want it hidden and a try again", afterUnavailable, unavailable)
	}

	type refusal struct {
		path   string
		status int
	}
	var refuse atomic.Pointer[refusal]
	pass := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: h.addr})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := refuse.Load(); f != nil && r.Method == http.MethodPost && r.URL.Path == f.path {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", f.status, http.StatusText(f.status))
			return
		}
		pass.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	// Addressed as localhost, the passkey's RP ID, on the proxy's port.
	proxyOrigin := "http://localhost:" + strings.TrimPrefix(proxy.URL, "http://127.0.0.1:")
	for _, f := range []refusal{{"/passkey/login/begin", http.StatusServiceUnavailable}, {"/passkey/login/finish", http.StatusTooManyRequests}} {
		refuse.Store(&f)
		var shown bool
		var message string
		err := chromedp.Do(ctx,
			chromedp.Navigate(proxyOrigin+"/passkey/login?attempt=js-proxy"),
			chromedp.WaitVisible(button),
			chromedp.Click(button),
			chromedp.WaitVisible(`[data-role=message].error`),
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				var err error
				if shown, err = chromedp.Evaluate[bool](visible)(ctx, t); err != nil {
					return err
				}
				message, err = chromedp.Text(`[data-role=message]`)(ctx, t)
				return err
			}),
		)
		if err != nil {
			t.Fatalf("%d from a proxy at %s: %v", f.status, f.path, err)
		}
		if shown || !strings.Contains(message, "Try again in a minute") {
			t.Errorf("%d from a proxy at %s: help desk shown %v, message %q; want it hidden and a try again", f.status, f.path, shown, message)
		}
	}
}
