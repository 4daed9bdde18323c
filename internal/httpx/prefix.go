package httpx

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Under serves h at the path prefix base ("/eid"; "" serves it at the
// root as it is): a request for base or a path below it reaches h with
// base taken off its path, and any other request gets notFound. A
// root-relative Location h answers with ("/account") is put under base,
// so that the redirects h writes for its own pages stay under it; an
// absolute one (a relying party's redirect URI) is left as it is.
//
// It is for a node whose issuer has a path, behind a reverse proxy that
// forwards that path unchanged (OpenID Connect Discovery §4 allows an
// issuer with a path; ADR 25).
func Under(base string, h, notFound http.Handler) http.Handler {
	if base == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, base)
		if !ok || (rest != "" && rest[0] != '/') {
			notFound.ServeHTTP(w, r)
			return
		}
		if rest == "" {
			rest = "/"
		}
		r2 := new(http.Request)
		*r2 = *r
		r2.URL = new(url.URL)
		*r2.URL = *r.URL
		r2.URL.Path = rest
		r2.URL.RawPath = ""
		if raw, ok := strings.CutPrefix(r.URL.RawPath, base); ok && raw != "" {
			r2.URL.RawPath = raw
		}
		h.ServeHTTP(&underWriter{ResponseWriter: w, base: base}, r2)
	})
}

// Prefixed is ref, a reference that a page or a redirect of the node
// gives out, as a browser must follow it when the node is served under
// base: a root-relative path ("/account?n=1") is put under base; an
// absolute URL, a scheme-relative one ("//host"), a query ("?lang=en")
// or a fragment is returned as it is.
func Prefixed(base, ref string) string {
	if base == "" || !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
		return ref
	}
	return base + ref
}

// underWriter puts a root-relative Location under base as the header
// is written. The short page http.Redirect writes with a redirect names
// the Location as it was; it is written again with the new one.
type underWriter struct {
	http.ResponseWriter
	base  string
	wrote bool
	// moved is the Location put under base, for a redirect's body.
	moved string
	// said is whether that body was written.
	said bool
}

func (u *underWriter) fix(code int) {
	if u.wrote {
		return
	}
	u.wrote = true
	h := u.ResponseWriter.Header()
	if loc := h.Get("Location"); loc != "" {
		if fixed := Prefixed(u.base, loc); fixed != loc {
			h.Set("Location", fixed)
			if code >= 300 && code < 400 {
				u.moved = fixed
			}
		}
	}
}

func (u *underWriter) WriteHeader(code int) {
	if code >= 200 {
		u.fix(code)
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *underWriter) Write(b []byte) (int, error) {
	u.fix(http.StatusOK)
	if u.moved == "" {
		return u.ResponseWriter.Write(b)
	}
	if !u.said {
		u.said = true
		if _, err := io.WriteString(u.ResponseWriter, "<a href=\""+html.EscapeString(u.moved)+"\">Moved</a>.\n"); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

func (u *underWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }
