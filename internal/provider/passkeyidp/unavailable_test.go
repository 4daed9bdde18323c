package passkeyidp_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/sqlitetest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// lockStore holds h's SQLite file's write lock from another connection,
// as another process would, until the returned func releases it.
func lockStore(t *testing.T, h *harness) (release func()) {
	t.Helper()
	return sqlitetest.LockWrites(t, h.db)
}

// While another process holds the store's lock beyond the busy timeout,
// a passkey login's begin answers 503 "unavailable" with Retry-After,
// and a recovery code's page the plain "we can't reach our records"
// page with 503, not the page for a failure of ours; once the lock is
// let go, logins begin again.
func TestStoreLockedIsUnavailable(t *testing.T) {
	h := newHarness(t, true)
	e := h.browser("en").enrol(newDevice(false), "a", "fnr")
	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=r1").body, "csrf")

	release := lockStore(t, h)
	r, m := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, "")
	if r.status != http.StatusServiceUnavailable || m["error"] != "unavailable" || !strings.Contains(m["message"].(string), "reach our records") ||
		r.header.Get("Retry-After") != "30" {
		t.Errorf("begin with the store locked: %d %v, Retry-After %q", r.status, m, r.header.Get("Retry-After"))
	}
	r = b.form("/passkey/recover", url.Values{"attempt": {"r1"}, "csrf": {csrf}, "code": {e.codes[0]}})
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "reach our records") || r.header.Get("Retry-After") != "30" {
		t.Errorf("recovery with the store locked: %d, Retry-After %q: %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	release()

	if r, m := b.json("/passkey/login/begin", map[string]string{"attempt": "a"}, ""); r.status != http.StatusOK {
		t.Errorf("begin once the lock is let go: %d %v", r.status, m)
	}
}

// A passkey login whose finish meets the store locked beyond the busy
// timeout answers 503 "unavailable" with Retry-After, not 500
// "internal": nothing was taken, and the same response finishes the
// login once the lock is let go.
func TestStoreLockedAtLoginFinishIsUnavailable(t *testing.T) {
	h := newHarness(t, true)
	d := newDevice(false)
	h.browser("en").enrol(d, "a", "fnr")
	b := h.browser("en")
	r, begun := b.json("/passkey/login/begin", map[string]string{"attempt": "a2"}, "")
	if r.status != http.StatusOK {
		t.Fatalf("login begin: %d %v", r.status, begun)
	}
	id, body := h.get(t, h.rp, d, begun)
	finish := "/passkey/login/finish?ceremony=" + url.QueryEscape(id)

	// The events go to a log of their own, which the lock leaves open.
	events, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	h.p.Audit = &audit.Log{Store: events, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return h.now }}
	release := lockStore(t, h)
	r, m := b.json(finish, body, "")
	if r.status != http.StatusServiceUnavailable || m["error"] != "unavailable" || !strings.Contains(m["message"].(string), "reach our records") ||
		r.header.Get("Retry-After") != "30" {
		t.Errorf("finish with the store locked: %d %v, Retry-After %q", r.status, m, r.header.Get("Retry-After"))
	}
	release()
	// The outage is audited as the store's, not as a defect.
	evs, err := events.ListAudit(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || !hasEvent(evs, "authentication", store.ResultFailure, provider.ReasonStoreUnavailable) {
		for _, e := range evs {
			t.Logf("event %s %s %s", e.Type, e.Result, e.Reason)
		}
		t.Errorf("%d events of the finish with the store locked, want one authentication failure %s", len(evs), provider.ReasonStoreUnavailable)
	}

	if r, m := b.json(finish, body, ""); r.status != http.StatusOK || h.fin.last(t).Attempt != "a2" {
		t.Errorf("finish once the lock is let go: %d %v", r.status, m)
	}
}
