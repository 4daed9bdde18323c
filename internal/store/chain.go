package store

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrBrokenChain means an audit log page does not verify: an event was
// changed, removed, inserted or reordered.
var ErrBrokenChain = errors.New("store: audit chain broken")

// VerifyAuditChain checks that events, in order, form an unbroken run of
// the audit log's hash chain: sequence numbers go up by one, each event's
// PrevHash is the Hash of the event before it, each Hash is what
// ComputeHash gives for the event as stored, and each address kept
// apart from its event and still held matches its digest
// (AuditEvent.AddrIntact).
//
// prev is the Hash of the event just before events[0]. A nil or empty
// prev means the page starts the log, so events[0] must have Seq 1 and an
// empty PrevHash. To verify the log page by page, pass the last Hash of
// one page as prev of the next. The error wraps ErrBrokenChain and names
// the first event that does not verify.
func VerifyAuditChain(prev []byte, events []*AuditEvent) error {
	for i, e := range events {
		switch {
		case i == 0 && len(prev) == 0 && e.Seq != 1:
			return fmt.Errorf("audit event %d: log starts at %d, not 1: %w", e.Seq, e.Seq, ErrBrokenChain)
		case i > 0 && e.Seq != events[i-1].Seq+1:
			return fmt.Errorf("audit event %d: follows %d: %w", e.Seq, events[i-1].Seq, ErrBrokenChain)
		case !bytes.Equal(e.PrevHash, prev):
			return fmt.Errorf("audit event %d: previous hash does not match: %w", e.Seq, ErrBrokenChain)
		case !bytes.Equal(e.Hash, e.ComputeHash()):
			return fmt.Errorf("audit event %d: hash does not match its content: %w", e.Seq, ErrBrokenChain)
		case !e.AddrIntact():
			return fmt.Errorf("audit event %d: the address kept does not match its digest: %w", e.Seq, ErrBrokenChain)
		}
		prev = e.Hash
	}
	return nil
}
