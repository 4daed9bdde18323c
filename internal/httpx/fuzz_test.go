package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzLocale reads any language choice a request can carry (?lang=, the
// language cookie, ui_locales, Accept-Language): the page language is
// always one the node has, a known ?lang= always wins, and the same
// request always gets the same language.
func FuzzLocale(f *testing.F) {
	f.Add("en", "nb", "da en", "en-GB,en;q=0.9")
	f.Add("", "", "", "no, en;q=0.5")
	f.Add("xx", "en\x00", "!! zz-Latn-x-"+strings.Repeat("a", 40), "*;q=0, fr;q=1.0e9")
	f.Add("", "nb", "", "en;q=0.5,,;;q=,nb;q=abc")
	p, err := testPages(&testing.T{}, catalogs)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, lang, cookie, uiLocales, accept string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.RawQuery = url.Values{"lang": {lang}}.Encode()
		r.Header["Cookie"] = []string{"varde_lang=" + cookie}
		r.Header["Accept-Language"] = []string{accept}
		got := p.Locale(r, strings.Fields(uiLocales))
		if !p.known(got) {
			t.Fatalf("language %q is not the node's", got)
		}
		if p.known(lang) && got != lang {
			t.Fatalf("?lang=%s gave %q", lang, got)
		}
		if again := p.Locale(r, strings.Fields(uiLocales)); again != got {
			t.Fatalf("%q, then %q", got, again)
		}
	})
}

// FuzzBackTo reads any back a form can post: one it takes is a page of
// the list, on this node (no scheme, host or fragment), with its query
// in one canonical form, and taken again it is the same.
func FuzzBackTo(f *testing.F) {
	pages := []string{"/login", "/passkey/login", "/account"}
	for _, s := range []string{"/login?req=abc", "/passkey/login?attempt=a&lang=nb", "//evil.example/login", "/\\evil", "/login#x",
		"/login?req=%zz", "https://evil.example/login", "/login/../account", "/account?", "/login?a=1&a=2&b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, back string) {
		got, ok := BackTo(back, pages)
		if !ok {
			if got != "" {
				t.Fatalf("%q refused, yet %q", back, got)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || u.Fragment != "" || !slices.Contains(pages, u.Path) || strings.HasPrefix(got, "//") {
			t.Fatalf("%q taken as %q", back, got)
		}
		if again, ok := BackTo(got, pages); !ok || again != got {
			t.Fatalf("%q taken as %q, then %q, %v", back, got, again, ok)
		}
	})
}
