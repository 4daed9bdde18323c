package app_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/config"
)

// shopClient registers a public client "shop" on n (shopClientAt),
// whose redirect URI is a service that sends each code it gets to codes
// while it has room, and returns its configuration.
func shopClient(t *testing.T, n *node, codes chan<- string) *oauth2.Config {
	t.Helper()
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query().Get("code"):
		default:
		}
		_, _ = w.Write([]byte("back at the service"))
	}))
	t.Cleanup(rp.Close)
	return shopClientAt(t, n, rp.URL+"/callback")
}

// serviceLogins registers "shop" on n (shopClient) and returns a func
// that makes the address of a new login request for it.
func serviceLogins(t *testing.T, n *node) func() string {
	t.Helper()
	oc := shopClient(t, n, nil)
	return func() string {
		return oc.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("nonce", rand.Text()), oauth2.SetAuthURLParam("prompt", "login"))
	}
}

// scriptOff turns script off in the tab, as a browser without
// JavaScript; on turns it on again.
func scriptOff(off bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: off})
		return err
	})
}

// endsIn is the page's dialog's data-ends-in: the seconds the page was
// told its limit has left.
func endsIn(ctx context.Context, t *testing.T, dialog string) int {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("`+dialog+`").getAttribute("data-ends-in")`))
	if err != nil {
		t.Fatalf("%s data-ends-in: %v", dialog, err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s data-ends-in %q: %v", dialog, v, err)
	}
	return n
}

// TestBrowserKeepWithoutScript: in Chromium with script turned off
// (ADR 50, WCAG 2.2 SC 2.2.1), a service's login page has its own
// button beside the sentence that says until when the login stays
// open; pressing it keeps the login open longer and shows the same
// page again, saying so, with the later end (in the store too). The
// account page's button keeps the person logged in the same way. With
// script on, the dialog does that, and the button is hidden.
func TestBrowserKeepWithoutScript(t *testing.T) {
	ctx := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	const lifetime = 5 * time.Minute
	n := startNodeAtPath(t, "", func(c *config.Config) { c.OIDC.AuthRequestLifetime = lifetime })
	login := serviceLogins(t, n)

	var page, kept, status string
	var visibleWithScript bool
	err := browsertest.Do(ctx,
		chromedp.Navigate(login()),
		chromedp.WaitVisible(`#login-timeout-info`),
		into(&visibleWithScript, chromedp.Evaluate[bool](`!!document.querySelector("form.timeout-keep") && document.querySelector("form.timeout-keep").offsetParent !== null`)),
		scriptOff(true),
		chromedp.Reload(),
		chromedp.WaitVisible(`#login-timeout-extend`),
		into(&page, chromedp.Location()),
	)
	if err != nil {
		t.Fatalf("login page without script: %v", err)
	}
	if visibleWithScript {
		t.Error("with script, the login page's own keep button is shown beside the dialog")
	}
	u, err := url.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Query().Get("req")
	before, err := n.app.Store.GetAuthRequest(context.Background(), id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 3 s on, the page loaded again says the time that is left.
	time.Sleep(3 * time.Second)
	if err := browsertest.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(`#login-timeout-extend`)); err != nil {
		t.Fatal(err)
	}
	leftBefore := endsIn(ctx, t, "#login-timeout")
	err = browsertest.Do(ctx,
		chromedp.Click(`#login-timeout-extend`),
		chromedp.WaitVisible(`#login-timeout-kept`),
		into(&kept, chromedp.Location()),
		into(&status, chromedp.Text(`#login-timeout-kept`)),
	)
	if err != nil {
		t.Fatalf("keep the login without script: %v", err)
	}
	after, err := n.app.Store.GetAuthRequest(context.Background(), id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !after.ExpiresAt.After(before.ExpiresAt.Add(2 * time.Second)) {
		t.Errorf("the request ends at %v after the keep, %v before; want it later", after.ExpiresAt, before.ExpiresAt)
	}
	if leftAfter := endsIn(ctx, t, "#login-timeout"); leftAfter <= leftBefore {
		t.Errorf("the page says %d s left after the keep, %d s before; want more", leftAfter, leftBefore)
	}
	if kept != n.issuer+"/login?req="+url.QueryEscape(id)+"&kept=1" {
		t.Errorf("after the keep the browser is at %q; want the same page", kept)
	}
	if status != "You have more time to log in." {
		t.Errorf("the page after the keep says %q", status)
	}

	// The account page: a test person enrols (with script, as a passkey
	// needs it), then, with script off, stays logged in with the page's
	// own button.
	var account string
	err = browsertest.Do(ctx,
		scriptOff(false),
		browsertest.EnableWebAuthn(),
		browsertest.AddAuthenticator(new(webauthn.AuthenticatorID)),
		chromedp.Navigate(n.issuer+"/passkey/enrol?attempt="),
		chromedp.WaitVisible(`form.passkey-ceremony [data-role=button]`),
		chromedp.SendKeys(`#given_name`, "Kari"),
		chromedp.SendKeys(`#family_name`, "Nordmann"),
		chromedp.Click(`form.passkey-ceremony [data-role=button]`),
		chromedp.WaitVisible(`code.codes`),
		chromedp.Click(`form[action="/passkey/enrolled/continue"] button`),
		chromedp.WaitVisible(`#session-timeout-info`),
		scriptOff(true),
		chromedp.Reload(),
		chromedp.WaitVisible(`#session-timeout-extend`),
		chromedp.Click(`#session-timeout-extend`),
		chromedp.WaitVisible(`#session-timeout-kept`),
		into(&account, chromedp.Location()),
		into(&status, chromedp.Text(`#session-timeout-kept`)),
	)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("stay logged in without script: %v (at %s)", err, loc)
	}
	if account != n.issuer+"/account?kept=1" || status != "You are still logged in." {
		t.Errorf("after staying logged in: at %q, saying %q", account, status)
	}
}

// TestBrowserKeepAcrossTabs: two tabs of one browser show the same
// service's login, a third another login of the same browser. All three
// warn before their ends; a keep in the first closes the second's
// warning at once, with no question to the server, and the second
// counts from the new end; the other login's warning stays open: a
// keep moves only its own login (ADR 50).
func TestBrowserKeepAcrossTabs(t *testing.T) {
	first := browsertest.Start(t, browsertest.Options{Required: os.Getenv("CI") != ""})
	const lifetime = 30 * time.Second
	n := startNodeAtPath(t, "", func(c *config.Config) { c.OIDC.AuthRequestLifetime = lifetime })
	login := serviceLogins(t, n)

	var page string
	if err := browsertest.Do(first, chromedp.Navigate(login()), chromedp.WaitVisible(`#login-timeout-info`), into(&page, chromedp.Location())); err != nil {
		t.Fatalf("first tab: %v", err)
	}
	// New tabs in the same browser, with its cookies.
	second, cancelSecond := chromedp.NewContext(first)
	defer cancelSecond()
	other, cancelOther := chromedp.NewContext(first)
	defer cancelOther()
	if err := browsertest.Do(second, chromedp.Navigate(page), chromedp.WaitVisible(`#login-timeout-info`)); err != nil {
		t.Fatalf("second tab: %v", err)
	}
	if err := browsertest.Do(other, chromedp.Navigate(login()), chromedp.WaitVisible(`#login-timeout-info`)); err != nil {
		t.Fatalf("the other login's tab: %v", err)
	}
	dialog := `dialog#login-timeout`
	for name, tab := range map[string]context.Context{"first": first, "second": second, "other": other} {
		if err := browsertest.Do(tab, chromedp.WaitVisible(dialog+`[open]`)); err != nil {
			t.Fatalf("%s tab's warning: %v", name, err)
		}
	}
	var status string
	var closed bool
	err := browsertest.Do(first, chromedp.Click(dialog+` [data-role=keep]`), chromedp.WaitNotVisible(dialog))
	if err != nil {
		t.Fatalf("keep in the first tab: %v", err)
	}
	// At once: well before the second tab's own end.
	soon, cancelSoon := context.WithTimeout(second, 10*time.Second)
	defer cancelSoon()
	err = browsertest.Do(soon,
		chromedp.WaitNotVisible(dialog),
		into(&status, chromedp.Poll[string](`document.querySelector("#login-timeout-status").textContent`)),
	)
	if err != nil {
		t.Fatalf("the second tab after the keep in the first: %v", err)
	}
	if status != "You have more time to log in." {
		t.Errorf("the second tab says %q after the keep in the first", status)
	}
	// The other login was not kept: its warning is still open.
	if err := browsertest.Do(other, into(&closed, chromedp.Evaluate[bool](`!document.querySelector("#login-timeout").open`))); err != nil || closed {
		t.Errorf("the other login's warning closed (%v) after a keep of another login", err)
	}
	// The second tab counts from the new end: it does not warn again
	// until shortly before it.
	time.Sleep(5 * time.Second)
	var again bool
	if err := browsertest.Do(second, into(&again, chromedp.Evaluate[bool](`document.querySelector("#login-timeout").open`))); err != nil || again {
		t.Errorf("the second tab warned again 5 s after the keep (%v)", err)
	}
}
