package passkeyidp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// unansweredPasskeys is the real store whose writes of a passkey get no
// answer, as a COMMIT whose connection dropped:
//   - "stored": after the write was stored;
//   - "lost": without storing anything;
//   - "late": the write lands only after the first read of the passkey
//     that follows it, as a COMMIT the server was still carrying out
//     when the client saw the connection drop;
//   - "blind": nothing stored, and the store cannot be read either once
//     the write was sent.
type unansweredPasskeys struct {
	store.Passkeys
	mode string

	mu      sync.Mutex
	pending func() error // the "late" write, not yet landed
	sent    bool
}

func (u *unansweredPasskeys) write(do func() error) error {
	u.mu.Lock()
	u.sent = true
	u.mu.Unlock()
	switch u.mode {
	case "stored":
		if err := do(); err != nil {
			return err
		}
	case "late":
		u.mu.Lock()
		u.pending = do
		u.mu.Unlock()
	}
	return fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

func (u *unansweredPasskeys) CreatePasskey(ctx context.Context, p *store.Passkey, max int, events ...*store.AuditEvent) error {
	return u.write(func() error { return u.Passkeys.CreatePasskey(context.Background(), p, max, events...) })
}

func (u *unansweredPasskeys) CreatePasskeyEndingOthers(ctx context.Context, p *store.Passkey, max int, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	return nil, u.write(func() error {
		_, err := u.Passkeys.CreatePasskeyEndingOthers(context.Background(), p, max, except, now, events)
		return err
	})
}

func (u *unansweredPasskeys) CreatePersonWithPasskey(ctx context.Context, person *store.Person, p *store.Passkey, events ...*store.AuditEvent) error {
	return u.write(func() error { return u.Passkeys.CreatePersonWithPasskey(context.Background(), person, p, events...) })
}

func (u *unansweredPasskeys) GetPasskey(ctx context.Context, id []byte) (*store.Passkey, error) {
	u.mu.Lock()
	blind := u.mode == "blind" && u.sent
	u.mu.Unlock()
	if blind {
		return nil, errors.New("connection refused")
	}
	got, err := u.Passkeys.GetPasskey(ctx, id)
	u.mu.Lock()
	land := u.pending
	u.pending = nil
	u.mu.Unlock()
	if land != nil {
		if err := land(); err != nil {
			return nil, err
		}
	}
	return got, err
}

// readBackCases: what the person is told, and what the store and the
// audit log hold, for each way a write with no answer turned out.
var readBackCases = []struct {
	mode, reason string
	status       int
	stored       bool
}{
	{"stored", "", http.StatusOK, true},
	{"late", "", http.StatusOK, true},
	{"lost", "not_stored", http.StatusInternalServerError, false},
	{"blind", "unconfirmed", http.StatusServiceUnavailable, false},
}

// A passkey added on the account page whose write got no answer is read
// back by its credential ID: found, the person is told it was added
// (also when the write lands only after the first read); not found
// after the read-back's window, that it was not saved; with the store
// unreadable, that it could not be confirmed, never a guess. The audit
// log says the same.
func TestAddPasskeyOutcomeUnknown(t *testing.T) {
	for _, tc := range readBackCases {
		t.Run(tc.mode, func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser("en")
			e := b.enrol(newDevice(false), "", "fnr")
			u := &unansweredPasskeys{Passkeys: h.db, mode: tc.mode}
			h.p.WebAuthn.Passkeys, h.p.Passkeys = u, u
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
			if r.status != http.StatusOK {
				t.Fatalf("begin: %d", r.status)
			}
			id, body := h.create(t, newDevice(false), begun)
			r, done := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
			if r.status != tc.status || (tc.reason != "" && done["error"] != tc.reason) {
				t.Fatalf("finish: %d %v; want %d %q", r.status, done, tc.status, tc.reason)
			}
			if tc.reason != "" && done["message"] == "" {
				t.Errorf("no message for the person: %v", done)
			}
			keys, err := h.db.ListPasskeys(context.Background(), e.person)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 2, false: 1}[tc.stored]; len(keys) != want {
				t.Errorf("%d passkeys stored, want %d", len(keys), want)
			}
			evs := h.auditEvents(t)
			if added := hasEvent(evs, "passkey_added", store.ResultSuccess, ""); added != tc.stored {
				t.Errorf("passkey_added success recorded: %v, want %v", added, tc.stored)
			}
			if tc.reason != "" && !hasEvent(evs, "passkey_added", store.ResultFailure, tc.reason) {
				t.Errorf("no passkey_added failure %q recorded", tc.reason)
			}
		})
	}
}

// An enrolment whose write (the person with their passkey) got no
// answer is read back as an added passkey is: found, the person goes on
// to their recovery codes; otherwise they are told it was not saved, or
// could not be confirmed.
func TestEnrolOutcomeUnknown(t *testing.T) {
	for _, tc := range readBackCases {
		t.Run(tc.mode, func(t *testing.T) {
			h := newHarness(t, true)
			u := &unansweredPasskeys{Passkeys: h.db, mode: tc.mode}
			h.p.WebAuthn.Passkeys, h.p.Passkeys = u, u
			b := h.browser("en")
			if r := b.get("/passkey/enrol?attempt="); r.status != http.StatusOK {
				t.Fatalf("enrol page: %d", r.status)
			}
			r, begun := b.json("/passkey/enrol/begin", map[string]string{"attempt": "", "given_name": "Kari", "family_name": "Nordmann", "kind": "fnr"}, "")
			if r.status != http.StatusOK {
				t.Fatalf("enrol begin: %d %v", r.status, begun)
			}
			id, body := h.create(t, newDevice(false), begun)
			r, done := b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(id), body, "")
			if r.status != tc.status || (tc.reason != "" && done["error"] != tc.reason) {
				t.Fatalf("finish: %d %v; want %d %q", r.status, done, tc.status, tc.reason)
			}
			evs := h.auditEvents(t)
			if enrolled := hasEvent(evs, "enrolment", store.ResultSuccess, ""); enrolled != tc.stored {
				t.Errorf("enrolment success recorded: %v, want %v", enrolled, tc.stored)
			}
			if tc.stored {
				if page := b.get(done["redirect"].(string)); page.status != http.StatusOK || len(codesIn(page.body)) == 0 {
					t.Errorf("enrolled page: %d, %d codes", page.status, len(codesIn(page.body)))
				}
				return
			}
			if !hasEvent(evs, "enrolment", store.ResultFailure, tc.reason) {
				t.Errorf("no enrolment failure %q recorded", tc.reason)
			}
		})
	}
}
