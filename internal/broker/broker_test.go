package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/broker"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/web"
)

// staticProvider is a provider that can deliver up to max; Start
// redirects to a marker URL.
type staticProvider struct {
	id  string
	max assurance.Level
}

func (p staticProvider) Info() provider.Info {
	return provider.Info{ID: p.id, Name: map[string]string{"en": "Provider " + p.id}, MaxLevel: p.max}
}

func (p staticProvider) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) {
	to := "/started/" + p.id + "?attempt=" + a.ID + "&min=" + a.MinLevel.String()
	if a.Fresh {
		to += "&fresh=1"
	}
	if a.MaxAge != 0 {
		to += "&max_age=" + a.MaxAge.String()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

type fixture struct {
	b   *broker.Broker
	st  store.Store
	mux *http.ServeMux
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pages, err := httpx.NewPages(web.Templates, web.Locales, []httpx.Language{{Tag: "en", Name: "English"}, {Tag: "nb", Name: "Norsk"}, {Tag: "da", Name: "Dansk"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, mux: http.NewServeMux(), now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	now := func() time.Time { return f.now }
	f.b = &broker.Broker{
		Providers:    []provider.Provider{staticProvider{"weak", assurance.Substantial}, staticProvider{"strong", assurance.High}},
		AuthRequests: st, Clients: st, Persons: st,
		Sessions:   &session.Manager{Store: st, Lifetime: time.Hour, Now: now},
		Challenges: st,
		Audit:      &audit.Log{Store: st, Log: log, Now: now},
		Pages:      pages,
		// The OpenID side's answer, as it gives it when it cannot issue
		// the code here; package oidc and the app tests cover the rest.
		Continue: func(_ context.Context, _ *store.Client, req *store.AuthRequest, _ *store.Session, save func(...*store.AuditEvent) error) (string, error) {
			if err := save(); err != nil {
				return "", err
			}
			return "/authorize/resume?req=" + req.ID, nil
		},
		AccountURL: "/account",
		Metrics:    broker.NewMetrics(prometheus.NewRegistry()), Now: now, Log: log,
	}
	f.b.Register(f.mux)
	must(t, st.PutClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone, RedirectURIs: []string{"https://bank.example/cb"}}))
	must(t, st.CreatePerson(ctx, &store.Person{ID: "p1", WebAuthnID: []byte("01234567890123456789012345678901"), GivenName: "Ola",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}}, ProofingLevel: "high", CreatedAt: f.now}))
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) request(t *testing.T, id string, acr ...string) {
	t.Helper()
	must(t, f.st.CreateAuthRequest(context.Background(), &store.AuthRequest{
		ID: id, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1,
		ACRValues: acr, CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
}

// get is a GET from the browser the broker sent to path: one that holds
// the cookie binding the notice path carries, if any.
func (f *fixture) get(path string) *httptest.ResponseRecorder {
	return f.getIn(path, "")
}

// getIn is get from a browser that asks for pages in lang.
func (f *fixture) getIn(path, lang string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	if c := broker.NoticeCookieFor(f.b, path); c != nil {
		r.AddCookie(c)
	}
	f.mux.ServeHTTP(w, r)
	return w
}

// sessionCookies are the cookies w sets but the one binding a notice.
func sessionCookies(w *httptest.ResponseRecorder) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name != broker.NoticeCookie {
			out = append(out, c)
		}
	}
	return out
}

func (f *fixture) events(t *testing.T) []*store.AuditEvent {
	t.Helper()
	ev, err := f.st.ListAudit(context.Background(), 0, 100)
	must(t, err)
	return ev
}

func TestLoginPageListsOnlyProvidersThatMeetTheLevel(t *testing.T) {
	f := newFixture(t)
	f.request(t, "any")
	f.request(t, "high", assurance.ACRHigh)
	tests := []struct {
		req       string
		want, not []string
	}{
		{"any", []string{"Provider weak", "Provider strong", "Test Bank"}, nil},
		{"high", []string{"Provider strong"}, []string{"Provider weak"}},
	}
	for _, tt := range tests {
		w := f.get("/login?req=" + tt.req)
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", tt.req, w.Code)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: page lacks %q", tt.req, s)
			}
		}
		for _, s := range tt.not {
			if strings.Contains(body, s) {
				t.Errorf("%s: page offers %q, which cannot meet the level", tt.req, s)
			}
		}
	}
}

// The login page's Cancel is a POST form to the OpenID endpoints' cancel
// path, the one that ends the login; a GET of it only asks.
func TestLoginPageCancelPostsToTheCancelEndpoint(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	body := f.get("/login?req=r1").Body.String()
	want := `<form method="post" action="` + oidc.PathCancel + `?req=r1">`
	if !strings.Contains(body, want) {
		t.Fatalf("login page has no %s; page:\n%s", want, body)
	}
}

func TestStartHandsTheAttemptToTheChosenProvider(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1", assurance.ACRHigh)
	w := f.get("/login/start?req=r1&provider=strong")
	if got := w.Header().Get("Location"); got != "/started/strong?attempt=r1&min=high" {
		t.Errorf("Location = %q", got)
	}
	// A provider that cannot meet the level cannot be chosen by editing the URL.
	if w := f.get("/login/start?req=r1&provider=weak"); w.Code != http.StatusBadRequest {
		t.Errorf("ineligible provider: status %d, want 400", w.Code)
	}
}

// TestStartTellsTheProviderHowFresh: what the relying party asked of the
// authentication's age (prompt=login, max_age) reaches the provider, so
// that an eID's own single sign-on session cannot pass for the new login
// it asked for.
func TestStartTellsTheProviderHowFresh(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		id     string
		prompt []string
		maxAge int
		want   string
	}{
		{"plain", nil, -1, "/started/strong?attempt=plain&min=low"},
		{"prompt", []string{"login"}, -1, "/started/strong?attempt=prompt&min=low&fresh=1"},
		{"max-age-0", nil, 0, "/started/strong?attempt=max-age-0&min=low&fresh=1"},
		{"max-age", nil, 600, "/started/strong?attempt=max-age&min=low&max_age=10m0s"},
		// A max_age longer than a Duration holds (about 292 years) is
		// no limit, as the authorization endpoint takes it, not one
		// that wraps around to a second or to a negative duration.
		{"max-age-huge", nil, 18446744074, "/started/strong?attempt=max-age-huge&min=low"},
		{"max-age-longest", nil, math.MaxInt64, "/started/strong?attempt=max-age-longest&min=low"},
		{"consent", []string{"consent"}, -1, "/started/strong?attempt=consent&min=low"},
		// An eID that remembers the person must not log the same
		// account in again when the relying party asked to choose one.
		{"select-account", []string{"select_account"}, -1, "/started/strong?attempt=select-account&min=low&fresh=1"},
	} {
		must(t, f.st.CreateAuthRequest(context.Background(), &store.AuthRequest{
			ID: tc.id, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, Prompt: tc.prompt,
			MaxAge: tc.maxAge, CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
		}))
		if got := f.get("/login/start?req=" + tc.id + "&provider=strong").Header().Get("Location"); got != tc.want {
			t.Errorf("%s: Location = %q, want %q", tc.id, got, tc.want)
		}
	}
	// A login to the person's own account, how they log in again to
	// change their ways in, is always fresh.
	if got, want := f.get("/login/start?req=&provider=strong").Header().Get("Location"), "/started/strong?attempt=&min=low&fresh=1"; got != want {
		t.Errorf("account login: Location = %q, want %q", got, want)
	}
}

// TestUnknownOrExpiredAttemptGetsAPlainPage: a login Varde does not
// hold (never was, or finished and gone) gets a plain page that does
// not claim the login took too long.
func TestUnknownOrExpiredAttemptGetsAPlainPage(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/login?req=nope", "/login/start?req=nope&provider=strong"} {
		w := f.get(path)
		if body := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(body, "We could not find this login") ||
			!strings.Contains(body, "It may have expired or been finished already") || strings.Contains(body, "took too long") {
			t.Errorf("%s: status %d, body %.200q", path, w.Code, w.Body.String())
		}
	}
}

// TestExpiredAttemptLeadsBackToTheService: a login whose request ran out
// of time, while the store still holds it, names the service it was
// for, in nb, en and da, and links to the service's registered home
// (the origin of its first https redirect URI), never to an address in
// the URL; a service with no such address is named without a link. A
// login begun in another browser (ADR 47) names no service.
func TestExpiredAttemptLeadsBackToTheService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.PutClient(ctx, &store.Client{ID: "app", Name: "Demo App", AuthMethod: store.AuthNone, RedirectURIs: []string{"no.demo.app:/cb"}}))
	f.request(t, "old")
	must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{
		ID: "app-old", ClientID: "app", RedirectURI: "no.demo.app:/cb", Scope: []string{"openid"}, MaxAge: -1,
		CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
	must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{
		ID: "theirs", ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1,
		Browser: oidc.BrowserBinding("AAAAAAAAAAAAAAAAAAAAAA"), CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
	f.now = f.now.Add(10*time.Minute + time.Second)
	for _, lang := range []string{"nb", "en", "da"} {
		next := fmt.Sprintf(f.b.Pages.T(lang, "error.expired.service.next"), "Test Bank")
		back := fmt.Sprintf(f.b.Pages.T(lang, "error.service.back"), "Test Bank")
		for _, path := range []string{"/login?req=old&redirect_uri=https%3A%2F%2Fevil.example%2F", "/login/start?req=old&provider=strong"} {
			w := f.getIn(path, lang)
			body := w.Body.String()
			if w.Code != http.StatusBadRequest || !strings.Contains(body, html.EscapeString(next)) ||
				!strings.Contains(body, `<a class="button" href="https://bank.example/" id="service">`+html.EscapeString(back)+`</a>`) ||
				strings.Contains(body, `href="https://evil.example`) {
				t.Errorf("%s %s: %d, want %q and a link to https://bank.example/:\n%s", lang, path, w.Code, next, body)
			}
		}
		w := f.getIn("/login?req=app-old", lang)
		if body := w.Body.String(); !strings.Contains(body, html.EscapeString(fmt.Sprintf(f.b.Pages.T(lang, "error.expired.service.next"), "Demo App"))) ||
			strings.Contains(body, `id="service"`) {
			t.Errorf("%s: a service with no https home: %d:\n%s", lang, w.Code, body)
		}
	}
	if body := f.get("/login?req=theirs").Body.String(); strings.Contains(body, "Test Bank") || strings.Contains(body, `id="service"`) {
		t.Errorf("a login of another browser names its service:\n%s", body)
	}
}

// Pending is true only for logins the broker holds, so that providers
// can refuse to keep anything for made-up or expired ones.
func TestPendingKnowsOnlyAttemptsItHolds(t *testing.T) {
	f := newFixture(t)
	f.request(t, "live")
	f.now = f.now.Add(time.Hour)
	f.request(t, "fresh")
	tests := []struct {
		attempt string
		want    bool
	}{
		{broker.AccountAttempt, true},
		{"fresh", true},
		{"live", false}, // expired
		{"nope", false},
		{"link:made-up", false},
	}
	for _, tt := range tests {
		got, err := f.b.Pending(context.Background(), tt.attempt)
		if err != nil || got != tt.want {
			t.Errorf("Pending(%q) = %v, %v; want %v", tt.attempt, got, err, tt.want)
		}
	}
}

func finish(f *fixture, attempt string, res provider.Result) (string, error, *httptest.ResponseRecorder) {
	w := httptest.NewRecorder()
	next, err := f.b.Finish(w, httptest.NewRequest(http.MethodPost, "/x", nil), attempt, res)
	return next, err, w
}

func TestFinishNeverLetsALowerLevelThrough(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1", assurance.ACRHigh)
	next, err, w := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial})
	must(t, err)
	if next != "/login?err=level&req=r1" {
		t.Errorf("next = %q", next)
	}
	if len(sessionCookies(w)) != 0 {
		t.Error("a session cookie was set for a login below the requested level")
	}
	ev := f.events(t)
	if len(ev) != 1 || ev[0].Result != store.ResultFailure || ev[0].Reason != "insufficient_level" || ev[0].PersonID != "p1" {
		t.Errorf("audit = %+v", ev)
	}
}

// TestFinishRefusesAProviderTheClientDoesNotAccept: a provider that
// serves any login can be handed any attempt's ID (the passkey provider
// takes it from its URL), so a login for a client that accepts only
// "strong" can be finished through "weak". Finish refuses it as the
// login page and the start refuse that provider (what is recorded:
// TestFinishRefusesBeforeCreatingAPerson), and the person is sent back
// to the ways the client accepts, which still work for the same request.
func TestFinishRefusesAProviderTheClientDoesNotAccept(t *testing.T) {
	f := newFixture(t)
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Providers: []string{"strong"}}))
	f.request(t, "r1")
	next, err, _ := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial})
	if err != nil || next != "/login?err=provider&req=r1" {
		t.Fatalf("through weak: next %q, %v", next, err)
	}
	body := f.get(next).Body.String()
	if !strings.Contains(body, "not accepted by this service") || !strings.Contains(body, `id="provider-strong" href=`) || strings.Contains(body, "Provider weak") {
		t.Errorf("login page after the refusal:\n%s", body)
	}
	if next, err, _ := finish(f, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High}); err != nil || next != "/authorize/resume?req=r1" {
		t.Errorf("then through strong: next %q, %v", next, err)
	}
}

// TestFinishRefusesBeforeCreatingAPerson: every refused result (a
// provider the client does not accept, one the broker does not have, a
// level too low, or above what the provider is configured for) starts no
// session and creates nobody, even when it proves an identifier nobody
// holds yet; the audit event says why, and names the person only if they
// exist already.
func TestFinishRefusesBeforeCreatingAPerson(t *testing.T) {
	newID := []store.Identifier{{Scheme: "no:dnr", Value: "41018012365"}}
	tests := []struct {
		name      string
		providers []string // the client accepts; all if empty
		acr       []string
		res       provider.Result
		next      string
		wantErr   bool
		// Recorded in the audit event.
		reason, level, person string
	}{
		{name: "provider not accepted, a person it keeps", providers: []string{"strong"},
			res:  provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial},
			next: "/login?err=provider&req=r1", reason: "provider_not_accepted", level: "substantial", person: "p1"},
		{name: "provider not accepted, a new identifier", providers: []string{"strong"},
			res:  provider.Result{Provider: "weak", Identifiers: newID, Level: assurance.Substantial},
			next: "/login?err=provider&req=r1", reason: "provider_not_accepted", level: "substantial"},
		{name: "provider unknown",
			res:     provider.Result{Provider: "rogue", Identifiers: newID, Level: assurance.High},
			wantErr: true, reason: "unknown_provider", level: ""},
		{name: "level too low", acr: []string{assurance.ACRHigh},
			res:  provider.Result{Provider: "strong", Identifiers: newID, Level: assurance.Substantial},
			next: "/login?err=level&req=r1", reason: "insufficient_level", level: "substantial"},
		{name: "provider that cannot reach the level, reporting more", acr: []string{assurance.ACRHigh},
			res:  provider.Result{Provider: "weak", Identifiers: newID, Level: assurance.High},
			next: "/login?err=level&req=r1", reason: "insufficient_level", level: "substantial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			must(t, f.st.PutClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
				RedirectURIs: []string{"https://bank.example/cb"}, Providers: tt.providers}))
			f.request(t, "r1", tt.acr...)
			next, err, w := finish(f, "r1", tt.res)
			if next != tt.next || (err != nil) != tt.wantErr {
				t.Errorf("Finish = %q, %v; want %q, error %t", next, err, tt.next, tt.wantErr)
			}
			if len(sessionCookies(w)) != 0 {
				t.Error("a session cookie was set for a refused login")
			}
			if _, err := f.st.GetPersonByIdentifier(ctx, newID[0].Scheme, newID[0].Value); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a refused login created a person (%v)", err)
			}
			ev := f.events(t)
			if len(ev) != 1 || ev[0].Result != store.ResultFailure || ev[0].Reason != tt.reason || ev[0].Level != tt.level ||
				ev[0].PersonID != tt.person || ev[0].Provider != tt.res.Provider || ev[0].ClientID != "bank" {
				t.Errorf("audit = %+v", ev)
			}
		})
	}
}

// TestAcceptsAsFinishWould: Accepts, which a provider asks before the
// person spends a recovery code, answers as Finish then decides, for
// each reason Finish has to refuse and for results it takes.
func TestAcceptsAsFinishWould(t *testing.T) {
	tests := []struct {
		name      string
		providers []string // the client accepts; all if empty
		acr       []string
		attempt   string // "r1" if empty
		provider  string
		level     assurance.Level
		want      bool
	}{
		{name: "enough", acr: []string{assurance.ACRSubstantial}, provider: "weak", level: assurance.Substantial, want: true},
		{name: "more than enough", acr: []string{assurance.ACRLow}, provider: "strong", level: assurance.High, want: true},
		{name: "level too low", acr: []string{assurance.ACRSubstantial}, provider: "weak", level: assurance.Low},
		{name: "above the provider's maximum", acr: []string{assurance.ACRHigh}, provider: "weak", level: assurance.High},
		{name: "provider not accepted", providers: []string{"strong"}, provider: "weak", level: assurance.Substantial},
		{name: "provider unknown", provider: "rogue", level: assurance.High},
		{name: "account login", attempt: broker.AccountAttempt, provider: "weak", level: assurance.Low, want: true},
		{name: "attempt unknown", attempt: "r2", provider: "weak", level: assurance.Substantial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
				RedirectURIs: []string{"https://bank.example/cb"}, Providers: tt.providers}))
			f.request(t, "r1", tt.acr...)
			attempt := tt.attempt
			if tt.name != "account login" && attempt == "" {
				attempt = "r1"
			}
			got, err := f.b.Accepts(httptest.NewRequest(http.MethodGet, "/", nil), attempt, tt.provider, tt.level)
			if err != nil || got != tt.want {
				t.Fatalf("Accepts = %t, %v; want %t", got, err, tt.want)
			}
			next, err, _ := finish(f, attempt, provider.Result{Provider: tt.provider, PersonID: "p1", Level: tt.level})
			if took := err == nil && !strings.Contains(next, "err=") && !strings.HasPrefix(next, "/login?"); took != tt.want {
				t.Errorf("Finish took the result: %t (%q, %v); Accepts said %t", took, next, err, tt.want)
			}
		})
	}
	f := newFixture(t)
	if ok, err := f.b.Accepts(httptest.NewRequest(http.MethodGet, "/", nil), "link:x", "strong", assurance.High); ok || err != nil {
		t.Errorf("Accepts for a link attempt = %t, %v; want false", ok, err)
	}
}

// TestFinishCapsTheLevelAtTheProvidersMaximum: a provider that reports
// more than it is configured to deliver gets a session at its maximum,
// for a relying party and for the person's own account alike.
func TestFinishCapsTheLevelAtTheProvidersMaximum(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	for _, attempt := range []string{"r1", broker.AccountAttempt} {
		s := finishSession(t, f, attempt, provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.High})
		if s.Level != "substantial" {
			t.Errorf("attempt %q: session level %q, want substantial (weak's maximum)", attempt, s.Level)
		}
	}
	for _, ev := range f.events(t) {
		if ev.Level != "substantial" {
			t.Errorf("audit level %q, want substantial", ev.Level)
		}
	}
}

func TestFinishStartsASessionAtTheLevelReached(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1", assurance.ACRSubstantial)
	next, err, w := finish(f, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High, AMR: []string{"hwk"}, AuthTime: f.now})
	must(t, err)
	if next != "/authorize/resume?req=r1" {
		t.Errorf("next = %q", next)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	s, err := f.b.Sessions.Current(r)
	must(t, err)
	if s.PersonID != "p1" || s.Level != "high" || s.Provider != "strong" || !s.AuthTime.Equal(f.now) {
		t.Errorf("session = %+v", s)
	}
	// Continue made no code here: the session does not list the client,
	// which is not told of its end (Back-Channel Logout §2.7). Continue
	// lists it when it makes the code.
	if len(s.Clients) != 0 {
		t.Errorf("session lists %v, which got no code from it", s.Clients)
	}
	ev := f.events(t)
	if len(ev) != 1 || ev[0].Result != store.ResultSuccess || ev[0].ClientID != "bank" || ev[0].Level != "high" {
		t.Errorf("audit = %+v", ev)
	}
}

func TestFinishResolvesIdentifiersToTheSamePerson(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	_, err, w := finish(f, "r1", provider.Result{Provider: "strong", Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}}, Level: assurance.High})
	must(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	s, err := f.b.Sessions.Current(r)
	must(t, err)
	if s.PersonID != "p1" {
		t.Errorf("person = %q, want p1", s.PersonID)
	}
	// An identifier nobody holds yet introduces a new person, proofed by
	// the provider; the next login proving it is the same person.
	newID := []store.Identifier{{Scheme: "no:dnr", Value: "41018012365"}}
	first := sessionPerson(t, f, "r1", provider.Result{Provider: "strong", Identifiers: newID, Level: assurance.Substantial})
	again := sessionPerson(t, f, "r1", provider.Result{Provider: "weak", Identifiers: newID, Level: assurance.Substantial})
	if first == "p1" || first != again {
		t.Errorf("new identifier: first %q, again %q", first, again)
	}
	p, err := f.st.GetPerson(context.Background(), first)
	must(t, err)
	if p.ProofingLevel != "substantial" || p.ProofingMethod != "upstream:strong" {
		t.Errorf("new person %+v", p)
	}
	// A result that names nobody fails closed.
	if _, err, _ := finish(f, "r1", provider.Result{Provider: "strong", Level: assurance.High}); err == nil {
		t.Error("a result without person or identifier was accepted")
	}
}

func sessionPerson(t *testing.T, f *fixture, attempt string, res provider.Result) string {
	t.Helper()
	return finishSession(t, f, attempt, res).PersonID
}

// finishSession finishes attempt with res and returns the session it
// started.
func finishSession(t *testing.T, f *fixture, attempt string, res provider.Result) *store.Session {
	t.Helper()
	_, err, w := finish(f, attempt, res)
	must(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	s, err := f.b.Sessions.Current(r)
	must(t, err)
	return s
}

func TestAccountLoginEndsAtTheAccountPage(t *testing.T) {
	f := newFixture(t)
	next, err, _ := finish(f, broker.AccountAttempt, provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.Low})
	must(t, err)
	if next != "/account" {
		t.Errorf("next = %q", next)
	}
}

func TestFailIsAuditedAndOffersTheChoiceAgain(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	next := f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", nil), "r1", "strong", "cancelled")
	if next != "/login?err=cancelled&req=r1" {
		t.Errorf("next = %q", next)
	}
	if ev := f.events(t); len(ev) != 1 || ev[0].Reason != "cancelled" || ev[0].ClientID != "bank" {
		t.Errorf("audit = %+v", ev)
	}
}

// outcomes is a Health that records what the broker observes; every
// provider is up.
type outcomes struct{ got []string }

func (o *outcomes) State(string) health.State { return health.Up }

func (o *outcomes) Observe(component string, out health.Outcome) {
	o.got = append(o.got, component+" "+string(out))
}

func (o *outcomes) ObserveRefusal(component, account string) {
	o.got = append(o.got, component+" refused "+account)
}

// failing is a fixture for failed logins: a relying party's attempt
// "r1", a person logged in at b with a link attempt to "weak", and
// health outcomes recorded in o.
func failing(t *testing.T) (f *fixture, b browser, link string, o *outcomes) {
	t.Helper()
	f = newFixture(t)
	f.request(t, "r1")
	b = loggedIn(t, f, "p1", assurance.High)
	link = linkAttempt(t, f, b, "weak")
	o = &outcomes{}
	f.b.Health = o
	return f, b, link, o
}

// TestOnlyProviderFailuresCountAgainstIt: a failure counts against the
// provider's health unless the person cancelled or the provider reports
// an unverified response, which anyone can forge; either way the person
// is offered the choice again, and the reason is audited.
func TestOnlyProviderFailuresCountAgainstIt(t *testing.T) {
	for _, tc := range []struct {
		reason, next, linkNext string
		counts                 bool
	}{
		{provider.ReasonCancelled, "/login?err=cancelled&req=r1", "/account/link/refused?why=cancelled", false},
		{provider.ReasonUnverifiedResponse, "/login?err=failed&from=strong&req=r1", "/account/link/refused?why=failed", false},
		{provider.ReasonNodeError, "/login?err=failed&req=r1", "/account/link/refused?why=failed", false},
		{"upstream_error", "/login?err=failed&from=strong&req=r1", "/account/link/refused?why=failed", true},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			f, b, link, o := failing(t)
			if next := f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", tc.reason); next != tc.next {
				t.Errorf("next = %q, want %q", next, tc.next)
			}
			if next := f.b.Fail(httptest.NewRecorder(), b.req(http.MethodGet, "/cb", nil), link, "weak", tc.reason); next != tc.linkNext {
				t.Errorf("link: next = %q, want %q", next, tc.linkNext)
			}
			var want []string
			if tc.counts {
				want = []string{"strong error", "weak error"}
			}
			if !slices.Equal(o.got, want) {
				t.Errorf("observed %q, want %q", o.got, want)
			}
			for _, ev := range f.events(t) {
				if ev.Result == store.ResultFailure && ev.Reason != tc.reason {
					t.Errorf("audited %s failure %q, want %q", ev.Type, ev.Reason, tc.reason)
				}
			}
		})
	}
}

// TestRefusedAccountObservedWithItsAccount: a provider that refuses an
// account (FailAccount) has the refusal reach health monitoring with the
// account, so that it counts once per account, for a relying party's
// attempt and for a link alike; it is audited "account_refused", never
// with the account, and the person is offered the choice again. Through
// Fail, with no account, it counts every time.
func TestRefusedAccountObservedWithItsAccount(t *testing.T) {
	f, b, link, o := failing(t)
	if next := f.b.FailAccount(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", "acct-1"); next != "/login?err=refused&from=strong&req=r1" {
		t.Errorf("next = %q", next)
	}
	if next := f.b.FailAccount(httptest.NewRecorder(), b.req(http.MethodGet, "/cb", nil), link, "weak", "acct-2"); next != "/account/link/refused?why=refused" {
		t.Errorf("link: next = %q", next)
	}
	// The person is told that the account, not the provider, is the
	// problem, and that another way is the way on.
	for path, want := range map[string]string{
		"/login?err=refused&from=strong&req=r1": "did not say who you are in a way this service accepts",
		"/account/link/refused?why=refused":     "So nothing was linked.",
	} {
		w := f.getIn(path, "en")
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d, the page does not say %q", path, w.Code, want)
		}
	}
	f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/cb", nil), "r1", "strong", provider.ReasonAccountRefused)
	if want := []string{"strong refused acct-1", "weak refused acct-2", "strong refused "}; !slices.Equal(o.got, want) {
		t.Errorf("observed %q, want %q", o.got, want)
	}
	var audited int
	for _, ev := range f.events(t) {
		if ev.Result != store.ResultFailure {
			continue
		}
		audited++
		if ev.Reason != provider.ReasonAccountRefused {
			t.Errorf("audited %s failure %q", ev.Type, ev.Reason)
		}
		for k, v := range ev.Details {
			if strings.Contains(v, "acct-") {
				t.Errorf("audited %s with the account in %s", ev.Type, k)
			}
		}
	}
	if audited != 3 {
		t.Errorf("%d failures audited, want 3", audited)
	}
}

// TestLoginPageSpeaksTheRequestedLanguage: the client's ui_locales
// (OIDC Core §3.1.2.1) win over the browser's Accept-Language, which
// counts when the client sent none.
func TestLoginPageSpeaksTheRequestedLanguage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		id        string
		uiLocales []string
		accept    string
		lang      string
		want      string
	}{
		{id: "en", uiLocales: []string{"en-GB"}, accept: "nb", lang: "en", want: "Choose how to log in"},
		{id: "nb", uiLocales: []string{"nb-NO", "en"}, accept: "en", lang: "nb", want: "Velg hvordan du vil logge inn"},
		{id: "da", uiLocales: []string{"da"}, accept: "nb", lang: "da", want: "Vælg hvordan du vil logge ind"},
		{id: "da-DK", uiLocales: []string{"da-DK", "en"}, accept: "en", lang: "da", want: "Vælg hvordan du vil logge ind"},
		{id: "accept-da", accept: "da-DK,da;q=0.9", lang: "da", want: "Vælg hvordan du vil logge ind"},
	}
	for _, tt := range tests {
		must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{ID: tt.id, ClientID: "bank", RedirectURI: "https://bank.example/cb",
			Scope: []string{"openid"}, MaxAge: -1, UILocales: tt.uiLocales, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}))
		r := httptest.NewRequest(http.MethodGet, "/login?req="+tt.id, nil)
		r.Header.Set("Accept-Language", tt.accept)
		w := httptest.NewRecorder()
		f.mux.ServeHTTP(w, r)
		for _, want := range []string{`<html lang="` + tt.lang + `">`, tt.want} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("%s: page lacks %q", tt.id, want)
			}
		}
	}
}

// TestStartPassesTheLoginHint: login_hint reaches the provider.
func TestStartPassesTheLoginHint(t *testing.T) {
	f := newFixture(t)
	var got provider.Attempt
	f.b.Providers = []provider.Provider{hintProvider{&got}}
	must(t, f.st.CreateAuthRequest(context.Background(), &store.AuthRequest{ID: "h", ClientID: "bank", RedirectURI: "https://bank.example/cb",
		Scope: []string{"openid"}, MaxAge: -1, LoginHint: "kari@example.no", CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}))
	f.get("/login/start?req=h&provider=hint")
	if got.ID != "h" || got.LoginHint != "kari@example.no" || got.MinLevel != assurance.Low {
		t.Errorf("attempt = %+v", got)
	}
}

type hintProvider struct{ got *provider.Attempt }

func (p hintProvider) Info() provider.Info {
	return provider.Info{ID: "hint", Name: map[string]string{"en": "Hint"}, MaxLevel: assurance.High}
}

func (p hintProvider) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) { *p.got = a }

// TestDownProviderIsShownUnavailable: with health monitoring, a provider
// that is down is listed as not working (no link), cannot be started, and
// the others stay available.
func TestDownProviderIsShownUnavailable(t *testing.T) {
	f := newFixture(t)
	now := f.now
	mon, err := health.NewMonitor(health.Options{Now: func() time.Time { return now }})
	must(t, err)
	must(t, mon.Add("weak", health.PingProber(func(context.Context) error { return errors.New("connection refused") })))
	must(t, mon.Add("strong", health.PingProber(func(context.Context) error { return nil })))
	for i := 0; i < 3; i++ {
		now = now.Add(5 * time.Second)
		must(t, mon.Tick(context.Background()))
	}
	if mon.State("weak") != health.Down {
		t.Fatalf("weak is %s after three failed probes", mon.State("weak"))
	}
	f.b.Health = mon
	f.request(t, "r1")
	body := f.get("/login?req=r1").Body.String()
	for _, want := range []string{`id="provider-strong" href=`, `<span class="unavailable" id="provider-weak">`, "Not working right now", "Some ways to log in are not working", `<a href="/status" id="status-link">`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	if loc := f.get("/login/start?req=r1&provider=weak").Header().Get("Location"); loc != "/login?err=unavailable&req=r1" {
		t.Errorf("starting a down provider: Location %q", loc)
	}
	// A failure is recorded against the provider that failed.
	f.b.Fail(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), "r1", "weak", "upstream_error")
	if ev := f.eventsOf(t, broker.EventAuthentication); len(ev) != 1 || ev[0].Provider != "weak" || ev[0].Reason != "upstream_error" {
		t.Errorf("audit = %+v", ev)
	}
}

// TestClientAcceptsOnlyItsProviders: a client registered for some
// providers sees only those; when all of them are down the person gets a
// plain page saying so, and the request survives for when one is back.
func TestClientAcceptsOnlyItsProviders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.PutClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Providers: []string{"weak"}}))
	f.request(t, "r1")
	body := f.get("/login?req=r1").Body.String()
	if !strings.Contains(body, "Provider weak") || strings.Contains(body, "Provider strong") {
		t.Errorf("page offers providers the client does not accept:\n%s", body)
	}
	if w := f.get("/login/start?req=r1&provider=strong"); w.Code != http.StatusBadRequest {
		t.Errorf("starting a provider the client does not accept: %d", w.Code)
	}

	now := f.now
	mon, err := health.NewMonitor(health.Options{Now: func() time.Time { return now }})
	must(t, err)
	down := true
	must(t, mon.Add("weak", health.PingProber(func(context.Context) error {
		if down {
			return errors.New("connection refused")
		}
		return nil
	})))
	tick := func() {
		for i := 0; i < 3; i++ {
			now = now.Add(5 * time.Second)
			must(t, mon.Tick(ctx))
		}
	}
	tick()
	f.b.Health = mon
	w := f.get("/login?req=r1")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "Nothing is lost") || !strings.Contains(w.Body.String(), "Not working right now") {
		t.Fatalf("all accepted providers down: %d\n%s", w.Code, w.Body.String())
	}
	down = false
	tick()
	if w := f.get("/login?req=r1"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="provider-weak" href=`) {
		t.Errorf("after recovery: %d", w.Code)
	}
}

// downMonitor returns a health monitor in which the named providers of
// the broker's are down and the others up.
func downMonitor(t *testing.T, f *fixture, down ...string) *health.Monitor {
	t.Helper()
	now := f.now
	mon, err := health.NewMonitor(health.Options{Now: func() time.Time { return now }})
	must(t, err)
	added := map[string]bool{}
	for _, p := range f.b.Providers {
		id := p.Info().ID
		if added[id] {
			continue // a provider listed twice
		}
		added[id] = true
		fail := slices.Contains(down, id)
		must(t, mon.Add(id, health.PingProber(func(context.Context) error {
			if fail {
				return errors.New("connection refused")
			}
			return nil
		})))
	}
	for i := 0; i < 3; i++ {
		now = now.Add(5 * time.Second)
		must(t, mon.Tick(context.Background()))
	}
	return mon
}

// TestDegradedModePolicy: with no provider able to reach the requested
// level up, a client that registered a degraded-mode level is offered the
// providers that reach it, and the login is marked degraded; a client
// without one gets the plain "cannot log in right now" page.
func TestDegradedModePolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.b.Health = downMonitor(t, f, "strong")
	f.request(t, "r1", assurance.ACRHigh)

	if w := f.get("/login?req=r1"); w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), `id="degraded"`) {
		t.Fatalf("no policy: status %d, want 503 without a lower offer", w.Code)
	}
	if _, err, w := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial}); err != nil || len(sessionCookies(w)) != 0 {
		t.Fatalf("no policy: a lower login started a session (%v)", err)
	}

	must(t, f.st.PutClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, DegradedLevel: "substantial"}))
	body := f.get("/login?req=r1").Body.String()
	if !strings.Contains(body, `id="degraded"`) || !strings.Contains(body, `id="provider-weak" href=`) {
		t.Fatalf("policy: page does not offer the lower level:\n%s", body)
	}
	_, err, w := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial})
	must(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		r.AddCookie(c)
	}
	s, err := f.b.Sessions.Current(r)
	must(t, err)
	if !s.Degraded || s.Level != "substantial" {
		t.Errorf("session = %+v, want degraded at substantial", s)
	}

	// Once a provider that reaches high is back, the level is not lowered.
	f.b.Health = downMonitor(t, f)
	if body := f.get("/login?req=r1").Body.String(); strings.Contains(body, `id="degraded"`) || strings.Contains(body, "Provider weak") {
		t.Error("the lower level is still offered with a high provider up")
	}
	if next, err, _ := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial}); err != nil || next != "/login?err=restored&req=r1" {
		t.Errorf("lower login with high up: next %q, %v", next, err)
	}
}

// TestProviderHint: provider_hint=any lets Varde route to a healthy
// provider the client accepts; a named provider is used if it can be;
// otherwise, and after a failure, the person chooses.
func TestProviderHint(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hinted := func(id, hint string, acr ...string) {
		must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{ID: id, ClientID: "bank", RedirectURI: "https://bank.example/cb",
			Scope: []string{"openid"}, MaxAge: -1, ACRValues: acr, ProviderHint: hint, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}))
	}
	hinted("any-all-up", "any")
	hinted("any-weak-down", "any")
	hinted("named", "strong")
	hinted("named-down", "weak")
	hinted("any-high", "any", assurance.ACRHigh)

	// begin is the authorization endpoint handing the request over.
	begin := func(id string) string {
		req, err := f.st.GetAuthRequest(ctx, id, f.now)
		must(t, err)
		c, err := f.st.GetClient(ctx, req.ClientID)
		must(t, err)
		w := httptest.NewRecorder()
		f.b.Begin(w, httptest.NewRequest(http.MethodGet, "/authorize", nil), req, c)
		if w.Code != http.StatusSeeOther {
			t.Errorf("Begin(%s): status %d, want 303", id, w.Code)
		}
		return w.Header().Get("Location")
	}
	f.b.Health = downMonitor(t, f)
	for id, want := range map[string]string{
		"any-all-up": "/started/weak?attempt=any-all-up&min=low",
		"named":      "/started/strong?attempt=named&min=low",
		"any-high":   "/started/strong?attempt=any-high&min=high",
	} {
		// Straight to the provider, from the login page and from the
		// authorization endpoint.
		if loc := f.get("/login?req=" + id).Header().Get("Location"); loc != want {
			t.Errorf("%s: Location %q, want %q", id, loc, want)
		}
		if loc := begin(id); loc != want {
			t.Errorf("%s: Begin sent the browser to %q, want %q", id, loc, want)
		}
	}
	f.b.Health = downMonitor(t, f, "weak")
	if loc := f.get("/login?req=any-weak-down").Header().Get("Location"); loc != "/started/strong?attempt=any-weak-down&min=low" {
		t.Errorf("any with weak down: Location %q", loc)
	}
	if loc := begin("any-weak-down"); loc != "/started/strong?attempt=any-weak-down&min=low" {
		t.Errorf("any with weak down: Begin sent the browser to %q", loc)
	}
	for _, path := range []string{"/login?req=named-down", "/login?req=any-all-up&err=failed"} {
		if w := f.get(path); w.Code != http.StatusOK || w.Header().Get("Location") != "" {
			t.Errorf("%s: %d %q, want the choice page", path, w.Code, w.Header().Get("Location"))
		}
	}
	// A login the client's degraded-mode policy lets through below the
	// level asked for shows the page that says so, whatever the hint.
	must(t, f.st.PutClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, DegradedLevel: "substantial"}))
	f.b.Health = downMonitor(t, f, "strong")
	hinted("any-degraded", "any", assurance.ACRHigh)
	hinted("named-degraded", "weak", assurance.ACRHigh)
	for _, id := range []string{"any-degraded", "named-degraded"} {
		if loc := begin(id); loc != "/login?req="+id {
			t.Errorf("%s: Begin sent the browser to %q, want the login page", id, loc)
		}
		w := f.get("/login?req=" + id)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="degraded"`) || !strings.Contains(w.Body.String(), `id="provider-weak" href=`) {
			t.Errorf("%s: %d %q, want the page with the degraded notice", id, w.Code, w.Header().Get("Location"))
		}
	}
	f.b.Health = downMonitor(t, f, "weak")
	// A hint that cannot be followed, or none, goes to the login page.
	hinted("plain", "")
	for _, id := range []string{"named-down", "plain"} {
		if loc := begin(id); loc != "/login?req="+id {
			t.Errorf("%s: Begin sent the browser to %q, want the login page", id, loc)
		}
	}
}

// preparingProvider records what the broker asks it to prepare and to
// start.
type preparingProvider struct {
	staticProvider
	mu                *sync.Mutex
	prepared, started *[]provider.Attempt
}

func (p preparingProvider) Prepare(_ context.Context, a provider.Attempt) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.prepared = append(*p.prepared, a)
}

func (p preparingProvider) Start(w http.ResponseWriter, r *http.Request, a provider.Attempt) {
	p.mu.Lock()
	*p.started = append(*p.started, a)
	p.mu.Unlock()
	p.staticProvider.Start(w, r, a)
}

// TestPushed: a pushed request whose provider_hint routes to a provider
// that can prepare has it prepare the very attempt Begin later starts;
// no hint, or a hint that routes nowhere, prepares nothing.
func TestPushed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var (
		mu                sync.Mutex
		prepared, started []provider.Attempt
	)
	f.b.Providers = []provider.Provider{
		preparingProvider{staticProvider{"weak", assurance.Substantial}, &mu, &prepared, &started},
		preparingProvider{staticProvider{"strong", assurance.High}, &mu, &prepared, &started},
	}
	f.b.Health = downMonitor(t, f, "weak")
	c, err := f.st.GetClient(ctx, "bank")
	must(t, err)
	for _, tc := range []struct {
		id, hint string
		acr      []string
		want     string // the provider that prepares, "" for none
	}{
		{id: "named", hint: "strong", want: "strong"},
		{id: "any", hint: "any", acr: []string{assurance.ACRSubstantial}, want: "strong"},
		{id: "named-down", hint: "weak"},
		{id: "none"},
	} {
		req := &store.AuthRequest{ID: tc.id, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"},
			MaxAge: -1, ACRValues: tc.acr, ProviderHint: tc.hint, UILocales: []string{"nb"}, LoginHint: "kari",
			Pushed: true, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}
		must(t, f.st.CreateAuthRequest(ctx, req))
		mu.Lock()
		prepared, started = nil, nil
		mu.Unlock()
		f.b.Pushed(httptest.NewRequest(http.MethodPost, "/par", nil), req, c)
		w := httptest.NewRecorder()
		f.b.Begin(w, httptest.NewRequest(http.MethodGet, "/authorize", nil), req, c)
		mu.Lock()
		if tc.want == "" {
			if len(prepared) != 0 {
				t.Errorf("%s: prepared %+v, want nothing", tc.id, prepared)
			}
		} else if len(prepared) != 1 || len(started) != 1 || prepared[0] != started[0] ||
			w.Header().Get("Location") != "/started/"+tc.want+"?attempt="+tc.id+"&min="+started[0].MinLevel.String() {
			t.Errorf("%s: prepared %+v, started %+v at %q; want %s to prepare what it then starts", tc.id, prepared, started,
				w.Header().Get("Location"), tc.want)
		} else if a := prepared[0]; a.ID != tc.id || a.Locale != "nb" || a.LoginHint != "kari" {
			t.Errorf("%s: prepared %+v", tc.id, a)
		}
		mu.Unlock()
	}
}

// TestFinishKeepsTheProfileAsTheEIDReportsIt: a person's name and date of
// birth follow what an eID proving them reports (an empty name is filled
// in, a changed one replaced), but never from a login below the level
// the person was proofed at, and a claim a result leaves out stays.
func TestFinishKeepsTheProfileAsTheEIDReportsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ident := []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}}
	profile := func() store.Profile {
		t.Helper()
		p, err := f.st.GetPerson(ctx, "p1")
		must(t, err)
		return p.Profile()
	}
	updates := func() int {
		n := 0
		for _, e := range f.events(t) {
			if e.Type == broker.EventProfileUpdated {
				n++
			}
		}
		return n
	}
	steps := []struct {
		name  string
		res   provider.Result
		want  store.Profile
		audit int
	}{
		{"a weaker login changes nothing",
			provider.Result{Provider: "weak", Level: assurance.Substantial, GivenName: "Per", FamilyName: "Hansen", BirthDate: "1980-01-01"},
			store.Profile{GivenName: "Ola"}, 0},
		{"an empty family name and birth date are filled in",
			provider.Result{Provider: "strong", Level: assurance.High, GivenName: "Ola", FamilyName: "Nordmann", BirthDate: "1980-01-01"},
			store.Profile{GivenName: "Ola", FamilyName: "Nordmann", BirthDate: "1980-01-01"}, 1},
		{"the same again writes nothing",
			provider.Result{Provider: "strong", Level: assurance.High, GivenName: "Ola", FamilyName: "Nordmann", BirthDate: "1980-01-01"},
			store.Profile{GivenName: "Ola", FamilyName: "Nordmann", BirthDate: "1980-01-01"}, 1},
		{"a changed name replaces the old, and what is not reported stays",
			provider.Result{Provider: "strong", Level: assurance.High, FamilyName: "Nordmann Berg"},
			store.Profile{GivenName: "Ola", FamilyName: "Nordmann Berg", BirthDate: "1980-01-01"}, 2},
	}
	f.request(t, "r1")
	for _, s := range steps {
		s.res.Identifiers = ident
		if got := sessionPerson(t, f, "r1", s.res); got != "p1" {
			t.Fatalf("%s: person %q, want p1", s.name, got)
		}
		if got := profile(); got != s.want {
			t.Errorf("%s: profile %+v, want %+v", s.name, got, s.want)
		}
		if got := updates(); got != s.audit {
			t.Errorf("%s: %d %s events, want %d", s.name, got, broker.EventProfileUpdated, s.audit)
		}
	}
	for _, e := range f.events(t) {
		if e.Type == broker.EventProfileUpdated && (e.PersonID != "p1" || strings.Contains(fmt.Sprint(e.Details), "Nordmann")) {
			t.Errorf("profile event %+v: wrong person, or a value in the log", e)
		}
	}
}

// TestFinishChargesAPersonStoreFailureToTheNode: a good result whose
// person the node's own store cannot look up is this node's failure
// (node_error), which outage figures do not charge to the provider; a
// result that names nobody is the provider's (unknown_person).
func TestFinishChargesAPersonStoreFailureToTheNode(t *testing.T) {
	f := newFixture(t)
	broken, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "persons.db"))
	must(t, err)
	must(t, broken.Close())
	f.b.Persons = broken
	f.request(t, "r1")
	f.request(t, "r2")
	ids := []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}}
	if _, err, _ := finish(f, "r1", provider.Result{Provider: "strong", Identifiers: ids, Level: assurance.High}); err == nil {
		t.Fatal("Finish with the person store down succeeded")
	}
	if _, err, _ := finish(f, "r2", provider.Result{Provider: "strong", Level: assurance.High}); err == nil {
		t.Fatal("Finish with a result naming nobody succeeded")
	}
	var reasons []string
	for _, ev := range f.events(t) {
		if ev.Type == broker.EventAuthentication {
			reasons = append(reasons, ev.Reason)
		}
	}
	slices.Sort(reasons)
	if want := []string{provider.ReasonNodeError, "unknown_person"}; !slices.Equal(reasons, want) {
		t.Errorf("reasons = %q, want %q", reasons, want)
	}
}

// TestDegradedNow: the degraded-mode policy applies to a request only
// for a client that registered a lower level and while no provider it
// accepts that reaches the level asked for is up.
func TestDegradedNow(t *testing.T) {
	f := newFixture(t)
	req := &store.AuthRequest{ID: "r1", ClientID: "bank", ACRValues: []string{assurance.ACRHigh}}
	policy := &store.Client{ID: "bank", DegradedLevel: "substantial"}
	none := &store.Client{ID: "bank"}
	f.b.Health = downMonitor(t, f, "strong")
	if !f.b.DegradedNow(req, policy) {
		t.Error("strong down, client with a policy: not degraded")
	}
	if f.b.DegradedNow(req, none) {
		t.Error("strong down, client without a policy: degraded")
	}
	if f.b.DegradedNow(&store.AuthRequest{ID: "r2", ClientID: "bank", ACRValues: []string{assurance.ACRSubstantial}}, policy) {
		t.Error("strong down, a request weak meets: degraded")
	}
	f.b.Health = downMonitor(t, f)
	if f.b.DegradedNow(req, policy) {
		t.Error("strong up again: still degraded")
	}
}

// TestFinishRefusesIdentifiersOfTwoPersons: a result proving
// identifiers that belong to two different persons is neither: the
// login is refused with its own reason and a page saying so, and it does
// not count against the provider's health.
func TestFinishRefusesIdentifiersOfTwoPersons(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.st.CreatePerson(ctx, &store.Person{ID: "p2", WebAuthnID: []byte("11234567890123456789012345678901"), GivenName: "Kari",
		Identifiers: []store.Identifier{{Scheme: "no:dnr", Value: "41018012365"}}, ProofingLevel: "high", CreatedAt: f.now}))
	f.request(t, "r1")
	o := &outcomes{}
	f.b.Health = o
	both := []store.Identifier{{Scheme: "no:fnr", Value: "01018012371"}, {Scheme: "no:dnr", Value: "41018012365"}}
	next, err, w := finish(f, "r1", provider.Result{Provider: "strong", Identifiers: both, Level: assurance.High})
	must(t, err)
	if next != "/login?err=conflict&req=r1" {
		t.Fatalf("next = %q", next)
	}
	if len(sessionCookies(w)) != 0 {
		t.Errorf("a session was started: %v", w.Result().Cookies())
	}
	ev := f.events(t)
	if len(ev) != 1 || ev[0].Result != store.ResultFailure || ev[0].Reason != broker.ReasonIdentifierConflict || ev[0].PersonID != "" {
		t.Errorf("audit = %+v", ev)
	}
	for _, got := range o.got {
		if got != "strong success" {
			t.Errorf("health observed %q", got)
		}
	}
	page := f.get(next)
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "more than one person") {
		t.Errorf("login page %d: %.300s", page.Code, page.Body.String())
	}
}

// noAnswer is the real store whose session writes are stored and then
// get no answer, as a COMMIT whose connection dropped.
type noAnswer struct{ store.Store }

func (s noAnswer) CreateSession(ctx context.Context, ss *store.Session, events ...*store.AuditEvent) error {
	if err := s.Store.CreateSession(ctx, ss, events...); err != nil {
		return err
	}
	return fmt.Errorf("create session: %w", store.ErrOutcomeUnknown)
}

// TestFinishOutcomeUnknown: when the write of the session gets no
// answer, the session and its success event may be stored; the failure
// event says so rather than that the login failed, the browser gets the
// cookie, and the person is told they may be logged in already.
func TestFinishOutcomeUnknown(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1", assurance.ACRSubstantial)
	f.b.Sessions.Store = noAnswer{f.st}
	next, err, w := finish(f, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High})
	if err != nil || next != "/login?err=unknown&req=r1" {
		t.Fatalf("finish = %q, %v; want the login page saying the outcome is unknown", next, err)
	}
	ev := f.events(t)
	if len(ev) != 2 || ev[0].Result != store.ResultSuccess || ev[1].Result != store.ResultFailure {
		t.Fatalf("audit = %+v, want the success stored with the session, then the failure", ev)
	}
	if ev[1].Reason != broker.ReasonOutcomeUnknown || ev[1].Details["stored"] != "unknown" || ev[1].Details["session"] != ev[0].Details["session"] {
		t.Errorf("failure event = %+v, want outcome_unknown naming the session that may be stored", ev[1])
	}
	f.b.Sessions.Store = f.st
	b := browser(w.Result().Cookies())
	if _, err := f.b.Sessions.Current(b.req(http.MethodGet, "/account", nil)); err != nil {
		t.Errorf("the session stored after all: %v, want the browser logged in", err)
	}
	page := httptest.NewRecorder()
	f.mux.ServeHTTP(page, b.req(http.MethodGet, next, nil))
	if body := page.Body.String(); !strings.Contains(body, "You may already be logged in") {
		t.Errorf("login page after an unknown outcome does not say the person may be logged in:\n%s", body)
	}
}

// TestNoProviderPageCancels: when nothing the client accepts can reach
// the level it asks for, the page's way back ends the login at once (a
// GET of the cancel URL only asks whether to), so the service hears
// why at once (oidc.Provider.WaysIn, TestWaysIn).
func TestNoProviderPageCancels(t *testing.T) {
	f := newFixture(t)
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Providers: []string{"weak"}}))
	f.request(t, "r1", assurance.ACRHigh)
	w := f.get("/login?req=r1")
	body := w.Body.String()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, "You cannot log in right now") {
		t.Fatalf("status %d, want 503 saying no way to log in is available:\n%s", w.Code, body)
	}
	if !strings.Contains(body, `<form method="post" action="/authorize/cancel?req=r1">`) ||
		!strings.Contains(body, `id="cancel">Go back to the service</button>`) || strings.Contains(body, `href="/authorize/cancel`) {
		t.Errorf("the page does not post the cancel:\n%s", body)
	}
}

// TestUnknownProviderLeadsBack: a start at a provider the login may not
// use (made up, or no longer offered) says so and leads back to the
// choice, where the login goes on, not to the service to start over.
func TestUnknownProviderLeadsBack(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1", "")
	w := f.get("/login/start?req=r1&provider=nope")
	body := w.Body.String()
	if w.Code != http.StatusBadRequest || !strings.Contains(body, "That way of logging in is not available for this service.") {
		t.Fatalf("status %d, want 400 saying the way is not available:\n%s", w.Code, body)
	}
	if !strings.Contains(body, `href="/login?req=r1"`) || !strings.Contains(body, "Choose another way to log in.") {
		t.Errorf("the page does not lead back to the choice:\n%s", body)
	}
	if w := f.get("/login?req=r1"); w.Code != http.StatusOK {
		t.Errorf("the login after the refusal: status %d, want the choice", w.Code)
	}
}

// TestLevelErrorNamesNoWayTheClientRefuses: a login refused as not
// secure enough suggests no way to log in by name (a client may not
// accept the passkey), only the ways the page shows, which are the ones
// the client accepts that can reach its level.
func TestLevelErrorNamesNoWayTheClientRefuses(t *testing.T) {
	f := newFixture(t)
	must(t, f.st.PutClient(context.Background(), &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Providers: []string{"weak", "strong"}}))
	f.request(t, "r1", assurance.ACRHigh)
	next, err, _ := finish(f, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.Substantial})
	if err != nil || next != "/login?err=level&req=r1" {
		t.Fatalf("next %q, %v; want the login page saying the level is too low", next, err)
	}
	w := f.get(next)
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "not secure enough for this service") {
		t.Fatalf("status %d, want the choice saying the login was not secure enough:\n%s", w.Code, body)
	}
	_, msg, _ := strings.Cut(body, `<p class="error">`)
	msg, _, _ = strings.Cut(msg, "</p>")
	if strings.Contains(strings.ToLower(msg), "passkey") || !strings.Contains(msg, "only ways that can be secure enough") {
		t.Errorf("the message suggests a passkey the client does not accept: %q", msg)
	}
	if !strings.Contains(body, `id="provider-strong"`) || strings.Contains(body, `id="provider-weak"`) {
		t.Errorf("the page does not offer just the way that can reach the level:\n%s", body)
	}
}

// TestAccountLoginSpeaksOfTheAccount: a login to the person's own account
// has no service, so when its ways to log in are down, missing or not
// offered, the page speaks of the account, not of "this service".
func TestAccountLoginSpeaksOfTheAccount(t *testing.T) {
	f := newFixture(t)
	now := f.now
	mon, err := health.NewMonitor(health.Options{Now: func() time.Time { return now }})
	must(t, err)
	for _, id := range []string{"weak", "strong"} {
		must(t, mon.Add(id, health.PingProber(func(context.Context) error { return errors.New("connection refused") })))
	}
	for i := 0; i < 3; i++ {
		now = now.Add(5 * time.Second)
		must(t, mon.Tick(context.Background()))
	}
	f.b.Health = mon
	get := func(path, lang string) *httptest.ResponseRecorder {
		w := f.getIn(path, lang)
		return w
	}
	tr := f.b.Pages.T
	for _, lang := range []string{"nb", "en", "da"} {
		w := get("/login", lang)
		body := w.Body.String()
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, tr(lang, "login.err.allunavailable.account")) ||
			strings.Contains(body, tr(lang, "login.err.allunavailable")) || !strings.Contains(body, `id="status-link"`) {
			t.Errorf("%s, all down: %d, want 503 speaking of the account with the status link:\n%s", lang, w.Code, body)
		}
		w = get("/login/start?provider=nope", lang)
		body = w.Body.String()
		if !strings.Contains(body, tr(lang, "login.unknownprovider.account.message")) || strings.Contains(body, tr(lang, "login.unknownprovider.message")) {
			t.Errorf("%s, unknown provider: the page does not speak of the account:\n%s", lang, body)
		}
	}
	f.b.Providers = nil
	for _, lang := range []string{"nb", "en", "da"} {
		w := get("/login", lang)
		body := w.Body.String()
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(body, tr(lang, "login.none.account.message")) ||
			!strings.Contains(body, tr(lang, "login.none.account.next")) ||
			strings.Contains(body, tr(lang, "login.none.message")) || strings.Contains(body, tr(lang, "login.none.next")) {
			t.Errorf("%s, none: %d, want 503 speaking of the account:\n%s", lang, w.Code, body)
		}
	}
}

// TestAccountLoginSaysWhereTo: the login page of a person's own account,
// with its ways to log in working, says that it leads to their Varde
// account, as a relying party's login page names the service, in nb, en
// and da; a relying party's login page does not say so.
func TestAccountLoginSaysWhereTo(t *testing.T) {
	f := newFixture(t)
	tr := f.b.Pages.T
	for _, lang := range []string{"nb", "en", "da"} {
		w := f.getIn("/login", lang)
		body := w.Body.String()
		want := tr(lang, "login.for.account")
		if w.Code != http.StatusOK || want == "login.for.account" || !strings.Contains(body, "<p>"+want+"</p>") {
			t.Errorf("%s: %d, want 200 with %q:\n%s", lang, w.Code, want, body)
		}
	}
	f.request(t, "r1")
	w := f.get("/login?req=r1")
	if body := w.Body.String(); w.Code != http.StatusOK || strings.Contains(body, tr("en", "login.for.account")) {
		t.Errorf("a relying party's login page speaks of the account:\n%s", body)
	}
}

// TestLoginOfADeletedClientSaysStartingAgainMayNotHelp: a client deleted
// while a person logs in to it takes the login with it, so the page for
// it cannot tell it from an expired one; it names that the service may
// no longer offer Varde, and does not send the person back only to start
// over, in nb, en and da.
func TestLoginOfADeletedClientSaysStartingAgainMayNotHelp(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	if _, err := f.st.DeleteClient(context.Background(), "bank", f.now, nil); err != nil {
		t.Fatal(err)
	}
	for lang, want := range map[string][]string{
		"en": {"no longer offer logging in with Varde", "ask the service how to log in"},
		"nb": {"ikke lenger innlogging med Varde", "spør tjenesten hvordan du logger inn"},
		"da": {"ikke længere login med Varde", "spørg tjenesten, hvordan du logger ind"},
	} {
		w := f.getIn("/login?req=r1", lang)
		body := w.Body.String()
		for _, s := range want {
			if w.Code != http.StatusBadRequest || !strings.Contains(body, s) {
				t.Errorf("%s: %d, want 400 saying %q:\n%s", lang, w.Code, s, body)
			}
		}
	}
}

// TestLoginOfAClientDeletedBesideTheServer: a client deleted in the
// durable store while this node holds its login in memory (as `varde
// clients delete`, run beside a SQLite node, does) leaves a login that
// cannot end. A good result for it is audited client_gone with the
// client named, not attempt_expired, and the page says the service no
// longer uses Varde, in nb, en and da.
func TestLoginOfAClientDeletedBesideTheServer(t *testing.T) {
	f := newFixture(t)
	flows := flowmem.Over(f.st, flowmem.New(flowmem.Options{Now: func() time.Time { return f.now }}))
	f.b.AuthRequests = flows
	must(t, flows.CreateAuthRequest(context.Background(), &store.AuthRequest{
		ID: "r1", ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1,
		CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
	if _, err := f.st.DeleteClient(context.Background(), "bank", f.now, nil); err != nil {
		t.Fatal(err)
	}
	next, err, _ := finish(f, "r1", provider.Result{Provider: "weak", PersonID: "p1", Level: assurance.Substantial})
	if err != nil || next != "/login?req=r1" {
		t.Fatalf("Finish = %q, %v", next, err)
	}
	var got *store.AuditEvent
	for _, e := range f.events(t) {
		if e.Type == broker.EventAuthentication && e.Result == store.ResultFailure {
			got = e
		}
	}
	if got == nil || got.Reason != broker.ReasonClientGone || got.ClientID != "bank" || got.Provider != "weak" {
		t.Fatalf("failure event = %+v, want client_gone for bank through weak", got)
	}
	for lang, want := range map[string]string{
		"en": "This service no longer uses Varde",
		"nb": "Denne tjenesten bruker ikke lenger Varde",
		"da": "Denne tjeneste bruger ikke længere Varde",
	} {
		w := f.getIn(next, lang)
		if w.Code != http.StatusGone || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d, want 410 saying %q:\n%s", lang, w.Code, want, w.Body.String())
		}
	}
}

// TestPageWrongMethod: a method a broker page does not serve is
// answered 405 with Allow and a plain-language page in the person's
// language, not the mux's English text.
func TestPageWrongMethod(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "/login?req=r1", "GET, HEAD"},
		{http.MethodDelete, "/login/start?req=r1", "GET, HEAD"},
		{http.MethodGet, "/account/link", "POST"},
		{http.MethodPut, "/account/link/refused", "GET, HEAD"},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tc.method, tc.path, nil)
		r.Header.Set("Accept-Language", "da")
		f.mux.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tc.allow ||
			!strings.Contains(w.Body.String(), "Siden kan ikke bruges sådan") {
			t.Errorf("%s %s: %d Allow %q %s", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body)
		}
	}
}

// TestProviderHintAnyPrefersDegradedToUnknown: with no provider up, a
// login with provider_hint=any goes to a degraded provider, known to log
// people in, before an unknown one listed earlier whose probes have not
// yet succeeded.
func TestProviderHintAnyPrefersDegradedToUnknown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := f.now
	mon, err := health.NewMonitor(health.Options{Now: func() time.Time { return now }})
	must(t, err)
	var n int
	must(t, mon.Add("strong", health.PingProber(func(context.Context) error {
		n++
		if n%2 == 0 {
			return errors.New("connection refused")
		}
		return nil
	})))
	tick := func() {
		now = now.Add(5 * time.Second)
		must(t, mon.Tick(ctx))
	}
	for range 6 {
		tick()
	}
	must(t, mon.Add("weak", health.PingProber(func(context.Context) error { return errors.New("connection refused") })))
	tick()
	if mon.State("weak") != health.Unknown || mon.State("strong") != health.Degraded {
		t.Fatalf("weak is %s, strong %s; want unknown and degraded", mon.State("weak"), mon.State("strong"))
	}
	f.b.Health = mon
	must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{ID: "any", ClientID: "bank", RedirectURI: "https://bank.example/cb",
		Scope: []string{"openid"}, MaxAge: -1, ProviderHint: "any", CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}))
	if loc := f.get("/login?req=any").Header().Get("Location"); loc != "/started/strong?attempt=any&min=low" {
		t.Errorf("any with weak unknown and strong degraded: Location %q, want the degraded provider", loc)
	}
}

// TestFinishTakesIdentifiersInTheirOneSpelling: an identifier reaches
// its person however a provider spells it (spaces, as printed on cards),
// so two providers proving the same number are the same person; one
// that is no valid number of its scheme (a wrong check digit, another
// kind than the scheme names) is refused, for a login and for a link,
// never stored, and counts against the provider.
func TestFinishTakesIdentifiersInTheirOneSpelling(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.request(t, "r1")
	spaced := provider.Result{Provider: "strong", Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "010180 123 71"}}, Level: assurance.High}
	if got := sessionPerson(t, f, "r1", spaced); got != "p1" {
		t.Errorf("spaced number: person %q, want p1", got)
	}

	for _, id := range []store.Identifier{
		{Scheme: "no:fnr", Value: "01018012372"}, // check digit 2
		{Scheme: "no:fnr", Value: "41018012365"}, // a D-number
		{Scheme: "no:fnr", Value: "0101801237"},  // a digit short
		{Scheme: "xx:none", Value: "1"},
	} {
		o := &outcomes{}
		f.b.Health = o
		next, err, w := finish(f, "r1", provider.Result{Provider: "strong", Identifiers: []store.Identifier{id}, Level: assurance.High})
		if err != nil || next != "/login?err=failed&from=strong&req=r1" || len(sessionCookies(w)) != 0 {
			t.Errorf("%s %s: next %q, err %v, cookies %v", id.Scheme, id.Value, next, err, w.Result().Cookies())
		}
		if _, err := f.st.GetPersonByIdentifier(ctx, id.Scheme, id.Value); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s %s stored: %v", id.Scheme, id.Value, err)
		}
		ev := lastEventOf(t, f, broker.EventAuthentication)
		if ev.Result != store.ResultFailure || ev.Reason != broker.ReasonInvalidIdentifier || ev.Provider != "strong" {
			t.Errorf("%s %s: audit %+v", id.Scheme, id.Value, ev)
		}
		if !slices.Contains(o.got, "strong error") {
			t.Errorf("%s %s: health observed %v", id.Scheme, id.Value, o.got)
		}
	}

	// A provider the broker does not have is refused as such, whatever
	// it says, and nothing is charged to it.
	o := &outcomes{}
	f.b.Health = o
	bad := store.Identifier{Scheme: "no:dnr", Value: "41018012366"}
	if _, err, _ := finish(f, "r1", provider.Result{Provider: "rogue", Identifiers: []store.Identifier{bad}, Level: assurance.High}); err == nil ||
		lastEventOf(t, f, broker.EventAuthentication).Reason != "unknown_provider" || len(o.got) != 0 {
		t.Errorf("unknown provider: err %v, health %v", err, o.got)
	}

	// A link proving a number that is not valid adds nothing.
	b := loggedIn(t, f, "p1", assurance.High)
	next, err := finishIn(f, b, linkAttempt(t, f, b, "weak"), provider.Result{Provider: "weak", Identifiers: []store.Identifier{bad}, Level: assurance.Substantial})
	if err != nil || next != "/account/link/refused?why=failed" {
		t.Errorf("link with an invalid number: %q, %v", next, err)
	}
	if ev := lastEventOf(t, f, "link"); ev.Result != store.ResultFailure || ev.Reason != broker.ReasonInvalidIdentifier || ev.PersonID != "p1" {
		t.Errorf("link audit %+v", ev)
	}
	p, err := f.st.GetPerson(ctx, "p1")
	must(t, err)
	if len(p.Identifiers) != 1 {
		t.Errorf("p1 holds %d identifiers after a refused link", len(p.Identifiers))
	}
}

// TestFinishMarksSyntheticPersons: a person first proved by a synthetic
// test number (month + 80, as test eIDs issue them) is stored as a test
// person, not a real one; a real number makes a real person.
func TestFinishMarksSyntheticPersons(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.request(t, "r1")
	for _, tt := range []struct {
		id        store.Identifier
		synthetic bool
	}{
		{store.Identifier{Scheme: "no:fnr", Value: "01819000049"}, true},
		{store.Identifier{Scheme: "no:dnr", Value: "41819000032"}, true},
		{store.Identifier{Scheme: "no:fnr", Value: "01019000083"}, false},
	} {
		id := sessionPerson(t, f, "r1", provider.Result{Provider: "strong", Identifiers: []store.Identifier{tt.id}, Level: assurance.High})
		p, err := f.st.GetPerson(ctx, id)
		must(t, err)
		if p.Synthetic != tt.synthetic {
			t.Errorf("%s %s: synthetic %v, want %v", tt.id.Scheme, tt.id.Value, p.Synthetic, tt.synthetic)
		}
	}
}

// TestLoginOnlyInTheBrowserThatBeganIt: a login for a relying party
// that the authorization endpoint bound to a browser (ADR 47) is
// served, and finished, only in that browser: in any other the login
// page and its start say to begin again, and a provider's result makes
// no session, audited as browser_mismatch. Not the provider's failure.
func TestLoginOnlyInTheBrowserThatBeganIt(t *testing.T) {
	f := newFixture(t)
	const mark = "AAAAAAAAAAAAAAAAAAAAAA" // 128 bits, base64url
	ctx := context.Background()
	must(t, f.st.CreateAuthRequest(ctx, &store.AuthRequest{
		ID: "r1", ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"}, MaxAge: -1,
		Browser: oidc.BrowserBinding(mark), CreatedAt: f.now, ExpiresAt: f.now.Add(10 * time.Minute),
	}))
	ours := &http.Cookie{Name: broker.BrowserCookie, Value: mark}
	other := &http.Cookie{Name: broker.BrowserCookie, Value: "BBBBBBBBBBBBBBBBBBBBBA"}
	for _, c := range [][]*http.Cookie{nil, {other}} {
		for _, path := range []string{"/login?req=r1", "/login/start?req=r1&provider=strong"} {
			if w := f.do(path, c...); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "was not complete or was changed") {
				t.Errorf("%s in another browser: %d %.200s", path, w.Code, w.Body)
			}
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/upstream/strong/callback", nil)
		for _, c := range c {
			r.AddCookie(c)
		}
		next, err := f.b.Finish(w, r, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High})
		must(t, err)
		if next != "/login?req=r1" || len(sessionCookies(w)) != 0 {
			t.Errorf("finished in another browser: next %q, cookies %v", next, w.Result().Cookies())
		}
	}
	ev := f.events(t)
	if len(ev) != 2 || ev[0].Reason != broker.ReasonOtherBrowser || ev[1].Reason != broker.ReasonOtherBrowser || ev[0].ClientID != "" {
		t.Errorf("audit = %+v", ev)
	}
	if w := f.do("/login/start?req=r1&provider=strong", ours); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/started/strong") {
		t.Errorf("start in its own browser: %d %s", w.Code, w.Header().Get("Location"))
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/upstream/strong/callback", nil)
	r.AddCookie(ours)
	next, err := f.b.Finish(w, r, "r1", provider.Result{Provider: "strong", PersonID: "p1", Level: assurance.High})
	must(t, err)
	if next != "/authorize/resume?req=r1" {
		t.Errorf("finished in its own browser: next %q", next)
	}
}

// countedRequests is the real store, counting the reads of
// authorization requests.
type countedRequests struct {
	store.AuthRequests
	mu    sync.Mutex
	reads int
}

func (c *countedRequests) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.AuthRequests.GetAuthRequest(ctx, id, now)
}

// TestExpiredAttemptIsReadOnce: the page for a login whose request ran
// out of time names its service from the one read of the request that
// found it expired, not from a second; a login that never was is read
// once too, and gets the plain page.
func TestExpiredAttemptIsReadOnce(t *testing.T) {
	f := newFixture(t)
	f.request(t, "old")
	f.now = f.now.Add(time.Hour)
	counted := &countedRequests{AuthRequests: f.b.AuthRequests}
	f.b.AuthRequests = counted
	for _, tc := range []struct{ path, want string }{
		{"/login?req=old", `<a class="button" href="https://bank.example/" id="service">`},
		{"/login/start?req=old&provider=strong", `<a class="button" href="https://bank.example/" id="service">`},
		{"/login?req=nope", "We could not find this login"},
	} {
		counted.reads = 0
		w := f.get(tc.path)
		if body := w.Body.String(); w.Code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want 400 with %q:\n%s", tc.path, w.Code, tc.want, body)
		}
		if counted.reads != 1 {
			t.Errorf("%s: the request was read %d times, want once", tc.path, counted.reads)
		}
	}
}

// TestWaysIn: what the broker tells the authorization endpoint a login
// page can offer a request, for the client a person goes back to, is
// what the page offers: none when no provider the client accepts can
// reach the level, down when every one that can is down (after the
// client's degraded-mode policy), offered otherwise.
func TestWaysIn(t *testing.T) {
	f := newFixture(t)
	client := func(degraded string, providers ...string) *store.Client {
		return &store.Client{ID: "bank", Providers: providers, DegradedLevel: degraded}
	}
	ask := func(acr ...string) *store.AuthRequest {
		return &store.AuthRequest{ID: "r1", ClientID: "bank", ACRValues: acr}
	}
	for _, tc := range []struct {
		name   string
		down   []string
		client *store.Client
		req    *store.AuthRequest
		want   oidc.WaysIn
	}{
		{"all up", nil, client(""), ask(assurance.ACRHigh), oidc.WaysOffered},
		{"only weak accepted, high asked", nil, client("", "weak"), ask(assurance.ACRHigh), oidc.WaysNone},
		{"only weak accepted, weak down, high asked", []string{"weak"}, client("", "weak"), ask(assurance.ACRHigh), oidc.WaysNone},
		{"strong down, high asked", []string{"strong"}, client(""), ask(assurance.ACRHigh), oidc.WaysDown},
		{"strong down, substantial asked", []string{"strong"}, client(""), ask(assurance.ACRSubstantial), oidc.WaysOffered},
		{"strong down, high asked, degraded to substantial", []string{"strong"}, client("substantial"), ask(assurance.ACRHigh), oidc.WaysOffered},
		{"all down, degraded to substantial", []string{"weak", "strong"}, client("substantial"), ask(assurance.ACRHigh), oidc.WaysDown},
		{"all down, no level asked", []string{"weak", "strong"}, client(""), ask(), oidc.WaysDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.b.Health = downMonitor(t, f, tc.down...)
			if got := f.b.WaysIn(tc.req, tc.client); got != tc.want {
				t.Errorf("WaysIn = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestProviderHintUnknownIsLogged: a provider_hint that names no
// provider here (a typing error, an ID from another deployment) leaves
// the choice to the person, as one that is down does, and the node's
// log says so with the IDs there are, for the service's developer; a
// known one, up or down, is not logged.
func TestProviderHintUnknownIsLogged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var logs bytes.Buffer
	f.b.Log = slog.New(slog.NewTextHandler(&logs, nil))
	f.b.Health = downMonitor(t, f, "weak")
	c, err := f.st.GetClient(ctx, "bank")
	must(t, err)
	for _, tc := range []struct {
		hint   string
		logged bool
	}{{"bank-id", true}, {"weak", false}, {"strong", false}, {"any", false}} {
		logs.Reset()
		req := &store.AuthRequest{ID: "r-" + tc.hint, ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: []string{"openid"},
			MaxAge: -1, ProviderHint: tc.hint, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Minute)}
		must(t, f.st.CreateAuthRequest(ctx, req))
		f.b.Begin(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/authorize", nil), req, c)
		got := logs.String()
		if logged := strings.Contains(got, "provider_hint names no provider"); logged != tc.logged {
			t.Errorf("provider_hint %s: log %q, want logged %v", tc.hint, got, tc.logged)
		}
		if tc.logged && (!strings.Contains(got, "hint="+tc.hint) || !strings.Contains(got, "client=bank") || !strings.Contains(got, "weak,strong")) {
			t.Errorf("provider_hint %s: log %q, want the hint, the client and the providers there are", tc.hint, got)
		}
	}
}
