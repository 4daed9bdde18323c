package app_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/web"
)

// TestLocaleFilesMatchEnglish: each language Varde speaks has, for every
// English catalogue file (en.json, en.<part>.json), its own file with
// exactly the same keys, and web/locales holds no catalogue of a
// language that is not listed.
func TestLocaleFilesMatchEnglish(t *testing.T) {
	english, err := fs.Glob(web.Locales, "locales/en.*json")
	if err != nil || len(english) == 0 {
		t.Fatalf("English catalogues: %v %v", english, err)
	}
	listed := map[string]bool{}
	for _, l := range app.Languages {
		listed[l.Tag] = true
		for _, en := range english {
			file := path.Join("locales", l.Tag+strings.TrimPrefix(path.Base(en), "en"))
			want, got := catalogueKeys(t, en), catalogueKeys(t, file)
			for _, k := range want {
				if !slices.Contains(got, k) {
					t.Errorf("%s lacks %q", file, k)
				}
			}
			for _, k := range got {
				if !slices.Contains(want, k) {
					t.Errorf("%s has %q, which %s lacks", file, k, en)
				}
			}
		}
	}
	all, err := fs.Glob(web.Locales, "locales/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		tag, _, _ := strings.Cut(path.Base(f), ".")
		if !listed[tag] {
			t.Errorf("%s: language %q is not in app.Languages", f, tag)
		}
	}
}

// catalogueKeys returns the sorted keys of one catalogue file, failing
// the test if it is missing or malformed.
func catalogueKeys(t *testing.T, file string) []string {
	t.Helper()
	raw, err := fs.ReadFile(web.Locales, file)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return nil
	}
	var cat map[string]string
	if err := json.Unmarshal(raw, &cat); err != nil {
		t.Errorf("%s: %v", file, err)
		return nil
	}
	return slices.Sorted(maps.Keys(cat))
}

// TestLanguageChoice: the languages Varde lists are the ones chosen by
// ?lang=, by OIDC ui_locales and by Accept-Language, regional variants
// included, and a page rendered in one declares it.
func TestLanguageChoice(t *testing.T) {
	pages, err := app.NewPages(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query, accept string
		uiLocales           []string
		want                string
	}{
		{name: "nothing", want: "nb"},
		{name: "Accept-Language Norwegian", accept: "no,en;q=0.5", want: "nb"},
		{name: "Accept-Language English", accept: "en-GB,en;q=0.9", want: "en"},
		{name: "Accept-Language Danish", accept: "da-DK,da;q=0.9", want: "da"},
		{name: "Accept-Language Danish before English", accept: "da-DK,da;q=0.9,en;q=0.8", want: "da"},
		{name: "ui_locales da", uiLocales: []string{"da"}, accept: "en", want: "da"},
		{name: "ui_locales da-DK", uiLocales: []string{"da-DK"}, accept: "nb", want: "da"},
		{name: "ui_locales nb over Danish browser", uiLocales: []string{"nb"}, accept: "da", want: "nb"},
		{name: "lang=da", query: "da", accept: "en", want: "da"},
		{name: "lang=en over Danish browser", query: "en", accept: "da-DK", want: "en"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/?lang="+tt.query, nil)
		r.Header.Set("Accept-Language", tt.accept)
		if got := pages.Locale(r, tt.uiLocales); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}

	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/nowhere", nil)
	r.Header.Set("Accept-Language", "da-DK,da;q=0.9")
	pages.Error(w, r, http.StatusNotFound, pages.Locale(r, nil), httpx.NotFoundPage())
	body := w.Body.String()
	for _, want := range []string{`<html lang="da">`, "Siden blev ikke fundet", `hreflang="da" lang="da" aria-current="true">Dansk</a>`, `hreflang="nb" lang="nb">Norsk bokmål</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("Danish not-found page lacks %q:\n%s", want, body)
		}
	}
	if got := w.Header().Get("Content-Language"); got != "da" {
		t.Errorf("Content-Language %q", got)
	}
}

// TestHelpDeskIsTheHelpDesk: the help desk a text sends people to is
// Varde's own, one desk, so Norwegian and Danish texts name it in the
// definite form the glossary's term takes in a sentence ("kontakt
// brukerstøtten", "kontakt supporten"), never the bare noun, which
// reads as help of any kind.
func TestHelpDeskIsTheHelpDesk(t *testing.T) {
	for _, tc := range []struct {
		glob string
		word *regexp.Regexp
		ok   []string
	}{
		{"locales/nb*.json", regexp.MustCompile(`(?i)\bbrukerstøtte\p{L}*`), []string{"brukerstøtten", "brukerstøttens"}},
		{"locales/da*.json", regexp.MustCompile(`(?i)\bsupport\p{L}*`), []string{"supporten", "supportens"}},
	} {
		files, err := fs.Glob(web.Locales, tc.glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v %v", tc.glob, files, err)
		}
		for _, f := range files {
			raw, err := fs.ReadFile(web.Locales, f)
			if err != nil {
				t.Fatal(err)
			}
			var cat map[string]string
			if err := json.Unmarshal(raw, &cat); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for key, text := range cat {
				for _, w := range tc.word.FindAllString(text, -1) {
					if !slices.Contains(tc.ok, strings.ToLower(w)) {
						t.Errorf("%s %s names the help desk %q, not %q", f, key, w, tc.ok[0])
					}
				}
			}
		}
	}
}
