package a11ytest_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/browsertest"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/npmtest"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// wcagTags are the axe-core rule tags run: WCAG 2.0, 2.1 and 2.2 success
// criteria of levels A and AA.
var wcagTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// failing are the axe impact ratings that fail the test; "moderate" and
// "minor" findings are logged.
var failing = map[string]bool{"serious": true, "critical": true}

// TestPagesWCAG opens every page a person meets — the login page of a
// real pending request (with a notice, and run out of time), the passkey login, enrolment and recovery pages,
// error pages, the recovery codes shown after enrolment, the account page
// with a logged-in session (logged in elsewhere too, and a service
// holding offline access), with the notice after a passkey is added
// through it and with the error notice of a removal it refuses, the
// pages that ask before a passkey is removed or new recovery codes are
// made, new recovery codes, the notices after logging out everywhere
// else and after stopping a service's access, the pages of older
// activity, the logout confirmation and the logged-out page — in every language, and runs axe-core's WCAG
// 2.2 A/AA rules on each. Any serious or critical violation fails, with
// the rule, its help text and the elements it found. A page a person is
// sent back to with an error starts with the focus on that error. Each page is also
// laid out at 320 CSS pixels (WCAG 1.4.10 Reflow, which axe does not
// check): nothing outside a data table may stick out to the right.
func TestPagesWCAG(t *testing.T) {
	requireBrowserTests(t)
	axeSrc := axeSource(t)
	b := newBrowser(t, chromiumPath(t), axeSrc)
	n := startNode(t)
	req := n.pendingRequest(t, b)
	// A client that accepts no provider Varde has: no way to log in can
	// reach its level.
	unreachable := n.pendingRequestFor(t, b, "nowhere", []string{"no-such-eid"})
	// A login for the bank that ran out of time a minute ago: its page
	// leads back to the bank. One for each visit, made just before it:
	// the node's housekeeping, every minute, deletes a request that has
	// ended, and the page then knows no service, so that one made
	// earlier is gone by the time a loaded machine comes to its page.
	expiredRequest := func(t *testing.T) string {
		id := random(t)
		err := n.app.Store.CreateAuthRequest(context.Background(), &store.AuthRequest{
			ID: id, ClientID: "bank", RedirectURI: "https://bank.example/callback", Scope: []string{"openid"}, MaxAge: -1,
			CreatedAt: time.Now().Add(-11 * time.Minute), ExpiresAt: time.Now().Add(-time.Minute),
		})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	q := func(lang string, kv ...string) string {
		v := url.Values{"lang": {lang}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ceremony := func(kind string) string { return `.passkey-ceremony[data-ceremony=` + kind + `] [data-role=button]` }
	// service is a relying party's page on another site than Varde's
	// (127.0.0.1, Varde at localhost) whose form posts an authorization
	// request, in the language of its lang.
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Bank</title><form method="post" action="%s/authorize">`+
			`<input type="hidden" name="client_id" value="bank"><input type="hidden" name="response_type" value="code">`+
			`<input type="hidden" name="ui_locales" value="%s"><button id="go">Log in</button></form>`,
			html.EscapeString(n.issuer), html.EscapeString(r.URL.Query().Get("lang")))
	}))
	t.Cleanup(service.Close)

	for _, l := range app.Languages {
		lang := l.Tag
		pages := []struct {
			name, path string
			status     int
			ready      string // an element only the expected page has
			// focus starts the element that has the focus once the page
			// has loaded: an error a person was sent back with, before
			// they go on (WCAG 3.3.1, 2.4.3); "" for the page's start.
			focus string
			// via, if set, is a button on the page at path that leads
			// to the page checked: a notice is shown only to the
			// browser the failure happened in.
			via string
			// late, if set, gives the path in place of path when the
			// page is opened, for a request made just before.
			late func(t *testing.T) string
		}{
			{"login", "/login?" + q(lang, "req", req), 200, "#provider-passkey", "", "", nil},
			{"login with error", "/passkey/login?" + q(lang, "attempt", req), 200, ".notice .error", `<div class="notice" role="alert"`, cancelButton, nil},
			{"passkey login", "/passkey/login?" + q(lang, "attempt", req), 200, ceremony("login"), "", "", nil},
			{"enrolment", "/passkey/enrol?" + q(lang, "attempt", req), 200, ceremony("enrol"), "", "", nil},
			{"recovery", "/passkey/recover?" + q(lang, "attempt", req), 200, "#code", "", "", nil},
			{"cancel", "/authorize/cancel?" + q(lang, "req", req), 200, "#cancel", "<h1", "", nil},
			{"no way to log in", "/login?" + q(lang, "req", unreachable), 503, "#cancel", "", "", nil},
			{"unknown request", "/login?" + q(lang, "req", "unknown"), 400, "#support", "", "", nil},
			{name: "expired request", late: func(t *testing.T) string { return "/login?" + q(lang, "req", expiredRequest(t)) }, status: 400, ready: "#service"},
			{"not found", "/no-such-page?" + q(lang), 404, "#support", "", "", nil},
			{"logged out", "/logout?" + q(lang), 200, "main h1", "", "", nil},
			{"logout not understood", "/logout?" + q(lang, "id_token_hint", "not.an.idtoken"), 400, "main h1", "", "", nil},
		}
		for _, p := range pages {
			t.Run(lang+"/"+p.name, func(t *testing.T) {
				b := b.page(t)
				path := p.path
				if p.late != nil {
					path = p.late(t)
				}
				b.visit(t, n.issuer+path, p.status)
				if p.via != "" {
					b.do(t, "click "+p.via, chromedp.Click(p.via))
					b.until(t, `document.querySelector(`+strconv.Quote(p.ready)+`) !== null`)
				}
				b.audit(t, lang, p.ready)
				b.errorTitle(t, lang, p.ready == ".notice .error")
				b.focusOn(t, cmp.Or(p.focus, "<body"))
				b.helpLast(t)
				b.skipLink(t)
			})
		}

		// The warning before a service's login ends (timeout.js, ADR
		// 50), open as a modal dialog on the login pages.
		for _, p := range []struct{ name, path string }{
			{"login", "/login?" + q(lang, "req", req)},
			{"passkey login", "/passkey/login?" + q(lang, "attempt", req)},
			{"recovery", "/passkey/recover?" + q(lang, "attempt", req)},
			{"enrolment", "/passkey/enrol?" + q(lang, "attempt", req)},
		} {
			t.Run(lang+"/"+p.name+" with the warning before it ends", func(t *testing.T) {
				b := b.page(t)
				b.visit(t, n.issuer+p.path, 200)
				b.auditWarning(t, lang, "login-timeout")
			})
			// As a browser without script shows it: the page's own
			// button beside the sentence that says until when, and,
			// after it was pressed, the words that say so.
			t.Run(lang+"/"+p.name+" without script, kept", func(t *testing.T) {
				b := b.page(t)
				b.visit(t, n.issuer+p.path+"&kept=1", 200)
				b.do(t, "show the page's own keep button", chromedp.Evaluate[chromedp.Void](`document.querySelector("form.timeout-keep").hidden = false`))
				b.audit(t, lang, `#login-timeout-extend`)
				b.audit(t, lang, `#login-timeout-kept`)
			})
		}

		// A service's authorization request posted from its own site
		// (ADR 58): without script, the page that posts it again from
		// Varde's origin shows its Continue button.
		t.Run(lang+"/authorization request posted from another site", func(t *testing.T) {
			b.scripts(t, false)
			b.visit(t, service.URL+"/post?"+q(lang), 200)
			b.do(t, "post the service's form", chromedp.Click(`#go`), chromedp.WaitVisible(`#repost-continue`))
			// On again for axe, which runs in the page: the page's own
			// script, not run when it loaded, is not run now either.
			b.scripts(t, true)
			b.audit(t, lang, "#repost-continue")
		})

		// A service's login at a level a recovery code cannot reach:
		// the page says so, and what a person with no eID can do.
		t.Run(lang+"/recovery not enough", func(t *testing.T) {
			at := n.pendingRequestAt(t, b, "http://eidas.europa.eu/LoA/substantial")
			b.visit(t, n.issuer+"/passkey/recover?"+q(lang, "attempt", at), 200)
			b.audit(t, lang, "#no-eid")
			b.until(t, `document.querySelector("#code") === null && document.querySelector('a[href="/passkey/recover?attempt="]') !== null`)
			b.helpLast(t)
			b.focusWalk(t)
		})

		t.Run(lang+"/recovery with wrong code", func(t *testing.T) {
			b.visit(t, n.issuer+"/passkey/recover?"+q(lang, "attempt", req), 200)
			b.do(t, "submit a wrong code",
				chromedp.SendKeys(`#code`, "WRONG-CODE-1234"),
				chromedp.Click(`form[action="/passkey/recover"] button[type=submit]`),
			)
			b.until(t, `document.querySelector("#code-error") !== null`)
			b.audit(t, lang, "#code-error")
			b.errorTitle(t, lang, true)
			// The field, which the error describes, has the focus.
			b.focusOn(t, `<input type="text" id="code"`)
			// WCAG 3.3.7: the code comes back in the field, to be
			// corrected rather than typed again from the start.
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("#code").value`))
			if err != nil || got != "WRONG-CODE-1234" {
				t.Errorf("code field after a wrong code = %q (%v), want what was typed", got, err)
			}
		})

		// A code from the help desk used already (ADR 62): the
		// longer message, saying what to do, in the same error.
		t.Run(lang+"/recovery with a used help desk code", func(t *testing.T) {
			ctx, now := context.Background(), time.Now()
			person := "desk-" + lang
			code, hash, err := passkeyidp.NewDeskCode(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.app.Store.CreatePerson(ctx, &store.Person{ID: person, WebAuthnID: []byte(person), ProofingLevel: "high", CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			if _, err := n.app.Store.IssueDeskCode(ctx, person, hash, now.Add(passkeyidp.DeskCodeLifetime), now, false, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := n.app.Store.UseDeskCode(ctx, hash, now); err != nil {
				t.Fatal(err)
			}
			b.visit(t, n.issuer+"/passkey/recover?"+q(lang, "attempt", req), 200)
			b.do(t, "submit the used code",
				chromedp.SendKeys(`#code`, code),
				chromedp.Click(`form[action="/passkey/recover"] button[type=submit]`),
			)
			b.until(t, `document.querySelector("#code-error") !== null`)
			b.audit(t, lang, "#code-error")
			b.errorTitle(t, lang, true)
		})

		// An error the passkey script shows (here: enrolment with
		// names of only spaces, which the browser's own check of
		// required fields lets through and Varde refuses) says so in
		// the title too, as the pages the server renders with an error
		// do.
		t.Run(lang+"/enrolment without a name", func(t *testing.T) {
			b.visit(t, n.issuer+"/passkey/enrol?"+q(lang, "attempt", req), 200)
			b.errorTitle(t, lang, false)
			b.do(t, "enrol without a name",
				chromedp.WaitVisible(ceremony("enrol")),
				chromedp.SendKeys(`#given_name`, " "),
				chromedp.SendKeys(`#family_name`, " "),
				chromedp.Click(ceremony("enrol")),
			)
			b.until(t, `document.querySelector(".passkey-ceremony [data-role=message].error") !== null`)
			b.audit(t, lang, "[aria-invalid=true]")
			b.errorTitle(t, lang, true)
			b.ceremonyError(t)
		})

		// Fields left empty, or a date of birth half typed, which the
		// browser's own check would only tell in a bubble of its own
		// language that goes away: the page says what is wrong in its
		// own words and keeps saying it, the field marked invalid,
		// described by the message and focused (WCAG 3.3.1, 3.3.3).
		for _, tc := range []struct {
			name   string
			typing []chromedp.Action[chromedp.Void]
			field  string
		}{
			{"enrolment with the names left empty", nil, "given_name"},
			{"enrolment with half a date of birth", []chromedp.Action[chromedp.Void]{
				chromedp.SendKeys(`#given_name`, "Kari"),
				chromedp.SendKeys(`#family_name`, "Nordmann"),
				chromedp.SendKeys(`#birth_date`, "01"),
			}, "birth_date"},
		} {
			t.Run(lang+"/"+tc.name, func(t *testing.T) {
				b.visit(t, n.issuer+"/passkey/enrol?"+q(lang, "attempt", req), 200)
				b.do(t, "wait for the form", chromedp.WaitVisible(ceremony("enrol")))
				b.do(t, "type", tc.typing...)
				b.do(t, "enrol", chromedp.Click(ceremony("enrol")))
				b.until(t, `document.querySelector(".passkey-ceremony [data-role=message].error") !== null`)
				got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => {
				  const f = document.getElementById("`+tc.field+`"), m = document.querySelector(".passkey-ceremony [data-role=message]");
				  if (!m.textContent.trim()) return "no message";
				  if (f.getAttribute("aria-invalid") !== "true") return "field not marked invalid";
				  if (!(f.getAttribute("aria-describedby") || "").split(" ").includes(m.id)) return "field not described by the message";
				  if (document.activeElement !== f) return "focus on " + document.activeElement.outerHTML.slice(0, 60);
				  return "";
				})()`))
				if err != nil || got != "" {
					t.Errorf("the error about #%s: %s (%v)", tc.field, got, err)
				}
				b.audit(t, lang, "[aria-invalid=true]")
				b.errorTitle(t, lang, true)
				b.ceremonyError(t)
			})
		}

		// A test person enrolled during a service's login: the page of
		// their recovery codes says until when the login stays open,
		// and warns before it ends (ADR 50).
		t.Run(lang+"/recovery codes of a service's login with the warning before it ends", func(t *testing.T) {
			b.enrolTestPerson(t, n.issuer+"/passkey/enrol?"+q(lang, "attempt", n.pendingRequest(t, b)), "Ola")
			b.audit(t, lang, "#login-timeout-info")
			b.auditWarning(t, lang, "login-timeout")
		})

		// A person enrols (a synthetic test person, with Chromium's
		// virtual authenticator), sees their recovery codes, lands on
		// the account page logged in, asks for new codes and logs out.
		t.Run(lang+"/account", func(t *testing.T) {
			b.enrolTestPerson(t, n.issuer+"/passkey/enrol?"+q(lang), "Kari")
			t.Run("recovery codes", func(t *testing.T) {
				b.audit(t, lang, "code.codes")
				b.focusWalk(t)
				b.spacedText(t)
				b.largeText(t)
			})

			b.do(t, "continue", chromedp.Click(`form[action="/passkey/enrolled/continue"] button`))
			b.until(t, `location.pathname === "/account" && document.querySelector("table") !== null`)
			// The help desk configured for this node is named there.
			b.until(t, `document.querySelector("#support #support-phone") !== null`)
			// Logged in elsewhere too, and a service holding offline
			// access: both sections show their tables.
			n.elsewhereAndAway(t)
			b.visit(t, n.issuer+"/account?"+q(lang), 200)
			t.Run("account", func(t *testing.T) {
				b.audit(t, lang, ceremony("add"))
				b.audit(t, lang, `form[action="/account/services/stop"] button`)
				b.helpLast(t)
				b.placeholders(t)
				b.scrollsInPlace(t)
				b.focusWalk(t)
				b.spacedText(t)
				b.largeText(t)
			})
			// The warning before the session ends (timeout.js, ADR 50),
			// open as a modal dialog.
			t.Run("account with the warning before the session ends", func(t *testing.T) {
				b.auditWarning(t, lang, "session-timeout")
			})
			t.Run("account without script, kept", func(t *testing.T) {
				b.visit(t, n.issuer+"/account?"+q(lang, "kept", "1"), 200)
				b.do(t, "show the page's own keep button", chromedp.Evaluate[chromedp.Void](`document.querySelector("form.timeout-keep").hidden = false`))
				b.audit(t, lang, `#session-timeout-extend`)
				b.audit(t, lang, `#session-timeout-kept`)
			})

			// More activity than the account page lists: it links to
			// a page of older activity, which links to newer and older
			// pages.
			n.longHistory(t)
			b.visit(t, n.issuer+"/account?"+q(lang), 200)
			b.do(t, "show older activity", chromedp.Click(`#activity-older`))
			b.until(t, `location.pathname === "/account/activity" && document.querySelector("#newer") !== null`)
			t.Run("older activity", func(t *testing.T) {
				b.audit(t, lang, "#newer")
				b.targets(t)
				b.helpLast(t)
				b.skipLink(t)
				b.focusWalk(t)
				b.spacedText(t)
				b.largeText(t)
			})
			b.do(t, "newer activity", chromedp.Click(`#newer`))
			b.until(t, `location.pathname === "/account/activity" && document.querySelector("#older") !== null`)
			t.Run("newest activity", func(t *testing.T) {
				b.audit(t, lang, "#older")
				b.targets(t)
			})
			b.visit(t, n.issuer+"/account?"+q(lang), 200)

			// A passkey the authenticator already holds: the error is
			// about no field, and is announced as an alert, not politely
			// after whatever else, with the focus kept in the page.
			b.do(t, "add the same passkey again", chromedp.Click(ceremony("add")))
			b.until(t, `document.querySelector(".passkey-ceremony [data-role=message].error") !== null && !document.querySelector(".passkey-ceremony[aria-busy]")`)
			t.Run("account with a passkey error", func(t *testing.T) { b.ceremonyError(t) })

			// A passkey added through the page: the account page shows
			// its notice, which takes the focus.
			b.forgetPasskeys(t)
			b.do(t, "add a passkey", chromedp.Click(ceremony("add")))
			b.until(t, `location.pathname === "/account" && document.querySelector(".notice[role=status]") !== null`)
			t.Run("account with a notice", func(t *testing.T) {
				b.audit(t, lang, ".notice[role=status]")
				b.scrollsInPlace(t)
			})

			// Removing a passkey asks first (WCAG 2.2 SC 3.3.4), on a
			// page whose heading takes the focus; "No, keep it" goes back.
			b.do(t, "remove a passkey", chromedp.Click(`form[action="/account/passkeys/remove"] button`))
			b.asks(t, lang, "remove a passkey?", "/account/passkeys/remove", "/account/passkeys/remove")
			b.do(t, "keep it", chromedp.Click(`main a.button.secondary[href="/account"]`))
			b.until(t, `location.pathname === "/account" && document.querySelector("table") !== null`)

			// Renaming a passkey: a page of its own whose heading takes
			// the focus, the name in a labelled field; a name refused
			// comes back with an error summary that takes the focus and
			// links to the field; Save renames, and the account page
			// says so.
			rename := `form[action="/account/passkeys/rename"] #passkey-name`
			b.do(t, "rename a passkey", chromedp.Click(`form[action="/account/passkeys/rename"] button`))
			b.until(t, `location.pathname === "/account/passkeys/rename" && document.querySelector('`+rename+`') !== null`)
			t.Run("rename a passkey", func(t *testing.T) {
				b.audit(t, lang, rename)
				b.errorTitle(t, lang, false)
				b.helpLast(t)
				b.targets(t)
				b.focusOn(t, "<h1")
				b.focusWalk(t)
				b.spacedText(t)
				b.largeText(t)
			})
			if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {
				const f = document.querySelector("#passkey-name");
				f.value = "";
				f.form.submit();
				return true;
			})()`)); err != nil {
				t.Fatalf("save an empty name: %v", err)
			}
			b.until(t, `location.pathname === "/account/passkeys/rename" && document.querySelector(".error-summary") !== null`)
			t.Run("rename a passkey with an error", func(t *testing.T) {
				b.audit(t, lang, ".error-summary a")
				b.errorTitle(t, lang, true)
				b.helpLast(t)
				b.targets(t)
				b.focusOn(t, `<div class="notice error-summary"`)
			})
			b.do(t, "type a name", chromedp.SendKeys(rename, "Work laptop\r"))
			b.until(t, `location.pathname === "/account" && document.querySelector(".notice[role=status]") !== null`)
			t.Run("account after a rename", func(t *testing.T) {
				b.audit(t, lang, ".notice[role=status]")
				// Each passkey's Rename and Remove, side by side.
				b.targets(t)
			})

			// A removal the page refuses (a passkey that is no longer
			// there, removed a moment ago in another tab): the account
			// page shows an error notice, which takes the focus.
			if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {
				const f = document.querySelector('form[action="/account/passkeys/remove"]');
				f.querySelector('input[name=credential]').value = "Z29uZQ";
				f.submit();
				return true;
			})()`)); err != nil {
				t.Fatalf("remove a passkey no longer there: %v", err)
			}
			b.until(t, `location.pathname === "/account/passkeys/remove" && document.querySelector(".notice[role=alert]") !== null`)
			t.Run("account with an error", func(t *testing.T) {
				b.audit(t, lang, ".notice[role=alert]")
				b.errorTitle(t, lang, true)
			})

			// An eID the person added: the account page lists it, and
			// removing it asks first (ADR 57), on a page whose heading
			// takes the focus; "Yes, remove it" removes it, and the
			// account page says so.
			n.addedEID(t)
			b.visit(t, n.issuer+"/account?"+q(lang), 200)
			unlink := `form[action="/account/eids/unlink"] button`
			t.Run("account with an added eID", func(t *testing.T) {
				b.audit(t, lang, unlink)
				b.targets(t)
			})
			b.do(t, "remove the eID", chromedp.Click(unlink))
			b.asks(t, lang, "remove an eID?", "/account/eids/unlink", "/account/eids/unlink")
			b.do(t, "yes, remove it", chromedp.Click(unlink+`.danger`))
			b.until(t, `location.pathname === "/account" && document.querySelector(".notice[role=status]") !== null`)
			t.Run("account after removing an eID", func(t *testing.T) { b.audit(t, lang, ".notice[role=status]") })

			// New codes, while the person holds some, ask first too.
			b.do(t, "new codes", chromedp.Click(`form[action="/account/recovery-codes/new"] button`))
			b.asks(t, lang, "make new recovery codes?", "/account/recovery-codes/new", "/account/recovery-codes")
			b.do(t, "yes, new codes", chromedp.Click(`form[action="/account/recovery-codes"] button`))
			b.until(t, `location.pathname !== "/account" && document.querySelector("code.codes") !== null`)
			t.Run("new recovery codes", func(t *testing.T) { b.audit(t, lang, "code.codes") })
			code, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector("code.codes").textContent`))
			if err != nil {
				t.Fatalf("read a recovery code: %v", err)
			}

			// Log out everywhere else, and stop a service's access: the
			// account page says what was done. The passkey added and the
			// new codes ended the other session: logged in elsewhere
			// again, the page offers the button.
			n.loggedInElsewhere(t, "elsewhere-again-")
			b.visit(t, n.issuer+"/account?"+q(lang), 200)
			b.do(t, "log out everywhere else", chromedp.Click(`form[action="/account/sessions/end-others"] button`))
			b.until(t, `location.pathname === "/account" && document.querySelector(".notice[role=status]") !== null`)
			t.Run("account after logging out everywhere else", func(t *testing.T) { b.audit(t, lang, ".notice[role=status]") })
			b.do(t, "stop access", chromedp.Click(`form[action="/account/services/stop"] button`))
			b.until(t, `location.pathname === "/account" && document.querySelector(".notice[role=status]") !== null && document.querySelector('form[action="/account/services/stop"]') === null`)
			t.Run("account after stopping access", func(t *testing.T) { b.audit(t, lang, ".notice[role=status]") })

			b.visit(t, n.issuer+"/logout", 200)
			t.Run("logout confirmation", func(t *testing.T) { b.audit(t, lang, `form[action="/logout"] button`) })

			b.do(t, "confirm logout", chromedp.Click(`form[action="/logout"] button`))
			b.until(t, `document.readyState === "complete" && document.querySelector('form[action="/logout"]') === null && document.querySelector("main h1") !== null`)
			t.Run("logged out", func(t *testing.T) { b.audit(t, lang, "main h1") })

			// The session is gone: the account page asks for a login.
			b.visit(t, n.issuer+"/account", 200)
			b.until(t, `location.pathname !== "/account"`)

			// A recovery code logs in to the account, whose page says
			// what that login does and what to do next.
			b.visit(t, n.issuer+"/passkey/recover?"+q(lang, "attempt", ""), 200)
			b.do(t, "log in with a recovery code",
				chromedp.SendKeys(`#code`, code),
				chromedp.Click(`form[action="/passkey/recover"] button[type=submit]`))
			b.until(t, `location.pathname === "/account" && document.querySelector("#recovered") !== null`)
			t.Run("account after a recovery code", func(t *testing.T) {
				b.audit(t, lang, "#recovered")
				b.helpLast(t)
				b.focusWalk(t)
				b.spacedText(t)
				b.largeText(t)
			})
			// Logged out again, so that the next language's pages meet
			// no session.
			b.visit(t, n.issuer+"/logout", 200)
			b.do(t, "log out", chromedp.Click(`form[action="/logout"] button`))
			b.until(t, `document.readyState === "complete" && document.querySelector('form[action="/logout"]') === null && document.querySelector("main h1") !== null`)
		})
	}
}

// TestAxeFindsViolations: the harness does find problems — a page with
// an image without a text alternative and unreadable grey text fails
// with both rules, and a word too long for 320 CSS pixels fails the
// reflow check while a wide table and visually hidden text do not.
// Without this, a broken injection or measurement could pass every page.
func TestAxeFindsViolations(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Bad page</title></head><body><main>
<h1>Bad page</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p style="color:#bbb;background:#fff">Hard to read</p>
<p id="long">Gjenopprettingskodegjenopprettingskodegjenopprettingskode</p>
<p><span style="position:absolute;width:1px;height:1px;margin:-1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap">Only screen readers read this sentence, which is far wider than 320 pixels</span></p>
<table><tr><td>Tables&nbsp;may&nbsp;scroll&nbsp;sideways&nbsp;at&nbsp;320&nbsp;pixels&nbsp;without&nbsp;failing</td></tr></table>
</main></body></html>`)
	}))
	t.Cleanup(srv.Close)
	b.visit(t, srv.URL, 200)
	res := b.run(t)
	found := map[string]string{}
	for _, v := range res.Violations {
		found[v.ID] = v.Impact
	}
	for id, impact := range map[string]string{"image-alt": "critical", "color-contrast": "serious"} {
		if found[id] != impact {
			t.Errorf("axe %s on a page that breaks %s: violations %v, want %s with impact %s", res.Version, id, found, id, impact)
		}
	}
	// The long word does not wrap and is reported; the wide table and the
	// sentence for screen readers only are not.
	rf := b.measureReflow(t)
	if !rf.Scrolls || len(rf.Wide) != 1 || !strings.Contains(rf.Wide[0], "p#long text") {
		t.Errorf("reflow on a page with one unbreakable word = %+v, want that word only", rf)
	}
}

// --- prerequisites ------------------------------------------------------

// requireBrowserTests skips with -short, except on CI.
func requireBrowserTests(t *testing.T) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("browser test skipped with -short")
	}
}

// missing skips the test on a developer's machine and fails it on CI,
// where the prerequisites must have been installed (make test does).
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set, so this fails rather than skips)", msg)
	}
	t.Skip(msg)
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium not installed: run bash scripts/ensure-chromium.sh")
	return ""
}

// moduleRoot is the directory holding go.mod, above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// axeSource reads axe.min.js from third_party/axe/node_modules, checking
// that the installed version is the one third_party/axe/package.json pins.
func axeSource(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(moduleRoot(t), "third_party", "axe")
	pkg, err := npmtest.Check(dir, "axe-core")
	switch {
	case errors.Is(err, npmtest.ErrMissing):
		missing(t, "%v: run bash scripts/ensure-axe.sh", err)
	case err != nil:
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(pkg, "axe.min.js"))
	if err != nil {
		missing(t, "axe-core: %v: run bash scripts/ensure-axe.sh", err)
	}
	return string(src)
}

// --- the node -----------------------------------------------------------

// node is a real Varde node serving HTTP on 127.0.0.1, addressed as
// localhost (a WebAuthn RP ID cannot be an IP address).
// elsewhereAndAway gives the person who enrolled last another session
// and a service holding offline access to their data, as logins
// elsewhere and a relying party asking for offline_access would.
func (n *node) elsewhereAndAway(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	st := n.app.Store
	person := n.loggedInElsewhere(t, "elsewhere-")
	now := time.Now()
	if err := st.PutClient(ctx, &store.Client{ID: "pension", Name: "Demo Pension", AuthMethod: store.AuthNone, RefreshTokens: true,
		RedirectURIs: []string{"https://pension.example/cb"}, Source: "test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	scope := []string{"openid", store.ScopeOfflineAccess}
	g := &store.Grant{ID: "away-" + person, ClientID: "pension", PersonID: person, SessionID: "elsewhere-" + person,
		Scope: scope, CreatedAt: now.Add(-time.Hour)}
	rt := &store.Token{Hash: []byte("away-" + person), Kind: store.TokenRefresh, GrantID: g.ID, ClientID: "pension", Scope: scope,
		CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour)}
	if err := st.CreateGrantTokens(ctx, g, nil, rt); err != nil {
		t.Fatal(err)
	}
}

// loggedInElsewhere gives the person who enrolled last another session,
// named prefix and their ID, as if logged in in another browser, and
// returns their ID.
func (n *node) loggedInElsewhere(t *testing.T, prefix string) string {
	t.Helper()
	person := n.lastEnrolled(t)
	now := time.Now()
	// Logged in an hour ago and used a moment ago: live, not idle.
	if err := n.app.Store.CreateSession(context.Background(), &store.Session{ID: prefix + person, PersonID: person, Provider: "passkey", Level: "high",
		AMR: []string{"hwk"}, AuthTime: now.Add(-time.Hour), CreatedAt: now.Add(-time.Hour), LastUsed: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return person
}

// addedEID links a D-number through Demo BankID to the person who
// enrolled last, from the session of theirs the browser holds (the one
// not made up by loggedInElsewhere), as a link of an eID does.
func (n *node) addedEID(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	person := n.lastEnrolled(t)
	live, err := n.app.Store.ListPersonSessions(ctx, person, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	except := ""
	for _, s := range live {
		if !strings.HasPrefix(s.ID, "elsewhere") {
			except = s.ID
		}
	}
	sum := sha256.Sum256([]byte(person))
	value := fmt.Sprintf("41%09d", uint64(sum[0])<<16|uint64(sum[1])<<8|uint64(sum[2]))
	id := store.Identifier{Scheme: "no:dnr", Value: value, MaxLevel: "substantial", LinkedThrough: "bankid", LinkedAt: time.Now().Add(-time.Hour)}
	if _, err := n.app.Store.LinkIdentifiers(ctx, person, []store.Identifier{id}, nil, except, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
}

// lastEnrolled is the person who enrolled last.
func (n *node) lastEnrolled(t *testing.T) string {
	t.Helper()
	evs, err := n.app.Store.ListAudit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var person string
	for _, e := range evs {
		if e.Type == "enrolment" && e.Result == store.ResultSuccess {
			person = e.PersonID
		}
	}
	if person == "" {
		t.Fatal("nobody enrolled")
	}
	return person
}

// longHistory gives the person who enrolled last more logins than the
// account page lists, an hour apart, so that it links to older activity.
func (n *node) longHistory(t *testing.T) {
	t.Helper()
	person := n.lastEnrolled(t)
	start := time.Now().Add(-70 * time.Hour)
	for i := range 70 {
		e := &store.AuditEvent{Type: "authentication", PersonID: person, Provider: "passkey", Level: "high", Result: store.ResultSuccess,
			Time: start.Add(time.Duration(i) * time.Hour), Details: map[string]string{"method": "passkey", store.DetailAddr: fmt.Sprintf("2001:db8::%x", i+1)}}
		if err := n.app.Store.AppendAudit(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

type node struct {
	app    *app.App
	issuer string
	// secrets are the client secrets pendingRequestFor registered, by
	// client: a client is registered once per node, with one secret,
	// since the node answers a client's registration from memory for a
	// moment (its client cache) and would not see a new secret at once.
	secrets map[string]string
}

func startNode(t *testing.T) *node {
	t.Helper()
	return startNodeMounting(t, nil)
}

// startNodeMounting starts a node as startNode does, with the handlers
// mount returns for the node's issuer URL added to its mux.
func startNodeMounting(t *testing.T, mount func(issuer string) func(*http.ServeMux)) *node {
	t.Helper()
	return startNodeWith(t, mount, nil)
}

// startNodeWith starts a node as startNodeMounting does, with its
// configuration changed by tune (if not nil) once loaded.
func startNodeWith(t *testing.T, mount func(issuer string) func(*http.ServeMux), tune func(*config.Config)) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	env := map[string]string{
		"VARDE_ISSUER":    issuer,
		"VARDE_NODE":      "a11y",
		"VARDE_STORE_DSN": filepath.Join(t.TempDir(), "varde.db"),
	}
	cfg, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Passkey.SyntheticEnrolment = true
	// A help desk, so the error pages show it, and it is checked with them.
	cfg.Support = config.Support{URL: "https://help.example.no/", Phone: "+47 800 12 345",
		Hours: map[string]string{"nb": "Hverdager 08–16", "en": "Weekdays 08–16", "da": "Hverdage 08–16"}}
	if tune != nil {
		tune(cfg)
	}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	ctx, cancel := context.WithCancel(context.Background())
	opts := app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t)}
	if mount != nil {
		opts.Mount = mount(issuer)
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = a.Close()
	})
	return &node{app: a, issuer: issuer}
}

func random(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pendingRequest registers a relying party, pushes an authorization
// request for it (RFC 9126) and opens the authorization endpoint with it
// in b, which it sends to the login page; it returns the login request
// ID the login pages are for, which only b can use (ADR 47).
func (n *node) pendingRequest(t *testing.T, b *browser) string {
	t.Helper()
	return n.pendingRequestFor(t, b, "bank", nil)
}

// pendingRequestAt is pendingRequest asking for the level acr.
func (n *node) pendingRequestAt(t *testing.T, b *browser, acr string) string {
	t.Helper()
	return n.pendingRequestWith(t, b, "bank", nil, url.Values{"acr_values": {acr}})
}

// pendingRequestFor is pendingRequest for client id, which accepts only
// the providers named (all when none are).
func (n *node) pendingRequestFor(t *testing.T, b *browser, id string, providers []string) string {
	t.Helper()
	return n.pendingRequestWith(t, b, id, providers, nil)
}

// pendingRequestWith is pendingRequestFor with the request's parameters
// extra added.
func (n *node) pendingRequestWith(t *testing.T, b *browser, id string, providers []string, extra url.Values) string {
	t.Helper()
	ctx := context.Background()
	redirect := "https://bank.example/callback"
	secret, known := n.secrets[id]
	if !known {
		secret = random(t)
		sum := sha256.Sum256([]byte(secret))
		err := n.app.Store.PutClient(ctx, &store.Client{
			ID: id, Name: "Demo Bank", AuthMethod: store.AuthClientSecretBasic, SecretHash: sum[:],
			RedirectURIs: []string{redirect}, RequirePAR: true, Source: "test", CreatedAt: time.Now(), Providers: providers,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n.secrets == nil {
			n.secrets = map[string]string{}
		}
		n.secrets[id] = secret
	}
	verifier := random(t) + random(t)
	challenge := sha256.Sum256([]byte(verifier))
	form := url.Values{
		"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirect}, "scope": {"openid"},
		"state": {random(t)}, "nonce": {random(t)},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	for k, v := range extra {
		form[k] = v
	}
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	preq, _ := http.NewRequestWithContext(ctx, http.MethodPost, n.issuer+"/par", strings.NewReader(form.Encode()))
	preq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	preq.SetBasicAuth(id, secret)
	res, err := hc.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
	}
	err = json.NewDecoder(res.Body).Decode(&par)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || err != nil || par.RequestURI == "" {
		t.Fatalf("par: status %d, %v", res.StatusCode, err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Navigate(n.issuer+"/authorize?"+url.Values{"client_id": {id}, "request_uri": {par.RequestURI}}.Encode())); err != nil {
		t.Fatal(err)
	}
	at, err := chromedp.Run(b.ctx, chromedp.Location())
	loc, perr := url.Parse(at)
	if err != nil || perr != nil || loc.Path != "/login" || loc.Query().Get("req") == "" {
		t.Fatalf("authorize: at %s (%v), want /login?req=…", at, err)
	}
	return loc.Query().Get("req")
}

// --- the browser --------------------------------------------------------

// enrolTestPerson makes a test person named given Nordmann on the
// enrolment page at addr, with the virtual authenticator, and waits
// for the page of their recovery codes.
func (b *browser) enrolTestPerson(t *testing.T, addr, given string) {
	t.Helper()
	button := `.passkey-ceremony[data-ceremony=enrol] [data-role=button]`
	b.visit(t, addr, 200)
	b.do(t, "enrol",
		chromedp.WaitVisible(button),
		chromedp.SendKeys(`#given_name`, given),
		chromedp.SendKeys(`#family_name`, "Nordmann"),
		chromedp.Click(button),
	)
	b.until(t, `location.pathname === "/passkey/enrolled" && document.querySelector("code.codes") !== null`)
}

// auditWarning opens the page's warning before a time limit ends, the
// dialog whose id is id, as timeout.js does, audits the page with it
// open, and closes it.
func (b *browser) auditWarning(t *testing.T, lang, id string) {
	t.Helper()
	b.do(t, "open the warning", chromedp.Evaluate[chromedp.Void](`document.getElementById("`+id+`").showModal()`))
	b.audit(t, lang, `dialog#`+id+`[open] [data-role=keep]`)
	b.do(t, "close the warning", chromedp.Evaluate[chromedp.Void](`document.getElementById("`+id+`").close()`))
}

// browser is one headless Chromium tab with a virtual authenticator and
// axe-core at hand.
type browser struct {
	ctx context.Context
	axe string
	// authenticator is Chromium's virtual authenticator.
	authenticator webauthn.AuthenticatorID
}

func newBrowser(t *testing.T, path, axeSrc string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	// Room for every page in every language, and their warnings, on a
	// loaded machine.
	ctx, cancel := context.WithTimeout(bctx, 6*time.Minute)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	b := &browser{ctx: ctx, axe: axeSrc}
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
		b.authenticator = res.AuthenticatorID
		return err
	}))
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if b.ctx, err = browsertest.Record(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// page returns b for one subtest: its steps give up after pageLimit,
// so that a page that hangs fails its own subtest, saying what the tab
// was doing, and leaves the browser's time to the pages after it.
func (b *browser) page(t *testing.T) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, pageLimit)
	t.Cleanup(func() {
		if t.Failed() && ctx.Err() != nil {
			t.Logf("the tab's last navigation events:\n%s", browsertest.Trace(ctx))
		}
		cancel()
	})
	p := *b
	p.ctx = ctx
	return &p
}

// pageLimit bounds the checks of one page: seconds on a loaded machine,
// well inside the browser's six minutes.
const pageLimit = time.Minute

// forgetPasskeys clears the virtual authenticator's passkeys, so that it
// can make another for the same person (the ceremony excludes the
// passkeys the person holds).
func (b *browser) forgetPasskeys(t *testing.T) {
	t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, webauthn.ClearCredentials, webauthn.ClearCredentialsParams{AuthenticatorID: b.authenticator})
		return err
	}))
	if err != nil {
		t.Fatalf("clear passkeys: %v", err)
	}
}

// scripts switches the pages' scripts on or off (on for every page
// but those that check what a person without script gets).
func (b *browser) scripts(t *testing.T, on bool) {
	t.Helper()
	b.do(t, fmt.Sprintf("scripts on: %v", on), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on})
		return err
	}))
}

// visit opens u and checks the HTTP status of the page.
func (b *browser) visit(t *testing.T, u string, status int) {
	t.Helper()
	res, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(u))
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	if res != nil && int(res.Status) != status {
		t.Errorf("%s: status %d, want %d", u, res.Status, status)
	}
}

// do runs the steps through browsertest.Do, so that a click or typing
// on an element found while its page was still loading reaches it.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := browsertest.Do(b.ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// until waits for the JavaScript condition cond to hold, across page
// loads (an evaluation during a navigation fails and is retried), and
// then for the page to have loaded and been drawn, so that a click that
// follows is not lost on a page still loading. It gives up after 60 s,
// room for a loaded machine.
func (b *browser) until(t *testing.T, cond string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => { try { return !!(`+cond+`); } catch (e) { return false; } })()`))
		if err == nil && ok {
			if err = browsertest.Do(b.ctx, browsertest.Loaded()); err == nil {
				return
			}
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			t.Fatalf("waiting for %s at %s: %v", cond, loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// violation is one failed axe rule on a page.
type violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	HelpURL string   `json:"helpUrl"`
	Targets []string `json:"targets"`
}

type axeResult struct {
	Version    string      `json:"version"`
	Passes     int         `json:"passes"`
	Violations []violation `json:"violations"`
	// Incomplete are rules axe could not decide on its own (for example
	// contrast over a background image); they are logged for review.
	Incomplete []violation `json:"incomplete"`
}

// axeRun runs the WCAG rules on the document and keeps what the report
// needs; %s is the JSON list of tags.
const axeRun = `(async () => {
  const brief = v => ({
    id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map(n => n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)).join(" ")),
  });
  const r = await axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations", "incomplete"]});
  return {
    version: axe.version,
    passes: r.passes.length,
    violations: r.violations.map(brief),
    incomplete: r.incomplete.map(brief),
  };
})()`

// run injects axe-core into the current page, unless it is there, and
// runs the WCAG rules.
func (b *browser) run(t *testing.T) axeResult {
	t.Helper()
	tags, _ := json.Marshal(wcagTags)
	have, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		t.Fatalf("look for axe: %v", err)
	}
	if !have {
		if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](b.axe+"\n;void 0")); err != nil {
			t.Fatalf("inject axe-core: %v", err)
		}
	}
	res, err := chromedp.Run(b.ctx, chromedp.Evaluate[axeResult](fmt.Sprintf(axeRun, tags), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run axe-core: %v", err)
	}
	if res.Passes == 0 {
		t.Fatalf("axe-core %s passed no rule at all: it did not look at the page", res.Version)
	}
	return res
}

// audit checks that the current page is the expected one (ready is
// present and visible, the document's language is lang) and that axe
// finds nothing serious or critical on it.
func (b *browser) audit(t *testing.T, lang, ready string) {
	t.Helper()
	b.do(t, "wait for "+ready, chromedp.WaitVisible(ready))
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement.lang`))
	if err != nil || got != lang {
		t.Errorf("<html lang> = %q (%v), want %q", got, err, lang)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	res := b.run(t)
	for _, v := range res.Violations {
		msg := fmt.Sprintf("%s %s: %s (%s)\n\t\t%s", v.Impact, v.ID, v.Help, v.HelpURL, strings.Join(v.Targets, "\n\t\t"))
		if failing[v.Impact] {
			t.Errorf("axe %s at %s: %s", res.Version, loc, msg)
		} else {
			t.Logf("axe %s at %s (not failing): %s", res.Version, loc, msg)
		}
	}
	for _, v := range res.Incomplete {
		t.Logf("axe %s at %s needs review: %s %s: %s\n\t\t%s", res.Version, loc, v.Impact, v.ID, v.Help, strings.Join(v.Targets, "\n\t\t"))
	}
	t.Logf("axe %s at %s: %d rules passed, %d violations", res.Version, loc, res.Passes, len(res.Violations))
	b.reflow(t, loc)
	if lang == "en" {
		b.partsInEnglish(t)
	}
}

// helpAfter lists what follows the help desk in <main>, other than
// scripts and the page's reference (p.small), or says why it cannot:
// an empty list means the help desk ends the page's content. A page
// without a help desk gives "".
const helpAfter = `(() => {
  const s = document.querySelector("#support");
  if (!s) return "";
  const box = s.closest("[data-role=passkey-support]") || s;
  if (box.parentElement !== document.querySelector("main")) return "the help desk is not directly in main";
  const after = [];
  for (let n = box.nextElementSibling; n; n = n.nextElementSibling) {
    if (n.tagName !== "SCRIPT" && n.tagName !== "NOSCRIPT" && !n.matches("p.small")) after.push(n.outerHTML.slice(0, 80));
  }
  return after.join("\n\t\t");
})()`

// helpLast checks WCAG 3.2.6 (Consistent Help): on every page that
// names the help desk, it comes in the same place, last in the page's
// content, after the actions the page offers.
func (b *browser) helpLast(t *testing.T) {
	t.Helper()
	after, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](helpAfter))
	if err != nil {
		t.Fatalf("find the help desk: %v", err)
	}
	if after != "" {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("WCAG 3.2.6 at %s: the help desk is not last in the content; after it:\n\t\t%s", loc, after)
	}
}

// placeholderContrast lists the placeholders on the current page whose
// text contrast against their field is below 7:1, what varde.css
// promises for all text (axe does not measure placeholders), each with
// its colours and ratio.
const placeholderContrast = `(() => {
  const rgb = c => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const low = [];
  for (const el of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    const ph = getComputedStyle(el, "::placeholder");
    const [r, g, b, a = 1] = rgb(ph.color);
    const opacity = Number(ph.opacity) * a;
    let bgEl = el, bg = getComputedStyle(el).backgroundColor;
    while (bgEl && rgb(bg)[3] === 0) { bgEl = bgEl.parentElement; bg = bgEl ? getComputedStyle(bgEl).backgroundColor : "rgb(255, 255, 255)"; }
    const back = rgb(bg).slice(0, 3);
    const fore = [r, g, b].map((v, i) => v * opacity + back[i] * (1 - opacity));
    const [l1, l2] = [lum(fore), lum(back)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 7) low.push("#" + el.id + " " + ph.color + " (opacity " + ph.opacity + ") on " + bg + ": " + ratio.toFixed(2) + ":1");
  }
  return low;
})()`

// placeholders checks the current page's placeholders with
// placeholderContrast (WCAG 1.4.3, held to the 7:1 of 1.4.6 as all text).
func (b *browser) placeholders(t *testing.T) {
	t.Helper()
	low, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](placeholderContrast))
	if err != nil {
		t.Fatalf("measure placeholders: %v", err)
	}
	if len(low) > 0 {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("placeholder text below 7:1 at %s:\n\t\t%s", loc, strings.Join(low, "\n\t\t"))
	}
}

// ceremonyAlert finds what keeps the error a passkey ceremony shows
// from being announced at once (WCAG 4.1.3, 3.3.1): it must stand in a
// role=alert element outside anything aria-busy (which holds back what
// changes inside it), and the focus must stay in the ceremony rather than
// fall back to the page's body when its button was disabled; progress
// messages are polite and the error is not among them ("" when all holds).
const ceremonyAlert = `(() => {
  const m = document.querySelector(".passkey-ceremony [data-role=message].error");
  if (!m || !m.textContent.trim()) return "no error shown";
  if (!m.closest("[role=alert]")) return "the error is in no role=alert element: " + m.outerHTML.slice(0, 120);
  if (m.closest("[aria-busy=true]")) return "the error is inside an aria-busy element";
  const live = m.closest("[aria-live]");
  if (live && live.getAttribute("aria-live") === "polite") return "the error is in a polite live region";
  const p = document.querySelector(".passkey-ceremony [data-role=progress]");
  if (!p || p.getAttribute("aria-live") !== "polite") return "no polite live region for progress messages";
  if (p.textContent.trim()) return "a progress message is still shown beside the error: " + p.textContent;
  const f = document.activeElement;
  if (!f || f === document.body || !f.closest(".passkey-ceremony")) return "the focus is not in the ceremony but on " + (f ? f.tagName : "nothing");
  return "";
})()`

// ceremonyError checks the error shown by a passkey ceremony with
// ceremonyAlert.
func (b *browser) ceremonyError(t *testing.T) {
	t.Helper()
	problem, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](ceremonyAlert))
	if err != nil {
		t.Fatalf("look at the ceremony's error: %v", err)
	}
	if problem != "" {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		t.Errorf("WCAG 4.1.3 at %s: %s", loc, problem)
	}
}

// asks waits for the page at path that asks to confirm a change, whose
// "Yes" posts to action, and checks it as subtest name: axe, a title
// without the error prefix, the help desk last, and the focus on its
// heading, where a screen reader starts and from which the next Tab
// reaches the page's first choice.
func (b *browser) asks(t *testing.T, lang, name, path, action string) {
	t.Helper()
	yes := `form[action="` + action + `"] button.danger`
	b.until(t, `location.pathname === "`+path+`" && document.querySelector('`+yes+`') !== null`)
	t.Run(name, func(t *testing.T) {
		b.audit(t, lang, yes)
		b.errorTitle(t, lang, false)
		b.helpLast(t)
		b.focusOn(t, "<h1")
		b.focusWalk(t)
		b.spacedText(t)
		b.largeText(t)
	})
}

// focusOn checks that the element with the focus starts as prefix does
// ("<h1"): the one a page moves the focus to when it loads.
func (b *browser) focusOn(t *testing.T, prefix string) {
	t.Helper()
	on, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.outerHTML.slice(0, 80) : ""`))
	if err != nil {
		t.Fatalf("find the focus: %v", err)
	}
	if !strings.HasPrefix(on, prefix) {
		t.Errorf("the focus is on %q, want %s…", on, prefix)
	}
}

// errorPrefix starts the title of a page that shows an error in a form
// or about a choice, in each language ("layout.error").
var errorPrefix = map[string]string{"nb": "Feil: ", "en": "Error: ", "da": "Fejl: "}

// errorTitle checks that the current page's title starts with the error
// prefix when the page shows an error next to a form or choice, and not
// otherwise (WCAG 2.4.2 and 3.3.1: the first thing a screen reader reads
// of the reloaded page says that something needs fixing).
func (b *browser) errorTitle(t *testing.T, lang string, showsError bool) {
	t.Helper()
	title, err := chromedp.Run(b.ctx, chromedp.Title())
	if err != nil {
		t.Fatalf("read title: %v", err)
	}
	if strings.HasPrefix(title, errorPrefix[lang]) != showsError {
		t.Errorf("title %q: starts with %q is %v, want %v", title, errorPrefix[lang], !showsError, showsError)
	}
}

// reflowWidth is the viewport width WCAG 1.4.10 (Reflow) names: 320 CSS
// pixels, the width of 1280 pixels zoomed to 400 %.
const reflowWidth = 320

// overflowing lists the elements that stick out of the viewport to the
// right, outside data tables (which WCAG 1.4.10 exempts: they need two
// dimensions), and says whether the page scrolls sideways.
const overflowing = `(() => {
  const w = document.documentElement.clientWidth;
  const path = e => {
    const parts = [];
    for (; e && e !== document.body; e = e.parentElement) {
      parts.unshift(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.classList.length ? "." + [...e.classList].join(".") : ""));
    }
    return parts.join(" > ");
  };
  const wide = [...document.querySelectorAll("body *")]
    .filter(e => !e.closest("table") && e.getClientRects().length > 0 && e.getBoundingClientRect().right > w + 1)
    .map(e => path(e) + " (right edge " + Math.round(e.getBoundingClientRect().right) + "px)");
  // Text inside a visually hidden box (1 px, clipped: the usual pattern
  // for text only screen readers read) is not laid out for the eye, so
  // it cannot stick out; clipped text anywhere else is still reported,
  // since cutting text off loses content just as scrolling hides it.
  const visuallyHidden = e => {
    for (; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      const clips = s.overflowX === "hidden" || s.overflowX === "clip" || s.clipPath !== "none" || s.clip !== "auto";
      const r = e.getBoundingClientRect();
      if (clips && r.width <= 1 && r.height <= 1) return true;
    }
    return false;
  };
  // Text that runs out of its box: a long word that does not wrap.
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const e = n.parentElement;
    if (!e || e.closest("table") || !n.textContent.trim() || e.getClientRects().length === 0 || visuallyHidden(e)) continue;
    range.selectNodeContents(n);
    const right = range.getBoundingClientRect().right;
    if (right > w + 1) wide.push(path(e) + " text " + JSON.stringify(n.textContent.trim().slice(0, 60)) + " (right edge " + Math.round(right) + "px)");
  }
  // A heading's word split over two lines, which a narrow screen does
  // to a long compound when the heading's type is too large for it.
  const broken = [];
  for (const h of document.querySelectorAll("main h1, main h2, main h3")) {
    if (h.getClientRects().length === 0) continue;
    const hw = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
    for (let n = hw.nextNode(); n; n = hw.nextNode()) {
      for (const m of n.textContent.matchAll(/[^\s\-‐]+/g)) { // a line may end at a hyphen
        range.setStart(n, m.index);
        range.setEnd(n, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (lines.size > 1) broken.push(h.tagName.toLowerCase() + " " + JSON.stringify(m[0]));
      }
    }
  }
  return {scrolls: document.documentElement.scrollWidth > w + 1, width: w, wide: wide, broken: broken};
})()`

// scrollsInPlace checks that at 320 CSS pixels the page as a whole does
// not scroll sideways: a data table too wide for the screen scrolls in a
// region of its own, so the headings, text and buttons around it stay
// put while a person pans across the table, and panning back is never
// needed to read the rest of the page.
func (b *browser) scrollsInPlace(t *testing.T) {
	t.Helper()
	if res := b.measureReflow(t); res.Scrolls {
		t.Errorf("at %d CSS px the whole page scrolls sideways; a wide table should scroll in a region of its own", reflowWidth)
	}
}

// reflowResult is what overflowing finds.
type reflowResult struct {
	Scrolls bool     `json:"scrolls"` // the page scrolls sideways (a wide table may)
	Width   int      `json:"width"`   // the viewport's inner width
	Wide    []string `json:"wide"`    // what sticks out, outside tables
	Broken  []string `json:"broken"`  // heading words split over two lines
}

// measureReflow lays the current page out at reflowWidth and runs
// overflowing, then restores the window size.
func (b *browser) measureReflow(t *testing.T) reflowResult {
	t.Helper()
	var res reflowResult
	err := chromedp.Do(b.ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: reflowWidth, Height: 800, DeviceScaleFactor: 1})
			return err
		}),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			var err error
			res, err = chromedp.Evaluate[reflowResult](overflowing)(ctx, t)
			return err
		}),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
			return err
		}),
		// Wait until the page is laid out at full width again, so that
		// a click that follows lands where the button now is.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			w, err := chromedp.Evaluate[int](fmt.Sprintf(settled, reflowWidth), chromedp.EvalAwaitPromise)(ctx, t)
			if err == nil && w <= reflowWidth {
				err = fmt.Errorf("viewport still %d CSS px wide after restoring its size", w)
			}
			return err
		}),
	)
	if err != nil {
		t.Fatalf("reflow check: %v", err)
	}
	return res
}

// settled resolves, two animation frames after the viewport's width is
// above %d (reflowWidth), or after a second, to that width.
const settled = `new Promise(resolve => {
  const limit = performance.now() + 1000;
  const frame = () => requestAnimationFrame(() => {
    const w = document.documentElement.clientWidth;
    if (w > %d || performance.now() > limit) requestAnimationFrame(() => resolve(document.documentElement.clientWidth));
    else frame();
  });
  frame();
})`

// reflow checks WCAG 1.4.10 at 320 CSS pixels: nothing but a data table
// may need horizontal scrolling. axe cannot check this.
func (b *browser) reflow(t *testing.T, loc string) {
	t.Helper()
	res := b.measureReflow(t)
	if len(res.Wide) > 0 {
		t.Errorf("WCAG 1.4.10 at %s: at %d CSS px (%d wide inside), these stick out to the right:\n\t\t%s", loc, reflowWidth, res.Width, strings.Join(res.Wide, "\n\t\t"))
	}
	if len(res.Broken) > 0 {
		t.Errorf("at %s, at %d CSS px these heading words are split over two lines:\n\t\t%s", loc, reflowWidth, strings.Join(res.Broken, "\n\t\t"))
	}
	t.Logf("reflow at %s: page scrolls sideways: %v", loc, res.Scrolls)
}
