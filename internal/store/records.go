package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Client authentication methods (OAuth 2.0 token endpoint auth methods).
const (
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthClientSecretBasic = "client_secret_basic"
	AuthNone              = "none"
)

// Client is a registered relying party.
type Client struct {
	ID   string
	Name string
	// AuthMethod is one of the Auth* constants.
	AuthMethod string
	// SecretHash is the SHA-256 of the client secret (client_secret_basic).
	SecretHash []byte
	// JWKS is an inline JSON Web Key Set (private_key_jwt); JWKSURI is
	// the alternative, fetched and cached.
	JWKS    json.RawMessage
	JWKSURI string
	// RedirectURIs are matched exactly (RFC 9700 §4.1.1).
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// RequirePAR makes the authorization endpoint refuse requests that
	// were not pushed first (RFC 9126 §5).
	RequirePAR bool
	// AllowedLevels are the assurance levels ("low", "substantial",
	// "high") this client may request; empty means all.
	AllowedLevels []string
	// SectorID is the pairwise subject sector (OIDC Core §8.1); clients
	// of one organisation share it. Empty means the client ID, so a
	// client without one must not have an ID that is another client's
	// SectorID (config.SectorClash).
	SectorID string
	// Claims are the claims this client may receive beyond sub, e.g.
	// "name", "birthdate", "national_id".
	Claims []string
	// Providers are the IDs of the providers this client accepts logins
	// from ("passkey", "bankid"); empty means every provider.
	Providers []string
	// DegradedLevel is the degraded-mode policy: the lower level
	// ("substantial") the client accepts when no provider that meets the
	// level it asked for is up, the passkey provider aside (ADR 63). Such
	// logins are marked Degraded. Empty:
	// the level is never lowered.
	DegradedLevel string
	// StatusWebhook is the URL to POST signed status notifications to;
	// empty: none.
	StatusWebhook string
	// StatusComponents are the components the client wants to hear
	// about; empty: the providers it accepts plus "store".
	StatusComponents []string
	// LegacyEndpointAudience lets the client's assertions (private_key_jwt)
	// name the token, PAR, revocation or introspection endpoint URL as
	// their audience, instead of the issuer identifier alone, which is all any other client may name
	// (draft-ietf-oauth-rfc7523bis), and write that one audience as a
	// one-element array, where any other client must write a string
	// (FAPI 2.0, ADR 51). A compatibility switch for relying parties that
	// cannot be changed yet; off unless set.
	LegacyEndpointAudience bool
	// DPoPBoundAccessTokens makes the client use DPoP (RFC 9449 §5.2,
	// dpop_bound_access_tokens): every token request must carry a DPoP
	// proof, so every access token it gets is bound to a key it holds.
	DPoPBoundAccessTokens bool
	// RefreshTokens lets the client get refresh tokens (RFC 6749 §1.5)
	// at the code exchange; without it the token response has none. A
	// refresh token of a grant without offline_access ends with the
	// person's session (OIDC Core §11; ADR 22).
	RefreshTokens bool
	// BackchannelLogoutURI is where a logout token is POSTed when a
	// session in which the client received tokens ends (OpenID Connect
	// Back-Channel Logout 1.0 §2.2, backchannel_logout_uri); empty: none.
	BackchannelLogoutURI string
	// IntrospectTokensOf are the IDs of other clients whose tokens this
	// one may introspect (RFC 7662): it is their resource server, the
	// API their access tokens are for. Every client may introspect its
	// own tokens. The other clients must share this one's pairwise
	// sector, so introspection reveals no subject identifier the
	// organisation does not already know. Empty: only its own.
	IntrospectTokensOf []string
	// IDTokenAlg is the algorithm the client's ID tokens, and the logout
	// tokens sent to it, are signed with (OpenID Connect Registration 1.0
	// §2, id_token_signed_response_alg): IDTokenES256, also when empty,
	// or IDTokenRS256 for a relying party that verifies nothing else
	// (ADR 32).
	IDTokenAlg string
	// Source says where the client came from: ClientSourceConfig,
	// ClientSourceCLI, or another word for clients a program registers
	// itself (the demo's "demo").
	Source    string
	CreatedAt time.Time
}

// The algorithms a client's ID tokens may be signed with
// (Client.IDTokenAlg).
const (
	IDTokenES256 = "ES256"
	IDTokenRS256 = "RS256"
)

// IDTokenSigningAlg is the algorithm c's ID tokens and logout tokens are
// signed with: IDTokenAlg, or IDTokenES256 if that is empty.
func (c *Client) IDTokenSigningAlg() string {
	if c.IDTokenAlg == "" {
		return IDTokenES256
	}
	return c.IDTokenAlg
}

// Sector is c's pairwise subject sector (ADR 4): see SectorOf.
func (c *Client) Sector() string { return SectorOf(c.ID, c.SectorID) }

// SectorOf is the pairwise subject sector of the client with this ID
// and sector ID: the sector ID, or without one the client ID, a sector
// of its own.
func SectorOf(id, sectorID string) string {
	if sectorID != "" {
		return sectorID
	}
	return id
}

// Where a client came from (Client.Source).
const (
	// ClientSourceConfig: declared in the configuration file. A node
	// writes these at start-up and removes those no longer declared.
	ClientSourceConfig = "config"
	// ClientSourceCLI: added with varde clients add.
	ClientSourceCLI = "cli"
)

// Identifier is a national or foreign identity number with its scheme.
type Identifier struct {
	Scheme string // e.g. "no:fnr", "no:dnr"
	Value  string
	// MaxLevel, if set, is the most a login that finds the person
	// through this identifier reaches: the level of the session it was
	// linked from (ADR 9), which is all that ever proved the identifier
	// to be this person's. "" for an identifier the person was proofed
	// with. Stored with the person's list of identifiers.
	MaxLevel string `json:",omitempty"`
	// LinkedThrough is the provider whose login linked the identifier
	// to the person (ADR 9, 57), LinkedAt when: the person's account
	// page lists such an identifier as an eID linked to them, and lets
	// them unlink it (Persons.UnlinkIdentifier). Both are empty for an
	// identifier the person was proofed with or the help desk added,
	// and for one linked before Varde recorded them (ADR 57): such
	// a link is one with a MaxLevel.
	LinkedThrough string    `json:",omitempty"`
	LinkedAt      time.Time `json:",omitzero"`
	// LastUsedAt is when a login last found the person by it, as last
	// recorded (Persons.NoteIdentifierUse, which the broker calls at most
	// once an hour per number): zero when none was recorded.
	LastUsedAt time.Time `json:",omitzero"`
}

// Linked reports whether id was added to its person by a link from one
// of their sessions (ADR 9), and so is theirs to unlink: one with a
// MaxLevel. One they were proofed with, or the help desk added, is how
// Varde knows them.
func (id Identifier) Linked() bool { return id.MaxLevel != "" }

// Person is one human with one Varde identity.
type Person struct {
	ID string
	// WebAuthnID is the WebAuthn user handle: random, 32 bytes, never
	// derived from personal data.
	WebAuthnID  []byte
	GivenName   string
	FamilyName  string
	BirthDate   string // YYYY-MM-DD
	Identifiers []Identifier
	// ProofingLevel is the assurance level of the identity proofing
	// ("low", "substantial", "high"); ProofingMethod says how.
	ProofingLevel  string
	ProofingMethod string
	// Synthetic marks test persons that are not real people.
	Synthetic bool
	CreatedAt time.Time
	// BlockedAt is when the help desk blocked the person's Varde
	// identity (PersonBlocks), zero while it is not blocked: every way
	// in refuses a blocked person. BlockedReason is the operator's
	// short reason, for operators only.
	BlockedAt     time.Time
	BlockedReason string
}

// Blocked reports whether p's Varde identity is blocked.
func (p *Person) Blocked() bool { return !p.BlockedAt.IsZero() }

// Profile is what describes a person besides their identifiers: the
// standard claims of those names (OpenID Connect Core §5.1).
type Profile struct {
	GivenName  string
	FamilyName string
	BirthDate  string // YYYY-MM-DD
}

// Profile returns p's profile.
func (p *Person) Profile() Profile {
	return Profile{GivenName: p.GivenName, FamilyName: p.FamilyName, BirthDate: p.BirthDate}
}

// Passkey is a WebAuthn credential registered to a person.
type Passkey struct {
	CredentialID    []byte
	PersonID        string
	PublicKey       []byte // COSE key
	AttestationType string
	AAGUID          []byte
	SignCount       uint32
	Transports      []string
	UserPresent     bool
	UserVerified    bool
	BackupEligible  bool
	BackupState     bool
	// Name is the person's label for it ("Phone", "Laptop").
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// MaxLevel is the highest assurance level a login with it reaches:
	// the level of the login that added it on the account page, so that
	// a weak login cannot add a stronger way in. Empty for a passkey made
	// at enrolment, which the person's proofing level bounds.
	MaxLevel string
}

// AuthRequest is a validated authorization request.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scope               []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	ResponseMode        string
	Prompt              []string
	MaxAge              int // seconds; -1 when absent
	ACRValues           []string
	UILocales           []string
	LoginHint           string
	// ProviderHint is "any" (let Varde pick a healthy provider) or the id
	// of the provider the relying party suggests; empty: the person picks.
	ProviderHint string
	// DPoPJKT is the JWK SHA-256 thumbprint of the key the request's
	// code is bound to (RFC 9449 §10: dpop_jkt, or the key of a DPoP
	// proof sent with the pushed request); empty: not bound.
	DPoPJKT string
	// HintSubject is the sub of the id_token_hint the request carried
	// (OIDC Core §3.1.2.1), checked to be an ID token Varde issued; a
	// session of another subject does not satisfy the request. Empty:
	// no hint.
	HintSubject string
	// Browser binds the request to the browser that presented it at the
	// authorization endpoint (ADR 47): oidc.BrowserBinding of the value
	// of the cookie that marks that browser. Only that browser may log
	// in for it, resume it or cancel it. Empty: not presented yet (a
	// pushed request), or stored by a node that did not bind requests.
	Browser string
	// Pushed is true for requests that came through PAR. A pushed
	// request is used once: the authorization endpoint marks it Used.
	Pushed    bool
	Used      bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Session is a person's authenticated browser session at Varde.
type Session struct {
	ID       string
	PersonID string
	Provider string
	// Level is the assurance level reached ("low", "substantial", "high").
	Level    string
	AMR      []string
	AuthTime time.Time
	// Degraded marks a login let through below the requested level by the
	// client's degraded-mode policy. Whether a code issued in the session
	// is degraded is decided for its own request (AuthCode.Degraded).
	Degraded bool
	// Clients that received tokens in this session (for logout). A
	// session that continues another lists that one's clients too.
	Clients []string
	// Continues is the ID of the first session of the line this one
	// continues, or "" if it began one: when the same person logs in
	// again in the same browser (a step-up, prompt=login), the new
	// session replaces the old one but keeps its sid, so the relying
	// parties that received tokens before still know it when it ends.
	Continues string
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsed is when the session was last used, as last recorded
	// (Sessions.TouchSession): CreatedAt until then. Recording is
	// bounded by its user (session.Manager), so it may lag the last use.
	LastUsed time.Time
	// WayIn is what the login proved its person by, which the person
	// must still hold when the session is stored (Sessions.CreateSession
	// reads it in the same write): a way in taken away as the login
	// finished keeps no session. It is not stored: a session read back
	// has none.
	WayIn WayIn
	// EndReason is set only on a pending end (SessionEnds): why the
	// session ended, "" when someone ended it (a logout, another
	// person's login, the end of a person's other sessions), EndExpired
	// or EndIdle when it ran out of time.
	EndReason string
}

// Why a session ran out of time (Session.EndReason, and the Reason of
// its EventSessionExpired).
const (
	// EndExpired: it reached its lifetime (ExpiresAt).
	EndExpired = "expired"
	// EndIdle: it was left unused for the idle timeout.
	EndIdle = "idle"
)

// EventSessionExpired is the audit event of a session that ran out of
// time with relying parties to tell (SessionExpiredEvent).
const EventSessionExpired = "session_expired"

// WayIn names what a login proved its person by, as a condition on
// storing its session (Session.WayIn). Each part that is set must hold;
// the zero WayIn names nothing, and holds.
type WayIn struct {
	// Passkey is the credential ID of the passkey the login used: the
	// person must still hold it (Passkeys.DeletePasskey takes it away).
	Passkey []byte
	// RecoveryCode is the hash of the recovery code the login used:
	// the person must still hold it, used (as by this login) or not
	// (RecoveryCodes.ReplaceRecoveryCodesEndingOthers takes it away).
	RecoveryCode []byte
	// Identifiers are the numbers the login found its person by: at
	// least one must still be the person's, and none another person's
	// (PersonNumbers.RemoveIdentifier takes one away).
	Identifiers []Identifier
}

// IsZero reports whether w names nothing.
func (w WayIn) IsZero() bool {
	return w.Passkey == nil && w.RecoveryCode == nil && len(w.Identifiers) == 0
}

// SessionLive reports whether s had not ended at now: it had not expired
// and, if idle is positive, had been used (LastUsed, or CreatedAt when
// that is unset) less than idle before now. One that ended so is
// still told to its relying parties when it is deleted (SessionEnds).
func SessionLive(s *Session, now time.Time, idle time.Duration) bool {
	if !s.ExpiresAt.After(now) {
		return false
	}
	if idle <= 0 {
		return true
	}
	return now.Before(idleEnd(s, idle))
}

// idleEnd is when s ends unless it is used again: idle after its last
// recorded use, or after its creation when none is recorded.
func idleEnd(s *Session, idle time.Duration) time.Time {
	used := s.LastUsed
	if used.IsZero() {
		used = s.CreatedAt
	}
	return used.Add(idle)
}

// SessionTimedOut says how and when s ran out of time, for a session
// that SessionLive finds ended: EndIdle at idle after its last use, if
// that came before its expiry, and EndExpired at ExpiresAt otherwise.
func SessionTimedOut(s *Session, idle time.Duration) (reason string, at time.Time) {
	if idle > 0 {
		if end := idleEnd(s, idle); end.Before(s.ExpiresAt) {
			return EndIdle, end
		}
	}
	return EndExpired, s.ExpiresAt
}

// SessionExpiredEvent is the audit event of s, which ran out of time
// (reason EndExpired or EndIdle) with clients in it, recorded at now by
// the write that deleted it (Sweeper, Sessions.EndSession): the
// person's trail and operators tell it from a logout. It names the
// session and its clients, never a national identifier.
func SessionExpiredEvent(s *Session, reason string, now time.Time) *AuditEvent {
	return &AuditEvent{Time: now.UTC().Truncate(time.Microsecond), Type: EventSessionExpired, PersonID: s.PersonID,
		Provider: s.Provider, Level: s.Level, Result: ResultSuccess, Reason: reason,
		Details: map[string]string{"session": s.ID, "clients": strings.Join(s.Clients, " ")}}
}

// Root is the ID of the first session of s's line (Continues), or s's own
// ID if it began one: what the sid claim names.
func (s *Session) Root() string {
	if s.Continues != "" {
		return s.Continues
	}
	return s.ID
}

// AuthCode is an authorization code, stored by hash.
type AuthCode struct {
	Hash                []byte
	GrantID             string
	ClientID            string
	RedirectURI         string
	Scope               []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	// SessionID is the root of the session the code was issued in
	// (Session.Root), which the sid claim names.
	SessionID string
	PersonID  string
	Provider  string
	Level     string
	AMR       []string
	AuthTime  time.Time
	// Degraded: the session's level is below what this request asked
	// for, and the client's degraded-mode policy let it through.
	Degraded bool
	// DPoPJKT, from the request: the code is redeemed only with a DPoP
	// proof made with this key (RFC 9449 §10); empty: any or none.
	DPoPJKT   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until redeemed
}

// Grant is one token family.
type Grant struct {
	ID       string
	ClientID string
	PersonID string
	// SessionID is the root of the session the grant began in
	// (Session.Root), which the sid claim names.
	SessionID string
	Scope     []string
	Provider  string
	Level     string
	AMR       []string
	AuthTime  time.Time
	Degraded  bool
	CreatedAt time.Time
	RevokedAt time.Time // zero while valid
}

// ScopeOfflineAccess is the scope value that asks for access while the
// person is away (OIDC Core §11): a refresh token that outlives the
// session it came from.
const ScopeOfflineAccess = "offline_access"

// OfflineAccess is a client's access to a person's data while the
// person is away (Grants.ListOfflineAccess): the grants with
// offline_access under which it holds a live refresh token.
type OfflineAccess struct {
	ClientID string
	// GrantedAt is when the oldest of those grants was made.
	GrantedAt time.Time
	// RefreshedAt is when the client last used one of those grants'
	// refresh tokens, as the newest of the live refresh tokens issued
	// after its grant; zero if it has not used any yet.
	RefreshedAt time.Time
}

// PersonGrant is one of a person's grants with what its tokens say
// (Grants.ListPersonGrants).
type PersonGrant struct {
	Grant
	// RefreshedAt is when the client last used a refresh token of the
	// grant, as the newest of the refresh tokens issued under it after
	// the grant was made (a refresh issues a new one); zero if it never
	// did, or if those tokens are gone.
	RefreshedAt time.Time
	// RefreshUntil is when the last refresh token of the grant that is
	// neither used nor expired at now expires; zero if none is live.
	RefreshUntil time.Time
}

// DeskCode is what a person holds of a help desk code
// (DeskCodes.GetDeskCode, ADR 62): when it was issued, until when it is
// good, and when it was used (zero: not yet).
type DeskCode struct {
	IssuedAt, ExpiresAt, UsedAt time.Time
}

// RecoveryCodeSet is what a person holds of recovery codes
// (RecoveryCodes.DescribeRecoveryCodes).
type RecoveryCodeSet struct {
	// Left are the codes not used yet; Used those used.
	Left, Used int
	// MadeAt is when the codes were made (the newest, should they
	// differ); zero if the person has none.
	MadeAt time.Time
	// LastUsedAt is when a code was last used; zero if none was.
	LastUsedAt time.Time
}

// Token kinds.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

// Token is an access or refresh token, stored by hash.
type Token struct {
	Hash      []byte
	Kind      string
	GrantID   string
	ClientID  string
	Scope     []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is, for a refresh token, when it was rotated; for an
	// access token a rotation issued, when it was first used within the
	// window in which a retry of that rotation may replace it (ADR 55).
	// Zero: unused.
	UsedAt time.Time
	// Parent is the hash of the refresh token whose rotation issued this
	// token; nil for a token issued for a code.
	Parent []byte
	// RevokedAt is when a retry of its parent's rotation replaced the
	// token (Tokens.RetryRotation, ADR 55): it was in an answer the
	// client never received, and no one may use it. Zero while not
	// replaced.
	RevokedAt time.Time
	// JKT is the JWK SHA-256 thumbprint of the key the token is bound to
	// (DPoP, RFC 9449 §6.1): an access token is used, a refresh token
	// redeemed, only with a proof made with that key. Empty: a bearer
	// token.
	JKT string
}

// Audit event results.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// DetailAddr is the AuditEvent.Details key of the address of the client
// whose request the event was recorded in (docs/adr/0033).
const DetailAddr = "addr"

// AuditEvent is one entry of the append-only, hash-chained audit log. It
// never holds secrets or national identifiers: persons appear by ID.
type AuditEvent struct {
	Seq      int64
	Time     time.Time
	Type     string // e.g. "authentication", "consent", "token"
	PersonID string
	ClientID string
	Provider string
	Level    string
	Result   string
	// Reason is a short machine-readable reason for failures.
	Reason  string
	Details map[string]string
	// AddrDigest, if not empty, is AddrDigest(AddrSalt,
	// Details[DetailAddr]), set by KeepAddrApart: the hash covers it
	// instead of the address, which the store keeps apart from the
	// event and deletes after its retention (docs/adr/0038). Events
	// sealed before that have none, and their address in the hashed
	// body.
	AddrDigest []byte
	// AddrSalt is the random salt of AddrDigest, kept and deleted with
	// the address; nil once it is deleted.
	AddrSalt []byte
	PrevHash []byte
	Hash     []byte
}

// AddrSaltSize is the length of AuditEvent.AddrSalt: with 128 random
// bits beside it, a digest whose salt is deleted cannot be matched to an
// address by trying every one.
const AddrSaltSize = 16

// AddrDigest is SHA-256 over salt and the address, the digest of an
// address kept apart from its event.
func AddrDigest(salt []byte, addr string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(addr))
	return h.Sum(nil)
}

// KeepAddrApart takes e's address (Details[DetailAddr]) out of what its
// hash covers, which then covers AddrDigest(salt, address) instead, so
// that the address and salt can later be deleted while the event still
// verifies. It is called before Seal, with AddrSaltSize random bytes.
func (e *AuditEvent) KeepAddrApart(salt []byte) error {
	switch {
	case e.Details[DetailAddr] == "":
		return errors.New("audit event has no address")
	case len(e.AddrDigest) > 0:
		return errors.New("audit event's address is kept apart already")
	case len(salt) != AddrSaltSize:
		return fmt.Errorf("address salt of %d bytes, want %d", len(salt), AddrSaltSize)
	}
	e.AddrSalt = bytes.Clone(salt)
	e.AddrDigest = AddrDigest(salt, e.Details[DetailAddr])
	return nil
}

// AddrCut is the time from which an event's address kept apart is
// within a retention of keep at now (audit.address_retention): now less
// keep, or the zero time, for any age, when keep is not above 0.
func AddrCut(now time.Time, keep time.Duration) time.Time {
	if keep <= 0 {
		return time.Time{}
	}
	return now.Add(-keep)
}

// AddrPastRetention reports whether e's address is kept apart
// (AddrDigest) and e was stamped before cut (AddrCut; the zero cut:
// never). The store holds such an address only because an operator's
// hold covers it, for a preservation order, which may be confidential
// (docs/adr/0045): whatever the person is given, their activity and
// their export alike, leaves it out, as if deleted. This is the one
// rule of both (docs/adr/0054): an address sealed in its event's
// hashed body (AddrSealed) is kept as long as the log is, held or not,
// and is given at any age.
func (e *AuditEvent) AddrPastRetention(cut time.Time) bool {
	return len(e.AddrDigest) > 0 && !cut.IsZero() && e.Time.Before(cut)
}

// AddrSealed reports whether e holds an address inside its hashed body,
// as every event did before schema 0031 and a node of that version
// still appends them: it cannot be deleted without breaking the chain
// (docs/adr/0038), and stays as long as the event.
func (e *AuditEvent) AddrSealed() bool {
	return len(e.AddrDigest) == 0 && e.Details[DetailAddr] != ""
}

// AddrIntact reports whether e's address, if it is kept apart
// (AddrDigest) and still held, is the one the digest was made of. An
// address in the hashed body, or one deleted, is intact: the hash
// covers the former.
//
// The salt must be AddrSaltSize bytes: the digest covers salt and
// address run together, so bytes moved across the boundary between
// them (192.0.2.3 read as 92.0.2.3, a byte of it added to the salt)
// give the same digest and only the salt's fixed length tells them
// apart.
func (e *AuditEvent) AddrIntact() bool {
	addr, ok := e.Details[DetailAddr]
	if len(e.AddrDigest) == 0 || !ok {
		return true
	}
	return len(e.AddrSalt) == AddrSaltSize && bytes.Equal(AddrDigest(e.AddrSalt, addr), e.AddrDigest)
}

// Backends keep times to at least the microsecond, which is what the hash
// covers.
//
// Seal sets e.PrevHash to prev and e.Hash to SHA-256 over prev and every
// other field, so any later change to a stored event, or a removed or
// reordered event, breaks the chain. An address kept apart
// (KeepAddrApart) is covered by its digest, so it can be deleted.
func (e *AuditEvent) Seal(prev []byte) {
	e.PrevHash = append([]byte(nil), prev...)
	e.Hash = e.ComputeHash()
}

// ComputeHash returns the hash Seal would store, for verifying a chain.
func (e *AuditEvent) ComputeHash() []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	h.Write(e.PrevHash)
	h.Write(e.hashedBody())
	return h.Sum(nil)
}

// hashedBody is what ComputeHash covers besides Seq and PrevHash. An
// event without AddrDigest is hashed as every event was before
// addresses were kept apart, its address among the details, so those
// events verify as they were sealed. One with AddrDigest is hashed with
// the digest in place of the address, which the details then leave out
// whether it is still held or not.
func (e *AuditEvent) hashedBody() []byte {
	type v1 struct {
		T                                          int64
		Type, Person, Client, Provider, Level, Res string
		Reason                                     string
		D                                          map[string]string
	}
	body := v1{e.Time.UnixMicro(), e.Type, e.PersonID, e.ClientID, e.Provider, e.Level, e.Result, e.Reason, e.Details}
	var out []byte
	if len(e.AddrDigest) == 0 {
		out, _ = json.Marshal(body)
		return out
	}
	body.D = make(map[string]string, len(e.Details))
	for k, v := range e.Details {
		if k != DetailAddr {
			body.D[k] = v
		}
	}
	out, _ = json.Marshal(struct {
		V int
		v1
		A []byte
	}{2, body, e.AddrDigest})
	return out
}

// PublicKey is one node's public signing key.
type PublicKey struct {
	KID  string
	Node string
	JWK  json.RawMessage // public JWK
	// CreatedAt is when the key was last published.
	CreatedAt time.Time
	// FirstPublishedAt is when the key was first published: when its
	// node began signing with it. The store sets it from CreatedAt when
	// it first stores the key and keeps it when the key is published
	// again.
	FirstPublishedAt time.Time
	ExpiresAt        time.Time
	// RetiredAt, if not zero, is when an operator withdrew the key (a
	// compromise, a node gone): it is in no JWKS and never published
	// again.
	RetiredAt time.Time
}
