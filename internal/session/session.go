package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// CookieName is the session cookie's name.
const CookieName = "varde_session"

// ErrNoSession means the request carries no valid session.
var ErrNoSession = errors.New("no session")

// Why a session ended, as Manager.Ended is told.
const (
	// EndedLogout: the person logged out (End).
	EndedLogout = "logout"
	// EndedReplaced: another person logged in in the same browser (Save).
	EndedReplaced = "replaced"
	// EndedWaysInChanged: the person's ways to log in changed, and their
	// other sessions end (EndOthers).
	EndedWaysInChanged = "ways_in_changed"
)

// Manager starts, reads and ends sessions.
type Manager struct {
	Store    store.Sessions
	Lifetime time.Duration
	// Secure sets the cookie's Secure flag (always, except on http://localhost).
	Secure bool
	Now    func() time.Time
	// Ended, if set, is told of every session that End, Save or EndOthers
	// ended (why is one of the Ended* constants), once each, after it was
	// deleted: the OpenID provider tells the relying parties that received
	// tokens in it (Back-Channel Logout). It must not fail the caller: the
	// session has ended whatever it does.
	Ended func(ctx context.Context, why string, ended []*store.Session)
}

func (m *Manager) ended(ctx context.Context, why string, ended []*store.Session) {
	if m.Ended != nil && len(ended) > 0 {
		m.Ended(ctx, why, ended)
	}
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
	n, err := m.New(r, s)
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

// New sets s's ID, CreatedAt and ExpiresAt; Save stores it. If r carries
// a session of the same person, s continues it (store.Session.Continues):
// it keeps that session's sid and lists its clients, so a step-up or a
// prompt=login changes what the session proves, not which session the
// relying parties know. The cookie is new all the same: whoever knew the
// old one does not get the new login.
func (m *Manager) New(r *http.Request, s *store.Session) (*New, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := m.Now()
	s.ID = storeID(token)
	s.CreatedAt = now
	s.ExpiresAt = now.Add(m.Lifetime)
	if old, err := m.Current(r); err == nil && old.PersonID == s.PersonID {
		s.Continues = old.Root()
		s.Clients = union(old.Clients, s.Clients)
	}
	return &New{Session: s, token: token}, nil
}

// union is a followed by the elements of b it lacks.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// Save stores the new session and sets its cookie, replacing any session
// the request carried, which it ends: one of the same person's is
// continued (New), and the clients it gained since New are listed in the
// new one; another person's is reported to Ended. The events are
// appended to the audit log in the same atomic write
// (store.Sessions.CreateSession): the session exists if and only if they
// do. The caller has readied them (audit.Log.Prepare).
func (m *Manager) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, n *New, events ...*store.AuditEvent) error {
	s := n.Session
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if old, err := m.Store.DeleteSession(ctx, storeID(c.Value)); err == nil && old != nil {
			switch {
			case s.Continues != "" && old.Root() == s.Continues:
				s.Clients = union(s.Clients, old.Clients)
			case old.ExpiresAt.After(m.Now()):
				m.ended(ctx, EndedReplaced, []*store.Session{old})
			}
		}
	}
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
	ended, err := m.Store.DeletePersonSessions(ctx, s.PersonID, s.ID)
	if err != nil {
		return 0, err
	}
	m.ended(ctx, EndedWaysInChanged, ended)
	return len(ended), nil
}

// End deletes the request's session, if any, and clears the cookie. It
// returns the session as it ended, or ErrNoSession.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) (*store.Session, error) {
	s, err := m.Current(r)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: m.Secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		return nil, err
	}
	ended, err := m.Store.DeleteSession(r.Context(), s.ID)
	if err != nil {
		return nil, err
	}
	if ended == nil {
		// Ended meanwhile, by whoever was told.
		return nil, ErrNoSession
	}
	m.ended(r.Context(), EndedLogout, []*store.Session{ended})
	return ended, nil
}
