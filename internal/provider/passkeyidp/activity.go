package passkeyidp

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// activityLimit is how many lines of the person's activity the account
// page shows, and each page of older activity (history.go).
const activityLimit = 30

// addrDays is how many days an event's client address is kept
// (AddressRetention), for the sentence of the activity pages that says
// so: a part of a day counts as a day, since the address is kept into
// it; 0 when the retention is not known, which the pages word as a
// limited time.
func (p *Provider) addrDays() int {
	if p.AddressRetention <= 0 {
		return 0
	}
	const day = 24 * time.Hour
	return int((p.AddressRetention + day - 1) / day)
}

// activityView is one line of the account page's recent activity.
type activityView struct {
	When    httpx.Time
	What    string
	Service string
	// Addr is the address of the client the event's request came from
	// (docs/adr/0033), or "" if it holds none.
	Addr string
	// AddrSealed is set when Addr is sealed in its event
	// (store.AuditEvent.AddrSealed), kept as long as the line is rather
	// than for the retention the page states.
	AddrSealed bool
	// Refused marks a login or a change to the account that was turned
	// down, which the person may want to look into.
	Refused bool
}

// activity is the account page's section of the person's activity: its
// newest activityLimit lines, and the cursor of the page of older ones
// (history.go), 0 when there are none.
func (p *Provider) activity(ctx context.Context, personID, lang string) ([]activityView, int64, error) {
	if p.History == nil {
		return nil, 0, nil
	}
	read, err := p.readActivity(ctx, personID, lang, cursor{before: noCursor}, activityLimit)
	if err != nil {
		return nil, 0, err
	}
	if !read.more {
		return read.lines, 0, nil
	}
	return read.lines, read.next, nil
}

// activityLine turns one of the person's audit events into a line a
// person understands: logins, what services received, and changes to
// the account. Events that say nothing new to the person (tokens issued,
// a logout, a link begun) are left out (false). Values are never shown
// beyond what the event names: services and ways to log in by their
// names, claims by what they are.
func (p *Provider) activityLine(ctx context.Context, e *store.AuditEvent, lang string) (activityView, bool) {
	t := func(key string, args ...any) string {
		s := p.Pages.T(lang, key)
		if len(args) > 0 {
			s = fmt.Sprintf(s, args...)
		}
		return s
	}
	var v activityView
	how := p.wayName(e, lang)
	switch {
	case e.Type == "authentication" && e.Result == store.ResultSuccess:
		// A level this build has no word for (none recorded, or one
		// from a newer release) is left out, never shown as a key.
		if lvl := "account.level." + e.Level; e.Level != "" && t(lvl) != lvl {
			v.What = t("account.activity.login", how, t(lvl))
		} else {
			v.What = t("account.activity.login.nolevel", how)
		}
	case e.Type == "authentication" && e.Reason == "person_blocked":
		v.What, v.Refused = t("account.activity.login.blocked", how), true
	case e.Type == "authentication":
		v.What, v.Refused = t("account.activity.login.refused", how), true
	case e.Type == "consent":
		v.What = t("account.activity.consent", p.claimList(e.Details["claims"], lang))
	case e.Type == "link" && e.Result == store.ResultSuccess && e.Details["already"] == "":
		v.What = t("account.activity.link", how)
	case e.Type == "link" && e.Result == store.ResultSuccess && e.Details["raised_from"] != "":
		v.What = t("account.activity.link.raised", how)
	case e.Type == "link" && e.Result != store.ResultSuccess && linkRefusedByRule[e.Reason]:
		// As for a change of passkeys: a link the person did not try
		// is someone else at their account.
		v.What, v.Refused = t("account.activity.link.refused", how), true
	case e.Type == eventLinkRemoved && e.Result == store.ResultSuccess:
		// One linked before its eID was recorded is unlinked as "an eID".
		v.What = t("account.activity.link_removed.unknown")
		if id := e.Details["provider"]; id != "" {
			v.What = t("account.activity.link_removed", p.providerName(id, lang))
		}
	case e.Type == eventLinkRemoved:
		// Refused as a change of passkeys is: a login too old or too
		// weak, the last number, a session that had ended.
		if notRefused[e.Reason] {
			return v, false
		}
		v.What, v.Refused = t("account.activity.link_removed.refused"), true
	case e.Type == "token" && e.Result != store.ResultSuccess && tokenUsedByAnother[e.Reason] != "":
		// Someone other than the service holds a login of the person's.
		v.What, v.Refused = t(tokenUsedByAnother[e.Reason]), true
	case e.Type == "person_created":
		v.What = t("account.activity.created", how)
	case e.Type == "profile_updated":
		v.What = t("account.activity.profile", how)
	case e.Type == "passkey_added", e.Type == "passkey_removed", e.Type == eventPasskeyRenamed, e.Type == "recovery_codes_regenerated",
		e.Type == eventLoggedOutElsewhere, e.Type == eventAccessStopped:
		// A change refused (a login too old or too weak for it, the
		// last way in, a passkey whose response did not verify) is
		// shown too: one the person did not try is someone else at
		// their account.
		if e.Result != store.ResultSuccess {
			if notRefused[e.Reason] {
				return v, false
			}
			v.What, v.Refused = t("account.activity."+e.Type+".refused"), true
			break
		}
		v.What = t("account.activity." + e.Type)
	case e.Type == "enrolment", e.Type == "sessions_ended", e.Type == "person_blocked", e.Type == "person_unblocked",
		e.Type == "identifier_added", e.Type == "identifier_removed", e.Type == "person_exported":
		if e.Result != store.ResultSuccess {
			return v, false
		}
		v.What = t("account.activity." + e.Type)
	case e.Type == eventRecoveryIssued && e.Result == store.ResultSuccess:
		// The help desk's reason and what it checked are for the audit
		// log: the person is told what was done (ADR 62).
		v.What = t("account.activity." + e.Type)
		if n, _ := strconv.Atoi(e.Details["passkeys"]); n > 0 {
			v.What = t("account.activity." + e.Type + ".removed")
		}
	default:
		return v, false
	}
	// Only for a line shown: a page may pass over many events that are
	// not, and each service named is a read of the store.
	v.When, v.Service, v.Addr = p.Pages.Time(lang, e.Time), p.serviceName(ctx, e.ClientID), p.shownAddr(e)
	v.AddrSealed = v.Addr != "" && e.AddrSealed()
	return v, true
}

// shownAddr is the client address the person is shown beside e, by the
// rule their export follows too (store.AuditEvent.AddrPastRetention,
// ADR 54): none once an address kept apart is older than the
// retention, since the store then holds it only because an operator's
// hold covers it, for a preservation order, which is often
// confidential; the line reads as if the address were deleted, as the
// page says it is by then (ADR 45). An address sealed in its event is
// kept as long as the log, and shown at any age.
func (p *Provider) shownAddr(e *store.AuditEvent) string {
	if e.AddrPastRetention(store.AddrCut(p.now(), p.AddressRetention)) {
		return ""
	}
	return eventAddr(e)
}

// activityLines are the lines of the person's activity a page shows.
type activityLines []activityView

// AddrSealed reports whether one of the lines shows an address sealed
// in its event, which the page then says is kept as long as its line.
func (lines activityLines) AddrSealed() bool {
	for _, l := range lines {
		if l.AddrSealed {
			return true
		}
	}
	return false
}

// eventAddr is the client address e holds, written as an address is, or
// "" if it holds none that is one.
func eventAddr(e *store.AuditEvent) string {
	a, err := netip.ParseAddr(e.Details[store.DetailAddr])
	if err != nil {
		return ""
	}
	return a.String()
}

// linkRefusedByRule holds the reasons of a link refused for what the
// session or the eID's answer was (too old, too weak, another person's
// identifier, another number of a scheme they hold), not for one the
// person cancelled or the eID being down.
var linkRefusedByRule = map[string]bool{
	"reauth": true, "session_level": true, "below_proofing": true, "insufficient_level": true,
	"identifier_taken": true, "second_number": true, "session_changed": true,
}

// tokenUsedByAnother holds, by reason, the line of a refused use of a
// code or token of the person's that only someone other than the
// service it was given to makes: a service presenting one given to
// another ("wrong_client": the event names the service that presented
// it), or one presented without the key of the service it was given
// to ("dpop_key_mismatch": the event names that service). The other
// refusals of a token (expired, a session ended, a replay, an
// introspection a client may not make) are left out, as tokens are.
var tokenUsedByAnother = map[string]string{
	"wrong_client":      "account.activity.token.wrong_client",
	"dpop_key_mismatch": "account.activity.token.wrong_key",
}

// notRefused holds the reasons of a failed change that nobody turned
// down: a ceremony to add a passkey that the person called off in the
// browser ("cancelled") or left to expire ("expired" while the store
// still holds it; "replay" once it is swept, when an expired ceremony
// cannot be told from one used already; "wrong_ceremony", a response
// to another ceremony, which no page of Varde's sends, kept as "replay"
// is), the person's own attempt failing (the
// most passkeys allowed held already, "passkey_limit"; that passkey
// registered already, "credential_exists"; a response the browser
// garbled, "bad_input"; an authenticator that did not verify the person,
// as a security key without a PIN does, "not_verified"), or a failure
// of this server's own ("internal", "taken"; the store out of reach,
// "store_unavailable"; a write that got no answer, "outcome_unknown",
// and was found "not_stored", or could not be read back,
// "unconfirmed"). They stay in the audit trail with their reasons, but shown
// as refused they would read as someone else at the account. A ceremony
// finished by another session than the one that began it
// ("wrong_session") is someone else, and is shown to the person it was
// begun for.
var notRefused = map[string]bool{
	"cancelled": true, "expired": true, "replay": true, "wrong_ceremony": true,
	"passkey_limit": true, "credential_exists": true, "bad_input": true, "not_verified": true,
	"internal": true, "store_unavailable": true, "outcome_unknown": true, "taken": true, "not_stored": true, "unconfirmed": true,
}

// serviceName is the relying party's name, or "" for none (an account
// login) or one no longer registered.
func (p *Provider) serviceName(ctx context.Context, clientID string) string {
	if clientID == "" || p.Clients == nil {
		return ""
	}
	c, err := p.Clients.GetClient(ctx, clientID)
	if err != nil {
		return ""
	}
	return c.Name
}

// wayName names the way to log in that event e records, in lang: this
// provider's logins by what the person used, a passkey or a recovery
// code, since a login with a code the person did not use is what a
// stolen code looks like.
func (p *Provider) wayName(e *store.AuditEvent, lang string) string {
	if e.Provider == ID && e.Details["method"] == methodRecoveryCode {
		return p.Pages.T(lang, "account.activity.recovery_code")
	}
	if e.Provider == ID && e.Details["method"] == methodDeskCode {
		return p.Pages.T(lang, "account.activity.desk_code")
	}
	return p.providerName(e.Provider, lang)
}

// providerName names a way to log in in lang, falling back to its ID,
// and to words for an unknown way when the event names none.
func (p *Provider) providerName(id, lang string) string {
	if id == "" {
		return p.Pages.T(lang, "account.activity.unknown_way")
	}
	if id == ID {
		return p.Pages.T(lang, "account.activity.passkey")
	}
	if p.ProviderName != nil {
		if n := p.ProviderName(id, lang); n != "" {
			return n
		}
	}
	return id
}

// claimList says what a service received, in lang: always an identifier
// of the person's own for that service, and the claims released. A
// claim this build has no word for (one from a newer release) is never
// shown by its claim name: such claims are said once, as other details
// about the person.
func (p *Provider) claimList(claims, lang string) string {
	parts := []string{p.Pages.T(lang, "account.claim.sub")}
	other := false
	for _, c := range strings.Fields(claims) {
		key := "account.claim." + c
		if s := p.Pages.T(lang, key); s != key {
			parts = append(parts, s)
		} else {
			other = true
		}
	}
	if other {
		parts = append(parts, p.Pages.T(lang, "account.claim.other"))
	}
	return strings.Join(parts, ", ")
}
