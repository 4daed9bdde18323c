package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// takenMidLogin is the node's real store, in which the person takes
// away the way in a login is using just as that login has proved it:
// after the passkey's use or the recovery code's is stored, and before
// the broker stores the login's session. The owner of a passkey that
// was stolen removes it, or replaces codes that were, from their own
// session, while whoever holds it is logging in.
type takenMidLogin struct {
	store.Store
	mu sync.Mutex
	// takePasskey and takeCodes, when set, are run once, right after a
	// passkey's use or a recovery code's is stored.
	takePasskey func(ctx context.Context, credentialID []byte)
	takeCodes   func(ctx context.Context, personID string)
	// down, while set, fails storing a session, as a store that cannot
	// be reached does.
	down atomic.Bool
}

// errDown is takenMidLogin's answer while it is down.
var errDown = errors.New("the store cannot be reached")

func (s *takenMidLogin) CreateSession(ctx context.Context, ss *store.Session, events ...*store.AuditEvent) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.CreateSession(ctx, ss, events...)
}

func (s *takenMidLogin) UpdatePasskeyUse(ctx context.Context, credentialID []byte, oldSignCount uint32, u store.PasskeyUse) error {
	if err := s.Store.UpdatePasskeyUse(ctx, credentialID, oldSignCount, u); err != nil {
		return err
	}
	if take := takeOnce(&s.mu, &s.takePasskey); take != nil {
		take(ctx, credentialID)
	}
	return nil
}

func (s *takenMidLogin) UseRecoveryCode(ctx context.Context, hash []byte, now time.Time) (string, error) {
	personID, err := s.Store.UseRecoveryCode(ctx, hash, now)
	if err != nil {
		return personID, err
	}
	if take := takeOnce(&s.mu, &s.takeCodes); take != nil {
		take(ctx, personID)
	}
	return personID, nil
}

// takeOnce returns what f holds, leaving it nil (zero), under mu.
func takeOnce[F any](mu *sync.Mutex, f *F) F {
	mu.Lock()
	defer mu.Unlock()
	v := *f
	var zero F
	*f = zero
	return v
}

// nodeTakingMidLogin starts a node over takenMidLogin and enrols a
// person there, whose passkey it returns with device.
func nodeTakingMidLogin(t *testing.T, synced bool) (*node, *takenMidLogin, *store.Passkey, *loadgen.Person) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "varde.db")
	db, err := sqlstore.OpenSQLite(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return nodeTakingMidLoginOver(t, synced, db, map[string]string{config.EnvStoreDSN: dsn})
}

// nodeTakingMidLoginOver is nodeTakingMidLogin over db, which env
// configures.
func nodeTakingMidLoginOver(t *testing.T, synced bool, db store.Store, env map[string]string) (*node, *takenMidLogin, *store.Passkey, *loadgen.Person) {
	t.Helper()
	ctx := context.Background()
	st := &takenMidLogin{Store: db}
	salt := make([]byte, 32)
	_, _ = rand.Read(salt)
	n, _ := startNodeOpts(t, "127.0.0.1:0", "", env,
		app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t), Store: st})
	device := n.enrol(t, synced)
	k, err := db.GetPasskey(ctx, device.Cred.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n, st, k, device
}

// TestPasskeyRemovedMidLoginLeavesNoSession: the person removes a
// passkey (which ends their other sessions in the same write, ADR 9)
// just as someone else's login with it has been verified, before that
// login's session is stored. The removal cannot end a session not yet
// stored; the login must not leave one behind either, nor give the
// relying party a code: a stolen passkey, removed, takes every session
// it may have opened with it.
func TestPasskeyRemovedMidLoginLeavesNoSession(t *testing.T) {
	n, st, k, device := nodeTakingMidLogin(t, true)
	passkeyRemovedMidLogin(t, n, st, st.Store, k, device)
}

// TestPasskeyRemovedThroughAnotherNodeMidLoginLeavesNoSession is the
// same over PostgreSQL, the passkey removed through another node's
// handle on the database as the login finishes on this node: what the
// session's write reads is the database's, never this node's memory.
func TestPasskeyRemovedThroughAnotherNodeMidLoginLeavesNoSession(t *testing.T) {
	n, st, k, device, dsn := nodeTakingMidLoginOnPostgres(t)
	passkeyRemovedMidLogin(t, n, st, openPostgresStore(t, dsn), k, device)
}

// nodeTakingMidLoginOnPostgres is nodeTakingMidLogin over a PostgreSQL
// database of its own, whose DSN it returns for other nodes' handles.
func nodeTakingMidLoginOnPostgres(t *testing.T) (*node, *takenMidLogin, *store.Passkey, *loadgen.Person, string) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	n, st, k, device := nodeTakingMidLoginOver(t, true, openPostgresStore(t, dsn),
		map[string]string{config.EnvStoreDriver: "postgres", config.EnvStoreDSN: dsn})
	return n, st, k, device, dsn
}

// openPostgresStore opens a handle on the database dsn names, closed
// when the test ends.
func openPostgresStore(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// passkeyRemovedMidLogin has the person remove the passkey k through
// db just as a login with it on n, over st, has been verified, and
// checks that the login leaves no session and gets no code.
func passkeyRemovedMidLogin(t *testing.T, n *node, st *takenMidLogin, db store.Store, k *store.Passkey, device *loadgen.Person) {
	t.Helper()
	ctx := context.Background()
	bank := n.addRP(t, "bank", "bank.example")

	var removed error
	st.mu.Lock()
	st.takePasskey = func(ctx context.Context, credentialID []byte) {
		k, err := db.GetPasskey(ctx, credentialID)
		if err == nil {
			// Ending every session the person has when it commits, as
			// it would from the owner's own one.
			_, err = db.DeletePasskey(ctx, k.PersonID, credentialID, "", time.Now(), nil)
		}
		removed = err
	}
	st.mu.Unlock()

	jar, _ := cookiejar.New(nil)
	res, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar})
	if removed != nil {
		t.Fatalf("remove the passkey mid-login: %v", removed)
	}
	if err == nil {
		t.Errorf("the login with a passkey removed as it finished got the relying party a code (sso %v)", res.SSO)
	}
	if status, _ := n.accountPage(t, accountBrowser(jar)); status != http.StatusSeeOther {
		t.Errorf("the account page in the browser that logged in with the removed passkey: %d, want 303 to log in", status)
	}
	if sessions := personSessions(t, db, k.PersonID); len(sessions) != 0 {
		t.Errorf("%d sessions of the person outlive the passkey's removal", len(sessions))
	}
}

// TestWayInUnreadableMidLoginLeavesNoSession: once a passkey login's
// use of the passkey is stored, the store cannot be reached, so the
// session's write, which reads whether the person still holds the
// passkey, fails. The login fails closed: the relying party gets no
// code, and the browser no session that, once the store is back, the
// account page or the next login at a relying party (which a live
// session would answer with a code at once) could ride on. The check
// being part of the session's write, no session can be stored without
// it.
func TestWayInUnreadableMidLoginLeavesNoSession(t *testing.T) {
	ctx := context.Background()
	n, st, _, device := nodeTakingMidLogin(t, true)
	bank := n.addRP(t, "bank", "bank.example")
	st.mu.Lock()
	st.takePasskey = func(context.Context, []byte) { st.down.Store(true) }
	st.mu.Unlock()

	jar, _ := cookiejar.New(nil)
	res, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar})
	st.down.Store(false)
	if err == nil {
		t.Errorf("the login whose passkey could not be read again got the relying party a code (sso %v)", res.SSO)
	}
	if status, _ := n.accountPage(t, accountBrowser(jar)); status != http.StatusSeeOther {
		t.Errorf("the account page, the store back, in the browser whose login could not tell: %d, want 303 to log in", status)
	}
}

// TestCodesReplacedMidLoginLeaveNoSession is the same for recovery
// codes: the person replaces them (ending their other sessions in the
// same write) just as someone else's login with one of the old codes
// has used it, before that login's session is stored.
func TestCodesReplacedMidLoginLeaveNoSession(t *testing.T) {
	ctx := context.Background()
	n, st, k, _ := nodeTakingMidLogin(t, false)
	db := st.Store
	const code = "7KQ3M9XD2B4C6F8G"
	old := sha256.Sum256([]byte(code))
	if err := db.ReplaceRecoveryCodes(ctx, k.PersonID, [][]byte{old[:]}, time.Now()); err != nil {
		t.Fatal(err)
	}

	var replaced error
	st.mu.Lock()
	st.takeCodes = func(ctx context.Context, personID string) {
		fresh := sha256.Sum256([]byte("ABCDEFGHJKMNPQRS"))
		_, replaced = db.ReplaceRecoveryCodesEndingOthers(ctx, personID, [][]byte{fresh[:]}, "", time.Now(), nil)
	}
	st.mu.Unlock()

	jar, _ := cookiejar.New(nil)
	b := accountBrowser(jar)
	res, err := b.Get(n.issuer + "/passkey/recover?attempt=")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("recovery page: %d\n%s", res.StatusCode, page)
	}
	res, err = b.PostForm(n.issuer+"/passkey/recover", url.Values{"attempt": {""}, "csrf": {m[1]}, "code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if replaced != nil {
		t.Fatalf("replace the codes mid-login: %v", replaced)
	}
	if loc := res.Header.Get("Location"); res.StatusCode == http.StatusSeeOther && strings.HasSuffix(loc, "/account") {
		t.Errorf("the login with a code replaced as it finished was sent to the account page")
	}
	if status, _ := n.accountPage(t, b); status != http.StatusSeeOther {
		t.Errorf("the account page in the browser that logged in with the replaced code: %d, want 303 to log in", status)
	}
	if sessions := personSessions(t, db, k.PersonID); len(sessions) != 0 {
		t.Errorf("%d sessions of the person outlive the codes' replacement", len(sessions))
	}
}

// personSessions is the live sessions of the person with ID personID.
func personSessions(t *testing.T, db store.Store, personID string) []*store.Session {
	t.Helper()
	sessions, err := db.ListPersonSessions(context.Background(), personID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sessions
}

// TestWayInGoneMidLoginLeavesTheLoginOpen: a login for a service whose
// passkey is removed as it finishes stores no session (ADR 49), and the
// person is sent back to that login's page, which says the login did
// not work and offers the ways in again. The code the login's write
// made for the service, before the session's write refused it, spent
// the service's request; the code goes to nobody, so the request is
// given back, and the page finds it: a request gone would say the login
// cannot be found, and leave the person only the way back to the
// service. Over SQLite (the request in the node's memory) and over
// PostgreSQL (in the database).
func TestWayInGoneMidLoginLeavesTheLoginOpen(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		n, st, k, device := nodeTakingMidLogin(t, true)
		wayInGoneLeavesTheLoginOpen(t, n, st, st.Store, k, device)
	})
	t.Run("postgres", func(t *testing.T) {
		n, st, k, device, _ := nodeTakingMidLoginOnPostgres(t)
		wayInGoneLeavesTheLoginOpen(t, n, st, st.Store, k, device)
	})
}

// wayInGoneLeavesTheLoginOpen has the person's passkey k removed
// through db just as a login for a service with it on n, over st, has
// been verified, and checks the page the login ends on.
func wayInGoneLeavesTheLoginOpen(t *testing.T, n *node, st *takenMidLogin, db store.Store, k *store.Passkey, device *loadgen.Person) {
	t.Helper()
	ctx := context.Background()
	bank := n.addRP(t, "bank", "bank.example")
	st.mu.Lock()
	st.takePasskey = func(ctx context.Context, credentialID []byte) {
		if _, err := db.DeletePasskey(ctx, k.PersonID, credentialID, "", time.Now(), nil); err != nil {
			t.Errorf("remove the passkey mid-login: %v", err)
		}
	}
	st.mu.Unlock()

	jar, _ := cookiejar.New(nil)
	_, err := bank.Login(ctx, device, loadgen.LoginOptions{Jar: jar})
	var step *loadgen.StepError
	if !errors.As(err, &step) {
		t.Fatalf("the login with a passkey removed as it finished: %v, want it to end on a page", err)
	}
	// Where the login ended, in the browser that made it.
	m := regexp.MustCompile(`at (\S+/login\?\S+): `).FindStringSubmatch(step.Message)
	if m == nil {
		t.Fatalf("the login ended at %s", step.Message)
	}
	res, err := accountBrowser(jar).Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	const failed = "The login did not work. You can try again or choose another way."
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), failed) {
		t.Errorf("the login page after the passkey went: %d, want 200 with %q:\n%.3000s", res.StatusCode, failed, body)
	}
	if sessions := personSessions(t, db, k.PersonID); len(sessions) != 0 {
		t.Errorf("%d sessions of the person outlive the passkey's removal", len(sessions))
	}
}
