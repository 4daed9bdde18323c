package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// testSessionEnds checks the outbox between ending a session and queueing
// its logout tokens: which deletes record an end, that settling one
// is single-use and atomic with its deliveries, and that a failed one is
// deferred behind the others.
func testSessionEnds(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	created := func(t *testing.T, id, person string, clients []string, expires time.Time) *store.Session {
		t.Helper()
		ss := fullSession(t, id)
		ss.PersonID, ss.Clients, ss.ExpiresAt = person, clients, expires
		wantErr(t, "CreateSession "+id, s.CreateSession(ctx, ss), nil)
		return ss
	}
	pending := func(t *testing.T, before time.Time, limit int) []*store.Session {
		t.Helper()
		got, err := s.PendingSessionEnds(ctx, before, limit)
		wantErr(t, "PendingSessionEnds", err, nil)
		if got == nil {
			t.Fatal("PendingSessionEnds returned nil, want a slice, empty if none")
		}
		return got
	}
	ids := func(ss []*store.Session) []string {
		out := []string{}
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	wantPending := func(t *testing.T, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if got := ids(pending(t, now.Add(time.Hour), 100)); !slices.Equal(got, want) {
			t.Fatalf("pending ends %v, want %v", got, want)
		}
	}
	later := now.Add(8 * time.Hour)
	delivery := func(id, client string) *store.WebhookDelivery {
		return &store.WebhookDelivery{ID: id, ClientID: client, URL: "https://" + client + ".example/logout",
			Event: "backchannel_logout", Payload: []byte("logout_token=" + id), ContentType: "application/x-www-form-urlencoded",
			CreatedAt: now, NextAttemptAt: now}
	}
	delivered := func(t *testing.T, client string) []string {
		t.Helper()
		got, err := s.ListWebhookDeliveries(ctx, client, 0)
		wantErr(t, "ListWebhookDeliveries", err, nil)
		out := []string{}
		for _, d := range got {
			out = append(out, d.ID)
		}
		slices.Sort(out)
		return out
	}

	t.Run("what an end records", func(t *testing.T) {
		wantPending(t)
		told := created(t, "e-told", "ada", []string{"bank", "tax"}, later)
		ended, err := s.EndSession(ctx, told.ID, now)
		wantErr(t, "EndSession", err, nil)
		same(t, "the ended session", asRead(told), ended)
		same(t, "the pending end, the session as it was", []*store.Session{told}, pending(t, now.Add(time.Microsecond), 10))
		if got := pending(t, now, 10); len(got) != 0 {
			t.Errorf("an end at now is pending before now: %v", ids(got))
		}
		_, err = s.GetSession(ctx, told.ID, now)
		wantErr(t, "GetSession of an ended session", err, store.ErrNotFound)
		// Ended again, by a second tab: gone, and still one end.
		ended, err = s.EndSession(ctx, told.ID, now)
		if ended != nil || err != nil {
			t.Errorf("EndSession again = %v, %v, want nil, nil", ended, err)
		}

		// Nobody to tell: no clients, or expired at now.
		alone := created(t, "e-alone", "ada", nil, later)
		expired := created(t, "e-expired", "ada", []string{"bank"}, now)
		for _, ss := range []*store.Session{alone, expired} {
			ended, err := s.EndSession(ctx, ss.ID, now)
			wantErr(t, "EndSession "+ss.ID, err, nil)
			same(t, "the ended session "+ss.ID, asRead(ss), ended)
		}
		// Continued by a new session of the same line: deleted, not ended.
		continued := created(t, "e-continued", "ada", []string{"bank"}, later)
		ended, err = s.DeleteSession(ctx, continued.ID)
		wantErr(t, "DeleteSession", err, nil)
		same(t, "the deleted session", asRead(continued), ended)
		wantPending(t, told.ID)

		// A person's other sessions: the live ones with clients.
		kept := created(t, "e-grace-kept", "grace", []string{"bank"}, later)
		a := created(t, "e-grace-a", "grace", []string{"bank"}, later)
		b := created(t, "e-grace-b", "grace", []string{"tax"}, later)
		created(t, "e-grace-old", "grace", []string{"bank"}, now.Add(-time.Minute))
		created(t, "e-grace-none", "grace", []string{}, later)
		all, err := s.EndPersonSessions(ctx, "grace", kept.ID, now, nil)
		wantErr(t, "EndPersonSessions", err, nil)
		if len(all) != 4 {
			t.Errorf("EndPersonSessions ended %v, want four", ids(all))
		}
		got := pending(t, now.Add(time.Hour), 10)
		slices.SortFunc(got, func(x, y *store.Session) int { return strings.Compare(x.ID, y.ID) })
		same(t, "pending ends after EndPersonSessions", []*store.Session{a, b, told}, got)
	})

	t.Run("idle", func(t *testing.T) {
		// A session left unused for the idle timeout has ended already:
		// deleted later, by its person or another's login, it ends for
		// nobody, as an expired one does.
		s.SetSessionIdleTimeout(30 * time.Minute)
		t.Cleanup(func() { s.SetSessionIdleTimeout(0) })
		before := ids(pending(t, now.Add(time.Hour), 100))
		idle := fullSession(t, "i-idle")
		idle.PersonID, idle.Clients, idle.ExpiresAt = "idle-ada", []string{"bank"}, later
		idle.CreatedAt, idle.LastUsed = now.Add(-2*time.Hour), now.Add(-30*time.Minute)
		wantErr(t, "CreateSession", s.CreateSession(ctx, idle), nil)
		ended, err := s.EndSession(ctx, idle.ID, now)
		wantErr(t, "EndSession", err, nil)
		same(t, "the ended idle session", idle, ended)
		for _, id := range []string{"i-grace-idle", "i-grace-used"} {
			ss := fullSession(t, id)
			ss.PersonID, ss.Clients, ss.ExpiresAt = "idle-grace", []string{"bank"}, later
			ss.CreatedAt, ss.LastUsed = now.Add(-2*time.Hour), now.Add(-time.Hour)
			if id == "i-grace-used" {
				ss.LastUsed = now.Add(-29 * time.Minute)
			}
			wantErr(t, "CreateSession "+id, s.CreateSession(ctx, ss), nil)
		}
		all, err := s.EndPersonSessions(ctx, "idle-grace", "", now, nil)
		wantErr(t, "EndPersonSessions", err, nil)
		if len(all) != 2 {
			t.Errorf("EndPersonSessions ended %v, want both", ids(all))
		}
		want := append(slices.Clone(before), "i-grace-used")
		got := ids(pending(t, now.Add(time.Hour), 100))
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("pending ends %v, want %v: only the session used within the idle timeout", got, want)
		}
		ok, err := s.SettleSessionEnd(ctx, "i-grace-used", nil)
		if !ok || err != nil {
			t.Fatalf("SettleSessionEnd = %v, %v, want true, nil", ok, err)
		}
	})

	t.Run("settle", func(t *testing.T) {
		ok, err := s.SettleSessionEnd(ctx, "e-told", []*store.WebhookDelivery{delivery("lt-1", "bank"), delivery("lt-2", "tax")})
		if !ok || err != nil {
			t.Fatalf("SettleSessionEnd = %v, %v, want true, nil", ok, err)
		}
		if got := delivered(t, "bank"); !slices.Equal(got, []string{"lt-1"}) {
			t.Errorf("bank's deliveries %v, want lt-1", got)
		}
		// Settled already (by another node, say): nothing more is queued.
		ok, err = s.SettleSessionEnd(ctx, "e-told", []*store.WebhookDelivery{delivery("lt-3", "bank")})
		if ok || err != nil {
			t.Errorf("SettleSessionEnd again = %v, %v, want false, nil", ok, err)
		}
		if got := delivered(t, "bank"); !slices.Equal(got, []string{"lt-1"}) {
			t.Errorf("after a second settle bank's deliveries are %v, want lt-1 only", got)
		}
		// A taken delivery ID changes nothing: the end stays pending and
		// the batch's other deliveries are not queued.
		ok, err = s.SettleSessionEnd(ctx, "e-grace-a", []*store.WebhookDelivery{delivery("lt-4", "tax"), delivery("lt-1", "bank")})
		wantErr(t, "SettleSessionEnd with a taken ID", err, store.ErrConflict)
		if ok {
			t.Error("SettleSessionEnd with a taken ID reported it settled")
		}
		if got := delivered(t, "tax"); !slices.Equal(got, []string{"lt-2"}) {
			t.Errorf("after a refused settle tax's deliveries are %v, want lt-2 only", got)
		}
		wantPending(t, "e-grace-a", "e-grace-b")
		// Nobody left with a URI to tell: settled with no deliveries.
		for _, id := range []string{"e-grace-a", "e-grace-b"} {
			ok, err := s.SettleSessionEnd(ctx, id, nil)
			if !ok || err != nil {
				t.Errorf("SettleSessionEnd(%s, none) = %v, %v, want true, nil", id, ok, err)
			}
		}
		wantPending(t)
		ok, err = s.SettleSessionEnd(ctx, "never-ended", nil)
		if ok || err != nil {
			t.Errorf("SettleSessionEnd of an unknown end = %v, %v, want false, nil", ok, err)
		}
	})

	t.Run("oldest first, before and limit", func(t *testing.T) {
		for i, id := range []string{"e-3", "e-1", "e-2"} {
			created(t, id, "heidi", []string{"bank"}, later)
			at := now.Add(time.Duration([]int{3, 1, 2}[i]) * time.Minute)
			_, err := s.EndSession(ctx, id, at)
			wantErr(t, "EndSession "+id, err, nil)
		}
		if got := ids(pending(t, now.Add(3*time.Minute), 10)); !slices.Equal(got, []string{"e-1", "e-2"}) {
			t.Errorf("pending before 3 min: %v, want e-1, e-2", got)
		}
		if got := ids(pending(t, later, 2)); !slices.Equal(got, []string{"e-1", "e-2"}) {
			t.Errorf("pending, limit 2: %v, want e-1, e-2", got)
		}
		if got := pending(t, later, 0); len(got) != 0 {
			t.Errorf("pending, limit 0: %v, want none", ids(got))
		}
	})

	t.Run("deferred", func(t *testing.T) {
		// An end that failed to settle is due when DeferSessionEnd says,
		// behind the others, and counts its failures.
		due := func(n int) time.Time { return now.Add(time.Duration(n) * 10 * time.Minute) }
		for i := range 2 {
			n, err := s.DeferSessionEnd(ctx, "e-1", due)
			if n != i+1 || err != nil {
				t.Fatalf("DeferSessionEnd #%d = %d, %v, want %d, nil", i+1, n, err, i+1)
			}
		}
		if got := ids(pending(t, later, 10)); !slices.Equal(got, []string{"e-2", "e-3", "e-1"}) {
			t.Errorf("pending after e-1 was deferred: %v, want e-2, e-3, e-1", got)
		}
		if got := ids(pending(t, now.Add(20*time.Minute), 10)); !slices.Equal(got, []string{"e-2", "e-3"}) {
			t.Errorf("pending before e-1 is due: %v, want e-2, e-3", got)
		}
		if got := ids(pending(t, later, 1)); !slices.Equal(got, []string{"e-2"}) {
			t.Errorf("pending, limit 1: %v, want e-2, not the deferred e-1", got)
		}
		_, err := s.DeferSessionEnd(ctx, "never-ended", due)
		wantErr(t, "DeferSessionEnd of an unknown end", err, store.ErrNotFound)
		for _, id := range []string{"e-1", "e-2", "e-3"} {
			if ok, err := s.SettleSessionEnd(ctx, id, nil); !ok || err != nil {
				t.Errorf("SettleSessionEnd(%s) = %v, %v, want true, nil", id, ok, err)
			}
		}
		wantPending(t)
	})

	t.Run("racing settles", func(t *testing.T) {
		// Every node that tries to settle one end at once: exactly one
		// queues its deliveries.
		for round := range 3 {
			id := fmt.Sprintf("e-race-%d", round)
			created(t, id, "ivar", []string{"race"}, later)
			_, err := s.EndSession(ctx, id, now)
			wantErr(t, "EndSession", err, nil)
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				won int
			)
			for i := range contenders {
				wg.Go(func() {
					ok, err := s.SettleSessionEnd(ctx, id, []*store.WebhookDelivery{delivery(fmt.Sprintf("%s-%d", id, i), "race")})
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						won++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if won != 1 {
				t.Errorf("round %d: %d settles won, want 1", round, won)
			}
			if got := delivered(t, "race"); len(got) != round+1 {
				t.Errorf("round %d: %d deliveries queued in all, want %d", round, len(got), round+1)
			}
		}
	})
}

// testSweptSessionEnds: the sweep deletes a session that ran out of time
// and, in the same write, records its end, why and when it ended, and an
// audit event, when (and only when) a client in it registered a
// back-channel logout URI. A swept session stays gone: nothing finds,
// uses or ends it again.
func testSweptSessionEnds(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	const idle = 30 * time.Minute
	s.SetSessionIdleTimeout(idle)
	later := now.Add(6 * time.Hour)
	client := func(id, uri string) {
		t.Helper()
		wantErr(t, "AddClient "+id, s.AddClient(ctx, &store.Client{ID: id, CreatedAt: now, BackchannelLogoutURI: uri}, nil), nil)
	}
	session := func(id string, clients []string, used, expires time.Time) *store.Session {
		t.Helper()
		ss := fullSession(t, id)
		ss.PersonID, ss.Clients, ss.CreatedAt, ss.LastUsed, ss.ExpiresAt = "p-"+id, clients, now.Add(-2*time.Hour), used, expires
		wantErr(t, "CreateSession "+id, s.CreateSession(ctx, ss), nil)
		return ss
	}
	sweep := func(t *testing.T, want int64) {
		t.Helper()
		n, err := s.DeleteExpired(ctx, now)
		wantErr(t, "DeleteExpired", err, nil)
		if n != want {
			t.Errorf("DeleteExpired = %d, want %d", n, want)
		}
	}
	pending := func(t *testing.T, before time.Time) []*store.Session {
		t.Helper()
		got, err := s.PendingSessionEnds(ctx, before, 100)
		wantErr(t, "PendingSessionEnds", err, nil)
		return got
	}
	head := func(t *testing.T) int64 {
		t.Helper()
		e, err := s.LastAudit(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return 0
		}
		wantErr(t, "LastAudit", err, nil)
		return e.Seq
	}

	// No client registers a URI: the sweep records nothing.
	client("shop", "")
	session("s-shop-first", []string{"shop"}, now.Add(-time.Hour), now.Add(-time.Second))
	sweep(t, 1)
	if got := pending(t, later); len(got) != 0 {
		t.Fatalf("pending ends after sweeping a session no client is told of: %d", len(got))
	}

	client("bank", "https://bank.example/logout")
	seq := head(t)
	// Expired at its lifetime (used within the idle timeout of it), and
	// left unused for the idle timeout a minute ago.
	expired := session("s-expired", []string{"bank"}, now.Add(-10*time.Minute), now.Add(-time.Second))
	idled := session("s-idle", []string{"shop", "bank"}, now.Add(-idle-time.Minute), later)
	session("s-shop", []string{"shop"}, now.Add(-idle-time.Minute), later)
	session("s-alone", nil, now.Add(-time.Minute), now.Add(-time.Second))
	live := session("s-live", []string{"bank"}, now.Add(-time.Minute), later)
	sweep(t, 4)

	ended := func(ss *store.Session, reason string) *store.Session {
		c := ss.Clone()
		c.LastUsed, c.EndReason = time.Time{}, reason
		return c
	}
	// Each is due from when it ran out of time, not from the sweep.
	same(t, "the ends pending before the idle session's end", []*store.Session{},
		pending(t, now.Add(-time.Minute)))
	same(t, "the ends pending after the idle session's end", []*store.Session{ended(idled, store.EndIdle)},
		pending(t, now.Add(-time.Minute+time.Microsecond)))
	same(t, "the ends pending", []*store.Session{ended(idled, store.EndIdle), ended(expired, store.EndExpired)},
		pending(t, now.Add(time.Microsecond)))

	events, err := s.ListAudit(ctx, seq, 10)
	wantErr(t, "ListAudit", err, nil)
	var got [][4]string
	for _, e := range events {
		got = append(got, [4]string{e.Type, e.Reason, e.PersonID, e.Details["session"] + " " + e.Details["clients"]})
	}
	slices.SortFunc(got, func(x, y [4]string) int { return strings.Compare(x[3], y[3]) })
	same(t, "the sweep's audit events", [][4]string{
		{store.EventSessionExpired, store.EndExpired, "p-s-expired", "s-expired bank"},
		{store.EventSessionExpired, store.EndIdle, "p-s-idle", "s-idle shop bank"},
	}, got)

	// Swept: nothing finds it, uses it, lists a client in it or ends it
	// again, however soon its person comes back.
	sweep(t, 0)
	for _, id := range []string{expired.ID, idled.ID} {
		_, err := s.GetSession(ctx, id, now)
		wantErr(t, "GetSession of a swept session", err, store.ErrNotFound)
		wantErr(t, "TouchSession of a swept session", s.TouchSession(ctx, id, now), store.ErrNotFound)
		wantErr(t, "AddSessionClient of a swept session", s.AddSessionClient(ctx, id, "tax", nil), store.ErrNotFound)
		if ss, err := s.EndSession(ctx, id, now); ss != nil || err != nil {
			t.Errorf("EndSession of a swept session = %v, %v, want nil, nil", ss, err)
		}
	}
	if got := pending(t, later); len(got) != 2 {
		t.Errorf("%d ends pending after the swept sessions were used and ended again, want 2", len(got))
	}
	if events, err := s.ListAudit(ctx, seq, 10); err != nil || len(events) != 2 {
		t.Errorf("%d audit events after the sweep and the uses, %v; want the sweep's 2", len(events), err)
	}
	if _, err := s.GetSession(ctx, live.ID, now); err != nil {
		t.Errorf("a live session with a client to tell: %v", err)
	}
}

// testEndedAfterTimingOut: a session that ran out of time and is ended
// before the sweep reaches it (by another person's login in the same
// browser, or the end of its person's other sessions) has its end
// recorded as the sweep would have: why, from when, and audited, and
// only when a client in it registered a back-channel logout URI.
func testEndedAfterTimingOut(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	const idle = 30 * time.Minute
	s.SetSessionIdleTimeout(idle)
	for id, uri := range map[string]string{"bank": "https://bank.example/logout", "shop": ""} {
		wantErr(t, "AddClient "+id, s.AddClient(ctx, &store.Client{ID: id, CreatedAt: now, BackchannelLogoutURI: uri}, nil), nil)
	}
	session := func(id, person string, clients []string, used time.Time) *store.Session {
		t.Helper()
		ss := fullSession(t, id)
		ss.PersonID, ss.Clients, ss.CreatedAt, ss.LastUsed = person, clients, now.Add(-2*time.Hour), used
		wantErr(t, "CreateSession "+id, s.CreateSession(ctx, ss), nil)
		return ss
	}
	idled := session("t-idle", "ada", []string{"bank"}, now.Add(-idle-time.Minute))
	session("t-shop", "ada", []string{"shop"}, now.Add(-idle-time.Minute))
	if ss, err := s.EndSession(ctx, idled.ID, now); ss == nil || err != nil {
		t.Fatalf("EndSession = %v, %v", ss, err)
	}
	if ss, err := s.EndSession(ctx, "t-shop", now); ss == nil || err != nil {
		t.Fatalf("EndSession = %v, %v", ss, err)
	}
	others := session("t-other", "grace", []string{"bank"}, now.Add(-idle-2*time.Minute))
	if ended, err := s.EndPersonSessions(ctx, "grace", "", now, nil); len(ended) != 1 || err != nil {
		t.Fatalf("EndPersonSessions = %d sessions, %v", len(ended), err)
	}
	got, err := s.PendingSessionEnds(ctx, now.Add(time.Microsecond), 10)
	wantErr(t, "PendingSessionEnds", err, nil)
	want := []*store.Session{others.Clone(), idled.Clone()}
	for _, w := range want {
		w.LastUsed, w.EndReason = time.Time{}, store.EndIdle
	}
	same(t, "the ends recorded", want, got)
	events, err := s.ListAudit(ctx, 0, 10)
	wantErr(t, "ListAudit", err, nil)
	var sessions []string
	for _, e := range events {
		if e.Type == store.EventSessionExpired && e.Reason == store.EndIdle {
			sessions = append(sessions, e.Details["session"])
		}
	}
	if !slices.Equal(sessions, []string{"t-idle", "t-other"}) {
		t.Errorf("audited the idle ends of %v, want t-idle, t-other", sessions)
	}
}
