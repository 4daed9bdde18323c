package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/status/statuspage"
	"github.com/varde-eid/varde/internal/store"
)

const statusUsage = `usage: varde status <command> --config FILE [flags]

  incidents    list open and recent incidents
  note         add an operator's update to an incident's timeline (--incident ID --author NAME --message TEXT)
  rca          publish an incident's root-cause analysis (--incident ID --author NAME --file FILE)
  maintenance  announce planned maintenance: maintenance add|list|cancel|end (end: a window under way ends now, when its work is done early)
  report       a resilience report as JSON, with what of it was measured in words on stderr (--quarter 2026-Q3, or --from 2026-07-01 --to 2026-10-01; quarters and dates begin at midnight in pages.time_zone)
  export       write a complete static copy of the status page to DIR (export DIR)
  webhooks     the signed notifications sent to a relying party, newest first (--client ID, --limit N: at most N, default 20)

report and export give the view of the configuration's node (node:), as its page does.
Times are printed in UTC (RFC 3339, ending in Z), as varde nodes prints them.
`

const maintenanceUsage = `usage: varde status maintenance <add|list|cancel|end> --config FILE [flags]

  add      announce a window of planned maintenance (--components LIST --start T --end T --title TEXT [--message TEXT])
  list     list the windows, with those cancelled or ended early
  cancel   take back a window that has not begun (--id ID)
  end      end a window under way now, its work done early (--id ID)

Times are RFC 3339, e.g. 2026-12-01T22:00:00+01:00, and printed in UTC.
`

// openStatusReader loads the configuration at path, opens its node's
// store and a status service over it (app.StatusReader) that reads the
// time from now; the caller closes the store.
func openStatusReader(ctx context.Context, path string, now func() time.Time) (*config.Config, *status.Service, store.Store, error) {
	cfg, st, err := openNodeStore(ctx, path)
	if err != nil {
		return nil, nil, nil, err
	}
	svc, err := app.StatusReader(ctx, cfg, st, now)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return cfg, svc, st, nil
}

// statusCmd runs status's commands, reading the time from now.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) error {
	if err := groupHelp(statusUsage, args, stderr); err != nil {
		return err
	}
	name := args[0]
	args = args[1:]
	if name == "maintenance" {
		if err := groupHelp(maintenanceUsage, args, stderr); err != nil {
			return err
		}
		name, args = "maintenance "+args[0], args[1:]
	}
	fs := flag.NewFlagSet("status "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the node's configuration file")
	var (
		incident, author, message, file, components, title, id string
		start, end, quarter, from, to                          string
		limit                                                  int
	)
	switch name {
	case "incidents", "maintenance list", "export":
	case "note":
		fs.StringVar(&incident, "incident", "", "incident ID (required)")
		fs.StringVar(&author, "author", "", "who writes it, shown publicly (required)")
		fs.StringVar(&message, "message", "", "the update, in plain language (required)")
	case "rca":
		fs.StringVar(&incident, "incident", "", "incident ID (required)")
		fs.StringVar(&author, "author", "", "who writes it, shown publicly (required)")
		fs.StringVar(&file, "file", "", "file with the root-cause analysis, plain text (required)")
	case "maintenance add":
		fs.StringVar(&components, "components", "", "affected components, comma-separated, e.g. bankid,store (required)")
		fs.StringVar(&start, "start", "", "start, RFC 3339, e.g. 2026-12-01T22:00:00+01:00 (required)")
		fs.StringVar(&end, "end", "", "end, RFC 3339, at most 24 hours after the start (required)")
		fs.StringVar(&title, "title", "", "what happens, in plain language (required)")
		fs.StringVar(&message, "message", "", "more detail")
	case "maintenance cancel":
		fs.StringVar(&id, "id", "", "maintenance ID (required); only a window that has not begun can be cancelled")
	case "maintenance end":
		fs.StringVar(&id, "id", "", "maintenance ID (required); only a window under way can be ended, and it ends now")
	case "webhooks":
		fs.StringVar(&id, "client", "", "the relying party's client ID (required)")
		fs.IntVar(&limit, "limit", 20, "at most this many, newest first")
	case "report":
		fs.StringVar(&quarter, "quarter", "", "quarter, e.g. 2026-Q3 (default the current quarter to date)")
		fs.StringVar(&from, "from", "", "first day, YYYY-MM-DD (with --to)")
		fs.StringVar(&to, "to", "", "day after the last, YYYY-MM-DD (with --from)")
	default:
		if sub, ok := strings.CutPrefix(name, "maintenance "); ok {
			return unknownSubcommand("status maintenance", maintenanceUsage, sub, stderr, "add", "list", "cancel", "end")
		}
		return unknownSubcommand("status", statusUsage, name, stderr,
			"incidents", "note", "rca", "maintenance add|list|cancel|end", "report", "export", "webhooks")
	}
	var positional []string
	if name == "export" {
		positional = []string{"DIR"}
	}
	if err := parseFlags(fs, args, positional...); err != nil {
		return err
	}
	// A flag left out, or a period that cannot be read, is the caller's
	// mistake: say which, before any database is opened.
	switch {
	case name == "note" && (incident == "" || author == "" || message == ""):
		return usageErrorf("status note: --incident, --author and --message are required")
	case name == "rca" && (incident == "" || author == "" || file == ""):
		return usageErrorf("status rca: --incident, --author and --file are required")
	case name == "maintenance add" && (components == "" || start == "" || end == "" || title == ""):
		return usageErrorf("status maintenance add: --components, --start, --end and --title are required")
	case name == "maintenance cancel" && id == "":
		return usageErrorf("status maintenance cancel: --id is required")
	case name == "maintenance end" && id == "":
		return usageErrorf("status maintenance end: --id is required")
	case name == "webhooks" && (id == "" || limit < 1):
		return usageErrorf("status webhooks: --client is required, and --limit must be at least 1")
	}
	var startAt, endAt time.Time
	if name == "maintenance add" {
		s, err1 := time.Parse(time.RFC3339, start)
		e, err2 := time.Parse(time.RFC3339, end)
		if err := errors.Join(err1, err2); err != nil {
			return usageErrorf("status maintenance add: --start and --end must be RFC 3339 times, e.g. 2026-12-01T22:00:00+01:00: %w", err)
		}
		startAt, endAt = s, e
	}
	var rcaText []byte
	if name == "rca" {
		t, err := readRCAFile(file)
		if err != nil {
			return err
		}
		rcaText = t
	}
	cfg, svc, st, err := openStatusReader(ctx, *path, now)
	if err != nil {
		return err
	}
	defer st.Close()
	switch name {
	case "incidents":
		return listIncidents(ctx, svc, stdout)
	case "note":
		u, err := svc.AddNote(ctx, incident, author, message)
		if err != nil {
			return textErr("status note", incidentErr(incident, err, cfg.Status.ResolveAfter), map[string]string{"author": "--author", "note": "--message"})
		}
		fmt.Fprintf(stdout, "added update %d to incident %s\n", u.Seq, incident)
		shownWithin(svc, stderr)
		return nil
	case "rca":
		if err := svc.PublishRCA(ctx, incident, author, string(rcaText)); err != nil {
			return textErr("status rca", incidentErr(incident, err, cfg.Status.ResolveAfter), map[string]string{"author": "--author", "root-cause analysis": "--file " + file})
		}
		fmt.Fprintf(stdout, "published the root-cause analysis of incident %s\n", incident)
		shownWithin(svc, stderr)
		return nil
	case "maintenance add":
		m, err := svc.Announce(ctx, splitList(components), startAt, endAt, title, message)
		if err != nil {
			return textErr("status maintenance add", err, map[string]string{"title": "--title", "message": "--message"})
		}
		fmt.Fprintf(stdout, "announced maintenance %s\n", m.ID)
		shownWithin(svc, stderr)
		return nil
	case "maintenance list":
		return listMaintenance(ctx, st, now(), stdout)
	case "maintenance cancel":
		if err := svc.CancelMaintenance(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no maintenance %q", id)
			}
			return err
		}
		fmt.Fprintf(stdout, "cancelled maintenance %s\n", id)
		shownWithin(svc, stderr)
		return nil
	case "maintenance end":
		m, err := svc.EndMaintenance(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no maintenance %q", id)
			}
			return err
		}
		fmt.Fprintf(stdout, "ended maintenance %s at %s; it began at %s\n", id, m.End.UTC().Format(time.RFC3339), m.Start.UTC().Format(time.RFC3339))
		shownWithin(svc, stderr)
		return nil
	case "report":
		// Quarters and dates are the pages' zone's: the configuration
		// says which.
		period, err := reportPeriod(quarter, from, to, now(), cfg.Pages.Location())
		if err != nil {
			return usageErrorf("status report: %w (give --quarter 2026-Q3, or --from 2026-07-01 --to 2026-10-01, or neither for the current quarter to date)", err)
		}
		rep, err := svc.Report(ctx, period.From, period.To, period.Title)
		if err != nil {
			return err
		}
		if err := warnNoOwnView(ctx, st, cfg.Node, stderr); err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
		// The page's words on what was measured, for the person at the
		// terminal; stdout stays JSON.
		pages, err := app.NewPages(nil)
		if err != nil {
			return err
		}
		pages.TimeZone = cfg.Pages.Location()
		for _, s := range statuspage.ReportWords(pages, "en", rep) {
			fmt.Fprintln(stderr, s)
		}
		return nil
	case "export":
		if err := warnNoOwnView(ctx, st, cfg.Node, stderr); err != nil {
			return err
		}
		return exportStatus(ctx, svc, cfg, fs.Arg(0), stdout)
	case "webhooks":
		return listWebhooks(ctx, st, id, limit, now(), stdout)
	}
	return nil
}

// warnNoOwnView says on stderr when node, the configuration's, has
// recorded no health record in a store where others have: each node
// reports and publishes its own view, which is then empty, so the
// figures would show no outage for want of measurements.
func warnNoOwnView(ctx context.Context, st store.Store, node string, stderr io.Writer) error {
	own, err := st.ListHealthTransitions(ctx, store.HealthQuery{Node: node, Limit: 1})
	if err != nil || len(own) > 0 {
		return err
	}
	others, err := st.ListHealthTransitions(ctx, store.HealthQuery{Limit: 1})
	if err != nil || len(others) == 0 {
		return err // with no record at all, the report says so itself
	}
	fmt.Fprintf(stderr, "varde: node %q (this configuration's) has recorded no health checks in this store, "+
		"and each node reports what it measured itself, so these figures show nothing measured; "+
		"give the configuration of a node that ran (its node setting; varde nodes list --config FILE lists them)\n", node)
	return nil
}

// listWebhooks prints client's webhook deliveries, newest first: when,
// what, how many attempts, where each stands, the last error and the
// URL without its query, where a relying party may keep a secret.
func listWebhooks(ctx context.Context, st store.Store, client string, limit int, now time.Time, w io.Writer) error {
	ds, err := st.ListWebhookDeliveries(ctx, client, limit)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		// Say why there are none when the client itself tells: a
		// mistyped ID, or a client that registers no URL, must not read
		// as a relying party with nothing to hear.
		c, err := st.GetClient(ctx, client)
		switch {
		case errors.Is(err, store.ErrNotFound):
			fmt.Fprintf(w, "no webhook deliveries to %s: no client %s is registered (varde clients list shows those that are)\n", client, client)
		case err != nil:
			return err
		case c.StatusWebhook == "" && c.BackchannelLogoutURI == "":
			fmt.Fprintf(w, "no webhook deliveries to %s: it registers neither a status webhook nor a back-channel logout URI\n", client)
		default:
			fmt.Fprintf(w, "no webhook deliveries to %s (finished ones are kept %d days)\n", client, int(store.FinishedDeliveryAge.Hours()/24))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tEVENT\tATTEMPTS\tSTATE\tLAST ERROR\tURL")
	for _, d := range ds {
		state := "next attempt in " + d.NextAttemptAt.Sub(now).Round(time.Second).String()
		switch {
		case !d.DeliveredAt.IsZero():
			state = "delivered " + d.DeliveredAt.UTC().Format(time.RFC3339)
		case !d.AbandonedAt.IsZero():
			state = "ABANDONED " + d.AbandonedAt.UTC().Format(time.RFC3339)
		case !d.NextAttemptAt.After(now):
			state = "due now"
		}
		lastErr := d.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", d.CreatedAt.UTC().Format(time.RFC3339), d.Event, d.Attempts, state, lastErr, httpx.RedactURL(d.URL))
	}
	return tw.Flush()
}

// maxRCAFileSize is the largest root-cause analysis status rca reads:
// the most text the status service keeps. A larger file (or a device
// such as /dev/zero) is a wrong --file, refused without reading past it.
const maxRCAFileSize = 64 << 10

// readRCAFile reads the root-cause analysis at path, given as --file.
func readRCAFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("status rca: --file: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxRCAFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("status rca: --file: %w", err)
	}
	if len(raw) > maxRCAFileSize {
		return nil, fmt.Errorf("status rca: --file: %s is larger than %d bytes (64 KiB), the most a root-cause analysis may hold", path, maxRCAFileSize)
	}
	return raw, nil
}

// textErr says which flag of command cmd held the text the status
// service refused, flags naming each input's; other errors are returned
// as they are.
func textErr(cmd string, err error, flags map[string]string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []error
	for _, e := range errs {
		var te *status.TextError
		if errors.As(e, &te) && flags[te.Input] != "" {
			e = fmt.Errorf("%s: %s: the %s %s", cmd, flags[te.Input], te.Input, textProblem(te.Err))
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// textProblem is what is wrong with refused text, in a few words.
func textProblem(err error) string {
	switch {
	case errors.Is(err, status.ErrEmpty):
		return "is empty"
	case errors.Is(err, status.ErrNotText):
		return "is not UTF-8 text or holds a NUL character"
	}
	return err.Error()
}

// incidentErr says what to do about err, met writing to incident id;
// resolveAfter is status.resolve_after, for when an open one resolves.
func incidentErr(id string, err error, resolveAfter time.Duration) error {
	var nr *status.NotResolvedError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no incident %q (status incidents lists the open and recent ones)", id)
	case errors.As(err, &nr):
		return fmt.Errorf("incident %s (%s) is still open: its root-cause analysis can be published once it is resolved, "+
			"which happens by itself once its components have stayed up for %v (status.resolve_after); "+
			"it is then due within 72 hours (status incidents shows its status, and then when it is due); "+
			"meanwhile, status note tells people what is being done",
			nr.ID, strings.Join(nr.Components, ", "), resolveAfter)
	}
	return err
}

// reportPeriod turns the report flags into a period, by the same rules
// as the report page's query: quarters and dates of loc, the pages'
// zone.
func reportPeriod(quarter, from, to string, now time.Time, loc *time.Location) (statuspage.Period, error) {
	q := url.Values{}
	for k, v := range map[string]string{"quarter": quarter, "from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return statuspage.ParsePeriod(q, now, loc)
}

func listIncidents(ctx context.Context, svc *status.Service, w io.Writer) error {
	sum, err := svc.Summary(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOMPONENTS\tSEVERITY\tSTATUS\tSTARTED\tDURATION\tPEOPLE\tFAILED\tRCA")
	// The summary is shared: its slices are read, never appended to.
	for _, in := range slices.Concat(sum.Open, sum.Recent) {
		rca := "-"
		switch {
		case in.RCAPublishedAt != nil && in.RCAOnTime:
			rca = "published on time " + in.RCAPublishedAt.UTC().Format(time.RFC3339)
		case in.RCAPublishedAt != nil:
			rca = "published LATE " + in.RCAPublishedAt.UTC().Format(time.RFC3339) + ", due " + in.RCADueAt.UTC().Format(time.RFC3339)
		case in.RCAOverdue:
			rca = "OVERDUE since " + in.RCADueAt.UTC().Format(time.RFC3339)
		case in.RCADueAt != nil:
			rca = "due " + in.RCADueAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", in.ID, strings.Join(in.Components, ","), in.Severity, in.Status,
			in.StartedAt.UTC().Format(time.RFC3339), time.Duration(in.DurationSeconds)*time.Second, in.PeopleAffected, in.FailedAttempts, rca)
	}
	return tw.Flush()
}

// listMaintenance prints the maintenance windows that end after
// status.HistoryDays before now, cancelled ones included, by start. A
// window ended early shows when it ended and the end it was announced
// with.
func listMaintenance(ctx context.Context, st store.Maintenances, now time.Time, w io.Writer) error {
	ms, err := st.ListMaintenance(ctx, now.AddDate(0, 0, -status.HistoryDays), time.Time{})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOMPONENTS\tSTART\tEND\tCANCELLED\tTITLE")
	for _, m := range ms {
		cancelled := "-"
		if !m.CancelledAt.IsZero() {
			cancelled = m.CancelledAt.UTC().Format(time.RFC3339)
		}
		end := m.End.UTC().Format(time.RFC3339)
		if !m.AnnouncedEnd.IsZero() {
			end = "ended early at " + end + " (announced to " + m.AnnouncedEnd.UTC().Format(time.RFC3339) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, strings.Join(m.Components, ","), m.Start.UTC().Format(time.RFC3339), end, cancelled, m.Title)
	}
	return tw.Flush()
}

// shownWithin tells the operator, on stderr, when running nodes show a
// change this command wrote to the store: a node serves the page,
// incident and reports it computed for status.Config.CacheFor, and it
// cannot hear a change written by another process.
func shownWithin(svc *status.Service, stderr io.Writer) {
	fmt.Fprintf(stderr, "running nodes show it on their status page within %s, the time each keeps the page it computed\n", svc.Config.WithDefaults().CacheFor)
}

// exportStatus writes the static copy of the status page.
func exportStatus(ctx context.Context, svc *status.Service, cfg *config.Config, dir string, stdout io.Writer) error {
	pages, err := app.NewPages(nil)
	if err != nil {
		return err
	}
	pages.TimeZone = cfg.Pages.Location()
	if sp := cfg.Support; sp.URL != "" || sp.Phone != "" {
		pages.Support = &httpx.Support{URL: sp.URL, Phone: sp.Phone, Hours: sp.Hours}
	}
	if err := statuspage.Export(ctx, svc, pages, dir, statuspage.ExportOptions{BaseURL: cfg.Issuer}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the status page to %s\n", dir)
	return nil
}
