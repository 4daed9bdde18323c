package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/session"
)

// FuzzCurrent reads any Cookie header: it names the live session only
// when it carries that session's cookie as it was set; anything else is
// ErrNoSession, and the session stays as it was.
func FuzzCurrent(f *testing.F) {
	m, _, _ := newManager(f)
	w, s := start(f, m, nil, "p1")
	c := w.Result().Cookies()[0]
	if got, err := m.Current(withCookies(w)); err != nil || got.ID != s.ID {
		f.Fatalf("the session's own cookie: %v", err)
	}
	f.Add(c.Name + "=" + c.Value)
	f.Add(c.Name + "=" + c.Value + "x")
	f.Add(c.Name + "=" + strings.ToUpper(c.Value))
	f.Add("varde_session=" + c.Value)
	f.Add(c.Name + "=; " + c.Name + "=" + c.Value)
	f.Add(c.Name + `="` + c.Value + `"`)
	f.Add("")
	f.Fuzz(func(t *testing.T, cookie string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = []string{cookie}
		got, err := m.Current(r)
		if err != nil {
			if !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("%q: %v", cookie, err)
			}
			return
		}
		if got.ID != s.ID || m.Token(r) != c.Value {
			t.Fatalf("%q read as session %s (token %q)", cookie, got.ID, m.Token(r))
		}
	})
}
