package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// eventsOf returns the audit events of one type, oldest first.
func (f *fixture) eventsOf(t *testing.T, typ string) []*store.AuditEvent {
	t.Helper()
	var out []*store.AuditEvent
	for _, e := range f.events(t) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// do serves a GET with the given cookies.
func (f *fixture) do(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func browserCookie(w *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == broker.BrowserCookie {
			return c
		}
	}
	return nil
}

func withCookie(method string, c *http.Cookie) *http.Request {
	r := httptest.NewRequest(method, "/cb", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return r
}

func TestHandleIsTheTruncatedSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte("r1"))
	h := hex.EncodeToString(sum[:])
	if got, want := broker.Handle("r1"), h[:8]+"_"+h[8:16]; got != want {
		t.Errorf("Handle = %q, want %q", got, want)
	}
	// No handle can look like a national identity number, so the audit
	// log never redacts one (which would merge attempts when counting).
	for i := range 2000 {
		if v := broker.Handle(strings.Repeat("x", i)); audit.LooksLikeNationalID(v) {
			t.Fatalf("Handle %q looks like a national ID", v)
		}
	}
}

// TestBrowserCookieIsSetOnceAndReused: GET /login and /login/start set
// varde_browser when missing (or not ours) and keep it otherwise.
func TestBrowserCookieIsSetOnceAndReused(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	first := browserCookie(f.do("/login?req=r1"))
	if first == nil {
		t.Fatal("GET /login set no browser cookie")
	}
	raw, err := base64.RawURLEncoding.DecodeString(first.Value)
	if err != nil || len(raw) != 16 {
		t.Errorf("cookie value %q is not 128 bits in base64url", first.Value)
	}
	if !first.HttpOnly || first.Secure || first.SameSite != http.SameSiteLaxMode || first.Path != "/" || first.MaxAge != 400*24*3600 {
		t.Errorf("cookie = %+v", first)
	}

	tests := []struct {
		name string
		path string
		sent *http.Cookie
		set  bool
	}{
		{"login page, cookie sent", "/login?req=r1", first, false},
		{"start, cookie sent", "/login/start?req=r1&provider=strong", first, false},
		{"start, no cookie", "/login/start?req=r1&provider=strong", nil, true},
		{"expired attempt, no cookie", "/login?req=gone", nil, true},
		{"not ours", "/login?req=r1", &http.Cookie{Name: broker.BrowserCookie, Value: "chosen-by-someone"}, true},
	}
	for _, tt := range tests {
		var sent []*http.Cookie
		if tt.sent != nil {
			sent = append(sent, tt.sent)
		}
		c := browserCookie(f.do(tt.path, sent...))
		if (c != nil) != tt.set {
			t.Errorf("%s: cookie set = %v, want %v", tt.name, c != nil, tt.set)
		}
		if c != nil && c.Value == first.Value {
			t.Errorf("%s: a new cookie repeats another browser's value", tt.name)
		}
	}

}

var handleRE = regexp.MustCompile(`^[0-9a-f]{8}_[0-9a-f]{8}$`)

// TestEventsOfOneAttemptShareItsHandle: a person meets a provider down on
// the login page, fails through a second and gets in through a third.
// Every event of the attempt carries the same attempt and browser
// handles, and none holds the attempt ID or the cookie value.
func TestEventsOfOneAttemptShareItsHandle(t *testing.T) {
	f := newFixture(t)
	f.b.Providers = append(f.b.Providers, staticProvider{"third", assurance.High})
	f.b.Health = downMonitor(t, f, "weak")
	const id = "Qx7-attempt-bearer-handle"
	f.request(t, id)

	cookie := browserCookie(f.do("/login?req=" + id))
	if cookie == nil {
		t.Fatal("no browser cookie")
	}
	f.do("/login/start?req="+id+"&provider=strong", cookie)
	f.b.Fail(httptest.NewRecorder(), withCookie(http.MethodGet, cookie), id, "strong", "upstream_error")
	if _, err := f.b.Finish(httptest.NewRecorder(), withCookie(http.MethodPost, cookie), id,
		provider.Result{Provider: "third", PersonID: "p1", Level: assurance.High}); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, e := range f.events(t) {
		got = append(got, e.Type+"/"+e.Provider+"/"+e.Result+"/"+e.Reason)
		if e.Details[broker.DetailAttempt] != broker.Handle(id) || e.Details[broker.DetailBrowser] != broker.Handle(cookie.Value) {
			t.Errorf("%s/%s: details %v", e.Type, e.Provider, e.Details)
		}
		if !handleRE.MatchString(e.Details[broker.DetailAttempt]) {
			t.Errorf("attempt handle %q", e.Details[broker.DetailAttempt])
		}
		all, err := json.Marshal(e)
		must(t, err)
		if strings.Contains(string(all), id) || strings.Contains(string(all), cookie.Value) {
			t.Errorf("event holds the attempt ID or the cookie value: %s", all)
		}
	}
	want := []string{
		"routing/weak/rerouted/provider_down",
		"authentication/strong/failure/upstream_error",
		"authentication/third/success/",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

// TestFailOnAnExpiredAttemptKeepsItsHandle: Fail cannot load an expired
// attempt, and still records whose attempt it was.
func TestFailOnAnExpiredAttemptKeepsItsHandle(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	f.now = f.now.Add(time.Hour)
	f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", "upstream_error")
	ev := f.events(t)
	if len(ev) != 1 || ev[0].Details[broker.DetailAttempt] != broker.Handle("r1") || ev[0].Details[broker.DetailBrowser] != "" {
		t.Errorf("audit = %+v", ev)
	}
}

// TestAccountLoginHasNoAttemptHandle: an account login is not an
// attempt for a relying party.
func TestAccountLoginHasNoAttemptHandle(t *testing.T) {
	f := newFixture(t)
	cookie := browserCookie(f.do("/login"))
	if _, err := f.b.Finish(httptest.NewRecorder(), withCookie(http.MethodPost, cookie), broker.AccountAttempt,
		provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.Low}); err != nil {
		t.Fatal(err)
	}
	ev := f.eventsOf(t, broker.EventAuthentication)
	if len(ev) != 1 {
		t.Fatalf("audit = %+v", ev)
	}
	if _, ok := ev[0].Details[broker.DetailAttempt]; ok || ev[0].Details[broker.DetailBrowser] != broker.Handle(cookie.Value) {
		t.Errorf("details = %v", ev[0].Details)
	}
}

// TestRoutingEvents: each way the broker routes a person around a
// provider that is down is recorded against that provider; with nothing
// left, as a failure.
func TestRoutingEvents(t *testing.T) {
	tests := []struct {
		name      string
		providers []provider.Provider // nil: the fixture's weak and strong
		down      []string
		hint      string
		path      string
		want      []string
	}{
		{name: "all up", path: "/login?req=r1"},
		{name: "page shows one down", down: []string{"weak"}, path: "/login?req=r1",
			want: []string{"weak/rerouted/provider_down"}},
		{name: "page shows all down", down: []string{"weak", "strong"}, path: "/login?req=r1",
			want: []string{"weak/failure/no_provider_available", "strong/failure/no_provider_available"}},
		{name: "provider listed twice", down: []string{"weak"}, path: "/login?req=r1",
			providers: []provider.Provider{staticProvider{"weak", assurance.High}, staticProvider{"weak", assurance.High}, staticProvider{"strong", assurance.High}},
			want:      []string{"weak/rerouted/provider_down"}},
		{name: "hint any skips the down one", down: []string{"weak"}, hint: "any", path: "/login?req=r1",
			want: []string{"weak/rerouted/provider_down"}},
		{name: "named hint, up", down: []string{"weak"}, hint: "strong", path: "/login?req=r1"},
		{name: "down since the page", down: []string{"weak"}, path: "/login/start?req=r1&provider=weak",
			want: []string{"weak/rerouted/provider_down"}},
		{name: "down since the page, nothing left", down: []string{"weak", "strong"}, path: "/login/start?req=r1&provider=weak",
			want: []string{"weak/failure/no_provider_available"}},
		{name: "start an up provider", down: []string{"weak"}, path: "/login/start?req=r1&provider=strong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.providers != nil {
				f.b.Providers = tt.providers
			}
			f.b.Health = downMonitor(t, f, tt.down...)
			must(t, f.st.CreateAuthRequest(context.Background(), &store.AuthRequest{ID: "r1", ClientID: "bank",
				RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1, ProviderHint: tt.hint,
				CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}))
			w := f.do(tt.path)
			cookie := browserCookie(w)
			var got []string
			for _, e := range f.events(t) {
				got = append(got, e.Provider+"/"+e.Result+"/"+e.Reason)
				if e.Type != broker.EventRouting || e.ClientID != "bank" || e.Details[broker.DetailAttempt] != broker.Handle("r1") ||
					cookie == nil || e.Details[broker.DetailBrowser] != broker.Handle(cookie.Value) {
					t.Errorf("event %+v", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events = %q, want %q (status %d, Location %q)", got, tt.want, w.Code, w.Header().Get("Location"))
			}
		})
	}
}

// TestBrowserCookieOverHTTPS: over HTTPS the browser cookie is named as
// the session cookie is (session.SecureName): __Host-varde_browser at
// the root, __Secure-varde_browser under an issuer's path. A
// varde_browser cookie without the prefix, which a sibling subdomain or
// a plain-HTTP page of the host could have set to a value it knows
// (cookie tossing), is not read: the browser gets a value of its own,
// and the tossed one never reaches the audit log's count of people
// affected.
func TestBrowserCookieOverHTTPS(t *testing.T) {
	for _, c := range []struct{ path, name string }{
		{"", "__Host-varde_browser"},
		{"/eid", "__Secure-varde_browser"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.b.Sessions.Secure = true
			f.b.Sessions.Path = c.path
			f.b.Health = downMonitor(t, f, "weak")
			f.request(t, "r1")
			srv := httptest.NewTLSServer(http.StripPrefix(c.path, f.mux))
			defer srv.Close()
			client := srv.Client()
			jar, err := cookiejar.New(nil)
			must(t, err)
			client.Jar = jar
			home, err := url.Parse(srv.URL + "/")
			must(t, err)
			tossed := base64.RawURLEncoding.EncodeToString([]byte("sixteen bytes!!!"))
			jar.SetCookies(home, []*http.Cookie{{Name: broker.BrowserCookie, Value: tossed, Path: "/"}})

			page := srv.URL + c.path + "/login?req=r1"
			res, err := client.Get(page)
			must(t, err)
			res.Body.Close()
			var set *http.Cookie
			for _, ck := range res.Cookies() {
				if ck.Name == c.name {
					set = ck
				}
			}
			if set == nil || set.Value == tossed || !set.Secure || set.Path != f.b.Sessions.CookiePath() {
				t.Fatalf("cookies set %v, want a Secure %s of Varde's own value with Path %s", res.Cookies(), c.name, f.b.Sessions.CookiePath())
			}
			// The page recorded the provider down under Varde's own value.
			ev := f.eventsOf(t, broker.EventRouting)
			if len(ev) != 1 || ev[0].Details[broker.DetailBrowser] != broker.Handle(set.Value) {
				t.Errorf("routing events %+v, want one under the handle of %s", ev, c.name)
			}

			// The prefixed cookie is the one read back.
			res, err = client.Get(page)
			must(t, err)
			res.Body.Close()
			if len(res.Cookies()) != 0 {
				t.Errorf("second page view set %v, want the browser cookie kept", res.Cookies())
			}
		})
	}
}
