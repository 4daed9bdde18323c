package passkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

const (
	rpID   = "varde.example"
	origin = "https://varde.example"
)

type env struct {
	svc *passkey.Service
	db  *sqlstore.DB
	now time.Time
	rp  virtualwebauthn.RelyingParty
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w, err := passkey.NewWebAuthn(rpID, "Varde", []string{origin})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		rp: virtualwebauthn.RelyingParty{Name: "Varde", ID: rpID, Origin: origin}}
	e.svc = &passkey.Service{WebAuthn: w, Persons: db, Passkeys: db, Challenges: db, Now: func() time.Time { return e.now }}
	return e
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newPerson(t testing.TB, id string) *store.Person {
	return &store.Person{
		ID: id, WebAuthnID: randomBytes(t, 32), GivenName: "Kari", FamilyName: "Nordmann",
		Identifiers:   []store.Identifier{{Scheme: "no:fnr", Value: "018190" + id}},
		ProofingLevel: "high", ProofingMethod: "synthetic", Synthetic: true,
	}
}

// device is a software authenticator holding one credential.
type device struct {
	auth virtualwebauthn.Authenticator
	cred virtualwebauthn.Credential
}

func newDevice(p *store.Person, opts virtualwebauthn.AuthenticatorOptions) *device {
	opts.UserHandle = p.WebAuthnID
	return &device{auth: virtualwebauthn.NewAuthenticatorWithOptions(opts), cred: loadgen.NewCredential()}
}

func (e *env) attest(t testing.TB, rp virtualwebauthn.RelyingParty, d *device, options json.RawMessage) []byte {
	t.Helper()
	o, err := virtualwebauthn.ParseAttestationOptions(string(options))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(virtualwebauthn.CreateAttestationResponse(rp, d.auth, d.cred, *o))
}

func (e *env) assert(t testing.TB, rp virtualwebauthn.RelyingParty, d *device, options json.RawMessage) []byte {
	t.Helper()
	o, err := virtualwebauthn.ParseAssertionOptions(string(options))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(virtualwebauthn.CreateAssertionResponse(rp, d.auth, d.cred, *o))
}

func (e *env) register(t testing.TB, p *store.Person, d *device, newPerson bool) (*passkey.Registration, error) {
	t.Helper()
	ctx := context.Background()
	id, opts, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, NewPerson: newPerson, Name: "Phone", Attempt: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	return e.svc.FinishRegistration(ctx, id, "", e.attest(t, e.rp, d, opts), nil)
}

func (e *env) mustRegister(t testing.TB, p *store.Person, d *device) *passkey.Registration {
	t.Helper()
	reg, err := e.register(t, p, d, true)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return reg
}

// loginBody begins a login and returns its ceremony and the device's
// response for rp.
func (e *env) loginBody(t testing.TB, rp virtualwebauthn.RelyingParty, d *device) (string, []byte) {
	t.Helper()
	id, opts, err := e.svc.BeginLogin(context.Background(), "attempt-1")
	if err != nil {
		t.Fatal(err)
	}
	return id, e.assert(t, rp, d, opts)
}

func (e *env) login(t testing.TB, d *device) (*passkey.LoginResult, error) {
	t.Helper()
	id, body := e.loginBody(t, e.rp, d)
	return e.svc.FinishLogin(context.Background(), id, body)
}

func TestRegisterAndLogin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	reg := e.mustRegister(t, p, d)
	if reg.Attempt != "a1" || reg.Person.ID != "p1" || !reg.UserVerified || reg.BackupEligible {
		t.Fatalf("registration = %+v", reg)
	}
	stored, err := e.db.GetPerson(ctx, "p1")
	if err != nil || !bytes.Equal(stored.WebAuthnID, p.WebAuthnID) {
		t.Fatalf("person not stored: %v", err)
	}
	pk, err := e.db.GetPasskey(ctx, d.cred.ID)
	if err != nil || pk.PersonID != "p1" || pk.Name != "Phone" || !pk.UserVerified || len(pk.PublicKey) == 0 {
		t.Fatalf("passkey = %+v, %v", pk, err)
	}

	for i, counter := range []uint32{1, 2, 7} {
		d.cred.Counter = counter
		e.now = e.now.Add(time.Minute)
		res, err := e.login(t, d)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if res.AttemptID != "attempt-1" || res.Person.ID != "p1" || !res.UserVerified || res.BackupEligible {
			t.Fatalf("login %d = %+v", i, res)
		}
		pk, _ := e.db.GetPasskey(ctx, d.cred.ID)
		if pk.SignCount != counter || !pk.LastUsedAt.Equal(e.now) || res.Passkey.SignCount != counter {
			t.Fatalf("login %d: stored count %d last used %v", i, pk.SignCount, pk.LastUsedAt)
		}
	}
}

// Many platform passkeys always report counter 0: that is allowed
// (§6.1.1), and repeated logins work.
func TestZeroCounter(t *testing.T) {
	e := newEnv(t)
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{BackupEligible: true, BackupState: true})
	e.mustRegister(t, p, d)
	for i := range 3 {
		res, err := e.login(t, d)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if !res.BackupEligible || !res.BackupState {
			t.Fatalf("flags = %+v", res)
		}
	}
}

func TestWrongOrigin(t *testing.T) {
	e := newEnv(t)
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)
	tests := []struct {
		name string
		rp   virtualwebauthn.RelyingParty
	}{
		{"phishing origin", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://evil.example"}},
		{"other RP ID", virtualwebauthn.RelyingParty{ID: "evil.example", Origin: origin}},
		{"both", virtualwebauthn.RelyingParty{ID: "evil.example", Origin: "https://evil.example"}},
		{"http downgrade", virtualwebauthn.RelyingParty{ID: rpID, Origin: "http://varde.example"}},
		{"other port", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://varde.example:8443"}},
		// A browser serialises an origin as scheme://host[:port], and
		// nothing else is one (§13.4.9): not a URL under it, not one
		// with user info, not a look-alike spelling.
		{"with a path", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://varde.example/evil"}},
		{"with user info", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://evil.example@varde.example"}},
		{"with a query", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://varde.example?evil"}},
		{"upper case", virtualwebauthn.RelyingParty{ID: rpID, Origin: "HTTPS://VARDE.EXAMPLE"}},
		{"trailing dot", virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://varde.example."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d.cred.Counter++
			id, body := e.loginBody(t, tt.rp, d)
			_, err := e.svc.FinishLogin(context.Background(), id, body)
			if !errors.Is(err, passkey.ErrWrongOrigin) || passkey.Reason(err) != "wrong_origin" {
				t.Fatalf("FinishLogin = %v, want ErrWrongOrigin", err)
			}
		})
	}
	pk, _ := e.db.GetPasskey(context.Background(), d.cred.ID)
	if pk.SignCount != 0 || !pk.LastUsedAt.IsZero() {
		t.Fatalf("rejected logins changed the passkey: %+v", pk)
	}

	// Registration is origin-bound too.
	q := newPerson(t, "p2")
	id, opts, err := e.svc.BeginRegistration(context.Background(), passkey.RegistrationRequest{Person: q, NewPerson: true})
	if err != nil {
		t.Fatal(err)
	}
	body := e.attest(t, virtualwebauthn.RelyingParty{ID: rpID, Origin: "https://evil.example"}, newDevice(q, virtualwebauthn.AuthenticatorOptions{}), opts)
	if _, err := e.svc.FinishRegistration(context.Background(), id, "", body, nil); !errors.Is(err, passkey.ErrWrongOrigin) {
		t.Fatalf("FinishRegistration = %v, want ErrWrongOrigin", err)
	}
	if _, err := e.db.GetPerson(context.Background(), "p2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("person stored after failed registration: %v", err)
	}
}

func TestReplay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)

	d.cred.Counter = 1
	id, body := e.loginBody(t, e.rp, d)
	if _, err := e.svc.FinishLogin(ctx, id, body); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishLogin(ctx, id, body); !errors.Is(err, passkey.ErrReplay) || passkey.Reason(err) != "replay" {
		t.Fatalf("same body twice: %v (%s), want ErrReplay (replay)", err, passkey.Reason(err))
	}
	// The captured assertion sent under a fresh ceremony answers the old
	// challenge.
	fresh, _, err := e.svc.BeginLogin(ctx, "attempt-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishLogin(ctx, fresh, body); !errors.Is(err, passkey.ErrWrongCeremony) || !errors.Is(err, passkey.ErrWrongCeremony) || passkey.Reason(err) != "wrong_ceremony" {
		t.Fatalf("old body, new ceremony: %v (%s), want ErrWrongCeremony (wrong_ceremony)", err, passkey.Reason(err))
	}
	// A ceremony expires: refused as one used, but audited as expired,
	// and gone after it.
	d.cred.Counter = 2
	id, body = e.loginBody(t, e.rp, d)
	e.now = e.now.Add(passkey.DefaultLifetime + time.Second)
	if _, err := e.svc.FinishLogin(ctx, id, body); !errors.Is(err, passkey.ErrCeremonyExpired) || !errors.Is(err, passkey.ErrReplay) || passkey.Reason(err) != "expired" {
		t.Fatalf("expired ceremony: %v (%s), want ErrCeremonyExpired (expired)", err, passkey.Reason(err))
	}
	if _, err := e.svc.FinishLogin(ctx, id, body); errors.Is(err, passkey.ErrCeremonyExpired) || passkey.Reason(err) != "replay" {
		t.Fatalf("expired ceremony again: %v (%s), want ErrReplay (replay)", err, passkey.Reason(err))
	}
	for _, id := range []string{"", "nope", strings.Repeat("x", 500)} {
		if _, err := e.svc.FinishLogin(ctx, id, body); !errors.Is(err, passkey.ErrReplay) {
			t.Fatalf("ceremony %q: %v, want ErrReplay", id, err)
		}
	}
	// A registration ceremony is no login ceremony.
	regID, _, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: newPerson(t, "p2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishLogin(ctx, regID, body); !errors.Is(err, passkey.ErrWrongCeremony) || !errors.Is(err, passkey.ErrWrongCeremony) || passkey.Reason(err) != "wrong_ceremony" {
		t.Fatalf("registration ceremony used for login: %v (%s), want ErrWrongCeremony (wrong_ceremony)", err, passkey.Reason(err))
	}
	// A login ceremony is no registration ceremony.
	loginID, _, err := e.svc.BeginLogin(ctx, "attempt-3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishRegistration(ctx, loginID, "", body, nil); !errors.Is(err, passkey.ErrWrongCeremony) || passkey.Reason(err) != "wrong_ceremony" {
		t.Fatalf("login ceremony used for registration: %v (%s), want ErrWrongCeremony (wrong_ceremony)", err, passkey.Reason(err))
	}
}

func TestCloned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)
	d.cred.Counter = 5
	if _, err := e.login(t, d); err != nil {
		t.Fatal(err)
	}
	before, _ := e.db.GetPasskey(ctx, d.cred.ID)
	e.now = e.now.Add(time.Minute)
	for _, counter := range []uint32{3, 5, 0} {
		d.cred.Counter = counter
		_, err := e.login(t, d)
		if !errors.Is(err, passkey.ErrCloned) || passkey.Reason(err) != "cloned_authenticator" {
			t.Fatalf("counter %d after 5: %v, want ErrCloned", counter, err)
		}
		// The signature verified, so the error names whose passkey it is.
		var ce *passkey.CredentialError
		if !errors.As(err, &ce) || ce.PersonID != p.ID || !bytes.Equal(ce.CredentialID, d.cred.ID) {
			t.Fatalf("counter %d after 5: %#v, want a CredentialError naming %s and the passkey", counter, err, p.ID)
		}
	}
	after, _ := e.db.GetPasskey(ctx, d.cred.ID)
	if after.SignCount != 5 || !after.LastUsedAt.Equal(before.LastUsedAt) || after.BackupState != before.BackupState {
		t.Fatalf("cloned login changed the passkey: before %+v after %+v", before, after)
	}
}

func TestUserVerificationRequired(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)

	d.auth.Options.UserNotVerified = true
	d.cred.Counter = 1
	if _, err := e.login(t, d); !errors.Is(err, passkey.ErrNotVerified) {
		t.Fatalf("login without UV: %v, want ErrNotVerified", err)
	}
	d.auth.Options.UserNotVerified = false
	d.auth.Options.UserNotPresent = true
	if _, err := e.login(t, d); !errors.Is(err, passkey.ErrNotVerified) {
		t.Fatalf("login without UP: %v, want ErrNotVerified", err)
	}

	q := newPerson(t, "p2")
	nouv := newDevice(q, virtualwebauthn.AuthenticatorOptions{UserNotVerified: true})
	if _, err := e.register(t, q, nouv, true); !errors.Is(err, passkey.ErrNotVerified) {
		t.Fatalf("registration without UV: %v, want ErrNotVerified", err)
	}
	if _, err := e.db.GetPerson(ctx, "p2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("person stored after failed registration: %v", err)
	}
}

func TestBackupEligibilityFixed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{BackupEligible: true})
	e.mustRegister(t, p, d)

	// Backup state may change and is recorded.
	d.auth.Options.BackupState = true
	res, err := e.login(t, d)
	if err != nil || !res.BackupState {
		t.Fatalf("login with BS: %+v, %v", res, err)
	}
	if pk, _ := e.db.GetPasskey(ctx, d.cred.ID); !pk.BackupState {
		t.Fatal("backup state not stored")
	}
	// Backup eligibility may not.
	d.auth.Options.BackupEligible, d.auth.Options.BackupState = false, false
	_, err = e.login(t, d)
	var ce *passkey.CredentialError
	if !errors.Is(err, passkey.ErrBackupEligibility) || !errors.As(err, &ce) || ce.PersonID != p.ID || !bytes.Equal(ce.CredentialID, d.cred.ID) {
		t.Fatalf("BE dropped: %#v, want ErrBackupEligibility naming %s and the passkey", err, p.ID)
	}
}

func TestMalformed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	secret := "SECRET-INPUT-0123456789"
	bodies := map[string][]byte{
		"not json":     []byte("{" + secret),
		"empty":        nil,
		"wrong type":   []byte(`{"id":"` + secret + `","rawId":"` + secret + `","type":"password","response":{}}`),
		"bad base64":   []byte(`{"id":"!!","rawId":"!!","type":"public-key","response":{"clientDataJSON":"` + secret + `"}}`),
		"oversize":     bytes.Repeat([]byte("a"), passkey.MaxResponseSize+1),
		"no authData":  []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","signature":"AAAA"}}`),
		"json in json": []byte(`"` + secret + `"`),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			id, _, err := e.svc.BeginLogin(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.FinishLogin(ctx, id, body)
			if !errors.Is(err, passkey.ErrBadInput) {
				t.Fatalf("FinishLogin = %v, want ErrBadInput", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error echoes input: %v", err)
			}
		})
	}
}

// TestBadResponseUsesUpCeremony: a response too large or unreadable
// uses up its ceremony like any other, so the good response that
// follows it finds nothing.
func TestBadResponseUsesUpCeremony(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	bad := map[string][]byte{
		"oversize": bytes.Repeat([]byte("a"), passkey.MaxResponseSize+1),
		"empty":    nil,
	}
	for name, body := range bad {
		t.Run("registration/"+name, func(t *testing.T) {
			id, opts, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, NewPerson: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.FinishRegistration(ctx, id, "", body, nil); !errors.Is(err, passkey.ErrBadInput) {
				t.Fatalf("bad response: %v, want ErrBadInput", err)
			}
			if _, err := e.svc.FinishRegistration(ctx, id, "", e.attest(t, e.rp, d, opts), nil); !errors.Is(err, passkey.ErrReplay) {
				t.Fatalf("good response after a bad one: %v, want ErrReplay", err)
			}
		})
	}
	e.mustRegister(t, p, d)
	for name, body := range bad {
		t.Run("login/"+name, func(t *testing.T) {
			id, good := e.loginBody(t, e.rp, d)
			if _, err := e.svc.FinishLogin(ctx, id, body); !errors.Is(err, passkey.ErrBadInput) {
				t.Fatalf("bad response: %v, want ErrBadInput", err)
			}
			if _, err := e.svc.FinishLogin(ctx, id, good); !errors.Is(err, passkey.ErrReplay) {
				t.Fatalf("good response after a bad one: %v, want ErrReplay", err)
			}
		})
	}
}

// TestConfiguredOriginSpelling: an origin configured with the default
// port or in another case is the one a browser sends, serialised, and
// another port is another origin.
func TestConfiguredOriginSpelling(t *testing.T) {
	for _, tt := range []struct {
		configured string
		ok         bool
	}{
		{"https://varde.example", true},
		{"https://varde.example:443", true},
		{"HTTPS://Varde.Example", true},
		{"https://varde.example:8443", false},
	} {
		t.Run(tt.configured, func(t *testing.T) {
			e := newEnv(t)
			w, err := passkey.NewWebAuthn(rpID, "Varde", []string{tt.configured})
			if err != nil {
				t.Fatal(err)
			}
			e.svc.WebAuthn = w
			p := newPerson(t, "p1")
			_, err = e.register(t, p, newDevice(p, virtualwebauthn.AuthenticatorOptions{}), true)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, passkey.ErrWrongOrigin) {
				t.Fatalf("register from %s, %s configured: %v", origin, tt.configured, err)
			}
		})
	}
}

func TestUnknownCredential(t *testing.T) {
	e := newEnv(t)
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, p, d)
	q := newPerson(t, "p2")
	dq := newDevice(q, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, q, dq)

	never := newDevice(p, virtualwebauthn.AuthenticatorOptions{}) // same user handle, unregistered key
	stranger := newDevice(newPerson(t, "p3"), virtualwebauthn.AuthenticatorOptions{})
	swapped := &device{auth: d.auth, cred: dq.cred} // p1's user handle with p2's credential
	noHandle := &device{auth: virtualwebauthn.NewAuthenticator(), cred: d.cred}
	for name, dev := range map[string]*device{"unregistered key": never, "unknown person": stranger, "other person's key": swapped, "no user handle": noHandle} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.login(t, dev); !errors.Is(err, passkey.ErrUnknownCredential) {
				t.Fatalf("FinishLogin = %v, want ErrUnknownCredential", err)
			}
		})
	}
}

func TestRegistrationBindingAndExclude(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	reg := e.mustRegister(t, p, d)

	// Add a second passkey, bound to a session.
	id, opts, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, Exclude: []*store.Passkey{reg.Passkey}, Binding: "session-a"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := virtualwebauthn.ParseAttestationOptions(string(opts))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.ExcludeCredentials) != 1 {
		t.Fatalf("excludeCredentials = %v", o.ExcludeCredentials)
	}
	d2 := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	body := e.attest(t, e.rp, d2, opts)
	if _, err := e.svc.FinishRegistration(ctx, id, "session-b", body, nil); !errors.Is(err, passkey.ErrOtherSession) || !errors.Is(err, passkey.ErrReplay) || passkey.Reason(err) != "wrong_session" {
		t.Fatalf("other binding: %v (%s), want ErrOtherSession (wrong_session)", err, passkey.Reason(err))
	}
	// Used up all the same: the right session cannot finish it after.
	if _, err := e.svc.FinishRegistration(ctx, id, "session-a", body, nil); !errors.Is(err, passkey.ErrReplay) || passkey.Reason(err) != "replay" {
		t.Fatalf("after another binding: %v (%s), want ErrReplay (replay)", err, passkey.Reason(err))
	}
	id, _, err = e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, Binding: "session-a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CancelRegistration(ctx, id, "session-b"); !errors.Is(err, passkey.ErrOtherSession) {
		t.Fatalf("cancel with another binding: %v, want ErrOtherSession", err)
	}

	id, opts, err = e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, Binding: "session-a"})
	if err != nil {
		t.Fatal(err)
	}
	added, err := e.svc.FinishRegistration(ctx, id, "session-a", e.attest(t, e.rp, d2, opts), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The person comes from the store, not from the ceremony state.
	if len(added.Person.Identifiers) != 1 || added.Person.Identifiers[0] != p.Identifiers[0] || added.Person.GivenName != "Kari" {
		t.Fatalf("registration person = %+v", added.Person)
	}
	// The same credential again (an authenticator ignoring the exclude
	// list) is refused.
	id, opts, err = e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.FinishRegistration(ctx, id, "", e.attest(t, e.rp, d2, opts), nil); !errors.Is(err, passkey.ErrCredentialExists) {
		t.Fatalf("duplicate credential: %v, want ErrCredentialExists", err)
	}
	list, _ := e.db.ListPasskeys(ctx, "p1")
	if len(list) != 2 {
		t.Fatalf("%d passkeys, want 2", len(list))
	}
	if _, _, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: &store.Person{ID: "x"}}); err == nil {
		t.Fatal("person without user handle accepted")
	}
}

// staleReads is the store as a node sees it while another node registers
// the same credential: its look-up of the credential ID finds nothing,
// and the write that follows meets the other node's row, which later
// look-ups find.
type staleReads struct {
	store.Passkeys
	seen *bool
}

func (s staleReads) GetPasskey(ctx context.Context, id []byte) (*store.Passkey, error) {
	if !*s.seen {
		*s.seen = true
		return nil, store.ErrNotFound
	}
	return s.Passkeys.GetPasskey(ctx, id)
}

// TestFailedEnrolmentLeavesNoPerson: when the passkey of a new person
// cannot be stored, the person is not stored either, so their synthetic
// number stays free and nobody is left without a way in.
func TestFailedEnrolmentLeavesNoPerson(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := newPerson(t, "p1")
	d := newDevice(first, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(t, first, d)

	e.svc.Passkeys = staleReads{e.db, new(bool)}
	second := newPerson(t, "p2")
	if _, err := e.register(t, second, d, true); !errors.Is(err, passkey.ErrCredentialExists) {
		t.Fatalf("register the same credential for a new person: %v, want ErrCredentialExists", err)
	}
	if _, err := e.db.GetPerson(ctx, second.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("person after failed registration: %v, want ErrNotFound", err)
	}
	id := second.Identifiers[0]
	if _, err := e.db.GetPersonByIdentifier(ctx, id.Scheme, id.Value); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("identifier after failed registration: %v, want ErrNotFound", err)
	}
	// The number is free for a registration that succeeds.
	e.svc.Passkeys = e.db
	e.mustRegister(t, second, newDevice(second, virtualwebauthn.AuthenticatorOptions{}))
}

func TestOptionsShape(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, opts, err := e.svc.BeginLogin(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		PublicKey struct {
			Challenge        string            `json:"challenge"`
			RPID             string            `json:"rpId"`
			AllowCredentials []json.RawMessage `json:"allowCredentials"`
			UserVerification string            `json:"userVerification"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &login); err != nil {
		t.Fatal(err)
	}
	if login.PublicKey.RPID != rpID || login.PublicKey.UserVerification != "required" || len(login.PublicKey.AllowCredentials) != 0 || len(login.PublicKey.Challenge) < 43 {
		t.Fatalf("login options = %s", opts)
	}

	_, opts, err = e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: newPerson(t, "p1")})
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		PublicKey struct {
			Attestation string `json:"attestation"`
			Params      []struct {
				Alg int `json:"alg"`
			} `json:"pubKeyCredParams"`
			Selection struct {
				ResidentKey        string `json:"residentKey"`
				RequireResidentKey bool   `json:"requireResidentKey"`
				UserVerification   string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			User struct {
				Name string `json:"name"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts, &reg); err != nil {
		t.Fatal(err)
	}
	pk := reg.PublicKey
	var algs []int
	for _, p := range pk.Params {
		algs = append(algs, p.Alg)
	}
	if pk.Attestation != "none" || pk.Selection.ResidentKey != "required" || !pk.Selection.RequireResidentKey ||
		pk.Selection.UserVerification != "required" || len(algs) != 3 || algs[0] != -7 || algs[1] != -257 || algs[2] != -8 {
		t.Fatalf("registration options = %s", opts)
	}
	if strings.Contains(string(opts), "018190") {
		t.Fatal("registration options carry the identity number")
	}
}

func TestNewWebAuthnRefusesIP(t *testing.T) {
	for _, id := range []string{"127.0.0.1", "::1", "[::1]"} {
		if _, err := passkey.NewWebAuthn(id, "Varde", []string{"http://127.0.0.1:8080"}); err == nil {
			t.Errorf("RP ID %q accepted", id)
		}
	}
	if _, err := passkey.NewWebAuthn("localhost", "Varde", nil); err == nil {
		t.Error("no origins accepted")
	}
	if _, err := passkey.NewWebAuthn("localhost", "Varde", []string{"http://localhost:8080"}); err != nil {
		t.Errorf("localhost refused: %v", err)
	}
}

func TestReason(t *testing.T) {
	if got := passkey.Reason(errors.New("x")); got != "internal" {
		t.Errorf("Reason(other) = %q", got)
	}
	if got := passkey.Reason(passkey.ErrConcurrentUse); got != "concurrent_use" {
		t.Errorf("Reason(ErrConcurrentUse) = %q", got)
	}
}

// FuzzFinishLogin feeds arbitrary bodies to a real ceremony. Whatever the
// body, FinishLogin must not panic, must fail with one of the typed
// errors, and must not echo the body.
func FuzzFinishLogin(f *testing.F) {
	e := newEnv(f)
	p := newPerson(f, "p1")
	d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
	e.mustRegister(f, p, d)
	_, good := e.loginBody(f, e.rp, d)
	f.Add(good)
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Add([]byte("{}"))
	f.Add([]byte("null"))
	typed := []error{passkey.ErrBadInput, passkey.ErrReplay, passkey.ErrWrongOrigin, passkey.ErrNotVerified,
		passkey.ErrUnknownCredential, passkey.ErrInvalid, passkey.ErrCloned, passkey.ErrBackupEligibility}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, _, err := e.svc.BeginLogin(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.FinishLogin(context.Background(), id, body)
		if err == nil {
			t.Fatal("arbitrary body accepted")
		}
		known := false
		for _, k := range typed {
			known = known || errors.Is(err, k)
		}
		if !known {
			t.Fatalf("untyped error %v", err)
		}
		if len(body) > 8 && strings.Contains(err.Error(), string(body)) {
			t.Fatalf("error echoes body: %v", err)
		}
	})
}

// FuzzParse covers the parsers alone, which run much faster than a
// whole ceremony: no panic, and every failure is ErrBadInput.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":"","attestationObject":"oA"}}`))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := passkey.ParseAssertion(body); err != nil && !errors.Is(err, passkey.ErrBadInput) {
			t.Fatalf("ParseAssertion: untyped error %v", err)
		}
		if _, err := passkey.ParseAttestation(body); err != nil && !errors.Is(err, passkey.ErrBadInput) {
			t.Fatalf("ParseAttestation: untyped error %v", err)
		}
	})
}

// An enrolment whose person ID or identifier another enrolment took at
// the same moment stored nothing: it is ErrTaken, not ErrCredentialExists,
// and the credential stays free.
func TestEnrolmentConflictIsNotCredentialExists(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := newPerson(t, "p1")
	e.mustRegister(t, first, newDevice(first, virtualwebauthn.AuthenticatorOptions{}))

	second := newPerson(t, "p1")
	d := newDevice(second, virtualwebauthn.AuthenticatorOptions{})
	if _, err := e.register(t, second, d, true); !errors.Is(err, passkey.ErrTaken) {
		t.Fatalf("register a new person under a taken ID: %v, want ErrTaken", err)
	}
	if got := passkey.Reason(passkey.ErrTaken); got != "taken" {
		t.Fatalf("Reason(ErrTaken) = %q", got)
	}
	if _, err := e.db.GetPasskey(ctx, d.cred.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("credential after refused enrolment: %v, want ErrNotFound", err)
	}
	third := newPerson(t, "p3")
	third.WebAuthnID = second.WebAuthnID
	e.mustRegister(t, third, d)
}

// TestRegistrationAddedByASessionThatEnded: a passkey added to a person
// who exists by a session (AddedBy) is stored only while that session
// is still theirs, read in the passkey's write: one that ended between
// the begin and the finish stores nothing (store.ErrNotFound), and the
// ceremony is used up. From a live session it is stored.
func TestRegistrationAddedByASessionThatEnded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := newPerson(t, "p1")
	e.mustRegister(t, p, newDevice(p, virtualwebauthn.AuthenticatorOptions{}))
	for _, id := range []string{"s-ended", "s-live"} {
		s := &store.Session{ID: id, PersonID: p.ID, Provider: "passkey", Level: "low", AuthTime: e.now,
			CreatedAt: e.now, LastUsed: e.now, ExpiresAt: e.now.Add(time.Hour)}
		if err := e.db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	add := func(session string) error {
		id, opts, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, Binding: session, AddedBy: session})
		if err != nil {
			t.Fatal(err)
		}
		d := newDevice(p, virtualwebauthn.AuthenticatorOptions{})
		_, err = e.svc.FinishRegistration(ctx, id, session, e.attest(t, e.rp, d, opts), nil)
		return err
	}
	id, opts, err := e.svc.BeginRegistration(ctx, passkey.RegistrationRequest{Person: p, Binding: "s-ended", AddedBy: "s-ended"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.EndSession(ctx, "s-ended", e.now); err != nil {
		t.Fatal(err)
	}
	body := e.attest(t, e.rp, newDevice(p, virtualwebauthn.AuthenticatorOptions{}), opts)
	if _, err := e.svc.FinishRegistration(ctx, id, "s-ended", body, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish from a session that ended: %v, want store.ErrNotFound", err)
	}
	if _, err := e.svc.FinishRegistration(ctx, id, "s-ended", body, nil); !errors.Is(err, passkey.ErrReplay) {
		t.Errorf("the same ceremony again: %v, want ErrReplay", err)
	}
	if err := add("s-live"); err != nil {
		t.Errorf("add from a live session: %v", err)
	}
	if keys, err := e.db.ListPasskeys(ctx, p.ID); err != nil || len(keys) != 2 {
		t.Errorf("passkeys: %d, %v; want the first and the one from the live session", len(keys), err)
	}
}
