package storetest

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func fullAuthRequest(t *testing.T, id string) *store.AuthRequest {
	z := loadZones(t)
	now := base(t)
	return &store.AuthRequest{
		ID:                  id,
		ClientID:            "bank",
		RedirectURI:         "https://bank.example/cb?x=1&y=%20",
		Scope:               []string{"openid", "profile"},
		State:               "st-" + id,
		Nonce:               "n-" + id,
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		ResponseMode:        "query",
		Prompt:              []string{"login", "consent"},
		MaxAge:              -1,
		ACRValues:           []string{"urn:varde:loa:substantial"},
		UILocales:           []string{"nb", "en"},
		LoginHint:           "hint",
		ProviderHint:        "any",
		DPoPJKT:             "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		HintSubject:         "sub-" + id,
		Browser:             "browser-" + id,
		Pushed:              true,
		Used:                false,
		CreatedAt:           now.In(z.la),
		ExpiresAt:           now.Add(90 * time.Second).In(z.tokyo),
	}
}

// expiryChecks returns the instants around expires at which a record must
// be found (ok) or not: expired means now is not before expires. The
// instants are written in zones whose wall clocks disagree with the
// order of the instants, so a backend must compare instants.
func expiryChecks(t *testing.T, expires time.Time) []struct {
	name string
	now  time.Time
	ok   bool
} {
	z := loadZones(t)
	return []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"long before", expires.Add(-time.Hour).In(z.tokyo), true},
		{"1µs before", expires.Add(-time.Microsecond).In(z.la), true},
		{"at expiry", expires.In(z.oslo), false},
		{"1µs after", expires.Add(time.Microsecond).In(time.UTC), false},
		{"long after", expires.Add(24 * time.Hour).In(z.la), false},
	}
}

func testAuthRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			r    *store.AuthRequest
		}{
			{"every field", fullAuthRequest(t, "ar-full")},
			{"nil slices", &store.AuthRequest{ID: "ar-nil", MaxAge: 0, ExpiresAt: now.Add(time.Minute)}},
			{"empty slices", &store.AuthRequest{
				ID: "ar-empty", Scope: []string{}, Prompt: []string{}, ACRValues: []string{},
				UILocales: []string{}, MaxAge: 3600, Used: true, ExpiresAt: now.Add(time.Minute),
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, tt.r), nil)
				got, err := s.GetAuthRequest(ctx, tt.r.ID, now)
				wantErr(t, "GetAuthRequest", err, nil)
				same(t, "auth request", tt.r, got)
			})
		}
	})

	t.Run("expiry", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-exp")
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		for _, c := range expiryChecks(t, r.ExpiresAt) {
			_, err := s.GetAuthRequest(ctx, r.ID, c.now)
			if c.ok {
				wantErr(t, "GetAuthRequest "+c.name, err, nil)
			} else {
				wantErr(t, "GetAuthRequest "+c.name, err, store.ErrNotFound)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-dup")
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		wantErr(t, "CreateAuthRequest duplicate", s.CreateAuthRequest(ctx, &store.AuthRequest{ID: r.ID}), store.ErrConflict)
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		wantErr(t, "GetAuthRequest", err, nil)
		same(t, "auth request after failed create", r, got)
		_, err = s.GetAuthRequest(ctx, "never", now)
		wantErr(t, "GetAuthRequest unknown", err, store.ErrNotFound)
		wantErr(t, "UpdateAuthRequest unknown", s.UpdateAuthRequest(ctx, &store.AuthRequest{ID: "never"}), store.ErrNotFound)
	})

	t.Run("update", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-upd")
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		r.Used = true
		r.Prompt = nil
		r.Scope = append(r.Scope, "email")
		r.ACRValues = []string{}
		r.ExpiresAt = r.ExpiresAt.Add(time.Minute)
		wantErr(t, "UpdateAuthRequest", s.UpdateAuthRequest(ctx, r), nil)
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		wantErr(t, "GetAuthRequest", err, nil)
		same(t, "updated auth request", r, got)
	})

	t.Run("delete", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-del")
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		wantErr(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, r.ID), nil)
		_, err := s.GetAuthRequest(ctx, r.ID, now)
		wantErr(t, "GetAuthRequest deleted", err, store.ErrNotFound)
		wantErr(t, "DeleteAuthRequest again", s.DeleteAuthRequest(ctx, r.ID), nil)
		wantErr(t, "UpdateAuthRequest deleted", s.UpdateAuthRequest(ctx, r), store.ErrNotFound)
	})

	t.Run("use pushed", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-use")
		// Pushed, it meets no browser until it is used (ADR 47).
		r.Pushed, r.Used, r.Browser = true, false, ""
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		later := r.ExpiresAt.Add(10 * time.Minute)
		wantErr(t, "UseAuthRequest", s.UseAuthRequest(ctx, r.ID, "browser-used", later, now), nil)
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		wantErr(t, "GetAuthRequest", err, nil)
		r.Used, r.ExpiresAt, r.Browser = true, later, "browser-used"
		same(t, "used auth request", r, got)
		wantErr(t, "UseAuthRequest again", s.UseAuthRequest(ctx, r.ID, "browser-other", later, now), store.ErrConflict)
		if got, err := s.GetAuthRequest(ctx, r.ID, now); err != nil {
			t.Error(err)
		} else if got.Browser != "browser-used" {
			t.Errorf("after a second use: browser %q, want the first use's", got.Browser)
		}
		wantErr(t, "UseAuthRequest unknown", s.UseAuthRequest(ctx, "never", "browser-used", later, now), store.ErrNotFound)
		wantErr(t, "UseAuthRequest expired", s.UseAuthRequest(ctx, r.ID, "browser-used", later, later), store.ErrNotFound)
		front := fullAuthRequest(t, "ar-front")
		front.Pushed, front.Used = false, false
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, front), nil)
		wantErr(t, "UseAuthRequest not pushed", s.UseAuthRequest(ctx, front.ID, "browser-used", later, now), store.ErrNotFound)
	})

	t.Run("extend", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-extend")
		r.Pushed, r.Used = false, false
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		limit := time.Hour
		bound := r.CreatedAt.Add(limit)
		later := r.ExpiresAt.Add(10 * time.Minute)
		wantErr(t, "ExtendAuthRequest", s.ExtendAuthRequest(ctx, r.ID, r.Browser, later, now, limit), nil)
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		wantErr(t, "GetAuthRequest", err, nil)
		r.ExpiresAt = later
		same(t, "extended auth request", r, got)
		// Forward only: an earlier or the same expiry changes nothing.
		wantErr(t, "ExtendAuthRequest back", s.ExtendAuthRequest(ctx, r.ID, r.Browser, later.Add(-time.Second), now, limit), store.ErrConflict)
		wantErr(t, "ExtendAuthRequest same", s.ExtendAuthRequest(ctx, r.ID, r.Browser, later, now, limit), store.ErrConflict)
		// Bounded: never past its creation plus the limit.
		wantErr(t, "ExtendAuthRequest past the bound", s.ExtendAuthRequest(ctx, r.ID, r.Browser, bound.Add(time.Microsecond), now, limit), store.ErrConflict)
		// Only in its own browser, and never for one with no binding.
		wantErr(t, "ExtendAuthRequest other browser", s.ExtendAuthRequest(ctx, r.ID, "browser-other", bound, now, limit), store.ErrNotFound)
		wantErr(t, "ExtendAuthRequest no browser", s.ExtendAuthRequest(ctx, r.ID, "", bound, now, limit), store.ErrNotFound)
		wantErr(t, "ExtendAuthRequest unknown", s.ExtendAuthRequest(ctx, "never", r.Browser, bound, now, limit), store.ErrNotFound)
		if got, err := s.GetAuthRequest(ctx, r.ID, now); err != nil {
			t.Error(err)
		} else {
			same(t, "auth request after refused extensions", r, got)
		}
		wantErr(t, "ExtendAuthRequest to the bound", s.ExtendAuthRequest(ctx, r.ID, r.Browser, bound, now, limit), nil)
		if got, err := s.GetAuthRequest(ctx, r.ID, now); err != nil {
			t.Error(err)
		} else if !got.ExpiresAt.Equal(bound) {
			t.Errorf("expires at %v, want the bound %v", got.ExpiresAt, bound)
		}
		// Live only: once expired it stays expired.
		wantErr(t, "ExtendAuthRequest expired", s.ExtendAuthRequest(ctx, r.ID, r.Browser, bound, bound, 2*limit), store.ErrNotFound)
		// A request that became a code, or was cancelled, is gone.
		wantErr(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, r.ID), nil)
		wantErr(t, "ExtendAuthRequest deleted", s.ExtendAuthRequest(ctx, r.ID, r.Browser, bound, now, limit), store.ErrNotFound)

		// A pushed request belongs to no browser until it is used.
		pushed := fullAuthRequest(t, "ar-extend-pushed")
		wantErr(t, "CreateAuthRequest pushed", s.CreateAuthRequest(ctx, pushed), nil)
		wantErr(t, "ExtendAuthRequest pushed, unused", s.ExtendAuthRequest(ctx, pushed.ID, pushed.Browser, later, now, limit), store.ErrNotFound)
		wantErr(t, "UseAuthRequest", s.UseAuthRequest(ctx, pushed.ID, "browser-used", pushed.ExpiresAt, now), nil)
		wantErr(t, "ExtendAuthRequest pushed, used", s.ExtendAuthRequest(ctx, pushed.ID, "browser-used", later, now, limit), nil)
		if got, err := s.GetAuthRequest(ctx, pushed.ID, now); err != nil {
			t.Error(err)
		} else if !got.ExpiresAt.Equal(later) {
			t.Errorf("used pushed request expires at %v, want %v", got.ExpiresAt, later)
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		r := fullAuthRequest(t, "ar-use-race")
		r.Pushed, r.Used, r.Browser = true, false, ""
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
		errs := race(contenders, func(i int) error {
			return s.UseAuthRequest(ctx, r.ID, "browser-"+strconv.Itoa(i), r.ExpiresAt.Add(time.Minute), now)
		})
		// The request is bound to the browser of the use that won.
		if i := oneWinner(t, errs, store.ErrConflict); i >= 0 {
			if got, err := s.GetAuthRequest(ctx, r.ID, now); err != nil {
				t.Error(err)
			} else if got.Browser != "browser-"+strconv.Itoa(i) {
				t.Errorf("bound to %q, want the winner's browser-%d", got.Browser, i)
			}
		}
	})
}

func testChallenges(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	exp := now.Add(5 * time.Minute)

	t.Run("put and take", func(t *testing.T) {
		tests := []struct {
			name string
			data []byte
		}{
			{"binary", []byte{0, 1, 2, 0xfe, 0xff, 0}},
			{"json", []byte(`{"challenge":"abc","user_id":"AAEC"}`)},
			{"large", bytes.Repeat([]byte("webauthn"), 4096)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "PutChallenge", s.PutChallenge(ctx, "ch-"+tt.name, tt.data, exp), nil)
				got, err := s.TakeChallenge(ctx, "ch-"+tt.name, now)
				wantErr(t, "TakeChallenge", err, nil)
				same(t, "data", tt.data, got)
				_, err = s.TakeChallenge(ctx, "ch-"+tt.name, now)
				wantErr(t, "TakeChallenge again", err, store.ErrNotFound)
			})
		}
		_, err := s.TakeChallenge(ctx, "never", now)
		wantErr(t, "TakeChallenge unknown", err, store.ErrNotFound)
	})

	t.Run("put replaces", func(t *testing.T) {
		wantErr(t, "PutChallenge", s.PutChallenge(ctx, "ch-re", []byte("first"), exp), nil)
		wantErr(t, "PutChallenge again", s.PutChallenge(ctx, "ch-re", []byte("second"), exp.Add(time.Minute)), nil)
		got, err := s.TakeChallenge(ctx, "ch-re", exp)
		wantErr(t, "TakeChallenge", err, nil)
		same(t, "data", []byte("second"), got)
	})

	t.Run("expiry", func(t *testing.T) {
		for i, c := range expiryChecks(t, exp) {
			name := fmt.Sprintf("ch-exp-%d", i)
			wantErr(t, "PutChallenge", s.PutChallenge(ctx, name, []byte("x"), exp.In(loadZones(t).la)), nil)
			_, err := s.TakeChallenge(ctx, name, c.now)
			if c.ok {
				wantErr(t, "TakeChallenge "+c.name, err, nil)
			} else {
				wantErr(t, "TakeChallenge "+c.name, err, store.ErrNotFound)
			}
		}
	})

	t.Run("concurrent take", func(t *testing.T) {
		wantErr(t, "PutChallenge", s.PutChallenge(ctx, "ch-race", []byte("once"), exp), nil)
		got := make([][]byte, contenders)
		errs := race(contenders, func(i int) error {
			var err error
			got[i], err = s.TakeChallenge(ctx, "ch-race", now)
			return err
		})
		if w := oneWinner(t, errs, store.ErrNotFound); w >= 0 {
			same(t, "winner's data", []byte("once"), got[w])
		}
	})
}

func fullSession(t *testing.T, id string) *store.Session {
	z := loadZones(t)
	now := base(t)
	return &store.Session{
		ID:        id,
		PersonID:  "p1",
		Provider:  "passkey",
		Level:     "high",
		AMR:       []string{"hwk", "user"},
		AuthTime:  now.Add(-time.Second).In(z.la),
		Degraded:  true,
		Clients:   []string{"bank"},
		Continues: "s-first",
		CreatedAt: now,
		ExpiresAt: now.Add(8 * time.Hour).In(z.tokyo),
	}
}

// asRead is ss as GetSession returns it once stored: never used since
// it was created, unless it says otherwise.
func asRead(ss *store.Session) *store.Session {
	c := ss.Clone()
	if c.LastUsed.IsZero() {
		c.LastUsed = c.CreatedAt
	}
	return c
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)

	t.Run("round trip", func(t *testing.T) {
		tests := []struct {
			name string
			s    *store.Session
		}{
			{"every field", fullSession(t, "s-full")},
			{"nil slices", &store.Session{ID: "s-nil", ExpiresAt: now.Add(time.Hour)}},
			{"empty slices", &store.Session{ID: "s-empty", AMR: []string{}, Clients: []string{}, ExpiresAt: now.Add(time.Hour)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, "CreateSession", s.CreateSession(ctx, tt.s), nil)
				got, err := s.GetSession(ctx, tt.s.ID, now)
				wantErr(t, "GetSession", err, nil)
				same(t, "session", asRead(tt.s), got)
			})
		}
	})

	t.Run("list a person's", func(t *testing.T) {
		const idle = 30 * time.Minute
		s.SetSessionIdleTimeout(idle)
		t.Cleanup(func() { s.SetSessionIdleTimeout(0) })
		z := loadZones(t)
		older := &store.Session{ID: "s-list-b", PersonID: "p-list", Provider: "passkey", Level: "high", AMR: []string{"hwk"},
			CreatedAt: now.Add(-2 * time.Hour).In(z.la), ExpiresAt: now.Add(time.Hour).In(z.tokyo), LastUsed: now.Add(-time.Minute)}
		newer := &store.Session{ID: "s-list-a", PersonID: "p-list", Provider: "demo-bankid", Level: "substantial",
			CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Hour), LastUsed: now.Add(-time.Minute).In(z.oslo)}
		expired := &store.Session{ID: "s-list-expired", PersonID: "p-list", CreatedAt: now.Add(-3 * time.Hour), ExpiresAt: now}
		idled := &store.Session{ID: "s-list-idle", PersonID: "p-list", CreatedAt: now.Add(-3 * time.Hour),
			ExpiresAt: now.Add(time.Hour), LastUsed: now.Add(-idle)}
		other := &store.Session{ID: "s-list-other", PersonID: "p-list-other", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		for _, ss := range []*store.Session{newer, expired, idled, older, other} {
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		got, err := s.ListPersonSessions(ctx, "p-list", now)
		wantErr(t, "ListPersonSessions", err, nil)
		same(t, "live sessions, oldest first", []*store.Session{asRead(older), asRead(newer)}, got)
		got, err = s.ListPersonSessions(ctx, "p-list-nobody", now)
		wantErr(t, "ListPersonSessions of nobody", err, nil)
		if len(got) != 0 {
			t.Errorf("ListPersonSessions of nobody = %d sessions, want none", len(got))
		}
		if _, err := s.EndSession(ctx, older.ID, now); err != nil {
			t.Fatal(err)
		}
		got, err = s.ListPersonSessions(ctx, "p-list", now)
		wantErr(t, "ListPersonSessions after an end", err, nil)
		same(t, "live sessions after one ended", []*store.Session{asRead(newer)}, got)
	})

	t.Run("line", func(t *testing.T) {
		root := &store.Session{ID: "s-line-root", PersonID: "p1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		next := &store.Session{ID: "s-line-next", PersonID: "p1", Continues: root.ID, CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}
		wantErr(t, "CreateSession", s.CreateSession(ctx, root), nil)
		live := func(name, root string, at time.Time, want bool) {
			t.Helper()
			got, err := s.SessionLineLive(ctx, root, at)
			wantErr(t, "SessionLineLive "+name, err, nil)
			if got != want {
				t.Errorf("SessionLineLive %s = %v, want %v", name, got, want)
			}
		}
		live("root alone", root.ID, now, true)
		live("unknown", "s-line-unknown", now, false)
		wantErr(t, "CreateSession", s.CreateSession(ctx, next), nil)
		_, err := s.DeleteSession(ctx, root.ID)
		wantErr(t, "DeleteSession", err, nil)
		live("continued", root.ID, now, true)
		live("continued, after the root's expiry", root.ID, now.Add(90*time.Minute), true)
		live("every session expired", root.ID, now.Add(2*time.Hour), false)
		live("by a continuing session's ID", next.ID, now, true)
	})

	t.Run("expiry", func(t *testing.T) {
		ss := fullSession(t, "s-exp")
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		for _, c := range expiryChecks(t, ss.ExpiresAt) {
			_, err := s.GetSession(ctx, ss.ID, c.now)
			if c.ok {
				wantErr(t, "GetSession "+c.name, err, nil)
			} else {
				wantErr(t, "GetSession "+c.name, err, store.ErrNotFound)
			}
		}
	})

	t.Run("last used", func(t *testing.T) {
		z := loadZones(t)
		ss := fullSession(t, "s-used")
		ss.LastUsed = now.Add(time.Minute)
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		same(t, "session created as used later", ss, got)
		later := now.Add(time.Hour + time.Microsecond).In(z.tokyo)
		wantErr(t, "TouchSession", s.TouchSession(ctx, ss.ID, later), nil)
		wantErr(t, "TouchSession earlier", s.TouchSession(ctx, ss.ID, now.Add(30*time.Minute)), nil)
		got, err = s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession after TouchSession", err, nil)
		if !got.LastUsed.Equal(later) {
			t.Errorf("LastUsed = %v, want %v (the latest use, never moved back)", got.LastUsed, later)
		}
		wantErr(t, "TouchSession unknown", s.TouchSession(ctx, "never", now), store.ErrNotFound)
		_, err = s.DeleteSession(ctx, ss.ID)
		wantErr(t, "DeleteSession", err, nil)
		wantErr(t, "TouchSession deleted", s.TouchSession(ctx, ss.ID, now), store.ErrNotFound)
	})

	t.Run("idle", func(t *testing.T) {
		// A session left unused for the idle timeout has ended
		// (SessionLive): GetSession no longer finds it, whoever reads it,
		// from the moment the timeout passes, before any sweep.
		const idle = 30 * time.Minute
		s.SetSessionIdleTimeout(idle)
		t.Cleanup(func() { s.SetSessionIdleTimeout(0) })
		for _, r := range []struct {
			id   string
			used time.Time
		}{{"s-idle-gone", now.Add(-idle)}, {"s-idle-live", now.Add(-idle + time.Microsecond)}, {"s-idle-never", time.Time{}}} {
			ss := fullSession(t, r.id)
			ss.CreatedAt, ss.LastUsed = now.Add(-idle-time.Hour), r.used
			wantErr(t, "CreateSession "+r.id, s.CreateSession(ctx, ss), nil)
			_, err := s.GetSession(ctx, r.id, now)
			if store.SessionLive(ss, now, idle) {
				wantErr(t, "GetSession "+r.id, err, nil)
			} else {
				wantErr(t, "GetSession "+r.id, err, store.ErrNotFound)
			}
		}
		// A session in use at the timeout's end is found until then.
		ss := fullSession(t, "s-idle-later")
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		_, err := s.GetSession(ctx, ss.ID, ss.CreatedAt.Add(idle-time.Microsecond))
		wantErr(t, "GetSession within the idle timeout", err, nil)
		_, err = s.GetSession(ctx, ss.ID, ss.CreatedAt.Add(idle))
		wantErr(t, "GetSession at the idle timeout", err, store.ErrNotFound)
		s.SetSessionIdleTimeout(0)
		_, err = s.GetSession(ctx, ss.ID, ss.CreatedAt.Add(idle))
		wantErr(t, "GetSession with no idle timeout", err, nil)
	})

	t.Run("errors", func(t *testing.T) {
		ss := fullSession(t, "s-dup")
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		wantErr(t, "CreateSession duplicate", s.CreateSession(ctx, &store.Session{ID: ss.ID}), store.ErrConflict)
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		same(t, "session after failed create", asRead(ss), got)
		_, err = s.GetSession(ctx, "never", now)
		wantErr(t, "GetSession unknown", err, store.ErrNotFound)
		wantErr(t, "AddSessionClient unknown", s.AddSessionClient(ctx, "never", "bank", nil), store.ErrNotFound)
	})

	t.Run("add clients", func(t *testing.T) {
		ss := fullSession(t, "s-add")
		ss.Clients = nil
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		for _, c := range []string{"bank", "tax", "bank", "shop", "tax"} {
			wantErr(t, "AddSessionClient "+c, s.AddSessionClient(ctx, ss.ID, c, nil), nil)
		}
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		ss.Clients = []string{"bank", "tax", "shop"}
		same(t, "session after AddSessionClient", asRead(ss), got)
	})

	t.Run("concurrent add clients", func(t *testing.T) {
		ss := fullSession(t, "s-race")
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		errs := race(contenders, func(i int) error { return s.AddSessionClient(ctx, ss.ID, id("rp", i%8), nil) })
		for i, err := range errs {
			wantErr(t, fmt.Sprintf("AddSessionClient %d", i), err, nil)
		}
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		want := []string{"bank"}
		for i := range 8 {
			want = append(want, id("rp", i))
		}
		slices.Sort(want)
		slices.Sort(got.Clients)
		same(t, "clients (none lost, none twice)", want, got.Clients)
	})

	t.Run("create with its audit events", func(t *testing.T) {
		first := &store.AuditEvent{Time: base(t), Type: "person_created", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, first), nil)
		ss := fullSession(t, "s-audited")
		auth := &store.AuditEvent{Time: base(t).Add(time.Second), Type: "authentication", PersonID: "p1", ClientID: "bank",
			Provider: "passkey", Level: "high", Result: store.ResultSuccess, Details: map[string]string{"session": "s-audited"}}
		consent := &store.AuditEvent{Time: base(t).Add(time.Second), Type: "consent", PersonID: "p1", ClientID: "bank",
			Result: store.ResultSuccess}
		wantAuth, wantConsent := *auth, *consent
		wantErr(t, "CreateSession with events", s.CreateSession(ctx, ss, auth, consent), nil)
		if auth.Seq != first.Seq+1 || consent.Seq != first.Seq+2 {
			t.Errorf("event Seqs = %d, %d; want %d, %d (in the order given)", auth.Seq, consent.Seq, first.Seq+1, first.Seq+2)
		}
		wantAuth.Seq, wantAuth.PrevHash, wantAuth.Hash = auth.Seq, auth.PrevHash, auth.Hash
		wantConsent.Seq, wantConsent.PrevHash, wantConsent.Hash = consent.Seq, consent.PrevHash, consent.Hash
		events, err := s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		same(t, "audit log after a session with events", []*store.AuditEvent{first, &wantAuth, &wantConsent}, events)
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		same(t, "session stored with events", asRead(ss), got)

		// A conflict stores nothing and appends nothing; the log goes on
		// from the last event.
		refused := &store.AuditEvent{Time: base(t), Type: "authentication", Result: store.ResultSuccess}
		wantErr(t, "CreateSession with events, ID taken",
			s.CreateSession(ctx, &store.Session{ID: ss.ID, PersonID: "someone else"}, refused), store.ErrConflict)
		got, err = s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession after a conflict", err, nil)
		same(t, "session after a refused create with events", asRead(ss), got)
		last := &store.AuditEvent{Time: base(t), Type: "logout", Result: store.ResultSuccess}
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, last), nil)
		events, err = s.ListAudit(ctx, 0, 100)
		wantErr(t, "ListAudit", err, nil)
		if len(events) != 4 || events[3].Type != "logout" || events[3].Seq != consent.Seq+1 {
			t.Errorf("after a refused create the log holds %d events, last %+v; want 4, the last a logout at seq %d", len(events), events[len(events)-1], consent.Seq+1)
		}
		if err := store.VerifyAuditChain(nil, events); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		ss := fullSession(t, "s-del")
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		wantErr(t, "AddSessionClient", s.AddSessionClient(ctx, ss.ID, "tax", nil), nil)
		ended, err := s.DeleteSession(ctx, ss.ID)
		wantErr(t, "DeleteSession", err, nil)
		want := asRead(ss)
		want.Clients = append(want.Clients, "tax")
		same(t, "the deleted session, as it was when deleted", want, ended)
		_, err = s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession deleted", err, store.ErrNotFound)
		// Whoever deletes it second learns it is gone: a session's end is
		// reported once.
		ended, err = s.DeleteSession(ctx, ss.ID)
		wantErr(t, "DeleteSession again", err, nil)
		if ended != nil {
			t.Errorf("DeleteSession again returned %+v, want nil", ended)
		}
		wantErr(t, "AddSessionClient deleted", s.AddSessionClient(ctx, ss.ID, "bank", nil), store.ErrNotFound)

		// An expired session is deleted and returned all the same.
		old := fullSession(t, "s-del-expired")
		old.ExpiresAt = now.Add(-time.Minute)
		wantErr(t, "CreateSession expired", s.CreateSession(ctx, old), nil)
		ended, err = s.DeleteSession(ctx, old.ID)
		wantErr(t, "DeleteSession expired", err, nil)
		same(t, "the deleted expired session", asRead(old), ended)
	})

	t.Run("end a person's other sessions", func(t *testing.T) {
		mine := []*store.Session{fullSession(t, "s-grace-1"), fullSession(t, "s-grace-2"), fullSession(t, "s-grace-3")}
		theirs := fullSession(t, "s-heidi")
		theirs.PersonID = "heidi"
		for _, ss := range append(mine, theirs) {
			if ss != theirs {
				ss.PersonID = "grace"
			}
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		}
		wantErr(t, "AddSessionClient", s.AddSessionClient(ctx, mine[2].ID, "tax", nil), nil)
		ended, err := s.EndPersonSessions(ctx, "grace", mine[0].ID, now, nil)
		wantErr(t, "EndPersonSessions", err, nil)
		slices.SortFunc(ended, func(a, b *store.Session) int { return strings.Compare(a.ID, b.ID) })
		want := []*store.Session{asRead(mine[1]), asRead(mine[2])}
		want[1].Clients = append(want[1].Clients, "tax")
		same(t, "the sessions EndPersonSessions deleted", want, ended)
		for _, ss := range mine[1:] {
			_, err := s.GetSession(ctx, ss.ID, now)
			wantErr(t, "GetSession of a deleted one", err, store.ErrNotFound)
		}
		for _, ss := range []*store.Session{mine[0], theirs} {
			_, err := s.GetSession(ctx, ss.ID, now)
			wantErr(t, "GetSession of a kept one", err, nil)
		}
		ended, err = s.EndPersonSessions(ctx, "grace", "", now, nil)
		wantErr(t, "EndPersonSessions, none kept", err, nil)
		if len(ended) != 1 || ended[0].ID != mine[0].ID {
			t.Errorf("EndPersonSessions with no exception deleted %v, want %s", ended, mine[0].ID)
		}
		_, err = s.GetSession(ctx, mine[0].ID, now)
		wantErr(t, "GetSession after all were deleted", err, store.ErrNotFound)
		ended, err = s.EndPersonSessions(ctx, "nobody", "", now, nil)
		if err != nil || len(ended) != 0 {
			t.Errorf("EndPersonSessions of a person without sessions = %v, %v", ended, err)
		}
	})

	// Last: its events would change the log the subtests above compare whole.
	t.Run("add a client with its event", func(t *testing.T) {
		ss := fullSession(t, "s-add-event")
		ss.Clients = nil
		wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
		consent := func() *store.AuditEvent {
			return &store.AuditEvent{Time: now, Type: "consent", PersonID: "p-add-event", ClientID: "bank", Result: store.ResultSuccess}
		}
		// Listed or already listed, the event is appended; for a session
		// that is gone, neither is stored.
		wantErr(t, "AddSessionClient with event", s.AddSessionClient(ctx, ss.ID, "bank", consent()), nil)
		wantErr(t, "AddSessionClient listed, with event", s.AddSessionClient(ctx, ss.ID, "bank", consent()), nil)
		wantErr(t, "AddSessionClient gone, with event", s.AddSessionClient(ctx, "never", "bank", consent()), store.ErrNotFound)
		got, err := s.GetSession(ctx, ss.ID, now)
		wantErr(t, "GetSession", err, nil)
		if !slices.Equal(got.Clients, []string{"bank"}) {
			t.Errorf("clients = %q, want [bank]", got.Clients)
		}
		events, err := s.ListPersonAudit(ctx, "p-add-event", 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if len(events) != 2 {
			t.Fatalf("%d consent events stored, want 2", len(events))
		}
		for _, e := range events {
			if e.Seq == 0 || len(e.Hash) == 0 {
				t.Errorf("event not chained: seq %d, hash %x", e.Seq, e.Hash)
			}
		}
	})

	// Last, as the one above: its events would change the log compared
	// whole.
	t.Run("end a person's other sessions with their events", func(t *testing.T) {
		const person = "p-end-events"
		var kept *store.Session
		for i := range 3 {
			ss := fullSession(t, id("s-end-events", i))
			ss.PersonID = person
			wantErr(t, "CreateSession", s.CreateSession(ctx, ss), nil)
			kept = ss
		}
		var counts []int
		events := func(n int) []*store.AuditEvent {
			counts = append(counts, n)
			link := &store.AuditEvent{Time: now, Type: "link", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"sessions_ended": strconv.Itoa(n)}}
			ended := &store.AuditEvent{Time: now, Type: "sessions_ended", PersonID: person, Result: store.ResultSuccess,
				Details: map[string]string{"count": strconv.Itoa(n)}}
			return []*store.AuditEvent{link, ended}
		}
		ended, err := s.EndPersonSessions(ctx, person, kept.ID, now, events)
		wantErr(t, "EndPersonSessions with events", err, nil)
		if len(ended) != 2 {
			t.Fatalf("EndPersonSessions ended %d sessions, want 2", len(ended))
		}
		if len(counts) == 0 || counts[len(counts)-1] != 2 {
			t.Errorf("events was called with %v, want 2 last", counts)
		}
		got, err := s.ListPersonAudit(ctx, person, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		slices.SortFunc(got, func(a, b *store.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
		if len(got) != 2 || got[0].Type != "link" || got[1].Type != "sessions_ended" || got[1].Seq != got[0].Seq+1 {
			t.Fatalf("events stored = %+v, want the link then sessions_ended, one after the other", got)
		}
		if got[0].Details["sessions_ended"] != "2" || got[1].Details["count"] != "2" {
			t.Errorf("events stored say %q and %q sessions ended, want 2", got[0].Details["sessions_ended"], got[1].Details["count"])
		}
		all, err := s.ListAudit(ctx, 0, 1000)
		wantErr(t, "ListAudit", err, nil)
		if err := store.VerifyAuditChain(nil, all); err != nil {
			t.Errorf("VerifyAuditChain: %v", err)
		}

		// None left to end: the events are stored all the same, told 0.
		counts = nil
		ended, err = s.EndPersonSessions(ctx, person, kept.ID, now, events)
		wantErr(t, "EndPersonSessions with events, none to end", err, nil)
		if len(ended) != 0 || len(counts) == 0 || counts[len(counts)-1] != 0 {
			t.Errorf("EndPersonSessions with none to end ended %d, events called with %v; want 0 and 0", len(ended), counts)
		}
		got, err = s.ListPersonAudit(ctx, person, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		if len(got) != 4 {
			t.Errorf("%d events stored after ending none, want 4", len(got))
		}
	})
}
