package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

func newManager(t testing.TB) (*session.Manager, *time.Time, store.Sessions) {
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
	// Secure: the __Host- name, which browsers take only from this host
	// over HTTPS; and no expiry, so that closing the browser ends it.
	if c.Name != session.HostCookieName || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode ||
		c.Path != "/" || c.Domain != "" || !c.Expires.IsZero() || c.MaxAge != 0 {
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
	if s, err := m.End(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)); s != nil || err != nil {
		t.Errorf("End without a session = %+v, %v, want nil, nil", s, err)
	}
}

// TestEndStoreFails: a session the store could not delete is reported
// as an error, not as no session, so a logout does not claim success.
func TestEndStoreFails(t *testing.T) {
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	m := &session.Manager{Store: db, Lifetime: time.Hour, Secure: true, Now: func() time.Time { return now }}
	w := httptest.NewRecorder()
	if err := m.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1", AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pools()["write"].Exec(`CREATE TRIGGER no_delete BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	r := withCookies(w)
	if s, err := m.End(httptest.NewRecorder(), r); err == nil {
		t.Fatalf("End = %+v, nil; want the store's error", s)
	}
	if _, err := m.Current(r); err != nil {
		t.Errorf("session gone after a failed End: %v", err)
	}
}

// endings records what a Manager's Ended is told.
type endings []string

func (e *endings) record(_ context.Context, why string, ended []*store.Session) {
	for _, s := range ended {
		*e = append(*e, why+" "+s.PersonID+" "+strings.Join(s.Clients, ","))
	}
}

// start logs person in, in the browser whose last response was prev (nil:
// a fresh one), with the session listing clients from the start.
func start(t testing.TB, m *session.Manager, prev *httptest.ResponseRecorder, person string, clients ...string) (*httptest.ResponseRecorder, *store.Session) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if prev != nil {
		r = withCookies(prev)
	}
	w := httptest.NewRecorder()
	s := &store.Session{PersonID: person, Provider: "passkey", Level: "substantial", AuthTime: m.Now(), Clients: clients}
	if err := m.Start(context.Background(), w, r, s); err != nil {
		t.Fatal(err)
	}
	return w, s
}

// TestSameLoginContinues: the same person logging in again in the same
// browser (a step-up) gets a new cookie and a new stored session that
// continues the old one: the same root, so the same sid, and the old
// session's clients, including one added between New and Save. Nobody
// is told a session ended.
func TestSameLoginContinues(t *testing.T) {
	m, now, db := newManager(t)
	var told endings
	m.Ended = told.record
	ctx := context.Background()
	w1, s1 := start(t, m, nil, "p1", "bank")
	if s1.Continues != "" || s1.Root() != s1.ID {
		t.Fatalf("a first session continues %q", s1.Continues)
	}

	// The step-up: New sees the old session; the tax office gets tokens
	// in it before Save.
	r := withCookies(w1)
	s2 := &store.Session{PersonID: "p1", Provider: "bankid", Level: "high", AuthTime: *now, Clients: []string{"health"}}
	n, err := m.New(r, s2)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddSessionClient(ctx, s1.ID, "tax", nil); err != nil {
		t.Fatal(err)
	}
	w2 := httptest.NewRecorder()
	if err := m.Save(ctx, w2, r, n); err != nil {
		t.Fatal(err)
	}
	if s2.ID == s1.ID || w2.Result().Cookies()[0].Value == w1.Result().Cookies()[0].Value {
		t.Fatal("a login kept the old session's cookie")
	}
	got, err := m.Current(withCookies(w2))
	if err != nil {
		t.Fatal(err)
	}
	if got.Continues != s1.ID || got.Root() != s1.ID || got.Level != "high" {
		t.Errorf("new session continues %q (root %q) at %s; want %q at high", got.Continues, got.Root(), got.Level, s1.ID)
	}
	if want := "bank,health,tax"; strings.Join(got.Clients, ",") != want {
		t.Errorf("clients %v, want %s", got.Clients, want)
	}
	if _, err := m.Current(withCookies(w1)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("the old cookie still works: %v", err)
	}

	// A third login continues the same line: the root stays the first.
	w3, s3 := start(t, m, w2, "p1")
	if s3.Continues != s1.ID {
		t.Errorf("third session continues %q, want the first %q", s3.Continues, s1.ID)
	}
	if len(told) != 0 {
		t.Errorf("told %v; a continued session has not ended", told)
	}

	// Logging out ends the line, once.
	ended, err := m.End(httptest.NewRecorder(), withCookies(w3))
	if err != nil || ended.Root() != s1.ID {
		t.Fatalf("End = %+v, %v", ended, err)
	}
	if want := []string{"logout p1 bank,health,tax"}; !slices.Equal(told, want) {
		t.Errorf("told %v, want %v", told, want)
	}
}

// TestOtherPersonsLoginEndsSession: another person logging in in the same
// browser ends the session there, and Ended hears of it; an expired one
// had ended already and is not reported.
func TestOtherPersonsLoginEndsSession(t *testing.T) {
	m, now, _ := newManager(t)
	var told endings
	m.Ended = told.record
	w1, _ := start(t, m, nil, "p1", "bank")
	w2, s2 := start(t, m, w1, "p2", "tax")
	if s2.Continues != "" || strings.Join(s2.Clients, ",") != "tax" {
		t.Errorf("another person's session continues %q with clients %v", s2.Continues, s2.Clients)
	}
	if want := []string{"replaced p1 bank"}; !slices.Equal(told, want) {
		t.Errorf("told %v, want %v", told, want)
	}
	told = nil
	*now = now.Add(2 * time.Hour)
	start(t, m, w2, "p1")
	if len(told) != 0 {
		t.Errorf("told %v of a session that had expired", told)
	}
}

// TestEndOthersTellsEnded: ending a person's other sessions reports each
// of them, and not the one kept or another person's; EndElsewhere, the
// person's own "Log out everywhere else", ends the same ones, told why.
func TestEndOthersTellsEnded(t *testing.T) {
	for _, tt := range []struct {
		why string
		end func(*session.Manager) ender
	}{
		{session.EndedWaysInChanged, func(m *session.Manager) ender { return m.EndOthers }},
		{session.EndedElsewhere, func(m *session.Manager) ender { return m.EndElsewhere }},
	} {
		t.Run(tt.why, func(t *testing.T) {
			m, now, db := newManager(t)
			var told endings
			m.Ended = told.record
			// One session of p1's from two hours ago, expired an hour since.
			*now = now.Add(-2 * time.Hour)
			start(t, m, nil, "p1", "archive")
			*now = now.Add(2 * time.Hour)
			_, keep := start(t, m, nil, "p1", "bank")
			start(t, m, nil, "p1", "tax")
			start(t, m, nil, "p1", "health")
			start(t, m, nil, "p2", "bank")
			n, err := tt.end(m)(context.Background(), keep, nil)
			if err != nil || n != 3 {
				t.Fatalf("ended %d, %v; want 3, the expired one included", n, err)
			}
			slices.Sort(told)
			if want := []string{tt.why + " p1 health", tt.why + " p1 tax"}; !slices.Equal(told, want) {
				t.Errorf("told %v, want %v: the expired session ends for nobody", told, want)
			}
			// The store recorded the ends of the same two, for whoever settles
			// them.
			pending, err := db.(store.SessionEnds).PendingSessionEnds(context.Background(), now.Add(time.Second), 10)
			if err != nil || len(pending) != 2 {
				t.Errorf("pending ends %d, %v; want the two live sessions", len(pending), err)
			}
		})
	}
}

// ender ends a person's other sessions (Manager.EndOthers,
// Manager.EndElsewhere).
type ender = func(context.Context, *store.Session, func(int) []*store.AuditEvent) (int, error)

// TestEndTellsOnce: a second logout of one session (another tab) finds it
// ended, and Ended hears of it once.
func TestEndTellsOnce(t *testing.T) {
	m, _, _ := newManager(t)
	var told endings
	m.Ended = told.record
	w, _ := start(t, m, nil, "p1", "bank")
	r := withCookies(w)
	if _, err := m.End(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	if s, err := m.End(httptest.NewRecorder(), r); s != nil || err != nil {
		t.Errorf("second End = %+v, %v, want nil, nil", s, err)
	}
	if len(told) != 1 {
		t.Errorf("told %v, want one logout", told)
	}
}

// Over plain HTTP (a node on http://localhost) the cookie cannot be
// Secure, so it cannot carry the __Host- prefix either.
func TestCookieNameWithoutSecure(t *testing.T) {
	m, now, _ := newManager(t)
	m.Secure = false
	w := httptest.NewRecorder()
	if err := m.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1", Level: "low", AuthTime: *now}); err != nil {
		t.Fatal(err)
	}
	if c := w.Result().Cookies()[0]; c.Name != session.CookieName || c.Secure {
		t.Errorf("cookie %+v", c)
	}
	if _, err := m.Current(withCookies(w)); err != nil {
		t.Errorf("Current: %v", err)
	}
	// A cookie under the other name is not this manager's.
	m.Secure = true
	if _, err := m.Current(withCookies(w)); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("Current with the plain name when Secure: %v, want ErrNoSession", err)
	}
}

// TestCookieUnderPath: a node served under a path sets the session
// cookie with that Path, and, since a __Host- cookie must have Path=/
// (RFC 6265bis §4.1.3.2), under the __Secure- name; it is read back
// under that name, and ended with the same Path.
func TestCookieUnderPath(t *testing.T) {
	m, now, _ := newManager(t)
	m.Path = "/eid"
	w := httptest.NewRecorder()
	if err := m.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1", Level: "low", AuthTime: *now}); err != nil {
		t.Fatal(err)
	}
	c := w.Result().Cookies()[0]
	if c.Name != session.SecureCookieName || c.Path != "/eid" || !c.Secure || !c.HttpOnly || c.Domain != "" {
		t.Errorf("cookie %+v", c)
	}
	if _, err := m.Current(withCookies(w)); err != nil {
		t.Errorf("Current: %v", err)
	}
	end := httptest.NewRecorder()
	if _, err := m.End(end, withCookies(w)); err != nil {
		t.Fatal(err)
	}
	if c := end.Result().Cookies(); len(c) != 1 || c[0].Name != session.SecureCookieName || c[0].Path != "/eid" || c[0].MaxAge >= 0 {
		t.Errorf("ending cookie %+v", c)
	}
}

func TestSecureName(t *testing.T) {
	for _, c := range []struct {
		path   string
		secure bool
		want   string
	}{
		{"/", true, "__Host-varde_form"},
		{"/eid", true, "__Secure-varde_form"},
		{"/", false, "varde_form"},
		{"/eid", false, "varde_form"},
	} {
		if got := session.SecureName("varde_form", c.path, c.secure); got != c.want {
			t.Errorf("SecureName(%q, %v) = %q, want %q", c.path, c.secure, got, c.want)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	m, now, db := newManager(t)
	m.Lifetime, m.IdleTimeout = 8*time.Hour, 30*time.Minute
	var told []*store.Session
	m.Ended = func(_ context.Context, _ string, ended []*store.Session) { told = append(told, ended...) }
	ctx := context.Background()
	w := httptest.NewRecorder()
	if err := m.Start(ctx, w, httptest.NewRequest(http.MethodGet, "/", nil), &store.Session{PersonID: "p1", Clients: []string{"bank"}}); err != nil {
		t.Fatal(err)
	}
	r := withCookies(w)
	start := *now
	stored := func() time.Time {
		t.Helper()
		s, err := m.Current(r)
		if err != nil {
			t.Fatalf("Current at %v: %v", now.Sub(start), err)
		}
		got, err := db.GetSession(ctx, s.ID, *now)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsed
	}
	// Each use slides the deadline: 29 minutes, twice, is still one session.
	*now = start.Add(29 * time.Minute)
	if got := stored(); !got.Equal(*now) {
		t.Errorf("after a use 29m in, LastUsed = %v, want %v", got, *now)
	}
	*now = start.Add(58 * time.Minute)
	stored()
	// A use within a minute of the last recorded one writes nothing.
	*now = start.Add(58*time.Minute + 30*time.Second)
	if got := stored(); !got.Equal(start.Add(58 * time.Minute)) {
		t.Errorf("after a use 30s after the last, LastUsed = %v, want it unchanged at 58m", got.Sub(start))
	}
	// Unused for the idle timeout since the last recorded use: gone
	// for Current, and for End, which ends it for nobody.
	*now = start.Add(88 * time.Minute)
	if _, err := m.Current(r); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("Current after 30m unused = %v, want ErrNoSession", err)
	}
	if ended, err := m.End(httptest.NewRecorder(), r); ended != nil || err != nil || len(told) != 0 {
		t.Errorf("End of an idle session = %v, %v; Ended told of %d", ended, err, len(told))
	}
}

// TestIdleSessionEndLeftToHousekeeping: a session left unused for the
// idle timeout had ended already, as an expired one had: deleted later,
// by another person's login in the same browser or by EndOthers, Ended
// is not told of it, but the store records its end, from when it ran
// out, for housekeeping to tell the relying parties, if a client in it
// registered a back-channel logout URI (ADR 60).
func TestIdleSessionEndLeftToHousekeeping(t *testing.T) {
	m, now, db := newManager(t)
	m.Lifetime, m.IdleTimeout = 8*time.Hour, 30*time.Minute
	db.SetSessionIdleTimeout(m.IdleTimeout)
	var told endings
	m.Ended = told.record
	ctx := context.Background()
	for id, uri := range map[string]string{"bank": "https://bank.example/logout", "health": ""} {
		if err := db.(store.Clients).AddClient(ctx, &store.Client{ID: id, BackchannelLogoutURI: uri, CreatedAt: *now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	w1, _ := start(t, m, nil, "p1", "bank")
	_, keep := start(t, m, nil, "p2", "tax")
	start(t, m, nil, "p2", "health")
	*now = now.Add(30 * time.Minute)
	start(t, m, w1, "p3", "shop")
	if n, err := m.EndOthers(ctx, keep, nil); err != nil || n != 1 {
		t.Fatalf("EndOthers = %d, %v; want 1", n, err)
	}
	if len(told) != 0 {
		t.Errorf("told %v of sessions unused for the idle timeout", told)
	}
	pending, err := db.(store.SessionEnds).PendingSessionEnds(ctx, now.Add(time.Second), 10)
	if err != nil || len(pending) != 1 || pending[0].PersonID != "p1" || pending[0].EndReason != store.EndIdle {
		t.Fatalf("pending ends %+v, %v; want p1's, idle", pending, err)
	}
}

// TestSaveFailsKeepsOldSession: a new session the store refuses (here an
// ID taken already) leaves the browser's session live and untold of, so
// a failed login does not log the person out.
func TestSaveFailsKeepsOldSession(t *testing.T) {
	m, _, _ := newManager(t)
	var told endings
	m.Ended = told.record
	w1, _ := start(t, m, nil, "p1", "bank")
	_, other := start(t, m, nil, "p3", "tax")
	for _, person := range []string{"p1", "p2"} {
		n, err := m.New(withCookies(w1), &store.Session{PersonID: person, Provider: "passkey", Level: "substantial", AuthTime: m.Now()})
		if err != nil {
			t.Fatal(err)
		}
		n.Session.ID = other.ID
		if err := m.Save(context.Background(), httptest.NewRecorder(), withCookies(w1), n); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Save of %s's session under a taken ID = %v, want ErrConflict", person, err)
		}
		if s, err := m.Current(withCookies(w1)); err != nil || s.PersonID != "p1" || strings.Join(s.Clients, ",") != "bank" {
			t.Errorf("after %s's failed Save the browser's session is %v, %v; want p1's, with bank", person, s, err)
		}
	}
	if len(told) != 0 {
		t.Errorf("told %v after failed Saves", told)
	}
}

// TestContinueThatCannotListAClientEndsTheOld: a step-up whose new
// session cannot list a client that got tokens in the old one since New
// (here the store refuses to change a session's clients) would leave
// that client without a back-channel logout when the line ends. The old
// session ends instead, recorded and told, with every client it lists;
// the person stays logged in at Varde in the new one.
func TestContinueThatCannotListAClientEndsTheOld(t *testing.T) {
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	m := &session.Manager{Store: db, Lifetime: time.Hour, Secure: true, Now: func() time.Time { return now }}
	var told endings
	m.Ended = told.record
	ctx := context.Background()
	w1, s1 := start(t, m, nil, "p1", "bank")
	r := withCookies(w1)
	n, err := m.New(r, &store.Session{PersonID: "p1", Provider: "bankid", Level: "high", AuthTime: now, Clients: []string{"health"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddSessionClient(ctx, s1.ID, "tax", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pools()["write"].Exec(`CREATE TRIGGER no_clients BEFORE UPDATE OF clients ON sessions BEGIN SELECT RAISE(ABORT, 'disk says no'); END`); err != nil {
		t.Fatal(err)
	}
	w2 := httptest.NewRecorder()
	if err := m.Save(ctx, w2, r, n); err != nil {
		t.Fatal(err)
	}
	if want := []string{"replaced p1 bank,tax"}; !slices.Equal(told, want) {
		t.Errorf("told %v, want %v", told, want)
	}
	pending, err := db.PendingSessionEnds(ctx, now.Add(time.Minute), 10)
	if err != nil || len(pending) != 1 || pending[0].ID != s1.ID {
		t.Errorf("pending ends %v, %v; want the old session's", pending, err)
	}
	got, err := m.Current(withCookies(w2))
	if err != nil || got.Continues != s1.ID || strings.Join(got.Clients, ",") != "bank,health" {
		t.Errorf("new session %+v, %v; want it continuing %s with bank,health", got, err, s1.ID)
	}
}

// noAnswer is the real store whose session writes get no answer, as a
// COMMIT whose connection dropped: stored says whether it went through.
type noAnswer struct {
	store.Sessions
	stored bool
}

func (s noAnswer) CreateSession(ctx context.Context, ss *store.Session, events ...*store.AuditEvent) error {
	if s.stored {
		if err := s.Sessions.CreateSession(ctx, ss, events...); err != nil {
			return err
		}
	}
	return fmt.Errorf("create session: %w", store.ErrOutcomeUnknown)
}

// TestSaveOutcomeUnknownEndsOldSession: a login whose session write gets
// no answer gives the browser the new cookie, so the session it carried
// is out of its reach either way. That session ends, recorded and told,
// whether the new one was stored or not, and whoever's it was: it is
// not left live for whoever else holds its cookie, and its relying
// parties hear of its end. The browser is logged in as the new person
// or as nobody, never as the old one.
func TestSaveOutcomeUnknownEndsOldSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		person string
		stored bool
	}{
		{"another person's, stored", "p2", true},
		{"another person's, not stored", "p2", false},
		{"the same person's, stored", "p1", true},
		{"the same person's, not stored", "p1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, now, db := newManager(t)
			var told endings
			m.Ended = told.record
			ctx := context.Background()
			w1, s1 := start(t, m, nil, "p1", "bank")
			r := withCookies(w1)
			n, err := m.New(r, &store.Session{PersonID: tc.person, Provider: "bankid", Level: "high", AuthTime: *now})
			if err != nil {
				t.Fatal(err)
			}
			m.Store = noAnswer{Sessions: db, stored: tc.stored}
			w2 := httptest.NewRecorder()
			if err := m.Save(ctx, w2, r, n); !errors.Is(err, store.ErrOutcomeUnknown) {
				t.Fatalf("Save = %v, want ErrOutcomeUnknown", err)
			}
			m.Store = db
			if _, err := db.GetSession(ctx, s1.ID, *now); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the replaced session is still stored: %v", err)
			}
			// A continuation that was stored carries the old session's
			// clients on, and nobody is told; every other old session
			// ends with its clients told.
			want := []string{"replaced p1 bank"}
			continued := tc.stored && tc.person == "p1"
			if continued {
				want = nil
			}
			if !slices.Equal(told, want) {
				t.Errorf("told %v, want %v", told, want)
			}
			got, err := m.Current(withCookies(w2))
			if continued && (err != nil || strings.Join(got.Clients, ",") != "bank") {
				t.Errorf("continued session %+v, %v; want it listing bank", got, err)
			}
			switch {
			case tc.stored && (err != nil || got.PersonID != tc.person):
				t.Errorf("browser's session %+v, %v; want %s's", got, err, tc.person)
			case !tc.stored && !errors.Is(err, session.ErrNoSession):
				t.Errorf("browser's session %+v, %v; want none", got, err)
			}
		})
	}
}

// slowEnds is the real store whose settling of an ended session answers
// only after delay, as a store under load does.
type slowEnds struct {
	store.SessionEnds
	delay time.Duration
}

func (s slowEnds) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.SessionEnds.SettleSessionEnd(ctx, id, ds)
}

// TestLogoutAnswersWhileStoreIsSlow: a logout answers within EndedWait
// even when the store takes longer to settle the session's end, and the
// end is settled all the same after the request is gone.
func TestLogoutAnswersWhileStoreIsSlow(t *testing.T) {
	m, _, db := newManager(t)
	ends := slowEnds{SessionEnds: db.(store.SessionEnds), delay: 3 * time.Second}
	settled := make(chan error, 1)
	m.Ended = func(ctx context.Context, _ string, ended []*store.Session) {
		for _, s := range ended {
			_, err := ends.SettleSessionEnd(ctx, s.ID, nil)
			settled <- err
		}
	}
	w, _ := start(t, m, nil, "p1", "bank")
	ctx, cancel := context.WithCancel(context.Background())
	r := withCookies(w).WithContext(ctx)
	began := time.Now()
	if _, err := m.End(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	cancel() // the request is over
	if took > 1500*time.Millisecond {
		t.Errorf("logout took %v with a slow store, want about half a second", took)
	}
	select {
	case err := <-settled:
		if err != nil {
			t.Fatalf("settling the end after the request was gone: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the end was never settled")
	}
	if left, err := db.(store.SessionEnds).PendingSessionEnds(context.Background(), time.Now().Add(time.Hour), 10); err != nil || len(left) != 0 {
		t.Errorf("pending ends %v, %v, want none", left, err)
	}
}

// TestEndedCapped: past MaxEnded tellings under way, a request that ends
// a session calls Ended no more and answers at once; the end it leaves
// is pending in the store, for housekeeping to settle.
func TestEndedCapped(t *testing.T) {
	m, _, db := newManager(t)
	m.MaxEnded = 1
	release := make(chan struct{})
	defer close(release)
	calls := make(chan string, 4)
	m.Ended = func(_ context.Context, _ string, ended []*store.Session) {
		calls <- ended[0].PersonID
		<-release
	}
	w1, _ := start(t, m, nil, "p1", "bank")
	w2, s2 := start(t, m, nil, "p2", "bank")
	if _, err := m.End(httptest.NewRecorder(), withCookies(w1)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := m.End(httptest.NewRecorder(), withCookies(w2)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took >= session.EndedWait {
		t.Errorf("the second logout took %v, want it to answer without waiting", took)
	}
	if got := <-calls; got != "p1" {
		t.Fatalf("Ended told of %s, want p1", got)
	}
	select {
	case got := <-calls:
		t.Fatalf("Ended told of %s past MaxEnded", got)
	case <-time.After(100 * time.Millisecond):
	}
	left, err := db.(store.SessionEnds).PendingSessionEnds(context.Background(), time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	pending := false
	for _, e := range left {
		pending = pending || e.ID == s2.ID
	}
	if !pending {
		t.Errorf("pending ends %+v, want the untold end of %s", left, s2.ID)
	}
}
