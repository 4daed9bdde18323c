package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// incident returns an open incident of component that started at start,
// with one automatic "opened" entry.
func incident(id, component string, start time.Time, components ...string) *store.Incident {
	return &store.Incident{
		ID: id, Component: component, Components: components, Severity: store.SeverityDown,
		StartedAt: start, OpenedAt: start.Add(time.Minute),
		Updates: []*store.IncidentUpdate{{
			Time: start.Add(time.Minute), Kind: store.UpdateOpened, State: store.HealthDown,
			Reason: "probe_failures", Author: "varde",
		}},
	}
}

func testIncidents(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)

	get := func(t *testing.T, id string) *store.Incident {
		t.Helper()
		got, err := s.GetIncident(ctx, id)
		wantErr(t, "GetIncident", err, nil)
		return got
	}

	t.Run("not found", func(t *testing.T) {
		_, err := s.GetIncident(ctx, "nobody")
		wantErr(t, "GetIncident unknown", err, store.ErrNotFound)
		wantErr(t, "UpdateIncident unknown", s.UpdateIncident(ctx, &store.Incident{ID: "nobody", Version: 1}), store.ErrNotFound)
		u := &store.IncidentUpdate{IncidentID: "nobody", Time: now, Kind: store.UpdateOperator, Message: "hello"}
		wantErr(t, "AddIncidentUpdate unknown", s.AddIncidentUpdate(ctx, u), store.ErrNotFound)
		got, err := s.ListIncidents(ctx, store.IncidentQuery{})
		wantErr(t, "ListIncidents", err, nil)
		if len(got) != 0 {
			t.Errorf("ListIncidents on an empty store = %d incidents", len(got))
		}
	})

	full := &store.Incident{
		ID: "inc-full", Component: "bankid", Components: []string{"bankid", "passkey", "«æøå»"},
		Severity:  store.SeverityDegraded,
		StartedAt: now.In(z.la), OpenedAt: now.Add(3 * time.Minute).In(z.tokyo), RecoveredAt: now.Add(time.Hour),
		PeopleAffected: 1234, FailedAttempts: 5678, Rerouted: 91011, CountedAt: now.Add(2 * time.Hour).In(z.la),
		RCA: "A certificate expired.\nIt was renewed.", RCAPublishedAt: now.Add(3 * time.Hour).In(z.tokyo),
		Updates: []*store.IncidentUpdate{
			{Time: now.Add(3 * time.Minute).In(z.tokyo), Kind: store.UpdateOpened, State: store.HealthDegraded,
				Reason: "slow", Author: "varde"},
			{Time: now.Add(4 * time.Minute).In(z.la), Kind: store.UpdateOperator, Message: "We are looking into it «æøå».",
				Author: "ops@example"},
		},
	}

	t.Run("open and get", func(t *testing.T) {
		wantErr(t, "OpenIncident", s.OpenIncident(ctx, full), nil)
		if full.Version != 1 {
			t.Errorf("Version after OpenIncident = %d, want 1", full.Version)
		}
		for i, u := range full.Updates {
			if u.Seq != i+1 || u.IncidentID != full.ID {
				t.Errorf("update %d: IncidentID, Seq = %q, %d, want %q, %d", i, u.IncidentID, u.Seq, full.ID, i+1)
			}
		}
		same(t, "incident", full, get(t, full.ID))

		bare := &store.Incident{ID: "inc-bare", Component: "minid"}
		wantErr(t, "OpenIncident bare", s.OpenIncident(ctx, bare), nil)
		same(t, "bare incident", &store.Incident{ID: "inc-bare", Component: "minid", Version: 1}, get(t, bare.ID))
	})

	t.Run("open conflicts", func(t *testing.T) {
		second := incident("inc-second", "bankid", now.Add(time.Hour))
		wantErr(t, "OpenIncident while one is open", s.OpenIncident(ctx, second), store.ErrConflict)
		if second.Version != 0 {
			t.Errorf("failed OpenIncident set Version %d", second.Version)
		}
		_, err := s.GetIncident(ctx, second.ID)
		wantErr(t, "GetIncident of the refused incident", err, store.ErrNotFound)

		sameID := incident(full.ID, "other", now)
		wantErr(t, "OpenIncident with a taken ID", s.OpenIncident(ctx, sameID), store.ErrConflict)
		same(t, "incident after refused opens", full, get(t, full.ID))
		if got, err := s.ListIncidents(ctx, store.IncidentQuery{Component: "other"}); err != nil || len(got) != 0 {
			t.Errorf("ListIncidents(other) = %d, %v; want none", len(got), err)
		}

		resolved := incident("inc-resolved", "resolved-only", now)
		resolved.ResolvedAt = now.Add(time.Hour)
		if err := s.OpenIncident(ctx, resolved); err == nil {
			t.Error("OpenIncident of a resolved incident succeeded")
		}
	})

	t.Run("update is compare-and-swap", func(t *testing.T) {
		cur := get(t, full.ID)
		upd := *cur
		upd.Components = []string{"bankid"}
		upd.Severity = store.SeverityDown
		upd.RecoveredAt = now.Add(90 * time.Minute).In(z.tokyo)
		upd.ResolvedAt = now.Add(100 * time.Minute).In(z.la)
		upd.PeopleAffected, upd.FailedAttempts, upd.Rerouted = 1, 2, 3
		upd.CountedAt = now.Add(101 * time.Minute)
		upd.RCA, upd.RCAPublishedAt = "", time.Time{}
		// These never change, whatever the caller sends.
		upd.Component, upd.StartedAt, upd.OpenedAt = "changed", now.Add(-time.Hour), now.Add(-time.Hour)
		upd.Updates = nil
		wantErr(t, "UpdateIncident", s.UpdateIncident(ctx, &upd), nil)
		if upd.Version != 2 {
			t.Errorf("Version after UpdateIncident = %d, want 2", upd.Version)
		}
		want := upd
		want.Component, want.StartedAt, want.OpenedAt = cur.Component, cur.StartedAt, cur.OpenedAt
		want.Updates = cur.Updates
		same(t, "updated incident", &want, get(t, full.ID))

		stale := *cur // Version 1
		stale.Severity = store.SeverityDegraded
		wantErr(t, "UpdateIncident stale", s.UpdateIncident(ctx, &stale), store.ErrConflict)
		if stale.Version != 1 {
			t.Errorf("failed UpdateIncident changed Version to %d", stale.Version)
		}
		same(t, "incident after stale update", &want, get(t, full.ID))
	})

	t.Run("open again after resolution", func(t *testing.T) {
		again := incident("inc-again", "bankid", now.Add(5*time.Hour).In(z.tokyo), "bankid")
		wantErr(t, "OpenIncident after resolution", s.OpenIncident(ctx, again), nil)
		same(t, "new incident", again, get(t, again.ID))

		// Reopening the resolved one now clashes with the new one.
		old := get(t, full.ID)
		old.ResolvedAt = time.Time{}
		wantErr(t, "UpdateIncident reopening", s.UpdateIncident(ctx, old), store.ErrConflict)
		if got := get(t, full.ID); got.ResolvedAt.IsZero() || got.Version != 2 {
			t.Errorf("refused reopen changed the incident: ResolvedAt %v, Version %d", got.ResolvedAt, got.Version)
		}
	})

	t.Run("timeline", func(t *testing.T) {
		want := get(t, full.ID).Updates
		for i, kind := range []string{store.UpdateRecovered, store.UpdateResolved, store.UpdateRCA} {
			u := &store.IncidentUpdate{
				IncidentID: full.ID, Time: now.Add(time.Duration(i+2) * time.Hour).In(z.la), Kind: kind,
				State: store.HealthUp, Reason: "probes_ok", Message: fmt.Sprint("entry ", i), Author: "varde",
			}
			wantErr(t, "AddIncidentUpdate", s.AddIncidentUpdate(ctx, u), nil)
			if u.Seq != len(want)+1 {
				t.Errorf("AddIncidentUpdate: Seq = %d, want %d", u.Seq, len(want)+1)
			}
			want = append(want, u)
		}
		same(t, "timeline", want, get(t, full.ID).Updates)

		// Another incident's timeline numbers from 1 on its own.
		u := &store.IncidentUpdate{IncidentID: "inc-bare", Time: now, Kind: store.UpdateOperator, Message: "first"}
		wantErr(t, "AddIncidentUpdate", s.AddIncidentUpdate(ctx, u), nil)
		if u.Seq != 1 {
			t.Errorf("first entry of an empty timeline: Seq = %d, want 1", u.Seq)
		}
		same(t, "bare timeline", []*store.IncidentUpdate{u}, get(t, "inc-bare").Updates)
	})

	t.Run("concurrent opens", func(t *testing.T) {
		errs := race(contenders, func(i int) error {
			return s.OpenIncident(ctx, incident(id("race-open", i), "contested", now.Add(time.Duration(i)*time.Second)))
		})
		w := oneWinner(t, errs, store.ErrConflict)
		got, err := s.ListIncidents(ctx, store.IncidentQuery{Component: "contested"})
		wantErr(t, "ListIncidents", err, nil)
		if len(got) != 1 || w >= 0 && got[0].ID != id("race-open", w) {
			t.Errorf("stored %d incidents of the contested component, want only the winner's", len(got))
		}
	})

	t.Run("concurrent timeline appends", func(t *testing.T) {
		in := incident("inc-appends", "appends", now)
		wantErr(t, "OpenIncident", s.OpenIncident(ctx, in), nil)
		seqs := make([]int, contenders)
		errs := race(contenders, func(i int) error {
			u := &store.IncidentUpdate{IncidentID: in.ID, Time: now, Kind: store.UpdateOperator, Message: fmt.Sprint(i)}
			err := s.AddIncidentUpdate(ctx, u)
			seqs[i] = u.Seq
			return err
		})
		for i, err := range errs {
			wantErr(t, fmt.Sprintf("AddIncidentUpdate %d", i), err, nil)
		}
		slices.Sort(seqs)
		for i, seq := range seqs {
			if seq != i+2 {
				t.Fatalf("concurrent appends got Seqs %v, want 2..%d", seqs, contenders+1)
			}
		}
		got := get(t, in.ID).Updates
		if len(got) != contenders+1 {
			t.Fatalf("timeline has %d entries, want %d", len(got), contenders+1)
		}
		for i, u := range got {
			if u.Seq != i+1 {
				t.Errorf("timeline entry %d has Seq %d", i, u.Seq)
			}
		}
	})

	t.Run("concurrent updates", func(t *testing.T) {
		cur := get(t, "inc-appends")
		errs := race(contenders, func(i int) error {
			u := *cur
			u.PeopleAffected = int64(i)
			return s.UpdateIncident(ctx, &u)
		})
		w := oneWinner(t, errs, store.ErrConflict)
		got := get(t, "inc-appends")
		if got.Version != cur.Version+1 || w >= 0 && got.PeopleAffected != int64(w) {
			t.Errorf("after the race: Version %d, PeopleAffected %d; want %d, %d", got.Version, got.PeopleAffected, cur.Version+1, w)
		}
	})
}

func testIncidentList(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)
	h := func(n float64) time.Time { return now.Add(time.Duration(n * float64(time.Hour))) }

	// Five incidents, opened, then some resolved; written in several zones.
	a := incident("a", "bankid", h(-10).In(z.la), "bankid", "passkey")
	b := incident("b", "minid", h(-5).In(z.tokyo), "minid")
	c := incident("c", "bankid", h(-2), "bankid")
	d := incident("d", "store", h(-1).In(z.la), "store", "bankid")
	e := incident("e", "passkey", h(-3)) // no Components: matched by Component
	for _, in := range []*store.Incident{a, b, e} {
		wantErr(t, "OpenIncident", s.OpenIncident(ctx, in), nil)
	}
	resolve := map[*store.Incident]time.Time{a: h(-8), b: h(-4).In(z.la), e: h(-2.5)}
	for in, at := range resolve {
		in.ResolvedAt = at
		if in == a {
			in.RCA, in.RCAPublishedAt = "root cause", h(-7)
		}
		wantErr(t, "UpdateIncident", s.UpdateIncident(ctx, in), nil)
	}
	for _, in := range []*store.Incident{c, d} {
		wantErr(t, "OpenIncident", s.OpenIncident(ctx, in), nil)
	}
	u := &store.IncidentUpdate{IncidentID: "a", Time: h(-7), Kind: store.UpdateRCA, Message: "root cause", Author: "ops"}
	wantErr(t, "AddIncidentUpdate", s.AddIncidentUpdate(ctx, u), nil)
	a.Updates = append(a.Updates, u)

	type is = []*store.Incident
	tests := []struct {
		name string
		q    store.IncidentQuery
		want is
	}{
		{"all, newest first", store.IncidentQuery{}, is{d, c, e, b, a}},
		{"component in components", store.IncidentQuery{Component: "bankid"}, is{d, c, a}},
		{"component as component", store.IncidentQuery{Component: "passkey"}, is{e, a}},
		{"unknown component", store.IncidentQuery{Component: "nobody"}, is{}},
		{"open", store.IncidentQuery{Open: true}, is{d, c}},
		{"open of component", store.IncidentQuery{Open: true, Component: "store"}, is{d}},
		{"resolved at since overlaps", store.IncidentQuery{Since: h(-4).In(z.tokyo)}, is{d, c, e, b}},
		{"resolved before since does not", store.IncidentQuery{Since: h(-4).Add(time.Microsecond)}, is{d, c, e}},
		{"started at until does not overlap", store.IncidentQuery{Until: h(-5).In(z.la)}, is{a}},
		{"started before until overlaps", store.IncidentQuery{Until: h(-5).Add(time.Microsecond)}, is{b, a}},
		{"window", store.IncidentQuery{Since: h(-9), Until: h(-4)}, is{b, a}},
		{"future window holds the open ones", store.IncidentQuery{Since: h(1), Until: h(2)}, is{d, c}},
		{"limit keeps the newest", store.IncidentQuery{Limit: 2}, is{d, c}},
		{"every filter", store.IncidentQuery{Component: "bankid", Since: h(-9), Until: h(-1.5), Limit: 1}, is{c}},
		{"rca owed: resolved, none published", store.IncidentQuery{RCAOwed: true}, is{e, b}},
		{"rca owed, limited", store.IncidentQuery{RCAOwed: true, Limit: 1}, is{e}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListIncidents(ctx, tt.q)
			wantErr(t, "ListIncidents", err, nil)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			same(t, "incidents", tt.want, got)
		})
	}
	// The latest resolution at or before a time, open incidents aside.
	last := []struct {
		name string
		by   time.Time
		want time.Time
	}{
		{"before any", h(-8).Add(-time.Microsecond), time.Time{}},
		{"at the first", h(-8).In(z.tokyo), h(-8)},
		{"just before the second", h(-4).Add(-time.Microsecond), h(-8)},
		{"at the second, in another zone", h(-4).In(z.tokyo), h(-4)},
		{"after all", h(10), h(-2.5)},
	}
	for _, tt := range last {
		t.Run("last resolved by "+tt.name, func(t *testing.T) {
			got, err := s.LastResolvedBy(ctx, tt.by)
			wantErr(t, "LastResolvedBy", err, nil)
			if !got.Equal(tt.want) || (!got.IsZero() && got.Location() != time.UTC) {
				t.Errorf("LastResolvedBy(%v) = %v, want %v in UTC", tt.by, got, tt.want)
			}
		})
	}
}

func testMaintenance(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)
	h := func(n int) time.Time { return now.Add(time.Duration(n) * time.Hour) }
	list := func(t *testing.T, since, until time.Time) []*store.Maintenance {
		t.Helper()
		got, err := s.ListMaintenance(ctx, since, until)
		wantErr(t, "ListMaintenance", err, nil)
		return got
	}

	t.Run("empty", func(t *testing.T) {
		if got := list(t, time.Time{}, time.Time{}); len(got) != 0 {
			t.Errorf("ListMaintenance on an empty store = %d", len(got))
		}
		wantErr(t, "CancelMaintenance unknown", s.CancelMaintenance(ctx, "nobody", now), store.ErrNotFound)
	})

	m1 := &store.Maintenance{ID: "m1", Components: []string{"bankid", "passkey"}, Start: h(1).In(z.la), End: h(3).In(z.tokyo),
		Title: "Bank upgrade «æøå»", Message: "Logins with the bank may fail.\nUse a passkey.", CreatedAt: now.In(z.la)}
	m2 := &store.Maintenance{ID: "m2", Components: []string{}, Start: h(2), End: h(4), Title: "Store", CreatedAt: now}
	m3 := &store.Maintenance{ID: "m3", Start: h(-2), End: h(-1).In(z.tokyo), CreatedAt: h(-3)}
	m4 := &store.Maintenance{ID: "m4", Components: []string{"store"}, Start: h(10), Title: "open-ended",
		CreatedAt: now, CancelledAt: h(-1).In(z.la)}

	t.Run("create and list", func(t *testing.T) {
		for _, m := range []*store.Maintenance{m4, m2, m1, m3} {
			wantErr(t, "CreateMaintenance", s.CreateMaintenance(ctx, m), nil)
		}
		same(t, "all by start", []*store.Maintenance{m3, m1, m2, m4}, list(t, time.Time{}, time.Time{}))
		dup := &store.Maintenance{ID: "m1", Title: "impostor"}
		wantErr(t, "CreateMaintenance duplicate", s.CreateMaintenance(ctx, dup), store.ErrConflict)
		same(t, "after refused create", []*store.Maintenance{m3, m1, m2, m4}, list(t, time.Time{}, time.Time{}))
	})

	t.Run("get", func(t *testing.T) {
		for _, m := range []*store.Maintenance{m1, m3, m4} {
			got, err := s.GetMaintenance(ctx, m.ID)
			wantErr(t, "GetMaintenance", err, nil)
			same(t, "GetMaintenance "+m.ID, []*store.Maintenance{m}, []*store.Maintenance{got})
		}
		for _, id := range []string{"nobody", "M1", "m1 ", ""} {
			_, err := s.GetMaintenance(ctx, id)
			wantErr(t, fmt.Sprintf("GetMaintenance %q", id), err, store.ErrNotFound)
		}
	})

	t.Run("overlap", func(t *testing.T) {
		type ms = []*store.Maintenance
		tests := []struct {
			name         string
			since, until time.Time
			want         ms
		}{
			{"from now", now, time.Time{}, ms{m1, m2, m4}},
			{"until now", time.Time{}, now.In(z.tokyo), ms{m3}},
			{"end at since does not overlap", h(3).In(z.la), h(10), ms{m2}},
			{"start at until does not overlap", h(3).Add(-time.Microsecond), h(10).Add(time.Microsecond), ms{m1, m2, m4}},
			{"open end overlaps any later window", h(100), h(101), ms{m4}},
			{"ended before", h(-1), h(1), ms{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := list(t, tt.since, tt.until)
				if len(got) == 0 && len(tt.want) == 0 {
					return
				}
				same(t, "maintenance", tt.want, got)
			})
		}
	})

	t.Run("cancel", func(t *testing.T) {
		at := now.Add(time.Minute).In(z.tokyo)
		wantErr(t, "CancelMaintenance", s.CancelMaintenance(ctx, "m2", at), nil)
		wantErr(t, "CancelMaintenance again", s.CancelMaintenance(ctx, "m2", at.Add(time.Hour)), nil)
		want := *m2
		want.CancelledAt = at
		same(t, "cancelled stays listed", []*store.Maintenance{m1, &want}, list(t, h(2), h(3)))
	})

	t.Run("cancel only ahead", func(t *testing.T) {
		// The write decides whether the window has begun: one that has,
		// by the time given, is not cancelled, whatever its caller saw.
		wantErr(t, "CancelMaintenance at its start", s.CancelMaintenance(ctx, "m1", h(1).In(z.la)), store.ErrConflict)
		wantErr(t, "CancelMaintenance under way", s.CancelMaintenance(ctx, "m1", h(2)), store.ErrConflict)
		wantErr(t, "CancelMaintenance ended", s.CancelMaintenance(ctx, "m3", now), store.ErrConflict)
		wantErr(t, "CancelMaintenance unknown later", s.CancelMaintenance(ctx, "nobody", h(2)), store.ErrNotFound)
		// One cancelled before it began stays cancelled, at its first time.
		wantErr(t, "CancelMaintenance of a cancelled one begun", s.CancelMaintenance(ctx, "m4", h(11)), nil)
		c2 := *m2
		c2.CancelledAt = now.Add(time.Minute)
		same(t, "begun windows not cancelled", []*store.Maintenance{m3, m1, &c2, m4}, list(t, time.Time{}, time.Time{}))
	})

	t.Run("end early", func(t *testing.T) {
		// Only a window under way at the time given is ended: not one
		// still ahead, nor one ended, nor one cancelled.
		wantErr(t, "EndMaintenance unknown", s.EndMaintenance(ctx, "nobody", h(2)), store.ErrNotFound)
		wantErr(t, "EndMaintenance ahead", s.EndMaintenance(ctx, "m1", h(1).Add(-time.Microsecond)), store.ErrConflict)
		wantErr(t, "EndMaintenance at its start", s.EndMaintenance(ctx, "m1", h(1)), store.ErrConflict)
		wantErr(t, "EndMaintenance at its end", s.EndMaintenance(ctx, "m1", h(3)), store.ErrConflict)
		wantErr(t, "EndMaintenance ended", s.EndMaintenance(ctx, "m3", now), store.ErrConflict)
		wantErr(t, "EndMaintenance cancelled", s.EndMaintenance(ctx, "m2", h(3)), store.ErrConflict)
		at := h(2).Add(90 * time.Second).In(z.tokyo)
		wantErr(t, "EndMaintenance under way", s.EndMaintenance(ctx, "m1", at), nil)
		wantErr(t, "EndMaintenance again later", s.EndMaintenance(ctx, "m1", at.Add(time.Minute)), store.ErrConflict)
		e1 := *m1
		e1.End, e1.AnnouncedEnd = at, m1.End
		c2 := *m2
		c2.CancelledAt = now.Add(time.Minute)
		same(t, "ended early", []*store.Maintenance{m3, &e1, &c2, m4}, list(t, time.Time{}, time.Time{}))
		same(t, "not listed after its new end", []*store.Maintenance{&c2}, list(t, at, h(3)))
		got, err := s.GetMaintenance(ctx, "m1")
		wantErr(t, "GetMaintenance ended early", err, nil)
		same(t, "GetMaintenance ended early", []*store.Maintenance{&e1}, []*store.Maintenance{got})
	})
}

func testWebhooks(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)
	lease := 30 * time.Second

	delivery := func(id, client string, due time.Time) *store.WebhookDelivery {
		return &store.WebhookDelivery{
			ID: id, ClientID: client, URL: "https://" + client + ".example/status", Event: "component_state",
			Payload: []byte(`{"component":"bankid","state":"down"}` + id), ContentType: "application/jwt",
			CreatedAt: due.Add(-time.Second), NextAttemptAt: due,
		}
	}
	ids := func(ds []*store.WebhookDelivery) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	claim := func(t *testing.T, node string, at time.Time, limit int, want ...string) []*store.WebhookDelivery {
		t.Helper()
		got, err := s.ClaimWebhooks(ctx, node, at, at.Add(lease), limit, 0)
		wantErr(t, "ClaimWebhooks", err, nil)
		if want == nil {
			want = []string{}
		}
		if g := ids(got); !slices.Equal(g, want) {
			t.Fatalf("%s claims at %v: %v, want %v", node, at.Sub(now), g, want)
		}
		return got
	}
	listed := func(t *testing.T, client string, limit int) []*store.WebhookDelivery {
		t.Helper()
		got, err := s.ListWebhookDeliveries(ctx, client, limit)
		wantErr(t, "ListWebhookDeliveries", err, nil)
		return got
	}

	d1 := delivery("d1", "bank", now.Add(-time.Minute).In(z.la))
	d2 := delivery("d2", "bank", now.Add(-2*time.Minute).In(z.tokyo))
	d3 := delivery("d3", "bank", now.Add(time.Minute))
	d4 := delivery("d4", "tax", now.Add(-3*time.Minute))
	d4.Attempts, d4.LastError = 2, "connect: refused" // a delivery moved from elsewhere keeps its history

	t.Run("empty", func(t *testing.T) {
		claim(t, "node-a", now, 10)
		if got := listed(t, "bank", 0); len(got) != 0 {
			t.Errorf("ListWebhookDeliveries on an empty store = %d", len(got))
		}
		wantErr(t, "EnqueueWebhooks(nil)", s.EnqueueWebhooks(ctx, nil), nil)
		wantErr(t, "FinishWebhookAttempt unknown", s.FinishWebhookAttempt(ctx, "node-a", d1), store.ErrNotFound)
	})

	t.Run("enqueue and list", func(t *testing.T) {
		wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, []*store.WebhookDelivery{d1, d2, d3, d4}), nil)
		// Newest first: d3 was created last.
		same(t, "bank deliveries", []*store.WebhookDelivery{d3, d1, d2}, listed(t, "bank", 0))
		same(t, "limit", []*store.WebhookDelivery{d3, d1}, listed(t, "bank", 2))
		same(t, "tax deliveries", []*store.WebhookDelivery{d4}, listed(t, "tax", -1))

		dup := delivery("d5", "bank", now)
		err := s.EnqueueWebhooks(ctx, []*store.WebhookDelivery{dup, delivery("d1", "bank", now)})
		wantErr(t, "EnqueueWebhooks with a taken ID", err, store.ErrConflict)
		same(t, "after refused enqueue", []*store.WebhookDelivery{d3, d1, d2}, listed(t, "bank", 0))
	})

	t.Run("claim, lease and finish", func(t *testing.T) {
		claim(t, "node-a", now, 0)
		got := claim(t, "node-a", now.In(z.tokyo), 2, "d4", "d2") // earliest due first
		same(t, "claimed", []*store.WebhookDelivery{d4, d2}, got)
		claim(t, "node-b", now, 10, "d1")
		// Leases are live until now+lease; d3 is not due yet.
		claim(t, "node-c", now.Add(lease-time.Microsecond), 10)

		wantErr(t, "FinishWebhookAttempt by another node", s.FinishWebhookAttempt(ctx, "node-b", d4), store.ErrConflict)
		wantErr(t, "FinishWebhookAttempt unknown", s.FinishWebhookAttempt(ctx, "node-a",
			delivery("nobody", "bank", now)), store.ErrNotFound)

		d4.Attempts, d4.LastError, d4.DeliveredAt = 3, "", now.Add(time.Second).In(z.la)
		wantErr(t, "FinishWebhookAttempt delivered", s.FinishWebhookAttempt(ctx, "node-a", d4), nil)
		// The client moved its endpoint since d2 was queued: the attempt
		// went to the new one, and the delivery says so.
		d2.URL, d2.Attempts, d2.LastError, d2.NextAttemptAt = "https://bank.example/moved", 1, "status 503", now.Add(5*time.Minute).In(z.tokyo)
		wantErr(t, "FinishWebhookAttempt failed", s.FinishWebhookAttempt(ctx, "node-a", d2), nil)
		same(t, "moved", []*store.WebhookDelivery{d3, d1, d2}, listed(t, "bank", 0))
		wantErr(t, "FinishWebhookAttempt twice", s.FinishWebhookAttempt(ctx, "node-a", d4), store.ErrConflict)
		// A delivery that ended keeps no payload (a logout token holds a
		// person's pairwise sub and sid); one still retried keeps it.
		d4.Payload = nil
		same(t, "finished", []*store.WebhookDelivery{d4}, listed(t, "tax", 0))

		// node-b's lease on d1 ends at now+lease: node-c takes it over,
		// and node-b can no longer finish it.
		claim(t, "node-c", now.Add(lease), 10, "d1")
		wantErr(t, "FinishWebhookAttempt after losing the lease", s.FinishWebhookAttempt(ctx, "node-b", d1), store.ErrConflict)
		d1.Attempts, d1.LastError, d1.AbandonedAt = 8, "timeout", now.Add(lease+time.Second)
		wantErr(t, "FinishWebhookAttempt abandoned", s.FinishWebhookAttempt(ctx, "node-c", d1), nil)
		d1.Payload = nil
		same(t, "abandoned", []*store.WebhookDelivery{d3, d1, d2}, listed(t, "bank", 0))

		// Delivered and abandoned deliveries are never due again; an
		// unfinished lease expires and the delivery is claimed again.
		claim(t, "node-a", now.Add(10*time.Minute), 10, "d3", "d2")
		claim(t, "node-b", now.Add(10*time.Minute+lease-time.Microsecond), 10)
		claim(t, "node-b", now.Add(10*time.Minute+lease), 10, "d3", "d2")
		for _, d := range []*store.WebhookDelivery{d2, d3} {
			d.Attempts++
			d.DeliveredAt = now.Add(11 * time.Minute)
			wantErr(t, "FinishWebhookAttempt", s.FinishWebhookAttempt(ctx, "node-b", d), nil)
			d.Payload = nil
		}
		claim(t, "node-a", now.Add(time.Hour), 10)
		same(t, "all finished", []*store.WebhookDelivery{d3, d1, d2}, listed(t, "bank", 0))
	})

	t.Run("concurrent claims", func(t *testing.T) {
		const n, each = 40, 3 // contenders*each > n: every delivery is claimed
		batch := make([]*store.WebhookDelivery, n)
		at := now.Add(time.Hour)
		for i := range batch {
			batch[i] = delivery(id("race", i), "race", at.Add(-time.Duration(i)*time.Second))
		}
		wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, batch), nil)
		claimed := make([][]*store.WebhookDelivery, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			claimed[i], err = s.ClaimWebhooks(ctx, id("node", i), at, at.Add(lease), each, 0)
			return err
		})
		seen := map[string]int{}
		for i, err := range errs {
			wantErr(t, fmt.Sprintf("claimer %d", i), err, nil)
			for _, d := range claimed[i] {
				if j, ok := seen[d.ID]; ok {
					t.Errorf("delivery %s claimed by %d and %d", d.ID, j, i)
				}
				seen[d.ID] = i
				// The holder, and only it, can finish.
				if other := id("node", (i+1)%contenders); s.FinishWebhookAttempt(ctx, other, d) == nil {
					t.Errorf("%s finished %s's delivery %s", other, id("node", i), d.ID)
				}
				d.DeliveredAt = at
				wantErr(t, "FinishWebhookAttempt", s.FinishWebhookAttempt(ctx, id("node", i), d), nil)
			}
		}
		if len(seen) != n {
			t.Errorf("%d deliveries claimed, want %d", len(seen), n)
		}
	})

	t.Run("per endpoint", func(t *testing.T) {
		// A receiver with a backlog (slow) gets at most perEndpoint
		// deliveries of one event under lease at once; the rest of the
		// claim goes to the others, though they are due later.
		at := now.Add(2 * time.Hour)
		var batch []*store.WebhookDelivery
		for i := range 5 {
			batch = append(batch, delivery(id("slow", i), "slow", at.Add(-time.Hour+time.Duration(i)*time.Second)))
		}
		logout := delivery("slow-logout", "slow", at.Add(-time.Minute))
		logout.Event = "logout"
		fast := delivery("fast-0", "fast", at.Add(-time.Second))
		batch = append(batch, logout, fast)
		wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, batch), nil)
		claimAt := func(t *testing.T, node string, at time.Time, limit int, want ...string) []*store.WebhookDelivery {
			t.Helper()
			got, err := s.ClaimWebhooks(ctx, node, at, at.Add(lease), limit, 2)
			wantErr(t, "ClaimWebhooks", err, nil)
			if g := ids(got); !slices.Equal(g, append([]string{}, want...)) {
				t.Fatalf("%s claims at %v with 2 per endpoint: %v, want %v", node, at.Sub(now), g, want)
			}
			return got
		}
		got := claimAt(t, "node-a", at, 10, "slow-00", "slow-01", "slow-logout", "fast-0")
		// The endpoint's live leases count, whichever node holds them.
		claimAt(t, "node-b", at, 10)
		got[0].Attempts, got[0].NextAttemptAt = 1, at.Add(time.Hour)
		wantErr(t, "FinishWebhookAttempt", s.FinishWebhookAttempt(ctx, "node-a", got[0]), nil)
		claimAt(t, "node-b", at, 10, "slow-02")
		// Expired leases do not count.
		claimAt(t, "node-b", at.Add(lease), 10, "slow-01", "slow-02", "slow-logout", "fast-0")
		claimAt(t, "node-c", at.Add(lease), 10)
		// Without a per-endpoint limit, every due delivery may be taken.
		all, err := s.ClaimWebhooks(ctx, "node-c", at.Add(2*lease), at.Add(3*lease), 10, 0)
		wantErr(t, "ClaimWebhooks", err, nil)
		if g, want := ids(all), []string{"slow-01", "slow-02", "slow-03", "slow-04", "slow-logout", "fast-0"}; !slices.Equal(g, want) {
			t.Fatalf("node-c claims with no per-endpoint limit: %v, want %v", g, want)
		}
		for _, d := range all {
			d.DeliveredAt = at
			wantErr(t, "FinishWebhookAttempt", s.FinishWebhookAttempt(ctx, "node-c", d), nil)
		}
	})
}

func testAuditRange(t *testing.T, s store.Store) {
	ctx := t.Context()
	z := loadZones(t)
	now := base(t)
	sec := func(n int) time.Time { return now.Add(time.Duration(n) * time.Second) }

	list := func(t *testing.T, q store.AuditQuery) []*store.AuditEvent {
		t.Helper()
		got, err := s.ListAuditRange(ctx, q)
		wantErr(t, "ListAuditRange", err, nil)
		return got
	}
	if got := list(t, store.AuditQuery{}); len(got) != 0 {
		t.Errorf("ListAuditRange on an empty log = %d events", len(got))
	}

	// Appended in Seq order; e6 is earlier in time than all the others.
	events := []*store.AuditEvent{
		{Time: sec(0), Type: "authentication", PersonID: "p1", ClientID: "bank", Result: store.ResultFailure, Reason: "provider_down"},
		{Time: sec(1).In(z.la), Type: "token", ClientID: "bank", Result: store.ResultSuccess},
		{Time: sec(2).In(z.tokyo), Type: "authentication", Result: store.ResultSuccess, Details: map[string]string{"rerouted": "bankid"}},
		{Time: sec(2), Type: "consent", PersonID: "p2", Result: store.ResultSuccess},
		{Time: sec(3), Type: "authentication", Result: store.ResultFailure},
		{Time: sec(-1), Type: "authentication", Result: store.ResultSuccess},
	}
	for _, e := range events {
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
	}
	e1, e2, e3, e4, e5, e6 := events[0], events[1], events[2], events[3], events[4], events[5]

	type es = []*store.AuditEvent
	auth := []string{"authentication"}
	tests := []struct {
		name string
		q    store.AuditQuery
		want es
	}{
		{"everything by seq", store.AuditQuery{}, es{e1, e2, e3, e4, e5, e6}},
		{"window: since inclusive, until exclusive", store.AuditQuery{Since: sec(1).In(z.tokyo), Until: sec(3).In(z.la)}, es{e2, e3, e4}},
		{"since 1µs later", store.AuditQuery{Since: sec(1).Add(time.Microsecond)}, es{e3, e4, e5}},
		{"until", store.AuditQuery{Until: now}, es{e6}},
		{"type", store.AuditQuery{Since: now, Types: auth}, es{e1, e3, e5}},
		{"types", store.AuditQuery{Types: []string{"token", "authentication"}}, es{e1, e2, e3, e5, e6}},
		{"empty types", store.AuditQuery{Types: []string{}, Until: sec(1)}, es{e1, e6}},
		{"unknown type", store.AuditQuery{Types: []string{"nothing"}}, es{}},
		{"after seq", store.AuditQuery{AfterSeq: 3, Types: auth}, es{e5, e6}},
		{"limit", store.AuditQuery{Types: auth, Limit: 2}, es{e1, e3}},
		{"empty window", store.AuditQuery{Since: sec(2), Until: sec(2)}, es{}},
		{"client", store.AuditQuery{ClientID: "bank"}, es{e1, e2}},
		{"client and type", store.AuditQuery{ClientID: "bank", Types: []string{"token"}}, es{e2}},
		{"client and limit", store.AuditQuery{ClientID: "bank", Limit: 1}, es{e1}},
		{"unknown client", store.AuditQuery{ClientID: "shop"}, es{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := list(t, tt.q)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			same(t, "events", tt.want, got)
		})
	}

	t.Run("pages", func(t *testing.T) {
		var all es
		q := store.AuditQuery{Types: auth, Since: now.In(z.la), Limit: 2}
		for range 10 {
			page := list(t, q)
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			q.AfterSeq = page[len(page)-1].Seq
		}
		same(t, "paged events", es{e1, e3, e5}, all)
	})
}
