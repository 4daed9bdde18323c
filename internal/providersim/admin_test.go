package providersim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/store"
)

// TestAdminAPI: the fault API needs the bearer token and a valid body.
func TestAdminAPI(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	for _, tc := range []struct {
		name, method, auth, body string
		status                   int
		wantErr                  string
	}{
		{"no token", "GET", "", "", 401, "invalid_token"},
		{"wrong token", "GET", "Bearer " + strings.Repeat("x", 43), "", 401, "invalid_token"},
		{"wrong scheme", "GET", "Basic " + h.sim.AdminToken(), "", 401, "invalid_token"},
		{"wrong token post", "POST", "Bearer nope", `{"mode":"down"}`, 401, "invalid_token"},
		{"not JSON", "POST", "Bearer " + h.sim.AdminToken(), `down`, 400, "invalid_request"},
		{"bad mode", "POST", "Bearer " + h.sim.AdminToken(), `{"mode":"exploding"}`, 400, "invalid_request"},
		{"bad delay", "POST", "Bearer " + h.sim.AdminToken(), `{"mode":"slow","delay":"forever"}`, 400, "invalid_request"},
		{"too long", "POST", "Bearer " + h.sim.AdminToken(), `{"mode":"slow","delay":"2m"}`, 400, "invalid_request"},
		{"read", "GET", "bearer " + h.sim.AdminToken(), "", 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.sim.AdminURL()+PathFault, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error string `json:"error"`
				Mode  string `json:"mode"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || e.Error != tc.wantErr {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, e.Error, tc.status, tc.wantErr)
			}
			if tc.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.status == 200 && e.Mode != "ok" {
				t.Errorf("mode %q", e.Mode)
			}
		})
	}
	if f := h.sim.Fault(); f.Mode != ModeOK {
		t.Errorf("refused requests changed the fault to %v", f)
	}
	// A wrong token through the client is an error, not a fault.
	bad := &AdminClient{URL: h.sim.AdminURL(), Token: "wrong-token-wrong-token"}
	if _, err := bad.SetFault(context.Background(), Fault{Mode: ModeDown}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("client with a wrong token: %v", err)
	}
}

// TestAdminClientFollowsNoRedirect: the client that switches a sim's
// fault sends its token only to the admin URL it was given. A server
// there that redirects, here to another port of the same host (which
// net/http counts as the same host and would send the token to, the
// POST repeated for a 307), is an error saying so, and the target hears
// nothing; what an answer says is shown without control characters, so
// it cannot rewrite the operator's terminal.
func TestAdminClientFollowsNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"mode":"down"}`)
	}))
	t.Cleanup(target.Close)
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirect := httptest.NewServer(http.RedirectHandler(target.URL+PathFault, code))
		t.Cleanup(redirect.Close)
		c := &AdminClient{URL: redirect.URL, Token: "the-admin-token-of-the-sim"}
		if _, err := c.SetFault(context.Background(), Fault{Mode: ModeDown}); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("SetFault through a %d: %v, want an error saying the redirect is not followed", code, err)
		}
		if _, err := c.Fault(context.Background()); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("Fault through a %d: %v, want an error saying the redirect is not followed", code, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect's target got %d requests with the token, want 0", n)
	}

	rude := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_request\u001b]0;owned\u0007","error_description":"line one\nline two\u001b[2J"}`)
	}))
	t.Cleanup(rude.Close)
	c := &AdminClient{URL: rude.URL, Token: "the-admin-token-of-the-sim"}
	_, err := c.SetFault(context.Background(), Fault{Mode: ModeDown})
	if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07\n") || !strings.Contains(err.Error(), "invalid_request") {
		t.Errorf("SetFault answered with control characters: %q", err)
	}
}

// TestAdminPage: the page needs the token once (then a cookie), switches
// modes with its buttons, and refuses forms from other origins.
func TestAdminPage(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	admin := h.sim.AdminURL()

	resp, body := get(t, b, admin+"/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) {
		t.Fatalf("page without the token: %d", resp.StatusCode)
	}
	resp, _ = get(t, b, admin+"/?token=wrong&lang=en")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("page with a wrong token: %d", resp.StatusCode)
	}
	resp, body = get(t, b, admin+"/?token="+url.QueryEscape(h.sim.AdminToken()))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "" {
		t.Fatalf("page with the token: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`id="mode-down"`, `id="mode-slow"`, `id="mode-failing"`, `id="mode-ok"`, h.sim.Issuer(), `id="simulation"`} {
		if !strings.Contains(body, want) {
			t.Errorf("admin page lacks %q", want)
		}
	}

	submit := func(origin string, form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, admin+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if site, ok := strings.CutPrefix(origin, "fetch:"); ok {
			// A browser under Referrer-Policy: no-referrer.
			req.Header.Set("Origin", "null")
			req.Header.Set("Sec-Fetch-Site", site)
		} else if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp, string(raw)
	}
	self := strings.TrimSuffix(admin, "/")
	for _, tc := range []struct {
		name, origin string
		form         url.Values
		status       int
		want         Fault
	}{
		{"slow", self, url.Values{"mode": {"slow"}, "delay": {"2s"}}, 200, Fault{Mode: ModeSlow, Delay: 2e9}},
		{"from another origin", "http://localhost:8080", url.Values{"mode": {"down"}}, 400, Fault{Mode: ModeSlow, Delay: 2e9}},
		{"without an origin", "", url.Values{"mode": {"down"}}, 400, Fault{Mode: ModeSlow, Delay: 2e9}},
		{"from a same-site page", "fetch:same-site", url.Values{"mode": {"down"}}, 400, Fault{Mode: ModeSlow, Delay: 2e9}},
		{"bad delay", self, url.Values{"mode": {"slow"}, "delay": {"later"}}, 400, Fault{Mode: ModeSlow, Delay: 2e9}},
		{"failing", self, url.Values{"mode": {"failing"}, "delay": {"2s"}}, 200, Fault{Mode: ModeFailing}},
		{"down, from the page itself", "fetch:same-origin", url.Values{"mode": {"down"}}, 200, Fault{Mode: ModeDown}},
		{"from another https origin", "https://localhost:8080", url.Values{"mode": {"slow"}}, 400, Fault{Mode: ModeDown}},
		{"failing, from its own host over https", "https://" + strings.TrimPrefix(self, "http://"), url.Values{"mode": {"failing"}}, 200, Fault{Mode: ModeFailing}},
		{"ok", self, url.Values{"mode": {"ok"}}, 200, Fault{Mode: ModeOK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := submit(tc.origin, tc.form)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d\n%.400s", resp.StatusCode, tc.status, body)
			}
			if got := h.sim.Fault(); got != tc.want {
				t.Errorf("fault %v, want %v", got, tc.want)
			}
		})
	}

	// Without the cookie the buttons do nothing.
	plain := &http.Client{}
	req, _ := http.NewRequest(http.MethodPost, admin+"/", strings.NewReader("mode=down"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", self)
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || h.sim.Fault().Mode != ModeOK {
		t.Errorf("form without the cookie: %d, fault %v", resp.StatusCode, h.sim.Fault())
	}

	// The token typed into the page's form also opens it.
	jar2, _ := cookiejar.New(nil)
	b2 := &http.Client{Jar: jar2}
	req, _ = http.NewRequest(http.MethodPost, admin+PathAdminSession, strings.NewReader(url.Values{"token": {h.sim.AdminToken()}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", self)
	resp, err = b2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Errorf("typed token: %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

// TestAdminCookieSecureOverHTTPS: the cookie holding the admin token is
// HttpOnly and SameSite=Strict, and Secure whenever the page was reached
// over https, directly or through a TLS proxy, so a browser never sends
// it over plain http.
func TestAdminCookieSecureOverHTTPS(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	token := h.sim.AdminToken()
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		secure bool
	}{
		{"plain http", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "http://localhost/?token="+url.QueryEscape(token), nil)
		}, false},
		{"tls", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "https://localhost/?token="+url.QueryEscape(token), nil)
		}, true},
		{"behind a tls proxy", func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "http://localhost/?token="+url.QueryEscape(token), nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			return r
		}, true},
		{"form from an https page", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://sim.example"+PathAdminSession, strings.NewReader(url.Values{"token": {token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "https://sim.example")
			return r
		}, true},
		{"form from an http page", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "http://sim.example"+PathAdminSession, strings.NewReader(url.Values{"token": {token}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "http://sim.example")
			return r
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.sim.adminHandler().ServeHTTP(w, tc.req())
			cookies := w.Result().Cookies()
			if w.Code != http.StatusSeeOther || len(cookies) != 1 {
				t.Fatalf("status %d, cookies %v; want 303 setting the admin cookie", w.Code, cookies)
			}
			c := cookies[0]
			if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("cookie Secure=%v HttpOnly=%v SameSite=%v; want Secure=%v, HttpOnly, Strict", c.Secure, c.HttpOnly, c.SameSite, tc.secure)
			}
		})
	}
}

// TestAdminFormRefusedLeadsBack: an admin form posted from another
// origin is refused with a page that leads back to the admin page, not
// to a service and a login the person was not making.
func TestAdminFormRefusedLeadsBack(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	for _, path := range []string{"/", PathAdminSession} {
		for _, lang := range []string{"en", "nb", "da"} {
			r := httptest.NewRequest(http.MethodPost, "http://localhost"+path, strings.NewReader("mode=down"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", "http://localhost:8080")
			r.Header.Set("Accept-Language", lang)
			w := httptest.NewRecorder()
			h.sim.adminHandler().ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != http.StatusBadRequest || h.sim.Fault().Mode != ModeOK {
				t.Fatalf("%s %s: status %d, fault %v; want 400 and no switch", path, lang, w.Code, h.sim.Fault())
			}
			next := h.sim.pages.T(lang, "sim.admin.err.form")
			if !strings.Contains(body, next) || !strings.Contains(body, `<a class="button" href="/">`) ||
				strings.Contains(body, h.sim.pages.T(lang, "error.badrequest.next")) {
				t.Errorf("%s %s: the page does not lead back to the admin page:\n%s", path, lang, body)
			}
		}
	}
}

// TestSessionCookieSecureOverHTTPS: the sim's own login session cookie
// is Secure when the browser reached the sim over https (through a TLS
// proxy in front of its loopback listener), as the admin cookie is, and
// keeps its attributes over plain http.
func TestSessionCookieSecureOverHTTPS(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	for _, tc := range []struct {
		name   string
		proto  string
		secure bool
	}{
		{"plain http", "", false},
		{"behind a tls proxy", "https", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://localhost"+PathLogin, nil)
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			w := httptest.NewRecorder()
			sess := &store.Session{PersonID: "p1", Provider: "bankid", Level: "high", AuthTime: time.Now()}
			if err := h.sim.sessions.Start(context.Background(), w, r, sess); err != nil {
				t.Fatal(err)
			}
			cookies := w.Result().Cookies()
			if len(cookies) != 1 || cookies[0].Name != "varde_sim_bankid" {
				t.Fatalf("cookies %v, want the sim's session cookie", cookies)
			}
			if c := cookies[0]; c.Secure != tc.secure || !c.HttpOnly {
				t.Errorf("cookie Secure=%v HttpOnly=%v, want Secure=%v, HttpOnly", c.Secure, c.HttpOnly, tc.secure)
			}
		})
	}
}

// TestAdminPageTokenKeepsLanguage: opening the admin page as
// /?token=…&lang=… drops the token from the URL but keeps the language.
func TestAdminPageTokenKeepsLanguage(t *testing.T) {
	h := newSim(t, "bankid", assurance.High, nil)
	for _, lang := range []string{"nb", "en", "da"} {
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar}
		resp, body := get(t, b, h.sim.AdminURL()+"/?token="+url.QueryEscape(h.sim.AdminToken())+"&lang="+lang)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("token") != "" || resp.Request.URL.Query().Get("lang") != lang {
			t.Fatalf("%s: %d at %s; want 200 at /?lang=%s", lang, resp.StatusCode, resp.Request.URL, lang)
		}
		if !strings.Contains(body, `lang="`+lang+`"`) || !strings.Contains(body, h.sim.pages.T(lang, "sim.admin.set.down")) {
			t.Errorf("%s: the admin page is not in the language asked for", lang)
		}
	}
}
