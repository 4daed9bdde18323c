package passkeyidp

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/varde-eid/varde/internal/passkey"
	"github.com/varde-eid/varde/internal/store"
)

// stored is what reading back a write that got no answer
// (store.ErrOutcomeUnknown) found.
type stored int

const (
	// notStored: every read in the window found nothing.
	notStored stored = iota
	// isStored: a read found the record.
	isStored
	// unconfirmed: no read found it and at least one could not be
	// made, so the store could not say.
	unconfirmed
)

// readBackWaits are the pauses between the reads of a write that got
// no answer: reads at once and 0.25, 0.5, 1, 2 and 4 s later.
//
// A record found is stored for good: it was committed. A record not
// found may not be committed yet. PostgreSQL carries out a COMMIT it
// received whatever became of the connection that sent it, and the
// client can see the connection drop while the server is still
// flushing the commit (or waiting for a synchronous standby): a read at
// once, on another connection, can miss a write that lands a moment
// later. The reads are spread over 4 s, far longer than a commit's
// flush, so a write not found by the last of them was, as far as can be
// told, not stored. A commit held longer still (a synchronous standby
// that stopped answering holds every commit) could land after the last
// read: the person, told it was not saved, tries again and holds one
// passkey more than they meant to (both work, and the account page
// lists both), and the audit log holds the not_stored event beside the
// success event stored with the write. A read that fails (the store is down)
// proves nothing: if none found the record and any failed, the outcome
// stays unconfirmed and the person is told so, never guessed for.
var readBackWaits = []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// readBackTimeout bounds each read of a read-back, and readBackLimit
// the whole of it, so a store that stopped answering keeps the person
// waiting no longer than that for "could not confirm".
const (
	readBackTimeout = 2 * time.Second
	readBackLimit   = 10 * time.Second
)

// readBack reads back a write that got no answer with has (is the
// record there?), as readBackWaits says, whether or not ctx (the
// request) has ended: the person is owed the answer, and the reads are
// bounded.
func (p *Provider) readBack(ctx context.Context, what string, has func(context.Context) (bool, error)) stored {
	ctx, cancelAll := context.WithTimeout(context.WithoutCancel(ctx), readBackLimit)
	defer cancelAll()
	failed := false
	for i := 0; ; i++ {
		rctx, cancel := context.WithTimeout(ctx, readBackTimeout)
		found, err := has(rctx)
		cancel()
		if err != nil {
			failed = true
			p.log().WarnContext(ctx, "read back "+what, "err", err)
		}
		if found {
			return isStored
		}
		if i == len(readBackWaits) {
			break
		}
		select {
		case <-time.After(readBackWaits[i]):
		case <-ctx.Done():
			// Out of time with reads still to make: not found so far
			// proves nothing.
			return unconfirmed
		}
	}
	if failed {
		return unconfirmed
	}
	return notStored
}

// passkeyStored reads back pk, whose write got no answer: stored if the
// store holds its credential ID for its person.
func (p *Provider) passkeyStored(ctx context.Context, pk *store.Passkey) stored {
	return p.readBack(ctx, "passkey", func(ctx context.Context) (bool, error) {
		got, err := p.Passkeys.GetPasskey(ctx, pk.CredentialID)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return got.PersonID == pk.PersonID, nil
	})
}

// codesStored reads back the recovery codes with these hashes, whose
// write got no answer: stored if personID holds the first.
func (p *Provider) codesStored(ctx context.Context, personID string, hashes [][]byte) stored {
	return p.readBack(ctx, "recovery codes", func(ctx context.Context) (bool, error) {
		return p.RecoveryCodes.HasRecoveryCode(ctx, personID, hashes[0])
	})
}

// readBackRegistration settles reg, a registration whose write got no
// answer (err wraps store.ErrOutcomeUnknown), by reading its passkey
// back: nil if it is stored, so the caller goes on as if the write had
// been answered. Otherwise it answers the request, not_stored (500) or
// unconfirmed (503) in the words for kind ("add", "enrol"), has failed
// audit the reason, and returns err.
func (p *Provider) readBackRegistration(w http.ResponseWriter, r *http.Request, reg *passkey.Registration, err error, what, kind string, failed func(reason string)) error {
	ctx := r.Context()
	switch p.passkeyStored(ctx, reg.Passkey) {
	case isStored:
		p.log().WarnContext(ctx, what+" stored though its write got no answer", "err", err)
		return nil
	case notStored:
		p.log().ErrorContext(ctx, what+" not stored: its write got no answer", "err", err)
		failed("not_stored")
		p.ceremonyError(w, r, http.StatusInternalServerError, "not_stored", kind)
	default:
		p.log().ErrorContext(ctx, what+" perhaps stored: its write got no answer and the store cannot be read", "err", err)
		failed("unconfirmed")
		p.ceremonyError(w, r, http.StatusServiceUnavailable, "unconfirmed", kind)
	}
	return err
}
