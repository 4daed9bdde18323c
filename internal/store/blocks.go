package store

import (
	"context"
	"time"
)

// MaxBlockReasonLen is the most characters (runes) a block's or an
// unblock's reason may have: a short note for the audit log and the
// operators who read it, not a case file.
const MaxBlockReasonLen = 200

// PersonBlocks holds whether a person's Varde identity is blocked: what
// a help desk does for a person whose phone was stolen, or who thinks
// someone else uses their identity (ADR 27). A blocked person is
// stored with Person.BlockedAt set, and every way in refuses them.
type PersonBlocks interface {
	// BlockPerson blocks personID at now for reason, in one atomic
	// write: it sets the person's BlockedAt and BlockedReason, ends
	// every session of the person as Sessions.EndPersonSessions does
	// (so the relying parties that received tokens in them are told,
	// SessionEnds), revokes at now every grant of the person not
	// revoked yet, as Grants.RevokeGrant does (so no refresh or access
	// token issued to the person works any more), and appends the
	// events that events returns, given the number of sessions ended
	// and of grants revoked, to the audit log, as AuditLog.AppendAudit
	// appends them and in their order. It returns the sessions it
	// ended. ErrNotFound if there is no such person, ErrConflict if the
	// person is blocked already; either way nothing changed. events may
	// be called more than once and must depend on nothing but its
	// arguments.
	BlockPerson(ctx context.Context, personID, reason string, now time.Time, events func(sessions, grants int) []*AuditEvent) ([]*Session, error)
	// UnblockPerson lifts the block on personID and appends e, if not
	// nil, to the audit log in the same atomic write. ErrNotFound if
	// there is no such person, ErrConflict if the person is not
	// blocked; either way nothing changed.
	UnblockPerson(ctx context.Context, personID string, e *AuditEvent) error
	// PersonAccess counts what personID holds at now that lets them in
	// or lets a relying party act for them, for an operator looking the
	// person up: never the secrets themselves. A person with nothing,
	// or no such person, counts zeros.
	PersonAccess(ctx context.Context, personID string, now time.Time) (PersonAccess, error)
}

// PersonAccess is what PersonBlocks.PersonAccess counts.
type PersonAccess struct {
	// Sessions are the person's sessions not expired at now.
	Sessions int
	// RefreshTokens are the refresh tokens not used, not expired at now
	// and under a grant not revoked; Offline of them carry
	// offline_access, and outlive the session they began in.
	RefreshTokens, Offline int
}
