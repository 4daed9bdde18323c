package session

import (
	"errors"
	"net/http"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// A session has two time limits a person meets on Varde's pages (ADR
// 50): the idle timeout, which each use moves on, and the expiry
// (Lifetime), which nothing moves. The pages say when the session will
// end and warn before it; a person who is still there asks to stay
// logged in (Keep), which moves the idle deadline as far as the expiry
// allows. WCAG 2.2 SC 2.2.1 lets the limit stay, as long as it can be
// extended with a simple action; the expiry bounds how long a session
// taken from its owner is worth, so it is not extended.

// Ends is when s ends unless it is used before: its idle deadline
// (IdleTimeout after its last recorded use) or its expiry, whichever is
// first. extendable reports whether a use could move it, that is,
// whether the idle deadline comes before the expiry.
func (m *Manager) Ends(s *store.Session) (ends time.Time, extendable bool) {
	if m.IdleTimeout <= 0 {
		return s.ExpiresAt, false
	}
	used := s.LastUsed
	if used.IsZero() {
		used = s.CreatedAt
	}
	idle := used.Add(m.IdleTimeout)
	if !idle.Before(s.ExpiresAt) {
		return s.ExpiresAt, false
	}
	return idle, true
}

// Keep is Current for a person who asks to stay logged in: it records a
// use now, whenever the last was recorded, so that the idle deadline
// moves a whole IdleTimeout on (Ends), never past the expiry. A session
// that has ended, by idleness or otherwise, is ErrNoSession: Keep does
// not bring it back.
func (m *Manager) Keep(r *http.Request) (*store.Session, error) {
	s, err := m.Current(r)
	if err != nil || m.IdleTimeout <= 0 {
		return s, err
	}
	now := m.Now()
	if !s.LastUsed.Before(now) {
		return s, nil
	}
	switch err := m.Store.TouchSession(r.Context(), s.ID, now); {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNoSession
	case err != nil:
		return nil, err
	}
	s.LastUsed = now
	return s, nil
}
