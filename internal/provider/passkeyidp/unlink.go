package passkeyidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// The account page lists the eIDs linked to the person (ADR 57): each
// identifier a link added (store.Identifier.Linked), named by the eID
// it was linked through, in the page's language, and when, never by
// the number. A person unlinks one on a page of its own that says what
// it means, as removing a passkey does (confirm.go): GET
// /account/eids/unlink?eid=REF asks and changes nothing; its form
// (POST, confirm=yes) unlinks, under removal's rules (changeForm: the
// session's CSRF token, a recent login at ChangeLevel).
//
// Only an identifier a link added can be unlinked. One the person was
// proofed with, or the help desk added, is how Varde knows them: every
// eID that proves it finds them by it, so "unlinking" such an eID would
// last until its next login, or, if the number were taken off, make
// that login a new person with new identifiers at every service. The
// page says so; a number that is not theirs is the help desk's to take
// off (varde persons remove-number, ADR 44).
//
// The identifier is taken off in one write (store.Persons.UnlinkIdentifier)
// that reads the session making it, ends every other session of the
// person and stores the link_removed event, with sessions_ended after
// it when any ended: the same as removing a passkey, and for the same
// reason (ADR 46). A person is never left without a number, so never
// without a way in: an eID that proves the number they keep.

const (
	// eventLinkRemoved is the audit event of an eID unlinked by the
	// person.
	eventLinkRemoved = "link_removed"
	// eidRefLabel binds an eID's reference to what it is.
	eidRefLabel = "varde/passkeyidp/linked-eid/v1/"
	// eidParam is the form and query field of an eID's reference.
	eidParam = "eid"
	// unlinkPath is where a person unlinks an eID.
	unlinkPath = "/account/eids/unlink"
)

// linkedView is a linked eID as the account pages show it.
type linkedView struct {
	// Ref names it in forms and links, never the number (eidRef).
	Ref string
	// Name is the eID it was linked through, in the page's language;
	// words for an eID when it was linked before that was recorded.
	Name string
	// Kind names the kind of number, as the account page's list of
	// numbers does.
	Kind string
	// Linked is when, nil when not recorded.
	Linked *httpx.Time
	// Used is the day a login last found the person by it, as recorded
	// to within an hour (the broker's identifierUseEvery); nil when none
	// was recorded.
	Used *httpx.Time
}

// unlinkPage asks, in lang, whether to unlink eID v, naming it;
// passkeys and codes are how the person can still log in besides an
// eID that proves a number they keep.
func (p *Provider) unlinkPage(lang string, v linkedView, passkeys, codes int, csrf string, timeout *timeoutView) removalPage {
	t := func(k string) string { return p.Pages.T(lang, k) }
	return removalPage{
		Title: fmt.Sprintf(t("account.unlink.title"), v.Name),
		Intro: fmt.Sprintf(t("account.unlink.intro"), v.Name),
		Details: []removalDetail{
			{Term: t("account.eids.eid"), Text: v.Name},
			{Term: t("account.eids.kind"), Text: v.Kind},
			{Term: t("account.eids.linked"), Text: t("account.eids.linked.unknown"), Time: v.Linked},
			{Term: t("account.eids.used"), Text: t("account.eids.used.none"), Time: v.Used},
		},
		What:   t("account.unlink.later"),
		Still:  p.stillLines(lang, passkeys, "account.unlink.after.passkey.one", "account.unlink.after.passkeys", codes, "account.unlink.after.own"),
		Action: unlinkPath, Field: eidParam, Value: v.Ref,
		Yes:  t("account.unlink.yes"),
		CSRF: csrf, Timeout: timeout,
	}
}

// eidRef is the reference of personID's identifier id on the account
// pages: an HMAC under CursorKey, with a label of its own, so that a
// link or a form names the eID without the number, and no reference can be turned
// back into a number by trying every birth number of a day. It is the
// same on every node, and means nothing for another person.
func (p *Provider) eidRef(personID string, id store.Identifier) (string, error) {
	if len(p.CursorKey) < MinCursorKeySize {
		return "", fmt.Errorf("linked eID key: %d bytes, want at least %d", len(p.CursorKey), MinCursorKeySize)
	}
	m := hmac.New(sha256.New, p.CursorKey)
	m.Write([]byte(eidRefLabel + personID + "\x00" + id.Scheme + "\x00" + id.Value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]), nil
}

// linkedEIDs lists person's linked eIDs in lang, in the order they
// were linked.
func (p *Provider) linkedEIDs(person *store.Person, lang string) ([]linkedView, error) {
	var out []linkedView
	for _, id := range person.Identifiers {
		if !id.Linked() {
			continue
		}
		v, err := p.linkedView(person.ID, id, lang)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *Provider) linkedView(personID string, id store.Identifier, lang string) (linkedView, error) {
	ref, err := p.eidRef(personID, id)
	if err != nil {
		return linkedView{}, err
	}
	v := linkedView{Ref: ref, Kind: p.schemeLabel(lang, id.Scheme), Name: p.Pages.T(lang, "account.eids.unknown")}
	if id.LinkedThrough != "" {
		v.Name = p.providerName(id.LinkedThrough, lang)
	}
	if !id.LinkedAt.IsZero() {
		at := p.Pages.Time(lang, id.LinkedAt)
		v.Linked = &at
	}
	if !id.LastUsedAt.IsZero() {
		day := id.LastUsedAt.In(p.Pages.Location())
		v.Used = &httpx.Time{ISO: day.Format(time.DateOnly), Text: httpx.FormatDate(lang, day)}
	}
	return v, nil
}

// linkedByRef is person's linked identifier that ref names; false if
// none does (unlinked already, or a reference of another person's).
func (p *Provider) linkedByRef(person *store.Person, ref string) (store.Identifier, bool, error) {
	for _, id := range person.Identifiers {
		if !id.Linked() {
			continue
		}
		want, err := p.eidRef(person.ID, id)
		if err != nil {
			return store.Identifier{}, false, err
		}
		if hmac.Equal([]byte(want), []byte(ref)) {
			return id, true, nil
		}
	}
	return store.Identifier{}, false, nil
}

// heldLinked is person's linked identifier that ref names; when there
// is none it answers with the account page saying so (most often one
// unlinked a moment ago, by a second click or in another tab) and
// returns false.
func (p *Provider) heldLinked(w http.ResponseWriter, r *http.Request, person *store.Person, ref string) (store.Identifier, bool) {
	id, ok, err := p.linkedByRef(person, ref)
	if err != nil {
		p.internalError(w, r, "linked eID", err)
		return id, false
	}
	if !ok {
		p.renderAccount(w, r, http.StatusNotFound, "", "account.err.eid.gone")
	}
	return id, ok
}

// unlinkConfirmPage: GET /account/eids/unlink?eid=REF asks whether to
// unlink the eID, and changes nothing.
func (p *Provider) unlinkConfirmPage(w http.ResponseWriter, r *http.Request) {
	s, person, ok := p.mayView(w, r)
	if !ok {
		return
	}
	p.askUnlink(w, r, s, person, r.URL.Query().Get(eidParam))
}

// askUnlink shows the page that asks whether to unlink person's eID
// ref, or, when it cannot be unlinked, the account page saying why, as
// the unlink itself would: gone already, or the person's last number
// (the rule UnlinkIdentifier enforces, which still decides).
func (p *Provider) askUnlink(w http.ResponseWriter, r *http.Request, s *store.Session, person *store.Person, ref string) {
	id, ok := p.heldLinked(w, r, person, ref)
	if !ok {
		return
	}
	if len(person.Identifiers) == 1 {
		p.renderAccount(w, r, http.StatusConflict, "", "account.err.eid.last")
		return
	}
	keys, codes, ok := p.waysIn(w, r, person.ID)
	if !ok {
		return
	}
	lang := p.lang(r)
	v, err := p.linkedView(person.ID, id, lang)
	if err != nil {
		p.internalError(w, r, "linked eID", err)
		return
	}
	p.Pages.Render(w, r, http.StatusOK, "account_confirm_removal", lang, p.unlinkPage(lang, v, len(keys), codes, p.sessionCSRF(r),
		p.changeTimeout(r, lang, s, unlinkPath+"?"+url.Values{eidParam: {ref}}.Encode())))
}

// unlinkEID: POST /account/eids/unlink (form: csrf, eid, confirm=yes).
// Without confirm=yes it asks first (askUnlink) and unlinks nothing.
func (p *Provider) unlinkEID(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.changeForm(w, r, eventLinkRemoved)
	if !ok {
		return
	}
	ref := r.PostFormValue(eidParam)
	if !confirmed(r) {
		p.askUnlink(w, r, s, person, ref)
		return
	}
	id, ok := p.heldLinked(w, r, person, ref)
	if !ok {
		return
	}
	// The event names the eID it was linked through and the kind of
	// number, never the number.
	p.removeWayIn(w, r, s, person.ID, wayInRemoval{
		event:   eventLinkRemoved,
		details: map[string]string{"provider": id.LinkedThrough, "scheme": id.Scheme, "max_level": id.MaxLevel},
		refused: refusedDetails(id), lastReason: "last_number", gone: "account.err.eid.gone", last: "account.err.eid.last",
		notice: "account.notice.unlinked", what: "unlink eID",
	}, func(now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
		return p.Persons.UnlinkIdentifier(ctx, person.ID, store.Identifier{Scheme: id.Scheme, Value: id.Value}, s.ID, now, events)
	})
}

// refusedDetails are the details of a refused unlink of id: the eID and
// the kind of number, as the event of one made.
func refusedDetails(id store.Identifier) map[string]string {
	return map[string]string{"provider": id.LinkedThrough, "scheme": id.Scheme}
}
