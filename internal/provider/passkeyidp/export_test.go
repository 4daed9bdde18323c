package passkeyidp

import "net/http"

// SessionCSRF is the account forms' token for the session of r, as a
// page that does not offer a form would still let a person (or a
// forger) post it.
func SessionCSRF(p *Provider, r *http.Request) string { return p.sessionCSRF(r) }

// ActivityPage is the link to the page of the activity of the person
// with ID personID just older than the event Seq before, or (before 0)
// just newer than the event Seq after, as the pages make it.
func ActivityPage(p *Provider, personID string, before, after int64) (string, error) {
	return p.historyURL(personID, cursor{before: before, after: after})
}
