package broker

import "net/http"

// LinkCSRF is the link form's token for the browser of r, as a page the
// account page does not offer the form on would still let a person (or
// a forger) post it.
func LinkCSRF(b *Broker, r *http.Request) string { return b.linkCSRF(r) }
