package passkeyidp_test

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestCodesPageSavesThemInAFile: the page that shows a test person's
// recovery codes offers them as a file to save, in the page's language,
// so that nobody has to copy sixteen characters ten times by hand
// (WCAG 3.3.8): a link that downloads a text file holding every code
// shown, and the page says a file is one way to keep them.
func TestCodesPageSavesThemInAFile(t *testing.T) {
	texts := map[string]struct{ link, name, heading, intro string }{
		"en": {"Save the codes in a file", "varde-recovery-codes.txt", "Varde recovery codes", "Save them in a file, print this page or write them down"},
		"nb": {"Lagre kodene i en fil", "varde-gjenopprettingskoder.txt", "Gjenopprettingskoder for Varde", "Lagre dem i en fil, skriv ut denne siden eller skriv dem ned"},
		"da": {"Gem koderne i en fil", "varde-genoprettelseskoder.txt", "Genoprettelseskoder til Varde", "Gem dem i en fil, udskriv denne side eller skriv dem ned"},
	}
	h := newHarness(t, true)
	link := regexp.MustCompile(`<a href="data:text/plain;charset=utf-8,([^"]*)" download="([^"]*)">([^<]*)</a>`)
	for lang, want := range texts {
		page := h.browser(lang).enrolOnly(newDevice(false), "file-"+lang, "fnr")
		codes := codesIn(page.body)
		m := link.FindStringSubmatch(page.body)
		if len(codes) == 0 || m == nil {
			t.Fatalf("%s: %d codes, no link to save them:\n%s", lang, len(codes), page.body)
		}
		file, err := url.PathUnescape(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatalf("%s: the file: %v", lang, err)
		}
		if html.UnescapeString(m[3]) != want.link || m[2] != want.name || !strings.HasPrefix(file, want.heading+"\n") {
			t.Errorf("%s: link %q, file name %q, file:\n%s", lang, m[3], m[2], file)
		}
		for _, c := range codes {
			if !strings.Contains(file, "\n"+c+"\n") {
				t.Errorf("%s: the file lacks the code %s:\n%s", lang, c, file)
			}
		}
		if !strings.Contains(html.UnescapeString(page.body), want.intro) {
			t.Errorf("%s: the page does not say a file is one way to keep the codes", lang)
		}
	}
}
