package a11ytest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/app"
)

// smallTargets lists the visible controls smaller than 24 by 24 CSS
// pixels (WCAG 2.5.8): buttons, form fields, radio buttons and the links
// that sit side by side in a row (languages, the status pages' menu and
// quarters, the links between pages of activity). Other links stand in text or alone on a line, with the
// spacing the criterion allows instead.
const smallTargets = `(() => {
  const small = [];
  for (const el of document.querySelectorAll(".langs a, .status-nav a, ul.quarters a, .pager a, button, input:not([type=hidden]), select, textarea, summary")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.width < 24 || r.height < 24) {
      small.push(el.outerHTML.slice(0, 80) + " " + r.width.toFixed(1) + "×" + r.height.toFixed(1));
    }
  }
  return small;
})()`

// TestTargetSize: every control on the login, passkey, enrolment,
// recovery, cancel, error and status pages is at least 24 by 24 CSS pixels
// (WCAG 2.5.8), the language links, the status pages' menu and the
// radio buttons too. axe checks only part of
// this criterion.
func TestTargetSize(t *testing.T) {
	checkPlainPages(t, (*browser).targets)
}

// checkPlainPages starts a node and a browser and opens each of
// plainPages in every language, as a subtest named by its language and
// page, and runs check on it.
func checkPlainPages(t *testing.T, check func(*browser, *testing.T)) {
	t.Helper()
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	n := startNode(t)
	req := n.pendingRequest(t, b)
	for _, l := range app.Languages {
		for _, p := range plainPages(l.Tag, req) {
			t.Run(l.Tag+"/"+p.name, func(t *testing.T) {
				b.visit(t, n.issuer+p.path, p.status)
				if p.via != "" {
					b.do(t, "click "+p.via, chromedp.Click(p.via))
				}
				b.do(t, "wait for "+p.ready, chromedp.WaitVisible(p.ready))
				check(b, t)
			})
		}
	}
}

// plainPage is a page reached without logging in: its name, path and
// query, HTTP status and an element only it has.
type plainPage struct {
	name, path string
	status     int
	ready      string
	// via, if set, is a button on the page at path that leads to the
	// page checked.
	via string
}

// cancelButton cancels a passkey login, which leads back to the login
// page with the notice that the login was cancelled: reached so, as a
// notice is shown only to the browser it happened in.
const cancelButton = `form[action$="/passkey/cancel"] button[type=submit]`

// plainPages are the pages reached without logging in, in language
// lang, for the pending login request req: login (with and without an
// error), passkey login, enrolment, recovery, cancel, not found, status
// and status report.
func plainPages(lang, req string) []plainPage {
	q := func(kv ...string) string {
		v := url.Values{"lang": {lang}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	return []plainPage{
		{"login", "/login?" + q("req", req), 200, "#provider-passkey", ""},
		{"login with error", "/passkey/login?" + q("attempt", req), 200, ".notice .error", cancelButton},
		{"passkey login", "/passkey/login?" + q("attempt", req), 200, ".passkey-ceremony [data-role=button]", ""},
		{"enrolment", "/passkey/enrol?" + q("attempt", req), 200, ".passkey-ceremony [data-role=button]", ""},
		{"recovery", "/passkey/recover?" + q("attempt", req), 200, "#code", ""},
		{"cancel", "/authorize/cancel?" + q("req", req), 200, "#cancel", ""},
		{"not found", "/no-such-page?" + q(), 404, "#support", ""},
		{"status", "/status?" + q(), 200, "ol.uptime", ""},
		{"status report", "/status/reports?" + q(), 200, "ul.quarters", ""},
	}
}

// targets checks WCAG 2.5.8 on the current page with smallTargets.
func (b *browser) targets(t *testing.T) {
	t.Helper()
	small, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](smallTargets))
	if err != nil {
		t.Fatalf("measure targets: %v", err)
	}
	if len(small) > 0 {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("WCAG 2.5.8 at %s: controls smaller than 24×24 CSS px:\n\t\t%s", loc, strings.Join(small, "\n\t\t"))
	}
}
