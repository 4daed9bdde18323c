package store

import (
	"context"
	"time"
)

// PersonNumbers holds what a help desk changes when a person's national
// number changes: a D-number followed by a birth number, a birth number
// replaced (ADR 30). The new number joins the person's identifiers and
// the old one stays, so that the person keeps one identity, and one
// pairwise subject at every relying party, whichever number an eID
// asserts.
type PersonNumbers interface {
	// AddIdentifier adds id to personID's identifiers in one atomic
	// write, and appends the events that events returns to the audit
	// log, as AuditLog.AppendAudit appends them and in their order.
	//
	// With retire empty, id must belong to nobody: ErrConflict if it
	// belongs to anyone. No session ends; the sessions returned are
	// none.
	//
	// With retire naming another person, id must belong to that person
	// and be all they hold: no other identifier, no passkey, no
	// recovery code (used or not), and no block. In the same write id
	// moves from retire to personID, and retire is retired: their
	// identifiers are emptied, they are blocked at now for reason (as
	// PersonBlocks.BlockPerson blocks, so that nothing issued to them
	// works any more and no lifting is possible, since nobody can name
	// them by a number), every session of theirs ends as
	// Sessions.EndPersonSessions ends it, and every grant of theirs is
	// revoked at now. events gets the number of sessions ended and of
	// grants revoked, and may be called more than once; it must depend
	// on nothing but its arguments. It returns the sessions it ended.
	// ErrConflict, saying which condition did not hold, if any did not
	// (retire is personID, id is not theirs, they hold anything else or
	// are blocked).
	//
	// ErrBlocked if personID is blocked (PersonBlocks), read in the same
	// write: a number is not added to a blocked person, who is to be
	// unblocked first. ErrNotFound if personID or retire does not
	// exist. On any error nothing changed.
	AddIdentifier(ctx context.Context, personID string, id Identifier, retire, reason string, now time.Time, events func(sessions, grants int) []*AuditEvent) ([]*Session, error)

	// RemoveIdentifier takes id (its scheme and value) from personID's
	// identifiers in one atomic write (ADR 44), so that a login proving
	// it no longer finds the person, and appends the events that events
	// returns to the audit log, as AddIdentifier appends them. The store
	// does not record which identifier a login proved, so every session
	// of the person ends, as Sessions.EndPersonSessions ends it, and
	// every grant of theirs is revoked at now; events gets the numbers
	// of both, may be called more than once and must depend on nothing
	// but its arguments. It returns the sessions it ended.
	//
	// ErrConflict, saying which, if the person does not hold id or holds
	// nothing else: a person is never left without a number (a block is
	// what stops every way in). A blocked person's identifier is
	// removed as anyone's: removing takes a way in away. ErrNotFound if
	// personID does not exist. On any error nothing changed.
	RemoveIdentifier(ctx context.Context, personID string, id Identifier, now time.Time, events func(sessions, grants int) []*AuditEvent) ([]*Session, error)
}

// SecondOfScheme returns the scheme of the first of add that is of a
// scheme one of held is of, or another of add before it; "" if there is
// none. A link refuses such an identifier (ErrSecondNumber): a second
// number of a scheme is another person's, or a replaced one, which the
// population register, not a login, says is the same person's.
func SecondOfScheme(held, add []Identifier) string {
	seen := make(map[string]bool, len(held)+len(add))
	for _, id := range held {
		seen[id.Scheme] = true
	}
	for _, id := range add {
		if seen[id.Scheme] {
			return id.Scheme
		}
		seen[id.Scheme] = true
	}
	return ""
}
