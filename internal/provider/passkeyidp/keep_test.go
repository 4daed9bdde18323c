package passkeyidp_test

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
)

// keepHarness is a harness whose sessions last an hour and end after 30
// minutes unused, and a browser logged in to the account there.
func keepHarness(t *testing.T) (*harness, *browser) {
	h := newHarness(t, true)
	h.p.Sessions.Lifetime, h.p.Sessions.IdleTimeout = time.Hour, 30*time.Minute
	h.db.SetSessionIdleTimeout(h.p.Sessions.IdleTimeout)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	return h, b
}

// TestKeepSession: POST /account/session/keep moves the idle deadline
// of the person's session, answering in JSON how long it has left and
// whether another keep could move it (ADR 50). It needs the account
// forms' CSRF token in its header, a JSON body and a live session; an
// ended session is not brought back, and the expiry is a bound no keep
// passes.
func TestKeepSession(t *testing.T) {
	h, b := keepHarness(t)
	start := h.now
	page := b.get("/account")
	if page.status != http.StatusOK {
		t.Fatalf("account page: %d", page.status)
	}
	csrf := attr(t, page.body, "data-keep-csrf")
	// The page says how long a session may go unused, without script
	// (WCAG 2.2 SC 2.2.6), and gives the script what it needs.
	for _, want := range []string{"logged out after 30 minutes without activity", `data-keep="/account/session/keep"`, `data-ends-in="1800"`, `data-warn="120"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}

	const keep = "/account/session/keep"
	if r, m := b.json(keep, "{}", ""); r.status != http.StatusForbidden || m["error"] != "csrf" {
		t.Errorf("keep without a CSRF token: %d %v; want 403 csrf", r.status, m)
	}
	if r, m := b.json(keep, "{}", csrf+"x"); r.status != http.StatusForbidden || m["error"] != "csrf" {
		t.Errorf("keep with a wrong CSRF token: %d %v; want 403 csrf", r.status, m)
	}
	req, _ := http.NewRequest("POST", h.origin+keep, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-CSRF-Token", csrf)
	if r := b.do(req); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("keep as text/plain: %d; want 415", r.status)
	}
	if r, m := h.browser("en").json(keep, "{}", csrf); r.status != http.StatusUnauthorized || m["error"] != "session" || m["message"] == "" {
		t.Errorf("keep without a session: %d %v; want 401 session with a message", r.status, m)
	}

	// 10 minutes on, the deadline moves to 30 minutes from now.
	h.now = start.Add(10 * time.Minute)
	r, m := b.json(keep, "{}", csrf)
	if r.status != http.StatusOK || m["ends_in"] != float64(1800) || m["extendable"] != true {
		t.Fatalf("keep 10m in: %d %v; want 200, ends_in 1800, extendable", r.status, m)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("keep answer Cache-Control %q", r.header.Get("Cache-Control"))
	}
	// 29 minutes after that, the session is still there: the keep moved it.
	h.now = start.Add(39 * time.Minute)
	if r, m := b.json(keep, "{}", csrf); r.status != http.StatusOK || m["ends_in"] != float64(21*60) || m["extendable"] != false {
		t.Errorf("keep 39m in, 21m before the expiry: %d %v; want ends_in 1260, not extendable", r.status, m)
	}
	// Past the expiry: ended, and the page's script is told so.
	h.now = start.Add(time.Hour)
	if r, m := b.json(keep, "{}", csrf); r.status != http.StatusUnauthorized || m["error"] != "session" {
		t.Errorf("keep after the expiry: %d %v; want 401 session", r.status, m)
	}
}

// TestKeepSessionIdleEnded: a session that went unused for the idle
// timeout is not kept.
func TestKeepSessionIdleEnded(t *testing.T) {
	h, b := keepHarness(t)
	csrf := attr(t, b.get("/account").body, "data-keep-csrf")
	h.now = h.now.Add(30 * time.Minute)
	if r, m := b.json("/account/session/keep", "{}", csrf); r.status != http.StatusUnauthorized || m["error"] != "session" {
		t.Errorf("keep after 30m unused: %d %v; want 401 session", r.status, m)
	}
}

// TestChangePagesSayByWhen: the pages whose forms change the person's
// ways in say by when the change must be made, since it needs a recent
// login (ReauthAfter), and how long the session may go unused, as the
// pages of older activity do.
func TestChangePagesSayByWhen(t *testing.T) {
	h, b := keepHarness(t)
	h.p.History = h.db
	keys, err := h.db.ListPasskeys(context.Background(), h.fin.last(t).Result.PersonID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys %d, %v", len(keys), err)
	}
	cred := base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)
	by := httpx.FormatTime("en", h.now.Add(passkeyidp.ReauthAfter), time.UTC, false)
	for _, path := range []string{"/account/passkeys/rename?credential=" + cred, "/account/passkeys/remove?credential=" + cred, "/account/recovery-codes/new"} {
		page := b.get(path)
		if page.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, page.status)
			continue
		}
		for _, want := range []string{"make this change by " + by + ".", "logged out after 30 minutes without activity", `id="session-timeout"`} {
			if !strings.Contains(page.body, want) {
				t.Errorf("GET %s lacks %q", path, want)
			}
		}
	}
	// The pages of older activity change nothing, and say how long the
	// session may go unused.
	if page := b.get("/account/activity"); page.status != http.StatusOK || !strings.Contains(page.body, "logged out after 30 minutes without activity") ||
		!strings.Contains(page.body, `id="session-timeout"`) || strings.Contains(page.body, "make this change by") {
		t.Errorf("activity page: %d, without the session's time limits or with a change's", page.status)
	}
}

// TestIdleTimeoutInWords: the account page says the idle timeout in
// minutes when it is two or more whole ones, else in seconds, so that
// none is said as "1 minutes" or cut to its whole minutes.
func TestIdleTimeoutInWords(t *testing.T) {
	for _, c := range []struct {
		idle time.Duration
		want string
	}{
		{30 * time.Minute, "after 30 minutes without activity"},
		{90 * time.Second, "after 90 seconds without activity"},
		{time.Minute, "after 60 seconds without activity"},
		{10 * time.Second, "after 10 seconds without activity"},
	} {
		h := newHarness(t, true)
		h.p.Sessions.Lifetime, h.p.Sessions.IdleTimeout = time.Hour, c.idle
		b := h.browser("en")
		b.enrol(newDevice(false), "", "fnr")
		if page := b.get("/account"); !strings.Contains(page.body, c.want) {
			t.Errorf("idle timeout %v: the account page does not say %q", c.idle, c.want)
		}
	}
}

// TestKeepSessionWithoutScript: without script, the account pages'
// own button beside the sentence that says how long the session lasts
// posts a plain form to the same keep (ADR 50, WCAG 2.2 SC 2.2.1): with
// the account forms' CSRF token it keeps the session and answers 303
// back to the page it came from, which then says so and shows the new
// end; the browser is sent only to one of the account pages, never to
// an address the form names, and nothing is kept for a form refused.
func TestKeepSessionWithoutScript(t *testing.T) {
	h, b := keepHarness(t)
	start := h.now
	h.p.History = h.db
	keys, err := h.db.ListPasskeys(context.Background(), h.fin.last(t).Result.PersonID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys %d, %v", len(keys), err)
	}
	rename := "/account/passkeys/rename?" + url.Values{"credential": {base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)}}.Encode()
	page := b.get(rename)
	if page.status != http.StatusOK {
		t.Fatalf("rename page: %d", page.status)
	}
	form := formAfter(t, page.body, `id="session-timeout-info"`)
	if form.action != "/account/session/keep" || form.values.Get("back") != rename || form.values.Get("csrf") == "" || !strings.Contains(form.html, "Stay logged in") {
		t.Fatalf("rename page's own keep form: %+v", form)
	}

	const keep = "/account/session/keep"
	for _, bad := range []struct {
		name   string
		v      url.Values
		status int
	}{
		{"another site", url.Values{"csrf": {form.values.Get("csrf")}, "back": {"//evil.example/account"}}, http.StatusBadRequest},
		{"a page of its own", url.Values{"csrf": {form.values.Get("csrf")}, "back": {"/status"}}, http.StatusBadRequest},
		{"no back", url.Values{"csrf": {form.values.Get("csrf")}}, http.StatusBadRequest},
		{"a wrong token", url.Values{"csrf": {"x"}, "back": {rename}}, http.StatusForbidden},
	} {
		h.now = start.Add(20 * time.Minute)
		if r := b.form(keep, bad.v); r.status != bad.status || r.location != "" {
			t.Errorf("keep form with %s: %d %q; want %d and no redirect", bad.name, r.status, r.location, bad.status)
		}
	}
	// A keep 20 minutes in moves the session's end on.
	h.now = start.Add(20 * time.Minute)
	r := b.form(keep, form.values)
	if r.status != http.StatusSeeOther || r.location != rename+"&kept=1" {
		t.Fatalf("keep form: %d %q; want 303 to %q", r.status, r.location, rename+"&kept=1")
	}
	// 45 minutes in, 25 after the keep, the session is still there (the
	// rename page itself now asks for a new login: its change needs one
	// from the last 15 minutes), and a page loaded after a keep says so.
	h.now = start.Add(45 * time.Minute)
	back := b.get("/account?kept=1")
	end := httpx.FormatTime("en", start.Add(time.Hour), time.UTC, false)
	if back.status != http.StatusOK || !strings.Contains(back.body, "You are still logged in.") || !strings.Contains(back.body, "and at the latest at "+end) {
		t.Errorf("the account page after the keep, 45 minutes in: %d, without the kept message or its end", back.status)
	}
	// Without a session, the form leads to the login page.
	if r := h.browser("en").form(keep, form.values); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("keep form without a session: %d %q; want 303 /login", r.status, r.location)
	}
}

// TestKeepSessionWithoutScriptRefusedKeepsNothing: a keep form refused
// for its back or its token does not keep the session.
func TestKeepSessionWithoutScriptRefusedKeepsNothing(t *testing.T) {
	h, b := keepHarness(t)
	form := formAfter(t, b.get("/account").body, `id="session-timeout-info"`)
	h.now = h.now.Add(20 * time.Minute)
	b.form("/account/session/keep", url.Values{"csrf": {form.values.Get("csrf")}, "back": {"https://evil.example/"}})
	b.form("/account/session/keep", url.Values{"csrf": {"x"}, "back": {"/account"}})
	h.now = h.now.Add(10 * time.Minute)
	if r := b.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("account page 30 minutes after its last use: %d %q; want the login page", r.status, r.location)
	}
}

// plainForm is a form as a page has it.
type plainForm struct {
	action string
	values url.Values
	html   string
}

// formAfter is the first form in body after marker, with its hidden
// fields' values.
func formAfter(t *testing.T, body, marker string) plainForm {
	t.Helper()
	_, rest, ok := strings.Cut(body, marker)
	if !ok {
		t.Fatalf("page lacks %s", marker)
	}
	start := strings.Index(rest, "<form ")
	end := strings.Index(rest, "</form>")
	if start < 0 || end < start {
		t.Fatalf("no form after %s", marker)
	}
	f := plainForm{html: rest[start:end], values: url.Values{}}
	f.action = html.UnescapeString(regexp.MustCompile(`action="([^"]*)"`).FindStringSubmatch(f.html)[1])
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(f.html, -1) {
		f.values.Set(m[1], html.UnescapeString(m[2]))
	}
	return f
}
