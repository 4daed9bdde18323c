package passkeyidp

import (
	"net/http"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/session"
)

// A person who typed a passkey's new name and saved it after the
// recent-login window closed (ReauthAfter) is sent to log in again
// (ADR 50): the window is not extended. What they typed is kept for
// their return, so that the rename page's field holds it, not the old
// name: a draft, sealed as a ticket (ticket.go) bound to the person,
// under a random token in a cookie of this browser. So the browser
// holds no name, a copy of the database shows none, another person
// logged in at the same browser finds nothing, and no log holds it (the
// access log writes paths, never a query, a body or a cookie). It is
// taken when the rename page of the same passkey is shown, and lasts
// draftLifetime.

const (
	draftCookie   = "varde_rename"
	draftLifetime = 30 * time.Minute
	// maxDraft is the most of a typed name kept, in characters: enough
	// for a name too long to be refused as such when saved.
	maxDraft = 4 * maxPasskeyName
)

// renameDraft is a name typed for the passkey Credential (base64url).
type renameDraft struct {
	Credential string    `json:"credential"`
	Name       string    `json:"name"`
	Expires    time.Time `json:"expires"`
}

// draftCookieName is the draft cookie's name, with the prefix the
// provider's other cookies have (formCookieName).
func (p *Provider) draftCookieName() string {
	return session.SecureName(draftCookie, p.cookiePath(), p.secure())
}

// keepDraft keeps the name the rename form r posted for the person,
// for their return after logging in again, and returns the message
// that says so; "" when it could not, and the account page then says
// only to log in again.
func (p *Provider) keepDraft(w http.ResponseWriter, r *http.Request, personID string) string {
	typed := []rune(strings.ToValidUTF8(r.PostFormValue("name"), ""))
	cred := r.PostFormValue("credential")
	if len(typed) == 0 || cred == "" || len(cred) > 1024 {
		return ""
	}
	if len(typed) > maxDraft {
		typed = typed[:maxDraft]
	}
	d := renameDraft{Credential: cred, Name: string(typed), Expires: p.now().Add(draftLifetime)}
	token, err := p.putTicket(r.Context(), "rename-draft", personID, d, draftLifetime)
	if err != nil {
		p.log().WarnContext(r.Context(), "keep the typed passkey name", "err", err)
		return ""
	}
	p.setDraftCookie(w, token, int(draftLifetime/time.Second))
	return "account.err.reauth.rename"
}

// takeDraft is the name the person typed for the passkey credential
// before they were sent to log in again, if this browser holds one for
// them; a draft for another of their passkeys is left for its page.
func (p *Provider) takeDraft(w http.ResponseWriter, r *http.Request, personID, credential string) (string, bool) {
	c, err := r.Cookie(p.draftCookieName())
	if err != nil {
		return "", false
	}
	var d renameDraft
	if err := p.takeTicket(r.Context(), "rename-draft", personID, c.Value, &d); err != nil {
		return "", false
	}
	if d.Credential != credential {
		if err := p.restoreTicket(r.Context(), "rename-draft", personID, c.Value, d, d.Expires); err != nil {
			p.log().WarnContext(r.Context(), "put back a typed passkey name", "err", err)
		}
		return "", false
	}
	p.setDraftCookie(w, "", -1)
	return d.Name, true
}

// setDraftCookie sets the draft cookie to token for maxAge seconds;
// maxAge -1 removes it.
func (p *Provider) setDraftCookie(w http.ResponseWriter, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: p.draftCookieName(), Value: token, Path: p.cookiePath(), MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure(), SameSite: http.SameSiteStrictMode,
	})
}
