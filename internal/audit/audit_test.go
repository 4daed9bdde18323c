package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

var t0 = time.Date(2026, 11, 21, 9, 30, 0, 123456789, time.UTC)

// openStore opens a fresh SQLite store in a temporary directory.
func openStore(t *testing.T) (*sqlstore.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "varde.db")
	db, err := sqlstore.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func newLog(s store.AuditLog, logs *bytes.Buffer) *Log {
	n := 0
	return &Log{
		Store: s,
		Log:   slog.New(slog.NewTextHandler(logs, nil)),
		Now: func() time.Time {
			n++
			return t0.Add(time.Duration(n) * time.Second)
		},
	}
}

// appendN appends n events of different shapes.
func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		e := &store.AuditEvent{
			Type: "authentication", PersonID: "p-" + string(rune('a'+i%26)), ClientID: "bank",
			Provider: "passkey", Level: "substantial", Result: store.ResultSuccess,
		}
		if i%3 == 1 {
			e.Result, e.Reason = store.ResultFailure, "user_cancelled"
			e.Details = map[string]string{"attempt": "2", "provider_status": "down"}
		}
		if i >= 2 {
			// Kept apart from the hashed event (ADR 38).
			e.Details = map[string]string{"addr": fmt.Sprintf("192.0.2.%d", i+1)}
		}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) || len(e.Hash) == 0 {
			t.Fatalf("event %d: seq %d, hash %x", i, e.Seq, e.Hash)
		}
	}
}

func TestAppendAndVerify(t *testing.T) {
	for _, tc := range []struct {
		events, pageSize int
	}{
		{0, 0}, {1, 0}, {7, 0}, {6, 3}, {7, 3}, {5, 1},
	} {
		db, _ := openStore(t)
		var logs bytes.Buffer
		l := newLog(db, &logs)
		l.pageSize = tc.pageSize
		appendN(t, l, tc.events)
		n, err := l.Verify(context.Background())
		if n != tc.events || err != nil {
			t.Errorf("%d events, page size %d: Verify = %d, %v", tc.events, tc.pageSize, n, err)
		}
	}
}

func TestAppendSetsTime(t *testing.T) {
	db, _ := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	given := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	a := &store.AuditEvent{Type: "x"}
	b := &store.AuditEvent{Type: "y", Time: given}
	for _, e := range []*store.AuditEvent{a, b} {
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ListAudit(context.Background(), 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v, %v", got, err)
	}
	if want := t0.Add(time.Second).Truncate(time.Microsecond); !got[0].Time.Equal(want) || !a.Time.Equal(want) {
		t.Errorf("stamped time %v (stored %v), want %v", a.Time, got[0].Time, want)
	}
	if !got[1].Time.Equal(given) {
		t.Errorf("given time %v became %v", given, got[1].Time)
	}
}

// tamper opens its own connection to the database file while the store
// is open, drops the triggers refusing changes to the audit log and its
// addresses (as anyone with write access to the file could) and runs
// stmts.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range append([]string{
		"DROP TRIGGER IF EXISTS audit_log_no_update",
		"DROP TRIGGER IF EXISTS audit_log_no_delete",
		"DROP TRIGGER IF EXISTS audit_addresses_no_update",
	}, stmts...) {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stmts   []string
		wantSeq int64
		want    string
	}{
		{"reason changed", []string{"UPDATE audit_log SET reason = 'ok' WHERE seq = 3"}, 3, "hash does not match"},
		{"result changed", []string{"UPDATE audit_log SET result = 'success' WHERE seq = 5"}, 5, "hash does not match"},
		{"person changed", []string{"UPDATE audit_log SET person_id = 'p-z' WHERE seq = 1"}, 1, "hash does not match"},
		{"details changed", []string{`UPDATE audit_log SET details = '{"attempt":"1"}' WHERE seq = 2`}, 2, "hash does not match"},
		{"time changed", []string{"UPDATE audit_log SET time = time + 1 WHERE seq = 4"}, 4, "hash does not match"},
		{"hash replaced", []string{"UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 6"}, 6, "hash does not match"},
		{"prev_hash replaced", []string{"UPDATE audit_log SET prev_hash = NULL WHERE seq = 2"}, 2, "prev_hash"},
		{"middle row deleted", []string{"DELETE FROM audit_log WHERE seq = 3"}, 3, "missing; the next event is seq 4"},
		{"first row deleted", []string{"DELETE FROM audit_log WHERE seq = 1"}, 1, "missing; the next event is seq 2"},
		{"row renumbered", []string{"UPDATE audit_log SET seq = 100 WHERE seq = 4"}, 4, "missing"},
		{"kept address changed", []string{"UPDATE audit_addresses SET addr = '198.51.100.1' WHERE event_seq = 4"}, 4, "address kept does not match"},
		{"address digest changed", []string{"UPDATE audit_log SET addr_digest = zeroblob(32) WHERE seq = 5"}, 5, "hash does not match"},
		{"address digest removed", []string{"UPDATE audit_log SET addr_digest = NULL WHERE seq = 6"}, 6, "hash does not match"},
		{"address moved into the details", []string{
			"DELETE FROM audit_addresses WHERE event_seq = 3",
			`UPDATE audit_log SET details = json_set(details, '$.addr', '192.0.2.3') WHERE seq = 3`,
		}, 3, "address kept does not match"},
		{"two rows swapped", []string{
			"UPDATE audit_log SET seq = -2 WHERE seq = 2",
			"UPDATE audit_log SET seq = 2 WHERE seq = 3",
			"UPDATE audit_log SET seq = 3 WHERE seq = -2",
		}, 2, "prev_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openStore(t)
			var logs bytes.Buffer
			l := newLog(db, &logs)
			l.pageSize = 2 // so breaks fall on and between page edges
			appendN(t, l, 7)
			if n, err := l.Verify(context.Background()); n != 7 || err != nil {
				t.Fatalf("before tampering: %d, %v", n, err)
			}
			tamper(t, path, tc.stmts...)
			n, err := l.Verify(context.Background())
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Seq != tc.wantSeq || !strings.Contains(ce.Problem, tc.want) {
				t.Fatalf("Verify = %d, %v; want a break at seq %d (%s)", n, err, tc.wantSeq, tc.want)
			}
			if !errors.Is(err, store.ErrBrokenChain) {
				t.Errorf("%v does not match store.ErrBrokenChain", err)
			}
			if n != int(tc.wantSeq-1) {
				t.Errorf("verified %d events before the break at %d", n, tc.wantSeq)
			}
		})
	}
}

// TestVerifyFindsRewrittenEvent: an attacker who edits an event and
// recomputes its hash is found at the next event, whose prev_hash no
// longer matches.
func TestVerifyFindsRewrittenEvent(t *testing.T) {
	db, path := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	appendN(t, l, 5)
	evs, err := db.ListAudit(context.Background(), 2, 1)
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	e := evs[0]
	e.Reason = "nothing to see"
	e.Seal(e.PrevHash)
	tamper(t, path)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("UPDATE audit_log SET reason = ?, hash = ? WHERE seq = 3", e.Reason, e.Hash); err != nil {
		t.Fatal(err)
	}
	n, err := l.Verify(context.Background())
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Seq != 4 || n != 3 {
		t.Fatalf("Verify = %d, %v; want a break at seq 4", n, err)
	}
	if want := "audit chain broken at seq 4: prev_hash"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want prefix %q", err, want)
	}
}

func TestRecordLogsStoreFailure(t *testing.T) {
	db, _ := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	db.Close()
	e := &store.AuditEvent{Type: "token", ClientID: "bank", Result: store.ResultFailure, Reason: "invalid_grant"}
	l.Record(context.Background(), e) // must not panic or return anything
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "audit event not recorded") ||
		!strings.Contains(out, "type=token") {
		t.Errorf("log output %q", out)
	}
	if err := l.Append(context.Background(), e); err == nil || !strings.HasPrefix(err.Error(), "audit: ") {
		t.Errorf("Append on a closed store: %v", err)
	}
	if _, err := l.Verify(context.Background()); err == nil {
		t.Error("Verify on a closed store succeeded")
	}
}

func TestRecordRedacts(t *testing.T) {
	db, _ := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	details := map[string]string{"identifier": "01017012345", "client_secret": "hunter2hunter2", "attempt": "1"}
	l.Record(context.Background(), &store.AuditEvent{Type: "authentication", Reason: "no person for 010170 12345", Details: details})
	got, err := db.ListAudit(context.Background(), 0, 1)
	if err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	e := got[0]
	if e.Reason != Redacted || e.Details["identifier"] != Redacted || e.Details["client_secret"] != Redacted || e.Details["attempt"] != "1" {
		t.Errorf("stored %+v", e)
	}
	if details["identifier"] != "01017012345" {
		t.Error("the caller's Details map was changed")
	}
	out := logs.String()
	if !strings.Contains(out, "audit event values redacted") || strings.Contains(out, "01017012345") || strings.Contains(out, "hunter2") {
		t.Errorf("log output %q", out)
	}
	if n, err := l.Verify(context.Background()); n != 1 || err != nil {
		t.Errorf("Verify = %d, %v", n, err)
	}
}

func TestScrub(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   store.AuditEvent
		want []string
	}{
		{"clean", store.AuditEvent{Type: "token", PersonID: "p_9Xk2", Reason: "expired", Details: map[string]string{"kid": "k1", "token_type": "refresh"}}, nil},
		{"fnr in reason", store.AuditEvent{Reason: "unknown 01017012345"}, []string{"reason"}},
		{"fnr as person id", store.AuditEvent{PersonID: "01017012345"}, []string{"person_id"}},
		{"secret keys", store.AuditEvent{Details: map[string]string{"password": "x", "code_verifier": "y", "code": "z", "Refresh_Token": "t", "n": "1"}},
			[]string{"details.Refresh_Token", "details.code", "details.code_verifier", "details.password"}},
		{"national id as a key", store.AuditEvent{Details: map[string]string{"01017012345": "seen"}}, []string{"details key"}},
		{"already redacted", store.AuditEvent{Details: map[string]string{"password": Redacted}}, nil},
		{"national id as the key of a redacted value", store.AuditEvent{Details: map[string]string{"01017012345": Redacted}}, []string{"details key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.in
			got := Scrub(&e)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Scrub changed %q, want %q", got, tc.want)
			}
			for k, v := range e.Details {
				if LooksLikeNationalID(k) || LooksLikeNationalID(v) || (secretKey(k) && v != Redacted) {
					t.Errorf("left %q: %q", k, v)
				}
			}
		})
	}
}

func TestLooksLikeNationalID(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"01017012345", true},
		{"fnr=01017012345;", true},
		{"010170 12345", true},
		{"010170-12345", true},
		{"010170.12345", true},
		{"a41017012345b", true}, // 11 digits between letters
		{"", false},
		{"0101701234", true}, // Danish CPR
		{"cpr 010170-1234", true},
		{"010170 1234", true},
		{"3213701234", false}, // 10 digits, no date DDMMYY or YYMMDD
		{"1763717400", false}, // a timestamp in seconds
		{"1234567890", false},
		{"811218-9876", true}, // Swedish personnummer, short form
		{"811218+9876", true}, // the same, aged 100 or more
		{"19811218-9876", true},
		{"198112189876", true},
		{"198112189875", false}, // check digit wrong
		{"131052-308T", true},   // Finnish HETU
		{"131052a308t", true},
		{"131052-308U", false}, // check character wrong
		{"010101-901S", true},  // a Finnish temporary code
		{"2026-11-21", false},
		{"010170123456", false},     // 12 digits
		{"1763717400123456", false}, // a microsecond timestamp
		{"010170  12345", false},
		{"0101701 2345", false},
		{"2026-11-21T09:30:00Z", false},
		{"+47 912 34 567", false},
		{"550e8400-e29b-41d4-a716-446655440000", false},
	} {
		if got := LooksLikeNationalID(tc.s); got != tc.want {
			t.Errorf("LooksLikeNationalID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func FuzzLooksLikeNationalID(f *testing.F) {
	for _, s := range []string{"01017012345", "010170 12345", "0101701234", "811218-9876", "131052-308T", "12345678901234", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := store.AuditEvent{Reason: s, Details: map[string]string{"v": s}}
		Scrub(&e)
		if LooksLikeNationalID(e.Reason) || LooksLikeNationalID(e.Details["v"]) {
			t.Fatalf("Scrub left %q", s)
		}
	})
}

// TestRecordOutlivesTheRequest: Record writes events about what already
// happened, so an event is stored even when the request's context has
// ended, as it does when the person's browser goes away.
func TestRecordOutlivesTheRequest(t *testing.T) {
	db, _ := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.Record(ctx, &store.AuditEvent{Type: "passkey_removed", PersonID: "p1", Result: store.ResultSuccess})
	evs, err := db.ListAudit(context.Background(), 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "passkey_removed" {
		t.Fatalf("after Record with an ended context: %d events (%v); log %q", len(evs), err, logs.String())
	}
}

// TestAnchorDetectsRewrittenHistory: an anchor taken of the head still
// holds while events are appended after it, and fails once someone
// rewrites the log up to it, even into a chain that verifies again
// (every hash recomputed), or cuts it short.
func TestAnchorDetectsRewrittenHistory(t *testing.T) {
	ctx := context.Background()
	db, path := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	if h, err := l.VerifyHead(ctx); err != nil || h.Events != 0 || h.Seq != 0 || h.Hash != nil {
		t.Fatalf("empty log: head %+v, %v", h, err)
	}
	appendN(t, l, 4)
	h, err := l.VerifyHead(ctx)
	if err != nil || h.Events != 4 || h.Seq != 4 || len(h.Hash) == 0 || h.Time.IsZero() {
		t.Fatalf("head %+v, %v", h, err)
	}
	anchor := h.AnchorString()
	if !strings.HasPrefix(anchor, "4:") {
		t.Fatalf("anchor %q", anchor)
	}
	for range 2 {
		if err := l.Append(ctx, &store.AuditEvent{Type: "token", ClientID: "bank", Result: store.ResultSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.CheckAnchor(ctx, anchor); err != nil {
		t.Fatalf("anchor after appending: %v", err)
	}
	for _, bad := range []string{"", "4", "x:ab", "0:ab", "4:zz", "4:", "4:ab", anchor[:len(anchor)-2], anchor + "00"} {
		if err := l.CheckAnchor(ctx, bad); err == nil || errors.Is(err, ErrAnchor) {
			t.Errorf("anchor %q: %v, want a usage error", bad, err)
		}
	}

	// Rewrite event 2 and reseal it and every event after it: the chain
	// verifies, but the anchor no longer matches.
	evs, err := db.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	evs[1].Reason = "nothing to see"
	var stmts []string
	prev := evs[0].Hash
	for _, e := range evs[1:] {
		e.Seal(prev)
		prev = e.Hash
		stmts = append(stmts, fmt.Sprintf("UPDATE audit_log SET reason = '%s', prev_hash = x'%x', hash = x'%x' WHERE seq = %d", e.Reason, e.PrevHash, e.Hash, e.Seq))
	}
	tamper(t, path, stmts...)
	db.Close()
	db, err = sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l = newLog(db, &logs)
	if h, err := l.VerifyHead(ctx); err != nil || h.Events != 6 {
		t.Fatalf("the resealed chain: head %+v, %v; want it to verify", h, err)
	}
	if err := l.CheckAnchor(ctx, anchor); !errors.Is(err, ErrAnchor) {
		t.Errorf("anchor after the rewrite: %v, want ErrAnchor", err)
	}
	// Cut short below the anchor.
	tamper(t, path, "DELETE FROM audit_log WHERE seq >= 4")
	if err := l.CheckAnchor(ctx, anchor); !errors.Is(err, ErrAnchor) || !strings.Contains(err.Error(), "no event 4") {
		t.Errorf("anchor after truncation: %v", err)
	}
}

// TestAppendRecordsClientAddress: an event appended while serving a
// request holds the client's address as httpx.ClientAddress found it
// (through a trusted proxy, the one X-Forwarded-For names) under
// Details["addr"], covered by the chain's hash; one a caller gave an
// address keeps it, and one recorded outside a request has none.
func TestAppendRecordsClientAddress(t *testing.T) {
	db, _ := openStore(t)
	var logs bytes.Buffer
	l := newLog(db, &logs)
	trusted, err := httpx.ParseTrustedProxies([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*store.AuditEvent
	h := httpx.ClientAddress(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &store.AuditEvent{Type: "authentication", PersonID: "p-1", Result: store.ResultSuccess,
			Details: map[string]string{"way": "passkey"}}
		given := &store.AuditEvent{Type: "authentication", PersonID: "p-1", Result: store.ResultSuccess,
			Details: map[string]string{"addr": "192.0.2.1"}}
		for _, e := range []*store.AuditEvent{e, given} {
			if err := l.Append(r.Context(), e); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
	}))
	r := httptest.NewRequest(http.MethodPost, "/passkey/login/finish", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-Forwarded-For", "192.0.2.66, 2001:db8::7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	outside := &store.AuditEvent{Type: "authentication", PersonID: "p-1", Result: store.ResultSuccess}
	if err := l.Append(context.Background(), outside); err != nil {
		t.Fatal(err)
	}
	stored, err := db.ListAudit(context.Background(), 0, 10)
	if err != nil || len(stored) != 3 {
		t.Fatalf("%d events, %v", len(stored), err)
	}
	for i, want := range []string{"2001:db8::7", "192.0.2.1", ""} {
		if got := stored[i].Details["addr"]; got != want {
			t.Errorf("event %d: addr %q, want %q", i+1, got, want)
		}
	}
	if stored[0].Details["way"] != "passkey" {
		t.Errorf("event 1: details %v, want the caller's kept", stored[0].Details)
	}
	if n, err := l.Verify(context.Background()); n != 3 || err != nil {
		t.Errorf("Verify: %d, %v", n, err)
	}
	// The hash covers the address's digest: changed, the chain breaks.
	tampered := *stored[0]
	tampered.Details = map[string]string{"way": "passkey", "addr": "198.51.100.1"}
	if tampered.AddrIntact() {
		t.Error("a changed address matches its digest")
	}
	// Deleted after its retention, it is gone and the chain verifies.
	if n, err := db.DeleteAuditAddresses(context.Background(), t0.Add(time.Hour), t0.Add(time.Hour)); n.Deleted != 2 || err != nil {
		t.Fatalf("DeleteAuditAddresses: %+v, %v", n, err)
	}
	stored, err = db.ListAudit(context.Background(), 0, 10)
	if err != nil || len(stored) != 3 {
		t.Fatalf("%d events, %v", len(stored), err)
	}
	for _, e := range stored {
		if _, ok := e.Details["addr"]; ok {
			t.Errorf("event %d: details %v, want the address gone", e.Seq, e.Details)
		}
	}
	if n, err := l.Verify(context.Background()); n != 3 || err != nil {
		t.Errorf("Verify after the addresses went: %d, %v", n, err)
	}
}

// TestVerifyHeadSaysWhereAddressesAreDeletedTo: the head says the time
// of the newest event whose address kept apart is deleted, so that an
// address deleted before its retention ran out (which the chain cannot
// refuse: deleting is allowed) shows; an address in an old event's
// hashed body, or one still kept, counts for nothing.
func TestVerifyHeadSaysWhereAddressesAreDeletedTo(t *testing.T) {
	ctx := context.Background()
	db, _ := openStore(t)
	l := &Log{Store: db}
	day := 24 * time.Hour
	for i := range 4 {
		e := &store.AuditEvent{Time: t0.Add(time.Duration(i) * day), Type: "authentication", Result: store.ResultSuccess,
			Details: map[string]string{store.DetailAddr: "192.0.2.1"}}
		if err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := l.VerifyHead(ctx); err != nil || !h.AddrsDeletedTo.IsZero() {
		t.Fatalf("VerifyHead with every address kept = %+v, %v; want no time of deleted addresses", h, err)
	}
	if _, err := db.DeleteAuditAddresses(ctx, t0.Add(2*day), t0.Add(2*day)); err != nil {
		t.Fatal(err)
	}
	h, err := l.VerifyHead(ctx)
	if err != nil || !h.AddrsDeletedTo.Equal(t0.Add(day).Truncate(time.Microsecond)) {
		t.Fatalf("VerifyHead after the two oldest addresses went = %+v, %v; want them deleted to %v", h, err, t0.Add(day))
	}
}
