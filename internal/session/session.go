package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// CookieName is the session cookie's name.
const CookieName = "varde_session"

// ErrNoSession means the request carries no valid session.
var ErrNoSession = errors.New("no session")

// Manager starts, reads and ends sessions.
type Manager struct {
	Store    store.Sessions
	Lifetime time.Duration
	// Secure sets the cookie's Secure flag (always, except on http://localhost).
	Secure bool
	Now    func() time.Time
}

// The cookie holds a random 256-bit token; the store keys the session by
// the token's SHA-256, so a leaked database holds no usable cookies.
func storeID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Start stores s (its ID, CreatedAt and ExpiresAt are set here) and sets
// the cookie: New, then Save with the events.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, s *store.Session, events ...*store.AuditEvent) error {
	n, err := m.New(s)
	if err != nil {
		return err
	}
	return m.Save(ctx, w, r, n, events...)
}

// New is a session given its ID but not stored yet, so that the audit
// events recording how it began can name it and be stored with it.
type New struct {
	Session *store.Session
	token   string
}

// New sets s's ID, CreatedAt and ExpiresAt; Save stores it.
func (m *Manager) New(s *store.Session) (*New, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := m.Now()
	s.ID = storeID(token)
	s.CreatedAt = now
	s.ExpiresAt = now.Add(m.Lifetime)
	return &New{Session: s, token: token}, nil
}

// Save stores the new session and sets its cookie, replacing any session
// the request carried, which it ends. The events are appended to the
// audit log in the same atomic write (store.Sessions.CreateSession): the
// session exists if and only if they do. The caller has readied them
// (audit.Log.Prepare).
func (m *Manager) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, n *New, events ...*store.AuditEvent) error {
	if old, err := r.Cookie(CookieName); err == nil {
		_ = m.Store.DeleteSession(ctx, storeID(old.Value))
	}
	s := n.Session
	if err := m.Store.CreateSession(ctx, s, events...); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: n.token, Path: "/", Expires: s.ExpiresAt,
		HttpOnly: true, Secure: m.Secure, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// Current returns the request's session, or ErrNoSession.
func (m *Manager) Current(r *http.Request) (*store.Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	s, err := m.Store.GetSession(r.Context(), storeID(c.Value), m.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	return s, err
}

// EndOthers deletes every session of s's person but s, and returns how
// many it deleted: used when the person's ways to log in change, so that
// whoever holds another of their sessions is logged out.
func (m *Manager) EndOthers(ctx context.Context, s *store.Session) (int, error) {
	return m.Store.DeletePersonSessions(ctx, s.PersonID, s.ID)
}

// End deletes the request's session, if any, and clears the cookie.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) (*store.Session, error) {
	s, err := m.Current(r)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: m.Secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		return nil, err
	}
	return s, m.Store.DeleteSession(r.Context(), s.ID)
}
