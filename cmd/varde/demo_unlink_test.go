package main

import (
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDemoRemovesAnAddedEID: in the demo, a test person with a D-number
// adds Demo BankID (logging in there as a listed person, whose birth
// number is of another kind), sees it listed on the account page by
// name and kind of number, and removes it again: a page asks first and
// says what removing means, and once it is removed the account page says
// so, lists it no more, and shows it in the recent activity. No page
// shows the birth number (ADR 57).
func TestDemoRemovesAnAddedEID(t *testing.T) {
	b, _ := newBrowser(t)
	d := startDemo(t, "")
	b.createTestPerson(d, "Amina", "Yusuf", "dnr")
	b.do("continue to the account page",
		chromedp.Click(chromedp.Search(`//form[@action="/passkey/enrolled/continue"]//button`)),
		chromedp.WaitVisible(chromedp.ID("link-bankid")))
	b.wantIn("main", "You have not added any eID here.")

	b.do("add Demo BankID as Kari Nordmann, with a birth number",
		chromedp.Click(chromedp.ID("link-bankid")),
		chromedp.WaitVisible(chromedp.ID("number")),
		chromedp.Click(chromedp.Search(`//label[contains(., "Kari Nordmann")]/input`)),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role=status]`)))
	b.wantIn(".notice[role=status]", "The new way to log in was added.")
	b.wantIn("#eids + .table-scroll table", "Demo BankID")
	b.wantIn("#eids + .table-scroll table", "Birth number")
	b.shot("eids")

	remove := `form[action="/account/eids/unlink"] button`
	b.do("remove Demo BankID", chromedp.Click(chromedp.CSS(remove)),
		chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space()="Remove Demo BankID as a way to log in?"]`)))
	b.shot("unlink")
	b.wantIn("main", "nor with any other eID that gives us the same number")
	b.wantIn("main", "you get a new, separate Varde ID")
	b.wantIn("main", "with an eID that gives us your own national identity number")
	elevenDigits := regexp.MustCompile(`\d{11}`)
	if page := b.text("main"); elevenDigits.MatchString(page) {
		t.Errorf("the page asking to remove the eID shows a number:\n%s", page)
	}
	b.do("yes, remove it", chromedp.Click(chromedp.CSS(`form[action="/account/eids/unlink"] button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role=status]`)))
	b.wantIn(".notice[role=status]", "The eID was removed as a way to log in.")
	b.wantIn("main", "You have not added any eID here.")
	b.wantIn("#activity ~ .table-scroll table", "Demo BankID was removed as a way to log in")
	if n := b.count(remove); n != 0 {
		t.Errorf("the account page still offers to remove %d eIDs", n)
	}
}
