package a11ytest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// browserFontSize is Chromium's default font size in CSS px, which a
// person's setting of text size changes and which varde.css scales from.
const browserFontSize = 16

// largeText checks WCAG 1.4.4 (Resize Text) on the current page: with
// the browser's text size set to 200 %, as a person's setting would, in
// a window 1280 CSS px wide, nothing but a data table sticks out to the
// right and no box cuts its text off. Zooming the whole page to 200 % is
// 640 CSS px, which the 320 CSS px of the reflow check covers. It sets
// the text size back.
func (b *browser) largeText(t *testing.T) {
	t.Helper()
	size := func(px int64) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.SetFontSizes, page.SetFontSizesParams{FontSizes: &page.FontSizes{Standard: px}})
			return err
		})
	}
	b.do(t, "text at 200 %", size(2*browserFontSize))
	defer b.do(t, "text at 100 %", size(browserFontSize))
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	root, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.documentElement).fontSize`))
	if err != nil || root != "36px" {
		t.Fatalf("at %s the root font size with text at 200 %% is %q (%v), want 36px (varde.css's 112.5 %%)", loc, root, err)
	}
	wide, cut := b.lostText(t)
	if len(wide) > 0 {
		t.Errorf("WCAG 1.4.4 at %s, text at 200 %%, these stick out to the right:\n\t\t%s", loc, strings.Join(wide, "\n\t\t"))
	}
	if len(cut) > 0 {
		t.Errorf("WCAG 1.4.4 at %s, text at 200 %%, these cut their text off:\n\t\t%s", loc, strings.Join(cut, "\n\t\t"))
	}
}

// TestLargeText: on the login, passkey, enrolment, recovery, cancel,
// error and status pages, in every language, text at 200 % loses
// nothing (WCAG 1.4.4). The account pages are checked in TestPagesWCAG.
func TestLargeText(t *testing.T) {
	checkPlainPages(t, (*browser).largeText)
}
