package passkeyidp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	late lateWrite
}

// lateWrite is a write sent, and, if pending is set, one that lands
// only at the first read after it.
type lateWrite struct {
	mu      sync.Mutex
	sent    bool
	pending func() error
}

func (l *lateWrite) send(pending func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent, l.pending = true, pending
}

func (l *lateWrite) wasSent() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// land carries out the pending write, if any, once.
func (l *lateWrite) land() error {
	l.mu.Lock()
	do := l.pending
	l.pending = nil
	l.mu.Unlock()
	if do == nil {
		return nil
	}
	return do()
}

func (u *unansweredPasskeys) write(do func() error) error {
	switch u.mode {
	case "stored":
		u.late.send(nil)
		if err := do(); err != nil {
			return err
		}
	case "late":
		u.late.send(do)
	default:
		u.late.send(nil)
	}
	return fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

func (u *unansweredPasskeys) CreatePasskey(ctx context.Context, p *store.Passkey, max int, by string, events ...*store.AuditEvent) error {
	return u.write(func() error { return u.Passkeys.CreatePasskey(context.Background(), p, max, by, events...) })
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
	if u.mode == "blind" && u.late.wasSent() {
		return nil, errors.New("connection refused")
	}
	got, err := u.Passkeys.GetPasskey(ctx, id)
	if lerr := u.late.land(); lerr != nil {
		return nil, lerr
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
			csrf, id, body := b.addCeremony(newDevice(false))
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

// unansweredNewCodes is the real store whose replacement of recovery
// codes ending the other sessions gets no answer: with "late", it lands
// only after the first read of a code that follows it; with "blind",
// nothing is stored and the codes cannot be read back.
type unansweredNewCodes struct {
	store.RecoveryCodes
	mode string
	late lateWrite
}

func (u *unansweredNewCodes) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	var pending func() error
	if u.mode == "late" {
		pending = func() error {
			_, err := u.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(context.Background(), personID, hashes, except, now, events)
			return err
		}
	}
	u.late.send(pending)
	return nil, fmt.Errorf("commit: %w", store.ErrOutcomeUnknown)
}

func (u *unansweredNewCodes) HasRecoveryCode(ctx context.Context, personID string, hash []byte) (bool, error) {
	if u.mode == "blind" && u.late.wasSent() {
		return false, errors.New("connection refused")
	}
	has, err := u.RecoveryCodes.HasRecoveryCode(ctx, personID, hash)
	if lerr := u.late.land(); lerr != nil {
		return false, lerr
	}
	return has, err
}

// New recovery codes whose write lands only after the first read-back
// are shown, as stored; ones that cannot be read back are not, and the
// person is told it could not be confirmed and what to do, in their
// language, rather than that it failed.
func TestNewCodesReadBackWindow(t *testing.T) {
	for _, tc := range []struct {
		mode, lang, want string
		status           int
	}{
		{"late", "en", "", http.StatusSeeOther},
		{"blind", "en", "We could not confirm your new recovery codes", http.StatusServiceUnavailable},
		{"blind", "nb", "Vi kunne ikke bekrefte de nye gjenopprettingskodene", http.StatusServiceUnavailable},
		{"blind", "da", "Vi kunne ikke bekræfte dine nye genoprettelseskoder", http.StatusServiceUnavailable},
	} {
		t.Run(tc.mode+"/"+tc.lang, func(t *testing.T) {
			h := newHarness(t, true)
			b := h.browser(tc.lang)
			b.enrol(newDevice(false), "", "fnr")
			h.p.RecoveryCodes = &unansweredNewCodes{RecoveryCodes: h.p.RecoveryCodes, mode: tc.mode}
			csrf := attr(t, b.get("/account").body, "data-csrf")
			r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
			if r.status != tc.status {
				t.Fatalf("new codes: %d %q", r.status, r.location)
			}
			if tc.want == "" {
				if codes := codesIn(b.get(r.location).body); len(codes) == 0 {
					t.Fatal("the stored new codes are not shown")
				}
				return
			}
			if !strings.Contains(r.body, tc.want) || len(codesIn(r.body)) != 0 {
				t.Errorf("page for codes not confirmed:\n%s", r.body)
			}
		})
	}
}
