package httpx

import (
	"net/url"
	"slices"
	"strings"
)

// BackTo is where a form that a page posts to an action of its own (a
// time limit kept without script, ADR 50) sends the browser back: the
// page named by back, a root-relative path with its query
// ("/passkey/login?attempt=…"), when its path is exactly one of pages.
// The answer's path is the one from pages, never the one sent, and its
// query is back's, parsed and encoded again, so that a form altered to
// name another site ("//evil.example", "https://…", "/\\evil"), a path
// of its own, or a fragment gets ok false and the caller answers with a
// page of its own.
func BackTo(back string, pages []string) (string, bool) {
	if back == "" || back[0] != '/' || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\#\r\n\t") {
		return "", false
	}
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	i := slices.Index(pages, u.Path)
	if i < 0 {
		return "", false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", false
	}
	if len(q) == 0 {
		return pages[i], true
	}
	return pages[i] + "?" + q.Encode(), true
}
