package a11ytest_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// textSpacing sets (on) or takes away (off) the text spacing WCAG 1.4.12
// names on every element of the current page, as a person's style sheet
// would: line height 1.5 times the font size, paragraphs 2 times apart,
// letters 0.12 and words 0.16 times apart. It goes through the CSSOM,
// which the pages' Content-Security-Policy leaves to script, unlike a
// <style> element. The pages set no inline style of their own, so
// taking it away leaves them as they were.
const textSpacing = `((on) => {
  const set = (e, prop, value) => on ? e.style.setProperty(prop, value, "important") : e.style.removeProperty(prop);
  for (const e of document.querySelectorAll("body, body *")) {
    set(e, "line-height", "1.5");
    set(e, "letter-spacing", "0.12em");
    set(e, "word-spacing", "0.16em");
  }
  for (const p of document.querySelectorAll("p")) set(p, "margin-bottom", "2em");
  return true;
})(%s)`

// clipped lists the elements whose content the text spacing pushes out
// of a box that hides what overflows it (overflow hidden or clip),
// other than a visually hidden box, which is meant to be 1 px.
const clipped = `(() => {
  const out = [];
  for (const e of document.querySelectorAll("body *")) {
    const s = getComputedStyle(e);
    const hides = v => v === "hidden" || v === "clip";
    if (!hides(s.overflowX) && !hides(s.overflowY)) continue;
    const r = e.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) continue;
    if ((hides(s.overflowX) && e.scrollWidth > e.clientWidth + 1) || (hides(s.overflowY) && e.scrollHeight > e.clientHeight + 1)) {
      out.push(e.outerHTML.slice(0, 80) + " shows " + e.clientWidth + "×" + e.clientHeight + " of " + e.scrollWidth + "×" + e.scrollHeight);
    }
  }
  return out;
})()`

// lostText lists, at the window's present width, what sticks out of the
// page to the right outside data tables (overflowing) and the boxes that
// cut their text off (clipped).
func (b *browser) lostText(t *testing.T) (wide, cut []string) {
	t.Helper()
	res, err := chromedp.Run(b.ctx, chromedp.Evaluate[reflowResult](overflowing))
	if err != nil {
		t.Fatalf("measure the page: %v", err)
	}
	cut, err = chromedp.Run(b.ctx, chromedp.Evaluate[[]string](clipped))
	if err != nil {
		t.Fatalf("look for clipped text: %v", err)
	}
	return res.Wide, cut
}

// spacedText checks WCAG 1.4.12 on the current page: with the text
// spacing of textSpacing, at the window's width and at 320 CSS px (WCAG
// 1.4.10), nothing but a data table sticks out to the right and no text
// is cut off. It takes the spacing away again.
func (b *browser) spacedText(t *testing.T) {
	t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	spacing := func(on string) {
		if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](strings.Replace(textSpacing, "%s", on, 1))); err != nil {
			t.Fatalf("text spacing %s: %v", on, err)
		}
	}
	spacing("true")
	defer spacing("false")
	wide, cut := b.lostText(t)
	narrow := b.measureReflow(t)
	for _, c := range []struct {
		width string
		wide  []string
	}{{"the window's width", wide}, {"320 CSS px", narrow.Wide}} {
		if len(c.wide) > 0 {
			t.Errorf("WCAG 1.4.12 at %s, text spaced, at %s these stick out to the right:\n\t\t%s", loc, c.width, strings.Join(c.wide, "\n\t\t"))
		}
	}
	if len(cut) > 0 {
		t.Errorf("WCAG 1.4.12 at %s, text spaced, these cut their text off:\n\t\t%s", loc, strings.Join(cut, "\n\t\t"))
	}
}

// TestTextSpacing: on the login, passkey, enrolment, recovery, cancel,
// error and status pages, in every language, text spaced as WCAG 1.4.12
// says a person may space it loses nothing, on a wide screen and at 320
// CSS px. The account page is checked in TestPagesWCAG.
func TestTextSpacing(t *testing.T) {
	checkPlainPages(t, (*browser).spacedText)
}
