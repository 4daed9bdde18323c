package a11ytest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// TestEIDAccountWCAG: the account page of a person who logged in with
// an eID and holds no passkey, which invites them to add one beside the
// button that does, passes axe in every language, as do the account
// pages TestPagesWCAG opens.
func TestEIDAccountWCAG(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	n := startNode(t)
	n.eidSession(t, b)
	for _, l := range app.Languages {
		t.Run(l.Tag, func(t *testing.T) {
			b.visit(t, n.issuer+"/account?lang="+l.Tag, 200)
			b.until(t, `document.querySelector("#passkey-invite") !== null && document.querySelector("[aria-describedby=passkey-invite]") !== null`)
			b.audit(t, l.Tag, "#passkey-invite")
		})
	}
}

// eidSession stores a person the broker made at an eID login, with no
// passkey, and gives b a fresh session of theirs from the eID bankid.
func (n *node) eidSession(t *testing.T, b *browser) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	p := &store.Person{ID: "eid-" + random(t), WebAuthnID: []byte(random(t) + random(t))[:32], GivenName: "Kari", FamilyName: "Nordmann",
		ProofingLevel: "high", ProofingMethod: "eid", Synthetic: true, CreatedAt: now,
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01010112345", MaxLevel: "high", LinkedThrough: "bankid", LinkedAt: now}}}
	if err := n.app.Store.CreatePerson(ctx, p); err != nil {
		t.Fatal(err)
	}
	m := &session.Manager{Store: n.app.Store, Lifetime: time.Hour, Now: time.Now}
	rec := httptest.NewRecorder()
	if err := m.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{
		PersonID: p.ID, Provider: "bankid", Level: "high", AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now,
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		b.do(t, "set the session cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: n.issuer + "/"})
			return err
		}))
	}
}
