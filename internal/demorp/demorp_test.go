package demorp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestTextsComplete: every string exists in every language.
func TestTextsComplete(t *testing.T) {
	for _, tag := range languages {
		v := reflect.ValueOf(texts[tag]).Elem()
		for i := range v.NumField() {
			if v.Field(i).String() == "" {
				t.Errorf("%s: %s is empty", tag, v.Type().Field(i).Name)
			}
		}
	}
	if len(texts) != len(languages) {
		t.Errorf("%d catalogues for %d languages", len(texts), len(languages))
	}
}

func TestLang(t *testing.T) {
	tests := []struct {
		name, query, cookie, accept, want string
	}{
		{name: "nothing", want: "nb"},
		{name: "accept English", accept: "en-GB,en;q=0.9", want: "en"},
		{name: "accept Norwegian", accept: "no,en;q=0.5", want: "nb"},
		{name: "accept nynorsk", accept: "nn-NO", want: "nb"},
		{name: "accept unknown first", accept: "de-DE,en;q=0.5", want: "en"},
		{name: "accept Danish", accept: "da-DK,da;q=0.9,en;q=0.8", want: "da"},
		{name: "accept Danish, plain", accept: "da", want: "da"},
		{name: "query Danish", query: "da", cookie: "nb", accept: "en", want: "da"},
		{name: "cookie over accept", cookie: "nb", accept: "en", want: "nb"},
		{name: "query over cookie", query: "en", cookie: "nb", want: "en"},
		{name: "unknown query", query: "xx", cookie: "en", want: "en"},
		{name: "unknown cookie", cookie: "xx", accept: "en", want: "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/demo-bank/?lang="+tt.query, nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: langCookie, Value: tt.cookie})
			}
			r.Header.Set("Accept-Language", tt.accept)
			if got := lang(r); got != tt.want {
				t.Errorf("lang = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHome: the home page names the levels in the page's language and
// remembers a language chosen with ?lang=. It needs no Varde.
func TestHome(t *testing.T) {
	rp := &RP{
		Name: "Demo Bank", ClientID: "demo-bank", Issuer: "http://localhost:1", BaseURL: "http://localhost:1/demo-bank",
		ACRValues: []string{"http://eidas.europa.eu/LoA/substantial", "http://eidas.europa.eu/LoA/high", "urn:example:other"},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
	}
	h := mustHandler(t, rp)
	tests := []struct {
		name, url, accept string
		want              []string
		cookie            string
	}{
		{name: "English", url: "/demo-bank/", accept: "en", want: []string{`lang="en"`, "Log in to Demo Bank", "<strong>Substantial</strong>", "<strong>High</strong>", "<strong>urn:example:other</strong>", `value="http://eidas.europa.eu/LoA/high"`}},
		{name: "Norwegian chosen", url: "/demo-bank/?lang=nb", accept: "en", want: []string{`lang="nb"`, "Logg inn i Demo Bank", "<strong>Betydelig</strong>", "<strong>Høyt</strong>", `href="/demo-bank/?lang=en"`}, cookie: "nb"},
		{name: "Danish browser", url: "/demo-bank/", accept: "da-DK,da;q=0.9", want: []string{`<html lang="da">`, "Log ind på Demo Bank", "<strong>Betydeligt</strong>", "<strong>Højt</strong>", `href="/demo-bank/?lang=nb"`, `href="/demo-bank/?lang=da" hreflang="da" lang="da" aria-current="true">Dansk</a>`}},
		{name: "Danish chosen", url: "/demo-bank/?lang=da", accept: "en", want: []string{`<html lang="da">`, "Log ind på Demo Bank"}, cookie: "da"},
		{name: "style sheet", url: "/demo-bank/static/demobank.css", want: []string{"Demo Bank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.url, nil)
			r.Header.Set("Accept-Language", tt.accept)
			w := servePage(t, h, r, tt.want)
			var cookie string
			for _, c := range w.Result().Cookies() {
				if c.Name == langCookie {
					cookie = c.Value
				}
			}
			if cookie != tt.cookie {
				t.Errorf("language cookie = %q, want %q", cookie, tt.cookie)
			}
		})
	}
}

// TestAccountGreeting: the account page greets the person by the name
// in the ID token, and with a plain welcome when Varde sent none.
func TestAccountGreeting(t *testing.T) {
	tests := []struct {
		name, accept string
		claims       map[string]any
		want, not    []string
	}{
		{name: "named", accept: "nb", claims: map[string]any{"name": "Kari Nordmann", "sub": "s"},
			want: []string{">Hei, Kari Nordmann</h1>", `<dd id="name">Kari Nordmann</dd>`}},
		{name: "no name", accept: "nb", claims: map[string]any{"sub": "s"},
			want: []string{">Velkommen</h1>"}, not: []string{"%!", `id="name"`, "Navn"}},
		{name: "no name, English", accept: "en", claims: map[string]any{"sub": "s"},
			want: []string{">Welcome</h1>"}, not: []string{"%!", `id="name"`}},
		{name: "named, Danish", accept: "da-DK", claims: map[string]any{"name": "Karen Jensen", "sub": "s"},
			want: []string{">Hej Karen Jensen</h1>", `<dd id="name">Karen Jensen</dd>`, "Dine konti"}, not: []string{"%!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{Name: "Demo Bank", BaseURL: "http://localhost:1/demo-bank",
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
			serveAccount(t, rp, tt.accept, tt.claims, tt.want, tt.not)
		})
	}
}

// serveAccount serves rp's account page, in the language accept asks
// for, to a session holding claims, and checks it holds want and none of
// not.
func serveAccount(t *testing.T, rp *RP, accept string, claims map[string]any, want, not []string) {
	t.Helper()
	h := mustHandler(t, rp)
	rp.sessions["s1"] = &loggedIn{Claims: claims, expires: time.Now().Add(time.Hour)}
	r := httptest.NewRequest(http.MethodGet, "/demo-bank/account", nil)
	r.Header.Set("Accept-Language", accept)
	r.AddCookie(&http.Cookie{Name: cookieName, Value: "s1"})
	body := servePage(t, h, r, want).Body.String()
	for _, s := range not {
		if strings.Contains(body, s) {
			t.Errorf("page has %q:\n%s", s, body)
		}
	}
}

// servePage serves r, requires 200, and checks the page holds want.
func servePage(t *testing.T, h http.Handler, r *http.Request, want []string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, body)
	}
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q:\n%s", s, body)
		}
	}
	return w
}

// TestLoginRefusedPlainly: when Varde refuses or drops the pushed
// authorization request, the home page says in plain words what happened
// and what to do, in the page's language; what went wrong (Varde's error
// code and description, a Go error naming the endpoint) goes to the log,
// never onto the page.
func TestLoginRefusedPlainly(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, accept string
		par          http.HandlerFunc
		want         string
	}{
		{name: "refused", accept: "en", par: func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": "client assertion signed by an unknown key"})
		}, want: texts["en"].ErrStart},
		{name: "busy, not JSON", accept: "nb", par: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>busy</html>", http.StatusServiceUnavailable)
		}, want: texts["nb"].ErrStart},
		{name: "connection dropped", accept: "da", par: func(w http.ResponseWriter, r *http.Request) {
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		}, want: texts["da"].ErrStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux, srv := fakeIssuer(t)
			mux.HandleFunc("POST /par", tt.par)
			var log strings.Builder
			rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
				Key: key, KeyID: "k1", HTTPClient: srv.Client(), ACRValues: []string{"x"},
				Log: slog.New(slog.NewTextHandler(&log, nil)), Now: time.Now}
			r := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader("acr=x"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Accept-Language", tt.accept)
			w := httptest.NewRecorder()
			mustHandler(t, rp).ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != http.StatusBadGateway || !strings.Contains(body, tt.want) {
				t.Errorf("status %d, want 502 and %q:\n%s", w.Code, tt.want, body)
			}
			for _, s := range []string{"invalid_client", "unknown key", "PAR", srv.URL, "%!", "busy</", "EOF"} {
				if strings.Contains(body, s) {
					t.Errorf("page shows %q:\n%s", s, body)
				}
			}
			if !strings.Contains(log.String(), "pushed authorization request") {
				t.Errorf("log lacks the refusal: %s", log.String())
			}
		})
	}
}

// TestPagesNamed: every Demo Bank page's title names it, a page showing
// an error says so first (WCAG 2.4.2, 3.3.1), an address Demo Bank does
// not serve gets its own page in the person's language with the way home,
// and the forms' addresses asked for by GET lead home, never to plain
// text.
func TestPagesNamed(t *testing.T) {
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: "http://localhost:1", BaseURL: "http://localhost:1/demo-bank",
		HTTPClient: &http.Client{Timeout: time.Second},
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	h := mustHandler(t, rp)
	rp.provider = &oidc.Provider{} // discovered: the callback checks its state first
	rp.sessions["s1"] = &loggedIn{Claims: map[string]any{"sub": "s"}, expires: time.Now().Add(time.Hour)}
	tests := []struct {
		name, method, url, accept, session string
		status                             int
		want                               []string
	}{
		{name: "home", method: "GET", url: "/demo-bank/", accept: "en", status: 200,
			want: []string{"<title>Log in to Demo Bank</title>"}},
		{name: "home, logged in", method: "GET", url: "/demo-bank/", accept: "en", session: "s1", status: 200,
			want: []string{"<title>Welcome back – Demo Bank</title>"}},
		{name: "account", method: "GET", url: "/demo-bank/account", accept: "da", session: "s1", status: 200,
			want: []string{"<title>Dine konti – Demo Bank</title>"}},
		{name: "login not started here", method: "GET", url: "/demo-bank/callback?state=x&code=y", accept: "nb", status: 400,
			want: []string{"<title>Feil: Logg inn i Demo Bank</title>", `role="alert"`}},
		{name: "login not started here, English", method: "GET", url: "/demo-bank/callback?state=x&code=y", accept: "en", status: 400,
			want: []string{"<title>Error: Log in to Demo Bank</title>"}},
		{name: "unknown address", method: "GET", url: "/demo-bank/accounts/x", accept: "da", status: 404,
			want: []string{`<html lang="da">`, "<title>Siden findes ikke – Demo Bank</title>", "<h1>Siden findes ikke</h1>", `<a href="/demo-bank/">Gå til forsiden`, `<p class="bank"><a href="/demo-bank/">`}},
		{name: "login by GET", method: "GET", url: "/demo-bank/login", status: 303, want: []string{`href="http://localhost:1/demo-bank/"`}},
		{name: "logout by GET", method: "GET", url: "/demo-bank/logout", status: 303, want: []string{`href="http://localhost:1/demo-bank/"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.url, nil)
			r.Header.Set("Accept-Language", tt.accept)
			if tt.session != "" {
				r.AddCookie(&http.Cookie{Name: cookieName, Value: tt.session})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q:\n%s", s, body)
				}
			}
		})
	}
}

// TestLoginPendingBounded: with maxPending logins in progress, another
// POST /login gets a plain page with 503 and sends Varde no request; once
// one of them expires, the next login goes ahead.
func TestLoginPendingBounded(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mux, srv := fakeIssuer(t)
	var pushed atomic.Int64
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		pushed.Add(1)
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "urn:x", "expires_in": 60})
	})
	now := time.Now()
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
		Key: key, KeyID: "k1", HTTPClient: srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	h := mustHandler(t, rp)
	for i := range maxPending {
		rp.pending["s"+time.Duration(i).String()] = pending{expires: now.Add(time.Duration(i+1) * time.Second)}
	}
	login := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept-Language", "en")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := login()
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), texts["en"].ErrBusy) || w.Header().Get("Retry-After") == "" {
		t.Errorf("full: status %d, Retry-After %q, want 503 and %q:\n%s", w.Code, w.Header().Get("Retry-After"), texts["en"].ErrBusy, w.Body.String())
	}
	if pushed.Load() != 0 || len(rp.pending) != maxPending {
		t.Errorf("full: %d requests pushed, %d pending; want 0 and %d", pushed.Load(), len(rp.pending), maxPending)
	}
	now = now.Add(1500 * time.Millisecond) // the first one expires
	if w := login(); w.Code != http.StatusSeeOther {
		t.Errorf("after one expired: status %d, want 303:\n%s", w.Code, w.Body.String())
	}
	if pushed.Load() != 1 || len(rp.pending) != maxPending {
		t.Errorf("after one expired: %d requests pushed, %d pending; want 1 and %d", pushed.Load(), len(rp.pending), maxPending)
	}
}

// fakeIssuer serves a discovery document naming itself as issuer, with
// its endpoints on mux, for the test to add, and ES256 ID tokens, as
// Varde's.
func fakeIssuer(t testing.TB) (*http.ServeMux, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "pushed_authorization_request_endpoint": srv.URL + "/par",
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	return mux, srv
}

// TestFormsRefusedCrossSite: a form another site sends to the bank's
// logout or login is refused with 403 and a page that says why, and the
// person stays logged in; the bank's own form logs them out.
func TestFormsRefusedCrossSite(t *testing.T) {
	for _, tt := range []struct {
		name, path, site, origin string
		status                   int
		ended                    bool
	}{
		{name: "logout, other site", path: "/demo-bank/logout", site: "cross-site", status: http.StatusForbidden},
		{name: "logout, other origin", path: "/demo-bank/logout", origin: "https://evil.example", status: http.StatusForbidden},
		{name: "login, other site", path: "/demo-bank/login", site: "cross-site", status: http.StatusForbidden},
		// Varde is not reachable here: the bank's session ends, and the
		// page says Varde's may not have.
		{name: "logout, same origin", path: "/demo-bank/logout", site: "same-origin", status: http.StatusBadGateway, ended: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{
				Name: "Demo Bank", ClientID: "demo-bank", Issuer: "http://localhost:1", BaseURL: "http://bank.test/demo-bank",
				HTTPClient: &http.Client{Timeout: time.Second},
				Log:        slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now,
			}
			h := mustHandler(t, rp)
			rp.sessions["s1"] = &loggedIn{Claims: map[string]any{"sub": "s"}, expires: time.Now().Add(time.Hour)}
			r := httptest.NewRequest(http.MethodPost, "http://bank.test"+tt.path, strings.NewReader(""))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Accept-Language", "en")
			if tt.site != "" {
				r.Header.Set("Sec-Fetch-Site", tt.site)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			r.AddCookie(&http.Cookie{Name: cookieName, Value: "s1"})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusForbidden && !strings.Contains(w.Body.String(), "came from another website") {
				t.Errorf("page does not say why: %s", w.Body)
			}
			if _, stays := rp.sessions["s1"]; stays == tt.ended {
				t.Errorf("session ended: %v, want %v", !stays, tt.ended)
			}
		})
	}
}

// TestLoginFormBounded: a login form body past maxFormBody gets 413 and
// a page that says so in the page's language, and Varde is not asked.
func TestLoginFormBounded(t *testing.T) {
	mux, srv := fakeIssuer(t)
	var pushed atomic.Int64
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		pushed.Add(1)
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "urn:x", "expires_in": 60})
	})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
		Key: key, KeyID: "k1", HTTPClient: srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	h := mustHandler(t, rp)
	body := "acr=&pad=" + strings.Repeat("x", maxFormBody)
	r := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Accept-Language", "da")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), texts["da"].ErrForm) {
		t.Errorf("status %d, want 413 and %q:\n%s", w.Code, texts["da"].ErrForm, w.Body.String())
	}
	if pushed.Load() != 0 {
		t.Errorf("%d requests pushed, want 0", pushed.Load())
	}
}

// TestExpiredSessionsDropped: with no new logins, an expired session is
// dropped when its cookie comes back, and every other expired session
// goes with the next page served once sweepEvery has passed; a live one
// stays.
func TestExpiredSessionsDropped(t *testing.T) {
	now := time.Now()
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: "http://localhost:1", BaseURL: "http://localhost:1/demo-bank",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	h := mustHandler(t, rp)
	get := func(path, sid string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if sid != "" {
			r.AddCookie(&http.Cookie{Name: cookieName, Value: sid})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	get("/demo-bank/", "") // the first sweep
	rp.sessions["a"] = &loggedIn{Claims: map[string]any{"sub": "a"}, expires: now.Add(time.Second)}
	rp.sessions["b"] = &loggedIn{Claims: map[string]any{"sub": "b"}, expires: now.Add(time.Second)}
	rp.sessions["live"] = &loggedIn{Claims: map[string]any{"sub": "c"}, expires: now.Add(sessionTTL)}
	now = now.Add(2 * time.Second)
	if code := get("/demo-bank/account", "a"); code != http.StatusSeeOther {
		t.Errorf("expired session's account page: status %d, want 303", code)
	}
	if _, ok := rp.sessions["a"]; ok {
		t.Error("expired session a still kept after its cookie came back")
	}
	now = now.Add(sweepEvery)
	get("/demo-bank/", "")
	if _, ok := rp.sessions["b"]; ok {
		t.Error("expired session b still kept after a sweep")
	}
	if _, ok := rp.sessions["live"]; !ok {
		t.Error("live session dropped")
	}
}

// TestLogoutVardeUnreachable: when Varde's metadata cannot be read at
// logout, the bank's session still ends, and the page says, in the
// page's language, that Varde's session may still be live, with a link
// that asks Varde again; once Varde answers, the link leads to its
// end_session_endpoint.
func TestLogoutVardeUnreachable(t *testing.T) {
	var up atomic.Bool
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/jwks", "pushed_authorization_request_endpoint": srv.URL + "/par",
			"end_session_endpoint": srv.URL + "/logout",
		})
	})
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
		HTTPClient: srv.Client(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	h := mustHandler(t, rp)
	for _, tag := range languages {
		t.Run(tag, func(t *testing.T) {
			rp.sessions["s1"] = &loggedIn{IDToken: "x.y.z", Claims: map[string]any{"sub": "a"}, expires: time.Now().Add(time.Hour)}
			r := httptest.NewRequest(http.MethodPost, "/demo-bank/logout", nil)
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("Accept-Language", tag)
			r.AddCookie(&http.Cookie{Name: cookieName, Value: "s1"})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusBadGateway {
				t.Errorf("status %d, want 502", w.Code)
			}
			for _, want := range []string{template.HTMLEscapeString(texts[tag].ErrLogoutVarde), `href="/demo-bank/logout/varde"`, template.HTMLEscapeString(texts[tag].LogoutRetry)} {
				if !strings.Contains(w.Body.String(), want) {
					t.Errorf("page lacks %q:\n%s", want, w.Body.String())
				}
			}
			if _, ok := rp.sessions["s1"]; ok {
				t.Error("the bank's session did not end")
			}
		})
	}
	up.Store(true)
	r := httptest.NewRequest(http.MethodGet, "/demo-bank/logout/varde", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, srv.URL+"/logout?") || !strings.Contains(loc, "client_id=demo-bank") {
		t.Errorf("try again: status %d, Location %q; want 303 to %s/logout with client_id", w.Code, loc, srv.URL)
	}
}

// TestBadBaseURLRefused: a BaseURL the bank cannot be served under is
// refused when the bank is built, with an error naming it, rather than
// served wrongly or ending the process.
func TestBadBaseURLRefused(t *testing.T) {
	for _, base := range []string{"http://bank.test:port/demo-bank", "/demo-bank", "bank.test/demo-bank", "ftp://bank.test/demo-bank", "http://bank.test/demo-bank?x=1", "http://bank.test/demo-bank#top", "http://%zz/demo-bank"} {
		t.Run(base, func(t *testing.T) {
			rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: "http://localhost:1", BaseURL: base,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
			h, err := rp.Handler()
			if err == nil || h != nil || !strings.Contains(err.Error(), "BaseURL") || !strings.Contains(err.Error(), base) {
				t.Errorf("Handler() = %v, %v; want no handler and an error naming BaseURL %q", h, err, base)
			}
		})
	}
}

// mustHandler is rp's handler; the test fails if rp cannot be built.
func mustHandler(t *testing.T, rp *RP) http.Handler {
	t.Helper()
	h, err := rp.Handler()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUILocalesBounded: only the first few entries of Accept-Language
// are read, and only well-formed tags of a sane length are passed on as
// ui_locales, however long the header.
func TestUILocalesBounded(t *testing.T) {
	long := strings.Repeat("en-GB,", 10000)
	tests := []struct{ name, accept, want string }{
		{name: "plain", accept: "da-DK,da;q=0.9,en;q=0.8", want: "da-DK da en"},
		{name: "many", accept: long, want: strings.TrimSpace(strings.Repeat("en-GB ", maxLocales))},
		{name: "tag too long", accept: strings.Repeat("a", 200) + ",en", want: "en"},
		{name: "not a tag", accept: "<script>,en ;q=1", want: "en"},
		{name: "past the entries read", accept: strings.Repeat(",", maxLocaleParts) + "da", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := uiLocales(tt.accept); got != tt.want {
				t.Errorf("uiLocales = %.80q, want %q", got, tt.want)
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/demo-bank/", nil)
	r.Header.Set("Accept-Language", strings.Repeat("xx,", 100)+"da")
	if got := lang(r); got != "nb" {
		t.Errorf("lang of a language past the entries read = %q, want the default nb", got)
	}
}

// FuzzUILocales: whatever Accept-Language says, ui_locales holds at most
// maxLocales well-formed tags of at most maxLocaleTag characters.
func FuzzUILocales(f *testing.F) {
	for _, s := range []string{"", "da-DK,da;q=0.9,en;q=0.8", "*", ",,;,", "en-GB;q=0.5, nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		tags := strings.Fields(uiLocales(accept))
		if len(tags) > maxLocales {
			t.Fatalf("%d tags", len(tags))
		}
		for _, tag := range tags {
			if len(tag) > maxLocaleTag || strings.ContainsFunc(tag, notTagChar) {
				t.Fatalf("tag %q", tag)
			}
		}
	})
}

// TestAccountNamesProviderAndLevel: the account page names the provider
// logged in with, an upstream by the name Demo Bank was given for it and
// Varde's passkey provider in the page's language, and shows the level
// by name, its acr URI only as the name's title.
func TestAccountNamesProviderAndLevel(t *testing.T) {
	tests := []struct {
		name, accept string
		claims       map[string]any
		want, not    []string
	}{
		{name: "upstream", accept: "en", claims: map[string]any{"sub": "s", "provider": "bankid", "acr": "http://eidas.europa.eu/LoA/high"},
			want: []string{`<dd id="provider">Demo BankID</dd>`, `<span id="level" title="http://eidas.europa.eu/LoA/high">High</span>`},
			not:  []string{`<dd id="provider">bankid</dd>`, `<code id="acr">`}},
		{name: "passkey, Norwegian", accept: "nb", claims: map[string]any{"sub": "s", "provider": "passkey", "acr": "http://eidas.europa.eu/LoA/substantial"},
			want: []string{`<dd id="provider">Passnøkkel</dd>`, `title="http://eidas.europa.eu/LoA/substantial">Betydelig</span>`}},
		{name: "unknown provider and level", accept: "en", claims: map[string]any{"sub": "s", "provider": "other-eid", "acr": "urn:example:gold"},
			want: []string{`<dd id="provider">other-eid</dd>`, `<span id="level">urn:example:gold</span>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{Name: "Demo Bank", BaseURL: "http://localhost:1/demo-bank", ProviderNames: map[string]string{"bankid": "Demo BankID"},
				Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
			serveAccount(t, rp, tt.accept, tt.claims, tt.want, tt.not)
		})
	}
}

// pushingRP is Demo Bank at a fake Varde that accepts every pushed
// request, by the clock now, and its handler.
func pushingRP(t *testing.T, now func() time.Time) (*RP, http.Handler) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mux, srv := fakeIssuer(t)
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "urn:x", "expires_in": 60})
	})
	rp := &RP{Name: "Demo Bank", ClientID: "demo-bank", Issuer: srv.URL, BaseURL: "http://localhost:1/demo-bank",
		Key: key, KeyID: "k1", HTTPClient: srv.Client(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now}
	return rp, mustHandler(t, rp)
}

// beginLogin posts the bank's login form and wants the redirect to Varde.
func beginLogin(t *testing.T, h http.Handler) *http.Response {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/demo-bank/login", strings.NewReader(""))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: status %d, want 303", w.Code)
	}
	return w.Result()
}

// TestLoginPendingAsLongAsVardeKeepsIt: a login begun at the bank is
// still awaited 59 minutes later, since Varde lets the person extend
// their login up to an hour (ADR 50), and is let go after the hour.
func TestLoginPendingAsLongAsVardeKeepsIt(t *testing.T) {
	now := time.Now()
	rp, h := pushingRP(t, func() time.Time { return now })
	beginLogin(t, h)
	now = now.Add(59 * time.Minute)
	beginLogin(t, h) // prunes what has expired
	if len(rp.pending) != 2 {
		t.Errorf("59 minutes on: %d logins awaited, want 2 (the first still awaited)", len(rp.pending))
	}
	now = now.Add(2 * time.Minute)
	beginLogin(t, h)
	if len(rp.pending) != 2 {
		t.Errorf("61 minutes on: %d logins awaited, want 2 (the first let go)", len(rp.pending))
	}
}

// TestStateCookieLivesAsLongAsTheLogin: the cookie naming a browser's
// logins in progress lasts as long as the bank awaits them.
func TestStateCookieLivesAsLongAsTheLogin(t *testing.T) {
	_, h := pushingRP(t, time.Now)
	found := false
	for _, c := range beginLogin(t, h).Cookies() {
		if c.Name != "demobank_state" {
			continue
		}
		found = true
		if time.Duration(c.MaxAge)*time.Second != pendingTTL {
			t.Errorf("state cookie Max-Age %ds, want %v", c.MaxAge, pendingTTL)
		}
	}
	if !found {
		t.Error("no state cookie set")
	}
}
