package passkeyidp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// endedMeanwhile is the real store in which the session making a change
// to the account ends just before the change's write: after the account
// page read the session, the person logs out everywhere else from
// another device (or removes a passkey, or the help desk takes a number
// off them, each ending the session), and the change lands after.
type endedMeanwhile struct {
	store.Passkeys
	store.RecoveryCodes
	db  store.Store
	now time.Time
}

func (s endedMeanwhile) end(ctx context.Context, id string) error {
	_, err := s.db.EndSession(ctx, id, s.now)
	return err
}

func (s endedMeanwhile) CreatePasskeyEndingOthers(ctx context.Context, p *store.Passkey, max int, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if err := s.end(ctx, except); err != nil {
		return nil, err
	}
	return s.Passkeys.CreatePasskeyEndingOthers(ctx, p, max, except, now, events)
}

func (s endedMeanwhile) CreatePasskey(ctx context.Context, p *store.Passkey, max int, by string, events ...*store.AuditEvent) error {
	if err := s.end(ctx, by); err != nil {
		return err
	}
	return s.Passkeys.CreatePasskey(ctx, p, max, by, events...)
}

func (s endedMeanwhile) DeletePasskey(ctx context.Context, personID string, credentialID []byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if err := s.end(ctx, except); err != nil {
		return nil, err
	}
	return s.Passkeys.DeletePasskey(ctx, personID, credentialID, except, now, events)
}

func (s endedMeanwhile) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if err := s.end(ctx, except); err != nil {
		return nil, err
	}
	return s.RecoveryCodes.ReplaceRecoveryCodesEndingOthers(ctx, personID, hashes, except, now, events)
}

// TestPasskeyAddedAsItsSessionEndsIsNotKept: a passkey whose write
// lands just after the session adding it ended (whoever held it was
// logged out everywhere else) is not stored: a session that has ended
// adds no way in. The page is told the person is no longer logged in.
func TestPasskeyAddedAsItsSessionEndsIsNotKept(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.p.WebAuthn.Passkeys = endedMeanwhile{Passkeys: h.db, db: h.db, now: h.now}
	passkeyNotKept(b, "session_ended")
	if keys, err := h.db.ListPasskeys(ctx, e.person); err != nil || len(keys) != 1 {
		t.Errorf("passkeys after an add from a session that ended: %d, %v; want the enrolled one only", len(keys), err)
	}
}

// TestCodesMadeAsTheirSessionEndsAreNotKept: new recovery codes whose
// write lands just after the session asking for them ended are not
// stored, nor shown to whoever held it: the browser is sent to log in,
// and the codes from before still work.
func TestCodesMadeAsTheirSessionEndsAreNotKept(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	h.p.RecoveryCodes = endedMeanwhile{RecoveryCodes: h.db, db: h.db, now: h.now}
	codesNotKept(ctx, b, e, "session_ended")
}

// TestRemovalAsItsSessionEndsRemovesNothing: a passkey's removal whose
// write lands just after the session asking for it ended removes
// nothing: whoever was logged out cannot take the owner's passkeys
// away on their way out.
func TestRemovalAsItsSessionEndsRemovesNothing(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	keys, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys: %d, %v", len(keys), err)
	}
	h.p.Passkeys = endedMeanwhile{Passkeys: h.db, db: h.db, now: h.now}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	r := b.form("/account/passkeys/remove", url.Values{"confirm": {"yes"}, "csrf": {csrf},
		"credential": {base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("removal as its session ends: %d %q, want 303 to /login", r.status, r.location)
	}
	after, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil || len(after) != 1 || !bytes.Equal(after[0].CredentialID, keys[0].CredentialID) {
		t.Errorf("passkeys after a removal from a session that ended: %d, %v; want the one from before", len(after), err)
	}
	if !hasEvent(h.auditEvents(t), "passkey_removed", store.ResultFailure, "session_ended") {
		t.Error("the removal not recorded as refused for the session's end")
	}
}

// sessionsEndedMeanwhile is the real store in which the session asking
// to log out everywhere else ends just before that write: the owner,
// elsewhere, logged it out first.
type sessionsEndedMeanwhile struct {
	store.Sessions
	now time.Time
}

func (s sessionsEndedMeanwhile) EndPersonSessions(ctx context.Context, personID, except string, now time.Time, events func(int) []*store.AuditEvent) ([]*store.Session, error) {
	if _, err := s.Sessions.EndSession(ctx, except, s.now); err != nil {
		return nil, err
	}
	return s.Sessions.EndPersonSessions(ctx, personID, except, now, events)
}

// TestLogOutElsewhereAsItsSessionEndsEndsNothing: "Log out everywhere
// else" from a session that the owner logged out from another device
// just before its write ends nothing: whoever was logged out cannot log
// the owner out on their way out. The browser is sent to log in.
func TestLogOutElsewhereAsItsSessionEndsEndsNothing(t *testing.T) {
	h := newHarness(t, true)
	d := newDevice(false)
	b := h.browser("en")
	b.enrol(d, "", "fnr")
	owner := h.browser("en")
	if r, m := owner.login(d, h.rp, ""); r.status != http.StatusOK {
		t.Fatalf("the owner's login: %d %v", r.status, m)
	}
	csrf := attr(t, b.get("/account").body, "data-csrf")
	h.p.Sessions.Store = sessionsEndedMeanwhile{Sessions: h.db, now: h.now}
	r := b.form("/account/sessions/end-others", url.Values{"csrf": {csrf}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("log out everywhere else as its session ends: %d %q, want 303 to /login", r.status, r.location)
	}
	if r := owner.get("/account"); r.status != http.StatusOK {
		t.Errorf("the owner's session after a logout everywhere else from a session that ended: %d, want it live", r.status)
	}
	if !hasEvent(h.auditEvents(t), "logged_out_elsewhere", store.ResultFailure, "session_ended") {
		t.Error("the logout everywhere else not recorded as refused for the session's end")
	}
}

// TestRenameAsItsSessionEndsRenamesNothing: a rename whose write lands
// just after the session asking for it ended (whoever held it was
// logged out everywhere else) changes no name: a session that has
// ended changes nothing on the account. The browser is sent to log in,
// and the refusal is recorded.
func TestRenameAsItsSessionEndsRenamesNothing(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	laptop := h.addStoredPasskey(t, e.person, "Laptop")
	csrf := attr(t, b.get("/account").body, "data-csrf")
	live, err := h.db.ListPersonSessions(ctx, e.person, h.now)
	if err != nil || len(live) != 1 {
		t.Fatalf("the person's sessions: %v %v", live, err)
	}
	h.p.Passkeys = meanwhile{Passkeys: h.db, before: func(ctx context.Context, _ string, _ []byte) error {
		_, err := h.db.EndSession(ctx, live[0].ID, h.now)
		return err
	}}
	r := b.form("/account/passkeys/rename", url.Values{"credential": {laptop}, "csrf": {csrf}, "name": {"Mine now"}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("rename as its session ends: %d %q, want 303 to /login", r.status, r.location)
	}
	keys, err := h.db.ListPasskeys(ctx, e.person)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Name == "Mine now" {
			t.Errorf("a passkey renamed from a session that ended: %q", k.Name)
		}
	}
	events := h.auditEvents(t)
	if hasEvent(events, "passkey_renamed", store.ResultSuccess, "") || !hasEvent(events, "passkey_renamed", store.ResultFailure, "session_ended") {
		t.Error("want the rename recorded as refused for the session's end, not as made")
	}
}

// grantsEndedMeanwhile is the real store in which the session stopping
// a service's access ends just before that write.
type grantsEndedMeanwhile struct {
	store.Grants
	db  store.Store
	now time.Time
}

func (s grantsEndedMeanwhile) RevokePersonClientGrants(ctx context.Context, personID, clientID, by string, now time.Time, e *store.AuditEvent) (int, error) {
	if _, err := s.db.EndSession(ctx, by, s.now); err != nil {
		return 0, err
	}
	return s.Grants.RevokePersonClientGrants(ctx, personID, clientID, by, now, e)
}

// TestStopAccessAsItsSessionEndsStopsNothing: "Stop access" from a
// session that was logged out everywhere else just before its write
// revokes nothing: whoever was logged out cannot cut off the services
// the owner chose on their way out. The browser is sent to log in, and
// the refusal is recorded.
func TestStopAccessAsItsSessionEndsStopsNothing(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	h.p.Clients, h.p.Grants = h.db, h.db
	b := h.browser("en")
	e := b.enrol(newDevice(false), "", "fnr")
	if err := h.db.AddClient(ctx, &store.Client{ID: "bank", Name: "Test Bank", AuthMethod: store.AuthNone, RefreshTokens: true,
		RedirectURIs: []string{"https://bank.example/cb"}, CreatedAt: h.now}, nil); err != nil {
		t.Fatal(err)
	}
	scope := []string{"openid", store.ScopeOfflineAccess}
	g := &store.Grant{ID: "g-bank", ClientID: "bank", PersonID: e.person, SessionID: "s-bank", Scope: scope, CreatedAt: h.now.Add(-time.Hour)}
	rt := &store.Token{Hash: []byte("rt-bank"), Kind: store.TokenRefresh, GrantID: g.ID, ClientID: "bank", Scope: scope,
		CreatedAt: g.CreatedAt, ExpiresAt: h.now.Add(24 * time.Hour)}
	if err := h.db.CreateGrantTokens(ctx, g, nil, rt); err != nil {
		t.Fatal(err)
	}
	csrf := field(t, b.get("/account").body, "csrf")
	h.p.Grants = grantsEndedMeanwhile{Grants: h.db, db: h.db, now: h.now}
	r := b.form("/account/services/stop", url.Values{"client": {"bank"}, "csrf": {csrf}})
	if r.status != http.StatusSeeOther || r.location != "/login" {
		t.Errorf("stop access as its session ends: %d %q, want 303 to /login", r.status, r.location)
	}
	if got, err := h.db.GetGrant(ctx, g.ID); err != nil || !got.RevokedAt.IsZero() {
		t.Errorf("the grant after a stop from a session that ended: %v, %v; want it live", got, err)
	}
	events := h.auditEvents(t)
	if hasEvent(events, "offline_access_stopped", store.ResultSuccess, "") || !hasEvent(events, "offline_access_stopped", store.ResultFailure, "session_ended") {
		t.Error("want the stop recorded as refused for the session's end, not as made")
	}
}

// TestPasskeyAddedAfterARecoveryCodeAsItsSessionEndsIsNotKept: a
// passkey added from a login with a recovery code (below ChangeLevel,
// so it logs nobody out) whose write lands just after that session
// ended is not stored: the owner who logged everyone else out because
// a code was in the wrong hands is not left with a passkey of theirs.
func TestPasskeyAddedAfterARecoveryCodeAsItsSessionEndsIsNotKept(t *testing.T) {
	h := newHarness(t, true)
	ctx := context.Background()
	owner := h.browser("en")
	e := owner.enrol(newDevice(false), "", "fnr")
	b := h.browser("en")
	csrf := field(t, b.get("/passkey/recover?attempt=").body, "csrf")
	if r := b.form("/passkey/recover", url.Values{"attempt": {""}, "csrf": {csrf}, "code": {e.codes[0]}}); r.status != http.StatusSeeOther {
		t.Fatalf("recovery: %d", r.status)
	}
	h.p.WebAuthn.Passkeys = endedMeanwhile{Passkeys: h.db, db: h.db, now: h.now}
	passkeyNotKept(b, "session_ended")
	if keys, err := h.db.ListPasskeys(ctx, e.person); err != nil || len(keys) != 1 {
		t.Errorf("passkeys after an add from a recovery code's session that ended: %d, %v; want the enrolled one only", len(keys), err)
	}
}
