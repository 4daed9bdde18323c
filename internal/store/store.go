package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors every backend returns, so callers can branch with errors.Is.
var (
	// ErrNotFound means no record matched.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the write clashed with an existing record (a
	// duplicate key) or a compare-and-swap precondition did not hold.
	ErrConflict = errors.New("store: conflict")
	// ErrUsed: the one-time thing presented (an authorization code) was
	// used already.
	ErrUsed = errors.New("store: already used")
	// ErrExpired: the one-time thing presented (a help desk code) was
	// good once but is past its time.
	ErrExpired = errors.New("store: expired")
	// ErrFull means a bounded store (flow state in memory) refused a
	// write because it holds all it may: the caller tells the person the
	// service is busy and to try again shortly.
	ErrFull = errors.New("store: full")
	// ErrLimit means a write would give one owner more records than the
	// caller allows (a person's passkeys): nothing was written.
	ErrLimit = errors.New("store: limit reached")
	// ErrBlocked means the write would give a blocked person (one whose
	// Varde identity the help desk blocked, PersonBlocks) a way in, or
	// change their account: nothing was written.
	ErrBlocked = errors.New("store: person blocked")
	// ErrSecondNumber means a link would give a person an identifier of
	// a scheme they hold one of already, or two of one scheme
	// (Persons.LinkIdentifiers): a second number of a scheme is the help
	// desk's to add (PersonNumbers), not a login's. Nothing was written.
	ErrSecondNumber = errors.New("store: a second identifier of a scheme the person holds")
	// ErrWayInGone means a session's login proved its person by a way
	// in the person no longer holds (Session.WayIn: a passkey removed,
	// recovery codes replaced, a number taken off them): the session was
	// not stored.
	ErrWayInGone = errors.New("store: the way in the login used is no longer the person's")
	// ErrOutcomeUnknown means a write got no answer to its COMMIT (the
	// connection dropped, or the server ended the session in place of an
	// answer): it may or may not have been stored. A caller
	// neither takes it for "nothing was written" nor writes the same
	// thing again, which could store it twice.
	ErrOutcomeUnknown = errors.New("store: outcome unknown, the write may or may not be stored")
	// ErrUnavailable means the store could not be reached or is
	// overloaded (connection refused or dropped, the server shutting
	// down or out of connections, a write refused by a server that takes
	// none, such as a primary demoted at a failover or a standby not yet
	// promoted, a lock not had
	// within the store's own time limit): nothing about the request was
	// wrong, and the same request may succeed in a little while. A
	// caller answers "try again" (503), not "failed" (500).
	ErrUnavailable = errors.New("store: unavailable, try again shortly")
)

// Unavailable reports whether err means the store could not be reached
// or is overloaded (ErrUnavailable) and nothing may have been written: an
// error that is also ErrOutcomeUnknown is not, since the write may be
// stored, and the caller treats it as such.
func Unavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrOutcomeUnknown)
}

// Rules every backend follows (package storetest checks them all):
//   - Create* methods return ErrConflict when the record's key is taken.
//   - A record with an ExpiresAt is expired at now when now is not before
//     ExpiresAt; a zero ExpiresAt is always expired, except for public
//     keys, where it means the key never expires.
//   - Times come back as the same instant in UTC, kept to the microsecond
//     (finer parts may be dropped); the zero time comes back as the zero
//     time.
//   - Slices come back as stored: nil stays nil and empty stays empty. For
//     byte slices only the contents count (an empty one may come back nil).
//
// Store is every aggregate a node needs, as one value. Consumers should
// depend on the smallest interface they use, not on Store.
type Store interface {
	Clients
	Persons
	PersonBlocks
	PersonNumbers
	Passkeys
	RecoveryCodes
	DeskCodes
	AuthRequests
	Challenges
	Sessions
	SessionEnds
	AuthCodes
	Grants
	Tokens
	ReplayCache
	AuditLog
	AuditHolds
	PublicKeys
	Pins
	Sweeper
	Health
	Incidents
	Maintenances
	Nodes
	Webhooks
	Snapshots
	// Ping reports whether the backend can serve requests (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Clients holds registered relying parties.
type Clients interface {
	// AddClient stores a new client and, in the same atomic write,
	// appends e to the audit log, as AuditLog.AppendAudit appends it: a
	// relying party registered at run time is in the audit log, as its
	// removal is (DeleteClient), and one declared in a configuration
	// file is too (DeclareClient). ErrConflict, and nothing changed, if
	// the ID is taken. e is nil only where nothing is audited, in tests
	// that set up a store.
	AddClient(ctx context.Context, c *Client, e *AuditEvent) error
	// PutClient creates or replaces a client, unaudited: those varde
	// demo and the simulated eIDs make up for themselves at every start
	// (Demo Bank, the eIDs' own clients), and tests' (a node's
	// configuration file's go through DeclareClient, audited). It replaces only a client of the same sector (Client.Sector):
	// ErrConflict, and nothing changed, if the stored one has another,
	// since a relying party's subject identifiers are derived from it
	// and only ChangeClientSector changes it.
	PutClient(ctx context.Context, c *Client) error
	// DeclareClient is PutClient for a client declared in a node's
	// configuration file, which every node stores at every start: it
	// changes nothing, and returns false, if the stored client has c's
	// settings already (Client.Changes); otherwise it stores c, keeping
	// the stored one's CreatedAt, and in the same atomic write appends
	// audit(old), if audit is not nil, to the audit log, old being the
	// client c replaces or nil if there was none, so that a client is
	// audited once per change however many nodes start with the file.
	// ErrConflict, and nothing changed, if the stored one has another
	// sector (Client.Sector).
	DeclareClient(ctx context.Context, c *Client, audit func(old *Client) *AuditEvent) (changed bool, err error)
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]*Client, error)
	// DeleteClient removes the client and, in the same atomic write,
	// revokes at now (as Grants.RevokeGrant does, keeping an earlier
	// RevokedAt) every grant issued to it under which a token is still
	// stored, so its refresh and access tokens stop working, and stay
	// stopped if a client with the same ID is added later. If e is not
	// nil it is appended to the audit log in that write, as
	// AuditLog.AppendAudit appends it. It returns how many grants it
	// revoked; ErrNotFound, and nothing changed, if there is no such
	// client. A grant whose tokens have all expired and been swept has
	// nothing left to revoke, and may be left as it is. In the same write
	// it deletes the client's authorization requests (pushed or in
	// progress) and its codes not yet redeemed, so that no login begun
	// for it ends in a code, and no code issued to it is redeemed, by a
	// client added later with the same ID. And it abandons, at now and
	// with LastError DeliveryClientRemoved, the client's webhook
	// deliveries neither delivered nor abandoned, leased or not, so that
	// nothing more is sent to its URLs; an attempt in flight cannot
	// record itself (ErrConflict, as for a lost lease).
	DeleteClient(ctx context.Context, id string, now time.Time, e *AuditEvent) (revoked int, err error)
	// ChangeClientSector replaces the stored client c.ID with c if the
	// stored one's sector (Client.Sector) is from, and in the same
	// atomic write revokes at now, as DeleteClient does, every grant
	// issued to the client under which a token is still stored, and
	// appends e, if not nil, to the audit log, as AuditLog.AppendAudit
	// appends it. A relying party's subject identifiers are derived from
	// its sector (ADR 4), so no refresh token issued before the change
	// can bring an ID token whose sub differs from the first's (OIDC
	// Core §12.2). It returns how many grants it revoked; ErrNotFound if
	// there is no such client, ErrConflict if its sector is not from,
	// and either way nothing changed.
	ChangeClientSector(ctx context.Context, c *Client, from string, now time.Time, e *AuditEvent) (revoked int, err error)
}

// LevelChange raises the person's identifier (Scheme, Value) to
// MaxLevel if it is at Was.
type LevelChange struct {
	Identifier
	Was string
}

// Persons holds persons and their identifiers. An identifier (scheme,
// value) belongs to at most one person.
type Persons interface {
	// CreatePerson stores p and its identifiers atomically; ErrConflict if
	// the ID, WebAuthnID or any identifier is taken.
	CreatePerson(ctx context.Context, p *Person) error
	GetPerson(ctx context.Context, id string) (*Person, error)
	GetPersonByWebAuthnID(ctx context.Context, webauthnID []byte) (*Person, error)
	GetPersonByIdentifier(ctx context.Context, scheme, value string) (*Person, error)
	// LinkIdentifiers is one link of identifiers to the person, in one
	// atomic write: it adds every one of add, raises each of raise that
	// is still at its Was level (one changed since is left as it is)
	// and, if it added or raised any, ends every other session of the
	// person but except as Sessions.EndPersonSessions does and appends
	// events(raised, n), raised those it raised and n the sessions it
	// ended, to the audit log. It returns the sessions ended; none when
	// nothing changed, and then events is not called. ErrConflict if any
	// of add already belongs to anyone; ErrSecondNumber if one of add is
	// of a scheme the person holds an identifier of, or of the same
	// scheme as another of add; ErrNotFound if there is no such person,
	// or except (if not "") is no longer a session of theirs; ErrBlocked
	// if the person is blocked (PersonBlocks). The person's block and
	// identifiers, and the session except, are read in the same write,
	// so that a block stored, a number linked, or the session ended (a
	// number removed, PersonNumbers.RemoveIdentifier) after the caller
	// looked still stops the link; in each case nothing is stored.
	LinkIdentifiers(ctx context.Context, personID string, add []Identifier, raise []LevelChange, except string, now time.Time, events func(raised []LevelChange, n int) []*AuditEvent) ([]*Session, error)
	// UnlinkIdentifier takes id (its scheme and value), an identifier a
	// link added to personID (Identifier.Linked), off them in one atomic
	// write, at the person's own asking (ADR 57): a login proving it no
	// longer finds them. In the same write it ends every other session
	// of the person but except, as Sessions.EndPersonSessions does, and
	// appends the events that events returns for the number of sessions
	// ended, as AuditLog.AppendAudit appends them and in their order; it
	// may be called more than once and must depend on nothing but n. It
	// returns the sessions it ended.
	//
	// ErrNotFound if there is no such person, if they do not hold id
	// (unlinked already), or if except (when not "") is no longer a
	// session of theirs, read in the same write: a session that ended
	// after the caller read it changes nothing. ErrConflict, saying
	// which, if id is one the person was proofed with or the help desk
	// added (not Linked), or their last identifier: a person is never
	// left without a number, as PersonNumbers.RemoveIdentifier leaves
	// none. The person's identifiers are read with their row locked,
	// so two unlinks at once cannot both pass that rule. On any error
	// nothing changed.
	UnlinkIdentifier(ctx context.Context, personID string, id Identifier, except string, now time.Time, events func(n int) []*AuditEvent) ([]*Session, error)
	// NoteIdentifierUse records at as the LastUsedAt of each of ids (by
	// scheme and value) that personID holds and last used before at, in
	// one atomic write: a use recorded later by another login stays.
	// Identifiers the person does not hold are passed over. ErrNotFound
	// if there is no such person.
	NoteIdentifierUse(ctx context.Context, personID string, ids []Identifier, at time.Time) error
	// UpdatePersonProfile replaces the person's given name, family name
	// and birth date with pr's; ErrNotFound if there is no such person.
	UpdatePersonProfile(ctx context.Context, personID string, pr Profile) error
}

// Passkeys holds WebAuthn credentials.
type Passkeys interface {
	// CreatePasskey returns ErrConflict if the credential ID is taken,
	// ErrNotFound if the person does not exist and ErrBlocked if they are
	// blocked (PersonBlocks), read in the same write, so that a block
	// stored after the caller looked still stops the new way in, and a
	// block stored after the write finds the passkey. If max > 0 and the person
	// holds max passkeys or more already, it returns ErrLimit and stores
	// nothing; the count and the insert are one atomic step, so writes
	// at once cannot together pass max. The events, if any, are appended
	// to the audit log in the same atomic write, as AuditLog.AppendAudit
	// appends them and in their order: the passkey is stored if and only
	// if the events recording it are. ErrNotFound, and nothing stored, if
	// by (the session adding the passkey, when not "") is no longer a
	// session of the person's, read in the same write: a session that
	// ended after the caller read it adds no way in.
	CreatePasskey(ctx context.Context, p *Passkey, max int, by string, events ...*AuditEvent) error
	// CreatePasskeyEndingOthers is CreatePasskey that, in the same atomic
	// write, ends every other session of the person but except, as
	// Sessions.EndPersonSessions does, and returns the sessions it ended:
	// a new way in never stands while a session it is meant to outlast
	// stays live. ErrNotFound, and nothing stored, if except (the session
	// adding the passkey, when not "") is no longer a session of the
	// person's, read in the same write: a session that ended after the
	// caller read it changes nothing. On any error nothing is stored and
	// no session ends. If events is not nil, the events it returns for
	// the number of sessions ended are appended in the same write, as for
	// DeletePasskey; it may be called more than once and must depend on
	// nothing but n.
	CreatePasskeyEndingOthers(ctx context.Context, p *Passkey, max int, except string, now time.Time, events func(n int) []*AuditEvent) ([]*Session, error)
	// CreatePersonWithPasskey stores a new person, with their
	// identifiers, and their first passkey in one atomic write: if either
	// fails nothing is stored. ErrConflict if the person's ID, WebAuthnID
	// or an identifier, or the credential ID, is taken. The events, if
	// any, are appended in the same write, as CreatePasskey appends them.
	CreatePersonWithPasskey(ctx context.Context, person *Person, p *Passkey, events ...*AuditEvent) error
	GetPasskey(ctx context.Context, credentialID []byte) (*Passkey, error)
	ListPasskeys(ctx context.Context, personID string) ([]*Passkey, error)
	// UpdatePasskeyUse records a successful assertion. It is a
	// compare-and-swap on the sign count: if the stored count is not
	// oldSignCount it returns ErrConflict and changes nothing.
	UpdatePasskeyUse(ctx context.Context, credentialID []byte, oldSignCount uint32, u PasskeyUse) error
	// DeletePasskey removes one of personID's passkeys unless it is their
	// last way in: ErrConflict, and nothing removed, if they would be left
	// with no passkey and no unused recovery code; ErrNotFound if they have
	// no such passkey. The check and the removal are one atomic step, so
	// two removals at once cannot both pass it. In the same atomic write
	// it ends every other session of the person but except, as
	// Sessions.EndPersonSessions does, and returns the sessions it ended:
	// a passkey that is lost or in the wrong hands is removed together
	// with whatever sessions it may have opened, never one without the
	// other. If events is not nil, the events it
	// returns for the number of sessions ended are appended to the audit
	// log in the same write, as AuditLog.AppendAudit appends them and in
	// their order: the passkey is removed if and only if the events
	// recording it are stored. It may be called more than once, when the
	// write is run again, and must depend on nothing but n. ErrNotFound,
	// and nothing removed, if except (the session removing the passkey,
	// when not "") is no longer a session of the person's, read in the
	// same write: a session that ended after the caller read it changes
	// nothing.
	DeletePasskey(ctx context.Context, personID string, credentialID []byte, except string, now time.Time, events func(n int) []*AuditEvent) ([]*Session, error)
	// RenamePasskey gives personID's passkey credentialID the name name:
	// ErrNotFound if they have no such passkey, ErrConflict, and nothing
	// changed, if another of their passkeys has that name already
	// (SamePasskeyName); ErrBlocked, and nothing changed, if the person is
	// blocked (PersonBlocks), read in the same write; ErrNotFound, and
	// nothing changed, if by (the session renaming it, when not "") is no
	// longer a session of the person's, read in the same write: a session
	// that ended after the caller read it changes nothing. The check and
	// the change are one atomic step, so
	// two renames at once cannot give two of the person's passkeys one
	// name. The events, if any, are appended to the audit log in the same
	// atomic write, as AuditLog.AppendAudit appends them and in their
	// order: the name changes if and only if the events recording it are
	// stored.
	RenamePasskey(ctx context.Context, personID string, credentialID []byte, name, by string, events ...*AuditEvent) error
}

// PasskeyUse is what a successful assertion changes on a passkey.
type PasskeyUse struct {
	SignCount   uint32
	BackupState bool
	LastUsedAt  time.Time
}

// DeskCodes holds the one-time codes the help desk hands a person who
// has lost every way in, after checking who they are in person (ADR
// 62). A help desk code is kept as a recovery code that expires: only
// its hash, in the person's recovery codes, so that
// RecoveryCodes.HasRecoveryCode and RestoreRecoveryCode serve it too,
// and a session opened with it names its hash as WayIn.RecoveryCode.
// RecoveryCodes' counts, descriptions and UseRecoveryCode leave it out:
// it is not one of the person's codes. ReplaceRecoveryCodes and
// ReplaceRecoveryCodesEndingOthers drop it with the codes they replace.
type DeskCodes interface {
	// IssueDeskCode stores hash as personID's help desk code, good until
	// expires, in place of any help desk code they had (used or not); with
	// removePasskeys, deletes every passkey of theirs; ends every session
	// of theirs and revokes every grant, as BlockPerson does; and appends
	// the events that events returns for the passkeys deleted, sessions
	// ended and grants revoked (none if events is nil): all in one
	// write, which returns the sessions it ended. ErrNotFound if there is
	// no such person, ErrBlocked if they are blocked (a retired person
	// is), ErrConflict if the hash is taken; then nothing changes.
	IssueDeskCode(ctx context.Context, personID string, hash []byte, expires, now time.Time, removePasskeys bool, events func(passkeys, sessions, grants int) []*AuditEvent) ([]*Session, error)
	// UseDeskCode marks the help desk code with this hash used at now,
	// if it is unused and now is before its expiry, and returns its
	// person; only one of any number of uses at once succeeds.
	// ErrNotFound if no help desk code has this hash, ErrUsed if it was
	// used, ErrExpired if it is past its time.
	UseDeskCode(ctx context.Context, hash []byte, now time.Time) (personID string, err error)
	// GetDeskCode says when personID's help desk code was issued, until
	// when it is good and when it was used, never the code or its hash;
	// ErrNotFound if they hold none.
	GetDeskCode(ctx context.Context, personID string) (DeskCode, error)
}

// RecoveryCodes holds hashes of single-use recovery codes.
type RecoveryCodes interface {
	// ReplaceRecoveryCodes drops personID's codes and stores these hashes;
	// ErrNotFound if the person does not exist, ErrBlocked if hashes is
	// not empty and the person is blocked (PersonBlocks), read in the
	// same write as for Passkeys.CreatePasskey: dropping a blocked
	// person's codes gives them nothing, new ones would. The events, if any, are
	// appended to the audit log in the same atomic write, as
	// AuditLog.AppendAudit appends them and in their order: the codes are
	// replaced if and only if the events recording it are stored.
	ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, now time.Time, events ...*AuditEvent) error
	// ReplaceRecoveryCodesEndingOthers is ReplaceRecoveryCodes that, in
	// the same atomic write, ends every other session of the person but
	// except, as Sessions.EndPersonSessions does, and returns the
	// sessions it ended: codes replaced because the old ones may be in
	// the wrong hands are replaced together with the end of whatever
	// sessions those codes may have opened, never one without the other.
	// ErrNotFound, and nothing replaced, if except (the session asking
	// for new codes, when not "") is no longer a session of the
	// person's, read in the same write: a session that ended after the
	// caller read it changes nothing. On any error nothing is replaced
	// and no session ends. If events is not nil, the events it returns
	// for the number of sessions ended are appended in the same write, as
	// for Passkeys.DeletePasskey; it may be called more than once and
	// must depend on nothing but n.
	ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(n int) []*AuditEvent) ([]*Session, error)
	// UseRecoveryCode marks the unused code with this hash as used at now
	// and returns its owner; ErrNotFound if there is no such unused code.
	// Two concurrent uses of one code: exactly one succeeds.
	UseRecoveryCode(ctx context.Context, hash []byte, now time.Time) (personID string, err error)
	// RestoreRecoveryCode makes the code with this hash, used at usedAt,
	// unused again: for a use that granted nothing. ErrNotFound, and
	// nothing changed, if no code with this hash was used at usedAt (it
	// was replaced, or used again since).
	RestoreRecoveryCode(ctx context.Context, hash []byte, usedAt time.Time) error
	// CountRecoveryCodes reports how many unused codes personID has left.
	CountRecoveryCodes(ctx context.Context, personID string) (int, error)
	// DescribeRecoveryCodes says what personID holds of recovery codes,
	// never a code or its hash: how many are left and used, when they
	// were made and when one was last used. A person with none, or no
	// such person, is the zero RecoveryCodeSet.
	DescribeRecoveryCodes(ctx context.Context, personID string) (RecoveryCodeSet, error)
	// HasRecoveryCode reports whether personID holds the code with this
	// hash, used or not: how a replace whose write got no answer
	// (ErrOutcomeUnknown) learns whether its codes are the stored ones.
	HasRecoveryCode(ctx context.Context, personID string, hash []byte) (bool, error)
}

// AuthRequests holds validated authorization requests, both pushed (PAR)
// and front-channel, while the person authenticates.
type AuthRequests interface {
	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	// GetAuthRequest returns ErrNotFound for unknown or expired (at now) requests.
	GetAuthRequest(ctx context.Context, id string, now time.Time) (*AuthRequest, error)
	// UseAuthRequest marks a pushed, unused request used, bound to
	// browser (AuthRequest.Browser), and gives it a new expiry,
	// atomically (RFC 9126 §4: a request_uri is used once): ErrConflict
	// if it was already used, ErrNotFound if it is unknown, expired at
	// now or was not pushed. Of two concurrent uses exactly one
	// succeeds, and its browser is the request's.
	UseAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time) error
	// ExtendAuthRequest moves the expiry of request id forward to
	// expiresAt, atomically, for a person still at it who asks for more
	// time (ADR 50): only while the request is live at now, bound to
	// browser (AuthRequest.Browser, never "") and, if pushed, used; and
	// never past its creation plus limit. ErrNotFound, and nothing
	// changed, if it is unknown, expired at now, bound to another
	// browser or to none, or pushed and not used yet; ErrConflict, and
	// nothing changed, if expiresAt is not after its expiry or is after
	// CreatedAt plus limit. A request that became a code is gone, so
	// it is not found.
	ExtendAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time, limit time.Duration) error
	// UpdateAuthRequest replaces a stored request (ErrNotFound if gone).
	UpdateAuthRequest(ctx context.Context, r *AuthRequest) error
	// DeleteAuthRequest is idempotent: deleting an unknown request is not
	// an error.
	DeleteAuthRequest(ctx context.Context, id string) error
}

// Challenges holds short-lived ceremony state (WebAuthn session data,
// upstream login state). Take is atomic: a challenge is used at most once.
type Challenges interface {
	// PutChallenge creates or replaces the challenge with this id.
	PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error
	// TakeChallenge deletes and returns the challenge; ErrNotFound if it
	// is unknown, already taken or expired at now.
	TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error)
}

// Sessions holds browser sessions at Varde (single sign-on state).
type Sessions interface {
	// CreateSession stores s; ErrConflict if its ID is taken. The events,
	// if any, are appended to the audit log in the same atomic write, as
	// AuditLog.AppendAudit appends them and in their order: the session
	// is stored if and only if the events recording how it began are.
	// ErrWayInGone, and nothing stored, if s.PersonID no longer holds
	// s.WayIn, read in the same write: the writes that take a way in
	// away end the person's sessions as they commit, so a removal lands
	// either before the session's write, which it then stops, or after
	// it, which it then ends. No session outlives the way in it was
	// opened by.
	CreateSession(ctx context.Context, s *Session, events ...*AuditEvent) error
	// GetSession returns ErrNotFound for unknown sessions and for those
	// that had ended at now (SessionLive: expired, or unused for the
	// SetSessionIdleTimeout).
	GetSession(ctx context.Context, id string, now time.Time) (*Session, error)
	// SessionLineLive reports whether the line of sessions that began
	// with root (Session.Root) has a session live at now: root itself,
	// or one that continues it.
	SessionLineLive(ctx context.Context, root string, now time.Time) (bool, error)
	// SetSessionIdleTimeout sets how long a session left unused lasts
	// (session.Manager.IdleTimeout; 0 or less: no limit): one unused that
	// long has ended, so GetSession does not find it, and its end is
	// recorded as it is deleted as for an expired one (EndSession,
	// Sweeper).
	SetSessionIdleTimeout(d time.Duration)
	// TouchSession records that the session was used at at: LastUsed
	// becomes at, unless it is later already. ErrNotFound if the session
	// is gone.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// AddSessionClient records that clientID received tokens in the
	// session, once however often it is called; ErrNotFound if there is no
	// such session. Event e, if not nil, is appended to the audit log in
	// the same transaction, listed already or not: both are stored or
	// neither is.
	AddSessionClient(ctx context.Context, id, clientID string, e *AuditEvent) error
	// DeleteSession deletes the session and returns it as it was, expired
	// or not; deleting an unknown session returns nil and no error. It
	// records no end: it is for a session that a new one continues
	// (Session.Continues), which the relying parties must not hear of.
	DeleteSession(ctx context.Context, id string) (*Session, error)
	// EndSession deletes the session as DeleteSession does and, in the
	// same atomic write, records its end (SessionEnds) if it had not
	// ended at now (SessionLive: neither expired nor idle past the
	// SetSessionIdleTimeout) and lists clients: the session is gone if and only
	// if the relying parties that received tokens in it are still to be
	// told. One that had ran out of time already has its end recorded as
	// the Sweeper records it (Session.EndReason, SessionExpiredEvent),
	// if a client in it registered a back-channel logout URI. Whoever
	// deletes it gets it back, once, even when two requests end it at
	// the same moment.
	EndSession(ctx context.Context, id string, now time.Time) (*Session, error)
	// EndPersonSessions ends, as EndSession does, every session of
	// personID except the one with ID except (which may be ""), and
	// returns the ones it deleted: when a person's ways to log in change,
	// whoever holds one of their other sessions is logged out. If events
	// is not nil, it is called with the number of sessions deleted and the
	// events it returns are appended to the audit log, in that order, in
	// the same atomic write: the sessions are ended if and only if the
	// events recording it are stored. It may be called more than once,
	// when the write is run again, and must depend on nothing but n.
	// ErrNotFound, and nothing ended, if except (the session asking, when
	// not "") is no longer a session of personID's, read in the same
	// write: a session that ended after the caller read it logs nobody
	// out.
	EndPersonSessions(ctx context.Context, personID, except string, now time.Time, events func(n int) []*AuditEvent) ([]*Session, error)
	// ListPersonSessions returns the sessions of personID live at now
	// (SessionLive, as GetSession finds them), oldest first: what the
	// person's account page shows as where they are logged in.
	ListPersonSessions(ctx context.Context, personID string, now time.Time) ([]*Session, error)
}

// SessionEnds holds the sessions that ended while relying parties had
// received tokens in them, as they were, until the logout tokens telling
// those relying parties are queued (Back-Channel Logout): the outbox
// between ending a session (Sessions.EndSession) and the webhook outbox
// (Webhooks), so that a node that stops between the two loses nothing.
type SessionEnds interface {
	// PendingSessionEnds returns up to limit ended sessions whose logout
	// tokens are not queued yet and that are due before before, those
	// due first first: an end is due when it ended (for a session that
	// ran out of time, when it did, not when it was deleted), and then
	// when DeferSessionEnd last said. Each has its EndReason.
	PendingSessionEnds(ctx context.Context, before time.Time, limit int) ([]*Session, error)
	// DeferSessionEnd records a failure to settle the end of session id
	// and returns the number of failures recorded for it so far, this
	// one included; due gives, from that number, when the end is due
	// next. ErrNotFound if no end of id is pending.
	DeferSessionEnd(ctx context.Context, id string, due func(attempts int) time.Time) (int, error)
	// SettleSessionEnd forgets the end of session id and enqueues ds as
	// Webhooks.EnqueueWebhooks does, in one atomic write. It reports
	// false, and enqueues nothing, if no end of id is pending (settled
	// already, by this node or another); ErrConflict, and changes
	// nothing, if a delivery's ID is taken.
	SettleSessionEnd(ctx context.Context, id string, ds []*WebhookDelivery) (bool, error)
}

// AuthCodes holds authorization codes by the SHA-256 of the code.
type AuthCodes interface {
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// CreateAuthCodeForRequest stores c and deletes the authorization
	// request requestID in one atomic write, so a stored request yields
	// at most one code: ErrNotFound, and c not stored, if the request is
	// gone (already used, or swept); ErrConflict, and the request kept,
	// if c's hash is taken.
	CreateAuthCodeForRequest(ctx context.Context, c *AuthCode, requestID string) error
	// GetAuthCode returns the code, used or not, without changing it;
	// ErrNotFound if unknown. It lets the token endpoint check who
	// presents a code before it spends it.
	GetAuthCode(ctx context.Context, hash []byte) (*AuthCode, error)
	// RedeemAuthCode marks the code used and returns it. If the code was
	// already used it returns the code with ErrConflict, so the caller can
	// revoke what the first redemption issued; ErrNotFound if unknown.
	// Expiry is the caller's check. Two concurrent redemptions: exactly
	// one gets a nil error.
	RedeemAuthCode(ctx context.Context, hash []byte, now time.Time) (*AuthCode, error)
}

// Grants holds token families: everything issued from one authorization
// code shares one grant, and revoking the grant revokes all of it.
type Grants interface {
	CreateGrant(ctx context.Context, g *Grant) error
	// CreateGrantTokens stores g and the tokens issued under it in one
	// atomic write (one commit instead of one per record): ErrConflict if
	// g's ID or any token's hash is taken, and then none of them is
	// stored. If e is not nil it is appended to the audit log in the
	// same write, as AuditLog.AppendAudit appends it: the tokens are
	// stored if and only if the event recording their issue is.
	CreateGrantTokens(ctx context.Context, g *Grant, e *AuditEvent, tokens ...*Token) error
	// CreateGrantTokensForCode redeems the authorization code with
	// codeHash: it marks the code used at now and stores g, the tokens
	// and e as CreateGrantTokens does, in one atomic write, so a code is
	// spent if and only if the grant issued from it is stored. If the
	// code was already used it returns the code with ErrUsed, and stores
	// nothing, so the caller can revoke what the first redemption
	// issued; ErrNotFound if the code is unknown; ErrConflict, and the
	// code left unspent, if g's ID or a token's hash is taken. Expiry is
	// the caller's check. Of concurrent calls for one code exactly one
	// gets a nil error. Where the codes are not kept in the database
	// (flowmem) the two are done in order, the code spent first.
	CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *Grant, e *AuditEvent, tokens ...*Token) (*AuthCode, error)
	GetGrant(ctx context.Context, id string) (*Grant, error)
	// RevokeGrant sets RevokedAt (idempotent); ErrNotFound if unknown.
	RevokeGrant(ctx context.Context, id string, now time.Time) error
	// ListOfflineAccess returns, one per client, the clients that can
	// reach personID's data while the person is away at now: those
	// holding, under a grant not revoked whose scope has offline_access
	// (OIDC Core §11), a refresh token neither used nor expired at now.
	// Sorted by client ID.
	ListOfflineAccess(ctx context.Context, personID string, now time.Time) ([]*OfflineAccess, error)
	// ListPersonGrants returns every stored grant of personID, revoked
	// or not, oldest first (then by ID), each with what its tokens say
	// at now (PersonGrant), never a token or its hash: what the person
	// may know of which services can act for them. It is an operator's
	// read, not a login's: it need not be served by an index. No
	// person ("") holds none.
	ListPersonGrants(ctx context.Context, personID string, now time.Time) ([]*PersonGrant, error)
	// RevokePersonClientGrants revokes, at now, every grant of personID
	// to clientID not revoked yet, and with them every token issued under
	// them, and returns how many it revoked. Event e, if not nil, is
	// appended to the audit log in the same atomic write, whatever the
	// number: the grants are revoked if and only if the event is stored.
	// ErrNotFound, and nothing revoked or appended, if by (the session
	// asking, when not "") is no longer a session of personID's, read in
	// the same write: a session that ended after the caller read it
	// stops no service's access.
	RevokePersonClientGrants(ctx context.Context, personID, clientID, by string, now time.Time, e *AuditEvent) (int, error)
}

// Tokens holds access and refresh tokens by the SHA-256 of the token.
type Tokens interface {
	CreateToken(ctx context.Context, t *Token) error
	// GetToken returns the token whatever its state; callers check expiry,
	// use and grant revocation.
	GetToken(ctx context.Context, hash []byte) (*Token, error)
	// RotateToken marks the refresh token with hash used (rotated) at now
	// and stores the tokens issued in its place, with the audit event e
	// if it is not nil, in one atomic write: either the old token is used
	// up and the new tokens and e are stored, or nothing changes, so a
	// failed rotation leaves the old token usable for a retry. It returns
	// the old token, marked used. With ErrConflict it returns the old
	// token if it was already used (a reuse), and no token if a new
	// token's hash is taken; ErrNotFound if the old token is unknown. Two
	// concurrent rotations: exactly one gets a nil error.
	// The new tokens are stored as issued by the old one: their Parent
	// is set to hash. A token a retry replaced (RevokedAt) is used up:
	// it comes back with ErrConflict as a used one does.
	RotateToken(ctx context.Context, hash []byte, now time.Time, e *AuditEvent, tokens ...*Token) (*Token, error)
	// RetryRotation redoes the rotation of the refresh token with hash,
	// whose answer the client did not receive (ADR 55): in one atomic
	// write it replaces every token that rotation (or an earlier retry
	// of it) issued and that is not replaced yet, marking it revoked and
	// used at now, and stores tokens in their place, as issued by the
	// old one (Parent set to hash), with the audit event e if it is not
	// nil. It returns the old token and the tokens it replaced. Only a
	// refresh token rotated at or after since is retried: ErrConflict,
	// and nothing changed, if the token is not rotated or was rotated
	// before since, or nothing it issued is stored (a rotation before
	// schema 0035 recorded no Parent), or a new token's hash is taken;
	// ErrUsed, and nothing
	// changed, if a token to be replaced was used (its refresh token
	// rotated, its access token used, MarkTokenUsed): the client did
	// receive the answer, and the caller revokes the grant; ErrNotFound
	// if the token is unknown. Of concurrent retries of one token, each
	// replaces what the one before it stored: exactly one set of
	// successors is live after them.
	RetryRotation(ctx context.Context, hash []byte, since, now time.Time, e *AuditEvent, tokens ...*Token) (*Token, []*Token, error)
	// MarkTokenUsed records the first use of the access token with hash
	// at now, if it is neither used nor replaced yet, and reports
	// whether the token may be used: false if a retry replaced it
	// (RevokedAt), before or concurrently. ErrNotFound if unknown.
	MarkTokenUsed(ctx context.Context, hash []byte, now time.Time) (bool, error)
}

// ReplayCache remembers single-use values such as client assertion jti.
type ReplayCache interface {
	// Remember stores key until expiresAt; ErrConflict if the key is
	// already remembered and unexpired at now.
	Remember(ctx context.Context, key string, expiresAt, now time.Time) error
	// Remembered reports whether key is remembered and unexpired at now,
	// changing nothing: a caller that expects a refusal can read instead
	// of writing in vain.
	Remembered(ctx context.Context, key string, now time.Time) (bool, error)
}

// ReplayHorizon is implemented by replay caches that forget what they
// were told before some moment, such as one kept in a process's memory
// (package flowmem). A value that may have been presented before
// RemembersSince cannot be checked, so callers refuse it.
type ReplayHorizon interface {
	RemembersSince() time.Time
}

// AuditLog is append-only and hash-chained.
type AuditLog interface {
	// AppendAudit assigns e.Seq and e.PrevHash, computes e.Hash with
	// e.Seal, and stores it, all atomically with respect to other appends.
	// An address (Details[DetailAddr]) is kept apart from the hashed
	// event: AppendAudit sets e.AddrSalt and e.AddrDigest
	// (AuditEvent.KeepAddrApart) before it seals e, and every read gives
	// the address back under Details[DetailAddr] until
	// DeleteAuditAddresses deletes it.
	AppendAudit(ctx context.Context, e *AuditEvent) error
	// ListAudit returns up to limit events with Seq > afterSeq, in order.
	// VerifyAuditChain checks what it returns.
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*AuditEvent, error)
	// ListAuditRange returns the events q selects, lowest Seq first.
	// Events become visible in Seq order, whichever node appended them:
	// one that sees an event sees every event before it, so a reader
	// that goes on from the last Seq it read (AfterSeq) passes over
	// none.
	ListAuditRange(ctx context.Context, q AuditQuery) ([]*AuditEvent, error)
	// LastAudit returns the newest event, the head of the chain;
	// ErrNotFound if the log is empty.
	LastAudit(ctx context.Context) (*AuditEvent, error)
	// ListPersonAudit returns up to limit of the events naming personID,
	// newest (highest Seq) first: what the person may see of their own.
	ListPersonAudit(ctx context.Context, personID string, limit int) ([]*AuditEvent, error)
	// ListPersonAuditAfter returns up to limit of the events naming
	// personID with Seq > afterSeq, lowest Seq first: every event about
	// the person, page by page, going on from the last Seq read.
	ListPersonAuditAfter(ctx context.Context, personID string, afterSeq int64, limit int) ([]*AuditEvent, error)
	// ListPersonAuditBefore returns up to limit of the events naming
	// personID with Seq < beforeSeq, newest (highest Seq) first: the
	// person's own history, page by page, going back from the oldest
	// Seq read.
	ListPersonAuditBefore(ctx context.Context, personID string, beforeSeq int64, limit int) ([]*AuditEvent, error)
	// DeleteAuditAddresses deletes the addresses kept apart from their
	// events (AuditEvent.KeepAddrApart) of the events whose Time is
	// before before, with their salts, but for those a hold live at now
	// covers (AuditHolds, ADR 45), and says how many it deleted and how
	// many it left for a hold. It may leave one that comes after 2,048
	// kept addresses of events appended before it (Seq) but stamped
	// later, for a later call; held addresses never stall it, however
	// many come first. The events stay and verify; read, they have no
	// Details[DetailAddr] and no AddrSalt. Addresses in the hashed body
	// of events sealed before addresses were kept apart stay
	// (docs/adr/0038).
	DeleteAuditAddresses(ctx context.Context, before, now time.Time) (AddrSweep, error)
}

// PublicKeys holds every node's public signing keys, so any node can
// publish the whole cluster's JWKS.
type PublicKeys interface {
	// PutPublicKey creates or replaces the key with this KID (its
	// RetiredAt and FirstPublishedAt are ignored: the latter is the
	// CreatedAt the key was first stored with, kept when it is
	// replaced); ErrConflict, and nothing changed, if that key was
	// retired: a retired key is never published again.
	PutPublicKey(ctx context.Context, k *PublicKey) error
	// ClaimPublicKey is PutPublicKey for a node that begins signing with
	// the key: it changes nothing and returns a *KeyHeldError if the
	// store holds the key as published by another node whose
	// publication has not expired at k.CreatedAt and that has not left
	// (Nodes.RecordNodeLeft) since it last published the key. Of
	// several nodes that claim one key at once, one at most succeeds.
	ClaimPublicKey(ctx context.Context, k *PublicKey) error
	// ListPublicKeys returns keys not expired at now (a zero ExpiresAt
	// never expires), retired ones included with their RetiredAt, oldest
	// first.
	ListPublicKeys(ctx context.Context, now time.Time) ([]*PublicKey, error)
	// RetirePublicKey marks the key with this KID retired at now and
	// appends e, if not nil, to the audit log, in one atomic write, and
	// returns the key as retired. A retired key stays stored (the sweeper
	// leaves it) so that no node can publish it again. ErrNotFound if
	// there is no such key, ErrConflict if it was retired already.
	RetirePublicKey(ctx context.Context, kid string, now time.Time, e *AuditEvent) (*PublicKey, error)
}

// KeyHeldError is ClaimPublicKey's refusal: Key is the stored key,
// published by another node that has not left. It matches ErrConflict.
type KeyHeldError struct{ Key *PublicKey }

func (e *KeyHeldError) Error() string {
	return fmt.Sprintf("key %s is published by node %q, which has not left since it last published it at %s",
		e.Key.KID, e.Key.Node, e.Key.CreatedAt.UTC().Format(time.RFC3339))
}

// Is makes a KeyHeldError match ErrConflict.
func (e *KeyHeldError) Is(target error) bool { return target == ErrConflict }

// Pins holds values that must stay the same for the life of the store,
// whichever node starts against it, such as a fingerprint of the subject
// salt: a node that brings another value can refuse to start instead of
// giving everyone new identifiers.
type Pins interface {
	// Pin stores value under name at now unless the store holds a value
	// under that name already, and returns the value held: value itself
	// the first time, the first caller's when several race.
	Pin(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error)
	// Pinned returns the value held under name, writing nothing;
	// ErrNotFound if none is.
	Pinned(ctx context.Context, name string) ([]byte, error)
}

// Sweeper removes expired short-lived records.
type Sweeper interface {
	// DeleteExpired removes the authorization requests, challenges,
	// sessions, codes, tokens, replay-cache entries and public keys
	// expired at now, the sessions left unused for the idle timeout
	// (Sessions.SetSessionIdleTimeout, SessionLive), and the grants that can no longer be used. A
	// session it removes that a client with a back-channel logout URI
	// received tokens in has its end recorded in the write that deletes
	// it (SessionEnds, from when it ran out of time: SessionTimedOut,
	// Session.EndReason) with its audit event (SessionExpiredEvent),
	// once, whichever node deletes it; other sessions go with nothing
	// more written. A grant
	// goes with the last of its tokens, and a revoked grant that never
	// had any (the tombstone a replayed code leaves, which must outlive
	// the code) goes TombstoneAge after its revocation. It returns how
	// many records it removed. Webhook deliveries delivered or abandoned
	// go FinishedDeliveryAge after they were made, and help desk codes
	// SpentDeskCodeAge after they expired, used or not. A kind of record it
	// cannot sweep keeps none of the others from being swept: the error
	// joins one error for each that failed, naming it. A session whose
	// stored record cannot be read is removed still, its end recorded
	// for nobody.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}

// FinishedDeliveryAge is how long a webhook delivery is kept once it was
// delivered or abandoned, for operators to look into (varde status
// webhooks); one still being retried is kept until it finishes. What is
// kept is its record (client, URL, event, attempts, last error, times):
// its payload is dropped when it finishes, since it is never sent again
// and a logout token holds a person's pairwise sub and session ID.
const FinishedDeliveryAge = 30 * 24 * time.Hour

// TombstoneAge is how long a revoked grant without tokens is kept: far
// longer than any authorization code lives (at most a minute), so the
// code's first redemption still finds it revoked.
const TombstoneAge = time.Hour

// SpentDeskCodeAge is how long a help desk code is kept once it expired,
// used or not (ADR 62): long enough for varde persons show to say when
// it was used or that it expired unused, when the person comes back to
// the help desk about it in the weeks after, and no longer, since a code
// past its time serves nothing else. The audit log keeps its issue and
// use for as long as it keeps events.
const SpentDeskCodeAge = 30 * 24 * time.Hour
