package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/config"
)

// TestDemoHelpDeskCode walks, in headless Chromium, keyboard only once
// the phone is lost, in Norwegian, English and Danish, the way back of
// a person with a D-number who lost the phone their only passkey was
// on, never kept their recovery codes and has no eID: the recovery page
// of a demo with a help desk tells them it gives a code after checking
// their ID in person; the help desk, having done so, runs varde persons
// recover --remove-passkeys against the running node's store; the
// person types the code, as written, where a recovery code goes, lands
// on their account page with no passkey left, adds one, sees in their
// activity what the help desk did, and logs in with the new passkey;
// the code typed once more is refused saying it was used.
func TestDemoHelpDeskCode(t *testing.T) {
	const passkeyRows = `table[aria-labelledby=passkeys] tbody tr`
	dir := t.TempDir()
	_, issuer := startDemoIn(t, dir, demoTuning{Config: func(c *config.Config) {
		c.Support = config.Support{Phone: "+47 800 12 345"}
	}})
	d := &runningDemo{base: issuer}
	// The help desk's configuration: the running node's store.
	cfg := filepath.Join(dir, "varde.yaml")
	body := "version: 1\nissuer: " + issuer + "\nstore:\n  dsn: " + filepath.Join(dir, "varde.db") +
		"\nkeys:\n  subject_salt_file: " + filepath.Join(dir, "subject-salt") + "\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"nb", "en", "da"} {
		t.Run(lang, func(t *testing.T) {
			b, auth := newBrowserIn(t, lang)
			text := catalogue(t, lang)
			dag := b.oldPhoneAs(d, "Dag", "Dahl", "dnr")
			b.do("lose the phone", browsertest.RemoveAuthenticator(&auth), browsertest.AddAuthenticator(&auth))

			b.do("open Varde's account page", chromedp.Navigate(d.base+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
			b.press("choose the passkey", "#provider-passkey", `a[href^="/passkey/recover"]`)
			b.press("use a recovery code", `a[href^="/passkey/recover"]`, "#no-code")
			b.want("#no-eid", text("recover.nocode.none.desk")+" "+text("recover.nocode.desk"))
			if b.count("#support") != 1 {
				t.Error("the recovery page does not show the help desk")
			}

			// At the counter: the passport checked, the code printed.
			out, err := runCmd(t, "persons", "recover", "--config", cfg, "--checked", "passport at the counter", "--by", "Ola N.",
				"--remove-passkeys", "no:dnr:"+dag.number)
			if err != nil {
				t.Fatalf("persons recover: %v\n%s", err, out)
			}
			code := deskCodeIn(t, out)

			b.typeAt("type the help desk's code, as written", "#code", code)
			b.do("send it", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("recovered")))
			b.wantIn("#recovered", text("account.recovered"))
			if n := b.count(passkeyRows); n != 0 {
				t.Errorf("the account lists %d passkeys after the help desk removed them", n)
			}
			b.wantIn("main", text("account.activity.recovery_issued.removed"))
			b.addPasskey(text, "Phone 2")
			if n := b.count(passkeyRows); n != 1 {
				t.Errorf("the account lists %d passkeys, want the new one", n)
			}

			b.do("log out", chromedp.Navigate(d.base+"/logout"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
			b.do("open Varde's account page", chromedp.Navigate(d.base+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
			b.press("choose the passkey", "#provider-passkey", `.passkey-ceremony [data-role=button]`)
			b.press("log in with the new passkey", `.passkey-ceremony [data-role=button]`, "#passkeys")
			if strings.Contains(b.text("main"), text("account.recovered")) || b.count(passkeyRows) != 1 {
				t.Errorf("after a login with the new passkey, the account page says:\n%s", b.text("main"))
			}

			b.do("log out", chromedp.Navigate(d.base+"/logout"), chromedp.Click(chromedp.CSS(`main form button[type=submit]`)), chromedp.WaitNotPresent(chromedp.CSS(`main form`)))
			b.do("open Varde's account page", chromedp.Navigate(d.base+"/account"), chromedp.WaitVisible(chromedp.ID("provider-passkey")))
			b.press("choose the passkey", "#provider-passkey", `a[href^="/passkey/recover"]`)
			b.press("use a recovery code", `a[href^="/passkey/recover"]`, "#code")
			b.typeAt("type the help desk's code again", "#code", code)
			b.do("send it", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("code-error")))
			b.wantIn("#code-error", text("recover.err.desk.used"))
		})
	}
}
