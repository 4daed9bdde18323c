package httpx

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func testPages(t *testing.T, locales fstest.MapFS) (*Pages, error) {
	t.Helper()
	tmpl := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`<html lang="{{.Lang}}">{{block "content" .}}{{end}}</html>`)},
		"templates/hello.html":  {Data: []byte(`{{define "content"}}{{t "hello"}} {{tf "name" .Data}}{{end}}`)},
	}
	return NewPages(tmpl, locales, []Language{{Tag: "nb", Name: "Norsk"}, {Tag: "en", Name: "English"}}, slog.New(slog.DiscardHandler))
}

var catalogs = fstest.MapFS{
	"locales/nb.json":      {Data: []byte(`{"hello": "Hei"}`)},
	"locales/nb.more.json": {Data: []byte(`{"name": "navn: %s"}`)},
	"locales/en.json":      {Data: []byte(`{"hello": "Hello", "name": "name: %s"}`)},
}

func TestLocale(t *testing.T) {
	p, err := testPages(t, catalogs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		query     string
		cookie    string
		preferred []string
		accept    string
		want      string
	}{
		{"nothing: the first language", "", "", nil, "", "nb"},
		{"Accept-Language", "", "", nil, "en-GB,en;q=0.9", "en"},
		{"Norwegian variants match nb", "", "", nil, "no, en;q=0.5", "nb"},
		{"unsupported: the first language", "", "", nil, "fr", "nb"},
		{"ui_locales before Accept-Language", "", "", []string{"en"}, "nb", "en"},
		{"cookie before ui_locales", "", "nb", []string{"en"}, "en", "nb"},
		{"explicit choice first", "en", "nb", []string{"nb"}, "nb", "en"},
		{"unknown explicit choice ignored", "xx", "", nil, "en", "en"},
		{"malformed ui_locales ignored", "", "", []string{"!!"}, "en", "en"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/?lang="+tt.query, nil)
		if tt.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "varde_lang", Value: tt.cookie})
		}
		if tt.accept != "" {
			r.Header.Set("Accept-Language", tt.accept)
		}
		if got := p.Locale(r, tt.preferred); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestLocaleHugePreferred: a request naming a great many languages, or
// one very long one (a megabyte of ui_locales), costs no more than one
// naming a few short ones, and falls back to Accept-Language.
func TestLocaleHugePreferred(t *testing.T) {
	p, err := testPages(t, catalogs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		preferred []string
	}{
		{"many", strings.Fields(strings.Repeat("zz-Latn ", 1<<20/8))},
		{"long", []string{"zz-" + strings.Repeat("abcdefgh-", 1<<20/9) + "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Accept-Language", "en")
			start := time.Now()
			allocs := testing.AllocsPerRun(1, func() {
				if got := p.Locale(r, tt.preferred); got != "en" {
					t.Errorf("Locale = %q, want en from Accept-Language", got)
				}
			})
			// Before the bound: 655,368 allocations for many, seconds for long.
			if allocs > 100 || time.Since(start) > 500*time.Millisecond {
				t.Errorf("Locale: %.0f allocations, %v", allocs, time.Since(start))
			}
		})
	}
}

func TestRenderTranslatesAndRemembersChoice(t *testing.T) {
	p, err := testPages(t, catalogs)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/x?lang=nb", nil)
	p.Render(w, r, http.StatusTeapot, "hello", p.Locale(r, nil), "Kari")
	body := w.Body.String()
	if w.Code != http.StatusTeapot || !strings.Contains(body, `lang="nb"`) || !strings.Contains(body, "Hei navn: Kari") {
		t.Errorf("%d %s", w.Code, body)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Language") != "nb" {
		t.Errorf("headers %v", w.Header())
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != "varde_lang" || c[0].Value != "nb" || !c[0].HttpOnly {
		t.Errorf("cookies %v", c)
	}
}

// TestLanguageCookieNamedAsTheSessionCookie: the language cookie has
// the Secure flag by the setting and is named by SecureName, as the
// session cookie is: __Host-varde_lang at the root over HTTPS,
// __Secure-varde_lang under a path, varde_lang over plain HTTP. Only
// that name is read, so a varde_lang a sibling subdomain or a
// plain-HTTP page of the host set (cookie tossing) chooses no language.
func TestLanguageCookieNamedAsTheSessionCookie(t *testing.T) {
	for _, c := range []struct {
		secure     bool
		base, name string
	}{
		{true, "", "__Host-varde_lang"},
		{true, "/eid", "__Secure-varde_lang"},
		{false, "", "varde_lang"},
		{false, "/eid", "varde_lang"},
	} {
		p, err := testPages(t, catalogs)
		if err != nil {
			t.Fatal(err)
		}
		p.Secure, p.Base = c.secure, c.base
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/x?lang=en", nil)
		p.Render(w, r, http.StatusOK, "hello", p.Locale(r, nil), "Kari")
		got := w.Result().Cookies()
		if len(got) != 1 || got[0].Name != c.name || got[0].Secure != c.secure || got[0].Path != p.CookiePath() {
			t.Errorf("Secure %v, Base %q: cookies %v, want %s", c.secure, c.base, got, c.name)
		}
		for _, sent := range []string{"varde_lang", "__Host-varde_lang", "__Secure-varde_lang"} {
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.AddCookie(&http.Cookie{Name: sent, Value: "en"})
			if got, want := p.Locale(r, nil) == "en", sent == c.name; got != want {
				t.Errorf("Secure %v, Base %q: %s read %v, want %v", c.secure, c.base, sent, got, want)
			}
		}
	}
}

func TestCataloguesMustAgree(t *testing.T) {
	tests := map[string]fstest.MapFS{
		"missing key": {
			"locales/nb.json": {Data: []byte(`{"hello": "Hei"}`)},
			"locales/en.json": {Data: []byte(`{"hello": "Hello", "name": "x"}`)},
		},
		"key defined twice": {
			"locales/nb.json":   {Data: []byte(`{"hello": "Hei"}`)},
			"locales/nb.a.json": {Data: []byte(`{"hello": "Hallo"}`)},
			"locales/en.json":   {Data: []byte(`{"hello": "Hello"}`)},
		},
		"no catalogue": {
			"locales/en.json": {Data: []byte(`{"hello": "Hello"}`)},
		},
		"malformed": {
			"locales/nb.json": {Data: []byte(`{"hello": `)},
			"locales/en.json": {Data: []byte(`{"hello": "Hello"}`)},
		},
	}
	for name, fs := range tests {
		if _, err := testPages(t, fs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// linkPages has a page "hello" whose layout is only its language links.
func linkPages(t *testing.T) *Pages {
	t.Helper()
	tmpl := fstest.MapFS{
		"templates/layout.html": {Data: []byte(`{{range .Languages}}<a href="{{.URL}}">{{.Name}}</a>{{end}}`)},
		"templates/hello.html":  {Data: []byte(`{{define "content"}}{{end}}`)},
	}
	p, err := NewPages(tmpl, catalogs, []Language{{Tag: "nb", Name: "Norsk"}, {Tag: "en", Name: "English"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLanguageLinksStayOnThePage: the language links change only the
// query. A path whose decoded form starts with "//" must not turn them
// into links to another host.
func TestLanguageLinksStayOnThePage(t *testing.T) {
	p := linkPages(t)
	for _, target := range []string{"/%2Fevil.example", "/%2F%2Fevil.example/x", "/login?req=r1"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		p.Render(w, r, http.StatusNotFound, "hello", "nb", nil)
		body := w.Body.String()
		if strings.Contains(body, "evil.example") || !strings.Contains(body, `href="?`) {
			t.Errorf("%s: language links %s", target, body)
		}
	}
	w := httptest.NewRecorder()
	p.Render(w, httptest.NewRequest(http.MethodGet, "/login?req=r1", nil), http.StatusOK, "hello", "nb", nil)
	if !strings.Contains(w.Body.String(), `href="?lang=en&amp;req=r1"`) {
		t.Errorf("links lose the page's query: %s", w.Body.String())
	}
}

// TestNoLanguageLinksWhereTheyWouldLoseThePage: a page that answers a
// form posted, or that cannot be shown twice (Once), has no language
// links: each would ask for the page again by GET, without the form, or
// after the one showing.
func TestNoLanguageLinksWhereTheyWouldLoseThePage(t *testing.T) {
	p := linkPages(t)
	for _, tc := range []struct {
		name  string
		r     *http.Request
		links bool
	}{
		{"GET", httptest.NewRequest(http.MethodGet, "/account", nil), true},
		{"POST", httptest.NewRequest(http.MethodPost, "/account/codes", nil), false},
		{"GET once", Once(httptest.NewRequest(http.MethodGet, "/passkey/enrolled?t=x", nil)), false},
	} {
		w := httptest.NewRecorder()
		p.Render(w, tc.r, http.StatusOK, "hello", "nb", nil)
		if got := strings.Contains(w.Body.String(), "lang="); got != tc.links {
			t.Errorf("%s: language links %t, want %t: %s", tc.name, got, tc.links, w.Body.String())
		}
	}
}

// TestLanguageLinksLeaveOutTheCallbacksCode: an error page at an
// upstream eID's callback keeps the code and state it was sent out of
// its language links, which would replay them, and out of what the
// person shares or bookmarks; what names the page's step stays.
func TestLanguageLinksLeaveOutTheCallbacksCode(t *testing.T) {
	p := linkPages(t)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/callback/demo-bankid?code=c0de&state=st4te&iss=https%3A%2F%2Fidp.example&session_state=s5&attempt=a1&n=notice", nil)
	p.Render(w, r, http.StatusBadRequest, "hello", "nb", nil)
	body := w.Body.String()
	for _, leak := range []string{"c0de", "st4te", "idp.example", "s5", "notice"} {
		if strings.Contains(body, leak) {
			t.Errorf("language links carry %q: %s", leak, body)
		}
	}
	if !strings.Contains(body, `href="?attempt=a1&amp;lang=en"`) {
		t.Errorf("language links lose the attempt: %s", body)
	}
	// A relying party's own request to a page it asked for keeps its
	// whole query.
	w = httptest.NewRecorder()
	r = KeepQuery(httptest.NewRequest(http.MethodGet, "/authorize?client_id=bank&state=rp", nil))
	p.Render(w, r, http.StatusBadRequest, "hello", "nb", nil)
	if !strings.Contains(w.Body.String(), `href="?client_id=bank&amp;lang=en&amp;state=rp"`) {
		t.Errorf("authorize page's links lose its request: %s", w.Body.String())
	}
}
