package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/audit"
	"github.com/varde-eid/varde/internal/store"
)

const holdUsage = `usage: varde audit hold add --config FILE --reason TEXT --until TIME [--by NAME] [--from TIME] [--to TIME] [IDENTIFIER | --id ID]
       varde audit hold list --config FILE [--ended-within DURATION]
       varde audit hold extend --config FILE --reason TEXT --until TIME [--by NAME] HOLD
       varde audit hold release --config FILE --reason TEXT [--by NAME] HOLD

Each node's housekeeping deletes the client address of an audit event
once it is older than audit.address_retention (180 days unless
configured). A hold keeps the addresses of the events it covers past
that, for a preservation order (in Norway straffeprosessloven § 215a,
"sikringspålegg": the police ask that data be kept for a set time, 90
days, renewable) or the operator's own inquiry into a break-in or a
flood. The holds are in the store: every node honours a hold as soon as
it is added, and deletes what it kept at its first round after the hold
ends. Only addresses still kept can be held: add the hold before they go.

  add      hold the addresses of one person's events (IDENTIFIER, or --id
           as varde persons show prints it), of every event in a window of
           time (--from, and --to, which defaults to now), or of one
           person's events in a window. Events to come are not covered:
           --to is never later than now; add another hold for them later.
           --until (required) is when the hold ends by itself: within
           366 days, as an order runs for a set time. --reason (required)
           is the order's reference or the case, never a national number.
           It says how many client addresses kept now the hold covers, and
           a hold that would cover none (all deleted, or no events) is
           refused, with nothing added
  list     the holds that are live, and those that ended within
           --ended-within (default 720h, 30 days), newest first
  extend   move a live hold's end to a later --until (within 366 days from
           now), for an order renewed; --reason says which
  release  end a live hold early (--reason, required), when the order is
           lifted: the next housekeeping round deletes the addresses it
           kept that are past their retention

TIME is a date, 2026-11-22 (a whole day in UTC: --from from its start,
--to and --until to its end; --to today is up to now), or an RFC 3339
time, 2026-11-22T13:45:00Z. IDENTIFIER is the scheme and the number, as
varde persons takes it: no:fnr:01018012371, passport:NOR:..., shown masked.
HOLD is the hold's ID, as add and list print it.

Every add, extend and release is an audit event naming the hold, the
Varde person ID (never a number), the times, the reason and --by (default:
the user running this command). The person is not told: their account
page and their export (varde persons export) show no hold, and no
address older than the retention, as if it were deleted; once the order
allows, varde persons export gives those too when asked for them
(varde help persons). A hold keeps the addresses only: the events stay for
the log's own period anyway.
`

// holdEndedWithin is how long ended holds stay in varde audit hold list
// by default.
const holdEndedWithin = 30 * 24 * time.Hour

// The audit events of the holds. They name no person in their
// PersonID, so that the person's activity and export do not show a hold
// (ADR 45); the Varde person ID is among the details.
const (
	eventHoldAdded    = "audit_hold_added"
	eventHoldExtended = "audit_hold_extended"
	eventHoldReleased = "audit_hold_released"
)

// auditCmd runs varde audit's commands, reading the time from now:
// events, and the group hold.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	if err := groupHelp(auditUsage, args, stderr); err != nil {
		return err
	}
	switch args[0] {
	case "events":
		return readAuditEvents(ctx, args, stdout, stderr, now())
	case "hold":
		return holdCmd(ctx, args[1:], stdout, stderr, now)
	}
	return unknownSubcommand("audit", auditUsage, args[0], stderr, "events", "hold")
}

// holdFlags are what varde audit hold's commands are given.
type holdFlags struct {
	config, reason, by, personID string
	from, to, until              string
	endedWithin                  time.Duration
}

// holdCmd runs varde audit hold's commands.
func holdCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fs, path, err := adminFlags("audit hold", holdUsage, args, stderr)
	if err != nil {
		return err
	}
	var f holdFlags
	positional := []string{"HOLD"}
	switch args[0] {
	case "add":
		fs.StringVar(&f.personID, "id", "", "the person's `ID`, as varde persons show prints it, instead of IDENTIFIER")
		fs.StringVar(&f.from, "from", "", "hold the events from this `TIME` on (a date or RFC 3339)")
		fs.StringVar(&f.to, "to", "", "hold the events before this `TIME` (default: now; never later)")
		positional = []string{"[IDENTIFIER]"}
	case "list":
		fs.DurationVar(&f.endedWithin, "ended-within", holdEndedWithin, "also list the holds that ended within this `DURATION`")
		positional = nil
	case "extend", "release":
	default:
		return unknownSubcommand("audit hold", holdUsage, args[0], stderr, "add", "list", "extend", "release")
	}
	if args[0] == "add" || args[0] == "extend" {
		fs.StringVar(&f.until, "until", "", "when the hold ends by itself, a `TIME` within 366 days (required)")
	}
	if args[0] != "list" {
		fs.StringVar(&f.reason, "reason", "", fmt.Sprintf("the order's reference or the case, at most %d characters, "+
			"never a national number (e.g. %q) (required)", store.MaxBlockReasonLen, "sikringspålegg 26-4711, Oslo politidistrikt"))
		fs.StringVar(&f.by, "by", "", "who does it, for the audit log (default: the user running this command)")
	}
	if err := parseFlags(fs, args[1:], positional...); err != nil {
		return err
	}
	f.config = *path
	if args[0] != "list" {
		if err := checkHoldNotes(&f); err != nil {
			return err
		}
	}
	switch args[0] {
	case "add":
		return addHold(ctx, fs, f, now(), stdout)
	case "list":
		if f.endedWithin < 0 {
			return usageErrorf("--ended-within must not be negative")
		}
		return listHolds(ctx, f, now(), stdout)
	case "extend":
		return extendHold(ctx, fs.Arg(0), f, now(), stdout)
	}
	return releaseHold(ctx, fs.Arg(0), f, now(), stdout)
}

// checkHoldNotes checks --reason and --by as the audit log takes them,
// and refuses a reason or name that looks like it holds a national
// number: it would be stored with the hold as typed, and the audit log
// keeps no number.
func checkHoldNotes(f *holdFlags) error {
	var err error
	if f.reason, err = plainNote("--reason", f.reason, store.MaxBlockReasonLen); err != nil {
		return err
	}
	if f.by == "" {
		f.by = osUser()
	}
	if f.by, err = plainNote("--by", f.by, maxOperatorLen); err != nil {
		return err
	}
	for _, v := range []struct{ flag, value string }{{"--reason", f.reason}, {"--by", f.by}} {
		if audit.LooksLikeNationalID(v.value) {
			return usageErrorf("%s looks as if it holds a national identity number: give the order's reference, "+
				"never a person's number (the person is IDENTIFIER or --id)", v.flag)
		}
	}
	return nil
}

// parseHoldTime reads a TIME flag: an RFC 3339 time, or a date, which
// stands for its start, or, for an end (end), for the start of the day
// after, so that the day is included.
func parseHoldTime(flagName, s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Microsecond), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q: want a date (2026-11-22) or an RFC 3339 time (2026-11-22T13:45:00Z)", flagName, s)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// isDate reports whether a TIME flag's value is a date, a whole day.
func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// holdUntil reads --until: required, after now, within
// store.MaxHoldLength of now.
func holdUntil(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, usageErrorf("--until is required: when the hold ends by itself, as the order says (at most 366 days from now)")
	}
	until, err := parseHoldTime("--until", s, true)
	if err != nil {
		return time.Time{}, err
	}
	switch {
	case !until.After(now):
		return time.Time{}, usageErrorf("--until %s is not in the future", utc(until))
	case until.Sub(now) > store.MaxHoldLength:
		return time.Time{}, usageErrorf("--until %s is more than 366 days away: a hold runs for a set time; "+
			"extend it (varde audit hold extend) when the order is renewed", utc(until))
	}
	return until, nil
}

// newHoldID makes a hold's ID: short enough to type, random.
func newHoldID() string {
	return "hold-" + strings.ToLower(rand.Text()[:10])
}

func addHold(ctx context.Context, fs *flag.FlagSet, f holdFlags, now time.Time, w io.Writer) error {
	if f.personID != "" && fs.NArg() > 0 {
		return usageErrorf("%s: give the person's IDENTIFIER or --id, not both", fs.Name())
	}
	var id store.Identifier
	if fs.NArg() > 0 {
		var err error
		if id, err = parseIdentifierArg(fs.Arg(0)); err != nil {
			return err
		}
	}
	h := &store.AuditHold{ID: newHoldID(), Reason: f.reason, By: f.by, CreatedAt: now, To: now}
	var err error
	if h.Until, err = holdUntil(f.until, now); err != nil {
		return err
	}
	if err := holdWindow(h, f, fs.NArg() > 0 || f.personID != ""); err != nil {
		return err
	}
	cfg, st, err := openNodeStore(ctx, f.config)
	if err != nil {
		return err
	}
	defer st.Close()
	if fs.NArg() > 0 || f.personID != "" {
		p, err := lookUpPerson(ctx, st, f.personID, id)
		if err != nil {
			return err
		}
		h.PersonID = p.ID
	}
	covered, err := st.CountAuditHoldAddresses(ctx, h)
	if err != nil {
		return err
	}
	if covered == 0 {
		// Its window ends by now, so it would never cover any.
		return fmt.Errorf("no client address is kept now of %s, so a hold would keep nothing: nothing was added. "+
			"Addresses older than audit.address_retention (%s) are deleted, and events after a hold is added are not covered by it",
			holdScope(h), retentionDays(cfg.Audit.AddressRetention))
	}
	ev := &store.AuditEvent{Type: eventHoldAdded, Result: store.ResultSuccess, Details: holdDetails(h, f)}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	if err := st.AddAuditHold(ctx, h, ev); err != nil {
		return err
	}
	fmt.Fprintf(w, "added hold %s at %s: %s.\n", h.ID, utc(now), holdScope(h))
	fmt.Fprintf(w, "It covers %s kept now.\n", addressCount(covered))
	fmt.Fprintf(w, "Every node keeps their client addresses past audit.address_retention (%s) until %s,\n",
		retentionDays(cfg.Audit.AddressRetention), utc(h.Until))
	fmt.Fprintln(w, "and deletes those past it at its first housekeeping round after. Addresses deleted before now are gone.")
	fmt.Fprintln(w, "Extend it with varde audit hold extend when the order is renewed; end it early with varde audit hold release.")
	fmt.Fprintln(w, "The person is not told: their account page and their export show no hold and no address past the retention.")
	return nil
}

// addressCount says n client addresses in words.
func addressCount(n int64) string {
	if n == 1 {
		return "1 client address"
	}
	return fmt.Sprintf("%d client addresses", n)
}

// holdWindow sets h's window from --from and --to: a hold of a person
// may leave out --from (since the start of the log); a hold of every
// event needs it. Both end no later than now (h.To, already set).
func holdWindow(h *store.AuditHold, f holdFlags, ofPerson bool) error {
	var err error
	if f.to != "" {
		if h.To, err = parseHoldTime("--to", f.to, true); err != nil {
			return err
		}
		switch {
		case !h.To.After(h.CreatedAt):
		case isDate(f.to) && !h.To.Add(-24*time.Hour).After(h.CreatedAt):
			h.To = h.CreatedAt // today, so far
		default:
			return usageErrorf("--to %s is in the future: a hold keeps what is stored; add another hold for later events", utc(h.To))
		}
	}
	switch {
	case f.from != "":
		if h.From, err = parseHoldTime("--from", f.from, false); err != nil {
			return err
		}
		if !h.From.Before(h.To) {
			return usageErrorf("--from %s is not before --to %s", utc(h.From), utc(h.To))
		}
	case !ofPerson:
		return usageErrorf("give the person (IDENTIFIER or --id) or the window's start (--from), or both: " +
			"a hold of every event since the start of the log would keep everyone's addresses")
	}
	return nil
}

// holdDetails are the details of a hold's audit event: what it holds
// and why, never a national number.
func holdDetails(h *store.AuditHold, f holdFlags) map[string]string {
	d := map[string]string{"hold": h.ID, "to": stamp(h.To), "until": stamp(h.Until), "reason": f.reason, "by": f.by, "via": "cli"}
	if h.PersonID != "" {
		d["person"] = h.PersonID
	}
	if !h.From.IsZero() {
		d["from"] = stamp(h.From)
	}
	return d
}

// holdScope says in words which events h covers.
func holdScope(h *store.AuditHold) string {
	from := "the start of the log"
	if !h.From.IsZero() {
		from = utc(h.From)
	}
	who := "every event"
	if h.PersonID != "" {
		who = "the events of person " + h.PersonID
	}
	return fmt.Sprintf("%s from %s up to %s", who, from, utc(h.To))
}

func listHolds(ctx context.Context, f holdFlags, now time.Time, w io.Writer) error {
	_, st, err := openNodeStore(ctx, f.config)
	if err != nil {
		return err
	}
	defer st.Close()
	holds, err := st.ListAuditHolds(ctx, now, now.Add(-f.endedWithin))
	if err != nil {
		return err
	}
	if len(holds) == 0 {
		fmt.Fprintf(w, "no hold is live, and none ended within %s.\n", f.endedWithin)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tHOLDS\tUNTIL\tADDED BY\tREASON")
	for _, h := range holds {
		state := "live"
		switch {
		case !h.ReleasedAt.IsZero():
			state = fmt.Sprintf("released %s by %s (%s)", utc(h.ReleasedAt), h.ReleasedBy, h.ReleaseReason)
		case !h.Live(now):
			state = "ended"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s at %s\t%s\n", h.ID, state, holdScope(h), utc(h.Until), h.By, utc(h.CreatedAt), h.Reason)
	}
	return tw.Flush()
}

func extendHold(ctx context.Context, id string, f holdFlags, now time.Time, w io.Writer) error {
	until, err := holdUntil(f.until, now)
	if err != nil {
		return err
	}
	_, st, err := openNodeStore(ctx, f.config)
	if err != nil {
		return err
	}
	defer st.Close()
	old, err := liveHold(ctx, st, id, now)
	if err != nil {
		return err
	}
	if !until.After(old.Until) {
		return usageErrorf("hold %s runs until %s already: --until must be later", id, utc(old.Until))
	}
	ev := &store.AuditEvent{Type: eventHoldExtended, Result: store.ResultSuccess, Details: map[string]string{
		"hold": id, "until": stamp(until), "was_until": stamp(old.Until), "reason": f.reason, "by": f.by, "via": "cli"}}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	h, err := st.ExtendAuditHold(ctx, id, until, now, ev)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("hold %s changed meanwhile: nothing changed; look again with varde audit hold list", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "extended hold %s (%s) until %s.\n", id, holdScope(h), utc(h.Until))
	return nil
}

func releaseHold(ctx context.Context, id string, f holdFlags, now time.Time, w io.Writer) error {
	_, st, err := openNodeStore(ctx, f.config)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := liveHold(ctx, st, id, now); err != nil {
		return err
	}
	ev := &store.AuditEvent{Type: eventHoldReleased, Result: store.ResultSuccess, Details: map[string]string{
		"hold": id, "reason": f.reason, "by": f.by, "via": "cli"}}
	(&audit.Log{Now: func() time.Time { return now }}).Prepare(ctx, ev)
	h, err := st.ReleaseAuditHold(ctx, id, f.reason, f.by, now, ev)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("hold %s changed meanwhile: nothing changed; look again with varde audit hold list", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "released hold %s (%s) at %s.\n", id, holdScope(h), utc(now))
	fmt.Fprintln(w, "The next housekeeping round of any node deletes the addresses it kept that are past audit.address_retention,")
	fmt.Fprintln(w, "unless another live hold covers them.")
	return nil
}

// liveHold reads the hold with this ID, refusing one that is not live
// at now with what became of it.
func liveHold(ctx context.Context, st store.AuditHolds, id string, now time.Time) (*store.AuditHold, error) {
	h, err := st.GetAuditHold(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no hold %s: varde audit hold list shows the holds", id)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !h.ReleasedAt.IsZero():
		return nil, fmt.Errorf("hold %s was released at %s by %s: nothing changed; add a new hold if a new order asks for one",
			id, utc(h.ReleasedAt), h.ReleasedBy)
	case !h.Live(now):
		return nil, fmt.Errorf("hold %s ended at %s: nothing changed; add a new hold if the order was renewed", id, utc(h.Until))
	}
	return h, nil
}
