package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/url"
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
