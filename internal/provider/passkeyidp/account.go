package passkeyidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// The account pages let a logged-in person see and manage their
// passkeys and recovery codes. They need a session (from any provider);
// without one the person is sent through a passkey login for the
// account (attempt "").
//
// Changing the ways in takes more than a session. Adding a passkey takes
// a recent login (ReauthAfter); removing one or replacing the recovery
// codes a recent login at ChangeLevel or higher. Otherwise a session
// left open on a shared computer, or one recovery code in the wrong
// hands, could take the account over. Every change made at ChangeLevel
// or higher logs the person out everywhere else, an added passkey too,
// as a linked eID does; a passkey added from a lower login (a recovery
// code) does not, so that a recovery code in the wrong hands cannot log
// the owner out.
// A passkey is trusted at most at the level of the login that added it
// (store.Passkey.MaxLevel): a person who lost their passkey can log in
// with a recovery code and add a new one, as they must be able to, but
// that one logs in no higher than the recovery code did, until they log
// in at a higher level (an eID, a passkey from before) and add one there.
const (
	ReauthAfter = session.ReauthAfter
	ChangeLevel = assurance.Substantial
)

// may says what session s may change on the account page: add a
// passkey, and remove passkeys or replace recovery codes. A session
// whose level is empty or unknown may do neither: an added passkey is
// capped at the session's level, and without one it would be stored
// uncapped.
func (p *Provider) may(s *store.Session) (add, change bool) {
	fresh := session.Recent(s, p.now(), ReauthAfter)
	l, err := assurance.Parse(s.Level)
	if err != nil {
		return false, false
	}
	return fresh, fresh && l >= ChangeLevel
}

type identifierView struct {
	Label, Value string
}

type passkeyView struct {
	ID       string // base64url credential ID, for the remove form
	Name     string
	Created  httpx.Time
	LastUsed *httpx.Time // nil if never used
	Synced   bool
}

type accountData struct {
	Name        string
	Identifiers []identifierView
	Synthetic   bool
	// Recovered: the session came from a recovery code.
	Recovered   bool
	Passkeys    []passkeyView
	Codes       int
	CSRF        string
	Notice      string // message key
	Error       string // message key
	DefaultName string
	// Linked are the eIDs linked to the person (unlink.go), which they
	// may unlink when CanChange; ShowLinked is set where linking is
	// offered at all, or some are linked, for the section that lists
	// them.
	Linked     []linkedView
	ShowLinked bool
	// Links are the other ways to log in the person can link, posted to
	// the broker's /account/link with LinkCSRF.
	Links    []linkView
	LinkCSRF string
	// CanAdd and CanChange are what the session may do (may); when it may
	// not, Reauth is the message key saying why and ReauthURL where to
	// log in again.
	CanAdd, CanChange bool
	// Full is true when the person holds MaxPasskeys passkeys: the page
	// says so instead of offering to add one that would be refused.
	Full bool
	// Invite is true when the person logged in with an eID, holds no
	// passkey and may add one: the page says, beside the button, what a
	// passkey gives them (invites).
	Invite    bool
	Reauth    string
	ReauthURL string
	// Activity is what happened lately with the person's identity,
	// newest first; ShowActivity is false when there is no history to
	// read.
	Activity     activityLines
	ShowActivity bool
	// AddrDays is how many days an address in the activity is kept
	// (addrDays), 0 when not known.
	AddrDays int
	// OlderActivity is the page of the activity older than Activity
	// (history.go), "" when there is none.
	OlderActivity string
	// LinkWhyNot, when no eID can be linked now, names the message
	// saying why and what the person can do; "" when linking is off.
	LinkWhyNot string
	// LinkLevel names, in the page's language, the least level both
	// logins of a link must reach (broker.LinkLevel).
	LinkLevel string
	// ReauthMinutes is how recent a login must be to change the ways
	// in (ReauthAfter), in minutes, for the texts that say so.
	ReauthMinutes int
	// Elsewhere is the person's other live sessions (elsewhere.go);
	// Away the services that can reach their data while they are away,
	// listed when ShowAway.
	Elsewhere []elsewhereView
	Away      []awayView
	ShowAway  bool
	// Timeout is what the page says of the session's time limits (keep.go).
	Timeout *timeoutView
}

// linker is the broker's ability to link other providers to the person,
// found on Finisher by type assertion.
type linker interface {
	LinkOptions(r *http.Request) (providers []provider.Info, csrf string)
	// LinkLevel is the least level both the session and the login that
	// proves the new eID must reach.
	LinkLevel() assurance.Level
}

// linkExplainer says why a linker offers nothing ("reauth", "level",
// "down"), so the account page can say what the person can do.
type linkExplainer interface {
	LinkWhyNot(r *http.Request) string
}

type linkView struct {
	ID, Name string
}

// accountNotices maps ?done= to the notice shown after the broker
// linked another way to log in.
var accountNotices = map[string]string{
	"linked":        "account.notice.linked",
	"alreadylinked": "account.notice.alreadylinked",
	"raised":        "account.notice.raised",
}

// endedNotices maps ?done= to the notice shown when the link also
// logged the person out everywhere else.
var endedNotices = map[string]string{
	"linked": "account.notice.linked.ended",
	"raised": "account.notice.raised.ended",
}

// noticeTicket carries the notice of a change made on this provider's
// own account page (a passkey added or removed, new recovery codes) to
// the page the browser is sent to next. It is a ticket bound to the
// session that made the change, not a query value, so a link made by
// anyone else cannot make the page say a passkey was added or that the
// person was logged out everywhere else. A session holds one, the
// newest (putSlotTicket).
type noticeTicket struct {
	Notice string `json:"notice"`
	Ended  bool   `json:"ended,omitempty"`
	// FirstCodes: the person held no unused recovery codes before the
	// new ones, so the page that shows those speaks of no old ones.
	FirstCodes bool `json:"first_codes,omitempty"`
}

// noticeLifetime bounds how long after a change its notice can be shown.
const noticeLifetime = 2 * time.Minute

// putNotice stores the notice of a change by session s and returns the
// token that shows it, or "" when it could not be stored: the change is
// made all the same, only not announced.
func (p *Provider) putNotice(ctx context.Context, s *store.Session, n noticeTicket) string {
	t, err := p.putSlotTicket(ctx, "notice", s.ID, n, noticeLifetime)
	if err != nil {
		p.log().ErrorContext(ctx, "account notice", "err", err)
		return ""
	}
	return t
}

// linkNotice is the notice for ?done= after the broker linked another
// way to log in, said only when the newest link in the audit trail made
// in this session (the event's Details["session"]), from the last
// noticeLifetime, is the one done names: a link made by anyone else,
// even in another session of the same person, cannot make the page say
// an eID was linked or that the person was logged out everywhere else. Whether other sessions were
// ended comes from the link's event too, never from the query.
func (p *Provider) linkNotice(r *http.Request, done string) string {
	if accountNotices[done] == "" || p.History == nil {
		return ""
	}
	s, err := p.Sessions.Current(r)
	if err != nil {
		return ""
	}
	evs, err := p.History.ListPersonAudit(r.Context(), s.PersonID, activityLimit)
	if err != nil {
		p.log().ErrorContext(r.Context(), "account notice", "err", err)
		return ""
	}
	ref := s.ID[:min(12, len(s.ID))]
	for _, e := range evs {
		if e.Type != "link" || e.Result != store.ResultSuccess || ref == "" || e.Details["session"] != ref {
			continue
		}
		if e.Time.Before(p.now().Add(-noticeLifetime)) {
			return ""
		}
		kind := "linked"
		switch {
		case e.Details["raised_from"] != "":
			kind = "raised"
		case e.Details["already"] != "":
			kind = "alreadylinked"
		}
		if kind != done {
			return ""
		}
		if n, _ := strconv.Atoi(e.Details["sessions_ended"]); n > 0 && endedNotices[done] != "" {
			// The link logged the person out everywhere else: the notice
			// says so, so that it does not come as a surprise on their
			// other devices.
			return endedNotices[done]
		}
		return accountNotices[done]
	}
	return ""
}

// takeNotice takes the notice ticket r names for its session, if any.
func (p *Provider) takeNotice(r *http.Request) noticeTicket {
	var n noticeTicket
	tok := r.URL.Query().Get("n")
	if tok == "" {
		return n
	}
	s, err := p.Sessions.Current(r)
	if err != nil {
		return n
	}
	if err := p.takeSlotTicket(r.Context(), "notice", s.ID, tok, &n, noticeLifetime); err != nil {
		if !errors.Is(err, errNoTicket) {
			p.log().ErrorContext(r.Context(), "account notice", "err", err)
		}
		return noticeTicket{}
	}
	return n
}

// toLogin sends a person without a session to log in for the account.
func (p *Provider) toLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, reauthURL, http.StatusSeeOther)
}

// reauthURL is where a person logs in (again) for the account: the
// broker's login page, which offers every way in, not only passkeys, so
// a person who has only an eID can get back in.
const reauthURL = "/login"

func (p *Provider) accountPage(w http.ResponseWriter, r *http.Request) {
	notice := p.linkNotice(r, r.URL.Query().Get("done"))
	if n := p.takeNotice(r); n.Notice != "" {
		notice = n.Notice
	}
	p.renderAccount(w, r, http.StatusOK, notice, "")
}

func (p *Provider) renderAccount(w http.ResponseWriter, r *http.Request, status int, notice, errKey string) {
	s, person, ok := p.pagePerson(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	keys, codes, ok := p.waysIn(w, r, person.ID)
	if !ok {
		return
	}
	lang := p.lang(r)
	d := accountData{
		Name:      strings.TrimSpace(person.GivenName + " " + person.FamilyName),
		Synthetic: person.Synthetic,
		// A recovery code is this provider's only "otp"; an eID's one-time
		// code is not one.
		Recovered: s.Provider == ID && slices.Contains(s.AMR, "otp"),
		Codes:     codes, CSRF: p.sessionCSRF(r), Notice: notice, Error: errKey,
		DefaultName: p.defaultName(r, keys), ReauthMinutes: int(ReauthAfter / time.Minute),
		Timeout: p.timeout(r, lang, s, "/account"),
	}
	d.CanAdd, d.CanChange = p.may(s)
	d.Full = len(keys) >= MaxPasskeys
	d.Invite = invites(s, keys, d.CanAdd)
	switch {
	case !d.CanAdd:
		d.Reauth = "account.reauth.stale"
	case !d.CanChange:
		d.Reauth = "account.reauth.weak"
	}
	if d.Reauth != "" {
		d.ReauthURL = reauthURL
	}
	if l, ok := p.Finisher.(linker); ok {
		infos, token := l.LinkOptions(r)
		for _, info := range infos {
			name := info.Name[lang]
			if name == "" {
				name = info.Name["en"]
			}
			d.Links = append(d.Links, linkView{ID: info.ID, Name: name})
		}
		d.LinkCSRF = token
		d.LinkLevel = p.Pages.T(lang, "account.level."+l.LinkLevel().String())
		if e, ok := l.(linkExplainer); ok && len(d.Links) == 0 {
			switch e.LinkWhyNot(r) {
			case "reauth":
				d.LinkWhyNot = "account.link.why.reauth"
			case "level":
				d.LinkWhyNot = "account.link.why.level"
				if !anyReaches(person, keys, l.LinkLevel()) {
					// Logging in again with a passkey would not help.
					d.LinkWhyNot = "account.link.why.level.eid"
				}
			case "down":
				d.LinkWhyNot = "account.link.why.down"
			case "no-other":
				d.LinkWhyNot = "account.link.why.noother"
			}
		}
	}
	for _, id := range person.Identifiers {
		d.Identifiers = append(d.Identifiers, identifierView{Label: p.schemeLabel(lang, id.Scheme), Value: identity.Mask(id)})
	}
	linked, err := p.linkedEIDs(person, lang)
	if err != nil {
		p.internalError(w, r, "linked eIDs", err)
		return
	}
	_, linking := p.Finisher.(linker)
	d.Linked, d.ShowLinked = linked, linking || len(linked) > 0
	d.Passkeys = p.passkeyViews(lang, keys)
	activity, older, err := p.activity(ctx, person.ID, lang)
	if err != nil {
		p.internalError(w, r, "account activity", err)
		return
	}
	d.Activity = activity
	if older != 0 {
		if d.OlderActivity, err = p.historyURL(person.ID, cursor{before: older}); err != nil {
			p.internalError(w, r, "account activity", err)
			return
		}
	}
	d.ShowActivity, d.AddrDays = p.History != nil, p.addrDays()
	if err := p.elsewhere(ctx, s, lang, &d); err != nil {
		p.internalError(w, r, "account sessions and services", err)
		return
	}
	p.Pages.Render(w, r, status, "account", lang, d)
}

// invites reports whether the account page tells the person of session
// s what adding a passkey gives them: a way in that needs no eID, that
// is quicker and that still works while the eID is down. Only a person
// who logged in with an eID and holds no passkey has that to gain, and
// only where the page offers to add one (canAdd); a login with a
// recovery code is this provider's own, and its page says what to do
// next already (account.recovered).
func invites(s *store.Session, keys []*store.Passkey, canAdd bool) bool {
	return canAdd && len(keys) == 0 && s.Provider != "" && s.Provider != ID
}

// waysIn reads the person's passkeys and how many unused recovery
// codes they hold, for the pages that say how they can log in; when
// either cannot be read it answers with the error page and returns
// false.
func (p *Provider) waysIn(w http.ResponseWriter, r *http.Request, personID string) ([]*store.Passkey, int, bool) {
	keys, err := p.Passkeys.ListPasskeys(r.Context(), personID)
	if err != nil {
		p.internalError(w, r, "list passkeys", err)
		return nil, 0, false
	}
	codes, err := p.RecoveryCodes.CountRecoveryCodes(r.Context(), personID)
	if err != nil {
		p.internalError(w, r, "count recovery codes", err)
		return nil, 0, false
	}
	return keys, codes, true
}

// passkeyView is how the account pages show k in lang.
func (p *Provider) passkeyView(lang string, k *store.Passkey) passkeyView {
	v := passkeyView{ID: base64.RawURLEncoding.EncodeToString(k.CredentialID), Name: k.Name,
		Created: p.Pages.Time(lang, k.CreatedAt), Synced: k.BackupEligible}
	if !k.LastUsedAt.IsZero() {
		used := p.Pages.Time(lang, k.LastUsedAt)
		v.LastUsed = &used
	}
	if v.Name == "" {
		v.Name = p.Pages.T(lang, "account.passkey.unnamed")
	}
	return v
}

// passkeyViews is how the account page lists keys in lang: each under
// a name none of the others reads as, so that the person, and the
// accessible names of its buttons, can tell them apart. Passkeys that
// share a name (typed alike when added, or stored before default names
// were numbered) keep it for the first and are numbered for the others
// as default names are (nameApart); the number is only shown, and a
// rename starts from the name as stored.
func (p *Provider) passkeyViews(lang string, keys []*store.Passkey) []passkeyView {
	views := make([]passkeyView, 0, len(keys))
	shown := make([]string, 0, len(keys))
	for _, k := range keys {
		shown = append(shown, p.passkeyView(lang, k).Name)
	}
	for i, k := range keys {
		v := p.passkeyView(lang, k)
		others := slices.Concat(shown[:i], shown[i+1:])
		if slices.ContainsFunc(shown[:i], func(s string) bool { return store.SamePasskeyName(s, v.Name) }) {
			v.Name = nameApart(v.Name, others)
			shown[i] = v.Name
		}
		views = append(views, v)
	}
	return views
}

// ownedView is key as the account page lists it among the person's
// passkeys (passkeyViews), where the person chose it: numbered when an
// earlier one reads alike ("Laptop (2)").
func (p *Provider) ownedView(lang string, key *ownedPasskey) passkeyView {
	return p.passkeyViews(lang, key.all)[key.i]
}

// anyReaches reports whether a login with one of keys, person's
// passkeys, can reach want: a passkey added after a lower login (a
// recovery code) is capped at that login's level (passkeyResult).
func anyReaches(person *store.Person, keys []*store.Passkey, want assurance.Level) bool {
	return slices.ContainsFunc(keys, func(k *store.Passkey) bool {
		return passkeyResult(person, true, k.BackupEligible, k.MaxLevel, time.Time{}).Level >= want
	})
}

// schemeLabel names an identifier scheme in lang.
func (p *Provider) schemeLabel(lang, scheme string) string {
	if state, ok := strings.CutPrefix(scheme, identity.SchemePassportPrefix); ok {
		return fmt.Sprintf(p.Pages.T(lang, "identity.scheme.passport"), state)
	}
	key := "identity.scheme." + scheme
	if s := p.Pages.T(lang, key); s != key {
		return s
	}
	return scheme
}

// credentialRef is a short, stable reference to a credential for audit
// events.
func credentialRef(id []byte) string {
	h := sha256.Sum256(id)
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// accountJSON checks what every account JSON endpoint needs: a JSON
// body, a session, and the CSRF token in a header.
func (p *Provider) accountJSON(w http.ResponseWriter, r *http.Request) (*store.Session, *store.Person, bool) {
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return nil, nil, false
	}
	s, person, err := p.personOf(r)
	if errors.Is(err, errNoSession) {
		p.jsonError(w, r, http.StatusUnauthorized, "session")
		return nil, nil, false
	}
	if err != nil {
		p.log().ErrorContext(r.Context(), "account person", "err", err)
		p.jsonError(w, r, http.StatusInternalServerError, "internal")
		return nil, nil, false
	}
	if !p.checkSessionCSRF(r, r.Header.Get(csrfHeader)) {
		p.jsonError(w, r, http.StatusForbidden, "csrf")
		return nil, nil, false
	}
	return s, person, true
}

type addRequest struct {
	Name string `json:"name"`
}

// addBegin: POST /account/passkeys/begin {"name": "…"} (header
// X-CSRF-Token) → {"ceremony", "options"}.
func (p *Provider) addBegin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.accountJSON(w, r)
	if !ok {
		return
	}
	// Checked when the ceremony begins, which is bound to this session
	// and short-lived; the passkey gets the session's level as its cap.
	if add, _ := p.may(s); !add {
		p.auditChange(ctx, s, "passkey_added", "reauth", person.ID, nil)
		p.jsonError(w, r, http.StatusForbidden, "reauth")
		return
	}
	var req addRequest
	if err := decodeJSON(r, &req); err != nil {
		p.jsonError(w, r, http.StatusBadRequest, "bad_request")
		return
	}
	existing, err := p.Passkeys.ListPasskeys(ctx, person.ID)
	if err != nil {
		p.log().ErrorContext(ctx, "list passkeys", "err", err)
		p.jsonError(w, r, http.StatusInternalServerError, "internal")
		return
	}
	// The rules of a rename (rename.go), but that an empty name gets
	// the default, apart from the person's other passkeys'.
	name := passkeyName(req.Name)
	if name == "" {
		name = p.defaultName(r, existing)
	}
	if passkeyNameProblem(name) != "" {
		p.jsonError(w, r, http.StatusBadRequest, "passkey_name")
		return
	}
	// Checked when the ceremony begins, so that nobody makes a passkey
	// that cannot be stored, and again in the write that stores it, so
	// that ceremonies begun at once cannot together pass the cap.
	if len(existing) >= MaxPasskeys {
		p.auditChange(ctx, s, "passkey_added", "passkey_limit", person.ID, nil)
		p.jsonError(w, r, http.StatusConflict, "passkey_limit")
		return
	}
	id, opts, err := p.WebAuthn.BeginRegistration(ctx, passkey.RegistrationRequest{
		Person: person, Exclude: existing, Name: name, Binding: s.ID, AddedBy: s.ID, MaxLevel: s.Level, Max: MaxPasskeys,
	})
	if err != nil {
		p.beginFailed(w, r, "begin add passkey", err)
		return
	}
	writeJSON(w, http.StatusOK, ceremonyReply{Ceremony: id, Options: opts})
}

// addFinish: POST /account/passkeys/finish?ceremony=… with the credential
// JSON (header X-CSRF-Token) → {"redirect": "/account?done=added"}. The
// ceremony is bound to the session that began it.
func (p *Provider) addFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.accountJSON(w, r)
	if !ok {
		return
	}
	// The passkey and its event are stored in one write: the person's
	// activity shows every passkey added.
	added := func(pk *store.Passkey) []*store.AuditEvent {
		return p.changeEvents(ctx, &store.AuditEvent{Type: "passkey_added", Result: store.ResultSuccess, PersonID: person.ID, Level: pk.MaxLevel,
			Details: sessionDetails(s, map[string]string{"credential": credentialRef(pk.CredentialID), "max_level": pk.MaxLevel})})
	}
	// A new way in, added at ChangeLevel or higher, logs the person out
	// everywhere else, as a linked eID does (ADR 9), in the passkey's
	// write: the passkey stands only with the other sessions ended. One
	// added at a lower level, after a recovery-code login, does not: a
	// recovery code in the wrong hands must not log the owner out. It
	// is the login's level that decides, the passkey's cap, not whether
	// the login is still recent: that was checked when the add began,
	// and one finished a moment after is stored at the same level.
	n := noticeTicket{Notice: "account.notice.added"}
	ceremony, body := r.URL.Query().Get("ceremony"), readResponse(r)
	var (
		reg *passkey.Registration
		err error
	)
	if l, perr := assurance.Parse(s.Level); perr == nil && l >= ChangeLevel {
		var made []*store.AuditEvent
		end := &passkey.EndOthers{Except: s.ID, Events: func(pk *store.Passkey, k int) []*store.AuditEvent {
			if made == nil {
				made = added(pk)
			}
			if k == 0 || p.Audit == nil {
				return made
			}
			return append(slices.Clone(made), p.endedEvent(r, s, k))
		}}
		var ended int
		ended, err = p.Sessions.EndOthersBy(ctx, func(now time.Time) ([]*store.Session, error) {
			end.Now = now
			var err error
			if reg, err = p.WebAuthn.FinishRegistrationEndingOthers(ctx, ceremony, s.ID, body, end); err != nil {
				return nil, err
			}
			return end.Ended, nil
		})
		if ended > 0 {
			n.Notice = "account.notice.added.ended"
		}
	} else {
		reg, err = p.WebAuthn.FinishRegistration(ctx, ceremony, s.ID, body, added)
	}
	if errors.Is(err, store.ErrOutcomeUnknown) && reg != nil {
		// The write got no answer: the store says whether the passkey,
		// with its event (and the end of the other sessions), is stored.
		// Sessions it ended are left pending in the store, for
		// housekeeping to tell their services.
		if err = p.readBackRegistration(w, r, reg, err, "passkey", "add", func(reason string) {
			p.auditChange(ctx, s, "passkey_added", reason, person.ID, nil)
		}); err != nil {
			return
		}
	}
	if reason := goneReason(err); reason != "" {
		// Blocked, or the session ended, since accountJSON read them:
		// the passkey's write reads both too, and stored nothing (ADR
		// 42). Answered as a session that has ended is.
		p.auditChange(ctx, s, "passkey_added", reason, person.ID, nil)
		p.jsonError(w, r, http.StatusUnauthorized, "session")
		return
	}
	if err != nil {
		reason := passkey.Reason(err)
		if reason == "internal" {
			p.log().ErrorContext(ctx, "finish add passkey", "err", err)
		}
		p.auditChange(ctx, s, "passkey_added", reason, ceremonyPerson(err, person.ID), nil)
		if reason == "wrong_session" {
			// Audited as someone else's attempt, answered as any ceremony
			// that cannot be finished.
			reason = "replay"
		}
		p.ceremonyError(w, r, statusFor(err), reason, "add")
		return
	}
	p.writeRedirect(w, noticeURL("/account", p.putNotice(ctx, s, n)))
}

// addCancel: POST /account/passkeys/cancel?ceremony=… (header
// X-CSRF-Token) → 200 {}, from the page when the browser called the
// ceremony off (NotAllowedError: the person cancelled or it timed out).
// The ceremony ends, and is audited as cancelled, which the person's
// activity does not call a refused change.
func (p *Provider) addCancel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.accountJSON(w, r)
	if !ok {
		return
	}
	switch err := p.WebAuthn.CancelRegistration(ctx, r.URL.Query().Get("ceremony"), s.ID); {
	case errors.Is(err, passkey.ErrOtherSession):
		// Begun by another session: ended all the same, and audited as
		// a finish from another session is.
		p.auditChange(ctx, s, "passkey_added", passkey.Reason(err), ceremonyPerson(err, person.ID), nil)
	case errors.Is(err, passkey.ErrReplay):
		// Finished, cancelled or expired already: nothing to end.
	case err != nil:
		p.internalError(w, r, "cancel add passkey", err)
		return
	default:
		p.auditChange(ctx, s, "passkey_added", "cancelled", person.ID, nil)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// ceremonyPerson is whom a failed add is recorded against: the person
// the ceremony was begun for, when it was another session's
// (passkey.OtherSessionError), since it was their account the passkey
// would have been added to and their activity shows the refusal; else
// the session's person.
func ceremonyPerson(err error, sessionPerson string) string {
	var other *passkey.OtherSessionError
	if errors.As(err, &other) && other.PersonID != "" {
		return other.PersonID
	}
	return sessionPerson
}

// changeForm checks a form post that changes the person's ways in: a
// session, its person, the form's CSRF token bound to the session, and a
// session that may make the change (may); event is the audit event type
// of a refusal. It writes the response (login, error or 403) and returns
// false when one is missing.
func (p *Provider) changeForm(w http.ResponseWriter, r *http.Request, event string) (*store.Session, *store.Person, bool) {
	return p.changeFormOr(w, r, event, nil)
}

// changeFormOr is changeForm, calling refused, when it is not nil,
// before it answers a session whose login is not recent or strong
// enough for the change: what refused returns, if not "", is the
// account page's message key.
func (p *Provider) changeFormOr(w http.ResponseWriter, r *http.Request, event string, refused func(*store.Person) string) (*store.Session, *store.Person, bool) {
	s, person, ok := p.pagePerson(w, r)
	if !ok {
		return nil, nil, false
	}
	if !p.Pages.ReadForm(w, r, p.lang(r)) {
		return nil, nil, false
	}
	if !p.checkSessionCSRF(r, r.PostFormValue(csrfField)) {
		p.forbidden(w, r)
		return nil, nil, false
	}
	if add, change := p.may(s); !change {
		p.auditChange(r.Context(), s, event, "reauth", person.ID, nil)
		errKey := ""
		if refused != nil {
			errKey = refused(person)
		}
		p.refuseChangeSaying(w, r, add, errKey)
		return nil, nil, false
	}
	return s, person, true
}

// sessionEnded reports whether r's session has ended: a change the
// store refused as not found may have been refused for that.
func (p *Provider) sessionEnded(r *http.Request) bool {
	_, err := p.Sessions.Current(r)
	return errors.Is(err, session.ErrNoSession)
}

// sessionMethod is the provider.Result Method of the login that made s:
// this provider's passkey or recovery code (its only "otp"), or
// "upstream" for a login through a linked eID (session_provider names
// which).
func sessionMethod(s *store.Session) string {
	switch {
	case s.Provider != ID:
		return "upstream"
	case slices.Contains(s.AMR, "otp"):
		return methodRecoveryCode
	}
	return "passkey"
}

// sessionDetails adds to d how the session making a change to the
// account was logged in: the method, the provider and the session's amr,
// so that a change made with a recovery code or through a linked eID is
// audited as such, not as one made with a passkey.
func sessionDetails(s *store.Session, d map[string]string) map[string]string {
	if d == nil {
		d = map[string]string{}
	}
	d["method"] = sessionMethod(s)
	d["session_provider"] = s.Provider
	d["amr"] = strings.Join(s.AMR, " ")
	return d
}

// changeEvents readies e, the event of a change to the account, for the
// store write that makes the change and appends it in the same atomic
// step, so that no change is stored without its event (and the person's
// activity, read from the audit log, shows every change). Without an
// Auditor there is nothing to append.
func (p *Provider) changeEvents(ctx context.Context, e *store.AuditEvent) []*store.AuditEvent {
	if p.Audit == nil {
		return nil
	}
	e.Provider = ID
	if e.Time.IsZero() {
		e.Time = p.now().UTC().Truncate(time.Microsecond)
	}
	p.Audit.Prepare(ctx, e)
	return []*store.AuditEvent{e}
}

// auditChange records a refused change to the account by session s.
func (p *Provider) auditChange(ctx context.Context, s *store.Session, typ, reason, personID string, d map[string]string) {
	p.audit(ctx, &store.AuditEvent{Type: typ, Result: store.ResultFailure, Reason: reason, PersonID: personID,
		Details: sessionDetails(s, d)})
}

// endedEvent is the sessions_ended event for n of the person's other
// sessions ended after a change to their ways in made in session s; nil
// without an audit log.
func (p *Provider) endedEvent(r *http.Request, s *store.Session, n int) *store.AuditEvent {
	if p.Audit == nil {
		return nil
	}
	e := &store.AuditEvent{Type: "sessions_ended", Result: store.ResultSuccess, PersonID: s.PersonID, Provider: ID,
		Time: p.now().UTC().Truncate(time.Microsecond), Details: map[string]string{"count": fmt.Sprint(n), "why": "ways_in_changed"}}
	p.Audit.Prepare(r.Context(), e)
	return e
}

// removePasskey: POST /account/passkeys/remove (form: csrf, credential,
// confirm=yes). Without confirm=yes it asks first, as the page the
// account page links to does (askRemove), and removes nothing. The last
// passkey stays unless the person has unused recovery codes, so nobody
// locks themselves out.
func (p *Provider) removePasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.changeForm(w, r, "passkey_removed")
	if !ok {
		return
	}
	credID, ok := p.credentialParam(w, r, r.PostFormValue("credential"))
	if !ok {
		return
	}
	if !confirmed(r) {
		p.askRemove(w, r, s, person, credID)
		return
	}
	// The store refuses to remove the last way in, in the same step as
	// the removal, so two removals at once cannot strand the person. A
	// passkey removed because it was lost or stolen takes whatever
	// sessions it may have opened with it, or nothing is removed and
	// the person is told to try again.
	p.removeWayIn(w, r, s, person.ID, wayInRemoval{
		event: "passkey_removed", details: map[string]string{"credential": credentialRef(credID)},
		lastReason: "last_passkey", gone: "account.err.gone", last: "account.err.last",
		notice: "account.notice.removed", what: "delete passkey",
	}, func(now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
		return p.Passkeys.DeletePasskey(ctx, person.ID, credID, s.ID, now, events)
	})
}

// wayInRemoval is what removeWayIn needs to know of one kind of way in.
type wayInRemoval struct {
	// event is the removal's audit event type, details its details
	// (besides the session's); refused, the details of a refusal.
	event            string
	details, refused map[string]string
	// lastReason is the reason audited when the store refuses to remove
	// the person's last way in; gone and last the account page's errors
	// for a way in already gone and for the last one.
	lastReason, gone, last string
	// notice is the account page's notice once it is removed; with
	// ".ended" when the person's other sessions were ended with it.
	notice string
	// what names the step in the log when the store fails.
	what string
}

// removeWayIn removes one of the person's ways in with remove, whose
// write carries the removal's event (the person's activity shows each)
// and, if it ends the person's other sessions, the event of their end
// (ADR 46): the store refuses the last way in in the same write, and
// reads in it that s is still the person's. It then answers the
// browser: the account page with its notice, the login page for a
// session that ended meanwhile, or the account page with the error
// that says why nothing changed.
func (p *Provider) removeWayIn(w http.ResponseWriter, r *http.Request, s *store.Session, personID string, rm wayInRemoval,
	remove func(now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error)) {
	ctx := r.Context()
	removed := p.changeEvents(ctx, &store.AuditEvent{Type: rm.event, Result: store.ResultSuccess, PersonID: personID,
		Details: sessionDetails(s, rm.details)})
	events := func(n int) []*store.AuditEvent {
		if n == 0 || p.Audit == nil {
			return removed
		}
		return append(slices.Clone(removed), p.endedEvent(r, s, n))
	}
	ended, err := p.Sessions.EndOthersBy(ctx, func(now time.Time) ([]*store.Session, error) {
		return remove(now, events)
	})
	switch {
	case errors.Is(err, store.ErrNotFound) && p.sessionEnded(r):
		// The session ended since changeForm read it: the removal's
		// write reads it too, and removed nothing.
		p.auditChange(ctx, s, rm.event, reasonSessionEnded, personID, rm.refused)
		p.toLogin(w, r)
		return
	case errors.Is(err, store.ErrNotFound):
		// Not one of the person's: most often one removed a moment ago,
		// by a second click or in another tab.
		p.renderAccount(w, r, http.StatusNotFound, "", rm.gone)
		return
	case errors.Is(err, store.ErrConflict):
		// Their last way in, since the page read the person.
		p.auditChange(ctx, s, rm.event, rm.lastReason, personID, rm.refused)
		p.renderAccount(w, r, http.StatusConflict, "", rm.last)
		return
	case err != nil:
		p.internalError(w, r, rm.what, err)
		return
	}
	n := noticeTicket{Notice: rm.notice}
	if ended > 0 {
		n.Notice = rm.notice + ".ended"
	}
	http.Redirect(w, r, noticeURL("/account", p.putNotice(ctx, s, n)), http.StatusSeeOther)
}

type codesData struct {
	Codes []string
	// File is Codes as a file to save (codesFile).
	File template.URL
	// Ended: making them logged the person out everywhere else.
	Ended bool
	// Old: they replace codes the person held, which no longer work.
	Old bool
}

// codesTicket holds new recovery codes between the form that made them
// and the one page that shows them, for the session that made them.
type codesTicket struct {
	Codes   []string `json:"codes"`
	Session string   `json:"session"`
}

// newCodes: POST /account/recovery-codes (form: csrf, and confirm=yes
// when the person holds codes, else it asks first and replaces nothing:
// askNewCodes) replaces the person's codes and sends the browser to the
// page that shows them once (Post/Redirect/Get): reloading that page
// cannot post the form again and replace the codes the person has just
// written down. A session
// holds one such ticket, the newest (putSlotTicket): asking again and
// again, as someone holding a stolen session might, replaces it rather
// than fill the flow state everyone's logins share. The ticket
// that shows them is stored before the codes are replaced: if either
// write fails the person keeps the codes they had and is told to try
// again, never left with codes they were not shown.
func (p *Provider) newCodes(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, person, ok := p.changeForm(w, r, "recovery_codes_regenerated")
	if !ok {
		return
	}
	// Whether the person holds codes the new ones void: if so they are
	// asked first (WCAG 2.2 SC 3.3.4), and the page that shows the new
	// ones says the old ones no longer work. Unknown counts as holding
	// some.
	held, err := p.RecoveryCodes.CountRecoveryCodes(ctx, person.ID)
	if err != nil {
		p.log().WarnContext(ctx, "count recovery codes", "err", err)
		held = -1
	}
	if held != 0 && !confirmed(r) {
		p.askNewCodes(w, r, s, held)
		return
	}
	codes, hashes, err := newRecoveryCodes(p.rand(), RecoveryCodeCount)
	if err != nil {
		p.internalError(w, r, "new recovery codes", err)
		return
	}
	t, err := p.putSlotTicket(ctx, "codes", s.ID, codesTicket{Codes: codes, Session: s.ID}, ticketLifetime)
	if err != nil {
		p.ticketFailed(w, r, "recovery codes ticket", err)
		return
	}
	// The end of the person's other sessions, with its event, is the
	// same write as the new codes: codes replaced because the old ones
	// may be in the wrong hands take whatever sessions those may have
	// opened with them, or nothing changes and the person is told to
	// try again.
	replaced := p.changeEvents(ctx, &store.AuditEvent{Type: "recovery_codes_regenerated", Result: store.ResultSuccess, PersonID: person.ID,
		Details: sessionDetails(s, map[string]string{"count": fmt.Sprint(len(codes))})})
	events := func(n int) []*store.AuditEvent {
		if n == 0 || p.Audit == nil {
			return replaced
		}
		return append(slices.Clone(replaced), p.endedEvent(r, s, n))
	}
	ended, err := p.Sessions.EndOthersBy(ctx, func(now time.Time) ([]*store.Session, error) {
		return p.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(ctx, person.ID, hashes, s.ID, now, events)
	})
	if errors.Is(err, store.ErrOutcomeUnknown) {
		// The write got no answer: if it was stored, the old codes are
		// void and the other sessions ended, so the person must see the
		// new codes; the store says which. Sessions it ended are left
		// pending in the store, for housekeeping to tell their services.
		switch p.codesStored(ctx, person.ID, hashes) {
		case isStored:
			p.log().WarnContext(ctx, "new recovery codes stored though their write got no answer", "err", err)
			err, ended = nil, 0
		case unconfirmed:
			// The new codes may hold, and the old ones be void: the
			// person is told so, and to look at the account page,
			// which counts the codes they hold.
			if err := p.takeSlotTicket(ctx, "codes", s.ID, t, &codesTicket{}, ticketLifetime); err != nil {
				p.log().ErrorContext(ctx, "drop recovery codes ticket", "err", err)
			}
			p.log().ErrorContext(ctx, "new recovery codes perhaps stored: their write got no answer and the store cannot be read", "err", err)
			p.Pages.Error(w, r, http.StatusServiceUnavailable, p.lang(r), errorPage("account.codes.unconfirmed", "/account"))
			return
		}
	}
	if err != nil {
		// The old codes still hold; the ticket would show codes that do
		// not, so it goes too (else it expires unseen: its token was
		// never sent).
		if err := p.takeSlotTicket(ctx, "codes", s.ID, t, &codesTicket{}, ticketLifetime); err != nil {
			p.log().ErrorContext(ctx, "drop recovery codes ticket", "err", err)
		}
		if reason := goneReason(err); reason != "" {
			// Blocked, or the session ended, since changeForm read them:
			// the codes' write reads both too, and replaced nothing (ADR
			// 42): whoever was logged out is shown no codes. The browser
			// goes to log in, as a session that has ended does, where the
			// broker says so if the Varde ID is blocked.
			p.auditChange(ctx, s, "recovery_codes_regenerated", reason, person.ID, nil)
			p.toLogin(w, r)
			return
		}
		p.internalError(w, r, "new recovery codes", err)
		return
	}
	v := url.Values{"t": {t}}
	if notice := (noticeTicket{Ended: ended > 0, FirstCodes: held == 0}); notice != (noticeTicket{}) {
		if n := p.putNotice(ctx, s, notice); n != "" {
			v.Set("n", n)
		}
	}
	http.Redirect(w, r, "/account/recovery-codes?"+v.Encode(), http.StatusSeeOther)
}

// ticketFailed tells the person that a ticket could not be stored.
// When the flow state is full (store.ErrFull: more logins and changes
// in progress than the node may hold, or a flood of them) that is 503
// "busy, try again in a minute" with Retry-After, not logged, since a
// flood would fill the log too; anything else is as internalError says.
func (p *Provider) ticketFailed(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if errors.Is(err, store.ErrFull) {
		w.Header().Set("Retry-After", strconv.Itoa(busyRetry))
		p.Pages.Error(w, r, http.StatusServiceUnavailable, p.lang(r), httpx.BusyPage())
		return
	}
	p.internalError(w, r, msg, err)
}

// codesPage: GET /account/recovery-codes?t=TICKET shows the new codes
// once, to the session that made them: the ticket is taken, so a reload
// shows an explanation instead. The ticket is bound to that session, so
// a copied link opened by another session, or none, finds nothing and
// leaves the codes to be shown where they were made.
func (p *Provider) codesPage(w http.ResponseWriter, r *http.Request) {
	s, _, ok := p.pagePerson(w, r)
	if !ok {
		return
	}
	var t codesTicket
	if err := p.takeSlotTicket(r.Context(), "codes", s.ID, r.URL.Query().Get("t"), &t, ticketLifetime); err != nil {
		if errors.Is(err, errNoTicket) {
			p.Pages.Error(w, r, http.StatusGone, p.lang(r), errorPage("codes.gone", "/account"))
			return
		}
		// Among the failures, a newer ticket that could not be put back
		// because the flow state filled meanwhile: busy.
		p.ticketFailed(w, r, "recovery codes ticket", err)
		return
	}
	if t.Session != s.ID {
		p.forbidden(w, r)
		return
	}
	n := p.takeNotice(r)
	p.Pages.Render(w, httpx.Once(r), http.StatusOK, "account_codes", p.lang(r), codesData{Codes: t.Codes, File: p.codesFile(p.lang(r), t.Codes), Ended: n.Ended, Old: !n.FirstCodes})
}

// noticeURL is path with the notice ticket token, if there is one.
func noticeURL(path, token string) string {
	if token == "" {
		return path
	}
	return path + "?" + url.Values{"n": {token}}.Encode()
}

// KeepsPersons tells the broker that this provider's results name a
// person, never identifiers: passkeys are added on the account page, not
// linked.
func (p *Provider) KeepsPersons() bool { return true }
