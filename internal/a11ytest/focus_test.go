package a11ytest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// focusStop describes the element the keyboard's focus is on: what is
// wrong with how it shows (WCAG 2.4.7 Focus Visible, 1.4.11 Non-text
// Contrast, 2.4.11 Focus Not Obscured) and where it is, for the order.
// The ring must be an outline at least 2 CSS px wide with at least 3:1
// against what is around it, the element on screen, and the point at
// its centre the element's own, not something laid over it.
const focusStop = `(() => {
  const e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return {at: "body"};
  const rgb = c => (c.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const s = getComputedStyle(e);
  const r = e.getBoundingClientRect();
  const at = e.outerHTML.slice(0, 90);
  const problems = [];
  const width = parseFloat(s.outlineWidth) || 0;
  if (s.outlineStyle === "none" || s.outlineStyle === "auto" || width < 2) {
    problems.push("no focus ring of its own (outline " + s.outlineStyle + " " + s.outlineWidth + ")");
  } else {
    // The ring is drawn outside the element, on its parent's background.
    let p = e.parentElement, bg = "rgba(0, 0, 0, 0)";
    for (; p; p = p.parentElement) { bg = getComputedStyle(p).backgroundColor; if (rgb(bg)[3] !== 0) break; }
    if (!p) bg = "rgb(255, 255, 255)";
    const [l1, l2] = [lum(rgb(s.outlineColor)), lum(rgb(bg))].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 3) problems.push("focus ring " + s.outlineColor + " on " + bg + " is " + ratio.toFixed(2) + ":1, below 3:1");
  }
  if (r.width === 0 || r.height === 0 || r.bottom <= 0 || r.right <= 0 || r.top >= innerHeight || r.left >= innerWidth) {
    problems.push("not on screen (" + [r.left, r.top, r.width, r.height].map(Math.round).join(",") + ")");
  } else {
    const x = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1), y = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
    const hit = document.elementFromPoint(x, y);
    if (hit && hit !== e && !e.contains(hit) && !hit.contains(e)) problems.push("covered by " + hit.outerHTML.slice(0, 60));
  }
  return {at: at, problems: problems, top: Math.round(r.top + scrollY), bottom: Math.round(r.bottom + scrollY), left: Math.round(r.left)};
})()`

type stopResult struct {
	At       string   `json:"at"`
	Problems []string `json:"problems"`
	Top      int      `json:"top"`
	Bottom   int      `json:"bottom"`
	Left     int      `json:"left"`
}

// focusWalkWidths are the viewport widths the keyboard walk is made at:
// a desktop window and the 320 CSS px of WCAG 1.4.10.
var focusWalkWidths = []int64{1280, reflowWidth}

// focusWalk checks the current page with focusProblems.
func (b *browser) focusWalk(t *testing.T) {
	t.Helper()
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	for _, p := range b.focusProblems(t) {
		t.Errorf("at %s: %s", loc, p)
	}
}

// focusProblems moves the focus through the current page with the Tab
// key, from its first element (the skip link) until it leaves the page,
// at each width of focusWalkWidths, and says what is wrong at each stop
// (focusStop) and with their order (WCAG 2.4.3): each stop is on the
// line of the one before or below it, as the page is read. It restores
// the window's size.
func (b *browser) focusProblems(t *testing.T) []string {
	t.Helper()
	// A headless page has no window focus, and without it :focus-visible
	// matches nothing; emulate a focused page as a person's would be.
	b.do(t, "emulate a focused page", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	}))
	defer b.do(t, "restore the window", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	}))
	var problems []string
	for _, w := range focusWalkWidths {
		b.do(t, fmt.Sprintf("lay out at %d CSS px", w), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: w, Height: 700, DeviceScaleFactor: 1})
			return err
		}))
		first, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => { const a = document.querySelector("a.skip"); window.scrollTo(0, 0); if (!a) return ""; a.focus(); return a.outerHTML.slice(0, 90); })()`))
		if err != nil || first == "" {
			t.Fatalf("focus the skip link: %q, %v", first, err)
		}
		var prev stopResult
		stops := 0
		for i := 0; ; i++ {
			if i == 100 {
				t.Fatalf("at %d CSS px the focus never left the page after 100 presses of Tab", w)
			}
			s, err := chromedp.Run(b.ctx, chromedp.Evaluate[stopResult](focusStop))
			if err != nil {
				t.Fatalf("look at the focus: %v", err)
			}
			if s.At == "body" || (i > 0 && s.At == first) {
				break
			}
			stops++
			for _, p := range s.Problems {
				problems = append(problems, fmt.Sprintf("WCAG 2.4.7/2.4.11 at %d CSS px, Tab stop %d %s: %s", w, i, s.At, p))
			}
			// A stop above the one before it, not beside it on the same
			// line, is out of the reading order.
			if i > 0 && s.Bottom <= prev.Top {
				problems = append(problems, fmt.Sprintf("WCAG 2.4.3 at %d CSS px: Tab goes up from %s (top %d) to %s (bottom %d)", w, prev.At, prev.Top, s.At, s.Bottom))
			}
			prev = s
			b.do(t, "press Tab", chromedp.KeyEvent("\t"))
		}
		if stops < 2 {
			problems = append(problems, fmt.Sprintf("at %d CSS px only %d Tab stops", w, stops))
		}
	}
	return problems
}

// TestFocusWalkFindsProblems: the keyboard walk does find what it looks
// for — a link without a ring, a button covered by a box laid over it, a
// ring too pale to see, and a link placed above the one before it — on a
// page made to have them. Without this, a broken measurement could pass
// every page.
func TestFocusWalkFindsProblems(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Bad focus</title><style>
:focus-visible { outline: 3px solid #c25e00; }
#bare:focus-visible { outline: none; }
#pale:focus-visible { outline-color: #eee; }
#cover { position: fixed; left: 0; top: 150px; width: 100%; height: 100px; background: #fff; }
#up { position: absolute; top: 0; right: 0; }
</style></head><body>
<a class="skip" href="#main">Skip</a>
<main id="main" tabindex="-1">
<p><a id="fine" href="#a">Fine</a></p>
<p><a id="bare" href="#b">No ring</a></p>
<p style="margin-top: 60px"><button id="covered">Covered</button></p>
<div id="cover">A banner</div>
<p style="margin-top: 200px"><a id="pale" href="#c">Pale ring</a></p>
<p><a id="up" href="#d">Placed above</a></p>
</main></body></html>`)
	}))
	t.Cleanup(srv.Close)
	b.visit(t, srv.URL, 200)
	got := strings.Join(b.focusProblems(t), "\n")
	for _, want := range []string{`id="bare"`, `id="covered"`, `id="pale"`, `to <a id="up"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the walk did not report %s; it reported:\n%s", want, got)
		}
	}
	if strings.Contains(got, `id="fine"`) {
		t.Errorf("the walk reported the link with a ring:\n%s", got)
	}
}

// TestKeyboardFocus: on the login, passkey, enrolment, recovery, cancel,
// error and status pages, in every language, a person going through the
// page with the Tab key sees where the focus is at every stop, in the
// page's own ring, clear of anything laid over it, in the order the page
// reads (WCAG 2.4.3, 2.4.7, 2.4.11, 1.4.11), on a wide screen and at 320
// CSS px. The pages of the account are walked in TestPagesWCAG.
func TestKeyboardFocus(t *testing.T) {
	checkPlainPages(t, (*browser).focusWalk)
}
