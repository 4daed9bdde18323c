package a11ytest_test

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// skipToMain finds what is wrong with the current page's way past its
// header (WCAG 2.4.1 Bypass Blocks): its first focusable element must be
// a link to #main, shown on screen while it has the focus, and #main a
// <main> that can take the focus the link moves to it ("" when all holds).
const skipToMain = `(() => {
  const first = document.querySelector("a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])");
  if (!first || first.getAttribute("href") !== "#main") return "first focusable element is not a link to #main: " + (first ? first.outerHTML.slice(0, 80) : "none");
  const main = document.getElementById("main");
  if (!main || main.tagName !== "MAIN") return "no <main id=main>";
  if (main.getAttribute("tabindex") !== "-1") return "<main> has no tabindex=-1, so the skip link cannot move the focus to it";
  first.focus();
  const r = first.getBoundingClientRect();
  if (r.right <= 0 || r.bottom <= 0 || r.left >= innerWidth || r.width === 0) return "the skip link is not on screen when it has the focus";
  first.click();
  if (document.activeElement !== main) return "following the skip link leaves the focus on " + document.activeElement.outerHTML.slice(0, 80);
  return "";
})()`

// skipLink checks WCAG 2.4.1 on the current page with skipToMain.
func (b *browser) skipLink(t *testing.T) {
	t.Helper()
	// A headless page has no window focus, and without it :focus
	// matches nothing; emulate a focused page as a person's would be.
	b.do(t, "emulate a focused page", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	}))
	problem, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](skipToMain))
	if err != nil {
		t.Fatalf("follow the skip link: %v", err)
	}
	if problem != "" {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("WCAG 2.4.1 at %s: %s", loc, problem)
	}
}
