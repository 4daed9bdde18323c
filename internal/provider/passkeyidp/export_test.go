package passkeyidp

import "net/http"

// SessionCSRF is the account forms' token for the session of r, as a
// page that does not offer a form would still let a person (or a
// forger) post it.
func SessionCSRF(p *Provider, r *http.Request) string { return p.sessionCSRF(r) }
