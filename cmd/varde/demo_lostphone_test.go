package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/web"
)

// TestDemoLostPhone walks the demo, in headless Chromium, keyboard only
// once the phone is lost, in Norwegian, English and Danish, as three
// people who lost the phone their passkey was on:
//
//   - Ana has her recovery codes. Demo Bank asks for more than a code
//     gives, and the page says so and leads her to her account; a code
//     typed badly is refused saying what to fix, then typed in small
//     letters with spaces it logs her in; the account page says what
//     that login does and what to do next; she adds a passkey, logs in
//     again with an eID as it says, removes the lost passkey and makes
//     new codes, which she saves in a file with the page's link.
//   - Ben has lost his codes too. The page a code is not enough on
//     offers another way in; his eID, with his own number, logs him in
//     to Demo Bank as the same Varde ID, whose account page lists his
//     lost passkey, which he removes once he has added a new one.
//   - Cecilie has neither codes nor an eID. The recovery page tells her
//     what is left, and names no help desk the demo does not have.
func TestDemoLostPhone(t *testing.T) {
	d := startDemo(t, "")
	for _, lang := range []string{"nb", "en", "da"} {
		t.Run(lang, func(t *testing.T) {
			b, auth := newBrowserIn(t, lang)
			text := catalogue(t, lang)
			lose := func() {
				b.do("lose the phone", browsertest.RemoveAuthenticator(&auth), browsertest.AddAuthenticator(&auth))
			}

			// Ana.
			ana := b.oldPhone(d, "Ana", "Lie")
			lose()
			b.do("open Demo Bank", chromedp.Navigate(d.base+"/demo-bank/"), chromedp.WaitVisible(chromedp.ID("login")))
			b.press("log in at Demo Bank", "#login", "#provider-passkey")
			b.press("choose the passkey", "#provider-passkey", `a[href^="/passkey/recover"]`)
			b.wantIn("main", text("passkey.login.recover.hint"))
			b.press("use a recovery code", `a[href^="/passkey/recover"]`, `a[href="/passkey/recover?attempt="]`)
			b.want("h1", text("recover.notenough.title"))
			b.press("use a code for the account", `a[href="/passkey/recover?attempt="]`, "#code")
			b.want("h1", text("recover.title"))
			b.typeAt("type a code short", "#code", "ab c")
			b.do("send it", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("code-error")))
			b.want("#code-error", fmt.Sprintf(text("recover.err.short"), 3))
			b.do("type the code as written, in small letters with spaces",
				chromedp.KeyEvent("a", chromedp.KeyModifiers(kb.ModifierCtrl)),
				chromedp.KeyEvent(strings.ToLower(strings.ReplaceAll(ana.codes[0], "-", " "))),
				chromedp.KeyEvent(kb.Enter),
				chromedp.WaitVisible(chromedp.ID("recovered")))
			b.wantIn("#recovered", text("account.recovered"))
			b.wantIn("#recovered", text("account.recovered.lost"))
			b.addPasskey(text, "Phone 2")
			b.press("log in again, as the notice says", `#recovered a[href="/login"]`, "#provider-bankid")
			b.eID(ana.number, `form[action="/account/passkeys/remove"]`)
			b.replaceLost(text, "Phone 2")

			// Ben.
			b.do("log out", chromedp.Navigate(d.base+"/logout"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
			ben := b.oldPhone(d, "Ben", "Berg")
			lose()
			b.do("open Demo Bank", chromedp.Navigate(d.base+"/demo-bank/"), chromedp.WaitVisible(chromedp.ID("login")))
			b.press("log in at Demo Bank", "#login", "#provider-passkey")
			b.press("choose the passkey", "#provider-passkey", `a[href^="/passkey/recover"]`)
			b.press("use a recovery code", `a[href^="/passkey/recover"]`, `a[href^="/login?req="]`)
			b.want(`a[href^="/login?req="]`, text("recover.notenough.other"))
			b.wantIn("#no-eid", text("recover.nocode.none"))
			b.press("choose another way", `a[href^="/login?req="]`, "#provider-bankid")
			b.eID(ben.number, "#welcome")
			b.wantIn("#provider", "Demo BankID")
			b.do("open Varde's account page", chromedp.Navigate(d.base+"/account"), chromedp.WaitVisible(chromedp.CSS(`form[action="/account/passkeys/remove"]`)))
			if n := b.count(`form[action="/account/passkeys/remove"]`); n != 1 {
				t.Errorf("Ben's account lists %d passkeys, want the lost one", n)
			}
			b.addPasskey(text, "Phone 2")
			b.replaceLost(text, "Phone 2")

			// Cecilie.
			b.do("log out", chromedp.Navigate(d.base+"/logout"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
			b.do("open Varde's account page", chromedp.Navigate(d.base+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
			b.press("choose the passkey", "#provider-passkey", `a[href^="/passkey/recover"]`)
			b.press("use a recovery code", `a[href^="/passkey/recover"]`, "#no-code")
			b.want("#no-code", text("recover.nocode.title"))
			b.want("#no-eid", text("recover.nocode.none"))
			if b.count("#support") != 0 || strings.Contains(b.text("main"), text("recover.nocode.desk")) {
				t.Error("the recovery page names a help desk the demo does not have")
			}
		})
	}
}

// catalogue is the page text of each key in lang, as web/locales holds
// it; a key it lacks fails the test.
func catalogue(t *testing.T, lang string) func(key string) string {
	t.Helper()
	raw, err := web.Locales.ReadFile("locales/" + lang + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return func(key string) string {
		t.Helper()
		s, ok := m[key]
		if !ok || s == "" {
			t.Fatalf("%s.json has no text %q", lang, key)
		}
		return s
	}
}

// lostPhone is what a test person made on the phone they then lose
// kept: their recovery codes and their number.
type lostPhone struct {
	codes  []string
	number string
}

// oldPhone makes a test person, with a passkey on the browser's
// authenticator, from the account page, and logs them out of Varde.
func (b *browser) oldPhone(d *runningDemo, given, family string) lostPhone {
	b.t.Helper()
	return b.oldPhoneAs(d, given, family, "fnr")
}

// oldPhoneAs is oldPhone for a test person with a number of kind: "fnr"
// (a birth number) or "dnr" (a D-number).
func (b *browser) oldPhoneAs(d *runningDemo, given, family, kind string) lostPhone {
	b.t.Helper()
	enrol := chromedp.CSS(`form.passkey-ceremony [data-role=button]`)
	b.do("start to make a test person",
		chromedp.Navigate(d.base+"/account"),
		chromedp.Click(chromedp.ID("provider-passkey")),
		chromedp.Click(chromedp.CSS(`a[href^="/passkey/enrol"]`)),
		chromedp.WaitVisible(enrol))
	b.do("choose the kind of number", chromedp.Click(chromedp.CSS(`input[name=kind][value=`+kind+`]`)))
	b.do("make a test person",
		chromedp.SendKeys(chromedp.ID("given_name"), given),
		chromedp.SendKeys(chromedp.ID("family_name"), family),
		chromedp.Click(enrol),
		chromedp.WaitVisible(chromedp.CSS(`code.codes`)))
	codes, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("code.codes"), c => c.textContent)`))
	if err != nil || len(codes) == 0 {
		b.t.Fatalf("read the recovery codes: %v", err)
	}
	p := lostPhone{codes: codes, number: b.text(`dl dd code`)}
	b.do("continue to the account page",
		chromedp.Click(chromedp.Search(`//form[@action="/passkey/enrolled/continue"]//button`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/account/passkeys/rename"]`)))
	b.do("log out", chromedp.Navigate(d.base+"/logout"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
	return p
}

// focusOn presses Tab until sel has the focus, failing when it never
// does: only what the keyboard reaches is used.
func (b *browser) focusOn(step, sel string) {
	b.t.Helper()
	b.do(step+": wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	for range 80 {
		on, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!!document.activeElement && document.activeElement.matches(`+jsString(sel)+`)`))
		if err != nil {
			b.t.Fatalf("%s: %v", step, err)
		}
		if on {
			return
		}
		b.do(step+": Tab", chromedp.KeyEvent(kb.Tab))
	}
	b.t.Fatalf("%s: Tab never reaches %s\n%s", step, sel, b.where())
}

// press moves the focus to sel with Tab, presses Enter and waits for
// next to show.
func (b *browser) press(step, sel, next string) {
	b.t.Helper()
	b.focusOn(step, sel)
	b.do(step, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(next)))
}

// typeAt moves the focus to the field sel with Tab and types s.
func (b *browser) typeAt(step, sel, s string) {
	b.t.Helper()
	b.focusOn(step, sel)
	b.do(step, chromedp.KeyEvent(s))
}

// eID logs in with Demo BankID's simulator as the person with number,
// typed, and waits for next.
func (b *browser) eID(number, next string) {
	b.t.Helper()
	b.press("choose Demo BankID", "#provider-bankid", "#number")
	b.typeAt("type the number", "#number", number)
	b.press("log in with the eID", "#login", next)
}

// addPasskey adds a passkey named name on the account page, on the
// browser's new authenticator.
func (b *browser) addPasskey(text func(string) string, name string) {
	b.t.Helper()
	b.typeAt("name the new passkey", "#passkey-name", name)
	b.press("add the passkey", `form[data-ceremony=add] button[data-role=button]`, `.notice[role=status]`)
	b.wantIn(`.notice[role=status]`, text("account.notice.added"))
}

// replaceLost removes, from the account page, every passkey but the one
// named kept, and makes new recovery codes.
func (b *browser) replaceLost(text func(string) string, kept string) {
	b.t.Helper()
	lost := `form[action="/account/passkeys/remove"] button:not([aria-label*="` + kept + `"])`
	b.press("remove the lost passkey", lost, `form[action="/account/passkeys/remove"] button.danger`)
	b.press("yes, remove it", `form[action="/account/passkeys/remove"] button.danger`, `.notice[role=status]`)
	b.wantIn(`.notice[role=status]`, text("account.notice.removed"))
	if n := b.count(lost); n != 0 {
		b.t.Errorf("%d lost passkeys are still listed", n)
	}
	b.press("make new recovery codes", `form[action="/account/recovery-codes/new"] button`, `form[action="/account/recovery-codes"] button`)
	b.press("yes, make them", `form[action="/account/recovery-codes"] button`, `code.codes`)
	codes, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("code.codes"), c => c.textContent)`))
	if err != nil || len(codes) < 5 {
		b.t.Fatalf("%d new recovery codes shown (%v)", len(codes), err)
	}
	b.saveCodes(text, codes)
}

// saveCodes saves the recovery codes on the page in a file with the
// page's link, from the keyboard, and checks the file holds codes.
func (b *browser) saveCodes(text func(string) string, codes []string) {
	b.t.Helper()
	dir := b.t.TempDir()
	b.do("let the browser save files", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, cdpbrowser.SetDownloadBehavior,
			cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
		return err
	}))
	b.focusOn("save the codes in a file", `a[download]`)
	b.do("save the codes in a file", chromedp.KeyEvent(kb.Enter))
	file := filepath.Join(dir, text("codes.file.name"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		saved, err := os.ReadFile(file)
		if err == nil && strings.Count(string(saved), "\n") >= len(codes) {
			for _, c := range codes {
				if !strings.Contains(string(saved), c+"\n") {
					b.t.Errorf("the saved file lacks the code %s:\n%s", c, saved)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no file %s saved within 15 s (%v)", file, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
