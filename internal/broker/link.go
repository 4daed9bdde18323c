package broker

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/health"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// Linking lets a person who is logged in at Varde add another way to log
// in: they log in once more, through another provider, and the
// identifiers that provider proves become theirs. A person whose
// providers share no identifier is thus one person, with one pairwise
// sub per relying party (the sub derives from the person, which linking
// does not change).
//
// Safety:
//   - The link starts from a form post carrying a CSRF token bound to the
//     session, and is recorded under a random attempt ID (single use,
//     LinkLifetime) with the session and person that started it. It
//     finishes only in the same browser session, for the same person.
//   - Both logins must reach LinkLevel: a weak login can neither add a
//     way in nor be added, so linking never lets a weaker provider take
//     an account over. The session's login must also reach the level
//     the person was proofed at (belowProofing): a linked identifier
//     reaches the person through every provider that proves it, so a
//     substantial login to a person proofed at high cannot add a way in
//     that would log in at high. What the link adds keeps the
//     lower of the session's level and the level the provider's login
//     proved it at (store.Identifier.MaxLevel): a login that finds the
//     person through it reaches no more (linkedLevel), so a high eID
//     linked from a substantial session logs in at substantial, and so
//     does one that proved the identifier at substantial only, linked
//     from a high session. Linked again through stronger logins, it
//     keeps their level (store.Persons.LinkIdentifiers), audited with
//     raised_from.
//   - The session's login must be recent (session.ReauthAfter) when the
//     link starts, as for every change of the ways in (ADR 9): otherwise
//     whoever finds a session left open on a shared computer could add
//     their own eID to it and log in as its owner from then on. A link
//     that added an identifier, or raised a linked one's level, logs the
//     person out everywhere else: a "sessions_ended" event, as after a
//     change of passkeys, and a count in the link's own event.
//   - An identifier that belongs to another person is refused: joining
//     two persons needs both persons' consent and an operator.
//   - Every outcome is an audit event of type "link" with the provider,
//     the identifier schemes and both levels, never an identifier value.

const (
	// LinkLevel is the least both the session and the new provider's login
	// must reach to link a provider.
	LinkLevel = assurance.Substantial
	// LinkLifetime bounds a link attempt.
	LinkLifetime = 10 * time.Minute
	// linkPrefix starts every link attempt's ID (and its challenge key);
	// requests' IDs never contain ':'.
	linkPrefix    = "link:"
	linkCSRFLabel = "varde/broker/link/v1"
	linkCSRFField = "csrf"

	// reasonLinkPersonGone: the person who started the link no longer
	// exists when the provider's login comes back.
	reasonLinkPersonGone = "person_not_found"
	// reasonLinkBelowProofing: the session's login is below the level
	// the person was proofed at.
	reasonLinkBelowProofing = "below_proofing"
	// reasonLinkSecondNumber: the provider proved a number of a scheme
	// the person holds one of already (secondNumber).
	reasonLinkSecondNumber = "second_number"
)

// PersonKeeper is an optional ability of providers that keep persons
// themselves (their results name a person, never identifiers), such as
// the passkey provider: a person adds those on the account pages, not by
// linking.
type PersonKeeper interface {
	KeepsPersons() bool
}

// linkRecord is what a link attempt remembers until the provider finishes.
type linkRecord struct {
	PersonID  string `json:"p"`
	SessionID string `json:"s"`
	Provider  string `json:"v"`
	Level     string `json:"l"`
}

// linkRefusals are the pages GET /account/link/refused?why= shows.
var linkRefusals = map[string]struct {
	status int
	page   httpx.ErrorPage
}{
	"taken":       {http.StatusConflict, httpx.ErrorPage{Title: "link.taken.title", Message: "link.taken.message", Next: "link.taken.next"}},
	"number":      {http.StatusConflict, httpx.ErrorPage{Title: "link.refused.title", Message: "link.number.message", Next: "link.number.next"}},
	"session":     {http.StatusForbidden, httpx.ErrorPage{Title: "link.refused.title", Message: "link.session.message", Next: "link.again"}},
	"level":       {http.StatusForbidden, httpx.ErrorPage{Title: "link.refused.title", Message: "link.level.message", Next: "link.level.next"}},
	"proofing":    {http.StatusForbidden, httpx.ErrorPage{Title: "link.refused.title", Message: "link.proofing.message", Next: "link.level.next"}},
	"stale":       {http.StatusForbidden, httpx.ErrorPage{Title: "link.refused.title", Message: "link.stale.message", Next: "link.stale.next"}},
	"expired":     {http.StatusBadRequest, httpx.ErrorPage{Title: "link.refused.title", Message: "link.expired.message", Next: "link.again"}},
	"cancelled":   {http.StatusOK, httpx.ErrorPage{Title: "link.refused.title", Message: "link.cancelled.message", Next: "link.again"}},
	"failed":      {http.StatusBadGateway, httpx.ErrorPage{Title: "link.refused.title", Message: "link.failed.message", Next: "link.again"}},
	"refused":     {http.StatusForbidden, httpx.ErrorPage{Title: "link.refused.title", Message: "link.account.message", Next: "link.again"}},
	"unavailable": {http.StatusServiceUnavailable, httpx.ErrorPage{Title: "link.refused.title", Message: "link.unavailable.message", Next: "link.again"}},
	"blocked":     {http.StatusForbidden, blockedPage()},
}

func refusedURL(why string) string {
	return "/account/link/refused?" + url.Values{"why": {why}}.Encode()
}

// numberRefusedURL is the page for a link refused as a second number of
// scheme ("" when not known). The page names the kind of number, so
// that a person who picked someone else's login by mistake can tell,
// and never the number. The scheme is the query's, as the refusal is:
// a link made up by someone else shows only that nothing was linked,
// of one kind of number or another.
func numberRefusedURL(scheme string) string {
	v := url.Values{"why": {"number"}}
	if scheme != "" {
		v.Set("scheme", scheme)
	}
	return "/account/link/refused?" + v.Encode()
}

// numberKind is the message key naming, inside a sentence, the kind of
// number of scheme: one per scheme, one for every passport.
func numberKind(scheme string) string {
	if strings.HasPrefix(scheme, identity.SchemePassportPrefix) {
		scheme = "passport"
	}
	return "link.number.kind." + scheme
}

// linkCSRF is the link form's token: HMAC-SHA256 keyed with the session
// cookie's value, so only a page that can read the cookie could have made
// it, and any node can check it. "" without a session cookie.
func (b *Broker) linkCSRF(r *http.Request) string {
	tok := b.Sessions.Token(r)
	if tok == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte(linkCSRFLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (b *Broker) checkLinkCSRF(r *http.Request, token string) bool {
	want := b.linkCSRF(r)
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(token)) == 1
}

// linkable lists the providers a person can link: all that prove
// identifiers.
func (b *Broker) linkable() []provider.Provider {
	var out []provider.Provider
	for _, p := range b.Providers {
		if k, ok := p.(PersonKeeper); ok && k.KeepsPersons() {
			continue
		}
		if p.Info().MaxLevel < LinkLevel {
			continue
		}
		out = append(out, p)
	}
	return out
}

// LinkOptions is for the account page: the providers the person in
// front of it can link now (those that are not down, other than the one
// they logged in with), and the token the
// link form (POST /account/link, fields csrf and provider) must carry.
// It returns nothing without a session whose login is recent and
// reached LinkLevel, which startLink would refuse, or when linking is
// off; LinkWhyNot says why.
func (b *Broker) LinkOptions(r *http.Request) ([]provider.Info, string) {
	infos, token, _ := b.linkOptions(r)
	return infos, token
}

// Reasons LinkWhyNot gives for offering no link.
const (
	// LinkWhyReauth: the login is older than session.ReauthAfter.
	LinkWhyReauth = "reauth"
	// LinkWhyLevel: the login is below LinkLevel or below the level the
	// person was proofed at.
	LinkWhyLevel = "level"
	// LinkWhyDown: no provider that could be linked is up.
	LinkWhyDown = "down"
	// LinkWhyNoOther: the only provider that could be linked is the one
	// the person logged in with.
	LinkWhyNoOther = "no-other"
)

// LinkLevel is for the account page: the least level both logins of a
// link must reach (the LinkLevel constant), so that the page names the
// level the broker holds links to.
func (b *Broker) LinkLevel() assurance.Level { return LinkLevel }

// LinkWhyNot is for the account page: when LinkOptions offers nothing to
// a person whom linking is open to, why (one of the LinkWhy*
// constants), so that the page can say what they can do; "" when
// something is offered, when linking is off or no provider could ever
// be linked, or without a session.
func (b *Broker) LinkWhyNot(r *http.Request) string {
	_, _, why := b.linkOptions(r)
	return why
}

func (b *Broker) linkOptions(r *http.Request) ([]provider.Info, string, string) {
	token := b.linkCSRF(r)
	linkable := b.linkable()
	if b.Challenges == nil || token == "" || len(linkable) == 0 {
		return nil, "", ""
	}
	s, err := b.Sessions.Current(r)
	if err != nil {
		return nil, "", ""
	}
	if !session.Recent(s, b.Now(), session.ReauthAfter) {
		return nil, "", LinkWhyReauth
	}
	if lvl, err := assurance.Parse(s.Level); err != nil || lvl < LinkLevel {
		return nil, "", LinkWhyLevel
	}
	if below, err := b.belowProofing(r.Context(), s); err != nil {
		return nil, "", ""
	} else if below {
		return nil, "", LinkWhyLevel
	}
	// The provider of this login is not offered: linking it again
	// would add nothing the login has not proved already.
	var out []provider.Info
	others := 0
	for _, p := range linkable {
		if p.Info().ID == s.Provider {
			continue
		}
		others++
		if b.state(p.Info().ID).Usable() {
			out = append(out, p.Info())
		}
	}
	switch {
	case others == 0:
		return nil, "", LinkWhyNoOther
	case len(out) == 0:
		return nil, "", LinkWhyDown
	}
	return out, token, ""
}

// startLink: POST /account/link (form: csrf, provider) starts a login at
// the provider for a link attempt bound to the current session.
func (b *Broker) startLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lang := b.Pages.Locale(r, nil)
	s, err := b.Sessions.Current(r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, b.AccountURL, http.StatusSeeOther)
		return
	}
	if err != nil {
		b.internalError(w, r, "link session", err)
		return
	}
	if !b.Pages.ReadForm(w, r, lang) {
		return
	}
	if !b.checkLinkCSRF(r, r.PostFormValue(linkCSRFField)) {
		b.Pages.Error(w, r, http.StatusForbidden, lang, httpx.ErrorPage{
			Title: "passkey.csrf.title", Message: "passkey.csrf.message", Next: "passkey.csrf.next",
			BackURL: b.AccountURL, // where the form is, fresh
		})
		return
	}
	want := r.PostFormValue("provider")
	candidates := b.linkable()
	i := slices.IndexFunc(candidates, func(p provider.Provider) bool { return p.Info().ID == want })
	// The event names only a provider that can be linked: the form's
	// value is the browser's, of any length.
	named := ""
	if i >= 0 {
		named = want
	}
	ev := &store.AuditEvent{Type: "link", PersonID: s.PersonID, Provider: named,
		Details: map[string]string{"provider": named, "session_level": s.Level, "stage": "start"}}
	if lvl, err := assurance.Parse(s.Level); err != nil || lvl < LinkLevel {
		b.linkFailed(ctx, ev, "session_level")
		b.refused(w, r, "level")
		return
	}
	if !session.Recent(s, b.Now(), session.ReauthAfter) {
		b.linkFailed(ctx, ev, "reauth")
		b.refused(w, r, "stale")
		return
	}
	if below, err := b.belowProofing(ctx, s); err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		b.internalError(w, r, "link person", err)
		return
	} else if below {
		b.linkFailed(ctx, ev, reasonLinkBelowProofing)
		b.refused(w, r, "proofing")
		return
	}
	if i < 0 {
		b.linkFailed(ctx, ev, reasonUnknownProvider)
		b.Pages.Error(w, r, http.StatusBadRequest, lang, httpx.ErrorPage{
			Title: "error.badrequest.title", Message: "link.unknownprovider.message", Next: "link.again", BackURL: b.AccountURL,
		})
		return
	}
	if !b.state(want).Usable() {
		b.linkFailed(ctx, ev, ReasonProviderDown)
		b.refused(w, r, "unavailable")
		return
	}
	id, err := b.linkID()
	if err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		b.internalError(w, r, "link attempt", err)
		return
	}
	rec, err := json.Marshal(linkRecord{PersonID: s.PersonID, SessionID: s.ID, Provider: want, Level: s.Level})
	if err == nil {
		err = b.Challenges.PutChallenge(ctx, id, rec, b.Now().Add(LinkLifetime))
	}
	if err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		b.internalError(w, r, "store link attempt", err)
		return
	}
	candidates[i].Start(w, r, provider.Attempt{ID: id, Locale: lang, MinLevel: LinkLevel, Fresh: true})
}

// belowProofing reports whether session s's login is below the level
// its person was proofed at. An identifier linked becomes the person's
// for every provider that proves it, up to the person's own level: a
// login below that level, perhaps through a weaker eID of the person's
// or a session left open, must not add a way in that reaches further
// (eIDAS, Implementing Regulation (EU) 2015/1502, Annex 2.2.4: a means
// is added on the strength of one of the same or a higher level). A
// proofing level that cannot be read counts as High; a person the store
// no longer holds is not below (the link then finds nobody to add to).
func (b *Broker) belowProofing(ctx context.Context, s *store.Session) (bool, error) {
	p, err := b.Persons.GetPerson(ctx, s.PersonID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	proofed, err := assurance.Parse(p.ProofingLevel)
	if err != nil {
		proofed = assurance.High
	}
	lvl, err := assurance.Parse(s.Level)
	return err != nil || lvl < proofed, nil
}

func (b *Broker) linkID() (string, error) {
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var v [32]byte
	if _, err := io.ReadFull(rnd, v[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return linkPrefix + base64.RawURLEncoding.EncodeToString(v[:]), nil
}

// refusedPage: GET /account/link/refused?why=… explains, plainly, why
// nothing was linked, to the browser the link was refused in; any other
// is sent to the account page, which says nothing of a link
// (bindNotice).
func (b *Broker) refusedPage(w http.ResponseWriter, r *http.Request) {
	lang := b.Pages.Locale(r, nil)
	ref, ok := linkRefusals[r.URL.Query().Get("why")]
	if !ok {
		b.Pages.Error(w, r, http.StatusNotFound, lang, httpx.NotFoundPage())
		return
	}
	if !b.noticeBound(r) {
		http.Redirect(w, r, cmp.Or(b.AccountURL, "/"), http.StatusSeeOther)
		return
	}
	page := ref.page
	if page.Title != blockedPage().Title {
		// A blocked person's account page only asks them to log in.
		page.BackURL = b.AccountURL
	}
	// The level and the time are the ones links are held to, not ones
	// written into the text.
	switch page.Message {
	case "link.level.message":
		page.MessageArg = b.Pages.T(lang, "account.level."+LinkLevel.String())
	case "link.stale.message":
		page.MessageArg = strconv.Itoa(int(session.ReauthAfter / time.Minute))
	case "link.number.message":
		// Named when known, in what happened and in what to do next
		// (a new passport is not a changed national number); any other
		// scheme keeps the general words.
		if scheme := r.URL.Query().Get("scheme"); scheme != "" {
			if key := numberKind(scheme); b.Pages.T(lang, key) != key {
				page.Message, page.MessageArg = "link.number.scheme.message", b.Pages.T(lang, key)
				page.Next, page.NextArg = "link.number.scheme.next", b.Pages.T(lang, key)
			}
		}
	}
	b.Pages.Error(w, r, ref.status, lang, page)
}

func (b *Broker) refused(w http.ResponseWriter, r *http.Request, why string) {
	http.Redirect(w, r, b.bindNotice(w, refusedURL(why)), http.StatusSeeOther)
}

// internalError is the page for a link that failed on Varde's side. The
// person came from their account page, not from a service, so the page
// leads back there. A store that could not be reached (store.Unavailable)
// is not a failure: the page says to try again in a minute (503), and
// nothing of the link was kept.
func (b *Broker) internalError(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if store.Unavailable(err) {
		b.Log.WarnContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
		e := httpx.UnavailablePage()
		e.BackURL = b.AccountURL
		b.Pages.Unavailable(w, r, b.Pages.Locale(r, nil), e)
		return
	}
	b.Log.ErrorContext(r.Context(), msg, "err", err, "req", httpx.RequestID(r.Context()))
	b.Pages.Error(w, r, http.StatusInternalServerError, b.Pages.Locale(r, nil), httpx.ErrorPage{
		Title: "error.internal.title", Message: "error.internal.message", Next: "link.internal.next", BackURL: b.AccountURL,
	})
}

// takeLink ends a link attempt: its record, once.
func (b *Broker) takeLink(ctx context.Context, attemptID string) (*linkRecord, error) {
	if b.Challenges == nil {
		return nil, store.ErrNotFound
	}
	data, err := b.Challenges.TakeChallenge(ctx, attemptID, b.Now())
	if err != nil {
		return nil, err
	}
	var rec linkRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("link attempt: %w", err)
	}
	return &rec, nil
}

// finishLink is Finish for a link attempt: it adds the identifiers the
// provider proved to the person who started the link, in the same
// session, and goes back to the account page; nothing else changes (no
// new session, no new person).
func (b *Broker) finishLink(w http.ResponseWriter, r *http.Request, attemptID string, res provider.Result) (string, error) {
	ctx := r.Context()
	ev := &store.AuditEvent{Type: "link", Provider: res.Provider, Level: res.Level.String(),
		Details: map[string]string{"provider": res.Provider, "method": res.Method}}
	b.observe(res.Provider, health.Success)
	rec, err := b.takeLink(ctx, attemptID)
	if errors.Is(err, store.ErrNotFound) {
		b.linkFailed(ctx, ev, "attempt_expired")
		return refusedURL("expired"), nil
	}
	if err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	}
	ev.PersonID = rec.PersonID
	ev.Details["session_level"] = rec.Level
	// A person blocked since the link began adds no way in (and the
	// store's write refuses one blocked after this, store.ErrBlocked).
	if blocked, err := b.blocked(ctx, rec.PersonID, nil); err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	} else if blocked {
		b.linkFailed(ctx, ev, ReasonPersonBlocked)
		return refusedURL("blocked"), nil
	}
	var schemes []string
	for _, id := range res.Identifiers {
		schemes = append(schemes, id.Scheme)
	}
	if len(schemes) > 0 {
		ev.Details["scheme"] = strings.Join(schemes, " ")
	}
	// The browser that comes back must still be in the session that
	// started the link, for the same person: otherwise someone could add
	// their own identifier to whoever's browser finishes the login.
	s, err := b.Sessions.Current(r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		// The store could not say whose session it is: that is no
		// session changed, and the person is told to try again
		// (store.ErrUnavailable) or that Varde failed.
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	}
	if err != nil || s.ID != rec.SessionID || s.PersonID != rec.PersonID || res.Provider != rec.Provider {
		b.linkFailed(ctx, ev, "session_changed")
		return refusedURL("session"), nil
	}
	// The session that links, named as a login's event names it, so that
	// only its account page announces the link.
	ev.Details["session"] = s.ID[:min(12, len(s.ID))]
	if lvl, err := assurance.Parse(s.Level); err != nil || lvl < LinkLevel {
		b.linkFailed(ctx, ev, "session_level")
		return refusedURL("level"), nil
	}
	// Recent when the link started; the attempt lives LinkLifetime.
	if !session.Recent(s, b.Now(), session.ReauthAfter+LinkLifetime) {
		b.linkFailed(ctx, ev, "reauth")
		return refusedURL("stale"), nil
	}
	if res.Level < LinkLevel {
		b.linkFailed(ctx, ev, "insufficient_level")
		return refusedURL("level"), nil
	}
	if below, err := b.belowProofing(ctx, s); err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	} else if below {
		b.linkFailed(ctx, ev, reasonLinkBelowProofing)
		return refusedURL("proofing"), nil
	}
	if res.PersonID != "" {
		// A provider that keeps its own persons: nothing to link, but it
		// must be the same person.
		if res.PersonID != rec.PersonID {
			b.linkFailed(ctx, ev, "identifier_taken")
			return refusedURL("taken"), nil
		}
		return b.linked(ctx, ev, "alreadylinked"), nil
	}
	if len(res.Identifiers) == 0 {
		b.linkFailed(ctx, ev, "no_identifier")
		return refusedURL("failed"), nil
	}
	// The identifier is this person's only as surely as the weaker of
	// the two logins that link it: the session's, and the eID's, which
	// may prove it at less than the eID is configured for.
	sessionLevel, _ := assurance.Parse(s.Level)
	linkedAt := min(sessionLevel, res.Level).String()
	person, err := b.Persons.GetPerson(ctx, rec.PersonID)
	if errors.Is(err, store.ErrNotFound) {
		b.linkFailed(ctx, ev, reasonLinkPersonGone)
		return refusedURL("session"), nil
	}
	if err != nil {
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	}
	var add []store.Identifier
	var raise []store.LevelChange
	for _, id := range res.Identifiers {
		p, err := b.Persons.GetPersonByIdentifier(ctx, id.Scheme, id.Value)
		switch {
		case err == nil && p.ID == rec.PersonID:
			// Already this person's: linked again through stronger
			// logins, it now reaches their level (ADR 9).
			if held, ok := heldIdentifier(p, id); ok && levelBelow(held.MaxLevel, linkedAt) {
				raised := held
				raised.MaxLevel = linkedAt
				raise = append(raise, store.LevelChange{Identifier: raised, Was: held.MaxLevel})
			}
		case err == nil:
			// Another person's: joining two persons is not offered.
			b.linkFailed(ctx, ev, "identifier_taken")
			return refusedURL("taken"), nil
		case errors.Is(err, store.ErrNotFound):
			add = append(add, id)
		default:
			b.linkFailed(ctx, ev, provider.ErrorReason(err))
			return "", err
		}
	}
	if len(add) == 0 && len(raise) == 0 {
		return b.linked(ctx, ev, "alreadylinked"), nil
	}
	if scheme := secondNumber(person, add); scheme != "" {
		b.linkFailed(ctx, ev, reasonLinkSecondNumber)
		return numberRefusedURL(scheme), nil
	}
	for i := range add {
		// A login through it reaches no more than the link did. The
		// eID it came through is kept with it, for the account page's
		// list of linked eIDs (ADR 57).
		add[i].MaxLevel, add[i].LinkedThrough = linkedAt, res.Provider
	}
	// Every identifier added or raised, the end of whoever holds another
	// session of the person, made under the old rule (ADR 9), the link's
	// event and the event of the sessions ended, after it, so the
	// person's recent activity says they were logged out everywhere
	// else, are one store write: all of them are stored or none is. A
	// raise another link made at the same moment stands, and is not
	// made again.
	done := ""
	_, err = b.Sessions.EndOthersBy(ctx, func(now time.Time) ([]*store.Session, error) {
		for i := range add {
			add[i].LinkedAt = now
		}
		return b.Persons.LinkIdentifiers(ctx, rec.PersonID, add, raise, s.ID, now, func(raised []store.LevelChange, n int) []*store.AuditEvent {
			done = "raised"
			if len(add) > 0 {
				done = "linked"
			}
			delete(ev.Details, "raised_from")
			for _, c := range raised {
				ev.Details["raised_from"] = c.Was
			}
			successful(ev, done)
			ev.Details["sessions_ended"] = strconv.Itoa(n)
			b.Audit.Prepare(ctx, ev)
			events := []*store.AuditEvent{ev}
			if n > 0 {
				ended := &store.AuditEvent{Type: "sessions_ended", Result: store.ResultSuccess, PersonID: rec.PersonID,
					Details: map[string]string{"count": strconv.Itoa(n), "why": "ways_in_changed"}}
				b.Audit.Prepare(ctx, ended)
				events = append(events, ended)
			}
			return events
		})
	})
	if err != nil {
		// Nothing of what the callback said is stored (or, of unknown
		// outcome, known to be).
		for _, k := range []string{"already", "raised_from", "sessions_ended"} {
			delete(ev.Details, k)
		}
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		// Taken by someone else since the check above.
		b.linkFailed(ctx, ev, "identifier_taken")
		return refusedURL("taken"), nil
	case errors.Is(err, store.ErrSecondNumber):
		// Another link of the person added a number of the scheme since
		// the check above (secondNumber): the store reads the person's
		// identifiers in the same write, so of two links at once only one
		// adds a number of a scheme.
		b.linkFailed(ctx, ev, reasonLinkSecondNumber)
		return numberRefusedURL(onlyScheme(add)), nil
	case errors.Is(err, store.ErrBlocked):
		// Blocked since the check above: the store reads the block in
		// the same write, so a block landing meanwhile still adds no
		// way in.
		b.linkFailed(ctx, ev, ReasonPersonBlocked)
		return refusedURL("blocked"), nil
	case errors.Is(err, store.ErrNotFound):
		// The session that links ended since the check above (a number
		// removed, which ends every session of the person), or the
		// person who started the link is gone (deleted since).
		b.linkFailed(ctx, ev, b.linkGoneReason(ctx, rec.PersonID))
		return refusedURL("session"), nil
	case errors.Is(err, store.ErrOutcomeUnknown):
		// The write got no answer: the link, the sessions' end and the
		// events above may all be stored, or none of them. This says so
		// rather than that it failed.
		b.Log.ErrorContext(ctx, "link: store the link", "err", err)
		b.linkFailed(ctx, ev, ReasonOutcomeUnknown)
		return "", err
	case err != nil:
		b.linkFailed(ctx, ev, provider.ErrorReason(err))
		return "", err
	case done == "":
		// Raised by another link at the same moment: that one stands.
		return b.linked(ctx, ev, "alreadylinked"), nil
	}
	return accountURL(b.AccountURL, done), nil
}

// secondNumber is the scheme of a number in add, the identifiers a link
// would add to p, of which p holds a number already or add holds two;
// "" if none. Linking adds a way in to the person one already is; a
// second number of a scheme is another person's, or a replaced one,
// which the population register, not a login, says is the same person:
// the help desk adds it (store.PersonNumbers.AddIdentifier, ADR 30).
// Linked, it would make whoever logs in with that number this person,
// and be the number services get as this person's (the one of a scheme
// added last).
//
// Checked here, before anything is written, for the page that says so
// (naming the kind of number); the store's write checks it again
// against the person as it then is (store.ErrSecondNumber), so that two
// links at once cannot each add one.
func secondNumber(p *store.Person, add []store.Identifier) string {
	return store.SecondOfScheme(p.Identifiers, add)
}

// onlyScheme is the scheme of add when it holds one identifier, else
// "": of a link refused in the store's write as a second number, the
// scheme that clashed when there is only one it can be.
func onlyScheme(add []store.Identifier) string {
	if len(add) != 1 {
		return ""
	}
	return add[0].Scheme
}

// heldIdentifier is p's own record of id, with the level it was linked
// from.
func heldIdentifier(p *store.Person, id store.Identifier) (store.Identifier, bool) {
	i := slices.IndexFunc(p.Identifiers, func(h store.Identifier) bool { return h.Scheme == id.Scheme && h.Value == id.Value })
	if i < 0 {
		return store.Identifier{}, false
	}
	return p.Identifiers[i], true
}

// levelBelow reports whether an identifier linked at held reaches less
// than session: never for one the person was proofed with (""), always
// for a level that cannot be read (linkedLevel counts it as Low).
func levelBelow(held, session string) bool {
	if held == "" {
		return false
	}
	want, err := assurance.Parse(session)
	if err != nil {
		return false
	}
	got, err := assurance.Parse(held)
	return err != nil || got < want
}

// linked records a link that succeeded and is where the account page
// says what it did: done is "linked" (an identifier was added), "raised"
// (one linked already now reaches the session's level) or
// "alreadylinked" (nothing changed). The page shows that notice only
// when the person's newest link event says so, and reads from that
// event whether other sessions were logged out, so a made-up link shows
// nothing.
func (b *Broker) linked(ctx context.Context, ev *store.AuditEvent, done string) string {
	successful(ev, done)
	b.Audit.Record(ctx, ev)
	return accountURL(b.AccountURL, done)
}

// successful makes ev the event of a link that ended as done.
func successful(ev *store.AuditEvent, done string) {
	ev.Result = store.ResultSuccess
	if done != "linked" {
		ev.Details["already"] = "true"
	}
}

// accountURL is the account page at base telling of a link that ended
// as done.
func accountURL(base, done string) string {
	return base + "?" + url.Values{"done": {done}}.Encode()
}

// failLink is Fail for a link attempt: the attempt ends, and the person
// is told that nothing was linked.
func (b *Broker) failLink(r *http.Request, attemptID, providerID, reason, account string) string {
	ctx := r.Context()
	ev := &store.AuditEvent{Type: "link", Provider: providerID, Details: map[string]string{"provider": providerID}}
	if rec, err := b.takeLink(ctx, attemptID); err == nil {
		ev.PersonID = rec.PersonID
		ev.Details["session_level"] = rec.Level
	}
	b.linkFailed(ctx, ev, reason)
	return refusedURL(b.failureKind(providerID, reason, account))
}

func (b *Broker) linkFailed(ctx context.Context, ev *store.AuditEvent, reason string) {
	ev.Result = store.ResultFailure
	ev.Reason = reason
	b.Audit.Record(ctx, ev)
}

// linkGoneReason says why a link's write found nothing to link to:
// the person is gone, or only the session that linked ended.
func (b *Broker) linkGoneReason(ctx context.Context, personID string) string {
	if _, err := b.Persons.GetPerson(ctx, personID); errors.Is(err, store.ErrNotFound) {
		return reasonLinkPersonGone
	}
	return "session_changed"
}
