package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/varde-eid/varde/internal/store"
)

// RegistrationRequest describes a registration ceremony to begin.
type RegistrationRequest struct {
	// Person receives the passkey. Its WebAuthnID is the user handle and
	// must be set.
	Person *store.Person
	// NewPerson means Person is not stored yet: FinishRegistration stores
	// it (with its identifiers) and the passkey in one write, so neither
	// an abandoned ceremony nor a failed write leaves a person behind.
	NewPerson bool
	// Exclude are the person's existing passkeys; the authenticator
	// refuses to make a second credential for the same person (§5.4
	// excludeCredentials).
	Exclude []*store.Passkey
	// Name is the label stored with the passkey ("Phone").
	Name string
	// Attempt is returned by FinishRegistration unchanged.
	Attempt string
	// Binding, if set, must be given again to FinishRegistration: it ties
	// the ceremony to whoever began it, for example a session.
	Binding string
	// MaxLevel is stored with the passkey (store.Passkey.MaxLevel): the
	// level of the login that adds it; "" at enrolment.
	MaxLevel string
	// Max, if above 0, is how many passkeys the person may hold:
	// FinishRegistration stores the passkey only if they hold fewer, in
	// the same write (store.Passkeys.CreatePasskey), and returns ErrLimit
	// otherwise.
	Max int
	// AddedBy, if set, is the session adding a passkey to a person who
	// exists: the passkey's write reads that it is still the person's,
	// and stores nothing if it has ended (store.Passkeys.CreatePasskey's
	// by; FinishRegistration then wraps store.ErrNotFound).
	AddedBy string
}

// Registration is a finished registration.
type Registration struct {
	Attempt string
	// Person is the person the passkey belongs to: as stored by
	// FinishRegistration if the request said NewPerson, otherwise as read
	// from the store when the ceremony finished.
	Person *store.Person
	// Passkey is the stored credential.
	Passkey *store.Passkey
	// UserVerified and BackupEligible are the registration's flags.
	UserVerified   bool
	BackupEligible bool
}

// BeginRegistration starts a registration ceremony and returns its ID and
// the options for navigator.credentials.create as JSON {"publicKey":
// {...}}: a resident (discoverable) key and user verification required,
// attestation "none", ES256, RS256 or EdDSA keys.
func (s *Service) BeginRegistration(ctx context.Context, req RegistrationRequest) (ceremonyID string, options json.RawMessage, err error) {
	if req.Person == nil || len(req.Person.WebAuthnID) == 0 || len(req.Person.WebAuthnID) > 64 {
		return "", nil, errors.New("passkey: person needs a user handle of 1 to 64 bytes")
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(req.Exclude))
	for _, pk := range req.Exclude {
		c := credentialOf(pk)
		exclude = append(exclude, c.Descriptor())
	}
	creation, session, err := s.WebAuthn.BeginRegistration(&user{p: req.Person},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			RequireResidentKey: protocol.ResidentKeyRequired(),
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			UserVerification:   protocol.VerificationRequired,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithCredentialParameters(algorithms),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return "", nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	opts, err := json.Marshal(creation)
	if err != nil {
		return "", nil, fmt.Errorf("passkey: encode options: %w", err)
	}
	// A stored person is read again at the finish; the ceremony keeps
	// only what identifies them, not their identifiers.
	keep := req.Person
	if !req.NewPerson {
		keep = &store.Person{ID: req.Person.ID, WebAuthnID: req.Person.WebAuthnID}
	}
	id, err := s.put(ctx, &ceremony{
		Kind: kindRegister, Session: *session, Attempt: req.Attempt, Binding: req.Binding,
		Person: keep, NewPerson: req.NewPerson, Name: req.Name, MaxLevel: req.MaxLevel, Max: req.Max, AddedBy: req.AddedBy,
	})
	if err != nil {
		return "", nil, err
	}
	return id, opts, nil
}

// CancelRegistration ends ceremony ceremonyID, begun with the same
// binding, that the person called off in the browser (WebAuthn's
// NotAllowedError: cancelled or timed out), so that it cannot be
// finished later. ErrReplay if there is no such ceremony left,
// ErrOtherSession if it was begun with another binding.
func (s *Service) CancelRegistration(ctx context.Context, ceremonyID, binding string) error {
	c, err := s.take(ctx, ceremonyID, kindRegister)
	if err != nil {
		return err
	}
	if c.Binding != binding {
		return otherSession(c)
	}
	return nil
}

// FinishRegistration verifies body, the PublicKeyCredential JSON the
// browser returned, against ceremony ceremonyID begun with the same
// binding, and stores the passkey (and the person, if new): for a
// person who exists, only while the session AddedBy names, if any, is
// still theirs (else store.ErrNotFound, wrapped). If events is
// not nil, it is called with the passkey about to be stored, and the
// audit events it returns are stored in the same write
// (store.Passkeys.CreatePasskey): the passkey is stored if and only if
// they are. The ceremony is used up whatever the outcome. An error
// wrapping store.ErrOutcomeUnknown (the write got no answer) comes with
// the Registration, whose passkey may or may not be stored: the caller
// reads it back by its credential ID.
func (s *Service) FinishRegistration(ctx context.Context, ceremonyID, binding string, body []byte, events func(*store.Passkey) []*store.AuditEvent) (*Registration, error) {
	return s.finishRegistration(ctx, ceremonyID, binding, body, events, nil)
}

// EndOthers asks FinishRegistration of a passkey added to a person who
// exists to end, in the same write, every other session of theirs but
// Except (store.Passkeys.CreatePasskeyEndingOthers), at Now. Events, if
// not nil, is called as store.Passkeys.CreatePasskeyEndingOthers calls
// it, with the passkey about to be stored; Ended is set to the sessions
// ended.
type EndOthers struct {
	Except string
	Now    time.Time
	Events func(pk *store.Passkey, n int) []*store.AuditEvent
	Ended  []*store.Session
}

// FinishRegistrationEndingOthers is FinishRegistration for a person who
// exists, whose other sessions end in the passkey's write, as end says:
// the passkey is stored if and only if they end. ErrReplay for a
// ceremony that would make a new person.
func (s *Service) FinishRegistrationEndingOthers(ctx context.Context, ceremonyID, binding string, body []byte, end *EndOthers) (*Registration, error) {
	return s.finishRegistration(ctx, ceremonyID, binding, body, nil, end)
}

func (s *Service) finishRegistration(ctx context.Context, ceremonyID, binding string, body []byte, events func(*store.Passkey) []*store.AuditEvent, end *EndOthers) (*Registration, error) {
	// Taken first, so that no response, however bad, leaves the
	// ceremony to be tried again.
	c, err := s.take(ctx, ceremonyID, kindRegister)
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("%w: too large", ErrBadInput)
	}
	if err != nil {
		return nil, err
	}
	if c.Binding != binding {
		return nil, otherSession(c)
	}
	if c.Person == nil || (end != nil && c.NewPerson) {
		return nil, ErrReplay
	}
	parsed, err := ParseAttestation(body)
	if err != nil {
		return nil, err
	}
	if err := s.checkClientData(parsed.Response.CollectedClientData, protocol.CreateCeremony, &c.Session); err != nil {
		return nil, err
	}
	ad := parsed.Response.AttestationObject.AuthData
	if err := s.checkAuthData(ad, &c.Session); err != nil {
		return nil, err
	}
	cred, err := s.WebAuthn.CreateCredential(&user{p: c.Person}, c.Session, parsed)
	if err != nil {
		return nil, libraryError(err)
	}

	// §7.1: "verify that the credentialId is not yet registered for any
	// user". The store's unique key enforces it again on insert.
	if _, err := s.Passkeys.GetPasskey(ctx, cred.ID); err == nil {
		return nil, ErrCredentialExists
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("passkey: look up passkey: %w", err)
	}

	now := s.now()
	if !c.NewPerson {
		p, err := s.Persons.GetPerson(ctx, c.Person.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnknownCredential
		}
		if err != nil {
			return nil, fmt.Errorf("passkey: look up person: %w", err)
		}
		if !bytes.Equal(p.WebAuthnID, c.Person.WebAuthnID) {
			return nil, ErrUnknownCredential
		}
		c.Person = p
	}
	transports := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		transports = append(transports, string(t))
	}
	pk := &store.Passkey{
		CredentialID:    cred.ID,
		PersonID:        c.Person.ID,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		UserPresent:     ad.Flags.HasUserPresent(),
		UserVerified:    ad.Flags.HasUserVerified(),
		BackupEligible:  ad.Flags.HasBackupEligible(),
		BackupState:     ad.Flags.HasBackupState(),
		Name:            c.Name,
		CreatedAt:       now,
		MaxLevel:        c.MaxLevel,
	}
	var recorded []*store.AuditEvent
	if events != nil {
		recorded = events(pk)
	}
	if c.NewPerson {
		// The person and their passkey in one write: a failure leaves no
		// person behind without a way in, holding their identifiers.
		if c.Person.CreatedAt.IsZero() {
			c.Person.CreatedAt = now
		}
		err = s.Passkeys.CreatePersonWithPasskey(ctx, c.Person, pk, recorded...)
	} else if end != nil {
		var evs func(int) []*store.AuditEvent
		if end.Events != nil {
			evs = func(n int) []*store.AuditEvent { return end.Events(pk, n) }
		}
		end.Ended, err = s.Passkeys.CreatePasskeyEndingOthers(ctx, pk, c.Max, end.Except, end.Now, evs)
	} else {
		err = s.Passkeys.CreatePasskey(ctx, pk, c.Max, c.AddedBy, recorded...)
	}
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			// A conflict is the credential only if it is stored now;
			// otherwise the person's ID, WebAuthn handle or an identifier
			// was taken and nothing of this enrolment was stored.
			if _, gerr := s.Passkeys.GetPasskey(ctx, cred.ID); gerr == nil {
				return nil, ErrCredentialExists
			}
			return nil, ErrTaken
		}
		if errors.Is(err, store.ErrLimit) {
			return nil, ErrLimit
		}
	}
	reg := &Registration{
		Attempt:        c.Attempt,
		Person:         c.Person,
		Passkey:        pk,
		UserVerified:   pk.UserVerified,
		BackupEligible: pk.BackupEligible,
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		// The passkey may be stored: the caller reads it back by its
		// credential ID, and finishes with reg if it is.
		return reg, fmt.Errorf("passkey: store passkey: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: store passkey: %w", err)
	}
	return reg, nil
}
