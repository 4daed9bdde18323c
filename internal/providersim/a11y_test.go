package providersim

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/browsertest"
)

// axePath is axe-core as pinned in third_party/axe (scripts/ensure-axe.sh).
func axePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "third_party", "axe", "node_modules", "axe-core", "axe.min.js")
}

// TestPagesAccessible opens every page of the sim — home, login, login
// with an error, the admin page's token form and buttons, not found — in
// every language in headless Chromium and runs axe-core's WCAG 2.2 A/AA
// rules: serious or critical findings fail. It also switches the fault
// with the admin page's buttons. Skipped without Chromium or axe-core,
// unless the CI environment variable is set.
func TestPagesAccessible(t *testing.T) {
	required := os.Getenv("CI") != ""
	axe, err := os.ReadFile(axePath())
	if err != nil {
		if required {
			t.Fatalf("axe-core: %v (run scripts/ensure-axe.sh)", err)
		}
		t.Skipf("axe-core not installed: %v", err)
	}
	ctx := browsertest.Start(t, browsertest.Options{Required: required})
	h := newSim(t, "bankid", assurance.High, nil)

	audit := func(t *testing.T, lang, ready string) {
		t.Helper()
		if err := browsertest.Do(ctx, chromedp.WaitVisible(ready)); err != nil {
			t.Fatalf("wait for %s: %v", ready, err)
		}
		htmlLang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
		if err != nil || htmlLang != lang {
			t.Errorf("<html lang> = %q (%v), want %q", htmlLang, err, lang)
		}
		have, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
		if !have {
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(axe)+"\n;void 0")); err != nil {
				t.Fatalf("inject axe-core: %v", err)
			}
		}
		type finding struct {
			ID, Impact, Help string
			Targets          []string
		}
		res, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			Passes     int
			Violations []finding
		}](`(async () => {
  const r = await axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}});
  return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
    targets: v.nodes.map(n => String(n.target))}))};
})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("run axe-core: %v", err)
		}
		if res.Passes == 0 {
			t.Fatal("axe-core passed no rule: it did not look at the page")
		}
		for _, v := range res.Violations {
			msg := fmt.Sprintf("%s %s: %s\n\t%s", v.Impact, v.ID, v.Help, strings.Join(v.Targets, "\n\t"))
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Error(msg)
			} else {
				t.Log(msg)
			}
		}
	}
	visit := func(t *testing.T, u string) {
		t.Helper()
		if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(u)); err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
	}

	for _, l := range languages() {
		lang := l.Tag
		t.Run(lang, func(t *testing.T) {
			// ?lang= is remembered in a cookie, so the login page that
			// follows is in the same language.
			visit(t, h.sim.Issuer()+"/?lang="+lang)
			audit(t, lang, "table")
			c := h.rp(secretClient)
			visit(t, c.conf.AuthCodeURL("state-"+lang, gooidc.Nonce("nonce"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			audit(t, lang, "#login")
			if err := browsertest.Do(ctx, chromedp.Click("#login")); err != nil {
				t.Fatal(err)
			}
			audit(t, lang, "#error")
			visit(t, h.sim.Issuer()+"/nothing?lang="+lang)
			audit(t, lang, "main h1")
			visit(t, h.sim.AdminURL()+"/?token=wrong&lang="+lang)
			audit(t, lang, "#token")
			// WCAG 3.3.8: the token field lets a password manager fill
			// it, with a username naming the sim it is for.
			fill, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
  const f = document.querySelector("#token");
  const u = f.form.querySelector("input[autocomplete=username]");
  return f.autocomplete + " " + (u ? u.value : "no username");
})()`))
			if want := "current-password " + h.sim.Issuer(); err != nil || fill != want {
				t.Errorf("token field's autocomplete and username = %q (%v), want %q", fill, err, want)
			}
			visit(t, h.sim.AdminURL()+"/?token="+h.sim.AdminToken())
			visit(t, h.sim.AdminURL()+"/?lang="+lang)
			audit(t, lang, "#mode-down")
			// The buttons work in a real browser (which sends Origin: null
			// under the pages' Referrer-Policy).
			for _, m := range []Mode{ModeFailing, ModeOK} {
				if err := browsertest.Do(ctx, chromedp.Click("#mode-"+string(m)), chromedp.WaitVisible(`#mode-`+string(m)+`[aria-pressed="true"]`)); err != nil {
					t.Fatalf("switch to %s: %v", m, err)
				}
				if got := h.sim.Fault().Mode; got != m {
					t.Errorf("after the %s button the sim is %s", m, got)
				}
			}
		})
	}
}
