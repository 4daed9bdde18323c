package status_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/store"
)

// TestRCAMetrics: a node's metrics say how many root-cause analyses on
// the page are overdue, and when the next one owed falls due, so an
// operator can be alerted before the deadline and once it has passed;
// a published analysis, and an incident still going on, owe none.
func TestRCAMetrics(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	s := newHarness(t, db, clk, "n1").svc
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.RCACollector())
	metrics := func() string {
		t.Helper()
		clk.Add(time.Minute) // past the summary the node shares
		var b strings.Builder
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				fmt.Fprintf(&b, "%s %g\n", mf.GetName(), m.GetGauge().GetValue())
			}
		}
		return b.String()
	}
	if got, want := metrics(), "varde_status_rcas_overdue 0\n"; got != want {
		t.Errorf("with no incidents:\n%s\nwant\n%s", got, want)
	}

	put := func(id string, resolved time.Time, rca bool) {
		t.Helper()
		in := &store.Incident{ID: id, Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown,
			StartedAt: resolved.Add(-time.Hour), OpenedAt: resolved.Add(-59 * time.Minute)}
		if err := db.OpenIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		if resolved.IsZero() {
			return
		}
		in.RecoveredAt, in.ResolvedAt = resolved.Add(-5*time.Minute), resolved
		if rca {
			in.RCA, in.RCAPublishedAt = "A certificate expired.", resolved.Add(time.Hour)
		}
		if err := db.UpdateIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	put("late-1", now.Add(-100*time.Hour), false)
	put("late-2", now.Add(-80*time.Hour), false)
	put("done", now.Add(-90*time.Hour), true)
	put("owed-soon", now.Add(-60*time.Hour), false) // due in 12 h
	put("owed-later", now.Add(-10*time.Hour), false)
	soon := now.Add(12 * time.Hour).Unix()
	got := metrics()
	for _, want := range []string{"varde_status_rcas_overdue 2\n", fmt.Sprintf("varde_status_rca_next_due_timestamp_seconds %g\n", float64(soon))} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q:\n%s", want, got)
		}
	}
}
