package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/varde-eid/varde/internal/store"
)

// Errors callers branch on with errors.Is. Wrapped errors add fixed
// context only: nothing from the request is ever echoed.
var (
	// ErrReplay: the ceremony is unknown, expired or already used, or the
	// response belongs to another ceremony. The errors below that wrap it
	// tell the cases Varde can name apart.
	ErrReplay = errors.New("passkey: unknown, expired or used ceremony")
	// ErrCeremonyExpired: the ceremony was still held but its time had
	// run out, as when the person left it open. It wraps ErrReplay, so
	// it is refused as any ceremony that cannot be finished; Reason
	// tells it apart ("expired"). One swept from the store after its
	// expiry is unknown, and so ErrReplay.
	ErrCeremonyExpired = fmt.Errorf("passkey: ceremony expired: %w", ErrReplay)
	// ErrWrongCeremony: the response belongs to another ceremony: one
	// of the other kind (a registration response posted to a login's
	// finish, or the reverse) or one answering another challenge. The
	// ceremony named is used up all the same. It wraps ErrReplay, so it
	// is refused as any ceremony that cannot be finished; Reason tells
	// it apart ("wrong_ceremony").
	ErrWrongCeremony = fmt.Errorf("passkey: response for another ceremony: %w", ErrReplay)
	// ErrOtherSession: the ceremony was begun with another binding (for
	// an added passkey, another login session), so whoever finishes or
	// cancels it is not who began it. It wraps ErrReplay, so it is
	// refused as any ceremony that cannot be finished; Reason tells it
	// apart ("wrong_session"). The ceremony is used up all the same.
	ErrOtherSession = fmt.Errorf("passkey: ceremony begun by another session: %w", ErrReplay)
	// ErrWrongOrigin: the response was made for another origin or RP ID
	// (the phishing case), or inside a cross-origin frame.
	ErrWrongOrigin = errors.New("passkey: wrong origin or relying party")
	// ErrCloned: the signature counter did not increase.
	ErrCloned = errors.New("passkey: signature counter did not increase")
	// ErrUnknownCredential: no such credential, or not the user handle's.
	ErrUnknownCredential = errors.New("passkey: unknown credential")
	// ErrNotVerified: the authenticator did not verify the user (UV) or
	// did not test presence (UP).
	ErrNotVerified = errors.New("passkey: user not verified")
	// ErrBadInput: the response is malformed or too large.
	ErrBadInput = errors.New("passkey: malformed response")
	// ErrBackupEligibility: the backup eligibility flag differs from the
	// one recorded at registration.
	ErrBackupEligibility = errors.New("passkey: backup eligibility changed")
	// ErrConcurrentUse: another login with the same passkey changed its
	// counter at the same time.
	ErrConcurrentUse = errors.New("passkey: concurrent use")
	// ErrInvalid: the signature or attestation did not verify.
	ErrInvalid = errors.New("passkey: response did not verify")
	// ErrCredentialExists: the credential is already registered.
	ErrCredentialExists = errors.New("passkey: credential already registered")
	// ErrTaken: the store refused the enrolment for another reason than
	// the credential, such as a person ID, WebAuthn handle or identifier
	// drawn at the same moment by another enrolment. Nothing was stored;
	// beginning again draws anew.
	ErrTaken = errors.New("passkey: person or identifier taken at the same moment")
	// ErrLimit: the person holds as many passkeys as the ceremony allows
	// (RegistrationRequest.Max).
	ErrLimit = errors.New("passkey: person holds the most passkeys allowed")
)

// CredentialError is a login refused after its assertion verified with
// a stored passkey's public key, so that the passkey and its person are
// known: a signature counter that did not increase (ErrCloned) or a
// changed backup eligibility (ErrBackupEligibility). Those are signs
// that someone else holds a copy of the person's passkey, and whoever
// records the failure can name the person it concerns. Err is the
// sentinel; errors.Is sees it.
type CredentialError struct {
	Err          error
	PersonID     string
	CredentialID []byte
}

// OtherSessionError is ErrOtherSession for a ceremony begun for a person
// already stored (a passkey being added): PersonID names them, the
// person whose account the ceremony would have changed, who need not be
// the person of the session that finished or cancelled it. errors.Is
// sees ErrOtherSession.
type OtherSessionError struct {
	PersonID string
}

func (e *OtherSessionError) Error() string { return ErrOtherSession.Error() }

func (e *OtherSessionError) Unwrap() error { return ErrOtherSession }

// otherSession is the error for ceremony c finished or cancelled with
// another binding than it was begun with.
func otherSession(c *ceremony) error {
	if c.Person == nil || c.NewPerson {
		return ErrOtherSession
	}
	return &OtherSessionError{PersonID: c.Person.ID}
}

func (e *CredentialError) Error() string { return e.Err.Error() }

func (e *CredentialError) Unwrap() error { return e.Err }

// Reason returns a short machine-readable reason for err, for audit
// events and JSON error codes: "expired", "wrong_session",
// "wrong_ceremony", "replay",
// "wrong_origin", "cloned_authenticator", "unknown_credential", "not_verified",
// "bad_input", "backup_eligibility_changed", "concurrent_use", "invalid",
// "credential_exists", "passkey_limit", or "internal" for anything
// else.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "internal"
}

var reasons = []struct {
	err    error
	reason string
}{
	{ErrCeremonyExpired, "expired"},
	{ErrOtherSession, "wrong_session"},
	{ErrWrongCeremony, "wrong_ceremony"},
	{ErrReplay, "replay"},
	{ErrWrongOrigin, "wrong_origin"},
	{ErrCloned, "cloned_authenticator"},
	{ErrUnknownCredential, "unknown_credential"},
	{ErrNotVerified, "not_verified"},
	{ErrBadInput, "bad_input"},
	{ErrBackupEligibility, "backup_eligibility_changed"},
	{ErrConcurrentUse, "concurrent_use"},
	{ErrInvalid, "invalid"},
	{ErrCredentialExists, "credential_exists"},
	{ErrTaken, "taken"},
	{ErrLimit, "passkey_limit"},
}

const (
	// DefaultLifetime is how long a ceremony may take.
	DefaultLifetime = 5 * time.Minute
	// MaxResponseSize caps a ceremony response. Credential IDs are at
	// most 1023 bytes and attestation certificates a few kilobytes.
	MaxResponseSize = 64 << 10
	// challengePrefix namespaces ceremonies in the shared challenge store.
	challengePrefix = "passkey:"
)

// Algorithms offered at registration, in order of preference: ES256 is
// what nearly every authenticator uses; RS256 for Windows Hello; EdDSA.
var algorithms = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
}

// NewWebAuthn builds the relying party configuration: rpID is a domain
// name (never an IP address, §5.1.1 "RP ID"), origins the exact origins
// pages run at, displayName what authenticators show.
func NewWebAuthn(rpID, displayName string, origins []string) (*webauthn.WebAuthn, error) {
	if net.ParseIP(strings.Trim(rpID, "[]")) != nil {
		return nil, errors.New("passkey: RP ID must be a domain name, not an IP address")
	}
	if len(origins) == 0 {
		return nil, errors.New("passkey: at least one origin is required")
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:                  rpID,
		RPDisplayName:         displayName,
		RPOrigins:             origins,
		AttestationPreference: protocol.PreferNoAttestation,
		// We request no extensions and act on no extension output, so an
		// output a browser or password manager sends unprompted is
		// ignored rather than failing the person's login.
		ExtensionsUnsolicitedOutputPolicy: protocol.UnsolicitedOutputPolicyIgnore,
		Timeouts: webauthn.TimeoutsConfig{
			// The store enforces ceremony expiry; these are the hints
			// sent to the browser.
			Login:        webauthn.TimeoutConfig{Timeout: DefaultLifetime, TimeoutUVD: DefaultLifetime},
			Registration: webauthn.TimeoutConfig{Timeout: DefaultLifetime, TimeoutUVD: DefaultLifetime},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: relying party configuration: %w", err)
	}
	return w, nil
}

// Service runs ceremonies. Build it with named fields; Now, Lifetime and
// Rand have defaults.
type Service struct {
	WebAuthn   *webauthn.WebAuthn
	Persons    store.Persons
	Passkeys   store.Passkeys
	Challenges store.Challenges
	Now        func() time.Time
	// Lifetime is how long a ceremony may take (DefaultLifetime if zero).
	Lifetime time.Duration
	// Rand is the source of ceremony IDs (crypto/rand if nil).
	Rand io.Reader
}

// Ceremony kinds.
const (
	kindLogin    = "login"
	kindRegister = "register"
)

// ceremony is what the store keeps between Begin and Finish.
type ceremony struct {
	Kind    string               `json:"kind"`
	Session webauthn.SessionData `json:"session"`
	Attempt string               `json:"attempt,omitempty"`
	Binding string               `json:"binding,omitempty"`
	// Expires is the ceremony's expiry, also the store's.
	Expires time.Time `json:"expires"`
	// Registration only.
	Person    *store.Person `json:"person,omitempty"`
	NewPerson bool          `json:"new_person,omitempty"`
	Name      string        `json:"name,omitempty"`
	MaxLevel  string        `json:"max_level,omitempty"`
	Max       int           `json:"max,omitempty"`
	AddedBy   string        `json:"added_by,omitempty"`
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) lifetime() time.Duration {
	if s.Lifetime > 0 {
		return s.Lifetime
	}
	return DefaultLifetime
}

func (s *Service) newID() (string, error) {
	r := s.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("passkey: ceremony id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Service) put(ctx context.Context, c *ceremony) (string, error) {
	id, err := s.newID()
	if err != nil {
		return "", err
	}
	c.Expires = s.now().Add(s.lifetime())
	data, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("passkey: encode ceremony: %w", err)
	}
	if err := s.Challenges.PutChallenge(ctx, challengePrefix+id, data, c.Expires); err != nil {
		return "", fmt.Errorf("passkey: store ceremony: %w", err)
	}
	return id, nil
}

// take removes the ceremony from the store, so it can be finished once.
func (s *Service) take(ctx context.Context, id, kind string) (*ceremony, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrReplay
	}
	// Taken whatever its expiry (the zero time is before any), so that
	// one past its time is told apart from one unknown or used, and
	// checked against the expiry it carries.
	data, err := s.Challenges.TakeChallenge(ctx, challengePrefix+id, time.Time{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrReplay
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: take ceremony: %w", err)
	}
	var c ceremony
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("passkey: decode ceremony: %w", err)
	}
	if c.Kind != kind {
		return nil, ErrWrongCeremony
	}
	// One stored without its expiry fails closed.
	if !s.now().Before(c.Expires) {
		return nil, ErrCeremonyExpired
	}
	return &c, nil
}

// user adapts a person and their passkeys to webauthn.User.
type user struct {
	p     *store.Person
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte { return u.p.WebAuthnID }

func (u *user) WebAuthnName() string { return displayName(u.p) }

func (u *user) WebAuthnDisplayName() string { return displayName(u.p) }

func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// displayName is what the authenticator shows in its account list: the
// person's name, never an identity number.
func displayName(p *store.Person) string {
	n := strings.TrimSpace(p.GivenName + " " + p.FamilyName)
	if n == "" {
		return "Varde"
	}
	return n
}

func flagsOf(pk *store.Passkey) protocol.AuthenticatorFlags {
	var f protocol.AuthenticatorFlags
	if pk.UserPresent {
		f |= protocol.FlagUserPresent
	}
	if pk.UserVerified {
		f |= protocol.FlagUserVerified
	}
	if pk.BackupEligible {
		f |= protocol.FlagBackupEligible
	}
	if pk.BackupState {
		f |= protocol.FlagBackupState
	}
	return f
}

func credentialOf(pk *store.Passkey) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, 0, len(pk.Transports))
	for _, t := range pk.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID:              pk.CredentialID,
		PublicKey:       pk.PublicKey,
		AttestationType: pk.AttestationType,
		Transport:       transports,
		Flags:           webauthn.NewCredentialFlags(flagsOf(pk)),
		Authenticator:   webauthn.Authenticator{AAGUID: pk.AAGUID, SignCount: pk.SignCount},
	}
}

// checkClientData applies the client data checks whose failure we report
// with their own error, before the library repeats them with the
// signature (§7.1 and §7.2: C.type, C.challenge, C.origin, C.crossOrigin,
// C.topOrigin).
func (s *Service) checkClientData(c protocol.CollectedClientData, want protocol.CeremonyType, session *webauthn.SessionData) error {
	if c.Type != want {
		return fmt.Errorf("%w: wrong ceremony type", ErrBadInput)
	}
	if c.Challenge != session.Challenge {
		return fmt.Errorf("%w: challenge does not match", ErrWrongCeremony)
	}
	if !expectedOrigin(c.Origin, session.GetOrigins(s.WebAuthn.Config.RPOrigins)) {
		return fmt.Errorf("%w: origin not allowed", ErrWrongOrigin)
	}
	if c.CrossOrigin || c.TopOrigin != "" {
		return fmt.Errorf("%w: cross-origin ceremony", ErrWrongOrigin)
	}
	return nil
}

// expectedOrigin reports whether got, a client data origin, is one of
// the origins want as a browser serialises it (scheme://host[:port], in
// lower case, without the scheme's default port), byte for byte (§7.1,
// §7.2: "verify that the value of C.origin is an origin expected by the
// Relying Party"; §13.4.9). go-webauthn's own comparison takes any URL
// whose scheme and host match, with a path, a query, user info or
// another case; none of those is an origin.
func expectedOrigin(got string, want []string) bool {
	for _, w := range want {
		if got == serialisedOrigin(w) {
			return true
		}
	}
	return false
}

// serialisedOrigin is origin o (scheme://host[:port]) as a browser
// serialises it; o itself if it is not one.
func serialisedOrigin(o string) string {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return o
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" || strings.Contains(host, ":") {
		host = net.JoinHostPort(host, port)
		host = strings.TrimSuffix(host, ":")
	}
	return scheme + "://" + host
}

// checkAuthData checks the RP ID hash and the UP and UV flags (§7.1 and
// §7.2: rpIdHash, "verify that the UP bit is set", "verify that the UV
// bit is set").
func (s *Service) checkAuthData(a protocol.AuthenticatorData, session *webauthn.SessionData) error {
	rpID := session.GetRelyingPartyID(s.WebAuthn.Config.RPID)
	want := sha256.Sum256([]byte(rpID))
	if subtle.ConstantTimeCompare(a.RPIDHash, want[:]) != 1 {
		return fmt.Errorf("%w: RP ID hash does not match", ErrWrongOrigin)
	}
	if !a.Flags.HasUserPresent() || !a.Flags.HasUserVerified() {
		return ErrNotVerified
	}
	return nil
}

// libraryError wraps a go-webauthn error as ErrInvalid with its type
// only: its details can quote the response.
func libraryError(err error) error {
	var unknown *protocol.ErrorUnknownCredential
	if errors.As(err, &unknown) {
		return ErrUnknownCredential
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w (%s)", ErrInvalid, pe.Type)
	}
	return ErrInvalid
}
