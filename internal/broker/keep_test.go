package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

const (
	keepMark  = "AAAAAAAAAAAAAAAAAAAAAA" // a browser mark: 128 bits, base64url
	otherMark = "BBBBBBBBBBBBBBBBBBBBBA"
)

// boundRequest stores request id, made now, living ten minutes and
// bound to the browser marked keepMark (ADR 47).
func (f *fixture) boundRequest(t testing.TB, id string) {
	t.Helper()
	must(t, f.st.CreateAuthRequest(context.Background(), &store.AuthRequest{
		ID: id, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1,
		Browser: oidc.BrowserBinding(keepMark), CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
}

// expiry is when request id ends as the store has it.
func (f *fixture) expiry(t *testing.T, id string) time.Time {
	t.Helper()
	r, err := f.st.GetAuthRequest(context.Background(), id, f.now)
	must(t, err)
	return r.ExpiresAt
}

var dataAttr = regexp.MustCompile(`data-(keep-csrf|keep-body|ends-in|extendable)="([^"]*)"`)

// pageTimeout reads the login page's dialog attributes in the browser
// marked mark.
func (f *fixture) pageTimeout(t testing.TB, path, mark string) map[string]string {
	t.Helper()
	w := f.do(path, &http.Cookie{Name: broker.BrowserCookie, Value: mark})
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d %.300s", path, w.Code, w.Body)
	}
	attrs := map[string]string{}
	for _, m := range dataAttr.FindAllStringSubmatch(w.Body.String(), -1) {
		attrs[m[1]] = html.UnescapeString(m[2])
	}
	return attrs
}

// keep posts body to /login/keep from the browser marked mark ("" for
// none) with token in X-CSRF-Token.
func (f *fixture) keep(mark, token, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, broker.KeepPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("X-CSRF-Token", token)
	}
	if mark != "" {
		r.AddCookie(&http.Cookie{Name: broker.BrowserCookie, Value: mark})
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

type keepAnswer struct {
	EndsIn     int    `json:"ends_in"`
	Extendable *bool  `json:"extendable"`
	Info       string `json:"info"`
	Error      string `json:"error"`
}

func answer(t *testing.T, w *httptest.ResponseRecorder) keepAnswer {
	t.Helper()
	var a keepAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
		t.Fatalf("keep answer %q: %v", w.Body, err)
	}
	return a
}

// TestLoginPageSaysWhenTheLoginEnds: a service's login page says in
// plain text, in the person's language, until when the login stays
// open, and carries the dialog that warns before it (ADR 50).
func TestLoginPageSaysWhenTheLoginEnds(t *testing.T) {
	f := newFixture(t)
	f.boundRequest(t, "r1")
	for lang, want := range map[string]string{
		"en": "this login stays open until",
		"nb": "denne innloggingen åpen til",
		"da": "dette login åbent til",
	} {
		r := httptest.NewRequest(http.MethodGet, "/login?req=r1", nil)
		r.Header.Set("Accept-Language", lang)
		r.AddCookie(&http.Cookie{Name: broker.BrowserCookie, Value: keepMark})
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		body := html.UnescapeString(w.Body.String())
		if w.Code != http.StatusOK || !strings.Contains(body, `id="login-timeout-info"`) || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want %q in %.2000s", lang, w.Code, want, body)
		}
	}
	a := f.pageTimeout(t, "/login?req=r1", keepMark)
	if a["ends-in"] != "600" || a["extendable"] != "true" || a["keep-csrf"] == "" || a["keep-body"] != `{"req":"r1","lang":"en"}` {
		t.Errorf("dialog attributes = %v", a)
	}
	// A request stored without a binding (before ADR 47) is stated,
	// and its dialog offers no extension: no keep could tell who asks.
	f.request(t, "unbound")
	if a := f.pageTimeout(t, "/login?req=unbound", keepMark); a["ends-in"] != "600" || a["extendable"] != "false" {
		t.Errorf("unbound request's dialog attributes = %v", a)
	}
}

// TestKeepMovesTheLoginsEndOn: a keep from the browser the request is
// bound to moves its end to a lifetime from now, and says how long it
// has and whether it can be extended again; at the bound an hour after
// its creation it can no longer be, and the end stays there.
func TestKeepMovesTheLoginsEndOn(t *testing.T) {
	f := newFixture(t)
	f.boundRequest(t, "r1")
	created := f.now
	a := f.pageTimeout(t, "/login?req=r1", keepMark)
	f.now = f.now.Add(8 * time.Minute)
	w := f.keep(keepMark, a["keep-csrf"], a["keep-body"])
	got := answer(t, w)
	if w.Code != http.StatusOK || got.EndsIn != 600 || got.Extendable == nil || !*got.Extendable {
		t.Fatalf("keep: %d %s", w.Code, w.Body)
	}
	if e := f.expiry(t, "r1"); !e.Equal(f.now.Add(10 * time.Minute)) {
		t.Errorf("expires at %v, want %v", e, f.now.Add(10*time.Minute))
	}
	// Near the bound, a keep moves the end only as far as the bound.
	for f.now.Add(10 * time.Minute).Before(created.Add(broker.MaxLoginTime)) {
		f.now = f.now.Add(9 * time.Minute)
		if w := f.keep(keepMark, a["keep-csrf"], a["keep-body"]); w.Code != http.StatusOK {
			t.Fatalf("keep at %v: %d %s", f.now.Sub(created), w.Code, w.Body)
		}
	}
	bound := created.Add(broker.MaxLoginTime)
	if e := f.expiry(t, "r1"); !e.Equal(bound) {
		t.Errorf("expires at %v, want the bound %v", e, bound)
	}
	w = f.keep(keepMark, a["keep-csrf"], a["keep-body"])
	got = answer(t, w)
	if w.Code != http.StatusOK || got.EndsIn != int(bound.Sub(f.now)/time.Second) || got.Extendable == nil || *got.Extendable {
		t.Errorf("keep at the bound: %d %s, want %d seconds, not extendable", w.Code, w.Body, int(bound.Sub(f.now)/time.Second))
	}
	if e := f.expiry(t, "r1"); !e.Equal(bound) {
		t.Errorf("expires at %v after a keep at the bound, want %v", e, bound)
	}
	if a := f.pageTimeout(t, "/login?req=r1", keepMark); a["extendable"] != "false" {
		t.Errorf("page at the bound: extendable %q, want false", a["extendable"])
	}
}

// TestKeepSaysTheNewEnd: a keep answers with the page's sentence about
// the login's end again, with the new end and in the page's language,
// for the dialog to put in the place of the one the page was loaded
// with.
func TestKeepSaysTheNewEnd(t *testing.T) {
	f := newFixture(t)
	f.boundRequest(t, "r1")
	for _, lang := range []string{"nb", "en", "da"} {
		a := f.pageTimeout(t, "/login?req=r1&lang="+lang, keepMark)
		f.now = f.now.Add(7 * time.Minute)
		got := answer(t, f.keep(keepMark, a["keep-csrf"], a["keep-body"]))
		ends := f.b.Pages.Time(lang, f.now.Add(10*time.Minute)).Text
		want := fmt.Sprintf(f.b.Pages.T(lang, "timeout.request.info"), ends)
		if got.Info != want {
			t.Errorf("%s: info %q, want %q", lang, got.Info, want)
		}
	}
}

// TestKeepRefusesAndChangesNothing: a keep without the page's token, from
// another browser or from none, for an unknown, ended or unbound
// request, or not as JSON, is refused with a JSON error, and the
// request's end stays where it was.
func TestKeepRefusesAndChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.boundRequest(t, "r1")
	f.request(t, "unbound")
	a := f.pageTimeout(t, "/login?req=r1", keepMark)
	ours, body := a["keep-csrf"], a["keep-body"]
	// The other browser's own token for r1, as a page it could see
	// would give it, if the login page served it.
	theirs := broker.KeepCSRF(otherMark, "r1")
	before := f.expiry(t, "r1")
	f.now = f.now.Add(5 * time.Minute)
	tests := []struct {
		name        string
		mark, token string
		body        string
		status      int
		code        string
	}{
		{"no token", keepMark, "", body, http.StatusForbidden, "csrf"},
		{"wrong token", keepMark, ours + "x", body, http.StatusForbidden, "csrf"},
		{"another request's token", keepMark, broker.KeepCSRF(keepMark, "r2"), body, http.StatusForbidden, "csrf"},
		{"other browser", otherMark, theirs, body, http.StatusUnauthorized, "login"},
		{"other browser, our token", otherMark, ours, body, http.StatusForbidden, "csrf"},
		{"no browser", "", ours, body, http.StatusUnauthorized, "login"},
		{"unknown request", keepMark, broker.KeepCSRF(keepMark, "never"), `{"req":"never"}`, http.StatusUnauthorized, "login"},
		{"unbound request", keepMark, broker.KeepCSRF(keepMark, "unbound"), `{"req":"unbound"}`, http.StatusUnauthorized, "login"},
		{"no request", keepMark, ours, `{}`, http.StatusBadRequest, "bad_request"},
		{"not JSON", keepMark, ours, "req=r1", http.StatusBadRequest, "bad_request"},
	}
	for _, tt := range tests {
		w := f.keep(tt.mark, tt.token, tt.body)
		if got := answer(t, w); w.Code != tt.status || got.Error != tt.code {
			t.Errorf("%s: %d %s, want %d %q", tt.name, w.Code, w.Body, tt.status, tt.code)
		}
	}
	r := httptest.NewRequest(http.MethodPost, broker.KeepPath, strings.NewReader(body))
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("X-CSRF-Token", ours)
	r.AddCookie(&http.Cookie{Name: broker.BrowserCookie, Value: keepMark})
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %s", w.Code, w.Body)
	}
	if e := f.expiry(t, "r1"); !e.Equal(before) {
		t.Errorf("expires at %v after refused keeps, want %v", e, before)
	}
	// Once ended, it stays ended.
	f.now = before
	if w := f.keep(keepMark, ours, body); w.Code != http.StatusUnauthorized || answer(t, w).Error != "login" {
		t.Errorf("ended: %d %s", w.Code, w.Body)
	}
	if _, err := f.st.GetAuthRequest(context.Background(), "r1", f.now); err == nil {
		t.Error("an ended request came back")
	}
}

// keepForm posts v to /login/keep as a plain form from the browser
// marked mark, as a login page's own button does without script.
func (f *fixture) keepForm(mark string, v url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, broker.KeepPath, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mark != "" {
		r.AddCookie(&http.Cookie{Name: broker.BrowserCookie, Value: mark})
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// TestKeepWithoutScript: without script, the login page's own button,
// beside the sentence that says until when the login stays open, posts
// a plain form to /login/keep (ADR 50, WCAG 2.2 SC 2.2.1): it moves the
// request's end as the JSON keep does and answers 303 back to the page,
// which says so and shows the new end. It sends the browser only to a
// login page, never to an address the form names, and keeps nothing
// for a form refused or a browser the request is not bound to.
func TestKeepWithoutScript(t *testing.T) {
	f := newFixture(t)
	f.boundRequest(t, "r1")
	created := f.now
	w := f.do("/login?req=r1", &http.Cookie{Name: broker.BrowserCookie, Value: keepMark})
	body := w.Body.String()
	_, rest, ok := strings.Cut(body, `id="login-timeout-info"`)
	form, _, _ := strings.Cut(rest, "</form>")
	if !ok || !strings.Contains(form, `action="/login/keep"`) || !strings.Contains(form, "Keep this login open longer") {
		t.Fatalf("login page lacks its own keep button after the sentence: %.3000s", body)
	}
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(form, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("req") != "r1" || v.Get("back") != "/login?req=r1" || v.Get("csrf") == "" {
		t.Fatalf("keep form fields = %v", v)
	}

	f.now = created.Add(5 * time.Minute)
	for _, bad := range []struct {
		name   string
		mark   string
		v      url.Values
		status int
	}{
		{"back to another site", keepMark, url.Values{"req": {"r1"}, "csrf": {v.Get("csrf")}, "back": {"https://evil.example/login?req=r1"}}, http.StatusBadRequest},
		{"back to a path of its own", keepMark, url.Values{"req": {"r1"}, "csrf": {v.Get("csrf")}, "back": {"/account"}}, http.StatusBadRequest},
		{"no request", keepMark, url.Values{"csrf": {v.Get("csrf")}, "back": {"/login?req=r1"}}, http.StatusBadRequest},
		{"a wrong token", keepMark, url.Values{"req": {"r1"}, "csrf": {"x"}, "back": {"/login?req=r1"}}, http.StatusForbidden},
		{"another browser's token", otherMark, v, http.StatusForbidden},
	} {
		if w := f.keepForm(bad.mark, bad.v); w.Code != bad.status || w.Header().Get("Location") != "" {
			t.Errorf("keep form with %s: %d %q; want %d, no redirect", bad.name, w.Code, w.Header().Get("Location"), bad.status)
		}
	}
	if got := f.expiry(t, "r1"); !got.Equal(created.Add(10 * time.Minute)) {
		t.Fatalf("after refused keep forms the request ends at %v; want unchanged", got)
	}

	w = f.keepForm(keepMark, v)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?req=r1&kept=1" {
		t.Fatalf("keep form: %d %q; want 303 /login?req=r1&kept=1", w.Code, w.Header().Get("Location"))
	}
	if got := f.expiry(t, "r1"); !got.Equal(f.now.Add(10 * time.Minute)) {
		t.Errorf("after the keep form the request ends at %v; want %v", got, f.now.Add(10*time.Minute))
	}
	after := f.do("/login?req=r1&kept=1", &http.Cookie{Name: broker.BrowserCookie, Value: keepMark})
	if !strings.Contains(after.Body.String(), "You have more time to log in.") {
		t.Errorf("the page after the keep does not say so: %.3000s", after.Body)
	}
	// A browser without its mark is sent back, keeping nothing: the
	// page then says what it says to that browser.
	before := f.expiry(t, "r1")
	f.now = f.now.Add(time.Minute)
	if w := f.keepForm("", v); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?req=r1" {
		t.Errorf("keep form without a browser mark: %d %q; want 303 back, not saying kept", w.Code, w.Header().Get("Location"))
	}
	if got := f.expiry(t, "r1"); !got.Equal(before) {
		t.Errorf("a keep form without a browser mark moved the end to %v", got)
	}
	// A request that has ended is not brought back; the page, which says
	// so, is not told it was kept.
	f.now = before.Add(time.Second)
	if w := f.keepForm(keepMark, v); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?req=r1" {
		t.Errorf("keep form after the end: %d %q; want 303 back, not saying kept", w.Code, w.Header().Get("Location"))
	}
	if _, err := f.st.GetAuthRequest(context.Background(), "r1", f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the request after a keep form past its end: %v; want it ended", err)
	}
}
