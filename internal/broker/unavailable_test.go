package broker_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// holdStore holds st's SQLite file from another connection, as another
// process could, until the returned func lets it go: its write lock, so
// that writes meet SQLITE_BUSY after the busy timeout, or with reads
// also the file's exclusive lock, which st's reads meet too (st keeps
// no idle connections from then on, so each read opens one).
func holdStore(t *testing.T, st *sqlstore.DB, reads bool) (release func()) {
	t.Helper()
	ctx := context.Background()
	var path string
	if err := st.Pools()["read"].QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
		t.Fatal(err)
	}
	lock := []string{"BEGIN IMMEDIATE"}
	if reads {
		for _, p := range st.Pools() {
			p.SetMaxIdleConns(0)
		}
		lock = []string{"PRAGMA locking_mode=EXCLUSIVE", "BEGIN EXCLUSIVE", "SELECT count(*) FROM clients"}
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		conn.Close()
		if err := other.Close(); err != nil {
			t.Error(err)
		}
	}
}

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
	release := holdStore(t, f.st.(*sqlstore.DB), true)
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
	release := holdStore(t, f.st.(*sqlstore.DB), false)
	w := startLink(t, f, b, "weak")
	release()
	if body := w.Body.String(); !unavailablePage(w.Code, w.Header(), body) || !strings.Contains(body, `href="/account"`) {
		t.Errorf("link with the store locked: %d, Retry-After %q: %.600s", w.Code, w.Header().Get("Retry-After"), body)
	}
	linkAttempt(t, f, b, "weak")
}
