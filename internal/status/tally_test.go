package status

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

// TestTallyCarriesOnAsAFullCount: a count carried on from the last one
// gives what a count of the whole window gives, whichever way the window
// moved, and whatever order the events were logged in.
func TestTallyCarriesOnAsAFullCount(t *testing.T) {
	base := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	mins := func(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }
	// fail is a failed login through bankid at minute at, from browser.
	type fail struct {
		at      float64
		browser string
	}
	type step struct {
		now, to float64 // minutes after base
		logged  []fail
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"window grows", []step{{10, 10, []fail{{2, "b1"}, {9, "b2"}}}, {11, 11, []fail{{10.5, "b3"}}}}},
		{"window shrinks", []step{{10, 10, []fail{{5, "b1"}, {9, "b2"}}}, {11, 8, nil}}},
		{"logged late", []step{{10, 10, []fail{{2, "b1"}}}, {11, 11, []fail{{5, "b2"}}}}},
		{"clock ahead", []step{{10, 10, []fail{{10.5, "b1"}}}, {11, 11, nil}}},
		{"grace ends, then a relapse", []step{
			{20, 10, []fail{{5, "b1"}, {12, "b2"}}}, // recovered at 10, counted in its grace
			{30, 10, []fail{{26, "b3"}}},            // the grace (15 min) has ended
			{31, 31, nil},                           // down again: the window reaches now
		}},
		{"recovered while counting", []step{{10, 10, []fail{{5, "b1"}, {9.9, "b2"}}}, {10.5, 9.5, []fail{{10.2, "b3"}}}, {12, 9.5, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "status.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			now := base
			s := &Service{Store: db, Now: func() time.Time { return now }}
			from := base.Add(mins(1))
			tl := newTally([]string{"bankid"}, from)
			for i, st := range tt.steps {
				for j, f := range st.logged {
					e := &store.AuditEvent{Time: base.Add(mins(f.at)), Type: eventAuthentication, Result: store.ResultFailure, Reason: "token_error",
						Provider: "bankid", Details: map[string]string{detailAttempt: fmt.Sprintf("%s-%d-%d", f.browser, i, j), detailBrowser: f.browser}}
					if err := db.AppendAudit(ctx, e); err != nil {
						t.Fatal(err)
					}
				}
				now = base.Add(mins(st.now))
				to := base.Add(mins(st.to))
				if err := s.advance(ctx, tl, to); err != nil {
					t.Fatal(err)
				}
				want, err := s.Affected(ctx, []string{"bankid"}, from, to)
				if err != nil {
					t.Fatal(err)
				}
				if got := tl.result(); got != want {
					t.Errorf("step %d: carried on %+v, a full count gives %+v", i, got, want)
				}
			}
		})
	}
}
