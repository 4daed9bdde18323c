package oidc

import (
	"context"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
)

// TestClientHome: a client's home is the origin of its first https
// redirect URI; a native app's scheme, a loopback address, plain http
// and an address with credentials are no page to send a person to.
func TestClientHome(t *testing.T) {
	for _, tc := range []struct {
		name string
		uris []string
		want string
	}{
		{"https", []string{"https://bank.example/login/cb?x=1"}, "https://bank.example/"},
		{"with a port", []string{"https://bank.example:8443/cb"}, "https://bank.example:8443/"},
		{"the first https one", []string{"no.bank.app:/cb", "http://bank.example/cb", "https://127.0.0.1/cb", "https://www.bank.example/cb"}, "https://www.bank.example/"},
		{"a native app only", []string{"no.bank.app:/cb", "http://127.0.0.1:8080/cb", "https://localhost/cb"}, ""},
		{"credentials", []string{"https://user:pw@bank.example/cb"}, ""},
		{"none", nil, ""},
	} {
		if got := ClientHome(&store.Client{RedirectURIs: tc.uris}); got != tc.want {
			t.Errorf("%s: ClientHome = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestExpiredLoginLeadsBackToTheService: a login whose request ran out
// of time, at /authorize/resume and for a pushed request_uri, names the
// service it was for and links to the service's registered home, never
// to an address the request or the URL carried. A client without a name
// leaves the general words. The service is named from the one read of
// the request that found it expired, not from a second.
func TestExpiredLoginLeadsBackToTheService(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, id := range []string{taxID, bankID} {
		c, err := h.db.GetClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c.Name = map[string]string{taxID: "Demo Tax Office", bankID: "Demo Bank"}[id]
		if err := h.db.PutClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	want := func(t *testing.T, what, body, name, home string) {
		t.Helper()
		for _, s := range []string{"Gå tilbake til " + html.EscapeString(name) + ", og start på nytt.", `<a class="button" href="` + home + `" id="service">Gå tilbake til ` + name + `</a>`} {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the page lacks %q:\n%s", what, s, body)
			}
		}
		if strings.Contains(body, `href="https://evil.example`) {
			t.Errorf("%s: the page links where the URL said:\n%s", what, body)
		}
	}

	h.setLogin(false, "substantial", h.person.ID)
	b := h.browser()
	tax := h.rp(taxID, taxCB)
	resp, _ := b.get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier()))
	req := resp.Request.URL.Query().Get("req")
	if req == "" {
		t.Fatalf("login page: %d %s", resp.StatusCode, resp.Request.URL)
	}
	h.clock.Add(DefaultAuthRequestLifetime + time.Second)
	counted := &countedRequests{AuthRequests: h.p.AuthRequests}
	h.p.AuthRequests = counted
	resp, body := b.get(h.issuer + PathResume + "?req=" + req + "&redirect_uri=https%3A%2F%2Fevil.example%2F")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("expired request: %d", resp.StatusCode)
	}
	want(t, "resume", body, "Demo Tax Office", "https://tax.example/")
	if counted.reads != 1 {
		t.Errorf("the expired request was read %d times, want once", counted.reads)
	}
	// A login that never was names no service.
	if _, body := b.get(h.issuer + PathResume + "?req=nope"); strings.Contains(body, `id="service"`) {
		t.Errorf("a made-up login names a service:\n%s", body)
	}

	authURL, _, _ := h.pushBank(bankForm("st", "n", oauth2.GenerateVerifier()))
	h.clock.Add(91 * time.Second)
	resp, body = b.get(authURL + "&redirect_uri=https%3A%2F%2Fevil.example%2F")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("expired request_uri: %d", resp.StatusCode)
	}
	want(t, "request_uri", body, "Demo Bank", "https://bank.example/")
}

// countedRequests is the real store, counting the reads of
// authorization requests.
type countedRequests struct {
	store.AuthRequests
	reads int
}

func (c *countedRequests) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	c.reads++
	return c.AuthRequests.GetAuthRequest(ctx, id, now)
}
