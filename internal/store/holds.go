package store

import (
	"context"
	"time"
)

// MaxHoldLength is the longest an address hold may run from when it is
// added or extended: a preservation order runs for a set time (90 days
// under straffeprosessloven § 215a, renewable) and is renewed by
// extending the hold or adding another, never left open (ADR 45).
const MaxHoldLength = 366 * 24 * time.Hour

// AuditHold keeps the client addresses of the audit events it covers
// past audit.address_retention while it is live (ADR 45): those of one
// person's events (PersonID), of every event in a window of time (From,
// To), or of one person's events in a window. An event is covered if
// From <= Time < To and, for a hold with a PersonID, it names that
// person. A hold is live until Until, or until it is released.
type AuditHold struct {
	ID string
	// PersonID is the person whose events are held; "" holds every
	// event in the window.
	PersonID string
	// From is the start of the window, inclusive; zero for the start of
	// the log. To is its end, exclusive, never later than CreatedAt: a
	// hold preserves what is stored, not what is yet to come.
	From, To time.Time
	// Until is when the hold ends by itself.
	Until     time.Time
	Reason    string // the order's reference, for the operators
	By        string
	CreatedAt time.Time
	// ReleasedAt is when the hold was ended early (zero if it was not),
	// with why and by whom.
	ReleasedAt    time.Time
	ReleaseReason string
	ReleasedBy    string
}

// Live reports whether h keeps addresses at now: not released, and
// now before Until.
func (h *AuditHold) Live(now time.Time) bool {
	return h.ReleasedAt.IsZero() && now.Before(h.Until)
}

// Ended is when h stopped keeping addresses, or will: ReleasedAt if it
// was released, else Until.
func (h *AuditHold) Ended() time.Time {
	if !h.ReleasedAt.IsZero() {
		return h.ReleasedAt
	}
	return h.Until
}

// AuditHolds holds the operators' holds on audit addresses (ADR 45).
// Housekeeping (AuditLog.DeleteAuditAddresses) leaves the addresses a
// live hold covers, on every node, since the holds are in the store.
type AuditHolds interface {
	// AddAuditHold stores h and appends e, if not nil, to the audit log
	// in one atomic write. ErrConflict if h.ID is taken.
	AddAuditHold(ctx context.Context, h *AuditHold, e *AuditEvent) error
	// CountAuditHoldAddresses returns how many of the client addresses
	// stored now h covers (its PersonID, From and To; live or not): a
	// hold covering none would keep nothing, since its To is never
	// later than when it is added.
	CountAuditHoldAddresses(ctx context.Context, h *AuditHold) (int64, error)
	// GetAuditHold returns the hold with this ID; ErrNotFound if none.
	GetAuditHold(ctx context.Context, id string) (*AuditHold, error)
	// ListAuditHolds returns the holds live at now or ended (Ended) at
	// or after endedSince, newest (CreatedAt) first.
	ListAuditHolds(ctx context.Context, now, endedSince time.Time) ([]*AuditHold, error)
	// ExtendAuditHold sets the Until of the hold with this ID, live at
	// now, to until, which must be later than its own, and appends e, if
	// not nil, in the same atomic write; it returns the hold as
	// extended. ErrNotFound if there is no such hold, ErrConflict if it
	// is not live at now or until is not later; either way nothing
	// changed.
	ExtendAuditHold(ctx context.Context, id string, until, now time.Time, e *AuditEvent) (*AuditHold, error)
	// ReleaseAuditHold ends the hold with this ID, live at now, at now,
	// with reason and by, and appends e, if not nil, in the same atomic
	// write; it returns the hold as released. ErrNotFound if there is no
	// such hold, ErrConflict if it is not live at now.
	ReleaseAuditHold(ctx context.Context, id, reason, by string, now time.Time, e *AuditEvent) (*AuditHold, error)
}

// AddrSweep is what a round of AuditLog.DeleteAuditAddresses did.
type AddrSweep struct {
	// Deleted is how many addresses it deleted.
	Deleted int64
	// Held is how many addresses past the retention it left because a
	// live hold covers them.
	Held int64
}
