package oidcup

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// brokered is an upstream behind Varde's real broker, whose health
// monitor's probes of it pass: only login outcomes can change its state.
type brokered struct {
	v   *varde
	f   *fakeUpstream
	mon *health.Monitor
}

func newBrokered(t *testing.T, configure ...func(*Config)) *brokered {
	t.Helper()
	return newBrokeredWith(t, nil, configure...)
}

// newBrokeredWith is newBrokered whose provider's dependencies deps
// changes first, if not nil.
func newBrokeredWith(t *testing.T, deps func(*Deps, *varde), configure ...func(*Config)) *brokered {
	t.Helper()
	v := newVarde(t)
	f := newFakeUpstream(t, v.clock)
	cfg := f.config(v, "fake")
	for _, c := range configure {
		c(&cfg)
	}
	mon, err := health.NewMonitor(health.Options{Now: v.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Add("fake", health.PingProber(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if err := mon.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := mon.State("fake"); s != health.Up {
		t.Fatalf("fake is %s after its probes passed", s)
	}
	b := &broker.Broker{AuthRequests: v.db, Clients: v.db, Persons: v.db,
		Sessions: &session.Manager{Store: v.db, Lifetime: time.Hour, Now: v.clock.Now}, Audit: v.audit, Pages: v.pages,
		Health: mon, AccountURL: "/account", Metrics: broker.NewMetrics(prometheus.NewRegistry()), Now: v.clock.Now,
		Log: v.audit.Log}
	d := Deps{Challenges: v.db, Finisher: b, Pages: v.pages, Audit: v.audit, Now: v.clock.Now}
	if deps != nil {
		deps(&d, v)
	}
	p, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	p.Register(v.mux)
	b.Providers = []provider.Provider{p}
	b.Register(v.mux)
	return &brokered{v: v, f: f, mon: mon}
}

// startURL starts an account login through the upstream at the broker.
func (bk *brokered) startURL() string { return bk.v.srv.URL + "/login/start?provider=fake" }

// offered reports whether the login page offers the upstream.
func (bk *brokered) offered(t *testing.T) bool {
	t.Helper()
	_, body := newBrowser(t).get(bk.v.srv.URL + "/login")
	return strings.Contains(body, `id="provider-fake" href=`)
}

// forge starts a login and, from the same browser, sends the callback
// with that login's state and the parameters q instead of going to the
// upstream. It returns where Varde sends the browser.
func (bk *brokered) forge(t *testing.T, q url.Values) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(bk.startURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("state") == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q.Set("state", loc.Query().Get("state"))
	resp, err = c.Get(bk.v.redirectURI("fake") + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}

// authFailures lists the reasons of the failed authentication events
// of the given method ("upstream" for this package's, "" for the
// broker's).
func (bk *brokered) authFailures(method string) []string {
	var out []string
	for _, e := range bk.v.auditEvents() {
		if e.Type == broker.EventAuthentication && e.Result == store.ResultFailure && e.Details["method"] == method {
			out = append(out, e.Reason)
		}
	}
	return out
}

// TestForgedCallbackNotCountedAsOutage: anyone can start a login and
// send its callback with whatever they like in it. However many such
// callbacks arrive, the upstream stays up and offered to everyone; each
// is audited with its precise reason, and the sender is offered the
// choice of providers again.
func TestForgedCallbackNotCountedAsOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    func(issuer string) url.Values
		// audit is this package's reason; tokenCalls whether the code
		// is taken to the upstream's token endpoint.
		audit      string
		tokenCalls bool
		// waf puts a firewall in front of the token endpoint; strict
		// makes it answer invalid_request to a code of the wrong shape.
		waf, strict bool
	}{
		{name: "server_error", audit: ReasonUpstreamError,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "error": {"server_error"}} }},
		{name: "temporarily_unavailable", audit: ReasonUpstreamError,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "error": {"temporarily_unavailable"}} }},
		{name: "another issuer", audit: ReasonMixUp,
			q: func(string) url.Values { return url.Values{"iss": {"https://evil.example"}, "code": {"forged"}} }},
		{name: "no code", audit: ReasonNoCode,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}} }},
		{name: "made-up code", audit: ReasonInvalidGrant, tokenCalls: true,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "code": {"forged"}} }},
		{name: "code the upstream calls malformed", audit: ReasonInvalidGrant, tokenCalls: true, strict: true,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "code": {"not!a!code"}} }},
		{name: "code a firewall refuses", audit: ReasonTokenRefused, tokenCalls: true, waf: true,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "code": {"<script>"}} }},
		{name: "oversized code", audit: ReasonMalformedCode,
			q: func(iss string) url.Values {
				return url.Values{"iss": {iss}, "code": {strings.Repeat("A", maxCodeLength+1)}}
			}},
		{name: "code with a control character", audit: ReasonMalformedCode,
			q: func(iss string) url.Values { return url.Values{"iss": {iss}, "code": {"abc\x00def"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newBrokered(t)
			bk.f.with(func(f *fakeUpstream) { f.tokenWAF, f.strictCode = tc.waf, tc.strict })
			n := 2 * bk.mon.Config().MinLogins
			for range n {
				if next := bk.forge(t, tc.q(bk.f.issuer)); next != "/login?err=failed&from=fake&req=" {
					t.Fatalf("forged callback sent the browser to %q, want the choice of providers", next)
				}
			}
			if s := bk.mon.State("fake"); s != health.Up {
				t.Errorf("after %d forged callbacks the upstream is %s, want up", n, s)
			}
			if !bk.offered(t) {
				t.Error("the login page no longer offers the upstream")
			}
			wantCalls := 0
			if tc.tokenCalls {
				wantCalls = n
			}
			if got := int(bk.f.tokenCalls.Load()); got != wantCalls {
				t.Errorf("%d token requests, want %d", got, wantCalls)
			}
			if got := bk.authFailures(Method); len(got) != n || slices.IndexFunc(got, func(r string) bool { return r != tc.audit }) >= 0 {
				t.Errorf("audited %v, want %d × %s", got, n, tc.audit)
			}
			if got := bk.authFailures(""); len(got) != n || slices.IndexFunc(got, func(r string) bool { return r != provider.ReasonUnverifiedResponse }) >= 0 {
				t.Errorf("broker audited %v, want %d × %s", got, n, provider.ReasonUnverifiedResponse)
			}
		})
	}
}

// TestUpstreamServerFailureCountedAsOutage: when the upstream's token
// endpoint fails for real logins, answering 500 or not answering in
// time, the upstream goes down and is no longer offered, though its
// probes pass.
func TestUpstreamServerFailureCountedAsOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(*fakeUpstream)
	}{
		{"500", func(f *fakeUpstream) { f.tokenStatus = http.StatusInternalServerError }},
		{"timeout", func(f *fakeUpstream) { f.tokenHang = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newBrokered(t, func(c *Config) { c.Timeouts.Token = 100 * time.Millisecond })
			bk.f.with(tc.fault)
			for range bk.mon.Config().MinLogins {
				if path, body := newBrowser(t).login(bk.startURL()); path != "/login" {
					t.Fatalf("login ended at %s: %.200s", path, body)
				}
			}
			if s := bk.mon.State("fake"); s != health.Down {
				t.Errorf("after %d failed token requests the upstream is %s, want down", bk.mon.Config().MinLogins, s)
			}
			if bk.offered(t) {
				t.Error("the login page still offers the upstream")
			}
			if got := bk.authFailures(""); len(got) == 0 || got[0] != ReasonUpstreamError {
				t.Errorf("broker audited %v", got)
			}
		})
	}
}

// TestRefusedAccountNotCountedAsOutage: an upstream that answers with
// valid ID tokens stays up and offered to everyone while one person, whose
// account there Varde cannot use, tries again and again: each refusal is
// audited with its precise reason, the broker's as "account_refused", and
// that account weighs as one failed login among everyone else's.
func TestRefusedAccountNotCountedAsOutage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims func(c map[string]any, now time.Time)
		audit  string
	}{
		{name: "no identifier", audit: ReasonNoIdentifier,
			claims: func(c map[string]any, _ time.Time) { delete(c, "pid") }},
		{name: "invalid identifier", audit: ReasonInvalidIdentifier,
			claims: func(c map[string]any, _ time.Time) { c["pid"] = flipCheckDigit(c["pid"].(string)) }},
		{name: "identifier of a scheme not accepted", audit: ReasonInvalidIdentifier,
			claims: func(c map[string]any, _ time.Time) {
				c["pid"] = map[string]string{"scheme": "se:pnr", "value": "196408233234"}
			}},
		{name: "acr of an authenticator not mapped", audit: ReasonUnknownACR,
			claims: func(c map[string]any, _ time.Time) { c["acr"] = "urn:fake:loa:low" }},
		{name: "NUL in a name", audit: ReasonNotText,
			claims: func(c map[string]any, _ time.Time) { c["given_name"] = "Ka\x00ri" }},
		{name: "session reused", audit: ReasonStaleAuthTime,
			claims: func(c map[string]any, now time.Time) { c["auth_time"] = now.Add(-time.Hour).Unix() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newBrokered(t)
			n := bk.mon.Config().MinLogins
			for range n - 1 {
				if path, body := newBrowser(t).login(bk.startURL()); path != "/account" {
					t.Fatalf("a good login ended at %s: %.200s", path, body)
				}
			}
			bk.f.with(func(f *fakeUpstream) {
				f.claims = func(c map[string]any) { c["sub"] = "the-person"; tc.claims(c, bk.v.clock.Now()) }
			})
			for range 2 * n {
				if path, body := newBrowser(t).login(bk.startURL()); path != "/login" {
					t.Fatalf("the refused login ended at %s: %.200s", path, body)
				}
			}
			if s := bk.mon.State("fake"); s != health.Up {
				t.Errorf("after one account was refused %d times the upstream is %s, want up", 2*n, s)
			}
			if !bk.offered(t) {
				t.Error("the login page no longer offers the upstream")
			}
			if got := bk.authFailures(Method); len(got) != 2*n || slices.IndexFunc(got, func(r string) bool { return r != tc.audit }) >= 0 {
				t.Errorf("audited %v, want %d × %s", got, 2*n, tc.audit)
			}
			if got := bk.authFailures(""); len(got) != 2*n || slices.IndexFunc(got, func(r string) bool { return r != provider.ReasonAccountRefused }) >= 0 {
				t.Errorf("broker audited %v, want %d × %s", got, 2*n, provider.ReasonAccountRefused)
			}
		})
	}
}

// TestRefusedAccountsCountedAsOutage: when every account is refused
// alike (here the upstream now sends an acr Varde's configuration does
// not map), the upstream is failing everyone: it goes down, is no longer
// offered, and its state says the cause is refused accounts.
func TestRefusedAccountsCountedAsOutage(t *testing.T) {
	bk := newBrokered(t)
	var people atomic.Int64
	bk.f.with(func(f *fakeUpstream) {
		f.claims = func(c map[string]any) {
			c["sub"], c["acr"] = fmt.Sprint("person-", people.Add(1)), "urn:fake:loa:renamed"
		}
	})
	for range bk.mon.Config().MinLogins {
		if path, body := newBrowser(t).login(bk.startURL()); path != "/login" {
			t.Fatalf("login ended at %s: %.200s", path, body)
		}
	}
	st, _ := bk.mon.Status("fake")
	if st.State != health.Down || st.Reason != health.ReasonLoginRefusals {
		t.Errorf("after %d accounts were refused the upstream is %s (%s), want down (%s)",
			bk.mon.Config().MinLogins, st.State, st.Reason, health.ReasonLoginRefusals)
	}
	if bk.offered(t) {
		t.Error("the login page still offers the upstream")
	}
	if got := bk.authFailures(Method); len(got) == 0 || got[0] != ReasonUnknownACR {
		t.Errorf("audited %v", got)
	}
}

// TestBrowserGoneNotCountedAsOutage: a person whose browser goes away
// while Varde talks to the upstream for them (anyone can start logins
// and hang up) says nothing about the upstream. The pushed request and
// the code exchange are carried through within their own timeouts, as
// the upstream has already been asked, and the upstream stays up.
func TestBrowserGoneNotCountedAsOutage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		configure func(*Config)
		// hangUp runs a login whose browser goes away while Varde waits
		// for the upstream.
		hangUp func(t *testing.T, bk *brokered)
		// calls counts the upstream's requests hangUp waits for.
		calls func(f *fakeUpstream) int64
	}{
		{name: "pushing the request", configure: func(c *Config) { c.UsePAR = true },
			hangUp: func(t *testing.T, bk *brokered) {
				ctx, cancel := context.WithCancel(t.Context())
				// Gone while the upstream works on the push.
				bk.f.with(func(f *fakeUpstream) { f.onPAR = cancel })
				bk.v.mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, bk.startURL(), nil))
			},
			calls: func(f *fakeUpstream) int64 { return f.parCalls.Load() }},
		{name: "redeeming the code", configure: func(*Config) {},
			hangUp: func(t *testing.T, bk *brokered) {
				b := newBrowser(t)
				cb := b.callbackURL(bk.startURL())
				ctx, cancel := context.WithCancel(t.Context())
				// Gone while the token endpoint works on the code.
				bk.f.with(func(f *fakeUpstream) { f.claims = func(map[string]any) { cancel() } })
				r := httptest.NewRequestWithContext(ctx, http.MethodGet, cb, nil)
				for _, c := range b.c.Jar.Cookies(r.URL) {
					r.AddCookie(c)
				}
				bk.v.mux.ServeHTTP(httptest.NewRecorder(), r)
			},
			calls: func(f *fakeUpstream) int64 { return f.tokenCalls.Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bk := newBrokered(t, tc.configure)
			n := bk.mon.Config().MinLogins
			for range n {
				tc.hangUp(t, bk)
			}
			if s := bk.mon.State("fake"); s != health.Up {
				t.Errorf("after %d browsers went away the upstream is %s, want up", n, s)
			}
			// The login state of a login nobody waits for may not be
			// stored: this node's failure, not the upstream's.
			if got := bk.authFailures(""); slices.IndexFunc(got, func(r string) bool { return r != provider.ReasonNodeError }) >= 0 {
				t.Errorf("broker audited failures %v; upstream audited %v", got, bk.authFailures(Method))
			}
			if got := tc.calls(bk.f); got != int64(n) {
				t.Errorf("%d requests reached the upstream, want %d", got, n)
			}
		})
	}
}

// TestChangedNonceNotCountedAsOutage: someone who changes the nonce in
// the authorization request on its way through their browser, and logs
// in at the upstream with their own account, brings back a validly
// signed ID token with the wrong nonce. However often, the upstream
// stays up and offered: the login is refused as "bad_nonce", and the
// broker hears of an unverified response. A request pushed by PAR never
// passes through the browser, so there a wrong nonce is the upstream's
// own and counts against it.
func TestChangedNonceNotCountedAsOutage(t *testing.T) {
	bk := newBrokered(t)
	bk.changedOnTheWay(t, "nonce", "the-attackers-own", ReasonBadNonce)

	pushed := newBrokered(t, func(c *Config) { c.UsePAR = true })
	pushed.f.with(func(f *fakeUpstream) { f.claims = func(c map[string]any) { c["nonce"] = "not-the-nonce" } })
	for range pushed.mon.Config().MinLogins {
		if path, body := newBrowser(t).login(pushed.startURL()); path != "/login" {
			t.Fatalf("the pushed login ended at %s: %.200s", path, body)
		}
	}
	if s := pushed.mon.State("fake"); s != health.Down {
		t.Errorf("an upstream that answers pushed requests with the wrong nonce is %s, want down", s)
	}
}

// TestScopeChangedNotCountedAsOutage: whoever holds the browser can take
// openid out of the scope of an authorization request on its way to the
// upstream, and log in there with their own account. The upstream then
// rightly answers as an OAuth server, with no ID token: the login is
// refused ("no_id_token"), and, as for a changed nonce, the broker hears
// of an unverified response; the upstream stays up.
func TestScopeChangedNotCountedAsOutage(t *testing.T) {
	newBrokered(t).changedOnTheWay(t, "scope", "profile", ReasonNoIDToken)
}

// changedOnTheWay runs logins in browsers that set param of the
// authorization request to value on its way to the upstream, and checks
// that each is refused for reason, that the broker hears of unverified
// responses, and that the upstream stays up and offered.
func (bk *brokered) changedOnTheWay(t *testing.T, param, value, reason string) {
	t.Helper()
	n := 2 * bk.mon.Config().MinLogins
	for range n {
		b := newBrowser(t)
		check := b.c.CheckRedirect
		b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if q := req.URL.Query(); q.Has(param) {
				q.Set(param, value)
				req.URL.RawQuery = q.Encode()
			}
			return check(req, via)
		}
		if path, body := b.login(bk.startURL()); path != "/login" {
			t.Fatalf("the login ended at %s: %.200s", path, body)
		}
	}
	if s := bk.mon.State("fake"); s != health.Up {
		t.Errorf("after %d logins with %s changed the upstream is %s, want up", n, param, s)
	}
	if !bk.offered(t) {
		t.Error("the login page no longer offers the upstream")
	}
	if got := bk.authFailures(Method); len(got) != n || slices.IndexFunc(got, func(r string) bool { return r != reason }) >= 0 {
		t.Errorf("audited %v, want %d × %s", got, n, reason)
	}
	if got := bk.authFailures(""); len(got) != n || slices.IndexFunc(got, func(r string) bool { return r != provider.ReasonUnverifiedResponse }) >= 0 {
		t.Errorf("broker audited %v, want %d × %s", got, n, provider.ReasonUnverifiedResponse)
	}
}

// TestInjectedCodeNotCountedAsOutage: at an upstream without PKCE
// (RFC 8414 §2: its metadata lists no code_challenge_methods_supported),
// anyone can bring the code of one of their own pushed logins back with
// the state of another (RFC 9700 §4.5, code injection). The upstream
// redeems it, and the nonce in its ID token is the other login's. The
// code came through the browser, so that wrong nonce is no evidence
// against the upstream, pushed or not: however often, it stays up.
func TestInjectedCodeNotCountedAsOutage(t *testing.T) {
	bk := newBrokered(t, func(c *Config) { c.UsePAR = true })
	bk.f.with(func(f *fakeUpstream) {
		f.ignorePKCE = true
		f.meta = map[string]any{"code_challenge_methods_supported": nil}
	})
	n := bk.mon.Config().MinLogins
	for range n {
		b := newBrowser(t)
		own, err := url.Parse(b.callbackURL(bk.startURL()))
		if err != nil {
			t.Fatal(err)
		}
		other, err := url.Parse(b.callbackURL(bk.startURL()))
		if err != nil {
			t.Fatal(err)
		}
		q := other.Query()
		q.Set("code", own.Query().Get("code"))
		other.RawQuery = q.Encode()
		if path, body := b.login(other.String()); path != "/login" {
			t.Fatalf("the login ended at %s: %.200s", path, body)
		}
	}
	if s := bk.mon.State("fake"); s != health.Up {
		t.Errorf("after %d injected codes the upstream is %s, want up", n, s)
	}
	if got := bk.authFailures(Method); len(got) != n || slices.IndexFunc(got, func(r string) bool { return r != ReasonBadNonce }) >= 0 {
		t.Errorf("audited %v, want %d × %s", got, n, ReasonBadNonce)
	}
}
