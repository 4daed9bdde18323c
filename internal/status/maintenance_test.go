package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestAnnounceChecksTheWindow: a window may start up to AnnounceGrace in
// the past, not more, and names only components the node knows.
func TestAnnounceChecksTheWindow(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	now := clk.Now()
	tests := []struct {
		name       string
		components []string
		start      time.Time
		want       error
	}{
		{"ahead", []string{"bankid"}, now.Add(time.Hour), nil},
		{"from now, typed a little late", []string{"bankid", "store"}, now.Add(-30 * time.Second), nil},
		{"another node", []string{"node:n2"}, now, nil},
		{"in the past", []string{"bankid"}, now.Add(-2 * time.Minute), status.ErrPastWindow},
		{"unknown component", []string{"bankid", "bnakid"}, now, status.ErrUnknownComponent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.Announce(ctx, tt.components, tt.start, tt.start.Add(time.Hour), "Upgrade", "")
			if !errors.Is(err, tt.want) {
				t.Errorf("Announce: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestLateMaintenanceExcusesNothing: bankid is down for 30 minutes. A
// window over the outage cannot be announced afterwards, and one stored
// afterwards anyway (by an older version, or by hand) leaves the
// report's down time as measured.
func TestLateMaintenanceExcusesNothing(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: from.Add(10 * time.Hour)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	h.fail.Store(true)
	began := clk.Now()
	h.rounds(360)
	h.fail.Store(false)
	ended := clk.Now()
	h.rounds(120)
	if _, err := h.svc.Announce(ctx, []string{"bankid"}, began, ended, "Planned, honestly", ""); !errors.Is(err, status.ErrPastWindow) {
		t.Fatalf("announcing a window over a past outage: %v, want ErrPastWindow", err)
	}
	late := &store.Maintenance{ID: "late", Components: []string{"bankid"}, Start: began, End: ended, Title: "Planned, honestly", CreatedAt: clk.Now()}
	if err := h.db.CreateMaintenance(ctx, late); err != nil {
		t.Fatal(err)
	}
	reportsDown(t, h, from, from.Add(24*time.Hour), "bankid", ended.Sub(began))
}

// TestMaintenanceAnnouncedDuringOutage: bankid goes down, and a window
// starting now is announced before the incident's OpenAfter has passed.
// The incident opens all the same, and the report counts the whole
// outage, the part in the window included.
func TestMaintenanceAnnouncedDuringOutage(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: from.Add(10 * time.Hour)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.svc.Config.OpenAfter = 2 * time.Minute
	h.round()
	h.fail.Store(true)
	began := clk.Now()
	h.rounds(6)
	if _, err := h.svc.Announce(ctx, []string{"bankid"}, clk.Now(), clk.Now().Add(time.Hour), "Emergency fix", ""); err != nil {
		t.Fatal(err)
	}
	h.rounds(40)
	if n := len(h.open()); n != 1 {
		t.Fatalf("%d incidents open for an outage that began before its window was announced, want 1", n)
	}
	h.rounds(200)
	h.fail.Store(false)
	ended := clk.Now()
	h.rounds(120)
	reportsDown(t, h, from, from.Add(24*time.Hour), "bankid", ended.Sub(began))
}

// rounds runs n rounds.
func (h *harness) rounds(n int) {
	h.t.Helper()
	for range n {
		h.round()
	}
}

// TestOperatorTextMustBeText: a note, an RCA, a maintenance title or
// message, or an author holding a NUL or bytes that are not UTF-8 is
// refused with ErrNotText before the store sees it, so SQLite and
// PostgreSQL answer alike and nothing is kept.
func TestOperatorTextMustBeText(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	start := clk.Now().Add(time.Hour)
	for _, bad := range []string{"fixed\x00", "fixed \xff"} {
		if _, err := h.svc.AddNote(ctx, "x1", "ops", bad); !errors.Is(err, status.ErrNotText) {
			t.Errorf("note %q: %v, want ErrNotText", bad, err)
		}
		if _, err := h.svc.AddNote(ctx, "x1", bad, "A note."); !errors.Is(err, status.ErrNotText) {
			t.Errorf("author %q: %v, want ErrNotText", bad, err)
		}
		if err := h.svc.PublishRCA(ctx, "x1", "ops", bad); !errors.Is(err, status.ErrNotText) {
			t.Errorf("RCA %q: %v, want ErrNotText", bad, err)
		}
		if _, err := h.svc.Announce(ctx, []string{"bankid"}, start, start.Add(time.Hour), bad, ""); !errors.Is(err, status.ErrNotText) {
			t.Errorf("title %q: %v, want ErrNotText", bad, err)
		}
		if _, err := h.svc.Announce(ctx, []string{"bankid"}, start, start.Add(time.Hour), "Upgrade", bad); !errors.Is(err, status.ErrNotText) {
			t.Errorf("message %q: %v, want ErrNotText", bad, err)
		}
	}
	ms, err := h.db.ListMaintenance(ctx, time.Time{}, start.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Errorf("%d maintenance windows kept, want none", len(ms))
	}
}

// TestAnnounceRefusesLongWindow: a window lasts at most MaxWindow, so an
// end typed a year off cannot silence a component's outages for a year.
func TestAnnounceRefusesLongWindow(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	start := clk.Now().Add(time.Hour)
	tests := []struct {
		name string
		end  time.Time
		want error
	}{
		{"a night's work", start.Add(6 * time.Hour), nil},
		{"the longest", start.Add(status.MaxWindow), nil},
		{"a minute more", start.Add(status.MaxWindow + time.Minute), status.ErrLongWindow},
		{"a year off", start.AddDate(1, 0, 0), status.ErrLongWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.Announce(ctx, []string{"bankid"}, start, tt.end, "Upgrade", "")
			if !errors.Is(err, tt.want) {
				t.Errorf("Announce: %v, want %v", err, tt.want)
			}
		})
	}
	ms, err := h.db.ListMaintenance(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Errorf("%d windows stored, want the 2 accepted", len(ms))
	}
}

// TestWindowsAnnouncedDuringOutageKeepAvailabilityInRange: bankid goes
// down, and two overlapping windows over most of the time since are
// announced while it is. They excuse none of the outage, so they leave
// none of it out of the measured span either: the availability is the
// share of that span not down, not a negative figure over the little
// time outside the windows.
func TestWindowsAnnouncedDuringOutageKeepAvailabilityInRange(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: from.Add(10 * time.Hour)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	h.rounds(60)
	h.fail.Store(true)
	h.rounds(6)
	for i, d := range []time.Duration{10 * time.Minute, 15 * time.Minute} {
		if _, err := h.svc.Announce(ctx, []string{"bankid"}, clk.Now().Add(time.Duration(i)*time.Minute), clk.Now().Add(d), "Emergency fix", ""); err != nil {
			t.Fatal(err)
		}
	}
	h.rounds(180)
	h.fail.Store(false)
	h.rounds(12)
	rep, err := h.svc.Report(ctx, from, from.Add(24*time.Hour), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Components {
		if c.Component != "bankid" {
			continue
		}
		if c.AvailabilityPercent == nil {
			t.Fatal("bankid has no availability")
		}
		span := rep.MeasuredTo.Sub(c.MeasuredFrom).Minutes()
		want := 100 * (1 - c.DowntimeMinutes/span)
		if got := *c.AvailabilityPercent; got < 0 || got > 100 || got < want-0.1 || got > want+0.1 {
			t.Errorf("bankid availability %v %%, want %.3f %% (%.2f min down of %.2f measured)", got, want, c.DowntimeMinutes, span)
		}
		return
	}
	t.Error("bankid is not in the report")
}

// TestCancelMaintenanceOnlyAhead: a window is cancelled only before it
// begins. From its start on, and after its end, the cancel is refused
// with ErrWindowBegun naming the window, and the window stays as it was,
// so downtime it excused stays excused. An unknown ID is ErrNotFound.
func TestCancelMaintenanceOnlyAhead(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	start, end := base.Add(time.Hour), base.Add(2*time.Hour)
	tests := []struct {
		name string
		at   time.Time
		want error
		says string
	}{
		{"a second before it begins", start.Add(-time.Second), nil, ""},
		{"as it begins", start, status.ErrWindowBegun, "under way; it ends by itself at 2026-11-02T12:00:00Z"},
		{"a second before it ends", end.Add(-time.Second), status.ErrWindowBegun, "under way"},
		{"as it ends", end, status.ErrWindowBegun, "ended at 2026-11-02T12:00:00Z"},
		{"weeks later", end.Add(30 * 24 * time.Hour), status.ErrWindowBegun, "stays excused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: base}
			h := newHarness(t, openDB(t), clk, "n1")
			m, err := h.svc.Announce(ctx, []string{"bankid"}, start, end, "Upgrade", "")
			if err != nil {
				t.Fatal(err)
			}
			clk.Add(tt.at.Sub(base))
			err = h.svc.CancelMaintenance(ctx, m.ID)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CancelMaintenance at %s: %v, want %v", tt.at.Format(time.RFC3339), err, tt.want)
			}
			if err != nil && (!strings.Contains(err.Error(), m.ID) || !strings.Contains(err.Error(), tt.says)) {
				t.Errorf("CancelMaintenance: %q, want it to name %s and say %q", err, m.ID, tt.says)
			}
			ms, err := h.db.ListMaintenance(ctx, time.Time{}, time.Time{})
			if err != nil || len(ms) != 1 {
				t.Fatalf("ListMaintenance: %v, %d windows", err, len(ms))
			}
			if cancelled := !ms[0].CancelledAt.IsZero(); cancelled != (tt.want == nil) {
				t.Errorf("window cancelled: %v, want %v", cancelled, tt.want == nil)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		h := newHarness(t, openDB(t), &clock{t: base}, "n1")
		if err := h.svc.CancelMaintenance(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CancelMaintenance of an unknown ID: %v, want ErrNotFound", err)
		}
	})
}

// listThenStore runs then after each ListMaintenance and
// GetMaintenance: time that passes between a read and the write after it.
type listThenStore struct {
	*sqlstore.DB
	then func()
}

func (s listThenStore) ListMaintenance(ctx context.Context, since, until time.Time) ([]*store.Maintenance, error) {
	ms, err := s.DB.ListMaintenance(ctx, since, until)
	s.then()
	return ms, err
}

func (s listThenStore) GetMaintenance(ctx context.Context, id string) (*store.Maintenance, error) {
	m, err := s.DB.GetMaintenance(ctx, id)
	s.then()
	return m, err
}

// oneWindowStore refuses to list maintenance windows: cancelling and
// ending one reads only that window.
type oneWindowStore struct{ *sqlstore.DB }

func (oneWindowStore) ListMaintenance(context.Context, time.Time, time.Time) ([]*store.Maintenance, error) {
	return nil, errors.New("every maintenance window listed")
}

// TestCancelAndEndReadOneWindow: cancelling or ending a window, and
// refusing to, reads that window alone, not every window ever stored.
func TestCancelAndEndReadOneWindow(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	h := newHarness(t, openDB(t), clk, "n1")
	ahead, err := h.svc.Announce(ctx, []string{"bankid"}, base.Add(time.Hour), base.Add(2*time.Hour), "Upgrade", "")
	if err != nil {
		t.Fatal(err)
	}
	now, err := h.svc.Announce(ctx, []string{"bankid"}, base, base.Add(2*time.Hour), "Rollover", "")
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Store = oneWindowStore{h.db}
	clk.Add(time.Minute)
	if err := h.svc.CancelMaintenance(ctx, now.ID); !errors.Is(err, status.ErrWindowBegun) {
		t.Errorf("CancelMaintenance under way: %v, want ErrWindowBegun", err)
	}
	if _, err := h.svc.EndMaintenance(ctx, ahead.ID); !errors.Is(err, status.ErrNotUnderWay) {
		t.Errorf("EndMaintenance ahead: %v, want ErrNotUnderWay", err)
	}
	if err := h.svc.CancelMaintenance(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CancelMaintenance unknown: %v, want ErrNotFound", err)
	}
	if _, err := h.svc.EndMaintenance(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EndMaintenance unknown: %v, want ErrNotFound", err)
	}
	if m, err := h.svc.EndMaintenance(ctx, now.ID); err != nil || !m.End.Equal(clk.Now()) {
		t.Errorf("EndMaintenance under way: %+v, %v, want it ended at %s", m, err, clk.Now().Format(time.RFC3339))
	}
	if err := h.svc.CancelMaintenance(ctx, ahead.ID); err != nil {
		t.Errorf("CancelMaintenance ahead: %v", err)
	}
}

// TestCancelMaintenanceBegunMeanwhile: a window that begins between the
// cancel's check and its write is not cancelled.
func TestCancelMaintenanceBegunMeanwhile(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	h := newHarness(t, openDB(t), clk, "n1")
	m, err := h.svc.Announce(ctx, []string{"bankid"}, base.Add(time.Second), base.Add(time.Hour), "Upgrade", "")
	if err != nil {
		t.Fatal(err)
	}
	h.svc.Store = listThenStore{DB: h.db, then: func() { clk.Add(2 * time.Second) }}
	err = h.svc.CancelMaintenance(ctx, m.ID)
	if !errors.Is(err, status.ErrWindowBegun) || !strings.Contains(err.Error(), "under way") {
		t.Fatalf("CancelMaintenance of a window begun meanwhile: %v, want ErrWindowBegun saying it is under way", err)
	}
	ms, err := h.db.ListMaintenance(ctx, time.Time{}, time.Time{})
	if err != nil || len(ms) != 1 {
		t.Fatalf("ListMaintenance: %v, %d windows", err, len(ms))
	}
	if !ms[0].CancelledAt.IsZero() {
		t.Errorf("window begun meanwhile cancelled at %s", ms[0].CancelledAt.Format(time.RFC3339))
	}
}

// TestEndMaintenanceEarly: a window under way ends at the moment it is
// ended; the page no longer shows it, nor its component in maintenance.
// A window not begun, ended
// or cancelled is refused with ErrNotUnderWay saying why and what to do.
func TestEndMaintenanceEarly(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	start, end := base.Add(time.Hour), base.Add(3*time.Hour)
	clk := &clock{t: base}
	h := newHarness(t, openDB(t), clk, "n1")
	m, err := h.svc.Announce(ctx, []string{"bankid"}, start, end, "Upgrade", "")
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := h.svc.Announce(ctx, []string{"bankid"}, start, end, "Withdrawn", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.CancelMaintenance(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	refused := func(id, says string) {
		t.Helper()
		_, err := h.svc.EndMaintenance(ctx, id)
		if !errors.Is(err, status.ErrNotUnderWay) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), says) {
			t.Errorf("EndMaintenance(%s) at %s: %v, want ErrNotUnderWay naming it and saying %q", id, clk.Now().Format(time.RFC3339), err, says)
		}
	}
	refused(m.ID, "begins at 2026-11-02T11:00:00Z; cancel it instead")
	clk.Add(start.Sub(base))
	refused(m.ID, "cancel it instead") // it begins at this instant: nothing to end
	clk.Add(time.Hour)
	refused(cancelled.ID, "was cancelled at 2026-11-02T10:00:00Z")
	if _, err := h.svc.EndMaintenance(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EndMaintenance of an unknown ID: %v, want ErrNotFound", err)
	}

	h.round()
	sum, err := h.svc.Summary(ctx)
	if err != nil || len(sum.Maintenance) != 1 || sum.Maintenance[0].Status != "in_progress" {
		t.Fatalf("before the end: %v, %+v, want the window in progress", err, sum)
	}
	endedAt := clk.Now()
	got, err := h.svc.EndMaintenance(ctx, m.ID)
	if err != nil {
		t.Fatalf("EndMaintenance under way: %v", err)
	}
	if !got.End.Equal(endedAt) || !got.Start.Equal(start) {
		t.Errorf("ended window runs %s to %s, want %s to %s", got.Start, got.End, start, endedAt)
	}
	refused(m.ID, "ended at "+endedAt.Format(time.RFC3339))
	clk.Add(time.Minute) // past the page's cache
	sum, err = h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Maintenance) != 0 {
		t.Errorf("after the end the page still shows %+v", sum.Maintenance)
	}
	for _, c := range sum.Components {
		if c.ID == "bankid" && c.State == status.InMaintenance {
			t.Error("bankid is still shown in maintenance after the window ended")
		}
	}
	ms, err := h.db.ListMaintenance(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ms {
		if w.ID == m.ID && !w.End.Equal(endedAt) {
			t.Errorf("stored end %s, want %s", w.End, endedAt)
		}
	}
}

// TestCancelMaintenanceAgain: cancelling a cancelled window again once
// its times have come is no error and keeps the first cancellation; it
// is not refused as a window under way or one whose downtime stays
// excused, since it excused none.
func TestCancelMaintenanceAgain(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	h := newHarness(t, openDB(t), clk, "n1")
	m, err := h.svc.Announce(ctx, []string{"bankid"}, base.Add(time.Hour), base.Add(2*time.Hour), "Upgrade", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.CancelMaintenance(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{90 * time.Minute, 2 * time.Hour} {
		clk.Add(d)
		if err := h.svc.CancelMaintenance(ctx, m.ID); err != nil {
			t.Errorf("cancelling the cancelled window again at %s: %v", clk.Now().Format(time.RFC3339), err)
		}
	}
	ms, err := h.db.ListMaintenance(ctx, time.Time{}, time.Time{})
	if err != nil || len(ms) != 1 || !ms[0].CancelledAt.Equal(base) {
		t.Errorf("ListMaintenance: %v, %+v, want it cancelled at %s", err, ms, base)
	}
}

// TestMaintenanceShowsAtOnce: a window announced, cancelled or ended
// through the node's service shows on its page at once, not when the
// page kept from before runs out (Config.CacheFor).
func TestMaintenanceShowsAtOnce(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	clk := &clock{t: base}
	h := newHarness(t, openDB(t), clk, "n1")
	h.svc.Config.CacheFor = time.Hour
	h.round()
	shown := func(step string) []status.Maintenance {
		t.Helper()
		sum, err := h.svc.Summary(ctx)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return sum.Maintenance
	}
	if ms := shown("before"); len(ms) != 0 {
		t.Fatalf("page before any announcement shows %+v", ms)
	}
	ahead, err := h.svc.Announce(ctx, []string{"bankid"}, base.Add(time.Hour), base.Add(2*time.Hour), "Upgrade", "")
	if err != nil {
		t.Fatal(err)
	}
	if ms := shown("announced"); len(ms) != 1 || ms[0].ID != ahead.ID {
		t.Errorf("page right after the announcement shows %+v, want %s", ms, ahead.ID)
	}
	if err := h.svc.CancelMaintenance(ctx, ahead.ID); err != nil {
		t.Fatal(err)
	}
	if ms := shown("cancelled"); len(ms) != 0 {
		t.Errorf("page right after the cancellation shows %+v, want nothing", ms)
	}
	now, err := h.svc.Announce(ctx, []string{"bankid"}, base, base.Add(2*time.Hour), "Certificate rollover", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if ms := shown("under way"); len(ms) != 1 || ms[0].Status != "in_progress" {
		t.Errorf("page with the window under way shows %+v, want it in progress", ms)
	}
	if _, err := h.svc.EndMaintenance(ctx, now.ID); err != nil {
		t.Fatal(err)
	}
	if ms := shown("ended"); len(ms) != 0 {
		t.Errorf("page right after the window was ended shows %+v, want nothing", ms)
	}
}

// TestSummaryListsCompletedMaintenance: windows completed in the last 90
// days stay on the record (RecentMaintenance), the latest end first, with
// their start, the end they had (the moment one ended early was ended,
// and the end it was announced with) and the components they covered; a
// cancelled window, one still ahead or under way, and one that ended
// more than 90 days ago are not there; a window cancelled is listed
// apart (CancelledMaintenance, cancelled_maintenance in the API).
func TestSummaryListsCompletedMaintenance(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clk := &clock{t: now}
	h := newHarness(t, openDB(t), clk, "n1")
	day := 24 * time.Hour
	ws := []*store.Maintenance{
		{ID: "aged", Components: []string{"bankid"}, Start: now.Add(-91 * day), End: now.Add(-91*day + time.Hour), Title: "Aged", CreatedAt: now.Add(-92 * day)},
		{ID: "older", Components: []string{"bankid", "store"}, Start: now.Add(-30 * day), End: now.Add(-30*day + 2*time.Hour), Title: "Older", CreatedAt: now.Add(-31 * day)},
		{ID: "early", Components: []string{"store"}, Start: now.Add(-2 * day), End: now.Add(-2*day + 30*time.Minute), AnnouncedEnd: now.Add(-2*day + 2*time.Hour), Title: "Early", CreatedAt: now.Add(-3 * day)},
		{ID: "withdrawn", Components: []string{"bankid"}, Start: now.Add(-day), End: now.Add(-day + time.Hour), Title: "Withdrawn", CreatedAt: now.Add(-3 * day), CancelledAt: now.Add(-2 * day)},
		{ID: "now", Components: []string{"bankid"}, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Title: "Now", CreatedAt: now.Add(-day)},
		{ID: "ahead", Components: []string{"bankid"}, Start: now.Add(day), End: now.Add(day + time.Hour), Title: "Ahead", CreatedAt: now.Add(-day)},
	}
	for _, m := range ws {
		if err := h.db.CreateMaintenance(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := h.svc.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []status.Maintenance{
		{ID: "early", Components: []string{"store"}, Start: ws[2].Start, End: ws[2].End, AnnouncedEnd: ws[2].AnnouncedEnd, Title: "Early", Status: "completed", AnnouncedAt: ws[2].CreatedAt},
		{ID: "older", Components: []string{"bankid", "store"}, Start: ws[1].Start, End: ws[1].End, Title: "Older", Status: "completed", AnnouncedAt: ws[1].CreatedAt},
	}
	if !reflect.DeepEqual(sum.RecentMaintenance, want) {
		t.Errorf("RecentMaintenance =\n%+v\nwant\n%+v", sum.RecentMaintenance, want)
	}
	// The feed tells of the withdrawn window, and of the one that left.
	cancelled := []status.Maintenance{
		{ID: "withdrawn", Components: []string{"bankid"}, Start: ws[3].Start, End: ws[3].End, Title: "Withdrawn", Status: "cancelled", AnnouncedAt: ws[3].CreatedAt, CancelledAt: ws[3].CancelledAt},
	}
	if !reflect.DeepEqual(sum.CancelledMaintenance, cancelled) {
		t.Errorf("CancelledMaintenance =\n%+v\nwant\n%+v", sum.CancelledMaintenance, cancelled)
	}
	// So do the page and the API.
	js, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"cancelled_maintenance":[{"id":"withdrawn",`) || !strings.Contains(string(js), `"cancelled_at":"`) {
		t.Errorf("summary JSON lacks the cancelled window: %s", js)
	}
	if left := ws[0].End.Add(status.HistoryDays * day); !sum.AgedOut.Equal(left) {
		t.Errorf("AgedOut = %v, want %v: when the aged window left", sum.AgedOut, left)
	}
	var current []string
	for _, m := range sum.Maintenance {
		current = append(current, m.ID)
	}
	if !reflect.DeepEqual(current, []string{"now", "ahead"}) {
		t.Errorf("Maintenance = %v, want [now ahead]", current)
	}
}

// TestReportListsItsMaintenance: a quarter's report lists the windows
// behind its maintenance minutes: one in the quarter, one begun before
// it, one ended early, one announced after its start (from then); not a
// cancelled one, one in another quarter, or one announced only after it
// ended.
func TestReportListsItsMaintenance(t *testing.T) {
	ctx := context.Background()
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	h.round()
	hr := time.Hour
	d := func(month, day, hour int) time.Time {
		return time.Date(2026, time.Month(month), day, hour, 0, 0, 0, time.UTC)
	}
	ws := []*store.Maintenance{
		{ID: "across", Components: []string{"store"}, Start: d(9, 30, 22), End: d(10, 1, 2), Title: "Across the start", CreatedAt: d(9, 20, 9)},
		{ID: "inside", Components: []string{"bankid"}, Start: d(11, 3, 2), End: d(11, 3, 4), Title: "Inside", CreatedAt: d(11, 1, 9)},
		{ID: "early", Components: []string{"bankid"}, Start: d(11, 10, 2), End: d(11, 10, 3), AnnouncedEnd: d(11, 10, 5), Title: "Ended early", CreatedAt: d(11, 1, 9)},
		{ID: "late", Components: []string{"store"}, Start: d(12, 1, 2), End: d(12, 1, 6), Title: "Announced late", CreatedAt: d(12, 1, 3)},
		{ID: "cancelled", Components: []string{"bankid"}, Start: d(12, 5, 2), End: d(12, 5, 4), Title: "Cancelled", CreatedAt: d(12, 1, 9), CancelledAt: d(12, 2, 9)},
		{ID: "after", Components: []string{"bankid"}, Start: d(12, 10, 2), End: d(12, 10, 4), Title: "Announced after", CreatedAt: d(12, 10, 5)},
		{ID: "before", Components: []string{"bankid"}, Start: d(9, 3, 2), End: d(9, 3, 4), Title: "Last quarter", CreatedAt: d(9, 1, 9)},
	}
	for _, m := range ws {
		if err := h.db.CreateMaintenance(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := h.svc.Report(ctx, from, to, "2026-Q4")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range rep.Maintenance {
		got = append(got, m.ID)
		if m.Status != "completed" || m.AnnouncedAt.IsZero() {
			t.Errorf("window %s: status %q, announced %v", m.ID, m.Status, m.AnnouncedAt)
		}
	}
	if want := []string{"across", "inside", "early", "late"}; !reflect.DeepEqual(got, want) {
		t.Errorf("report lists windows %v, want %v", got, want)
	}
	// 2 h of the window across the start, 2 + 1 in November, 3 from the
	// late announcement: the minutes the listed windows account for.
	if want := (2*hr + 2*hr + hr + 3*hr).Minutes(); rep.Total.MaintenanceMinutes != want {
		t.Errorf("maintenance minutes %v, want %v", rep.Total.MaintenanceMinutes, want)
	}
}

// TestUnknownComponentNamesTheKnownOnes: a window for a component the
// node does not know is refused with the components it does know, so
// the operator can type the right one.
func TestUnknownComponentNamesTheKnownOnes(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)}
	h := newHarness(t, openDB(t), clk, "n1")
	_, err := h.svc.Announce(context.Background(), []string{"bnakid"}, clk.Now(), clk.Now().Add(time.Hour), "Upgrade", "")
	if !errors.Is(err, status.ErrUnknownComponent) {
		t.Fatalf("Announce: %v, want %v", err, status.ErrUnknownComponent)
	}
	if want := `no such component: "bnakid" (known: bankid, store; a node as node:<name>)`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
