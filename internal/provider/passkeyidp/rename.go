package passkeyidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/store"
)

// A person renames a passkey so as to tell it from the others: a phone,
// a laptop and a security key named "Passkey 22 Nov 2026", "Passkey 22
// Nov 2026 (2)" and "(3)" (defaultName) are hard to tell apart when one
// of them is lost and must be removed. The account
// page links to a page of its own per passkey (GET), whose form (POST)
// makes the change. The rules are removal's: a session whose login may
// change the account (changeForm: CSRF token, a recent login at
// ChangeLevel), the person's own passkey only, no change to a blocked
// person (checked again in the store's write). A rename takes no way in
// away and adds none, so unlike a removal it logs nobody out.
//
// The name follows the rules of one typed when adding a passkey
// (passkeyNameProblem), and may not be another of the person's passkeys'
// (store.SamePasskeyName), which the store checks in the write that
// renames. The event records which passkey was renamed
// (credentialRef), never the names: they are whatever the person typed.

// maxPasskeyName is the longest passkey name, in characters.
const maxPasskeyName = 100

// passkeyName is what a passkey name the person typed is stored as:
// without spaces around it, in Unicode's composed normal form (NFC), so
// that a name typed on one keyboard compares equal to the same name
// typed on another.
func passkeyName(typed string) string {
	return norm.NFC.String(strings.TrimSpace(typed))
}

// passkeyNameProblem names the message saying what is wrong with name,
// a name made by passkeyName, or "" when it is a name a passkey may
// have: one that shows something (store.VisiblePasskeyName: not only
// characters of no width), at most maxPasskeyName characters (not
// bytes), and
// without characters that would not show as themselves on the account
// page (identity.HiddenRune, which a person's name refuses too): control
// characters, line and paragraph separators, and the controls that
// reorder text, with which "Phone" could be made to read as another
// name.
func passkeyNameProblem(name string) string {
	switch {
	case store.VisiblePasskeyName(name) == "":
		return "account.rename.err.empty"
	case !utf8.ValidString(name):
		return "account.rename.err.chars"
	case utf8.RuneCountInString(name) > maxPasskeyName:
		return "account.rename.err.long"
	case strings.ContainsFunc(name, identity.HiddenRune):
		return "account.rename.err.chars"
	}
	return ""
}

type renameData struct {
	Passkey passkeyView
	// Value is the name in the field: the passkey's own, or what the
	// person typed when it was refused.
	Value string
	// Error is the message key saying why the name was refused, "" if
	// none was.
	Error string
	// Draft: Value is what the person typed before they were sent to
	// log in again (renamedraft.go), not yet saved.
	Draft bool
	// Max is the longest name allowed, in characters.
	Max  int
	CSRF string
	// Timeout is what the page says of its time limits (keep.go).
	Timeout *timeoutView
}

// renamePage: GET /account/passkeys/rename?credential=ID shows the form
// that renames the passkey, and changes nothing.
func (p *Provider) renamePage(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.mayView(w, r)
	if !ok {
		return
	}
	key, ok := p.ownPasskey(w, r, person.ID, r.URL.Query().Get("credential"))
	if !ok {
		return
	}
	if typed, ok := p.takeDraft(w, r, person.ID, credentialID(key.Passkey)); ok {
		p.renderRenameData(w, r, s, http.StatusOK, key, renameData{Value: typed, Draft: true})
		return
	}
	p.renderRename(w, r, s, http.StatusOK, key, key.Name, "")
}

// renamePasskey: POST /account/passkeys/rename (form: csrf, credential,
// name) renames the passkey and sends the browser to the account page,
// which says so; a name that cannot be given gets the form again,
// saying why, with what the person typed.
//
// A login no longer recent enough is sent to log in again, with what
// the person typed kept for their return (keepDraft).
func (p *Provider) renamePasskey(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.changeFormOr(w, r, eventPasskeyRenamed, func(person *store.Person) string {
		return p.keepDraft(w, r, person.ID)
	})
	if !ok {
		return
	}
	key, ok := p.ownPasskey(w, r, person.ID, r.PostFormValue("credential"))
	if !ok {
		return
	}
	typed := r.PostFormValue("name")
	name := passkeyName(typed)
	if problem := passkeyNameProblem(name); problem != "" {
		p.renderRename(w, r, s, http.StatusBadRequest, key, typed, problem)
		return
	}
	// The name it has already: nothing to store, nor to record.
	notice := "account.notice.renamed.same"
	if name != key.Name {
		if !p.storeRename(w, r, s, key, name, typed) {
			return
		}
		notice = "account.notice.renamed"
	}
	http.Redirect(w, r, noticeURL("/account", p.putNotice(r.Context(), s, noticeTicket{Notice: notice})), http.StatusSeeOther)
}

// storeRename gives key the name name, with its event, in one write,
// and reports whether it did; when not, it has answered: the form again
// for a name another passkey took meanwhile (holding typed, what the
// person typed), the account page for a passkey removed meanwhile, a
// login for a person blocked or a session ended meanwhile.
func (p *Provider) storeRename(w http.ResponseWriter, r *http.Request, s *store.Session, key *ownedPasskey, name, typed string) bool {
	ctx := r.Context()
	events := p.changeEvents(ctx, &store.AuditEvent{Type: eventPasskeyRenamed, Result: store.ResultSuccess, PersonID: key.PersonID,
		Details: sessionDetails(s, map[string]string{"credential": credentialRef(key.CredentialID)})})
	switch err := p.Passkeys.RenamePasskey(ctx, key.PersonID, key.CredentialID, name, s.ID, events...); {
	case errors.Is(err, store.ErrConflict):
		p.renderRename(w, r, s, http.StatusConflict, key, typed, "account.rename.err.taken")
	case errors.Is(err, store.ErrNotFound) && p.sessionEnded(r):
		// The session ended since changeForm read it: the rename's
		// write reads it too, and changed nothing.
		p.auditChange(ctx, s, eventPasskeyRenamed, reasonSessionEnded, key.PersonID, nil)
		p.toLogin(w, r)
	case errors.Is(err, store.ErrNotFound):
		p.renderAccount(w, r, http.StatusNotFound, "", "account.err.gone")
	case errors.Is(err, store.ErrBlocked):
		p.renameBlocked(ctx, w, r, s, key.PersonID)
	case err != nil:
		p.internalError(w, r, "rename passkey", err)
	default:
		return true
	}
	return false
}

// eventPasskeyRenamed is the audit event of a passkey renamed, or of a
// rename refused.
const eventPasskeyRenamed = "passkey_renamed"

// renameBlocked answers a rename the store refused because the help
// desk blocked the person after their session was read: recorded as a
// refusal, and answered as a session that may not change the account,
// since a block ends every session.
func (p *Provider) renameBlocked(ctx context.Context, w http.ResponseWriter, r *http.Request, s *store.Session, personID string) {
	p.auditChange(ctx, s, eventPasskeyRenamed, "person_blocked", personID, nil)
	p.toLogin(w, r)
}

// ownedPasskey is one of a person's passkeys, all[i], with all of them,
// which the rename and removal pages name it among as the account page
// does (Provider.ownedView).
type ownedPasskey struct {
	*store.Passkey
	all []*store.Passkey
	i   int
}

// ownedAmong is the passkey of keys, a person's, whose credential ID is
// credID; false if they hold none by that ID.
func ownedAmong(keys []*store.Passkey, credID []byte) (*ownedPasskey, bool) {
	i := slices.IndexFunc(keys, func(k *store.Passkey) bool { return bytes.Equal(k.CredentialID, credID) })
	if i < 0 {
		return nil, false
	}
	return &ownedPasskey{Passkey: keys[i], all: keys, i: i}, true
}

// ownPasskey is person's passkey whose credential ID the account page
// sent as param. A param that is no credential ID gets 400; when they
// hold none by that ID (removed meanwhile, or someone else's), it
// answers with the account page saying so, as a removal does, names
// nothing; either way it returns false.
func (p *Provider) ownPasskey(w http.ResponseWriter, r *http.Request, personID, param string) (*ownedPasskey, bool) {
	credID, ok := p.credentialParam(w, r, param)
	if !ok {
		return nil, false
	}
	keys, err := p.Passkeys.ListPasskeys(r.Context(), personID)
	if err != nil {
		p.internalError(w, r, "list passkeys", err)
		return nil, false
	}
	key, ok := ownedAmong(keys, credID)
	if !ok {
		p.renderAccount(w, r, http.StatusNotFound, "", "account.err.gone")
	}
	return key, ok
}

// credentialParam decodes param, a credential ID as the account pages
// send one (base64url), or answers 400 and returns false.
func (p *Provider) credentialParam(w http.ResponseWriter, r *http.Request, param string) ([]byte, bool) {
	credID, err := base64.RawURLEncoding.DecodeString(param)
	if err != nil || len(credID) == 0 {
		p.badRequest(w, r)
		return nil, false
	}
	return credID, true
}

// credentialPage is the page at path for key, as the account page
// links to it.
func credentialPage(path string, key *store.Passkey) string {
	return path + "?" + url.Values{"credential": {credentialID(key)}}.Encode()
}

// credentialID is key's credential ID as the account pages send it.
func credentialID(key *store.Passkey) string {
	return base64.RawURLEncoding.EncodeToString(key.CredentialID)
}

// renderRename shows the form that renames key, holding value, with
// the message errKey names when the name was refused.
func (p *Provider) renderRename(w http.ResponseWriter, r *http.Request, s *store.Session, status int, key *ownedPasskey, value, errKey string) {
	p.renderRenameData(w, r, s, status, key, renameData{Value: value, Error: errKey})
}

// renderRenameData shows the form that renames key, as d says (Value,
// Error, Draft). Its heading names key as the account page, where the
// person chose it, names it ("Laptop (2)" for the second of two named
// alike); the field holds the name as stored, or as typed.
func (p *Provider) renderRenameData(w http.ResponseWriter, r *http.Request, s *store.Session, status int, key *ownedPasskey, d renameData) {
	lang := p.lang(r)
	d.Passkey, d.Max, d.CSRF = p.ownedView(lang, key), maxPasskeyName, p.sessionCSRF(r)
	d.Timeout = p.changeTimeout(r, lang, s, credentialPage(renamePath, key.Passkey))
	p.Pages.Render(w, r, status, "account_rename", lang, d)
}
