package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDemoAddsAnEIDToATestPerson: a person trying the demo who made a
// test person with a passkey, and adds a simulated eID to it from the
// account page, is told how: the demo's instructions and the eID's
// login page say to type the test person's own number, since a person
// picked from the eID's list is someone else. One picked all the same
// gets a page naming the kind of number that clashed (a different birth
// number, ADR 42), never the number; the test person's number typed
// gets the account page saying that way in was theirs already.
func TestDemoAddsAnEIDToATestPerson(t *testing.T) {
	b, _ := newBrowser(t)
	d := startDemo(t, "")
	if out := d.stdout.String(); !strings.Contains(out, "type it on the eID's login page instead of picking a\nlisted person") {
		t.Errorf("the demo's instructions do not say how to add an eID to a test person:\n%s", out)
	}

	b.createTestPerson(d, "Kari", "Nordmann", "fnr")
	number := b.text(`dl dd code`)
	if len(number) != 11 {
		t.Fatalf("the test person's number: %q", number)
	}
	b.do("continue to the account page",
		chromedp.Click(chromedp.Search(`//form[@action="/passkey/enrolled/continue"]//button`)),
		chromedp.WaitVisible(chromedp.ID("link-bankid")))

	// The eID's list holds a Kari Nordmann too, with another birth number.
	b.do("add Demo BankID", chromedp.Click(chromedp.ID("link-bankid")), chromedp.WaitVisible(chromedp.ID("number")))
	b.shot("sim-link")
	b.wantIn("main", "Adding this eID to a Varde ID you already have? Then type the number that Varde ID has in the field below.")
	b.do("pick Kari Nordmann from the list",
		chromedp.Click(chromedp.Search(`//label[contains(., "Kari Nordmann")]/input`)),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space()="Nothing was linked"]`)))
	b.shot("link-refused")
	b.wantIn("main", "The login you just used gave a different birth number from the one your Varde ID already has")
	if page := b.text("main"); strings.Contains(page, number) || strings.Contains(page, "1483852") {
		t.Errorf("the refusal shows a number:\n%s", page)
	}

	b.do("add Demo BankID again",
		chromedp.Navigate(d.base+"/account"),
		chromedp.Click(chromedp.ID("link-bankid")),
		chromedp.WaitVisible(chromedp.ID("number")))
	b.do("type the test person's number",
		chromedp.SendKeys(chromedp.ID("number"), number),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role=status]`)))
	b.wantIn(".notice[role=status]", "That way to log in was already yours.")
}

// createTestPerson goes from the demo's account page to a new test
// person with a passkey, with a birth number (kind "fnr") or a D-number
// ("dnr"), and stops at the page that shows their recovery codes.
func (b *browser) createTestPerson(d *runningDemo, given, family, kind string) {
	b.t.Helper()
	enrol := chromedp.CSS(`form.passkey-ceremony [data-role=button]`)
	b.do("log in for the account page",
		chromedp.Navigate(d.base+"/account"),
		chromedp.Click(chromedp.ID("provider-passkey")),
		chromedp.Click(chromedp.Search(`//a[normalize-space()="Create a test person (demo)"]`)),
		chromedp.WaitVisible(enrol))
	b.do("create a test person",
		chromedp.SendKeys(chromedp.ID("given_name"), given),
		chromedp.SendKeys(chromedp.ID("family_name"), family),
		chromedp.Click(chromedp.CSS(`input[name=kind][value=`+kind+`]`)),
		chromedp.Click(enrol),
		chromedp.WaitVisible(chromedp.CSS(`code.codes`)))
}
