package a11ytest_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// unmarkedNordic lists the text of the current page, an English one,
// that holds æ, ø or å outside any element marked with another language
// (WCAG 3.1.2 Language of Parts): a Norwegian or Danish word a screen
// reader would read with English sounds, or a text left untranslated.
const unmarkedNordic = `(() => {
  const out = [];
  const walk = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const e = n.parentElement;
    if (!e || e.closest("script, style")) continue;
    if (!/[æøåÆØÅ]/.test(n.textContent)) continue;
    const marked = e.closest("[lang]");
    if (marked && !marked.lang.startsWith("en")) continue;
    out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + JSON.stringify(n.textContent.trim().slice(0, 80)));
  }
  return out;
})()`

// partsInEnglish checks WCAG 3.1.2 on the current page with
// unmarkedNordic.
func (b *browser) partsInEnglish(t *testing.T) {
	t.Helper()
	found, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](unmarkedNordic))
	if err != nil {
		t.Fatalf("read the page's text: %v", err)
	}
	if len(found) > 0 {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("WCAG 3.1.2 at %s: Norwegian or Danish text not marked as such in an English page:\n\t\t%s", loc, strings.Join(found, "\n\t\t"))
	}
}
