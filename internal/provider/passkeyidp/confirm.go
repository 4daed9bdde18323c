package passkeyidp

import (
	"fmt"
	"net/http"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// Removing a passkey and replacing recovery codes the person holds
// delete what is theirs, and cannot be undone: each is asked about
// first, on a page of its own that says what will be lost, that the
// person will be logged out everywhere else, and how they can still log
// in (WCAG 2.2 SC 3.3.4 Error Prevention: an action that deletes
// user-controllable data is reversible, checked or confirmed). The
// account page asks for that page by GET, which changes and records
// nothing; only the form on it, posted with confirm=yes, makes the
// change, through changeForm as before (session, CSRF token, a recent
// login at ChangeLevel). A post without confirm=yes, such as the form of
// an account page from before this step, is answered with the same
// page and changes nothing. New codes for a person who holds none lose
// nothing and are made at once.

// confirmField is the form field, "yes", that says the person was asked
// and confirmed.
const confirmField = "confirm"

// confirmed reports whether the posted form r carries confirm=yes.
func confirmed(r *http.Request) bool { return r.PostFormValue(confirmField) == "yes" }

// removalPage is the page that asks before a way in is removed: a
// passkey (askRemove) or an eID (askUnlink). Both are the one template
// account_confirm_removal, given what differs, in the page's language.
type removalPage struct {
	Title, Intro string
	// Details name what would be removed, a term and its value each.
	Details []removalDetail
	// What says what the removal means, before the page says that the
	// person is logged out everywhere else.
	What string
	// Still are the ways the person can still log in, a line each.
	Still []string
	// Action is where the form posts, Field=Value what it removes.
	Action, Field, Value string
	Yes                  string
	CSRF                 string
	// Timeout is what the page says of its time limits (keep.go).
	Timeout *timeoutView
}

// removalDetail is a term of removalPage.Details and its value: Time if
// not nil, else Text.
type removalDetail struct {
	Term, Text string
	Time       *httpx.Time
}

// stillLines are the lines of removalPage.Still, in lang: the person's
// passkeys, n of them, in the words oneKey (one) or manyKeys (several);
// their unused recovery codes, codes of them; and last, the way in that
// is always left.
func (p *Provider) stillLines(lang string, n int, oneKey, manyKeys string, codes int, last string) []string {
	var lines []string
	for _, c := range []struct {
		n         int
		one, many string
	}{{n, oneKey, manyKeys}, {codes, "account.remove.after.code.one", "account.remove.after.codes"}} {
		switch {
		case c.n == 1:
			lines = append(lines, p.Pages.T(lang, c.one))
		case c.n > 1:
			lines = append(lines, fmt.Sprintf(p.Pages.T(lang, c.many), c.n))
		}
	}
	return append(lines, p.Pages.T(lang, last))
}

// removePasskeyPage asks, in lang, whether to remove passkey key,
// naming it; others and codes are how the person can still log in:
// their other passkeys and their unused recovery codes.
func (p *Provider) removePasskeyPage(lang string, key passkeyView, others, codes int, csrf string, timeout *timeoutView) removalPage {
	t := func(k string) string { return p.Pages.T(lang, k) }
	kind := t("account.passkeys.device")
	if key.Synced {
		kind = t("account.passkeys.synced")
	}
	return removalPage{
		Title: fmt.Sprintf(t("account.remove.title"), key.Name),
		Intro: t("account.remove.intro"),
		Details: []removalDetail{
			{Term: t("account.passkeys.name"), Text: key.Name},
			{Term: t("account.passkeys.created"), Time: &key.Created},
			{Term: t("account.passkeys.used"), Text: t("account.passkeys.never"), Time: key.LastUsed},
			{Term: t("account.passkeys.kind"), Text: kind},
		},
		What:   t("account.remove.what"),
		Still:  p.stillLines(lang, others, "account.remove.after.passkey.one", "account.remove.after.passkeys", codes, "account.remove.after.eid"),
		Action: removePath, Field: "credential", Value: key.ID,
		Yes:  t("account.remove.yes"),
		CSRF: csrf, Timeout: timeout,
	}
}

type newCodesData struct {
	// Codes is how many unused codes the person holds, -1 if unknown.
	Codes int
	// Count is how many new ones they will get.
	Count int
	CSRF  string
	// Timeout is what the page says of its time limits (keep.go).
	Timeout *timeoutView
}

// mayView checks what a page asking about a change needs: a session, its
// person, and a session that may make the change (may). Unlike
// changeForm it records no refusal: a GET changes nothing, and a link
// from anywhere could ask for it.
func (p *Provider) mayView(w http.ResponseWriter, r *http.Request) (*store.Session, *store.Person, bool) {
	s, person, ok := p.pagePerson(w, r)
	if !ok {
		return nil, nil, false
	}
	if add, change := p.may(s); !change {
		p.refuseChange(w, r, add)
		return nil, nil, false
	}
	return s, person, true
}

// refuseChange answers a change the session may not make (may): the
// account page, saying what would let the person make it.
func (p *Provider) refuseChange(w http.ResponseWriter, r *http.Request, mayAdd bool) {
	p.refuseChangeSaying(w, r, mayAdd, "")
}

// refuseChangeSaying is refuseChange saying what errKey names, when it
// is not "", in place of "log in again".
func (p *Provider) refuseChangeSaying(w http.ResponseWriter, r *http.Request, mayAdd bool, errKey string) {
	// A recent login too weak for the change (a recovery code) cannot
	// be helped by logging in the same way again; say what can.
	switch {
	case mayAdd:
		errKey = "account.err.weak"
	case errKey == "":
		errKey = "account.err.reauth"
	}
	p.renderAccount(w, r, http.StatusForbidden, "", errKey)
}

// removeConfirmPage: GET /account/passkeys/remove?credential=ID asks
// whether to remove the passkey, and changes nothing.
func (p *Provider) removeConfirmPage(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.mayView(w, r)
	if !ok {
		return
	}
	credID, ok := p.credentialParam(w, r, r.URL.Query().Get("credential"))
	if !ok {
		return
	}
	p.askRemove(w, r, s, person, credID)
}

// askRemove shows the page that asks whether to remove person's passkey
// credID, or, when it cannot be removed, the account page saying why, as
// the removal itself would: gone already, or the person's last way in
// (the rule DeletePasskey enforces, which still decides).
func (p *Provider) askRemove(w http.ResponseWriter, r *http.Request, s *store.Session, person *store.Person, credID []byte) {
	keys, codes, ok := p.waysIn(w, r, person.ID)
	if !ok {
		return
	}
	key, ok := ownedAmong(keys, credID)
	if !ok {
		p.renderAccount(w, r, http.StatusNotFound, "", "account.err.gone")
		return
	}
	if len(keys) == 1 && codes == 0 {
		p.renderAccount(w, r, http.StatusConflict, "", "account.err.last")
		return
	}
	lang := p.lang(r)
	p.Pages.Render(w, r, http.StatusOK, "account_confirm_removal", lang, p.removePasskeyPage(lang, p.ownedView(lang, key),
		len(keys)-1, codes, p.sessionCSRF(r), p.changeTimeout(r, lang, s, credentialPage(removePath, key.Passkey))))
}

// newCodesConfirmPage: GET /account/recovery-codes/new asks whether to
// replace the person's recovery codes, and changes nothing.
func (p *Provider) newCodesConfirmPage(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.mayView(w, r)
	if !ok {
		return
	}
	held, err := p.RecoveryCodes.CountRecoveryCodes(r.Context(), person.ID)
	if err != nil {
		p.internalError(w, r, "count recovery codes", err)
		return
	}
	p.askNewCodes(w, r, s, held)
}

// askNewCodes shows the page that asks whether to replace the held
// recovery codes (-1: unknown).
func (p *Provider) askNewCodes(w http.ResponseWriter, r *http.Request, s *store.Session, held int) {
	lang := p.lang(r)
	p.Pages.Render(w, r, http.StatusOK, "account_newcodes", lang, newCodesData{
		Codes: held, Count: RecoveryCodeCount, CSRF: p.sessionCSRF(r), Timeout: p.changeTimeout(r, lang, s, newCodesPath),
	})
}
