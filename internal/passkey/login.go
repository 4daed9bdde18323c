package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/varde-eid/varde/internal/store"
)

// LoginResult is a verified discoverable login.
type LoginResult struct {
	// AttemptID is what BeginLogin was given.
	AttemptID string
	Person    *store.Person
	// Passkey is the credential used, as stored after this login.
	Passkey *store.Passkey
	// UserVerified, BackupEligible and BackupState are the flags of this
	// assertion's authenticator data.
	UserVerified   bool
	BackupEligible bool
	BackupState    bool
}

// BeginLogin starts a discoverable login for attemptID. It returns the
// ceremony ID the response must be finished under and the options to
// pass to navigator.credentials.get, as JSON {"publicKey": {...}}:
// empty allowCredentials (§5.5: the authenticator offers its discoverable
// credentials) and userVerification "required".
func (s *Service) BeginLogin(ctx context.Context, attemptID string) (ceremonyID string, options json.RawMessage, err error) {
	assertion, session, err := s.WebAuthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return "", nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	opts, err := json.Marshal(assertion)
	if err != nil {
		return "", nil, fmt.Errorf("passkey: encode options: %w", err)
	}
	id, err := s.put(ctx, &ceremony{Kind: kindLogin, Session: *session, Attempt: attemptID})
	if err != nil {
		return "", nil, err
	}
	return id, opts, nil
}

// FinishLogin verifies body, the PublicKeyCredential JSON the browser
// returned, against ceremony ceremonyID, and records the use of the
// passkey. The ceremony is used up whatever the outcome. A login refused
// although its signature verified is a *CredentialError naming the
// passkey and its person.
//
// A failure once the ceremony is found is an *AttemptError naming the
// login attempt it was begun for (AttemptOf); one with no ceremony found
// (made up, used already, past its time, or not read) names none.
func (s *Service) FinishLogin(ctx context.Context, ceremonyID string, body []byte) (*LoginResult, error) {
	// Taken first, so that no response, however bad, leaves the
	// ceremony to be tried again.
	c, err := s.take(ctx, ceremonyID, kindLogin)
	if len(body) > MaxResponseSize {
		err = fmt.Errorf("%w: too large", ErrBadInput)
		if c != nil {
			err = &AttemptError{Attempt: c.Attempt, Err: err}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	res, err := s.finishLogin(ctx, c, body)
	if err != nil {
		return nil, &AttemptError{Attempt: c.Attempt, Err: err}
	}
	return res, nil
}

// AttemptError is a failed login whose ceremony was found: Attempt is
// the login attempt BeginLogin was given for it, so that whoever
// records the failure can say whose attempt failed. errors.Is and
// errors.As see Err.
type AttemptError struct {
	Attempt string
	Err     error
}

func (e *AttemptError) Error() string { return e.Err.Error() }
func (e *AttemptError) Unwrap() error { return e.Err }

// AttemptOf returns the login attempt of a FinishLogin failure whose
// ceremony was found, and false for one with none found: a response to
// a ceremony made up or used already anyone can send.
func AttemptOf(err error) (string, bool) {
	var ae *AttemptError
	if errors.As(err, &ae) {
		return ae.Attempt, true
	}
	return "", false
}

// finishLogin is FinishLogin once its ceremony c is taken.
func (s *Service) finishLogin(ctx context.Context, c *ceremony, body []byte) (*LoginResult, error) {
	parsed, err := ParseAssertion(body)
	if err != nil {
		return nil, err
	}
	if err := s.checkClientData(parsed.Response.CollectedClientData, protocol.AssertCeremony, &c.Session); err != nil {
		return nil, err
	}
	ad := parsed.Response.AuthenticatorData
	if err := s.checkAuthData(ad, &c.Session); err != nil {
		return nil, err
	}

	// Identify the person by the user handle and the credential by its
	// ID; the credential must be theirs (§7.2 "identify the user").
	handle := parsed.Response.UserHandle
	if len(handle) == 0 {
		return nil, fmt.Errorf("%w: no user handle", ErrUnknownCredential)
	}
	person, err := s.Persons.GetPersonByWebAuthnID(ctx, handle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownCredential
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: look up person: %w", err)
	}
	pk, err := s.Passkeys.GetPasskey(ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownCredential
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: look up passkey: %w", err)
	}
	if pk.PersonID != person.ID {
		return nil, ErrUnknownCredential
	}

	// The library verifies the signature and everything else. We hand it
	// the credential with the asserted BE flag so that its own BE check
	// passes, and compare BE ourselves after the signature is known to
	// be good: a failure is then reported for what it is.
	beAsserted := ad.Flags.HasBackupEligible()
	rec := credentialOf(pk)
	f := flagsOf(pk) &^ protocol.FlagBackupEligible
	if beAsserted {
		f |= protocol.FlagBackupEligible
	}
	rec.Flags = webauthn.NewCredentialFlags(f)
	u := &user{p: person, creds: []webauthn.Credential{rec}}
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		if !bytes.Equal(rawID, pk.CredentialID) || !bytes.Equal(userHandle, person.WebAuthnID) {
			return nil, ErrUnknownCredential
		}
		return u, nil
	}
	_, cred, err := s.WebAuthn.ValidatePasskeyLogin(handler, c.Session, parsed)
	if err != nil {
		return nil, libraryError(err)
	}

	// Signature counter (§7.2 signCount step): if either counter is
	// non-zero, the new one must be greater. We fail closed.
	count := ad.Counter
	if cred.Authenticator.CloneWarning || ((count != 0 || pk.SignCount != 0) && count <= pk.SignCount) {
		return nil, &CredentialError{Err: ErrCloned, PersonID: person.ID, CredentialID: pk.CredentialID}
	}
	if beAsserted != pk.BackupEligible {
		return nil, &CredentialError{Err: ErrBackupEligibility, PersonID: person.ID, CredentialID: pk.CredentialID}
	}

	use := store.PasskeyUse{SignCount: count, BackupState: ad.Flags.HasBackupState(), LastUsedAt: s.now()}
	err = s.Passkeys.UpdatePasskeyUse(ctx, pk.CredentialID, pk.SignCount, use)
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, ErrConcurrentUse
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrUnknownCredential
	case err != nil:
		return nil, fmt.Errorf("passkey: record use: %w", err)
	}
	updated := *pk
	updated.SignCount, updated.BackupState, updated.LastUsedAt = use.SignCount, use.BackupState, use.LastUsedAt
	return &LoginResult{
		AttemptID:      c.Attempt,
		Person:         person,
		Passkey:        &updated,
		UserVerified:   ad.Flags.HasUserVerified(),
		BackupEligible: beAsserted,
		BackupState:    use.BackupState,
	}, nil
}

// ParseAssertion parses an authentication response (the JSON form of a
// PublicKeyCredential with an AuthenticatorAssertionResponse, §5.1.4)
// without verifying it. Every failure is ErrBadInput.
func ParseAssertion(body []byte) (*protocol.ParsedCredentialAssertionData, error) {
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: too large", ErrBadInput)
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, ErrBadInput
	}
	return p, nil
}

// ParseAttestation parses a registration response (a PublicKeyCredential
// with an AuthenticatorAttestationResponse, §5.1.3) without verifying it.
// Every failure is ErrBadInput.
func ParseAttestation(body []byte) (*protocol.ParsedCredentialCreationData, error) {
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: too large", ErrBadInput)
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return nil, ErrBadInput
	}
	return p, nil
}
