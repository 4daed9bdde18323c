package httpx

import "net/url"

// RedactURL returns raw without its user information, query and
// fragment, each replaced by "redacted" when present, for logs, stored
// errors, configuration errors and whatever shows an operator a URL that
// may carry a secret (a webhook's token, a jwks_uri's key, a back-channel
// logout URI's credentials). A URL that does not parse is not shown at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "redacted", false
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = "redacted", ""
	}
	return u.String()
}
