package app_test

import (
	"cmp"
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/providersim"
)

// TestBlockedNoticeOnlyWhereItHappened: a blocked person who logs in
// through an eID is sent to the login page saying their Varde ID is
// blocked, in nb, en and da, at the root of the host and under an
// issuer path. The same address opened in another browser (a phishing
// mail linking to Varde's own page) says nothing of a block, and the
// account login's address with the notice is the plain login page,
// with its choices.
func TestBlockedNoticeOnlyWhereItHappened(t *testing.T) {
	pages, err := app.NewPages(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{"", "/eid"} {
		t.Run("issuer path "+base, func(t *testing.T) {
			b := startBrokeredAt(t, base, nil)
			ctx := context.Background()
			// A first login makes the person; then the help desk blocks them.
			first := newWebBrowser(t)
			if code, _ := b.code(first, first.simLogin(b.toUpstream(first, b.toLogin(first, b.begin()), "bankid"), number(0)).String()); code == "" {
				t.Fatal("no code for the first login")
			}
			id := providersim.DefaultPersons()[0].Identifier
			p, err := b.app.Store.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.app.Store.BlockPerson(ctx, p.ID, "stolen phone", time.Now(), nil); err != nil {
				t.Fatal(err)
			}

			person := newWebBrowser(t)
			cb := person.simLogin(b.toUpstream(person, b.toLogin(person, b.begin()), "bankid"), number(0))
			res, body := person.get(cb.String())
			notice, err := res.Location()
			if err != nil || notice.Path != base+"/login" || notice.Query().Get("err") != "blocked" {
				t.Fatalf("callback: %d to %v, want the login page saying blocked: %.300s", res.StatusCode, notice, body)
			}
			var bound *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == broker.NoticeCookie {
					bound = c
				}
			}
			if bound == nil || bound.Path != cmp.Or(base, "/") || !bound.HttpOnly || bound.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookies %v, want an HttpOnly, Lax %s with Path %s", res.Cookies(), broker.NoticeCookie, cmp.Or(base, "/"))
			}
			for _, lang := range []string{"nb", "en", "da"} {
				u := notice.String() + "&" + url.Values{"lang": {lang}}.Encode()
				title := html.EscapeString(pages.T(lang, "error.blocked.title"))
				res, body := person.get(u)
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, title) {
					t.Errorf("%s in the browser it happened in: %d, does not say %q: %.300s", lang, res.StatusCode, title, body)
				}
				// Another browser cannot go on with the person's login
				// (ADR 47), and is not told it is blocked either.
				res, body = newWebBrowser(t).get(u)
				if strings.Contains(body, title) || strings.Contains(body, `class="notice"`) {
					t.Errorf("%s from elsewhere: %d, says the person is blocked: %.600s", lang, res.StatusCode, body)
				}
				// Nor is anyone sent the account login's address with it.
				res, body = newWebBrowser(t).get(b.issuer + "/login?" + url.Values{"err": {"blocked"}, "lang": {lang}}.Encode())
				if res.StatusCode != http.StatusOK || strings.Contains(body, title) || strings.Contains(body, `class="notice"`) ||
					!strings.Contains(body, html.EscapeString(base+"/login/start?")) {
					t.Errorf("%s account login from elsewhere: %d, want the plain login page: %.600s", lang, res.StatusCode, body)
				}
			}
		})
	}
}
