package passkeyidp_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// blockFirst blocks personID in db, as the help desk's varde persons
// block does, unless they are blocked already.
func blockFirst(ctx context.Context, db store.Store, personID string, now time.Time) error {
	if _, err := db.BlockPerson(ctx, personID, "stolen phone", now, nil); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}

// passkeysBlockedMeanwhile is the real store in which the person is
// blocked just before a passkey's write: the block lands after the
// account page read the person and before the passkey is stored.
type passkeysBlockedMeanwhile struct {
	store.Passkeys
	db  store.Store
	now time.Time
}

func (s passkeysBlockedMeanwhile) CreatePasskey(ctx context.Context, p *store.Passkey, max int, by string, events ...*store.AuditEvent) error {
	if err := blockFirst(ctx, s.db, p.PersonID, s.now); err != nil {
		return err
	}
	return s.Passkeys.CreatePasskey(ctx, p, max, by, events...)
}

func (s passkeysBlockedMeanwhile) CreatePasskeyEndingOthers(ctx context.Context, p *store.Passkey, max int, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if err := blockFirst(ctx, s.db, p.PersonID, s.now); err != nil {
		return nil, err
	}
	return s.Passkeys.CreatePasskeyEndingOthers(ctx, p, max, except, now, events)
}

// codesBlockedMeanwhile is passkeysBlockedMeanwhile for recovery codes.
type codesBlockedMeanwhile struct {
	store.RecoveryCodes
	db  store.Store
	now time.Time
}

func (s codesBlockedMeanwhile) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, now time.Time, events ...*store.AuditEvent) error {
	if err := blockFirst(ctx, s.db, personID, s.now); err != nil {
		return err
	}
	return s.RecoveryCodes.ReplaceRecoveryCodes(ctx, personID, hashes, now, events...)
}

func (s codesBlockedMeanwhile) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if err := blockFirst(ctx, s.db, personID, s.now); err != nil {
		return nil, err
	}
	return s.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(ctx, personID, hashes, except, now, events)
}

// addCeremony begins adding a passkey named Laptop on the account page
// and has d answer it: the page's CSRF token, the ceremony and the
// response for its finish.
func (b *browser) addCeremony(d *device) (csrf, id string, body []byte) {
	t := b.h.t
	t.Helper()
	csrf = attr(t, b.get("/account").body, "data-csrf")
	r, begun := b.json("/account/passkeys/begin", map[string]string{"name": "Laptop"}, csrf)
	if r.status != http.StatusOK {
		t.Fatalf("begin: %d", r.status)
	}
	id, body = b.h.create(t, d, begun)
	return csrf, id, body
}

// TestPasskeyAddedAsTheBlockLandsIsNotKept: a passkey whose write lands
// just after the help desk blocked the person, who the account page
// read just before, is not stored (ADR 42): the page is told the person
// is no longer logged in, as for a session of a blocked person, and
// lifting the block gives back no passkey.
func TestPasskeyAddedAsTheBlockLandsIsNotKept(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.p.WebAuthn.Passkeys = passkeysBlockedMeanwhile{Passkeys: h.db, db: h.db, now: h.now}
	passkeyNotKept(b, "person_blocked")
	if err := h.db.UnblockPerson(ctx, e.person, nil); err != nil {
		t.Fatal(err)
	}
	if keys, err := h.db.ListPasskeys(ctx, e.person); err != nil || len(keys) != 1 {
		t.Errorf("passkeys after the block is lifted: %d, %v; want the enrolled one only", len(keys), err)
	}
}

// TestCodesMadeAsTheBlockLandsAreNotKept: new recovery codes whose write
// lands just after the block are not stored and not shown: the browser
// is sent to log in, where the broker says the Varde ID is blocked, and
// the codes from before stay as they were.
func TestCodesMadeAsTheBlockLandsAreNotKept(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.p.RecoveryCodes = codesBlockedMeanwhile{RecoveryCodes: h.db, db: h.db, now: h.now}
	codesNotKept(ctx, b, e, "person_blocked")
}

// passkeyNotKept adds a passkey in b, whose write the store refuses for
// reason (the person blocked, the session ended, since the account page
// read them), and checks that the page is told the person is no longer
// logged in and the refusal is audited with reason, not the passkey as
// added.
func passkeyNotKept(b *browser, reason string) {
	t, h := b.h.t, b.h
	t.Helper()
	csrf, id, body := b.addCeremony(newDevice(false))
	r, done := b.json("/account/passkeys/finish?ceremony="+url.QueryEscape(id), body, csrf)
	if r.status != http.StatusUnauthorized || done["error"] != "session" || done["message"] != "You are no longer logged in. Reload the page to log in again." {
		t.Errorf("finish refused as it lands (%s): %d %v, want 401 session", reason, r.status, done)
	}
	events := h.auditEvents(t)
	if hasEvent(events, "passkey_added", store.ResultSuccess, "") || !hasEvent(events, "passkey_added", store.ResultFailure, reason) {
		t.Errorf("want the passkey recorded as refused (%s), not added", reason)
	}
}

// codesNotKept asks for new recovery codes in b, whose write the store
// refuses for reason (the person blocked, the session ended, since the
// account page read them), and checks that the browser is sent to log
// in, the refusal is audited with reason and the codes e holds from
// before still work.
func codesNotKept(ctx context.Context, b *browser, e enrolled, reason string) {
	t, h := b.h.t, b.h
	t.Helper()
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/recovery-codes", url.Values{"confirm": {"yes"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("new codes refused as they land (%s): %d %q, want 303 to /login", reason, r.status, r.location)
	}
	if !hasEvent(h.auditEvents(t), "recovery_codes_regenerated", store.ResultFailure, reason) {
		t.Errorf("new codes not recorded as refused (%s)", reason)
	}
	for _, code := range e.codes {
		hash := sha256.Sum256([]byte(strings.ReplaceAll(code, "-", "")))
		if has, err := h.db.HasRecoveryCode(ctx, e.person, hash[:]); err != nil || !has {
			t.Errorf("a code from before: %v, %v; want it still held", has, err)
		}
	}
}

// TestEnrolledAsTheBlockLandsGetsNoCodes: a person blocked as they
// enrol, between their passkey's write and their codes', gets no codes:
// the login goes straight to the broker, which says the Varde ID is
// blocked, rather than to a page offering codes.
func TestEnrolledAsTheBlockLandsGetsNoCodes(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	h.p.RecoveryCodes = codesBlockedMeanwhile{RecoveryCodes: h.db, db: h.db, now: h.now}
	id, body := b.enrolCreate(newDevice(false), "", "fnr")
	before := h.fin.count()
	r, done := b.json("/passkey/enrol/finish?ceremony="+url.QueryEscape(id), body, "")
	if r.status != http.StatusOK || done["redirect"] != "/account" || h.fin.count() != before+1 {
		t.Fatalf("enrol finish as the block lands: %d %v, want the login handed to the broker", r.status, done)
	}
	person := h.fin.last(t).Result.PersonID
	if n, err := h.db.CountRecoveryCodes(ctx, person); err != nil || n != 0 {
		t.Errorf("recovery codes of a person blocked as they enrolled: %d, %v; want none", n, err)
	}
	if hasEvent(h.auditEvents(t), "recovery_codes_regenerated", store.ResultSuccess, "") {
		t.Error("codes recorded as made")
	}
}
