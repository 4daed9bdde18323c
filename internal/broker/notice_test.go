package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// noticeOutcome is an outcome the broker sends a browser to a page with
// a notice for: it runs the outcome in the browser b and returns where
// it leads and the response that led there.
type noticeOutcome struct {
	name string
	run  func(t *testing.T, f *fixture, b browser) (string, *httptest.ResponseRecorder)
	// shown is a text only the page with the notice has; plain is the
	// status of the page without it, and, for a redirect, where to.
	shown       string
	plainStatus int
	plainTo     string
}

var noticeOutcomes = []noticeOutcome{
	{"a blocked person's login", func(t *testing.T, f *fixture, b browser) (string, *httptest.ResponseRecorder) {
		if _, err := f.st.BlockPerson(context.Background(), "p1", "stolen phone", f.now, nil); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		next, err := f.b.Finish(w, b.req(http.MethodGet, "/cb", nil), "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High})
		must(t, err)
		return next, w
	}, "Your Varde ID is blocked", http.StatusOK, ""},
	{"a failed login", func(t *testing.T, f *fixture, b browser) (string, *httptest.ResponseRecorder) {
		w := httptest.NewRecorder()
		return f.b.Fail(w, b.req(http.MethodGet, "/cb", nil), "r1", "strong", "upstream_error"), w
	}, "The login did not work.", http.StatusOK, ""},
	{"a refused link", func(t *testing.T, f *fixture, b browser) (string, *httptest.ResponseRecorder) {
		w := httptest.NewRecorder()
		next, err := f.b.Finish(w, b.req(http.MethodGet, "/cb", nil), linkAttempt(t, f, b, "strong"),
			provider.Result{Provider: "strong", Identifiers: []store.Identifier{dnr}, Level: assurance.High})
		must(t, err)
		return next, w
	}, "This login belongs to another person at Varde", http.StatusSeeOther, "/account"},
}

// TestNoticeOnlyInTheBrowserItWasSentTo: the page a login or a link
// ends on after a failure says what happened to the browser it happened
// in; the same link opened anywhere else (a phishing mail pointing at
// Varde's own page, to lend "Your Varde ID is blocked" its credibility)
// shows the plain page: the login page with its choices and no notice,
// or the account page for a link refusal.
func TestNoticeOnlyInTheBrowserItWasSentTo(t *testing.T) {
	for _, tc := range noticeOutcomes {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.request(t, "r1")
			// p2 holds the number the link tries to add.
			must(t, f.st.CreatePerson(context.Background(), &store.Person{ID: "p2", WebAuthnID: []byte("p2-handle-0123456789012345678901"),
				Identifiers: []store.Identifier{dnr}, ProofingLevel: "substantial", CreatedAt: f.now}))
			b := loggedIn(t, f, "p1", assurance.High)
			next, w := tc.run(t, f, b)
			there := append(b, w.Result().Cookies()...)
			page := httptest.NewRecorder()
			f.mux.ServeHTTP(page, there.req(http.MethodGet, next, nil))
			if !strings.Contains(page.Body.String(), tc.shown) {
				t.Errorf("%s in the browser it happened in: %d, does not say %q:\n%.600s", next, page.Code, tc.shown, page.Body.String())
			}

			elsewhere := f.do(next)
			body := elsewhere.Body.String()
			if elsewhere.Code != tc.plainStatus || elsewhere.Header().Get("Location") != tc.plainTo ||
				strings.Contains(body, tc.shown) || strings.Contains(body, `class="notice"`) {
				t.Errorf("%s from elsewhere: %d to %q, want %d to %q without the notice:\n%.600s",
					next, elsewhere.Code, elsewhere.Header().Get("Location"), tc.plainStatus, tc.plainTo, body)
			}
			if tc.plainStatus == http.StatusOK && !strings.Contains(body, "/login/start?") {
				t.Errorf("%s from elsewhere offers no way to log in:\n%.600s", next, body)
			}
		})
	}
}

// TestNoticeCookieBindsOneNotice: the cookie a notice sets shows that
// notice for that login, not another notice nor the same one for
// another login.
func TestNoticeCookieBindsOneNotice(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	f.request(t, "r2")
	w := httptest.NewRecorder()
	if next := f.b.Fail(w, httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", "upstream_error"); next != "/login?err=failed&from=strong&req=r1" {
		t.Fatalf("next = %q", next)
	}
	failed := browser(w.Result().Cookies())
	for _, path := range []string{"/login?err=blocked&req=r1", "/login?err=failed&from=strong&req=r2", "/login?err=conflict&req=r1",
		"/login?err=failed&req=r1", "/login?err=failed&from=weak&req=r1"} {
		page := httptest.NewRecorder()
		f.mux.ServeHTTP(page, failed.req(http.MethodGet, path, nil))
		if body := page.Body.String(); page.Code != http.StatusOK || strings.Contains(body, `class="notice"`) {
			t.Errorf("%s with the cookie of another notice: %d:\n%.600s", path, page.Code, body)
		}
	}
	// The parameters in another order are the same notice.
	page := httptest.NewRecorder()
	f.mux.ServeHTTP(page, failed.req(http.MethodGet, "/login?req=r1&err=failed&lang=da&from=strong", nil))
	if !strings.Contains(page.Body.String(), f.b.Pages.T("da", "login.err.failed")) {
		t.Errorf("the notice in another order and language is not shown:\n%.600s", page.Body.String())
	}
}

// TestNoticeCookieOverHTTPS: the notice cookie is named and scoped as
// the node's other cookies (ADR 25): __Host- at the root, __Secure-
// under an issuer path, with that path; HttpOnly, SameSite=Lax, and
// kept for NoticeLifetime.
func TestNoticeCookieOverHTTPS(t *testing.T) {
	for _, c := range []struct{ path, name string }{
		{"", "__Host-varde_notice"},
		{"/eid", "__Secure-varde_notice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.b.Sessions.Secure = true
			f.b.Sessions.Path = c.path
			f.request(t, "r1")
			w := httptest.NewRecorder()
			next := f.b.Fail(w, httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", "upstream_error")
			cs := w.Result().Cookies()
			if len(cs) != 1 || cs[0].Name != c.name || cs[0].Path != f.b.Sessions.CookiePath() || !cs[0].Secure || !cs[0].HttpOnly ||
				cs[0].SameSite != http.SameSiteLaxMode || cs[0].MaxAge != int(broker.NoticeLifetime.Seconds()) {
				t.Fatalf("cookies %v, want one Secure, HttpOnly, Lax %s with Path %s for %v", cs, c.name, f.b.Sessions.CookiePath(), broker.NoticeLifetime)
			}
			page := httptest.NewRecorder()
			f.mux.ServeHTTP(page, browser(cs).req(http.MethodGet, next, nil))
			if !strings.Contains(page.Body.String(), f.b.Pages.T("en", "login.err.failed")) {
				t.Errorf("the notice is not shown with its cookie:\n%.600s", page.Body.String())
			}
			// A cookie of the name without the prefix (one a sibling
			// host could toss) shows nothing.
			tossed := &http.Cookie{Name: broker.NoticeCookie, Value: cs[0].Value}
			if page := f.do(next, tossed); strings.Contains(page.Body.String(), `class="notice"`) {
				t.Errorf("a tossed cookie shows the notice:\n%.600s", page.Body.String())
			}
		})
	}
}
