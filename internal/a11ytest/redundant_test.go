package a11ytest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestLanguageSwitchKeepsInput: what a person has typed on the recovery
// and enrolment pages is still there after they switch language with
// the language links (WCAG 3.3.7 Redundant Entry), and nothing of it is
// left in the browser's storage or put in the URL.
func TestLanguageSwitchKeepsInput(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	n := startNode(t)
	req := n.pendingRequest(t, b)
	const code = "ABCD-EFGH-JKMN"
	tests := []struct {
		name, path string
		typing     []chromedp.Action[chromedp.Void]
		want       string // JavaScript giving the fields' values, one string
		typed      string
	}{
		{
			name: "recovery", path: "/passkey/recover",
			typing: []chromedp.Action[chromedp.Void]{chromedp.SendKeys(`#code`, code)},
			want:   `document.querySelector("#code").value`, typed: code,
		},
		{
			name: "enrolment", path: "/passkey/enrol",
			typing: []chromedp.Action[chromedp.Void]{
				chromedp.SendKeys(`#given_name`, "Kari"),
				chromedp.SendKeys(`#family_name`, "Nordmann"),
				chromedp.Click(`input[name=kind][value=dnr]`),
			},
			want:  `[given_name.value, family_name.value, document.querySelector("input[name=kind]:checked").value].join(" ")`,
			typed: "Kari Nordmann dnr",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b.visit(t, n.issuer+tc.path+"?"+url.Values{"lang": {"nb"}, "attempt": {req}}.Encode(), 200)
			b.do(t, "type", tc.typing...)
			b.do(t, "switch to English", chromedp.Click(`.langs a[hreflang=en]`))
			b.until(t, `document.documentElement.lang === "en" && document.readyState === "complete"`)
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](tc.want))
			if err != nil || got != tc.typed {
				t.Errorf("after switching language the fields hold %q (%v), want %q", got, err, tc.typed)
			}
			left, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`sessionStorage.length + " " + location.href`))
			if err != nil || left[:2] != "0 " || strings.Contains(left, "ABCD") || strings.Contains(left, "Kari") {
				t.Errorf("storage entries and URL after the switch: %q (%v), want none kept and nothing typed in the URL", left, err)
			}
		})
	}
}
