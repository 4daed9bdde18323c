package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

func newManager(t *testing.T) (*session.Manager, *time.Time, store.Sessions) {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	return &session.Manager{Store: db, Lifetime: time.Hour, Secure: true, Now: func() time.Time { return now }}, &now, db
}

func withCookies(w *httptest.ResponseRecorder) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 {
			r.AddCookie(c)
		}
	}
	return r
}

func TestStartCurrentEnd(t *testing.T) {
	m, now, db := newManager(t)
	ctx := context.Background()
	w := httptest.NewRecorder()
	s := &store.Session{PersonID: "p1", Provider: "passkey", Level: "high", AuthTime: *now}
	if err := m.Start(ctx, w, httptest.NewRequest(http.MethodGet, "/", nil), s); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	if c.Name != session.CookieName || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v", c)
	}
	// The store keys the session by a hash: the cookie value is not in it.
	if _, err := db.GetSession(ctx, c.Value, *now); !errors.Is(err, store.ErrNotFound) {
		t.Error("the cookie value is usable as a stored session ID")
	}
	got, err := m.Current(withCookies(w))
	if err != nil || got.PersonID != "p1" || got.Level != "high" || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("Current = %+v, %v", got, err)
	}

	// Logging in again replaces the old session.
	w2 := httptest.NewRecorder()
	if err := m.Start(ctx, w2, withCookies(w), &store.Session{PersonID: "p1", Level: "low", AuthTime: *now}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Current(withCookies(w)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("old session still valid: %v", err)
	}

	// Expiry.
	*now = now.Add(time.Hour)
	if _, err := m.Current(withCookies(w2)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("expired session: %v", err)
	}
}

func TestEnd(t *testing.T) {
	m, now, _ := newManager(t)
	w := httptest.NewRecorder()
	if err := m.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1", AuthTime: *now}); err != nil {
		t.Fatal(err)
	}
	r := withCookies(w)
	out := httptest.NewRecorder()
	s, err := m.End(out, r)
	if err != nil || s.PersonID != "p1" {
		t.Fatalf("End = %+v, %v", s, err)
	}
	if c := out.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("cookie not cleared: %v", c)
	}
	if _, err := m.Current(r); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("session survives End: %v", err)
	}
	if _, err := m.End(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("End without a session: %v", err)
	}
}
