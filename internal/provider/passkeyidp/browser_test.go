package passkeyidp_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/assurance"
)

// TestBrowser runs web/static/passkey.js in headless Chromium with the
// DevTools virtual authenticator: enrolment, login and adding a passkey,
// end to end through the real pages. It is skipped when Chromium is not
// installed or with -short.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		if path, err = exec.LookPath("chromium-browser"); err != nil {
			t.Skip("chromium not installed")
		}
	}
	h := newHarness(t, true)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("lang", "en-GB"), chromedp.Flag("disable-gpu", true))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	var first webauthn.AuthenticatorID
	addAuthenticator := func(id *webauthn.AuthenticatorID) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
				Options: &webauthn.VirtualAuthenticatorOptions{
					Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
					Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
					IsUserVerified: true, AutomaticPresenceSimulation: true,
				},
			})
			*id = res.AuthenticatorID
			return err
		})
	}
	button := `.passkey-ceremony button[data-role=button]`
	err = chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{})
			return err
		}),
		addAuthenticator(&first),
		// Enrol a test person.
		chromedp.Navigate(h.origin+"/passkey/enrol?attempt=js-enrol"),
		chromedp.WaitVisible(button),
		chromedp.SendKeys(`#given_name`, "Ola"),
		chromedp.SendKeys(`#family_name`, "Nordmann"),
		chromedp.Click(`input[name=kind][value=dnr]`),
		chromedp.Click(button),
		chromedp.WaitVisible(`code.codes`),
		chromedp.Click(`form[action="/passkey/enrolled/continue"] button`),
		chromedp.WaitVisible(`#resumed`),
	)
	if err != nil {
		t.Fatalf("enrolment in the browser: %v", err)
	}
	res := h.fin.last(t)
	if res.Attempt != "js-enrol" || res.Result.Level != assurance.High {
		t.Fatalf("enrolment result = %+v", res)
	}
	person := res.Result.PersonID

	// Log in with the passkey the browser made.
	err = chromedp.Do(ctx,
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
	var second webauthn.AuthenticatorID
	err = chromedp.Do(ctx,
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
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: first})
			return err
		}),
		addAuthenticator(&second),
		chromedp.Click(button),
		chromedp.WaitVisible(`.notice[role=status]`),
	)
	if err != nil {
		t.Fatalf("adding a passkey in the browser: %v", err)
	}
	if !strings.Contains(message, "already registered") {
		t.Errorf("message for an excluded authenticator = %q", message)
	}
	keys, err := h.db.ListPasskeys(ctx, person)
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d passkeys after adding in the browser, %v", len(keys), err)
	}
}
