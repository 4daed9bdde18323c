package passkeyidp_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// historyLink finds the link with id in a page, "" when there is none.
func historyLink(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<a [^>]*id="` + id + `"[^>]*href="([^"]*)"|<a [^>]*href="([^"]*)"[^>]*id="` + id + `"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1] + m[2])
}

// historyAddrs is the address column of a page's activity, newest first.
func historyAddrs(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, row := range activityRows(t, body) {
		out = append(out, row[3])
	}
	return out
}

// manyEvents gives person n logins from addresses of their own, in the
// trail between another person's logins and events the activity does not
// show (tokens), a minute apart, and returns the addresses, oldest first.
func manyEvents(t *testing.T, h *harness, person, other string, n int) []string {
	t.Helper()
	var addrs []string
	var evs []*store.AuditEvent
	for i := range n {
		a := fmt.Sprintf("10.0.%d.%d", i/200, i%200+1)
		addrs = append(addrs, a)
		evs = append(evs,
			&store.AuditEvent{Type: "authentication", PersonID: person, Provider: "passkey", Level: "high", Result: store.ResultSuccess,
				Details: map[string]string{"method": "passkey", store.DetailAddr: a}},
			&store.AuditEvent{Type: "authentication", PersonID: other, Provider: "passkey", Level: "high", Result: store.ResultSuccess,
				Details: map[string]string{"method": "passkey", store.DetailAddr: fmt.Sprintf("192.0.2.%d", i%250+1)}},
			&store.AuditEvent{Type: "token", PersonID: person, Result: store.ResultSuccess})
	}
	for i, ev := range evs {
		// A login a minute, from the minute after the enrolment on.
		ev.Time = h.now.Add(time.Duration(i/3+1) * time.Minute)
		if err := h.db.AppendAudit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// walkOlder follows "Older" links from the page at first, and returns
// the addresses of every page's lines and the pages, in the order read;
// more than lines pages fail.
func walkOlder(t *testing.T, b *browser, first string, lines int) (addrs, pages []string) {
	t.Helper()
	for next := first; next != ""; {
		if len(pages) > lines {
			t.Fatalf("more pages than lines: %q", pages)
		}
		r := b.get(next)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", next, r.status, r.body)
		}
		pages = append(pages, next)
		addrs = append(addrs, historyAddrs(t, r.body)...)
		next = historyLink(t, r.body, "older")
	}
	return addrs, pages
}

// TestActivityPagesReachEveryEvent: a person with more activity than
// the account page shows follows "Show older activity" and then each
// page's "Older" link to their very first event, seeing each of their
// events once and nobody else's; "Newer" links lead back the same way.
func TestActivityPagesReachEveryEvent(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	person := b.enrol(newDevice(false), "", "fnr").person
	other := h.browser("en")
	stranger := other.enrol(newDevice(false), "", "fnr").person
	addrs := manyEvents(t, h, person, stranger, 95)
	// Newest first, then the enrolment (without an address) and the
	// codes it made.
	want := slices.Clone(addrs)
	slices.Reverse(want)
	want = append(want, "–", "–")

	account := b.get("/account")
	if account.status != http.StatusOK {
		t.Fatalf("account: %d", account.status)
	}
	seen := historyAddrs(t, account.body)
	next := historyLink(t, account.body, "activity-older")
	if next == "" || !strings.Contains(account.body, "Show older activity") {
		t.Fatalf("account page with %d events has no link to older activity", len(want))
	}
	older, pages := walkOlder(t, b, next, len(want))
	seen = append(seen, older...)
	for _, p := range pages {
		r := b.get(p)
		if !strings.Contains(r.body, "<h1") || !strings.Contains(r.body, "Your activity from ") {
			t.Errorf("%s: no heading naming the period", p)
		}
		if newer := historyLink(t, r.body, "newer"); newer == "" {
			t.Errorf("%s: no link to newer activity", p)
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("activity walked back page by page:\n%q\nwant\n%q", seen, want)
	}
	if len(pages) < 2 {
		t.Fatalf("walked %d pages, want more than one", len(pages))
	}

	// Back again from the oldest page, by its "Newer" links: the same
	// events, each once, up to the newest.
	var back []string
	r := b.get(pages[len(pages)-1])
	for {
		back = append(historyAddrs(t, r.body), back...)
		newer := historyLink(t, r.body, "newer")
		if newer == "" {
			break
		}
		if len(back) > len(want) {
			t.Fatalf("walking forward repeats events: %q", back)
		}
		if r = b.get(newer); r.status != http.StatusOK {
			t.Fatalf("%s: %d", newer, r.status)
		}
	}
	if !slices.Equal(back, want) {
		t.Fatalf("activity walked forward page by page:\n%q\nwant\n%q", back, want)
	}

	// The other person's pages list only theirs; this person's cursors
	// do not open for them (TestActivityCursorIsThePersonsOwn).
	for _, a := range historyAddrs(t, other.get("/account/activity").body) {
		if strings.HasPrefix(a, "10.0.") {
			t.Fatalf("%s's activity shows another person's event from %s", stranger, a)
		}
	}
	for _, p := range pages {
		if r := other.get(p); r.status != http.StatusBadRequest || strings.Contains(r.body, "10.0.") {
			t.Fatalf("%s at another person's cursor %s: %d, want 400 showing none of their events", stranger, p, r.status)
		}
	}
}

// withActivity is a harness with a person enrolled in b, whose page
// language is lang, and n logins of theirs (manyEvents).
func withActivity(t *testing.T, lang string, n int) (*harness, *browser) {
	t.Helper()
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser(lang)
	person := b.enrol(newDevice(false), "", "fnr").person
	manyEvents(t, h, person, "someone-else", n)
	return h, b
}

// TestActivityPageInEveryLanguage: the pages of older activity, their
// links and the heading naming the period are in the page's language.
func TestActivityPageInEveryLanguage(t *testing.T) {
	_, b := withActivity(t, "en", 80)
	for lang, words := range map[string][]string{
		"nb": {"Vis eldre aktivitet", "Aktiviteten din fra ", "Nyere aktivitet", "Eldre aktivitet"},
		"en": {"Show older activity", "Your activity from ", "Newer activity", "Older activity"},
		"da": {"Vis ældre aktivitet", "Din aktivitet fra ", "Nyere aktivitet", "Ældre aktivitet"},
	} {
		b.lang = lang
		account := b.get("/account")
		if !strings.Contains(account.body, words[0]) {
			t.Errorf("%s account page: no %q", lang, words[0])
		}
		// The second page of three has both newer and older activity.
		middle := b.get(historyLink(t, account.body, "activity-older"))
		for _, w := range words[1:] {
			if !strings.Contains(middle.body, w) {
				t.Errorf("%s page of older activity: no %q", lang, w)
			}
		}
	}
}

// TestActivityPageRefusesBadCursors: a garbled or forged cursor gets a
// page that says the link does not work, not an error in the trail or
// someone else's events; a cursor past every event gets an empty page
// with a way back. Without a session the page asks for a login.
func TestActivityPageRefusesBadCursors(t *testing.T) {
	h, b := withActivity(t, "en", 3)
	for _, q := range []string{
		"page=", "page=abc", "page=a&page=b",
		// A sealed cursor with a Seq in the clear beside it: no link
		// was ever made so.
		"page=abc&before=5", "page=abc&after=2",
	} {
		r := b.get("/account/activity?" + q)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "This link to your activity does not work") {
			t.Errorf("?%s: %d, want 400 with a page saying the link does not work", q, r.status)
		}
		if !strings.Contains(r.body, `href="/account/activity"`) {
			t.Errorf("?%s: no link to the newest activity", q)
		}
	}
	// Past the newest and before the oldest: nothing to show, said so.
	for _, c := range [][2]int64{{0, math.MaxInt64 - 1}, {1, 0}} {
		link, err := passkeyidp.ActivityPage(h.p, h.fin.last(t).Result.PersonID, c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		r := b.get(link)
		if r.status != http.StatusOK || len(activityRowsOrNone(r.body)) != 0 || !strings.Contains(r.body, "No activity to show here.") {
			t.Errorf("before %d, after %d: %d, want an empty page saying so", c[0], c[1], r.status)
		}
	}
	nobody := h.browser("en")
	if r := nobody.get("/account/activity"); r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("without a session: %d to %q, want a login", r.status, r.location)
	}
}

// TestOldActivityLinksLeadToTheNewest: a link to a page of activity
// made before cursors were sealed (?before=SEQ, ?after=SEQ), bookmarked
// by its person, sends them to their newest activity rather than to a
// page saying it does not work, in the language the link asked for;
// whatever Seq it named, it reads nothing at it.
func TestOldActivityLinksLeadToTheNewest(t *testing.T) {
	_, b := withActivity(t, "en", 80)
	// The lines are told apart by their addresses, which no language
	// changes.
	addrs := func(rows [][4]string) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r[3])
		}
		return out
	}
	newest := addrs(activityRows(t, b.get("/account/activity").body))
	for _, tc := range []struct{ q, to string }{
		{"before=5", "/account/activity"},
		{"after=2", "/account/activity"},
		{"before=1&after=2", "/account/activity"},
		{"before=1&before=2", "/account/activity"},
		{"before=abc", "/account/activity"},
		{"before=", "/account/activity"},
		{"after=-5", "/account/activity"},
		{"before=99999999999999999999", "/account/activity"},
		{"before=5&lang=nb", "/account/activity?lang=nb"},
	} {
		r := b.get("/account/activity?" + tc.q)
		if r.status != http.StatusSeeOther || r.location != tc.to {
			t.Errorf("?%s: %d to %q, want 303 to %q", tc.q, r.status, r.location, tc.to)
			continue
		}
		if got := addrs(activityRows(t, b.get(r.location).body)); !slices.Equal(got, newest) {
			t.Errorf("?%s: led to %q, want the newest activity %q", tc.q, got, newest)
		}
	}
}

// activityRowsOrNone is activityRows of a page that may have no table.
func activityRowsOrNone(body string) []string {
	return regexp.MustCompile(`<tr><td>`).FindAllString(body, -1)
}

// TestActivityPagesPassOverLongRuns: a long run of events the activity
// does not show (a service fetching tokens all day) costs a page no more
// than a bounded read: the page ends early with a link to go on, and
// going on reaches every line, each once.
func TestActivityPagesPassOverLongRuns(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	b := h.browser("en")
	person := b.enrol(newDevice(false), "", "fnr").person
	var evs []*store.AuditEvent
	for range 2500 {
		evs = append(evs, &store.AuditEvent{Type: "token", PersonID: person, Result: store.ResultSuccess})
	}
	h.appendEvents(t, evs)
	addrs := manyEvents(t, h, person, "someone-else", 5)
	want := slices.Clone(addrs)
	slices.Reverse(want)
	want = append(want, "–", "–")
	seen, pages := walkOlder(t, b, "/account/activity", len(want))
	if !slices.Equal(seen, want) || len(pages) < 2 {
		t.Fatalf("activity over %d pages:\n%q\nwant\n%q", len(pages), seen, want)
	}
}

// TestActivityPageNamesItsPeriod: the heading says from when to when
// the page's lines are, in the page's language and zone.
func TestActivityPageNamesItsPeriod(t *testing.T) {
	h, b := withActivity(t, "nb", 3)
	from := httpx.FormatTime("nb", h.now, h.p.Pages.Location(), false)
	to := httpx.FormatTime("nb", h.now.Add(3*time.Minute), h.p.Pages.Location(), false)
	body := b.get("/account/activity").body
	if want := "<h1 id=\"activity\">Aktiviteten din fra " + from + " til " + to + "</h1>"; !strings.Contains(body, want) {
		t.Errorf("no heading %q in\n%s", want, body)
	}
}

// TestAccountLinksOlderActivityOnlyWhenThereIsMore: the account page
// links to older activity only when it does not show every line, and
// the page it links to holds the rest.
func TestAccountLinksOlderActivityOnlyWhenThereIsMore(t *testing.T) {
	// The enrolment makes two lines: with 28 logins the account page
	// shows all 30.
	h, b := withActivity(t, "en", 28)
	account := b.get("/account")
	if n := len(activityRows(t, account.body)); n != 30 {
		t.Fatalf("account page shows %d lines, want 30", n)
	}
	if l := historyLink(t, account.body, "activity-older"); l != "" {
		t.Fatalf("account page showing every line links to older activity: %s", l)
	}
	person := h.fin.last(t).Result.PersonID
	manyEvents(t, h, person, "someone-else", 1)
	account = b.get("/account")
	older := b.get(historyLink(t, account.body, "activity-older"))
	rows := activityRows(t, older.body)
	if len(rows) != 1 || rows[0][1] != "Your identity was created with a passkey" {
		t.Fatalf("older activity %q, want the enrolment alone", rows)
	}
	if historyLink(t, older.body, "older") != "" || historyLink(t, older.body, "newer") == "" {
		t.Error("the oldest page links to older activity, or not to newer")
	}
}

// TestActivityCursorIsThePersonsOwn: the links between a person's
// pages of activity say nothing of other people's events (the audit
// log's Seq, which counts everyone's, is sealed in them, and a link is
// made anew each time), and open only for the person they were made
// for, under the cluster's key: another person's, a changed one, or one
// of another key gets the page saying the link does not work, showing
// nothing of the first person. A link keeps its page while new events
// arrive.
func TestActivityCursorIsThePersonsOwn(t *testing.T) {
	h := newHarness(t, true)
	h.p.History = h.db
	kari, ola := h.browser("en"), h.browser("en")
	karis := kari.enrol(newDevice(false), "", "fnr").person
	olas := ola.enrol(newDevice(false), "", "fnr").person
	// Ola's logins between each two of Kari's: what a Seq in the clear
	// would count.
	addrs := manyEvents(t, h, karis, olas, 80)

	account := kari.get("/account")
	second := historyLink(t, account.body, "activity-older")
	if again := historyLink(t, kari.get("/account").body, "activity-older"); again == second {
		t.Errorf("the same link twice: %s; a link is made anew each time, so that two say nothing of each other", second)
	}
	page := kari.get(second)
	older := historyLink(t, page.body, "older")
	token := regexp.MustCompile(`^/account/activity\?page=([A-Za-z0-9_-]{50})$`).FindStringSubmatch(older)
	if token == nil {
		t.Fatalf("the link to older activity is %q, want a sealed cursor and nothing else", older)
	}
	want := historyAddrs(t, kari.get(older).body)
	if len(want) == 0 {
		t.Fatal("the third page shows nothing")
	}

	notWorking := func(who string, b *browser, link string) {
		t.Helper()
		r := b.get(link)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "This link to your activity does not work") ||
			!strings.Contains(r.body, "A link to activity works only for the person it was made for") {
			t.Errorf("%s: %d, want 400 with a page saying the link does not work, and why", who, r.status)
		}
		for _, a := range addrs {
			if strings.Contains(r.body, a) {
				t.Errorf("%s: the page shows Kari's address %s", who, a)
			}
		}
	}
	notWorking("Kari's link followed by Ola", ola, older)
	// One symbol changed to another of base64url's, so the link still
	// decodes and only the seal can refuse it. (Flipping bits could make
	// a ';', which ends the query's parameter, and the page would then be
	// Kari's newest, as for no cursor.)
	changed := []byte(token[1])
	if mid := len(changed) / 2; changed[mid] == 'A' {
		changed[mid] = 'B'
	} else {
		changed[mid] = 'A'
	}
	notWorking("Kari's link changed", kari, "/account/activity?page="+string(changed))
	key := h.p.CursorKey
	h.p.CursorKey = bytes.Repeat([]byte{9}, passkeyidp.MinCursorKeySize)
	notWorking("Kari's link under another key", kari, older)
	h.p.CursorKey = key

	// New events, Kari's and Ola's, do not move the page a link leads to.
	manyEvents(t, h, karis, olas, 10)
	if got := historyAddrs(t, kari.get(older).body); !slices.Equal(got, want) {
		t.Errorf("after new events the link shows %q, want %q as before", got, want)
	}
}
