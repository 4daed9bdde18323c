package oidcup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/store"
)

// loginFails runs a login that must end at the broker's failure URL
// with reason, after exactly the audited reasons want.
func loginFails(t *testing.T, v *varde, start, reason string, want ...string) {
	t.Helper()
	finishes, fails := v.fin.counts()
	audited := len(v.reasons())
	path, body := newBrowser(t).login(start)
	if path != "/failed" {
		t.Fatalf("login ended at %s: %.200s", path, body)
	}
	n, m := v.fin.counts()
	if n != finishes || m != fails+1 || v.fin.fails[m-1].reason != reason {
		t.Fatalf("Finish %d→%d, Fail %d→%d %v, want one Fail %q", finishes, n, fails, m, v.fin.fails, reason)
	}
	if got := v.reasons()[audited:]; !slices.Equal(got, want) {
		t.Fatalf("audited %v, want %v", got, want)
	}
}

// loginWorks runs a login that must reach Finish.
func loginWorks(t *testing.T, v *varde, start string) {
	t.Helper()
	finishes, _ := v.fin.counts()
	path, body := newBrowser(t).login(start)
	if n, _ := v.fin.counts(); path != "/finished" || n != finishes+1 {
		t.Fatalf("login ended at %s (Finish %d→%d): %.200s; audited %v", path, finishes, n, body, v.reasons())
	}
}

func TestAuthorizationRequest(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.Scopes = []string{"profile", "openid"}
	cfg.ACRMap["urn:fake:loa:low"] = assurance.Low
	cfg.ForwardLoginHint = true
	v.add(cfg)
	for _, tc := range []struct {
		name, locale, hint string
		min                assurance.Level
		acr                string
	}{
		{name: "substantial", min: assurance.Substantial, locale: "nb", hint: "kari@example.no", acr: fakeSubstantial + " " + fakeHigh},
		{name: "low", min: assurance.Low, locale: "en", acr: "urn:fake:loa:low " + fakeSubstantial + " " + fakeHigh},
		{name: "high", min: assurance.High, acr: fakeHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newBrowser(t).login(v.startURL("fake", "a", tc.min, tc.locale, tc.hint))
			var q map[string][]string
			f.with(func(f *fakeUpstream) { q = f.lastAuth })
			get := func(k string) string {
				if len(q[k]) != 1 {
					t.Fatalf("parameter %s: %v", k, q[k])
				}
				return q[k][0]
			}
			if get("scope") != "openid profile" || get("acr_values") != tc.acr || get("code_challenge_method") != "S256" ||
				len(get("code_challenge")) != 43 || len(get("state")) != 43 || len(get("nonce")) != 43 ||
				get("redirect_uri") != v.redirectURI("fake") || get("response_type") != "code" {
				t.Fatalf("authorization request %v", q)
			}
			if tc.locale != "" && get("ui_locales") != tc.locale || tc.locale == "" && q["ui_locales"] != nil {
				t.Errorf("ui_locales %v", q["ui_locales"])
			}
			if tc.hint != "" && get("login_hint") != tc.hint || tc.hint == "" && q["login_hint"] != nil {
				t.Errorf("login_hint %v", q["login_hint"])
			}
			if q["prompt"] != nil || q["max_age"] != nil {
				t.Errorf("prompt %v, max_age %v sent without PromptLogin", q["prompt"], q["max_age"])
			}
		})
	}
}

// TestPARWhenRequired: an upstream whose metadata requires PAR gets the
// request pushed, with client authentication, and only client_id and
// request_uri in the front channel.
func TestPARWhenRequired(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR = true })
	v.add(f.config(v, "fake"))
	loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "nb", ""))
	f.with(func(f *fakeUpstream) {
		if f.lastAuth.Get("acr_values") != fakeSubstantial+" "+fakeHigh || f.lastAuth.Get("ui_locales") != "nb" {
			t.Errorf("pushed request %v", f.lastAuth)
		}
	})
	// Without the metadata asking, no push: the upstream refuses.
	f.with(func(f *fakeUpstream) { f.meta = map[string]any{"require_pushed_authorization_requests": false} })
	v.clock.Add(2 * time.Hour) // metadata is fetched again
	resp, _ := newBrowser(t).get(v.startURL("fake", "b", assurance.Substantial, "", ""))
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Request.URL.String(), f.issuer) {
		t.Fatalf("want the upstream to refuse a request that is not pushed, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

// TestPrivateKeyJWT: the client assertion is signed with the configured
// key, its aud is the upstream's issuer as one string, and it reaches the
// token and PAR endpoints.
func TestPrivateKeyJWT(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.AuthMethod, cfg.ClientSecret, cfg.ClientKey, cfg.UsePAR = AuthPrivateKeyJWT, "", ecKey(t), true
	p := v.add(cfg)
	set := p.ClientJWKS()
	if len(set.Keys) != 1 || set.Keys[0].KeyID == "" || !set.Keys[0].IsPublic() {
		t.Fatalf("client JWKS %+v", set)
	}
	f.with(func(f *fakeUpstream) { f.assertionKey = &set.Keys[0] })
	loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "", ""))

	// The public key is served for upstreams that fetch it.
	resp, body := newBrowser(t).get(v.srv.URL + JWKSPath("fake"))
	var got jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK || len(got.Keys) != 1 ||
		got.Keys[0].KeyID != set.Keys[0].KeyID || !got.Keys[0].IsPublic() || strings.Contains(body, `"d"`) {
		t.Fatalf("jwks %d %s", resp.StatusCode, body)
	}
}

// TestJWKSRotation: a token signed with a new kid makes Varde fetch the
// upstream's keys again, at most once per Refetch interval.
func TestJWKSRotation(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	loginWorks(t, v, start)
	if n := f.jwksFetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
	loginWorks(t, v, start)
	if n := f.jwksFetches.Load(); n != 1 {
		t.Fatalf("cached JWKS fetched again: %d", n)
	}
	// The upstream rotates to k2 and retires k1.
	v.clock.Add(DefaultRefetch)
	k2 := signingKey{kid: "k2", key: ecKey(t), alg: jose.ES256}
	f.with(func(f *fakeUpstream) { f.signing, f.published = k2, []signingKey{k2} })
	loginWorks(t, v, start)
	if n := f.jwksFetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after rotation, want 2", n)
	}
	// Another rotation straight after: no refetch within the interval, so
	// the token is refused as signed by a key not fetched yet, which does
	// not count against the upstream; after the interval it is accepted.
	k3 := signingKey{kid: "k3", key: ecKey(t), alg: jose.ES256}
	f.with(func(f *fakeUpstream) { f.signing, f.published = k3, []signingKey{k3} })
	loginFails(t, v, start, "unverified_response", ReasonUnknownKey)
	if n := f.jwksFetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times within the refetch interval, want 2", n)
	}
	v.clock.Add(DefaultRefetch)
	loginWorks(t, v, start)
	if n := f.jwksFetches.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
}

// TestJWKSURIMoved: when the upstream's metadata names another
// jwks_uri, the keys are fetched from it at once; while it fails, it is
// asked at most once per Timeouts.Refetch, however many logins come.
func TestJWKSURIMoved(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	// The upstream's keys' new place, failing until up.
	var fetches atomic.Int64
	var up atomic.Bool
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("GET /moved/jwks", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.jwks(w, r)
	})
	v.add(f.config(v, "fake"))
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	loginWorks(t, v, start)
	f.with(func(f *fakeUpstream) { f.meta = map[string]any{"jwks_uri": f.issuer + "/moved/jwks"} })
	v.clock.Add(DefaultDiscoveryTTL) // the metadata is fetched again and names the new URI
	for range 10 {
		loginFails(t, v, start, ReasonUpstreamError, ReasonJWKS)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("the failing new jwks_uri was fetched %d times for 10 logins at one time, want 1", n)
	}
	up.Store(true)
	v.clock.Add(DefaultRefetch)
	loginWorks(t, v, start)
	if n := fetches.Load(); n != 2 {
		t.Fatalf("the new jwks_uri was fetched %d times, want 2", n)
	}
}

// TestReplayedCallback: a callback URL used twice finishes once; the
// second visit gets a page and is audited as a replay. Nothing of the
// login stays in the store once it is used, not even to whom its state
// was issued.
func TestReplayedCallback(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	p := v.add(f.config(v, "fake"))
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "en", ""))
	if resp, _ := b.get(cb); resp.Request.URL.Path != "/finished" {
		t.Fatalf("first callback ended at %s", resp.Request.URL.Path)
	}
	u, _ := url.Parse(cb)
	if _, err := v.chal.TakeChallenge(context.Background(), p.stateKey(u.Query().Get("state")), v.clock.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("to whom the used state was issued: %v, want it gone", err)
	}
	resp, body := b.get(cb)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<h1>") {
		t.Fatalf("replayed callback: %d %.200s", resp.StatusCode, body)
	}
	if n, m := v.fin.counts(); n != 1 || m != 0 {
		t.Fatalf("Finish %d, Fail %d", n, m)
	}
	if r := v.reasons(); !slices.Equal(r, []string{ReasonReplay}) {
		t.Fatalf("audited %v", r)
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Fatalf("token endpoint called %d times", n)
	}
}

// TestCallbackInAnotherBrowserLeavesTheLogin: a callback URL opened in
// a browser that did not start the login, with no browser cookie or
// with one of its own, is refused (login CSRF) and audited as another
// browser (the first time; after that as an unknown state), without
// ending the attempt, and spends nothing: whoever learns a person's
// state (it travels in URLs, through the person's browser and the eID)
// and sends the callback first cannot spoil the login, and the person's
// own callback then finishes it, once. Nothing of the refused ones
// reaches the broker as a failure, nor the upstream's token endpoint.
func TestCallbackInAnotherBrowserLeavesTheLogin(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "en", ""))
	own := newBrowser(t)
	own.callbackURL(v.startURL("fake", "stranger", assurance.Substantial, "", "")) // a cookie of their own
	for _, stranger := range []*browser{newBrowser(t), own, newBrowser(t)} {
		if resp, body := stranger.get(cb); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<h1>") {
			t.Fatalf("callback in another browser: %d %.200s", resp.StatusCode, body)
		}
	}
	// What the state was issued to is read once: the first is audited as
	// another browser, those after as an unknown or used state.
	if r := v.reasons(); !slices.Equal(r, []string{ReasonBrowserMismatch, ReasonReplay, ReasonReplay}) {
		t.Fatalf("audited %v", r)
	}
	if n, m := v.fin.counts(); n != 0 || m != 0 {
		t.Fatalf("Finish %d, Fail %d before the person's callback", n, m)
	}
	if n := f.tokenCalls.Load(); n != 0 {
		t.Fatalf("code redeemed %d times before the person's callback", n)
	}
	if resp, body := b.get(cb); resp.Request.URL.Path != "/finished" {
		t.Fatalf("the person's callback ended at %s: %.200s; audited %v", resp.Request.URL.Path, body, v.reasons())
	}
	if f := v.fin.lastFinish(t); f.attempt != "a" {
		t.Fatalf("finished attempt %q, want a", f.attempt)
	}
	// Still single use.
	if resp, _ := b.get(cb); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the person's callback again: %d", resp.StatusCode)
	}
	if r := v.reasons(); r[len(r)-1] != ReasonReplay {
		t.Fatalf("audited %v, want a replay last", r)
	}
	if n, m := v.fin.counts(); n != 1 || m != 0 {
		t.Fatalf("Finish %d, Fail %d", n, m)
	}
	if n := f.tokenCalls.Load(); n != 1 {
		t.Fatalf("code redeemed %d times", n)
	}
}

// TestBrowserCookieRenewedOnEveryStart: every login started in a
// browser sets the browser cookie again, with the same value and a
// lifetime that covers the new login's state (Timeouts.Login, rounded up
// to whole seconds), so a login started late in the cookie's life does
// not come back to a browser that has dropped it. Logins started
// earlier in the browser still finish.
func TestBrowserCookieRenewedOnEveryStart(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Login = 2*time.Minute + 500*time.Millisecond
	v.add(cfg)
	b := newBrowser(t)
	start := func(attempt string) (*http.Cookie, string) {
		t.Helper()
		b.stop = func(*url.URL) bool { return true }
		defer func() { b.stop = nil }()
		resp, _ := b.get(v.startURL("fake", attempt, assurance.Substantial, "", ""))
		i := slices.IndexFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == BrowserCookie })
		if i < 0 {
			t.Fatalf("Start of %s set no %s cookie", attempt, BrowserCookie)
		}
		return resp.Cookies()[i], resp.Header.Get("Location")
	}
	first, authFirst := start("first")
	v.clock.Add(2 * time.Minute)
	again, authAgain := start("again")
	for _, c := range []*http.Cookie{first, again} {
		if c.MaxAge != 121 || c.Path != "/" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %+v, want Max-Age 121, Path /, HttpOnly, SameSite=Lax", c)
		}
	}
	if again.Value != first.Value {
		t.Error("a second Start changed the browser cookie's value")
	}
	for _, auth := range []string{authAgain, authFirst} {
		if path, body := b.login(auth); path != "/finished" {
			t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
		}
	}
}

// TestCallbackFindsItsCookieAmongOthers: a browser that still holds a
// browser cookie set under another path sends both to the callback;
// the login is bound to whichever of them started it.
func TestCallbackFindsItsCookieAmongOthers(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	b := newBrowser(t)
	cb, _ := url.Parse(v.redirectURI("fake"))
	b.c.Jar.SetCookies(cb, []*http.Cookie{{Name: BrowserCookie, Value: strings.Repeat("x", 43), Path: "/upstream/"}})
	if path, body := b.login(v.startURL("fake", "a", assurance.Substantial, "", "")); path != "/finished" {
		t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
	}
	if n := len(b.c.Jar.Cookies(cb)); n != 2 {
		t.Fatalf("the browser sent %d cookies to the callback, want 2", n)
	}
}

// TestBadCallbacks: callbacks that never reach a login.
func TestBadCallbacks(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	v.add(Config{ID: "other", Name: map[string]string{"en": "Other"}, Issuer: f.issuer, ClientID: fakeClient,
		AuthMethod: AuthClientSecretBasic, ClientSecret: f.secret, RedirectURI: v.redirectURI("other"),
		MaxLevel: assurance.Substantial, ACRMap: map[string]assurance.Level{fakeSubstantial: assurance.Substantial},
		IdentifierClaim: "pid", IdentifierSchemes: []string{"no:fnr"}})
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "", ""))
	for _, tc := range []struct {
		name, url, reason string
		status            int
	}{
		{"no state", v.redirectURI("fake") + "?code=x", ReasonBadRequest, http.StatusBadRequest},
		{"repeated state", cb + "&state=again", ReasonBadRequest, http.StatusBadRequest},
		{"unknown state", v.redirectURI("fake") + "?code=x&state=made-up", ReasonReplay, http.StatusBadRequest},
		// A state issued for one upstream is unknown at another's
		// callback (mix-up across providers).
		{"state of another provider", strings.Replace(cb, CallbackPath("fake"), CallbackPath("other"), 1), ReasonReplay, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audited := len(v.reasons())
			resp, body := b.get(tc.url)
			if resp.StatusCode != tc.status || !strings.Contains(body, "<h1>") {
				t.Fatalf("status %d: %.200s", resp.StatusCode, body)
			}
			if got := v.reasons()[audited:]; !slices.Equal(got, []string{tc.reason}) {
				t.Fatalf("audited %v", got)
			}
		})
	}
	// The real callback still works: nothing above used up its state.
	if resp, _ := b.get(cb); resp.Request.URL.Path != "/finished" {
		t.Fatalf("callback ended at %s", resp.Request.URL.Path)
	}
}

// TestMixUp: RFC 9207 iss checking on authorization responses.
func TestMixUp(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	none, wrong := "", "https://evil.example"
	right := f.issuer
	for _, tc := range []struct {
		name      string
		advertise bool
		iss       *string
		authError string
		ok        bool
	}{
		{name: "advertised, present", advertise: true, iss: &right, ok: true},
		{name: "advertised, missing", advertise: true, iss: &none},
		{name: "advertised, wrong", advertise: true, iss: &wrong},
		{name: "advertised, missing on an error", advertise: true, iss: &none, authError: "access_denied"},
		{name: "advertised, wrong on an error", advertise: true, iss: &wrong, authError: "access_denied"},
		{name: "not advertised, missing", iss: &none, ok: true},
		{name: "not advertised, wrong", iss: &wrong},
		{name: "not advertised, issuer with a slash", iss: ptr(f.issuer + "/")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.with(func(f *fakeUpstream) {
				f.meta = map[string]any{"authorization_response_iss_parameter_supported": tc.advertise}
				f.respIss, f.authError = tc.iss, tc.authError
			})
			v.clock.Add(2 * time.Hour) // fetch the metadata again
			start := v.startURL("fake", "a", assurance.Substantial, "", "")
			if tc.ok {
				loginWorks(t, v, start)
				return
			}
			calls := f.tokenCalls.Load()
			loginFails(t, v, start, provider.ReasonUnverifiedResponse, ReasonMixUp)
			if f.tokenCalls.Load() != calls {
				t.Fatal("the code of a mixed-up response was redeemed")
			}
		})
	}
}

func ptr(s string) *string { return &s }

// TestUpstreamErrors: error responses and failing endpoints end the
// attempt with a precise audit reason; the broker hears "cancelled",
// "unverified_response" for what came through the browser (an error
// response, a refused code) and "upstream_error" for the upstream's
// servers failing.
func TestUpstreamErrors(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Token = 300 * time.Millisecond
	v.add(cfg)
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	secret := f.secret
	for _, tc := range []struct {
		name   string
		set    func(f *fakeUpstream)
		reason string
		audit  string
	}{
		{"access_denied", func(f *fakeUpstream) { f.authError = "access_denied" }, ReasonCancelled, ReasonCancelled},
		{"server_error", func(f *fakeUpstream) { f.authError = "server_error" }, provider.ReasonUnverifiedResponse, ReasonUpstreamError},
		{"token endpoint refuses the code", func(f *fakeUpstream) { f.tokenStatus = http.StatusBadRequest }, provider.ReasonUnverifiedResponse, ReasonInvalidGrant},
		{"token endpoint refuses the client", func(f *fakeUpstream) { f.secret = "changed" }, ReasonUpstreamError, ReasonTokenEndpoint},
		{"token endpoint fails", func(f *fakeUpstream) { f.tokenStatus = http.StatusBadGateway }, ReasonUpstreamError, ReasonTokenEndpoint},
		{"token endpoint hangs", func(f *fakeUpstream) { f.tokenHang = true }, ReasonUpstreamError, ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.with(func(f *fakeUpstream) {
				f.authError, f.tokenStatus, f.tokenHang, f.secret = "", 0, false, secret
				tc.set(f)
			})
			began := time.Now()
			loginFails(t, v, start, tc.reason, tc.audit)
			if d := time.Since(began); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// The upstream's error code is audited when it is a plain token.
	for _, e := range v.auditEvents() {
		if e.Reason == ReasonUpstreamError && e.Details["upstream_error"] != "server_error" {
			t.Errorf("upstream_error detail %q", e.Details["upstream_error"])
		}
	}
}

// TestTokenTimeoutBound: a hanging token endpoint is given up on within
// the configured timeout.
func TestTokenTimeoutBound(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Token = 400 * time.Millisecond
	v.add(cfg)
	f.with(func(f *fakeUpstream) { f.tokenHang = true })
	b := newBrowser(t)
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "", ""))
	began := time.Now()
	resp, _ := b.get(cb)
	d := time.Since(began)
	if resp.Request.URL.Path != "/failed" || d < 400*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("ended at %s after %v; want /failed after about 400ms", resp.Request.URL.Path, d)
	}
	if r := v.reasons(); !slices.Equal(r, []string{ReasonTimeout}) {
		t.Fatalf("audited %v", r)
	}
}

// TestDiscovery: metadata is checked, cached, refreshed and, when the
// upstream's discovery endpoint fails, the last good copy is used.
func TestDiscovery(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	start := v.startURL("fake", "a", assurance.Substantial, "", "")

	// Down before the first fetch: the attempt fails at Start.
	f.with(func(f *fakeUpstream) { f.discoveryDown = true })
	loginFails(t, v, start, ReasonUpstreamError, ReasonDiscovery)

	// Back up: fetched once and cached.
	f.with(func(f *fakeUpstream) { f.discoveryDown = false })
	v.clock.Add(DefaultRefetch)
	loginWorks(t, v, start)
	loginWorks(t, v, start)
	fetched := f.discoveryFetches.Load()

	// Down again after the cache expired: the stale copy still works.
	f.with(func(f *fakeUpstream) { f.discoveryDown = true })
	v.clock.Add(DefaultDiscoveryTTL)
	loginWorks(t, v, start)
	if f.discoveryFetches.Load() != fetched+1 {
		t.Fatalf("discovery fetched %d times, want %d", f.discoveryFetches.Load(), fetched+1)
	}

	// A document for another issuer is never used.
	f.with(func(f *fakeUpstream) {
		f.discoveryDown = false
		f.meta = map[string]any{"issuer": "https://evil.example"}
	})
	v2 := newVarde(t)
	v2.add(f.config(v2, "fake"))
	loginFails(t, v2, v2.startURL("fake", "a", assurance.Substantial, "", ""), ReasonUpstreamError, ReasonDiscovery)
}

// TestProbe: Probe reports an upstream whose discovery or keys fail, or
// whose token endpoint answers no OAuth error.
func TestProbe(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	p := v.add(f.config(v, "fake"))
	ctx := t.Context()
	if err := p.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	// Failing with an OAuth error is for logins to tell; the endpoint
	// is reached.
	f.with(func(f *fakeUpstream) { f.tokenStatus = http.StatusInternalServerError })
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("Probe with the token endpoint answering server errors: %v", err)
	}
	f.with(func(f *fakeUpstream) { f.tokenStatus, f.tokenBlocked = 0, true })
	if err := p.Probe(ctx); err == nil || !strings.Contains(err.Error(), "token endpoint answered 403") {
		t.Fatalf("Probe with a firewall refusing every token request: %v", err)
	}
	f.with(func(f *fakeUpstream) { f.tokenBlocked = false })
	if err := p.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	f.with(func(f *fakeUpstream) { f.published = nil })
	if err := p.Probe(ctx); err == nil || !strings.Contains(err.Error(), "jwks") {
		t.Fatalf("Probe with no keys: %v", err)
	}
	f.with(func(f *fakeUpstream) { f.discoveryDown = true })
	if err := p.Probe(ctx); err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Fatalf("Probe with discovery down: %v", err)
	}
	f.srv.Close()
	if err := p.Probe(ctx); err == nil {
		t.Fatal("Probe of a closed server succeeded")
	}
}

// TestStartFailures: when the login cannot even be sent to the
// upstream, the attempt goes straight back to the broker.
func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    func(c *Config)
		meta   map[string]any
		reason string
	}{
		{name: "PAR refused", cfg: func(c *Config) { c.UsePAR, c.ClientSecret = true, "wrong" }, reason: ReasonPAR},
		{name: "PAR configured, no endpoint", cfg: func(c *Config) { c.UsePAR = true },
			meta: map[string]any{"pushed_authorization_request_endpoint": nil}, reason: ReasonPAR},
		{name: "PAR required, no endpoint", meta: map[string]any{"pushed_authorization_request_endpoint": nil,
			"require_pushed_authorization_requests": true}, reason: ReasonDiscovery},
		{name: "no S256", meta: map[string]any{"code_challenge_methods_supported": []string{"plain"}}, reason: ReasonDiscovery},
		{name: "only HMAC ID tokens", meta: map[string]any{"id_token_signing_alg_values_supported": []string{"HS256", "none"}}, reason: ReasonDiscovery},
		{name: "auth method not offered", meta: map[string]any{"token_endpoint_auth_methods_supported": []string{"private_key_jwt"}}, reason: ReasonDiscovery},
		{name: "http endpoint elsewhere", meta: map[string]any{"token_endpoint": "http://token.example/token"}, reason: ReasonDiscovery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVarde(t)
			f := newFakeUpstream(t, v.clock)
			cfg := f.config(v, "fake")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			f.with(func(f *fakeUpstream) { f.meta = tc.meta })
			v.add(cfg)
			loginFails(t, v, v.startURL("fake", "a", assurance.Substantial, "", ""), ReasonUpstreamError, tc.reason)
			if n := f.tokenCalls.Load(); n != 0 {
				t.Fatalf("token endpoint called %d times", n)
			}
		})
	}
}

// TestPARRedirectNotFollowed: a PAR endpoint that answers 307, which
// would have the POST repeated with its client assertion wherever it
// points, fails the login's start; where it points hears nothing.
func TestPARRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(target.Close)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/par", http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.UsePAR = true
	f.with(func(f *fakeUpstream) {
		f.meta = map[string]any{"pushed_authorization_request_endpoint": redirect.URL + "/par"}
	})
	v.add(cfg)
	loginFails(t, v, v.startURL("fake", "a", assurance.Substantial, "", ""), ReasonUpstreamError, ReasonPAR)
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed: %d POSTs where it pointed", n)
	}
}

// TestPromptLogin: with PromptLogin the upstream is asked to
// authenticate afresh, with prompt=login and max_age=0 (which makes
// auth_time required), and an ID token from an older authentication, or
// one that does not say when the authentication was, is refused.
func TestPromptLogin(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	cfg.PromptLogin = true
	v.add(cfg)
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	loginWorks(t, v, start)
	f.with(func(f *fakeUpstream) {
		if f.lastAuth.Get("prompt") != "login" || f.lastAuth.Get("max_age") != "0" {
			t.Errorf("prompt = %q, max_age = %q", f.lastAuth.Get("prompt"), f.lastAuth.Get("max_age"))
		}
		f.claims = func(c map[string]any) { c["auth_time"] = v.clock.Now().Add(-time.Hour).Unix() }
	})
	loginFails(t, v, start, provider.ReasonAccountRefused, ReasonStaleAuthTime)
	// An upstream that reuses its session and leaves auth_time out is
	// not taken to have authenticated at iat.
	f.with(func(f *fakeUpstream) { f.claims = func(c map[string]any) { delete(c, "auth_time") } })
	loginFails(t, v, start, provider.ReasonAccountRefused, ReasonNoAuthTime)
}

// TestRelyingPartyAsksFreshLogin: without PromptLogin, a login whose
// relying party asked for a new authentication (prompt=login or
// max_age=0: provider.Attempt.Fresh) is sent with prompt=login and
// max_age=0 all the same, and held to it: the upstream's own single
// sign-on session, old or of unknown age, does not pass for the new
// login. A relying party's max_age goes on as it is, and makes auth_time
// required. Other logins ask neither.
func TestRelyingPartyAsksFreshLogin(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	sent := func() (prompt, maxAge string) {
		f.with(func(f *fakeUpstream) { prompt, maxAge = f.lastAuth.Get("prompt"), f.lastAuth.Get("max_age") })
		return prompt, maxAge
	}
	plain := v.startURL("fake", "a", assurance.Substantial, "", "")
	fresh := plain + "&fresh=1"
	withMaxAge := plain + "&max_age=30m"

	loginWorks(t, v, fresh)
	if p, m := sent(); p != "login" || m != "0" {
		t.Errorf("fresh: prompt = %q, max_age = %q; want login and 0", p, m)
	}
	loginWorks(t, v, withMaxAge)
	if p, m := sent(); p != "" || m != "1800" {
		t.Errorf("max_age 30m: prompt = %q, max_age = %q; want none and 1800", p, m)
	}

	// The upstream reuses a session an hour old.
	f.with(func(f *fakeUpstream) {
		f.claims = func(c map[string]any) { c["auth_time"] = v.clock.Now().Add(-time.Hour).Unix() }
	})
	loginFails(t, v, fresh, provider.ReasonAccountRefused, ReasonStaleAuthTime)
	// It does not say when the authentication was.
	f.with(func(f *fakeUpstream) { f.claims = func(c map[string]any) { delete(c, "auth_time") } })
	loginFails(t, v, fresh, provider.ReasonAccountRefused, ReasonNoAuthTime)
	loginFails(t, v, withMaxAge, provider.ReasonAccountRefused, ReasonNoAuthTime)
	// A login that asked nothing of the authentication's age: as before,
	// neither sent, and one without auth_time counts as a login at iat.
	loginWorks(t, v, plain)
	if p, m := sent(); p != "" || m != "" {
		t.Errorf("plain: prompt = %q, max_age = %q; want neither", p, m)
	}
}

// TestRelyingPartyMaxAgeHeld: an upstream that ignores a relying
// party's max_age and answers with its own older single sign-on session
// is refused (OIDC Core §3.1.2.1, §3.1.3.7 item 13), as for prompt=login:
// passed on, the login would reach a session the relying party's
// request cannot take, and the person would be sent to log in again, to
// the same session, without end. A session within max_age passes.
func TestRelyingPartyMaxAgeHeld(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	withMaxAge := v.startURL("fake", "a", assurance.Substantial, "", "") + "&max_age=30m"
	f.with(func(f *fakeUpstream) {
		f.claims = func(c map[string]any) { c["auth_time"] = v.clock.Now().Add(-20 * time.Minute).Unix() }
	})
	loginWorks(t, v, withMaxAge)
	f.with(func(f *fakeUpstream) {
		f.claims = func(c map[string]any) { c["auth_time"] = v.clock.Now().Add(-time.Hour).Unix() }
	})
	loginFails(t, v, withMaxAge, provider.ReasonAccountRefused, ReasonStaleAuthTime)
	// A max_age longer than a Duration holds is no limit, not one that
	// wraps around.
	f.with(func(f *fakeUpstream) {
		f.claims = func(c map[string]any) { c["auth_time"] = v.clock.Now().Add(-100 * 24 * time.Hour).Unix() }
	})
	loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "", "")+"&max_age=2562047h")
}

// TestLongMaxAgeReadableUpstream: a relying party's max_age, anyone's
// choice in a request they send through their browser, never makes a
// pushed request the upstream refuses, which would count against the
// upstream's health and let anyone make it down: one of more than
// 2^31-1 seconds (68 years), which some servers cannot read, goes as
// that. Rounding the longest the broker passes on up to whole seconds
// does not wrap it around either.
func TestLongMaxAgeReadableUpstream(t *testing.T) {
	for _, par := range []bool{false, true} {
		v := newVarde(t)
		f := newFakeUpstream(t, v.clock)
		f.with(func(f *fakeUpstream) { f.requirePAR = par })
		v.add(f.config(v, "fake"))
		for _, maxAge := range []string{"596523h14m8s", "2562047h47m16s"} {
			loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "", "")+"&max_age="+maxAge)
			f.with(func(f *fakeUpstream) {
				if got := f.lastAuth.Get("max_age"); got != "2147483647" {
					t.Errorf("PAR %t, max_age %s: sent %q, want 2147483647", par, maxAge, got)
				}
			})
		}
	}
}

// TestLoginHintKeptByDefault: the relying party's login_hint, which may
// be a national identity number, reaches an upstream only with
// ForwardLoginHint, whether its requests are pushed or not.
func TestLoginHintKeptByDefault(t *testing.T) {
	for _, par := range []bool{false, true} {
		v := newVarde(t)
		f := newFakeUpstream(t, v.clock)
		f.with(func(f *fakeUpstream) { f.requirePAR = par })
		v.add(f.config(v, "fake"))
		loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "nb", "01017012345"))
		f.with(func(f *fakeUpstream) {
			if f.lastAuth.Has("login_hint") || f.lastAuth.Get("ui_locales") != "nb" {
				t.Errorf("PAR %v: the upstream got %v", par, f.lastAuth)
			}
		})
		if strings.Contains(v.logs.String(), "01017012345") {
			t.Errorf("PAR %v: the hint was logged", par)
		}
	}
}

// TestPushedLoginHintRefused: the login hint comes from the relying
// party's request, which anyone can write. An upstream that refuses the
// pushed request because of it gets the request again without the hint,
// and the person logs in; only a refusal without a hint fails the login
// and counts against the upstream.
func TestPushedLoginHintRefused(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.requirePAR, f.parRefusesHint = true, true })
	cfg := f.config(v, "fake")
	cfg.ForwardLoginHint = true
	v.add(cfg)
	loginWorks(t, v, v.startURL("fake", "a", assurance.Substantial, "nb", "not-a-person"))
	f.with(func(f *fakeUpstream) {
		if f.lastAuth.Has("login_hint") || f.lastAuth.Get("ui_locales") != "nb" {
			t.Errorf("request used at the upstream: %v", f.lastAuth)
		}
	})
	if n := f.parCalls.Load(); n != 2 {
		t.Errorf("%d PAR requests, want 2: with the hint, then without", n)
	}
	f.with(func(f *fakeUpstream) { f.parStatus = http.StatusBadRequest })
	loginFails(t, v, v.startURL("fake", "b", assurance.Substantial, "nb", ""), ReasonUpstreamError, ReasonPAR)
}

// failingChallenges is the node's store of login state, failing to
// store any.
type failingChallenges struct{ store.Challenges }

func (failingChallenges) PutChallenge(context.Context, string, []byte, time.Time) error {
	return errors.New("disk full")
}

// TestNodeErrorNotCountedAgainstUpstream: when Varde itself cannot
// start the login (here, its store refuses the login state), the broker
// hears a node error, which does not count against the upstream.
func TestNodeErrorNotCountedAgainstUpstream(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	p, err := New(f.config(v, "fake"), Deps{HTTPClient: &http.Client{}, Challenges: failingChallenges{v.db},
		Finisher: v.fin, Pages: v.pages, Audit: v.audit, Now: v.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p.Register(v.mux)
	v.mu.Lock()
	v.providers["fake"] = p
	v.mu.Unlock()
	loginFails(t, v, v.startURL("fake", "a", assurance.Substantial, "", ""), provider.ReasonNodeError, ReasonInternal)
}

// TestJWKSRotationWhileProbed: health probes fetching the keys every few
// seconds do not hold back a login's refetch on a new kid, so the login
// itself picks up the upstream's rotation; a refetch held back within
// the interval of the last refetch does not count against the upstream.
func TestJWKSRotationWhileProbed(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	p := v.add(f.config(v, "fake"))
	start := v.startURL("fake", "a", assurance.Substantial, "", "")
	loginWorks(t, v, start)
	probe := func() {
		t.Helper()
		v.clock.Add(time.Second)
		if err := p.Probe(context.Background()); err != nil {
			t.Fatalf("probe: %v", err)
		}
	}
	probe()
	k2 := signingKey{kid: "k2", key: ecKey(t), alg: jose.ES256}
	f.with(func(f *fakeUpstream) { f.signing, f.published = k2, []signingKey{k2} })
	loginWorks(t, v, start)
	// A second rotation within the refetch interval of the login's
	// refetch, probes running: not charged to the upstream.
	probe()
	k3 := signingKey{kid: "k3", key: ecKey(t), alg: jose.ES256}
	f.with(func(f *fakeUpstream) { f.signing, f.published = k3, []signingKey{k3} })
	loginFails(t, v, start, "unverified_response", ReasonUnknownKey)
	before := f.jwksFetches.Load()
	for range 5 {
		loginFails(t, v, start, "unverified_response", ReasonUnknownKey)
	}
	if n := f.jwksFetches.Load(); n != before {
		t.Fatalf("JWKS fetched %d more times for logins within the refetch interval, want 0", n-before)
	}
	v.clock.Add(DefaultRefetch)
	probe()
	// The probe's fetch picked up k3 already.
	loginWorks(t, v, start)
}

// TestProbeRedirectedJWKS: a jwks_uri that redirects, even to the
// upstream's own keys, is not followed; the probe fails saying so.
func TestProbeRedirectedJWKS(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	redirect := httptest.NewServer(http.RedirectHandler(f.issuer+"/jwks", http.StatusMovedPermanently))
	t.Cleanup(redirect.Close)
	f.with(func(f *fakeUpstream) { f.meta = map[string]any{"jwks_uri": redirect.URL + "/jwks"} })
	p := v.add(f.config(v, "fake"))
	before := f.jwksFetches.Load()
	err := p.Probe(t.Context())
	if err == nil || !strings.Contains(err.Error(), "jwks: status 301: redirects are not followed") {
		t.Fatalf("Probe with a redirecting jwks_uri: %v", err)
	}
	if n := f.jwksFetches.Load(); n != before {
		t.Errorf("the redirect was followed: %d fetches of the keys", n-before)
	}
}

// TestProbeAnswerBounded: an upstream's answers are read only up to a
// bound, their header as their body: a jwks_uri that sends its keys with
// a header of a MiB fails the probe, and so does one that sends a GiB.
func TestProbeAnswerBounded(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		name, want string
		serve      func(f *fakeUpstream, w http.ResponseWriter, r *http.Request)
	}{
		{"a header of a MiB", "response headers exceeded", func(f *fakeUpstream, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Padding", big)
			f.jwks(w, r)
		}},
		{"a body of a GiB", "response is too large", func(f *fakeUpstream, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			for range 1 << 10 {
				if _, err := io.WriteString(w, big); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVarde(t)
			f := newFakeUpstream(t, v.clock)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.serve(f, w, r) }))
			t.Cleanup(srv.Close)
			f.with(func(f *fakeUpstream) { f.meta = map[string]any{"jwks_uri": srv.URL + "/jwks"} })
			p := v.add(f.config(v, "fake"))
			if err := p.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Probe: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// slowJWKS serves f's keys from another loopback server, each answer
// held back by the delay set, and says on fetching when a request came.
func slowJWKS(t *testing.T, f *fakeUpstream) (delay *atomic.Int64, fetching chan struct{}) {
	delay, fetching = new(atomic.Int64), make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetching <- struct{}{}:
		default:
		}
		select {
		case <-time.After(time.Duration(delay.Load())):
		case <-r.Context().Done():
			return
		}
		f.jwks(w, r)
	}))
	t.Cleanup(srv.Close)
	f.with(func(f *fakeUpstream) { f.meta = map[string]any{"jwks_uri": srv.URL + "/jwks"} })
	return delay, fetching
}

// TestJWKSWaitBounded: a login's refetch of the keys that waits for a
// health probe's slow fetch, and then fetches itself, takes at most one
// Timeouts.Request in all, and stops waiting when its request ends,
// without that counting against the upstream.
func TestJWKSWaitBounded(t *testing.T) {
	const request, slow = 2 * time.Second, 1500 * time.Millisecond
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	delay, fetching := slowJWKS(t, f)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Request = request
	p := v.add(cfg)
	ctx := t.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.keySet(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	probing := func() chan struct{} {
		t.Helper()
		for len(fetching) > 0 {
			<-fetching // the logins' own fetches
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.Probe(context.Background())
		}()
		<-fetching
		return done
	}
	delay.Store(int64(slow))

	probeDone := probing()
	began := time.Now()
	_, err = p.keySet(ctx, m, true)
	if took := time.Since(began); took > request+request/4 {
		t.Errorf("refetch after a probe's slow fetch took %v, want at most about Timeouts.Request (%v); err %v", took, request, err)
	}
	<-probeDone

	v.clock.Add(DefaultRefetch + time.Second)
	probeDone = probing()
	login, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	began = time.Now()
	_, err = p.keySet(login, m, true)
	if took := time.Since(began); took > slow/2 {
		t.Errorf("refetch of a cancelled login took %v, want it to stop waiting when cancelled", took)
	}
	if !errors.Is(err, errFetchWait) || !errors.Is(err, context.Canceled) {
		t.Errorf("refetch of a cancelled login: %v, want it to say it stopped waiting", err)
	}
	c := &checker{}
	_, rej := c.verify(login, nil, jose.ES256, "k9", func(context.Context, bool) (jose.JSONWebKeySet, error) { return jose.JSONWebKeySet{}, err })
	if rej == nil || rej.reason != ReasonJWKS || !rej.unverified {
		t.Errorf("rejection for a login cancelled while waiting: %+v, want %s not counted against the upstream", rej, ReasonJWKS)
	}
	<-probeDone
}

// TestJWKSFetchCutShortIsNotTheUpstreamFailing: a login's refetch that
// waited for a health probe's slow fetch has less than Timeouts.Request
// left for its own; when that runs out it is not recorded as the
// upstream failing, so the next login's refetch is not held back for
// Timeouts.Refetch, and is made with a whole Timeouts.Request.
func TestJWKSFetchCutShortIsNotTheUpstreamFailing(t *testing.T) {
	const request, slow = 2 * time.Second, 1500 * time.Millisecond
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	delay, fetching := slowJWKS(t, f)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Request = request
	p := v.add(cfg)
	ctx := t.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.keySet(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	drain := func() {
		for len(fetching) > 0 {
			<-fetching
		}
	}
	drain()
	delay.Store(int64(slow))
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		_ = p.Probe(context.Background())
	}()
	<-fetching
	// Waits about 1.5 s for the probe's fetch, then fetches with about
	// 0.5 s left, which the upstream's 1.5 s does not fit in.
	if _, err := p.keySet(ctx, m, true); !errors.Is(err, errFetchCut) {
		t.Errorf("refetch cut short by the login's time: %v, want it to say so, not the held keys as if refetched", err)
	}
	<-probeDone

	drain()
	delay.Store(int64(slow / 2))
	began := time.Now()
	_, err = p.keySet(ctx, m, true)
	if err != nil {
		t.Errorf("the next login's refetch: %v, want a fresh key set", err)
	}
	if len(fetching) != 1 || time.Since(began) < slow/2 {
		t.Errorf("the next login's refetch made %d fetches in %v, want one, waited for in full", len(fetching), time.Since(began))
	}

	// A login left with no keys or metadata by such a fetch is not
	// counted against the upstream.
	cut := fmt.Errorf("jwks: %w: %w", errFetchCut, context.DeadlineExceeded)
	c := &checker{}
	_, rej := c.verify(ctx, nil, jose.ES256, "k9", func(context.Context, bool) (jose.JSONWebKeySet, error) { return jose.JSONWebKeySet{}, cut })
	if rej == nil || rej.reason != ReasonJWKS || !rej.unverified {
		t.Errorf("rejection for keys cut short: %+v, want %s not counted against the upstream", rej, ReasonJWKS)
	}
	if rej := discoveryFailed(fmt.Errorf("discovery: %w: %w", errFetchCut, context.DeadlineExceeded)); !rej.unverified {
		t.Errorf("rejection for metadata cut short %+v counts against the upstream", rej)
	}
}

// TestJWKSProbeTimeoutIsRemembered: a health probe's fetch that runs
// out of the probe's own time, shorter than Timeouts.Request, is a
// failure of the upstream's as before: a login's refetch right after it
// is held back for Timeouts.Refetch.
func TestJWKSProbeTimeoutIsRemembered(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	delay, fetching := slowJWKS(t, f)
	cfg := f.config(v, "fake")
	cfg.Timeouts.Request = 2 * time.Second
	p := v.add(cfg)
	ctx := t.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.keySet(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	delay.Store(int64(time.Second))
	probe, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Probe(probe); err == nil {
		t.Fatal("probe of a slow jwks_uri passed")
	}
	for len(fetching) > 0 {
		<-fetching
	}
	if _, err := p.keySet(ctx, m, true); !errors.Is(err, errRefetchHeld) {
		t.Fatalf("refetch right after the probe's fetch timed out: %v, want it held back", err)
	}
	if len(fetching) != 0 {
		t.Errorf("a login refetched the keys right after the probe's fetch timed out")
	}
}

// TestJWKSWaitLogSaysNoFetchWasMade: a login whose keys are due for a
// refresh while a health probe's slow fetch runs, and whose request ends
// while it waits, uses the keys held, and the log says it gave up
// waiting, not that a fetch failed.
func TestJWKSWaitLogSaysNoFetchWasMade(t *testing.T) {
	const slow = 1500 * time.Millisecond
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	delay, fetching := slowJWKS(t, f)
	p := v.add(f.config(v, "fake"))
	ctx := t.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.keySet(ctx, m, false); err != nil {
		t.Fatal(err)
	}
	for len(fetching) > 0 {
		<-fetching
	}
	v.clock.Add(DefaultJWKSTTL + time.Second)
	delay.Store(int64(slow))
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		_ = p.Probe(context.Background())
	}()
	<-fetching
	login, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := p.keySet(login, m, false); err != nil {
		t.Errorf("keys for a login that stopped waiting: %v, want the keys held", err)
	}
	<-probeDone
	logs := v.logs.String()
	if strings.Contains(logs, "jwks fetch failed") || !strings.Contains(logs, "gave up waiting for another upstream jwks fetch; using cached keys") {
		t.Errorf("log of a login that stopped waiting:\n%s", logs)
	}
}

// TestDiscoveryWaitEndsWithRequest: a login that waits for a health
// probe's slow first fetch of the metadata stops waiting when its
// request ends, and that does not count against the upstream.
func TestDiscoveryWaitEndsWithRequest(t *testing.T) {
	const slow = 1500 * time.Millisecond
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	f.with(func(f *fakeUpstream) { f.discoveryDelay = slow })
	p := v.add(f.config(v, "fake"))
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		_ = p.Probe(context.Background())
	}()
	for f.discoveryFetches.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	login, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	_, err := p.discovery(login)
	if took := time.Since(began); took > slow/2 {
		t.Errorf("discovery for a cancelled login took %v, want it to stop waiting when cancelled", took)
	}
	if !errors.Is(err, errFetchWait) || !errors.Is(err, context.Canceled) {
		t.Errorf("discovery for a cancelled login: %v, want it to say it stopped waiting", err)
	}
	if rej := discoveryFailed(err); !rej.unverified {
		t.Errorf("rejection %+v counts against the upstream", rej)
	}
	<-probeDone
}

// TestJWKSRefetchFailureIsJWKSError: a kid the keys held do not name
// makes a refetch; when the upstream answers that with an error, the
// login fails as the keys not being fetched (jwks_error, with the
// cause), not as a bad signature over the keys held. A refetch then held
// back by that failure leaves the kid unknown (unknown_key).
func TestJWKSRefetchFailureIsJWKSError(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		f.jwks(w, r)
	}))
	t.Cleanup(srv.Close)
	f.with(func(f *fakeUpstream) { f.meta = map[string]any{"jwks_uri": srv.URL + "/jwks"} })
	p := v.add(f.config(v, "fake"))
	ctx := t.Context()
	m, err := p.discovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(ctx context.Context, refetch bool) (jose.JSONWebKeySet, error) { return p.keySet(ctx, m, refetch) }
	if _, err := keys(ctx, false); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	c := &checker{}
	_, rej := c.verify(ctx, nil, jose.ES256, "k9", keys)
	if rej == nil || rej.reason != ReasonJWKS || rej.unverified || !strings.Contains(rej.msg, "status 502") {
		t.Fatalf("rejection when the refetch for a new kid fails: %+v, want %s counted against the upstream, naming the cause", rej, ReasonJWKS)
	}
	_, rej = c.verify(ctx, nil, jose.ES256, "k9", keys)
	if rej == nil || rej.reason != ReasonUnknownKey || !strings.Contains(rej.msg, "status 502") {
		t.Errorf("rejection when the refetch is held back after a failure: %+v, want %s naming the failure", rej, ReasonUnknownKey)
	}
}

// TestProbeWaitHonoursItsTimeout: a health probe that finds a login's
// slow fetch of the metadata or keys under way waits for it only until
// its own deadline, and fails then, so the monitor's timeout is the
// probe's.
func TestProbeWaitHonoursItsTimeout(t *testing.T) {
	const slow, timeout = 2 * time.Second, 300 * time.Millisecond
	t.Run("metadata", func(t *testing.T) {
		v := newVarde(t)
		f := newFakeUpstream(t, v.clock)
		f.with(func(f *fakeUpstream) { f.discoveryDelay = slow })
		p := v.add(f.config(v, "fake"))
		loginDone := make(chan struct{})
		go func() {
			defer close(loginDone)
			_, _ = p.discovery(context.Background())
		}()
		for f.discoveryFetches.Load() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		probe, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		began := time.Now()
		err := p.Probe(probe)
		if took := time.Since(began); took > slow/2 {
			t.Errorf("probe waiting for a login's metadata fetch took %v, want about its timeout %v", took, timeout)
		}
		if err == nil {
			t.Error("probe that ran out of time waiting passed")
		}
		<-loginDone
	})
	t.Run("keys", func(t *testing.T) {
		v := newVarde(t)
		f := newFakeUpstream(t, v.clock)
		delay, fetching := slowJWKS(t, f)
		p := v.add(f.config(v, "fake"))
		ctx := t.Context()
		m, err := p.discovery(ctx)
		if err != nil {
			t.Fatal(err)
		}
		delay.Store(int64(slow))
		loginDone := make(chan struct{})
		go func() {
			defer close(loginDone)
			_, _ = p.keySet(context.Background(), m, false)
		}()
		<-fetching
		probe, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		began := time.Now()
		err = p.Probe(probe)
		if took := time.Since(began); took > slow/2 {
			t.Errorf("probe waiting for a login's key fetch took %v, want about its timeout %v", took, timeout)
		}
		if err == nil {
			t.Error("probe that ran out of time waiting passed")
		}
		<-loginDone
	})
}

// TestBrowserCookieUnderIssuerPath: a Varde served under its issuer's
// path (a redirect URI of that path followed by CallbackPath) sets the
// browser cookie with that Path, which covers the callback and the
// broker's pages that start a login, and no more of the host. Over
// HTTPS its name has the __Host- prefix at the root and __Secure- under
// a path, as the session cookie's (session.SecureName); over plain HTTP
// it has none.
func TestBrowserCookieUnderIssuerPath(t *testing.T) {
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	for _, c := range []struct{ origin, base, path, name string }{
		{"https://id.varde.example", "", "/", "__Host-varde_upstream"},
		{"https://id.varde.example", "/eid", "/eid", "__Secure-varde_upstream"},
		{"https://id.varde.example", "/a/b", "/a/b", "__Secure-varde_upstream"},
		{"http://localhost:8080", "", "/", "varde_upstream"},
		{"http://localhost:8080", "/eid", "/eid", "varde_upstream"},
	} {
		cfg := f.config(v, "fake")
		cfg.RedirectURI = c.origin + c.base + CallbackPath("fake")
		p, err := New(cfg, Deps{Challenges: v.chal, Finisher: v.fin})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.setBrowserCookie(rec, strings.Repeat("x", 43))
		secure := strings.HasPrefix(c.origin, "https:")
		if got := rec.Result().Cookies(); len(got) != 1 || got[0].Name != c.name || got[0].Path != c.path || got[0].Secure != secure {
			t.Errorf("%s%s: cookies %+v, want one named %s with Path %s, Secure %v", c.origin, c.base, got, c.name, c.path, secure)
		}
	}
}

// TestBrowserCookieOverHTTPS: over HTTPS the browser cookie is a
// __Host- cookie, and a varde_upstream cookie without the prefix, which
// a sibling subdomain or a plain-HTTP page of the host could have set to
// a value it knows (cookie tossing), binds no login: Start gives the
// browser a value of its own, and a callback that brings only the
// tossed cookie is refused.
func TestBrowserCookieOverHTTPS(t *testing.T) {
	v := newVarde(t)
	v.overTLS()
	f := newFakeUpstream(t, v.clock)
	v.add(f.config(v, "fake"))
	b := v.newBrowser()
	home, _ := url.Parse(v.srv.URL + "/")
	tossed := strings.Repeat("t", 43)
	b.c.Jar.SetCookies(home, []*http.Cookie{{Name: BrowserCookie, Value: tossed, Path: "/"}})
	cb := b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "", ""))
	var set *http.Cookie
	for _, c := range b.c.Jar.Cookies(home) {
		if c.Name == "__Host-"+BrowserCookie {
			set = c
		}
	}
	if set == nil || set.Value == tossed {
		t.Fatalf("cookies after Start %v, want a __Host-%s of Varde's own value", b.c.Jar.Cookies(home), BrowserCookie)
	}
	// The tossed cookie alone does not carry the login.
	only := v.newBrowser()
	only.c.Jar.SetCookies(home, []*http.Cookie{{Name: BrowserCookie, Value: tossed, Path: "/"}})
	if resp, _ := only.get(cb); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback with the tossed cookie only: %d", resp.StatusCode)
	}
	if r := v.reasons(); !slices.Equal(r, []string{ReasonBrowserMismatch}) {
		t.Fatalf("audited %v", r)
	}
	if path, body := b.login(v.startURL("fake", "b", assurance.Substantial, "", "")); path != "/finished" {
		t.Fatalf("login ended at %s: %.200s; audited %v", path, body, v.reasons())
	}
}
