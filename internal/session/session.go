package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// CookieName is the session cookie's name over plain HTTP (a node on
// http://localhost), and HostCookieName its name with the Secure flag:
// the __Host- prefix (RFC 6265bis §4.1.3.2) makes browsers refuse it
// from anywhere but this host over HTTPS, with Path=/ and no Domain, so
// a sibling subdomain cannot plant a session of its choosing.
//
// A node served under a path (an issuer with a path, ADR 25) sets its
// cookies with that Path, which a __Host- cookie cannot have: it names
// the session cookie SecureCookieName instead. The __Secure- prefix
// still makes browsers take it only over HTTPS with the Secure flag,
// but not only from this host: a sibling subdomain served over HTTPS
// could set one for the parent domain. An operator who serves Varde
// under a path shares the host with other services, and must trust
// the hosts under the same parent domain as much as those.
const (
	CookieName       = "varde_session"
	HostCookieName   = "__Host-varde_session"
	SecureCookieName = "__Secure-varde_session"
)

// SecureName is the name to give a cookie called name that is set
// with Path path (httpx.SecureName): with the __Host- prefix when
// secure and path is "/", the __Secure- prefix when secure under
// another path, and name as it is over plain HTTP. Every cookie the
// node sets is named by this rule.
func SecureName(name, path string, secure bool) string {
	return httpx.SecureName(name, path, secure)
}

// ErrNoSession means the request carries no valid session.
var ErrNoSession = errors.New("no session")

// ReauthAfter is how recent the login of a session must be for the
// person to change their ways in (passkeys, recovery codes, a linked
// eID): a session left open on a shared computer changes nothing.
const ReauthAfter = 15 * time.Minute

// Recent reports whether s's login was at most within of now, allowing
// a minute of clock skew between nodes.
func Recent(s *store.Session, now time.Time, within time.Duration) bool {
	age := now.Sub(s.AuthTime)
	return age > -time.Minute && age <= within
}

// Why a session ended, as Manager.Ended is told.
const (
	// EndedLogout: the person logged out (End).
	EndedLogout = "logout"
	// EndedReplaced: another person logged in in the same browser (Save).
	EndedReplaced = "replaced"
	// EndedWaysInChanged: the person's ways to log in changed, and their
	// other sessions end (EndOthers).
	EndedWaysInChanged = "ways_in_changed"
	// EndedElsewhere: the person asked to be logged out everywhere else
	// (EndElsewhere).
	EndedElsewhere = "logged_out_elsewhere"
)

// Manager starts, reads and ends sessions.
type Manager struct {
	Store    store.Sessions
	Lifetime time.Duration
	// IdleTimeout, if positive, ends a session left unused that long:
	// Current no longer finds it. Each use slides the deadline, but
	// the store records a use at most once per touchEvery, so a
	// session may end up to that much sooner after its last use.
	IdleTimeout time.Duration
	// Secure sets the cookie's Secure flag (always, except on http://localhost).
	Secure bool
	// Path is the cookie's Path: the path the node is served under, the
	// issuer's path ("/eid"); "" means "/".
	Path string
	Now  func() time.Time
	// Ended, if set, is told of every live session that End, Save or
	// EndOthers ended (why is one of the Ended* constants), once each,
	// after it was deleted: the OpenID provider tells the relying parties
	// that received tokens in it (Back-Channel Logout). It must not fail
	// the caller: the session has ended whatever it does, and the store
	// recorded the end in the same write (store.Sessions.EndSession), so
	// an end that Ended could not settle, or that a stopping node never
	// told it of, is still pending (store.SessionEnds). It runs on a
	// context that the request's end does not cancel, and the request
	// waits for it at most EndedWait: a slow store cannot hold the
	// person's logout page, while Ended goes on within its own bounds.
	Ended func(ctx context.Context, why string, ended []*store.Session)
	// MaxEnded caps how many calls of Ended run at once; DefaultMaxEnded
	// if zero. Past it, a request that ends sessions does not call Ended:
	// the ends stay pending in the store for housekeeping to settle
	// (store.SessionEnds), so a store slow for long leaves no pile of
	// goroutines, one per logout, each waiting on it.
	MaxEnded int
	// Log, if set, hears of the store's failures that leave the
	// caller's request unharmed; slog.Default() otherwise.
	Log *slog.Logger

	running atomic.Int64 // calls of Ended under way
}

func (m *Manager) logger() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}

// EndedWait is how long End, Save, EndOthers and EndOthersBy wait for
// Ended before they return: long enough that a store answering as usual
// has the relying parties' logout tokens queued before the person's page
// answers, short enough that a slow one does not keep them waiting.
// Ended goes on after it; what it does not finish, the end recorded in
// the store leaves to housekeeping (store.SessionEnds).
const EndedWait = 500 * time.Millisecond

// DefaultMaxEnded is Manager.MaxEnded when it is zero.
const DefaultMaxEnded = 64

func (m *Manager) ended(ctx context.Context, why string, ended []*store.Session) {
	if m.Ended == nil || len(ended) == 0 {
		return
	}
	limit := int64(m.MaxEnded)
	if limit <= 0 {
		limit = DefaultMaxEnded
	}
	if m.running.Add(1) > limit {
		m.running.Add(-1)
		m.logger().WarnContext(ctx, "too many relying party tellings under way; the ended sessions are left to housekeeping", "why", why, "sessions", len(ended), "max", limit)
		return
	}
	done := make(chan struct{})
	go func() {
		defer m.running.Add(-1)
		defer close(done)
		m.Ended(context.WithoutCancel(ctx), why, ended)
	}()
	t := time.NewTimer(EndedWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		m.logger().WarnContext(ctx, "the relying parties of ended sessions are still being told; answering without waiting", "why", why, "sessions", len(ended))
	case <-ctx.Done():
	}
}

// live is the sessions of ended that had not ended at now, by expiry or
// by idleness (store.SessionLive): the end of one that ended so, which
// the store records when it is deleted (store.Sessions.EndSession), is
// left to housekeeping, as the sweep's are.
func (m *Manager) live(ended []*store.Session, now time.Time) []*store.Session {
	var out []*store.Session
	for _, s := range ended {
		if store.SessionLive(s, now, m.IdleTimeout) {
			out = append(out, s)
		}
	}
	return out
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

// CookieName is the name m gives the session cookie: HostCookieName
// when Secure at the root of the host, SecureCookieName when Secure
// under a path, CookieName otherwise.
func (m *Manager) CookieName() string {
	return SecureName(CookieName, m.CookiePath(), m.Secure)
}

// CookiePath is the Path of m's cookie, and of the other cookies the
// node's pages set: Path, or "/".
func (m *Manager) CookiePath() string {
	if m.Path == "" {
		return "/"
	}
	return m.Path
}

// Token returns the session cookie's value in r, "" without one.
func (m *Manager) Token(r *http.Request) string {
	c, err := r.Cookie(m.CookieName())
	if err != nil {
		return ""
	}
	return c.Value
}

// Save stores the new session and sets its cookie, replacing any session
// the request carried, which it then ends (if the new one cannot be
// stored, Save returns the error and the old one is left as it was): one of the same person's is
// continued (New), and the clients it gained since New are listed in the
// new one (if one cannot be, the old session ends as below, so that its
// clients hear of it); another person's is reported to Ended. The events are
// appended to the audit log in the same atomic write
// (store.Sessions.CreateSession): the session exists if and only if they
// do. The caller has readied them (audit.Log.Prepare). If the write got
// no answer (store.ErrOutcomeUnknown), the cookie is set all the same,
// as the session may be stored, and the error is returned; the old one
// is out of the browser's reach then, so it is replaced as above all the
// same: continued if the new one was stored, ended (and told) if not or
// if it was another person's. It is never left live with nobody to end it.
func (m *Manager) Save(ctx context.Context, w http.ResponseWriter, r *http.Request, n *New, events ...*store.AuditEvent) error {
	s := n.Session
	// The new session first: if it cannot be stored, the browser keeps
	// the session it had.
	if err := m.Store.CreateSession(ctx, s, events...); err != nil {
		if errors.Is(err, store.ErrOutcomeUnknown) {
			// It may be stored: the browser gets its cookie, so that
			// if it was, the person is logged in; if not, the cookie
			// names no session and is worth nothing. Either way the
			// browser no longer holds the old one, which ends now
			// rather than stay live, unseen, until it expires.
			m.setCookie(w, n.token)
			// It is continued only into a new session that is
			// stored, which a read tells now.
			if tok := m.Token(r); tok != "" {
				if _, gerr := m.Store.GetSession(ctx, s.ID, m.Now()); gerr == nil {
					m.replace(ctx, storeID(tok), s)
				} else {
					m.endReplaced(ctx, storeID(tok), m.Now())
				}
			}
		}
		return fmt.Errorf("start session: %w", err)
	}
	if tok := m.Token(r); tok != "" {
		m.replace(ctx, storeID(tok), s)
	}
	// A browser session cookie, with no expiry of its own: closing the
	// browser ends the session there (the stored session still expires
	// at ExpiresAt), so the next person at a shared computer does not
	// find the last one logged in.
	m.setCookie(w, n.token)
	return nil
}

// setCookie gives the browser the session cookie carrying token.
func (m *Manager) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: m.CookieName(), Value: token, Path: m.CookiePath(),
		HttpOnly: true, Secure: m.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// clearCookie tells the browser to drop its session cookie.
func (m *Manager) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: m.CookieName(), Value: "", Path: m.CookiePath(), MaxAge: -1, HttpOnly: true, Secure: m.Secure,
		SameSite: http.SameSiteLaxMode})
}

// replace deletes the session with ID old, which s, stored already,
// replaces in its browser. If s continues it (New found it to be the same
// person's), it ends for nobody and the clients it gained since New are
// added to s; otherwise it ends, and Ended is told if it was live.
//
// A client that cannot be added to s would never hear that the line of
// sessions ended (Back-Channel Logout): then the old session ends as
// another person's would, recorded and told, so the relying parties it
// lists log the person out now rather than miss the logout later.
func (m *Manager) replace(ctx context.Context, old string, s *store.Session) {
	now := m.Now()
	if s.Continues != "" {
		if prev, err := m.Store.GetSession(ctx, old, now); err == nil && !m.carry(ctx, s, prev.Clients) {
			m.endReplaced(ctx, old, now)
			return
		}
		if prev, err := m.Store.DeleteSession(ctx, old); err == nil && prev != nil && !m.carry(ctx, s, prev.Clients) {
			// Tokens issued in the old session between the read above
			// and its deletion, to a client s could not list.
			m.logger().ErrorContext(ctx, "session continued without a client of the one it replaced; back-channel logout will miss it",
				"session", s.ID[:min(len(s.ID), 12)])
		}
		return
	}
	m.endReplaced(ctx, old, now)
}

// carry adds to s each of clients it does not list, and reports whether
// it could add them all.
func (m *Manager) carry(ctx context.Context, s *store.Session, clients []string) bool {
	ok := true
	for _, c := range clients {
		if slices.Contains(s.Clients, c) {
			continue
		}
		if err := m.Store.AddSessionClient(ctx, s.ID, c, nil); err != nil {
			m.logger().WarnContext(ctx, "add a client to the continued session", "err", err)
			ok = false
			continue
		}
		s.Clients = append(s.Clients, c)
	}
	return ok
}

// endReplaced ends the session with ID old, which another replaced in
// its browser, and tells Ended if it was live.
func (m *Manager) endReplaced(ctx context.Context, old string, now time.Time) {
	prev, err := m.Store.EndSession(ctx, old, now)
	if err != nil {
		m.logger().ErrorContext(ctx, "end the session a login replaced", "err", err)
		return
	}
	if prev != nil {
		m.ended(ctx, EndedReplaced, m.live([]*store.Session{prev}, now))
	}
}

// Current returns the request's session, or ErrNoSession.
func (m *Manager) Current(r *http.Request) (*store.Session, error) {
	tok := m.Token(r)
	if tok == "" {
		return nil, ErrNoSession
	}
	now := m.Now()
	s, err := m.Store.GetSession(r.Context(), storeID(tok), now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil || m.IdleTimeout <= 0 {
		return s, err
	}
	if !store.SessionLive(s, now, m.IdleTimeout) {
		return nil, ErrNoSession
	}
	if now.Sub(s.LastUsed) >= m.touchEvery() {
		// A use the store cannot record leaves the session as it was:
		// it still ends at the deadline the store holds.
		switch err := m.Store.TouchSession(r.Context(), s.ID, now); {
		case errors.Is(err, store.ErrNotFound):
			return nil, ErrNoSession
		case err == nil:
			s.LastUsed = now
		}
	}
	return s, nil
}

// touchEvery is how long after the last recorded use Current records
// another: a minute, or a tenth of IdleTimeout if that is shorter, so
// that reading a session seldom writes.
func (m *Manager) touchEvery() time.Duration {
	return min(time.Minute, m.IdleTimeout/10)
}

// EndOthers deletes every session of s's person but s, and returns how
// many it deleted: used when the person's ways to log in change, so that
// whoever holds another of their sessions is logged out. The events that
// events returns for that number, if it is not nil, are appended to the
// audit log in the same write (store.Sessions.EndPersonSessions). If s
// has ended since it was read, nothing ends and the error is
// store.ErrNotFound.
func (m *Manager) EndOthers(ctx context.Context, s *store.Session, events func(n int) []*store.AuditEvent) (int, error) {
	return m.endOthers(ctx, s, EndedWaysInChanged, events)
}

// EndElsewhere is EndOthers when the person asked for it ("Log out
// everywhere else"), not a change to their ways in: the same sessions
// end, and Ended is told why.
func (m *Manager) EndElsewhere(ctx context.Context, s *store.Session, events func(n int) []*store.AuditEvent) (int, error) {
	return m.endOthers(ctx, s, EndedElsewhere, events)
}

func (m *Manager) endOthers(ctx context.Context, s *store.Session, why string, events func(n int) []*store.AuditEvent) (int, error) {
	now := m.Now()
	ended, err := m.Store.EndPersonSessions(ctx, s.PersonID, s.ID, now, events)
	if err != nil {
		return 0, err
	}
	m.ended(ctx, why, m.live(ended, now))
	return len(ended), nil
}

// EndOthersBy is EndOthers for a store write of its own that ends the
// person's other sessions with a change to their ways in
// (store.Persons.LinkIdentifiers): end gets the time to end them at and
// returns the sessions it ended, which are told of as EndOthers tells of
// them.
func (m *Manager) EndOthersBy(ctx context.Context, end func(now time.Time) ([]*store.Session, error)) (int, error) {
	now := m.Now()
	ended, err := end(now)
	if err != nil {
		return 0, err
	}
	m.ended(ctx, EndedWaysInChanged, m.live(ended, now))
	return len(ended), nil
}

// End deletes the request's session, if any, and clears the cookie. It
// returns the session as it ended, or nil if the request carried none
// (or it ended meanwhile); an error means the store could not be read or
// written, and the session may still be live.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) (*store.Session, error) {
	s, err := m.Current(r)
	m.clearCookie(w)
	if errors.Is(err, ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("end session: %w", err)
	}
	ended, err := m.Store.EndSession(r.Context(), s.ID, m.Now())
	if err != nil {
		return nil, err
	}
	if ended == nil {
		// Ended meanwhile, by whoever was told.
		return nil, nil
	}
	m.ended(r.Context(), EndedLogout, []*store.Session{ended})
	return ended, nil
}
