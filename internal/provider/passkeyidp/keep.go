package passkeyidp

import (
	"errors"
	"net/http"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// The account pages run under the session's time limits (ADR 50): each
// says, in plain text, how long the session may go unused and when it
// ends at the latest (WCAG 2.2 SC 2.2.6), and, with script
// (web/static/timeout.js), warns before the end and offers to stay
// logged in, which POST /account/session/keep does (SC 2.2.1). Keeping
// needs the account forms' CSRF token and a live session: a session
// that has ended stays ended, and the page says so and offers to log in
// again. The expiry (session.lifetime) is a bound no keep passes.

// keepPath is where the account pages' script asks to stay logged in.
const keepPath = "/account/session/keep"

// maxWarn is how long before a session ends the pages warn: two
// minutes, or half the idle timeout when that is shorter, so that a
// short timeout configured for a test is not all warning. WCAG 2.2 SC
// 2.2.1 asks for at least 20 seconds to answer.
const maxWarn = 2 * time.Minute

// timeoutView is what a page says of the session's time limits and
// what its script needs to warn before them.
type timeoutView struct {
	// IdleMinutes is the idle timeout in minutes when it is two or more
	// whole minutes; IdleSeconds it in seconds otherwise; both 0 without
	// one.
	IdleMinutes, IdleSeconds int
	// The warning: Latest is when the session expires, however it is
	// used; EndsIn how many seconds it has left unless it is used
	// (session.Manager.Ends).
	provider.TimeoutDialog
	// ChangeBy, on a page that changes the person's ways in, is when the
	// login that allows it stops being recent enough (ReauthAfter), ""
	// elsewhere.
	ChangeBy string
}

// accountPages are the pages that show the session's time limits, to
// which a keep without script sends the browser back (provider.TimeoutDialog
// Back): no other address, whatever the form says.
var accountPages = []string{"/account", historyPath, removePath, renamePath, newCodesPath, unlinkPath}

// timeout is the view of s's time limits for a page in lang, whose
// address is back (a root-relative path with its query, one of
// accountPages).
func (p *Provider) timeout(r *http.Request, lang string, s *store.Session, back string) *timeoutView {
	m := p.Sessions
	ends, extendable := m.Ends(s)
	idle := m.IdleTimeout
	v := &timeoutView{TimeoutDialog: provider.TimeoutDialog{
		ID: "session-timeout", Keys: "timeout",
		Latest: p.Pages.Time(lang, s.ExpiresAt).Text,
		// In the session's clock, which its deadlines are in.
		EndsIn: provider.SecondsLeft(ends.Sub(m.Now())), Warn: provider.SecondsLeft(warnBefore(idle)),
		Extendable: extendable, KeepURL: keepPath, CSRF: p.sessionCSRF(r), LogIn: true,
		Back: back, Kept: provider.Kept(r),
	}}
	if idle >= 2*time.Minute && idle%time.Minute == 0 {
		v.IdleMinutes = int(idle / time.Minute)
	} else if idle > 0 {
		v.IdleSeconds = provider.SecondsLeft(idle)
	}
	return v
}

// changeTimeout is timeout for a page whose form changes the person's
// ways in: it also says by when, since a change needs a recent login
// (ReauthAfter, ADR 9). That window is a security limit and is not
// extended (ADR 50): the page says when it closes instead.
func (p *Provider) changeTimeout(r *http.Request, lang string, s *store.Session, back string) *timeoutView {
	v := p.timeout(r, lang, s, back)
	v.ChangeBy = p.Pages.Time(lang, s.AuthTime.Add(ReauthAfter)).Text
	return v
}

// warnBefore is how long before a session that may go unused for idle
// ends the pages warn (maxWarn).
func warnBefore(idle time.Duration) time.Duration {
	if idle <= 0 {
		return maxWarn
	}
	return min(maxWarn, idle/2)
}

// keepSession: POST /account/session/keep (JSON, header X-CSRF-Token)
// records a use of the session now, so its idle deadline moves on, and
// answers how long it has left. 401 "session" when it has ended: it
// stays ended. A plain form (keepSessionForm) does the same without
// script.
func (p *Provider) keepSession(w http.ResponseWriter, r *http.Request) {
	if isForm(r) {
		p.keepSessionForm(w, r)
		return
	}
	if !isJSON(r) {
		p.jsonError(w, r, http.StatusUnsupportedMediaType, "bad_request")
		return
	}
	// A browser without the cookie was logged out (in another tab, say):
	// its page says so.
	if p.Sessions.Token(r) == "" {
		p.jsonError(w, r, http.StatusUnauthorized, "session")
		return
	}
	// The token is the session cookie's HMAC: checked before the store
	// is asked, so a page on another site cannot keep anyone logged in.
	if !p.checkSessionCSRF(r, r.Header.Get(csrfHeader)) {
		p.jsonError(w, r, http.StatusForbidden, "csrf")
		return
	}
	s, err := p.Sessions.Keep(r)
	if errors.Is(err, session.ErrNoSession) {
		p.jsonError(w, r, http.StatusUnauthorized, "session")
		return
	}
	if err != nil {
		p.failed(w, r, "keep session", err)
		return
	}
	ends, extendable := p.Sessions.Ends(s)
	// Extendable until the idle deadline reaches the session's expiry.
	writeJSON(w, http.StatusOK, provider.KeepAnswer{EndsIn: provider.SecondsLeft(ends.Sub(p.Sessions.Now())), Extendable: extendable})
}

// keepSessionForm: POST /account/session/keep as a plain form (csrf,
// back), the page's own button for a browser without script, keeps the
// session as the JSON keep does and sends the browser back to the page
// it came from (back, one of accountPages; provider.KeptParam added),
// which shows the new time. A back that is not one of those pages is
// refused before anything is kept; a session that has ended stays
// ended, and the browser goes to log in again.
func (p *Provider) keepSessionForm(w http.ResponseWriter, r *http.Request) {
	if !p.Pages.ReadForm(w, r, p.lang(r)) {
		return
	}
	back, ok := httpx.BackTo(r.PostFormValue("back"), accountPages)
	if !ok {
		p.badRequest(w, r)
		return
	}
	if p.Sessions.Token(r) == "" {
		p.toLogin(w, r)
		return
	}
	if !p.checkSessionCSRF(r, r.PostFormValue(csrfField)) {
		p.forbidden(w, r)
		return
	}
	_, err := p.Sessions.Keep(r)
	if errors.Is(err, session.ErrNoSession) {
		p.toLogin(w, r)
		return
	}
	if err != nil {
		p.internalError(w, r, "keep session", err)
		return
	}
	http.Redirect(w, r, provider.WithKept(back), http.StatusSeeOther)
}
