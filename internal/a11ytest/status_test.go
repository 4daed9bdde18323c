package a11ytest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/status/statuspage"
	"github.com/varde-eid/varde/internal/store"
)

// Incidents and maintenance seeded into the node's store, so that the
// status pages show what people meet during and after an outage.
const (
	resolvedID = "a11y-passkey-outage" // passkey, resolved four days ago, RCA overdue
	openID     = "a11y-store-slow"     // store, open, degraded
	maintID    = "a11y-passkey-maintenance"
	maintTitle = "Passkey maintenance"
)

// TestStatusPagesWCAG opens the public status pages — the status page
// with an open incident, a recent incident whose root-cause analysis is
// overdue, announced maintenance, maintenance completed and maintenance
// cancelled; both incidents' pages; the report
// for the current and the previous quarter; and the page for an unknown
// incident — in every language, and checks them as TestPagesWCAG checks
// the login pages: axe-core's WCAG 2.2 A/AA rules, reflow at 320 CSS
// pixels and the help desk last in the content. The status pages promise to work without JavaScript, so each
// must also carry no script at all.
func TestStatusPagesWCAG(t *testing.T) {
	requireBrowserTests(t)
	axeSrc := axeSource(t)
	b := newBrowser(t, chromiumPath(t), axeSrc)
	n := startNode(t)
	now := time.Now().UTC()
	seedStatus(t, n.app.Store, now)
	waitForSeeded(t, n.issuer+"/status")

	const (
		noScript = `document.scripts.length === 0`
		// The seeded content is on the page, so axe sees it.
		homeSeeded = `document.querySelector("#open-h") !== null && document.querySelector("#maint-h") !== null && ` +
			`document.querySelector("li.maintenance") !== null && document.querySelector("li.maintenance p.meanwhile") !== null && document.querySelector("#support #support-phone") !== null && document.querySelector("li.maintenance-done") !== null && document.querySelector("li.maintenance-cancelled") !== null && document.querySelector(".incident-card .rca-overdue") !== null && ` +
			`document.querySelector('a[href*="` + openID + `"]') !== null && document.querySelector('a[href*="` + resolvedID + `"]') !== null`
		timeline = `document.querySelectorAll("ol.timeline li").length`
		// WCAG 1.4.1: maintenance under way or planned, completed and
		// cancelled each have their own visible label and their own line
		// style beside them, so they do not differ in colour alone.
		// Each uptime day's figures, hidden in the bar but for screen
		// readers, are also in a disclosure a sighted person can open
		// with the keyboard or the mouse; opened, every day is there, visible.
		daysShown = `(() => {
  const c = document.querySelector("li.component");
  const bar = c && c.querySelector("ol.uptime");
  const d = c && c.querySelector("details.days");
  if (!bar || !d || d.querySelector("summary").getBoundingClientRect().height < 1) return false;
  d.open = true;
  const days = [...d.querySelectorAll("li")];
  return days.length === bar.children.length && days.every((li, i) => li.getBoundingClientRect().height > 1 && li.textContent.trim() === bar.children[i].textContent.trim());
})()`
		maintDistinct = `(() => {
  const items = ["li.maintenance", "li.maintenance-done", "li.maintenance-cancelled"].map(q => document.querySelector(q));
  if (items.some(e => !e)) return false;
  const lines = items.map(e => getComputedStyle(e).borderLeftStyle);
  const labels = items.map(e => { const st = e.querySelector(".state"); return st && st.getBoundingClientRect().height > 1 ? st.textContent.trim() : ""; });
  return new Set(lines).size === 3 && !lines.includes("none") && labels.every(l => l !== "") && new Set(labels).size === 3;
})()`
	)
	previous := statuspage.QuarterOf(now.AddDate(0, -3, 0), time.UTC)
	for _, l := range app.Languages {
		lang := l.Tag
		q := url.Values{"lang": {lang}}.Encode()
		pages := []struct {
			name, path string
			status     int
			ready      string   // an element only the expected page has
			checks     []string // JavaScript conditions the page must meet
		}{
			{"status", "/status?" + q, 200, "ol.uptime", []string{noScript, homeSeeded, maintDistinct, daysShown}},
			{"resolved incident", "/status/incidents/" + resolvedID + "?" + q, 200, "main h1",
				[]string{noScript, `document.querySelector(".rca-overdue") !== null`, timeline + " >= 5"}},
			{"open incident", "/status/incidents/" + openID + "?" + q, 200, "main h1",
				[]string{noScript, timeline + " >= 2"}},
			{"report", "/status/reports?" + q, 200, "figure.chart svg", []string{noScript, `document.querySelector("table tbody tr") !== null`}},
			{"report " + previous, "/status/reports?" + url.Values{"lang": {lang}, "quarter": {previous}}.Encode(), 200, "figure.chart svg", []string{noScript}},
			{"unknown incident", "/status/incidents/nope?" + q, 404, "main h1", nil},
		}
		for _, p := range pages {
			t.Run(lang+"/"+p.name, func(t *testing.T) {
				b.visit(t, n.issuer+p.path, p.status)
				b.do(t, "wait for "+p.ready, chromedp.WaitVisible(p.ready))
				for _, c := range p.checks {
					ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](c))
					if err != nil || !ok {
						t.Errorf("%s: %s does not hold (%v)", p.path, c, err)
					}
				}
				b.audit(t, lang, p.ready)
				b.helpLast(t)
			})
		}
	}
}

// seedStatus stores, through the node's own store, one incident of the
// passkey provider resolved more than 72 hours before now with no
// root-cause analysis (so it is overdue), one open incident of the store
// (degraded) and maintenance of the passkey provider starting tomorrow.
func seedStatus(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()

	start := now.Add(-100 * time.Hour).Truncate(time.Minute)
	resolved := &store.Incident{
		ID: resolvedID, Component: "passkey", Components: []string{"passkey"}, Severity: store.SeverityDown,
		StartedAt: start, OpenedAt: start.Add(time.Minute),
		Updates: []*store.IncidentUpdate{{Time: start.Add(time.Minute), Kind: store.UpdateOpened, State: store.HealthDegraded, Reason: "slow", Author: "varde"}},
	}
	if err := st.OpenIncident(ctx, resolved); err != nil {
		t.Fatalf("open passkey incident: %v", err)
	}
	for _, u := range []*store.IncidentUpdate{
		{Time: start.Add(4 * time.Minute), Kind: store.UpdateState, State: store.HealthDown, Reason: "probe_failures", Author: "varde"},
		{Time: start.Add(10 * time.Minute), Kind: store.UpdateOperator,
			Message: "Passkey logins fail for some people. Logins are sent to other providers meanwhile.", Author: "Operations on duty"},
		{Time: start.Add(38 * time.Minute), Kind: store.UpdateRecovered, State: store.HealthUp, Author: "varde"},
		{Time: start.Add(43 * time.Minute), Kind: store.UpdateResolved, State: store.HealthUp, Author: "varde"},
	} {
		u.IncidentID = resolvedID
		if err := st.AddIncidentUpdate(ctx, u); err != nil {
			t.Fatalf("passkey incident timeline: %v", err)
		}
	}
	resolve := func(in *store.Incident) {
		in.RecoveredAt, in.ResolvedAt = start.Add(38*time.Minute), start.Add(43*time.Minute)
		in.PeopleAffected, in.FailedAttempts, in.Rerouted, in.CountedAt = 1234, 2345, 1100, start.Add(43*time.Minute)
	}
	updateIncident(t, st, resolvedID, resolve)

	opened := now.Add(-20 * time.Minute).Truncate(time.Minute)
	open := &store.Incident{
		ID: openID, Component: "store", Components: []string{"store"}, Severity: store.SeverityDegraded,
		StartedAt: opened.Add(-2 * time.Minute), OpenedAt: opened,
		PeopleAffected: 87, FailedAttempts: 112, Rerouted: 0, CountedAt: opened.Add(5 * time.Minute),
		Updates: []*store.IncidentUpdate{{Time: opened, Kind: store.UpdateOpened, State: store.HealthDegraded, Reason: "slow", Author: "varde"}},
	}
	if err := st.OpenIncident(ctx, open); err != nil {
		t.Fatalf("open store incident: %v", err)
	}
	note := &store.IncidentUpdate{IncidentID: openID, Time: opened.Add(6 * time.Minute), Kind: store.UpdateOperator,
		Message: "Logins are slower than usual. We are moving the database to a new disk.", Author: "Operations on duty"}
	if err := st.AddIncidentUpdate(ctx, note); err != nil {
		t.Fatalf("store incident timeline: %v", err)
	}

	// Maintenance of passkey under way: the page says what people can
	// do meanwhile.
	err := st.CreateMaintenance(ctx, &store.Maintenance{
		ID: "a11y-passkey-now", Components: []string{"passkey"}, Start: now.Add(-10 * time.Minute), End: now.Add(2 * time.Hour),
		Title: "Passkey server update", CreatedAt: now.Add(-24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("maintenance under way: %v", err)
	}
	tomorrow := now.Truncate(time.Hour).Add(24 * time.Hour)
	err = st.CreateMaintenance(ctx, &store.Maintenance{
		ID: maintID, Components: []string{"passkey"}, Start: tomorrow, End: tomorrow.Add(2 * time.Hour),
		Title:     maintTitle,
		Message:   "Passkey logins may be slow for a few minutes. Other ways to log in work as usual.",
		CreatedAt: now,
	})
	if err != nil {
		t.Fatalf("announce maintenance: %v", err)
	}
	// Maintenance completed ten days ago, ended early.
	done := now.Truncate(time.Hour).Add(-10 * 24 * time.Hour)
	err = st.CreateMaintenance(ctx, &store.Maintenance{
		ID: "a11y-store-maintenance", Components: []string{"store"}, Start: done, End: done.Add(40 * time.Minute),
		AnnouncedEnd: done.Add(2 * time.Hour), Title: "Database upgrade", CreatedAt: done.Add(-24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("store completed maintenance: %v", err)
	}
	// Maintenance announced for next week and cancelled.
	off := now.Truncate(time.Hour).Add(7 * 24 * time.Hour)
	err = st.CreateMaintenance(ctx, &store.Maintenance{
		ID: "a11y-bankid-maintenance", Components: []string{"passkey"}, Start: off, End: off.Add(time.Hour),
		Title: "Certificate renewal", CreatedAt: now.Add(-48 * time.Hour), CancelledAt: now.Add(-time.Hour),
	})
	if err != nil {
		t.Fatalf("store cancelled maintenance: %v", err)
	}
}

// updateIncident applies change to the stored incident id, reading it
// again if the node's incident rules moved it in between (the node
// evaluates open incidents on its own).
func updateIncident(t *testing.T, st store.Store, id string, change func(*store.Incident)) {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		in, err := st.GetIncident(ctx, id)
		if err != nil {
			t.Fatalf("get incident %s: %v", id, err)
		}
		change(in)
		err = st.UpdateIncident(ctx, in)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("update incident %s: %v", id, err)
		}
	}
	t.Fatalf("update incident %s: %v five times in a row", id, store.ErrConflict)
}

// waitForSeeded waits until the page shows everything seeded: the node
// shares one computed summary for ten seconds, and it may have computed
// one when it started or while seedStatus was half way.
func waitForSeeded(t *testing.T, page string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		res, err := http.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		// The maintenance is seeded last.
		if strings.Contains(string(body), openID) && strings.Contains(string(body), maintTitle) {
			return
		}
	}
	t.Fatalf("%s never showed the seeded incidents", page)
}

// TestReportPeriodRefused: a period the report form cannot show (here an
// end date left out) comes back on the report page, not on a page of its
// own: what was typed is still in the fields, the message says what a
// period needs, is tied to the field at fault (aria-invalid,
// aria-describedby) and has the focus, and the title starts "Error:"
// (WCAG 3.3.1, 3.3.3, 3.3.7, 2.4.2), in every language, without script.
func TestReportPeriodRefused(t *testing.T) {
	requireBrowserTests(t)
	b := newBrowser(t, chromiumPath(t), axeSource(t))
	n := startNode(t)
	from := time.Now().UTC().AddDate(0, 0, -20).Format(time.DateOnly)
	for _, l := range app.Languages {
		t.Run(l.Tag, func(t *testing.T) {
			b.visit(t, n.issuer+"/status/reports?"+url.Values{"lang": {l.Tag}}.Encode(), 200)
			b.do(t, "wait for the form", chromedp.WaitVisible(`form.period button`))
			if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {
				const f = document.querySelector("form.period");
				f.elements.from.value = "`+from+`";
				f.elements.to.value = "";
				f.submit();
				return true;
			})()`)); err != nil {
				t.Fatalf("send the form: %v", err)
			}
			b.until(t, `new URLSearchParams(location.search).has("from") && document.readyState === "complete"`)
			got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(() => {
			  const f = document.querySelector("form.period");
			  if (!f) return "no report form on the page";
			  const e = document.getElementById("period-error");
			  if (!e || !e.textContent.trim()) return "no error message";
			  if (f.elements.from.value !== "`+from+`") return "from holds " + f.elements.from.value;
			  const to = f.elements.to;
			  if (to.getAttribute("aria-invalid") !== "true") return "the end date is not marked invalid";
			  if (!(to.getAttribute("aria-describedby") || "").split(" ").includes("period-error")) return "the end date is not described by the error";
			  if (f.elements.from.getAttribute("aria-invalid")) return "the start date, which was right, is marked invalid";
			  if (document.activeElement !== e) return "the focus is on " + document.activeElement.outerHTML.slice(0, 60);
			  return "";
			})()`))
			if err != nil || got != "" {
				t.Errorf("the refused period: %s (%v)", got, err)
			}
			b.errorTitle(t, l.Tag, true)
			b.audit(t, l.Tag, "#period-error")
			if ok, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.scripts.length === 0`)); !ok {
				t.Error("the status page carries a script")
			}
		})
	}
}
