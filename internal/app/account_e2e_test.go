package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// accountBrowser is the person's browser holding jar, in English, which
// does not follow redirects, so that a test sees where the node sends
// it.
func accountBrowser(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Transport: english{http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// english asks for pages in English.
type english struct{ http.RoundTripper }

func (e english) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", "en")
	return e.RoundTripper.RoundTrip(r)
}

// accountPage reads the account page in b and returns its status and
// body.
func (n *node) accountPage(t *testing.T, b *http.Client) (int, string) {
	t.Helper()
	res, err := b.Get(n.issuer + "/account")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// accountForm posts form, with the account page's CSRF token, to path in
// b, and returns the status and where it sends the browser.
func (n *node) accountForm(t *testing.T, b *http.Client, path string, form url.Values) (int, string) {
	t.Helper()
	status, page := n.accountPage(t, b)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if status != http.StatusOK || m == nil {
		t.Fatalf("account page: %d, csrf %v\n%s", status, m, page)
	}
	form.Set("csrf", m[1])
	res, err := b.PostForm(n.issuer+path, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

// wantInvalidGrant checks that err is the token endpoint's invalid_grant.
func wantInvalidGrant(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("%s: %v, want invalid_grant", what, err)
	}
}

// TestStopAccessEndToEnd: a relying party holds an offline refresh
// token (offline_access, ADR 22) and uses it; the person stops its
// access on the account page, where it is listed by name; its next
// refresh is refused with invalid_grant, and another service's access
// is left as it was.
func TestStopAccessEndToEnd(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	refreshing := func(c *store.Client) { c.RefreshTokens = true; c.Name = "Bank " + c.ID }
	bank := n.addRPWith(t, "bank", "bank.example", refreshing)
	tax := n.addRPWith(t, "tax", "tax.example", refreshing)
	device := n.enrol(t, false)
	jar, _ := cookiejar.New(nil)

	in, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar, Scope: "offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	atTax, err := tax.Login(ctx, device, loadgen.LoginOptions{Jar: jar, Scope: "offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	used, err := bank.Refresh(ctx, in.Token.RefreshToken)
	if err != nil || used.RefreshToken == "" {
		t.Fatalf("refresh before the person stops it: %v", err)
	}

	b := accountBrowser(jar)
	if _, page := n.accountPage(t, b); !strings.Contains(page, "<td>Bank bank</td>") || !strings.Contains(page, "<td>Bank tax</td>") {
		t.Fatalf("the account page does not list the services with offline access:\n%s", page)
	}
	status, loc := n.accountForm(t, b, "/account/services/stop", url.Values{"client": {"bank"}})
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/account") {
		t.Fatalf("stop access: %d %q", status, loc)
	}
	_, err = bank.Refresh(ctx, used.RefreshToken)
	wantInvalidGrant(t, "the bank's refresh after the person stopped its access", err)
	if _, err := tax.Refresh(ctx, atTax.Token.RefreshToken); err != nil {
		t.Errorf("another service's refresh after the bank's access was stopped: %v", err)
	}
	if _, page := n.accountPage(t, b); strings.Contains(page, `name="client" value="bank"`) || !strings.Contains(page, `name="client" value="tax"`) {
		t.Errorf("the account page after stopping the bank:\n%s", page)
	}
}

// TestLogOutEverywhereElseEndToEnd: the person is logged in in two
// browsers; "Log out everywhere else" in one ends the other (its cookie
// no longer works, and the refresh token a service got there without
// offline_access is refused with invalid_grant), while the browser that
// asked stays logged in, and offline access stays (ADR 26).
func TestLogOutEverywhereElseEndToEnd(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	bank := n.addRPWith(t, "bank", "bank.example", func(c *store.Client) { c.RefreshTokens = true })
	device := n.enrol(t, false)
	here, _ := cookiejar.New(nil)
	there, _ := cookiejar.New(nil)
	if _, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: here}); err != nil {
		t.Fatal(err)
	}
	bound, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: there})
	if err != nil {
		t.Fatal(err)
	}
	offline, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: there, Scope: "offline_access"})
	if err != nil || !offline.SSO {
		t.Fatalf("second login in the same browser: %v (sso %v)", err, offline != nil && offline.SSO)
	}

	b, other := accountBrowser(here), accountBrowser(there)
	if status, page := n.accountPage(t, b); status != http.StatusOK || !strings.Contains(page, "also logged in to Varde in 1 other place") {
		t.Fatalf("account page: %d\n%s", status, page)
	}
	status, loc := n.accountForm(t, b, "/account/sessions/end-others", url.Values{})
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/account") {
		t.Fatalf("log out everywhere else: %d %q", status, loc)
	}
	if status, _ := n.accountPage(t, other); status != http.StatusSeeOther {
		t.Errorf("the other browser's cookie still works: %d", status)
	}
	if status, _ := n.accountPage(t, b); status != http.StatusOK {
		t.Errorf("the browser that asked was logged out: %d", status)
	}
	_, err = bank.Refresh(ctx, bound.Token.RefreshToken)
	wantInvalidGrant(t, "refresh of a token from the ended session without offline_access", err)
	if _, err := bank.Refresh(ctx, offline.Token.RefreshToken); err != nil {
		t.Errorf("offline access ended with the session: %v", err)
	}
}

// TestAccountPageSaysTheAddressRetention: the account page of a node
// whose audit.address_retention is 90 days says an address is kept for
// 90 days, as that node's housekeeping deletes it (ADR 38).
func TestAccountPageSaysTheAddressRetention(t *testing.T) {
	n := startNodeAtPath(t, "", func(c *config.Config) { c.Audit.AddressRetention = 90 * 24 * time.Hour })
	bank := n.addRP(t, "bank", "bank.example")
	device := n.enrol(t, false)
	jar, _ := cookiejar.New(nil)
	if _, err := bank.Login(context.Background(), device, loadgen.LoginOptions{Jar: jar}); err != nil {
		t.Fatal(err)
	}
	status, page := n.accountPage(t, accountBrowser(jar))
	if want := "We keep it for 90 days and then delete it"; status != http.StatusOK || !strings.Contains(page, want) {
		t.Errorf("account page: %d, without %q:\n%s", status, want, page)
	}
}
