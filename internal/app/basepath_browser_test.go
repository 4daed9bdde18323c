package app_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/browsertest"
)

// TestBrowserUnderIssuerPath: in Chromium, with a virtual authenticator,
// a person uses a node whose issuer has a path as the pages' scripts
// drive it: the account page sends them to log in; they create a test
// person and passkey (the enrolment's begin and finish endpoints the
// page names, the address its script goes to next); they continue to
// their account, log out with the logout form, and log in again with
// the passkey. Every page the browser lands on is under the path.
func TestBrowserUnderIssuerPath(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	const base = "/eid"
	n := startNodeAtPath(t, base)
	ceremony := `.passkey-ceremony button[data-role=button]`
	var auth webauthn.AuthenticatorID
	if err := browsertest.Do(ctx, browsertest.EnableWebAuthn(), browsertest.AddAuthenticator(&auth)); err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
	under := func(step string) {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if u, err := url.Parse(loc); err != nil || !strings.HasPrefix(u.Path, base+"/") {
			t.Errorf("%s: the browser is at %s, not under %s", step, loc, base)
		}
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := browsertest.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s)", step, err, loc)
		}
		under(step)
	}
	do("open the account page without a session",
		chromedp.Navigate(n.issuer+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
	do("choose the passkey", chromedp.Click(chromedp.ID("provider-passkey")), chromedp.WaitVisible(ceremony))
	do("follow the link to create a test person",
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Create a test person (demo)"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.passkey-ceremony [data-role=button]`)))
	do("create the person and passkey",
		chromedp.SendKeys(chromedp.ID("given_name"), "Kari"),
		chromedp.SendKeys(chromedp.ID("family_name"), "Nordmann"),
		chromedp.SetValue(chromedp.ID("birth_date"), "1990-05-17"),
		chromedp.Click(chromedp.CSS(`form.passkey-ceremony [data-role=button]`)),
		chromedp.WaitVisible(chromedp.CSS(`code.codes`)))
	do("continue to the account",
		chromedp.Click(chromedp.CSS(`form[action="`+base+`/passkey/enrolled/continue"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`form.passkey-ceremony[data-ceremony=add]`)))
	do("log out",
		chromedp.Click(chromedp.CSS(`a[href="`+base+`/logout"]`)),
		// The account page has submit buttons in forms too: wait for
		// the logout page's.
		chromedp.Click(chromedp.CSS(`main form[action="`+base+`/logout"] button[type=submit]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
	do("open the account page again",
		chromedp.Navigate(n.issuer+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
	do("log in with the passkey",
		chromedp.Click(chromedp.ID("provider-passkey")),
		chromedp.WaitVisible(ceremony),
		chromedp.Click(ceremony),
		chromedp.WaitVisible(chromedp.CSS(`form.passkey-ceremony[data-ceremony=add]`)))
}
