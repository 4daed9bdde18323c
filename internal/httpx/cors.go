package httpx

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORS opens a resource to scripts on every origin under the CORS
// protocol of the Fetch standard
// (https://fetch.spec.whatwg.org/#http-cors-protocol), for requests
// made without credentials. It suits only a resource whose answer
// depends on nothing the browser adds by itself (cookies, HTTP
// authentication it remembers, TLS client certificates): one that reads
// its credentials from the request's body or from headers the page sets.
//
// The answer names no origin: Access-Control-Allow-Origin is "*", and
// Access-Control-Allow-Credentials is never sent. By the Fetch
// standard's CORS check (#cors-check), a browser then never shows a
// page the answer to a request sent with credentials, and never sends
// one that needs a preflight: the preflight fails.
type CORS struct {
	// Methods are the methods the resource serves, in
	// Access-Control-Allow-Methods and Allow. HEAD goes with GET.
	Methods []string
	// Headers are the request headers a page may set beyond the
	// CORS-safelisted ones (Access-Control-Allow-Headers). Authorization
	// must be named: Fetch's "*" never covers it (#http-responses).
	Headers []string
	// Expose are the response headers a page may read beyond the
	// CORS-safelisted ones (Access-Control-Expose-Headers).
	Expose []string
	// MaxAge is how long a browser may reuse a preflight's answer
	// (Access-Control-Max-Age); browsers cap it, Chromium at 2 hours.
	MaxAge time.Duration
}

// Handler has every answer of next carry Access-Control-Allow-Origin:
// * and Access-Control-Expose-Headers, errors included, so that a page
// can read why it was refused. They are sent whether or not the request
// came with an Origin: the answer is the same for every origin, so a
// cache may keep it for all of them, and there is no Vary: Origin
// (Fetch, "CORS protocol and HTTP caches",
// #cors-protocol-and-http-caches).
func (c CORS) Handler(next http.Handler) http.Handler {
	expose := strings.Join(c.Expose, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if expose != "" {
			h.Set("Access-Control-Expose-Headers", expose)
		}
		next.ServeHTTP(w, r)
	})
}

// Preflight answers OPTIONS at the resource: 204, an ok status as a
// CORS-preflight fetch needs (#cors-preflight-fetch), with Allow and the
// Access-Control-Allow-* headers and Max-Age. It answers every OPTIONS
// request alike, a preflight or not, from any origin: the browser
// compares the method and headers it asked for with those listed
// (#cors-preflight-fetch), and refuses the request if one is missing.
func (c CORS) Preflight() http.Handler {
	methods := strings.Join(c.Methods, ", ")
	allowed := c.Allow()
	headers := strings.Join(c.Headers, ", ")
	maxAge := strconv.Itoa(int(c.MaxAge / time.Second))
	return c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allowed)
		h.Set("Access-Control-Allow-Methods", methods)
		if headers != "" {
			h.Set("Access-Control-Allow-Headers", headers)
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", maxAge)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// Allow is the value of the resource's Allow header: its methods, HEAD
// with GET, and OPTIONS.
func (c CORS) Allow() string {
	allow := slices.Clone(c.Methods)
	if slices.Contains(allow, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
		allow = append(allow, http.MethodHead)
	}
	allow = append(allow, http.MethodOptions)
	return strings.Join(allow, ", ")
}
