package httpx

// SecureName is the name to give a cookie called name that is set
// with Path path: with the __Host- prefix when secure and path is "/"
// (RFC 6265bis §4.1.3.2), the __Secure- prefix when secure under
// another path (§4.1.3.1: a __Host- cookie must have Path=/), and name
// as it is over plain HTTP. Browsers take a __Host- cookie only from
// this host over HTTPS, so a sibling subdomain or a plain-HTTP page of
// the host cannot set one of its choosing (cookie tossing); a
// __Secure- cookie only over HTTPS.
func SecureName(name, path string, secure bool) string {
	switch {
	case !secure:
		return name
	case path == "/":
		return "__Host-" + name
	}
	return "__Secure-" + name
}

// LangCookie is the name of the cookie that remembers a person's
// choice of language, before SecureName.
const LangCookie = "varde_lang"

// langCookieName is the language cookie's name, prefixed as the
// session cookie's is: a tossed cookie could only change the pages'
// language, but every cookie of the node follows one rule.
func (p *Pages) langCookieName() string {
	return SecureName(LangCookie, p.CookiePath(), p != nil && p.Secure)
}
