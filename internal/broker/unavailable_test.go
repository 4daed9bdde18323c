package broker_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/session"
	"github.com/varde-eid/varde/internal/sqlitetest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// unavailablePage reports whether w is the "we can't reach our records"
// page: 503 with Retry-After, not the page for a failure of Varde's.
func unavailablePage(code int, h http.Header, body string) bool {
	return code == http.StatusServiceUnavailable && h.Get("Retry-After") == "30" &&
		strings.Contains(body, "reach our records") && strings.Contains(body, "Nothing was lost") &&
		!strings.Contains(body, "went wrong")
}

// While the store cannot be read, the login choice and its start say
// to try again in a minute (503), not that Varde failed; once it
// answers, the same pages work.
func TestLoginPageStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	f.request(t, "r1")
	release := sqlitetest.LockAll(t, f.st.(*sqlstore.DB))
	for _, path := range []string{"/login?req=r2", "/login/start?req=r2&provider=strong"} {
		w := f.get(path)
		if !unavailablePage(w.Code, w.Header(), w.Body.String()) {
			t.Errorf("%s with the store locked: %d, Retry-After %q: %.300s", path, w.Code, w.Header().Get("Retry-After"), w.Body.String())
		}
	}
	release()
	if w := f.get("/login?req=r1"); w.Code != http.StatusOK {
		t.Errorf("login page once the store answers: %d", w.Code)
	}
}

// A link that cannot be stored because the store is locked says to try
// again in a minute, with the way back to the account page, and keeps
// nothing: once the store answers, the same link starts.
func TestLinkStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	release := sqlitetest.LockWrites(t, f.st.(*sqlstore.DB))
	w := startLink(t, f, b, "weak")
	release()
	if body := w.Body.String(); !unavailablePage(w.Code, w.Header(), body) || !strings.Contains(body, `href="/account"`) {
		t.Errorf("link with the store locked: %d, Retry-After %q: %.600s", w.Code, w.Header().Get("Retry-After"), body)
	}
	linkAttempt(t, f, b, "weak")
}

// A link whose session cannot be read when the provider's answer comes
// back, because the store is locked, fails as the store being
// unavailable (503, try again), not as a link refused because the
// session changed, and is not audited as one. The session is read
// through a store with nothing in memory, as on another node, and the
// link attempt is held in the flow state in memory, which still
// answers.
func TestLinkFinishSessionStoreUnavailable(t *testing.T) {
	f := newFixture(t)
	b := loggedIn(t, f, "p1", assurance.High)
	f.b.Challenges = flowmem.New(flowmem.Options{Now: func() time.Time { return f.now }})
	attempt := linkAttempt(t, f, b, "weak")
	var path string
	db := f.st.(*sqlstore.DB)
	must(t, db.Pools()["read"].QueryRowContext(t.Context(), "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path))
	other, err := sqlstore.OpenSQLite(t.Context(), path)
	must(t, err)
	t.Cleanup(func() { other.Close() })
	f.b.Sessions = &session.Manager{Store: other, Lifetime: time.Hour, Now: func() time.Time { return f.now }}
	// The lock keeps out only a store holding no connection to the file.
	for _, p := range other.Pools() {
		p.SetMaxIdleConns(0)
	}
	// The events go to a log of their own, which the lock leaves open.
	events, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	must(t, err)
	t.Cleanup(func() { events.Close() })
	f.b.Audit = &audit.Log{Store: events, Log: f.b.Log, Now: func() time.Time { return f.now }}
	release := sqlitetest.LockAll(t, db)
	res := provider.Result{Provider: "weak", Identifiers: []store.Identifier{dnr}, Level: assurance.Substantial}
	next, err := f.b.Finish(httptest.NewRecorder(), b.req(http.MethodGet, "/upstream/callback", nil), attempt, res)
	release()
	if !store.Unavailable(err) || next != "" {
		t.Fatalf("link finished with the session's store locked: %q, %v; want store.ErrUnavailable", next, err)
	}
	evs, err := events.ListAudit(t.Context(), 0, 100)
	must(t, err)
	var reasons []string
	for _, ev := range evs {
		if ev.Type == "link" {
			reasons = append(reasons, ev.Reason)
		}
	}
	// The outage is audited as the store's, not as a defect, nor as a
	// session changed.
	if !slices.Equal(reasons, []string{provider.ReasonStoreUnavailable}) {
		t.Errorf("link events' reasons with the session's store locked: %q, want [%s]", reasons, provider.ReasonStoreUnavailable)
	}
}
