package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"

	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// What the broker records so that the people an outage affected can be
// counted rather than estimated (see the package documentation).
const (
	// EventAuthentication is the type of the event a provider's result
	// or failure produces; Provider is the provider used.
	EventAuthentication = "authentication"
	// EventRouting is the type of the event recorded when the broker
	// routes a person around a provider that is down; Provider is the
	// provider that was down.
	EventRouting = "routing"
	// ResultRerouted is a routing event's Result when another provider
	// the attempt may use was still offered.
	ResultRerouted = "rerouted"
	// ReasonProviderDown goes with ResultRerouted.
	ReasonProviderDown = "provider_down"
	// ReasonNoProviderAvailable goes with store.ResultFailure on a routing
	// event: every provider the attempt may use was down.
	ReasonNoProviderAvailable = "no_provider_available"
	// DetailAttempt is the Details key of the attempt handle.
	DetailAttempt = "attempt"
	// DetailBrowser is the Details key of the browser handle.
	DetailBrowser = "browser"
	// DetailStored is the Details key of a failed login's event whose
	// session may have been stored all the same: "unknown"
	// (ReasonOutcomeUnknown).
	DetailStored = "stored"
	// DetailVia is the Details key of a routing event that says how the
	// person met the provider down: ViaPage (listed as unavailable on the
	// login page), ViaHint (the relying party asked for this provider by
	// provider_hint), ViaAny (provider_hint=any routed around it) or
	// ViaStart (the person chose it and it went down meanwhile). Only
	// ViaHint and ViaStart show that the person was headed for it.
	DetailVia = "via"
	ViaPage   = "page"
	ViaHint   = "hint"
	ViaAny    = "any"
	ViaStart  = "start"
	// BrowserCookie is the first-party cookie that tells browsers apart:
	// for counting the people an outage affected, and for binding a
	// login for a relying party to the browser that began it
	// (BrowserMarks, ADR 47). Over HTTPS it is
	// named as the session cookie is (session.SecureName):
	// __Host-varde_browser at the root, __Secure-varde_browser under an
	// issuer's path.
	BrowserCookie = "varde_browser"
	// browserCookieMaxAge is 400 days, the longest lifetime browsers
	// honour (draft-ietf-httpbis-rfc6265bis, the Max-Age attribute).
	browserCookieMaxAge = 400 * 24 * 60 * 60
)

// Handle is the pseudonymous handle under which the audit log records a
// login attempt's ID or a browser cookie's value: the first 16 hex digits
// of the value's SHA-256, written as two groups of eight joined by "_"
// (so that no run of digits can look like a national identity number and
// be redacted by the audit log). It is stable, reveals nothing of the
// value, and is never the value itself.
func Handle(value string) string {
	sum := sha256.Sum256([]byte(value))
	h := hex.EncodeToString(sum[:8])
	return h[:8] + "_" + h[8:]
}

// browserID returns the request's browser cookie value, setting a new
// one on w when the request carries none (or one that is not ours). It
// returns "" only if no randomness could be read; the login goes on.
func (b *Broker) browserID(w http.ResponseWriter, r *http.Request) string {
	if v := b.requestBrowser(r); v != "" {
		return v
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var v [16]byte
	if _, err := io.ReadFull(rnd, v[:]); err != nil {
		b.Log.WarnContext(r.Context(), "browser cookie", "err", err)
		return ""
	}
	value := base64.RawURLEncoding.EncodeToString(v[:])
	http.SetCookie(w, &http.Cookie{
		Name: b.browserCookieName(), Value: value, Path: b.cookiePath(), MaxAge: browserCookieMaxAge,
		HttpOnly: true, Secure: b.secureCookies(), SameSite: http.SameSiteLaxMode,
	})
	// Whatever else serves this request reads the same value, and does
	// not set another: the authorization endpoint binds the login to it,
	// and the broker then sends the browser on (BrowserMarks).
	r.AddCookie(&http.Cookie{Name: b.browserCookieName(), Value: value})
	return value
}

// BrowserMarks is the browser cookie as the authorization endpoint's
// mark of the browser a login for a relying party begins in
// (oidc.Provider.Browsers, ADR 47): the broker then finishes the login
// only in that browser (load).
func (b *Broker) BrowserMarks() oidc.Browsers { return browserMarks{b} }

type browserMarks struct{ b *Broker }

func (m browserMarks) Mark(w http.ResponseWriter, r *http.Request) (string, error) {
	if v := m.b.browserID(w, r); v != "" {
		return v, nil
	}
	return "", errors.New("broker: no browser cookie could be made")
}

func (m browserMarks) Of(r *http.Request) string { return m.b.requestBrowser(r) }

// secureCookies reports whether the broker's cookies carry the Secure
// flag: as the session cookie does.
func (b *Broker) secureCookies() bool {
	return b.Sessions != nil && b.Sessions.Secure
}

// browserCookieName is the browser cookie's name, prefixed as the
// session cookie's is (session.SecureName): a cookie a sibling
// subdomain or a plain-HTTP page of the host set (cookie tossing) is
// not read, so it can neither merge browsers nor split one when
// counting the people an outage affected.
func (b *Broker) browserCookieName() string {
	return session.SecureName(BrowserCookie, b.cookiePath(), b.secureCookies())
}

// cookiePath is the browser cookie's Path: the session cookie's, which
// is the path the node is served under.
func (b *Broker) cookiePath() string {
	if b.Sessions == nil {
		return "/"
	}
	return b.Sessions.CookiePath()
}

// requestBrowser is the request's browser cookie value, "" if it has
// none or one that is not 128 bits in base64url as browserID writes it:
// strictly, so that no other spelling of a mark (its last character's
// unused bits set) passes for one the broker made.
func (b *Broker) requestBrowser(r *http.Request) string {
	// The first that is ours: one browserID added to the request
	// follows any the browser sent that is not.
	for _, c := range r.CookiesNamed(b.browserCookieName()) {
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(c.Value); err == nil && len(raw) == 16 {
			return c.Value
		}
	}
	return ""
}

// traced adds the attempt and browser handles to d, which it returns (a
// new map if d is nil). An account login has no attempt handle; a request
// without a browser cookie has no browser handle.
func traced(d map[string]string, attemptID, browser string) map[string]string {
	if d == nil {
		d = map[string]string{}
	}
	if attemptID != AccountAttempt {
		d[DetailAttempt] = Handle(attemptID)
	}
	if browser != "" {
		d[DetailBrowser] = Handle(browser)
	}
	return d
}

var _ provider.Tracer = (*Broker)(nil)

// Trace implements provider.Tracer: a provider's own event of a failed
// login names the attempt and browser as the broker's events do.
func (b *Broker) Trace(r *http.Request, attemptID string, d map[string]string) map[string]string {
	return traced(d, attemptID, b.requestBrowser(r))
}

// routedAround records one routing event per provider in down (each
// once): rerouted while the attempt has another provider to use, a
// failure when none is left.
func (b *Broker) routedAround(ctx context.Context, a *attempt, attemptID, browser string, down []string, noneLeft bool, via string) {
	result, reason := ResultRerouted, ReasonProviderDown
	if noneLeft {
		result, reason = store.ResultFailure, ReasonNoProviderAvailable
	}
	seen := map[string]bool{}
	for _, id := range down {
		if seen[id] {
			continue
		}
		seen[id] = true
		v := via
		if via == ViaPage && a.req != nil && a.req.ProviderHint == id {
			v = ViaHint
		}
		ev := &store.AuditEvent{Type: EventRouting, Provider: id, Result: result, Reason: reason,
			Details: traced(map[string]string{DetailVia: v}, attemptID, browser)}
		if a.client != nil {
			ev.ClientID = a.client.ID
		}
		b.Audit.Record(ctx, ev)
	}
}

// down lists the eligible providers that are down now, and whether any
// eligible provider is still usable.
func (b *Broker) down(a *attempt) (down []string, anyUsable bool) {
	for _, p := range b.eligible(a) {
		id := p.Info().ID
		if b.state(id).Usable() {
			anyUsable = true
		} else {
			down = append(down, id)
		}
	}
	return down, anyUsable
}
