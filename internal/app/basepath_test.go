package app_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/providersim"
	"github.com/varde-eid/varde/internal/store"
)

// urlAttr finds the attributes of a page that name an address the
// browser follows, posts to or loads, or the page's script posts to.
var urlAttr = regexp.MustCompile(`\b(href|action|src|data-begin|data-finish|data-cancel|data-keep)="([^"]*)"`)

// cookieLog records the Set-Cookie headers of every response from
// host.
type cookieLog struct {
	next http.RoundTripper
	host string
	mu   sync.Mutex
	set  []*http.Cookie
}

func (c *cookieLog) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(r)
	if err == nil && r.URL.Host == c.host {
		c.mu.Lock()
		c.set = append(c.set, res.Cookies()...)
		c.mu.Unlock()
	}
	return res, err
}

// TestServedUnderIssuerPath: a node whose issuer has a path serves its
// pages under it. Starting from the pages a person reaches (login,
// passkey login, recovery, enrolment, account, status, error pages) and
// following their links, every link, form action, script endpoint,
// asset and redirect that names a path on the node starts with the
// path; every cookie has it as its Path; a form posted there works
// (logout); and nothing is served outside it.
func TestServedUnderIssuerPath(t *testing.T) {
	const base = "/eid"
	sim := withSim(t)
	n := startNodeAtPath(t, base, sim.tune)
	cookies := &cookieLog{next: n.http.Transport, host: strings.TrimPrefix(n.origin, "http://")}
	n.http.Transport = cookies
	ctx := context.Background()
	bank := n.addRP(t, "bank", "bank.example")
	err := n.app.Store.PutClient(ctx, &store.Client{
		ID: "portal", Name: "Portal", AuthMethod: store.AuthNone, RedirectURIs: []string{"https://portal.example/callback"},
		Source: "test", CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	person := n.enrol(t, false)
	jar, _ := cookiejar.New(nil)
	if _, err := bank.Login(ctx, person, loadgen.LoginOptions{Jar: jar}); err != nil {
		t.Fatal(err)
	}
	// And through the simulated eID: its redirect back comes to the
	// callback under the path, with the browser cookie set there.
	if _, err := bank.LoginWith(ctx, loadgen.Brokered{Provider: sim.id, Number: sim.number}, loadgen.LoginOptions{Prompt: "login"}); err != nil {
		t.Fatalf("login through %s: %v", sim.id, err)
	}
	browser := &http.Client{Jar: jar, Transport: n.http.Transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// A browser without a session, for the login pages.
	fresh := &http.Client{}
	*fresh = *browser
	fresh.Jar, _ = cookiejar.New(nil)

	authorize := n.issuer + "/authorize?" + url.Values{
		"client_id": {"portal"}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {"https://portal.example/callback"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
	}.Encode()
	type visit struct {
		c   *http.Client
		url string
	}
	queue := []visit{
		{browser, n.issuer}, {browser, n.issuer + "/account"}, {browser, n.issuer + "/status"},
		{browser, n.issuer + "/status/reports"}, {browser, n.issuer + "/status/incidents/none"},
		{browser, n.issuer + "/no-such-page"}, {browser, n.issuer + "/authorize"},
		{fresh, authorize}, {fresh, n.issuer + "/login?req=unknown"}, {fresh, n.issuer + "/passkey/enrol"},
		{fresh, n.issuer + "/passkey/recover"},
	}
	seen := map[string]bool{}
	pages := 0
	under := func(where, ref string) {
		t.Helper()
		if strings.HasPrefix(ref, "/") && ref != base && !strings.HasPrefix(ref, base+"/") {
			t.Errorf("%s: %q is not under %s", where, ref, base)
		}
	}
	for len(queue) > 0 && pages < 120 {
		v := queue[0]
		queue = queue[1:]
		if seen[v.url] {
			continue
		}
		seen[v.url] = true
		pages++
		res, err := v.c.Get(v.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		here := res.Request.URL
		if loc := res.Header.Get("Location"); loc != "" {
			under(v.url+" Location", loc)
			if u, err := here.Parse(loc); err == nil && u.Host == here.Host {
				queue = append(queue, visit{v.c, u.String()})
			}
		}
		if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
			continue
		}
		for _, m := range urlAttr.FindAllStringSubmatch(string(body), -1) {
			ref := html.UnescapeString(m[2])
			under(v.url+" "+m[1], ref)
			u, err := here.Parse(ref)
			// Links to follow: on the node, not the logout (kept for the end).
			if err != nil || m[1] != "href" || u.Host != here.Host || strings.HasSuffix(u.Path, "/logout") {
				continue
			}
			u.Fragment = ""
			queue = append(queue, visit{v.c, u.String()})
		}
	}
	t.Logf("walked %d addresses", pages)
	for _, want := range []string{"/account", "/login", "/passkey/login", "/passkey/recover", "/passkey/enrol", "/status", "/status/reports"} {
		found := false
		for u := range seen {
			if p, _ := url.Parse(u); p != nil && p.Path == base+want {
				found = true
			}
		}
		if !found {
			t.Errorf("the walk did not reach %s%s", base, want)
		}
	}

	// The account page's logout: the confirmation form, posted to its
	// action with its fields, ends the session.
	res, err := browser.Get(n.issuer + "/logout")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(res)
	action := regexp.MustCompile(`<form method="post" action="([^"]*)"`).FindStringSubmatch(body)
	if res.StatusCode != http.StatusOK || action == nil {
		t.Fatalf("logout page: %d, no form", res.StatusCode)
	}
	under("logout form", html.UnescapeString(action[1]))
	form := url.Values{}
	for _, f := range regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	target, _ := res.Request.URL.Parse(html.UnescapeString(action[1]))
	if res, err = browser.PostForm(target.String(), form); err != nil {
		t.Fatal(err)
	}
	if body := readAll(res); res.StatusCode != http.StatusOK {
		t.Fatalf("logout posted: %d %.300s", res.StatusCode, body)
	}
	if res, err = browser.Get(n.issuer + "/account"); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, base+"/login") {
		t.Errorf("account after logout: %d to %q, want a redirect to %s/login", res.StatusCode, loc, base)
	}

	cookies.mu.Lock()
	names := map[string]bool{}
	for _, c := range cookies.set {
		names[c.Name] = true
		if c.Path != base {
			t.Errorf("cookie %s has Path %q, want %s", c.Name, c.Path, base)
		}
	}
	cookies.mu.Unlock()
	for _, want := range []string{"varde_session", "varde_form", "varde_browser", "varde_lang", "varde_upstream"} {
		if !names[want] {
			t.Errorf("no %s cookie was set (set: %v)", want, names)
		}
	}

	// RFC 8414 §3.1: the metadata before the issuer's path, and under it.
	for _, u := range []string{n.origin + "/.well-known/oauth-authorization-server" + base, n.issuer + "/.well-known/oauth-authorization-server"} {
		res, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Issuer string `json:"issuer"`
			Token  string `json:"token_endpoint"`
		}
		if err := jsonDecode(res, &meta); err != nil || res.StatusCode != http.StatusOK || meta.Issuer != n.issuer || meta.Token != n.issuer+"/token" {
			t.Errorf("%s: %d %+v (%v), want issuer %s", u, res.StatusCode, meta, err, n.issuer)
		}
		res.Body.Close()
	}

	// Outside the path: nothing, not even what is served under it.
	for _, p := range []string{"/", "/authorize", "/.well-known/openid-configuration", "/static/varde.css", "/account", "/readyz", base + "x/status",
		"/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server" + base + "x"} {
		res, err := browser.Get(n.origin + p)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(res)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
		for _, m := range urlAttr.FindAllStringSubmatch(body, -1) {
			under(p+" "+m[1], html.UnescapeString(m[2]))
		}
	}
}

// simEID is a simulated eID (package providersim) in this process, for
// a node to use as an upstream.
type simEID struct {
	id, number string
	tune       func(*config.Config)
}

// withSim starts a simulated eID once the node's issuer is known (tune)
// and adds it to the node's upstreams, with a client key of its own.
func withSim(t *testing.T) *simEID {
	t.Helper()
	s := &simEID{id: "bankid", number: providersim.DefaultPersons()[0].Identifier.Value}
	var sim *providersim.Sim
	s.tune = simUpstream(t, s.id, "Demo BankID", assurance.High, &sim)
	return s
}
