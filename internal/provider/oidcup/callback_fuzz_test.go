package oidcup

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
)

// FuzzCallback sends any query and cookies to an upstream's callback
// from a browser other than the one a login started in, as anyone who
// learnt the login's state could: the answer is a page saying the
// request is bad (400), and no login is finished or failed.
func FuzzCallback(f *testing.F) {
	v := newVarde(f)
	up := newFakeUpstream(f, v.clock)
	v.add(up.config(v, "fake"))
	b := newBrowser(f)
	cb, err := url.Parse(b.callbackURL(v.startURL("fake", "a", assurance.Substantial, "", "")))
	if err != nil {
		f.Fatal(err)
	}
	q := cb.Query()
	f.Add(cb.RawQuery, "")
	f.Add(cb.RawQuery+"&state=again", "")
	f.Add("error=access_denied&state="+url.QueryEscape(q.Get("state")), "")
	f.Add("code=x&iss=https%3A%2F%2Fevil.example&state="+url.QueryEscape(q.Get("state")), "varde_up_browser=x")
	f.Add("code=x", "")
	f.Add("state=%zz&code=%00", "a=b; c")
	path := CallbackPath("fake")
	f.Fuzz(func(t *testing.T, query, cookie string) {
		finishes, fails := v.fin.counts()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.URL.RawQuery = query
		r.Header["Cookie"] = []string{cookie}
		w := httptest.NewRecorder()
		v.mux.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "<h1>") {
			t.Fatalf("%q with cookie %q: status %d %.200s", query, cookie, w.Code, w.Body)
		}
		if f2, fl2 := v.fin.counts(); f2 != finishes || fl2 != fails {
			t.Fatalf("%q with cookie %q: finishes %d → %d, fails %d → %d", query, cookie, finishes, f2, fails, fl2)
		}
	})
}
