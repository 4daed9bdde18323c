package status_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// rcaNode is a node whose RCA metrics are registered, at noon on 20
// November 2026.
func rcaNode(t *testing.T) (*sqlstore.DB, *clock, *status.Service, *prometheus.Registry) {
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	s := newHarness(t, db, clk, "n1").svc
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.RCACollector())
	return db, clk, s, reg
}

// TestRCAMetrics: a node's metrics say how many root-cause analyses on
// the page are overdue, and when the next one owed falls due, so an
// operator can be alerted before the deadline and once it has passed;
// a published analysis, and an incident still going on, owe none.
func TestRCAMetrics(t *testing.T) {
	ctx := context.Background()
	db, clk, _, reg := rcaNode(t)
	now := clk.Now()
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

// TestOverdueRCAStaysUntilPublished: a root-cause analysis owed stays on
// the page, in its API and in the overdue metric however long ago its
// incident resolved, until it is published; one published leaves with
// the 90 days as before.
func TestOverdueRCAStaysUntilPublished(t *testing.T) {
	ctx := context.Background()
	db, clk, s, reg := rcaNode(t)
	now := clk.Now()
	for _, id := range []string{"owed", "written"} {
		resolved := now.AddDate(0, 0, -200)
		in := &store.Incident{ID: id, Component: "bankid", Components: []string{"bankid"}, Severity: store.SeverityDown,
			StartedAt: resolved.Add(-time.Hour), OpenedAt: resolved.Add(-59 * time.Minute)}
		if err := db.OpenIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
		in.RecoveredAt, in.ResolvedAt = resolved.Add(-5*time.Minute), resolved
		if id == "written" {
			in.RCA, in.RCAPublishedAt = "A certificate expired.", resolved.Add(time.Hour)
		}
		if err := db.UpdateIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := s.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Recent) != 1 || sum.Recent[0].ID != "owed" || !sum.Recent[0].RCAOverdue {
		t.Errorf("recent incidents %+v, want the one whose RCA is overdue", sum.Recent)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 || mfs[0].GetName() != "varde_status_rcas_overdue" || mfs[0].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Errorf("metrics %v, want varde_status_rcas_overdue 1", mfs)
	}

	if err := s.PublishRCA(ctx, "owed", "ops", "A certificate expired."); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if sum, err = s.Summary(ctx); err != nil || len(sum.Recent) != 0 {
		t.Errorf("after publication: recent %+v (%v), want none", sum.Recent, err)
	}
}
