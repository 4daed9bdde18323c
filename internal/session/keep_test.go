package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
)

// TestKeep: a person who asks to stay logged in moves the idle deadline
// a whole IdleTimeout on, even within touchEvery of the last recorded
// use, up to the session's expiry and never past it; a session that has
// ended is not brought back.
func TestKeep(t *testing.T) {
	m, now, db := newManager(t)
	m.Lifetime, m.IdleTimeout = time.Hour, 30*time.Minute
	db.SetSessionIdleTimeout(m.IdleTimeout)
	ctx := context.Background()
	w := httptest.NewRecorder()
	if err := m.Start(ctx, w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1"}); err != nil {
		t.Fatal(err)
	}
	r := withCookies(w)
	start := *now

	s, err := m.Current(r)
	if err != nil {
		t.Fatal(err)
	}
	if ends, more := m.Ends(s); !ends.Equal(start.Add(30*time.Minute)) || !more {
		t.Errorf("Ends of a new session = %v, %v; want 30m in, extendable", ends.Sub(start), more)
	}

	// 20 s after the last recorded use, which Current would not record.
	*now = start.Add(20 * time.Second)
	s, err = m.Keep(r)
	if err != nil {
		t.Fatalf("Keep: %v", err)
	}
	if ends, _ := m.Ends(s); !ends.Equal(now.Add(30 * time.Minute)) {
		t.Errorf("Ends after Keep = %v, want 30m after the Keep", ends.Sub(start))
	}
	stored, err := db.GetSession(ctx, s.ID, *now)
	if err != nil || !stored.LastUsed.Equal(*now) {
		t.Fatalf("stored LastUsed after Keep = %v, %v; want the Keep's time", stored.LastUsed, err)
	}

	// Near the session's expiry the deadline is the expiry, which
	// nothing moves.
	*now = start.Add(25 * time.Minute)
	if _, err := m.Keep(r); err != nil {
		t.Fatalf("Keep 25m in: %v", err)
	}
	*now = start.Add(45 * time.Minute)
	s, err = m.Keep(r)
	if err != nil {
		t.Fatalf("Keep near expiry: %v", err)
	}
	if ends, more := m.Ends(s); !ends.Equal(start.Add(time.Hour)) || more {
		t.Errorf("Ends near expiry = %v, %v; want the expiry, 1h in, not extendable", ends.Sub(start), more)
	}

	// Idle past the deadline: ended, and Keep does not bring it back.
	*now = start.Add(45*time.Minute + 30*time.Minute)
	if _, err := m.Keep(r); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("Keep of an idle session = %v, want ErrNoSession", err)
	}
	if _, err := m.Keep(httptest.NewRequest(http.MethodGet, "/", nil)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("Keep without a cookie = %v, want ErrNoSession", err)
	}
}
