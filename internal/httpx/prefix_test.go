package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPrefixed(t *testing.T) {
	for _, c := range []struct{ base, ref, want string }{
		{"", "/account", "/account"},
		{"/eid", "/account", "/eid/account"},
		{"/eid", "/", "/eid/"},
		{"/eid", "/login?req=a%2Fb", "/eid/login?req=a%2Fb"},
		{"/eid", "https://bank.example/cb?code=x", "https://bank.example/cb?code=x"},
		{"/eid", "//evil.example/x", "//evil.example/x"},
		{"/eid", "?lang=en", "?lang=en"},
		{"/eid", "#main", "#main"},
		{"/eid", "", ""},
		{"/eid", "tel:+4780012345", "tel:+4780012345"},
	} {
		if got := Prefixed(c.base, c.ref); got != c.want {
			t.Errorf("Prefixed(%q, %q) = %q, want %q", c.base, c.ref, got, c.want)
		}
	}
}

// TestUnder: requests at the base path and below reach the handler with
// the base taken off; any other gets the not-found handler; redirects
// to the node's own paths are put under the base, with the redirect's
// page naming the new address; redirects elsewhere are left alone.
func TestUnder(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/go-home":
			http.Redirect(w, r, "/account?n=1", http.StatusSeeOther)
		case "/go-away":
			http.Redirect(w, r, "https://bank.example/cb?code=x", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "path "+r.URL.Path+" raw "+r.URL.RawPath)
		}
	})
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "elsewhere", http.StatusNotFound) })
	h := Under("/eid", inner, notFound)
	for _, c := range []struct {
		path     string
		status   int
		body     string
		location string
	}{
		{"/eid", 200, "path / raw ", ""},
		{"/eid/", 200, "path / raw ", ""},
		{"/eid/status/reports", 200, "path /status/reports raw ", ""},
		{"/eid/a%2Fb", 200, "path /a/b raw /a%2Fb", ""},
		{"/eid/go-home", 303, `<a href="/eid/account?n=1">`, "/eid/account?n=1"},
		{"/eid/go-away", 302, "", "https://bank.example/cb?code=x"},
		{"/", 404, "elsewhere", ""},
		{"/account", 404, "elsewhere", ""},
		{"/eidx", 404, "elsewhere", ""},
		{"/eidx/account", 404, "elsewhere", ""},
		{"/x/eid/account", 404, "elsewhere", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) || rec.Header().Get("Location") != c.location {
			t.Errorf("GET %s: %d %q at %q, want %d with %q at %q", c.path, rec.Code, rec.Body, rec.Header().Get("Location"), c.status, c.body, c.location)
		}
		if strings.Contains(rec.Body.String(), `href="/account`) {
			t.Errorf("GET %s: the page names the address outside the base: %q", c.path, rec.Body)
		}
	}
	if Under("", inner, notFound) == nil {
		t.Fatal("Under with no base is nil")
	}
	rec := httptest.NewRecorder()
	Under("", inner, notFound).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/go-home", nil))
	if rec.Header().Get("Location") != "/account?n=1" {
		t.Errorf("no base: Location %q", rec.Header().Get("Location"))
	}
}
