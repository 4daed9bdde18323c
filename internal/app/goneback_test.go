package app_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/store"
)

// TestGoingBackWhenNoWayInReachesTheLevel: a shop that accepts only
// Demo MinID (substantial) asks for level high. The login page offers
// nothing and a way back to the shop; the person who takes it did not
// cancel, and the shop is told why, at its redirect URI, with its state
// and the issuer: unmet_authentication_requirements, not access_denied.
func TestGoingBackWhenNoWayInReachesTheLevel(t *testing.T) {
	b := startBrokered(t, func(c *store.Client) { c.Providers = []string{"minid"} })
	br := newWebBrowser(t)
	l := b.begin("acr_values", assurance.ACRHigh)
	req := b.toLogin(br, l)
	res, body := br.get(b.issuer + "/login?" + url.Values{"req": {req}}.Encode())
	back := regexp.MustCompile(`<form method="post" action="([^"]+)"><p><button type="submit" id="cancel">`).FindStringSubmatch(body)
	if res.StatusCode != http.StatusServiceUnavailable || back == nil {
		t.Fatalf("login page: %d, want 503 with a way back to the shop:\n%.2000s", res.StatusCode, body)
	}
	res, err := br.hc.PostForm(b.issuer+html.UnescapeString(back[1]), nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(res)
	loc, err := res.Location()
	if err != nil || !strings.HasPrefix(loc.String(), shopRedirect+"?") {
		t.Fatalf("going back: %d to %v, want the shop's redirect URI", res.StatusCode, loc)
	}
	q := loc.Query()
	if q.Get("error") != "unmet_authentication_requirements" || !strings.Contains(q.Get("error_description"), "acr_values") ||
		q.Get("state") != l.state || q.Get("iss") != b.issuer {
		t.Errorf("the shop got %v, want unmet_authentication_requirements with its state and iss", q)
	}
}
