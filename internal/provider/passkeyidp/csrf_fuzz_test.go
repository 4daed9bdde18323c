package passkeyidp

import (
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/web"
)

// oneByteOff is token with the byte at i%len changed to another, "x"
// for an empty token.
func oneByteOff(token string, i uint) string {
	if token == "" {
		return "x"
	}
	b := []byte(token)
	i %= uint(len(b))
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// requestWithCookie is a request to path carrying the session cookie
// cookie.
func requestWithCookie(p *Provider, method, path, cookie string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	r.AddCookie(&http.Cookie{Name: p.Sessions.CookieName(), Value: cookie})
	return r
}

// FuzzSessionCSRF checks any token against the account forms' token of
// any session cookie: the session's own token passes, and only it; the
// token of another session, and the session's own with one byte
// changed, never pass; and without a session cookie nothing does.
func FuzzSessionCSRF(f *testing.F) {
	p := &Provider{Sessions: &session.Manager{}}
	own := p.sessionCSRF(requestWithCookie(p, http.MethodPost, "/account", "cookie-a"))
	f.Add("cookie-a", "cookie-b", own, uint(0))
	f.Add("cookie-a", "cookie-a ", own+"=", uint(42))
	f.Add("cookie-a", "", "", uint(1))
	f.Add("", "cookie-b", "", uint(0))
	f.Fuzz(func(t *testing.T, cookie, other, token string, flip uint) {
		r := requestWithCookie(p, http.MethodPost, "/account", cookie)
		want := p.sessionCSRF(r)
		if p.Sessions.Token(r) == "" {
			// A cookie the browser would not send as it is (";" and the
			// like) is no session: nothing passes.
			if want != "" || p.checkSessionCSRF(r, token) {
				t.Fatalf("no session cookie, yet %q passes", token)
			}
			return
		}
		if got := p.checkSessionCSRF(r, token); got != (token == want) {
			t.Fatalf("cookie %q, token %q: passes %v, want %v", cookie, token, got, token == want)
		}
		if !p.checkSessionCSRF(r, want) {
			t.Fatalf("cookie %q: its own token is refused", cookie)
		}
		if p.checkSessionCSRF(r, oneByteOff(want, flip)) {
			t.Fatalf("cookie %q: its token one byte off passes", cookie)
		}
		o := requestWithCookie(p, http.MethodPost, "/account", other)
		if p.Sessions.Token(o) != "" && p.Sessions.Token(o) != p.Sessions.Token(r) && p.checkSessionCSRF(r, p.sessionCSRF(o)) {
			t.Fatalf("cookie %q: the token of session %q passes", cookie, other)
		}
	})
}

// keepFixture is a provider over a real SQLite store with two live
// sessions, a and b, for FuzzKeepSession.
type keepFixture struct {
	p      *Provider
	db     *sqlstore.DB
	now    time.Time
	a, b   string // the session cookies
	aID    string // a's ID in the store
	csrfA  string
	csrfB  string
	handle http.Handler
}

func newKeepFixture(f *testing.F) *keepFixture {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(f.TempDir(), "varde.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	m := fstest.MapFS{}
	for _, name := range []string{"layout", "error"} {
		b, err := fs.ReadFile(web.Templates, "templates/"+name+".html")
		if err != nil {
			f.Fatal(err)
		}
		m["templates/"+name+".html"] = &fstest.MapFile{Data: b}
	}
	log := slog.New(slog.DiscardHandler)
	pages, err := httpx.NewPages(m, web.Locales, []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}, {Tag: "da", Name: "Dansk"}}, log)
	if err != nil {
		f.Fatal(err)
	}
	x := &keepFixture{db: db, now: time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return x.now }
	x.p = &Provider{Sessions: &session.Manager{Store: db, Lifetime: 24 * time.Hour, IdleTimeout: time.Hour, Now: clock},
		Pages: pages, Log: log, Now: clock}
	x.handle = http.HandlerFunc(x.p.keepSession)
	x.a, x.aID = x.start(f, "person-a")
	x.b, _ = x.start(f, "person-b")
	x.csrfA = x.p.sessionCSRF(requestWithCookie(x.p, http.MethodPost, keepPath, x.a))
	x.csrfB = x.p.sessionCSRF(requestWithCookie(x.p, http.MethodPost, keepPath, x.b))
	return x
}

// start stores a live session of person and returns its cookie and ID.
func (x *keepFixture) start(f *testing.F, person string) (cookie, id string) {
	rec := httptest.NewRecorder()
	s := &store.Session{PersonID: person, Provider: ID, Level: "high", AMR: []string{"hwk"}, AuthTime: x.now}
	if err := x.p.Sessions.Start(context.Background(), rec, httptest.NewRequest(http.MethodGet, "/", nil), s); err != nil {
		f.Fatal(err)
	}
	return rec.Result().Cookies()[0].Value, s.ID
}

// lastUsed is when the store last recorded a use of session a.
func (x *keepFixture) lastUsed(t *testing.T) time.Time {
	s, err := x.db.GetSession(context.Background(), x.aID, x.now)
	if err != nil {
		t.Fatalf("session a: %v", err)
	}
	return s.LastUsed
}

// keep posts to /account/session/keep with session a's cookie and
// token, as JSON (the header) or as the plain form (the field, with
// back).
func (x *keepFixture) keep(asForm bool, token, back string) *httptest.ResponseRecorder {
	body, kind := "{}", "application/json"
	if asForm {
		body, kind = url.Values{csrfField: {token}, "back": {back}}.Encode(), "application/x-www-form-urlencoded"
	}
	r := httptest.NewRequest(http.MethodPost, keepPath, strings.NewReader(body))
	r.AddCookie(&http.Cookie{Name: x.p.Sessions.CookieName(), Value: x.a})
	r.Header.Set("Content-Type", kind)
	if !asForm {
		r.Header.Set(csrfHeader, token)
	}
	w := httptest.NewRecorder()
	x.handle.ServeHTTP(w, r)
	return w
}

// FuzzKeepSession posts any token to /account/session/keep, as the
// script's JSON and as the plain form, for a live session over a real
// store: only the session's own token keeps it (200 with the time
// left, or 303 back to the page), and any other, the token of another
// live session and the own one byte off among them, is refused (403,
// or 400 for a form whose page to go back to is none of the account's)
// and records no use. Never a 5xx, never a panic.
func FuzzKeepSession(f *testing.F) {
	x := newKeepFixture(f)
	for _, back := range []string{"/account", "/account/activity", "https://evil.example/", ""} {
		f.Add(false, x.csrfA, back, uint(0))
		f.Add(true, x.csrfA, back, uint(5))
		f.Add(true, x.csrfB, back, uint(0))
	}
	f.Add(false, x.csrfB, "", uint(0))
	f.Add(false, "", "", uint(0))
	f.Add(false, x.csrfA+" ", "", uint(42))
	f.Add(true, strings.ToUpper(x.csrfA), "/account", uint(1))
	f.Fuzz(func(t *testing.T, asForm bool, token, back string, flip uint) {
		if x.now.Sub(x.lastUsed(t)) > 30*time.Minute {
			// Nothing kept it for a while: keep it, as the page would.
			if w := x.keep(false, x.csrfA, ""); w.Code != http.StatusOK {
				t.Fatalf("own token refused: %d %s", w.Code, w.Body)
			}
			x.now = x.now.Add(time.Second)
		}
		for _, tok := range []string{token, x.csrfB, oneByteOff(x.csrfA, flip)} {
			// Each post a second on, so that a use kept is a use
			// recorded, well within the session's idle time.
			x.now = x.now.Add(time.Second)
			before := x.lastUsed(t)
			w := x.keep(asForm, tok, back)
			if w.Code >= 500 {
				t.Fatalf("token %q, back %q: %d %s", tok, back, w.Code, w.Body)
			}
			kept := !x.lastUsed(t).Equal(before)
			switch {
			case tok != x.csrfA:
				if kept || w.Code != http.StatusForbidden && !(asForm && w.Code == http.StatusBadRequest) {
					t.Fatalf("token %q (form %v, back %q): %d, kept %v; want refused", tok, asForm, back, w.Code, kept)
				}
			case asForm && w.Code == http.StatusBadRequest:
				// A page to go back to that is none of the account's is
				// refused before anything is kept.
				if kept {
					t.Fatalf("back %q refused, yet kept", back)
				}
			case asForm:
				if w.Code != http.StatusSeeOther || !kept || !strings.Contains(w.Header().Get("Location"), provider.KeptParam) {
					t.Fatalf("own token, back %q: %d to %q, kept %v", back, w.Code, w.Header().Get("Location"), kept)
				}
			default:
				var a provider.KeepAnswer
				if w.Code != http.StatusOK || !kept || json.Unmarshal(w.Body.Bytes(), &a) != nil || a.EndsIn <= 0 {
					t.Fatalf("own token: %d %s, kept %v", w.Code, w.Body, kept)
				}
			}
		}
	})
}
