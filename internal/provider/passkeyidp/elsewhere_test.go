package passkeyidp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// TestLogOutEverywhereElse: the account page counts the person's other
// sessions, and its button ends them, not the one that asked, in one
// write with its event, which the person's activity shows. It is a
// change to the account: it needs the session's CSRF token and a
// recent login, and one refused is audited and shown as refused.
func TestLogOutEverywhereElse(t *testing.T) {
	h := newHarness(t, true)
	h.p.History, h.p.Clients, h.p.Grants = h.db, h.db, h.db
	d := newDevice(false)
	b := h.browser("en")
	e := b.enrol(d, "", "fnr")
	var others []*browser
	for range 2 {
		o := h.browser("en")
		if r, m := o.login(d, h.rp, ""); r.status != 200 {
			t.Fatalf("second login: %d %v", r.status, m)
		}
		others = append(others, o)
	}
	// Another person's session is not theirs to end.
	stranger := h.browser("en")
	stranger.enrol(newDevice(false), "", "fnr")

	page := b.get("/account")
	if !strings.Contains(page.body, "You are also logged in to Varde in 2 other places") ||
		!strings.Contains(page.body, "Logged in with a passkey, at level high") {
		t.Fatalf("account page does not count the other sessions:\n%s", page.body)
	}
	if !strings.Contains(page.body, `action="/account/sessions/end-others"`) || !strings.Contains(page.body, "It does not stop the services") {
		t.Fatalf("no button, or no word of what it leaves:\n%s", page.body)
	}
	csrf := field(t, page.body, "csrf")

	if r := b.form("/account/sessions/end-others", url.Values{}); r.status != http.StatusForbidden {
		t.Fatalf("without csrf: %d", r.status)
	}
	if r := stranger.form("/account/sessions/end-others", url.Values{"csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("another session's csrf: %d", r.status)
	}
	for _, o := range others {
		if r := o.get("/account"); r.status != http.StatusOK {
			t.Fatalf("the other session ended before the button: %d", r.status)
		}
	}

	r := b.form("/account/sessions/end-others", url.Values{"csrf": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("log out everywhere else: %d %q", r.status, r.location)
	}
	page = b.get(r.location)
	if page.status != http.StatusOK || !strings.Contains(page.body, "You were logged out everywhere else") ||
		!strings.Contains(page.body, "You are not logged in to Varde anywhere else.") ||
		!strings.Contains(page.body, "You logged out everywhere else</td>") {
		t.Fatalf("account after logging out everywhere else: %d\n%s", page.status, page.body)
	}
	for _, o := range others {
		if r := o.get("/account"); r.status != http.StatusSeeOther || r.location != "/login" {
			t.Errorf("an other session still works: %d %q", r.status, r.location)
		}
	}
	if r := stranger.get("/account"); r.status != http.StatusOK {
		t.Errorf("another person's session was ended: %d", r.status)
	}
	evs := h.auditEvents(t)
	i := slices.IndexFunc(evs, func(ev *store.AuditEvent) bool {
		return ev.Type == "logged_out_elsewhere" && ev.Result == store.ResultSuccess && ev.PersonID == e.person
	})
	if i < 0 || evs[i].Details["count"] != "2" || evs[i].Details["method"] != "passkey" {
		t.Fatalf("no audit event with the count of sessions ended: %v", evs)
	}

	// Again, with nothing left to end: said so, and recorded.
	r = b.form("/account/sessions/end-others", url.Values{"csrf": {csrf}})
	if page := b.get(r.location); !strings.Contains(page.body, "You were not logged in anywhere else") {
		t.Errorf("second time:\n%s", page.body)
	}

	// A login older than ReauthAfter may not: refused, audited, shown.
	h.now = h.now.Add(passkeyidp.ReauthAfter + time.Minute)
	o := h.browser("en")
	o.login(d, h.rp, "")
	h.now = h.now.Add(time.Second)
	page = b.get("/account")
	if strings.Contains(page.body, `action="/account/sessions/end-others"`) || !strings.Contains(page.body, "To log out everywhere else, log in again first") {
		t.Errorf("a stale session is offered the button:\n%s", page.body)
	}
	if r := b.form("/account/sessions/end-others", url.Values{"csrf": {csrf}}); r.status != http.StatusForbidden {
		t.Fatalf("stale session: %d", r.status)
	}
	if r := o.get("/account"); r.status != http.StatusOK {
		t.Errorf("a refused request ended a session: %d", r.status)
	}
	if !hasEvent(h.auditEvents(t), "logged_out_elsewhere", store.ResultFailure, "reauth") {
		t.Error("the refusal is not audited")
	}
	if page := b.get("/account"); !strings.Contains(page.body, "<strong>Logging out everywhere else was refused</strong>") {
		t.Errorf("the refusal is not in the activity:\n%s", page.body)
	}
}

// TestStopServiceAccess: the account page lists the services holding
// offline access to the person's data, by name, with when it was given
// and last used, and not those whose refresh tokens end with the
// session; "Stop access" revokes the person's grants to that service,
// in one write with its event, and the page and activity say so.
func TestStopServiceAccess(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.History, h.p.Clients, h.p.Grants = h.db, h.db, h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	stranger := h.browser("en")
	se := stranger.enrol(newDevice(false), "", "fnr")
	for id, name := range map[string]string{"bank": "Test Bank", "tax": "Tax Office", "old": "Old Portal"} {
		if err := h.db.AddClient(ctx, &store.Client{ID: id, Name: name, AuthMethod: store.AuthNone, RefreshTokens: id != "old",
			RedirectURIs: []string{"https://" + id + ".example/cb"}, CreatedAt: h.now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	grant := func(id, person, client string, scope ...string) *store.Grant {
		g := &store.Grant{ID: id, ClientID: client, PersonID: person, SessionID: "s-" + id, Scope: scope, CreatedAt: h.now.Add(-time.Hour)}
		rt := &store.Token{Hash: []byte("rt-" + id), Kind: store.TokenRefresh, GrantID: id, ClientID: client, Scope: scope,
			CreatedAt: g.CreatedAt, ExpiresAt: h.now.Add(24 * time.Hour)}
		if err := h.db.CreateGrantTokens(ctx, g, nil, rt); err != nil {
			t.Fatal(err)
		}
		return g
	}
	bank := grant("g-bank", e.person, "bank", "openid", store.ScopeOfflineAccess)
	tax := grant("g-tax", e.person, "tax", "openid")
	strangers := grant("g-stranger", se.person, "bank", "openid", store.ScopeOfflineAccess)
	// A client no longer registered for refresh tokens, whose tokens are
	// refused already, and one no longer registered at all.
	grant("g-old", e.person, "old", "openid", store.ScopeOfflineAccess)
	grant("g-gone", e.person, "gone", "openid", store.ScopeOfflineAccess)

	page := b.get("/account")
	if !strings.Contains(page.body, "Services that can reach your data when you are away") || !strings.Contains(page.body, "<td>Test Bank</td>") ||
		strings.Contains(page.body, "Tax Office") || strings.Contains(page.body, "Old Portal") || strings.Contains(page.body, `value="gone"`) ||
		!strings.Contains(page.body, `aria-label="Stop access for Test Bank"`) {
		t.Fatalf("account page does not list the service with offline access, or lists one without:\n%s", page.body)
	}
	csrf := field(t, page.body, "csrf")

	if r := b.form("/account/services/stop", url.Values{"client": {"bank"}}); r.status != http.StatusForbidden {
		t.Fatalf("without csrf: %d", r.status)
	}
	for _, client := range []string{"tax", "nobody", "old"} {
		if r := b.form("/account/services/stop", url.Values{"client": {client}, "csrf": {csrf}}); r.status != http.StatusNotFound ||
			!strings.Contains(r.body, "That service could no longer reach your data already") {
			t.Errorf("stop %s, which the page does not list: %d", client, r.status)
		}
	}
	if g, _ := h.db.GetGrant(ctx, tax.ID); !g.RevokedAt.IsZero() {
		t.Error("a service the page does not list was stopped")
	}

	r := b.form("/account/services/stop", url.Values{"client": {"bank"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/account?n=") {
		t.Fatalf("stop access: %d %q\n%s", r.status, r.location, r.body)
	}
	for _, g := range []*store.Grant{bank, tax, strangers} {
		got, err := h.db.GetGrant(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := g == bank; got.RevokedAt.IsZero() == want {
			t.Errorf("grant %s revoked = %v, want %v", g.ID, !got.RevokedAt.IsZero(), want)
		}
	}
	page = b.get(r.location)
	if !strings.Contains(page.body, "The service can no longer reach your data when you are away.") ||
		!strings.Contains(page.body, "No service can reach your data when you are away.") ||
		!strings.Contains(page.body, "You stopped the service&#39;s access to your data when you are away</td><td>Test Bank</td>") {
		t.Fatalf("account after stopping access:\n%s", page.body)
	}
	evs := h.auditEvents(t)
	if !slices.ContainsFunc(evs, func(ev *store.AuditEvent) bool {
		return ev.Type == "offline_access_stopped" && ev.Result == store.ResultSuccess && ev.PersonID == e.person && ev.ClientID == "bank"
	}) {
		t.Errorf("no audit event naming the service: %v", evs)
	}
	if r := b.form("/account/services/stop", url.Values{"client": {"bank"}, "csrf": {csrf}}); r.status != http.StatusNotFound {
		t.Errorf("stop again: %d", r.status)
	}
}

// TestStopServiceWithoutGrants: a provider not given the grants lists
// no services and has nothing to stop: the form's address is not found,
// on a page in the person's language.
func TestStopServiceWithoutGrants(t *testing.T) {
	h := newHarness(t, true)
	b := h.browser("en")
	b.enrol(newDevice(false), "", "fnr")
	page := b.get("/account")
	if strings.Contains(page.body, "Services that can reach your data") {
		t.Errorf("the page lists services it cannot read:\n%s", page.body)
	}
	r := b.form("/account/services/stop", url.Values{"client": {"bank"}, "csrf": {attr(t, page.body, "data-csrf")}})
	if r.status != http.StatusNotFound || !strings.Contains(r.body, "Page not found") {
		t.Errorf("stop without grants: %d\n%s", r.status, r.body)
	}
}

// TestLogOutEverywhereElseOnlyWhereThereIsElsewhere: a person logged in
// in one place is told so and offered no button that would do nothing;
// logged in in a second browser, they get the button. A page left open
// whose button is pressed after the other session ended gets the page
// back saying nothing was ended, not an error.
func TestLogOutEverywhereElseOnlyWhereThereIsElsewhere(t *testing.T) {
	h := newHarness(t, true)
	d := newDevice(false)
	b := h.browser("en")
	b.enrol(d, "", "fnr")

	const button = `action="/account/sessions/end-others"`
	page := b.get("/account")
	if page.status != http.StatusOK || strings.Contains(page.body, button) || strings.Contains(page.body, "Log out everywhere else") ||
		!strings.Contains(page.body, "You are not logged in to Varde anywhere else.") {
		t.Fatalf("one session: the button is offered, or the page does not say there is no other:\n%s", page.body)
	}

	other := h.browser("en")
	if r, m := other.login(d, h.rp, ""); r.status != http.StatusOK {
		t.Fatalf("second login: %d %v", r.status, m)
	}
	page = b.get("/account")
	if !strings.Contains(page.body, button) || !strings.Contains(page.body, "You are also logged in to Varde in 1 other place") {
		t.Fatalf("two sessions: no button:\n%s", page.body)
	}
	csrf := field(t, page.body, "csrf")

	// The other browser logs out; the page is still open with its button.
	u, _ := url.Parse(h.origin)
	req := httptest.NewRequest(http.MethodPost, h.origin+"/logout", nil)
	for _, c := range other.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	if ended, err := h.fin.sessions.End(httptest.NewRecorder(), req); err != nil || ended == nil {
		t.Fatalf("the other browser's logout: %v %v", ended, err)
	}
	r := b.form("/account/sessions/end-others", url.Values{"csrf": {csrf}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("stale button: %d %q", r.status, r.location)
	}
	page = b.get(r.location)
	if page.status != http.StatusOK || !strings.Contains(page.body, "You were not logged in anywhere else, so nothing was ended.") ||
		strings.Contains(page.body, button) {
		t.Fatalf("after the stale button: %d\n%s", page.status, page.body)
	}
}
