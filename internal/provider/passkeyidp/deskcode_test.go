package passkeyidp_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/provider/passkeyidp"
)

// TestHelpDeskCodeLogsInOnce: a code the help desk gave a person who
// lost their passkey and never kept their recovery codes, typed where a
// recovery code goes as people type off paper, logs them in to their
// account at low with the method desk-code, and ends the person's
// other sessions, which their activity says, in every language; typed
// again, or once past its time, it is refused saying what happened and
// what to do; tries are bounded per browser as for recovery codes; a
// blocked person's code grants nothing and is given back.
func TestHelpDeskCodeLogsInOnce(t *testing.T) {
	texts := map[string]struct{ used, expired, ended string }{
		"en": {"That code from the help desk has been used already.", "That code from the help desk is more than 24 hours old",
			"You were logged out everywhere else"},
		"nb": {"Den koden fra brukerstøtten er brukt allerede.", "Den koden fra brukerstøtten er mer enn 24 timer gammel",
			"Du ble logget ut alle andre steder"},
		"da": {"Den kode fra supporten er allerede brugt.", "Den kode fra supporten er mere end 24 timer gammel",
			"Du blev logget ud alle andre steder"},
	}
	h := newHarness(t, true)
	h.p.History = h.db
	e := h.browser("en").enrol(newDevice(false), "", "fnr")
	issue := func() string {
		t.Helper()
		code, hash, err := passkeyidp.NewDeskCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.db.IssueDeskCode(t.Context(), e.person, hash, h.now.Add(passkeyidp.DeskCodeLifetime), h.now, false, nil); err != nil {
			t.Fatal(err)
		}
		return code
	}
	try := func(b *browser, code string) reply {
		t.Helper()
		csrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
		return b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {code}})
	}

	n := 0
	for lang, want := range texts {
		code := issue()
		// A session opened after the code was issued (issuing ends
		// those before): with a recovery code, in another browser.
		other := h.browser(lang)
		if r := try(other, e.codes[n]); r.status != http.StatusSeeOther {
			t.Fatalf("%s: login with a recovery code: %d", lang, r.status)
		}
		n++
		b := h.browser(lang)
		r := try(b, strings.ToLower(strings.ReplaceAll(code, "-", " ")))
		if r.status != http.StatusSeeOther || r.location != "/account" {
			t.Fatalf("%s: login with the help desk code: %d to %q", lang, r.status, r.location)
		}
		res := h.fin.results[len(h.fin.results)-1].Result
		if res.PersonID != e.person || res.Level.String() != "low" || res.Method != "desk-code" || strings.Join(res.AMR, " ") != "otp" {
			t.Errorf("%s: the help desk code's login: %+v", lang, res)
		}
		if r := other.get("/account"); r.status == http.StatusOK {
			t.Errorf("%s: the person's other session is still live after a login with a help desk code", lang)
		}
		if page := html.UnescapeString(b.get("/account").body); !strings.Contains(page, want.ended) {
			t.Errorf("%s: the activity lacks %q:\n%s", lang, want.ended, page)
		}
		r = try(h.browser(lang), code)
		if body := html.UnescapeString(r.body); r.status != http.StatusBadRequest || !strings.Contains(body, want.used) {
			t.Errorf("%s: the help desk code again: %d, want %q in\n%s", lang, r.status, want.used, body)
		}
	}

	// Past its time: refused, saying so.
	late := issue()
	h.now = h.now.Add(passkeyidp.DeskCodeLifetime)
	for lang, want := range texts {
		r := try(h.browser(lang), late)
		if body := html.UnescapeString(r.body); r.status != http.StatusBadRequest || !strings.Contains(body, want.expired) {
			t.Errorf("%s: an expired help desk code: %d, want %q in\n%s", lang, r.status, want.expired, body)
		}
	}

	// Guessing is bounded as for recovery codes (ADR 24): a browser at
	// the limit is refused even the right code, which stays unused.
	h.now = h.now.Add(passkeyidp.DeskCodeLifetime)
	right := issue()
	guesser := h.browser("en")
	for i := range passkeyidp.MaxRecoveryTries {
		if r := try(guesser, fmt.Sprintf("AAAA-BBBB-CCCC-%04d", i)); r.status != http.StatusBadRequest {
			t.Fatalf("wrong guess %d: %d", i, r.status)
		}
	}
	if r := try(guesser, right); r.status != http.StatusTooManyRequests {
		t.Errorf("the help desk code past the browser's tries: %d, want 429", r.status)
	}
	if r := try(h.browser("en"), right); r.status != http.StatusSeeOther {
		t.Errorf("the help desk code, refused for the limit, then in another browser: %d, want it unused", r.status)
	}

	// Blocked meanwhile: the code grants nothing (the broker refuses
	// the login), and is given back.
	blocked := issue()
	if _, err := h.db.BlockPerson(t.Context(), e.person, "stolen phone", h.now, nil); err != nil {
		t.Fatal(err)
	}
	try(h.browser("en"), blocked)
	sum := sha256.Sum256([]byte(strings.ReplaceAll(blocked, "-", "")))
	if _, err := h.db.UseDeskCode(t.Context(), sum[:], h.now); err != nil {
		t.Errorf("a blocked person's help desk code was not given back: %v", err)
	}
}
