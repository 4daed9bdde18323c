package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/provider/passkeyidp"
	"github.com/varde-eid/varde/internal/store"
)

// eventRecoveryIssued is the audit event of a help desk code (ADR 62).
const eventRecoveryIssued = "recovery_issued"

// deskIssue is what the help desk says when it gives a person a code:
// what it checked of who they are, who gives it, and whether every
// passkey of theirs goes.
type deskIssue struct {
	checked, by    string
	removePasskeys bool
}

// recoverPerson gives p a help desk code (ADR 62), after the help desk
// has checked who they are in person, and prints it once, for the help
// desk to hand over on paper. issuer is where the person types it.
func recoverPerson(ctx context.Context, st store.Store, issuer string, p *store.Person, d deskIssue, now time.Time, w io.Writer) error {
	if err := recoverable(p); err != nil {
		return err
	}
	code, hash, err := passkeyidp.NewDeskCode(rand.Reader)
	if err != nil {
		return err
	}
	expires := now.Add(passkeyidp.DeskCodeLifetime)
	log := &audit.Log{Now: func() time.Time { return now }}
	var passkeys, sessions, grants int
	_, err = st.IssueDeskCode(ctx, p.ID, hash, expires, now, d.removePasskeys, func(k, s, g int) []*store.AuditEvent {
		passkeys, sessions, grants = k, s, g
		ev := &store.AuditEvent{Type: eventRecoveryIssued, PersonID: p.ID, Result: store.ResultSuccess, Details: map[string]string{
			"checked": d.checked, "by": d.by, "via": "cli", "expires": utc(expires),
			"passkeys": strconv.Itoa(k), "sessions": strconv.Itoa(s), "grants": strconv.Itoa(g)}}
		log.Prepare(ctx, ev)
		return []*store.AuditEvent{ev}
	})
	switch {
	case errors.Is(err, store.ErrBlocked):
		return blockedNoCode(p.ID)
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("person %s is gone from the store meanwhile: no code issued", p.ID)
	case err != nil:
		return fmt.Errorf("%w; no code issued", err)
	}
	fmt.Fprintf(w, "issued a one-time code to person %s at %s. Write it down for them, or print this, and hand it over\n", p.ID, utc(now))
	fmt.Fprintf(w, "in person. It is shown only now: Varde keeps only its hash.\n\n    %s\n\n", code)
	fmt.Fprintf(w, "It works once, until %s (24 hours). The person types it where a recovery code goes, on\n", utc(expires))
	fmt.Fprintf(w, "%s/passkey/recover, logs in at level low, and adds a new passkey on their account page.\n", strings.TrimSuffix(issuer, "/"))
	fmt.Fprintln(w, "A new code for them replaces this one.")
	fmt.Fprintf(w, "Ended %d sessions and revoked %d grants, with their refresh and access tokens: whoever holds\n", sessions, grants)
	fmt.Fprintln(w, "the lost device is logged out (the running nodes tell the services, by back-channel logout).")
	if d.removePasskeys {
		fmt.Fprintf(w, "Removed %d passkeys.\n", passkeys)
		return nil
	}
	if n, err := st.ListPasskeys(ctx, p.ID); err == nil && len(n) > 0 {
		fmt.Fprintf(w, "Kept %d passkeys. If they were on what the person lost, give a new code with --remove-passkeys:\n", len(n))
		fmt.Fprintln(w, "a login with the code cannot remove them (ADR 9), and they work for anyone who can unlock the device.")
	}
	return nil
}

// recoverable refuses a code to a person whose Varde ID is blocked, and
// to one retired by add-number --merge, for whom nobody logs in.
func recoverable(p *store.Person) error {
	if len(p.Identifiers) == 0 && strings.HasPrefix(p.BlockedReason, retiredPrefix) {
		return fmt.Errorf("person %s was retired by add-number --merge (%s): no code is given for a retired person; "+
			"the person logs in as the one their number moved to. No code issued", p.ID, p.BlockedReason)
	}
	if p.Blocked() {
		return blockedNoCode(p.ID)
	}
	return nil
}

// blockedNoCode refuses a code to a person whose Varde ID is blocked: a
// help desk that has seen the person lifts the block first,
// deliberately.
func blockedNoCode(id string) error {
	return fmt.Errorf("person %s's Varde ID is blocked; unblock it first (varde persons unblock --id %s), "+
		"once they have shown who they are, then give the code. No code issued", id, id)
}

// deskCodeState says, for show, what personID holds of a help desk code
// at now: none, one still good, one used, or one past its time.
func deskCodeState(ctx context.Context, st store.DeskCodes, personID string, now time.Time) (string, error) {
	c, err := st.GetDeskCode(ctx, personID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "none", nil
	case err != nil:
		return "", err
	case !c.UsedAt.IsZero():
		return "used " + utc(c.UsedAt) + " (issued " + utc(c.IssuedAt) + ")", nil
	case !now.Before(c.ExpiresAt):
		return "expired " + utc(c.ExpiresAt) + ", never used (issued " + utc(c.IssuedAt) + ")", nil
	}
	return "good until " + utc(c.ExpiresAt) + ", not used yet (issued " + utc(c.IssuedAt) + ")", nil
}
