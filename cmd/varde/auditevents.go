package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const auditUsage = `usage: varde audit <events|hold> --config FILE [flags]

  events  read the audit log: what the nodes and the admin commands
          recorded (clients added and removed, keys retired, nodes
          forgotten, persons blocked, holds, logins), oldest first:
          varde audit events --config FILE [--since TIME] [--until TIME]
          [--type TYPE,...] [--client ID] [--after SEQ] [--limit N]
  hold    keep the client addresses of a person's events, or of a window
          of time, past audit.address_retention, for a preservation order:
          audit hold add|list|extend|release (varde help audit hold)
`

const eventsUsage = `usage: varde audit events --config FILE [--since TIME] [--until TIME] [--type TYPE,...] [--client ID] [--after SEQ] [--limit N]

Prints the audit log's events, oldest first, one a line: its sequence
number, time (UTC), type, result, the Varde person ID and the client it
names, and its details (provider, level, reason and what the event
records, such as via, sector, kid, node). No event holds a national
number; the client's address, which is personal data kept apart from
the event (audit.address_retention), is not printed. --since defaults to
24 hours ago. At most --limit events (default 100) are printed; when
there are more, the command says on stderr how to read on (--after).
TIME is a date, 2026-11-22 (--since from its start, --until to its
end), or an RFC 3339 time, 2026-11-22T13:45:00Z. varde store verify
checks that the log is whole.
`

// eventsDefaultSince is how far back varde audit events reads without
// --since.
const eventsDefaultSince = 24 * time.Hour

// eventsFlags are what varde audit events is given.
type eventsFlags struct {
	since, until, types, client string
	after                       int64
	limit                       int
}

// readAuditEvents runs varde audit events.
func readAuditEvents(ctx context.Context, args []string, stdout, stderr io.Writer, now time.Time) error {
	fs, path, err := adminFlags("audit", eventsUsage, args, stderr)
	if err != nil {
		return err
	}
	var f eventsFlags
	fs.StringVar(&f.since, "since", "", "the events from this `TIME` on (default: 24 hours ago)")
	fs.StringVar(&f.until, "until", "", "the events before this `TIME` (default: now)")
	fs.StringVar(&f.types, "type", "", "only events of these `TYPES`, comma-separated (client_added,client_removed,key_retired,...)")
	fs.StringVar(&f.client, "client", "", "only events naming this client `ID`")
	fs.Int64Var(&f.after, "after", 0, "only events after this sequence number `SEQ`, to read on")
	fs.IntVar(&f.limit, "limit", 100, "print at most `N` events")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	q, err := eventsQuery(f, now)
	if err != nil {
		return err
	}
	_, st, err := openNodeStore(ctx, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	events, err := st.ListAuditRange(ctx, q)
	if err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	more := len(events) > f.limit
	events = events[:min(len(events), f.limit)]
	if err := printEvents(events, stdout); err != nil {
		return err
	}
	switch {
	case more:
		fmt.Fprintf(stderr, "more events follow: run again with --after %d\n", events[len(events)-1].Seq)
	case len(events) == 0:
		fmt.Fprintf(stderr, "no event from %s to %s matches\n", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	return nil
}

// eventsQuery turns f into the query of one more event than f.limit,
// which tells whether there are more.
func eventsQuery(f eventsFlags, now time.Time) (store.AuditQuery, error) {
	q := store.AuditQuery{Since: now.Add(-eventsDefaultSince).UTC(), Until: now.UTC(), ClientID: f.client,
		AfterSeq: f.after, Types: splitList(f.types), Limit: f.limit + 1}
	var err error
	if f.since != "" {
		if q.Since, err = parseHoldTime("--since", f.since, false); err != nil {
			return q, err
		}
	}
	if f.until != "" {
		if q.Until, err = parseHoldTime("--until", f.until, true); err != nil {
			return q, err
		}
	}
	switch {
	case f.limit < 1:
		return q, usageErrorf("audit events: --limit must be at least 1")
	case f.after < 0:
		return q, usageErrorf("audit events: --after must not be negative")
	case !q.Since.Before(q.Until):
		return q, usageErrorf("audit events: --since %s is not before --until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}
	return q, nil
}

// printEvents writes events one a line under a header.
func printEvents(events []*store.AuditEvent, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tRESULT\tPERSON\tCLIENT\tDETAILS")
	for _, e := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), quoteControl(e.Type),
			orDash(e.Result), orDash(quoteControl(e.PersonID)), orDash(quoteControl(e.ClientID)), eventDetails(e))
	}
	return tw.Flush()
}

// eventDetails is e's provider, level, reason and details as key=value,
// a value with a space or a control character quoted, and without the
// client's address.
func eventDetails(e *store.AuditEvent) string {
	d := maps.Clone(e.Details)
	if d == nil {
		d = map[string]string{}
	}
	delete(d, store.DetailAddr)
	for k, v := range map[string]string{"provider": e.Provider, "level": e.Level, "reason": e.Reason} {
		if v != "" {
			d[k] = v
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(d)) {
		v := d[k]
		if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
			v = strconv.Quote(v)
		}
		parts = append(parts, k+"="+v)
	}
	return orDash(strings.Join(parts, " "))
}

// orDash is s, or "-" for nothing.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
