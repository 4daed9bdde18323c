package flowmem_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/flowmem"
	"github.com/varde-eid/varde/internal/store/sqlstore"
	"github.com/varde-eid/varde/internal/store/storetest"
)

// The flow state over SQLite is a store like any other: it passes the
// whole conformance suite, the flow aggregates from memory.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlstore.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "varde.db"))
		if err != nil {
			t.Fatal(err)
		}
		s := flowmem.Over(db, flowmem.New(flowmem.Options{}))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// The flow records never reach the durable store.
func TestFlowStaysInMemory(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "varde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	s := flowmem.Over(db, flowmem.New(flowmem.Options{}))
	if err := s.CreateAuthRequest(ctx, &store.AuthRequest{ID: "r1", ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChallenge(ctx, "c1", []byte("x"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAuthCode(ctx, &store.AuthCode{Hash: []byte("h1"), ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "jti-1", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetAuthRequest(ctx, "r1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("durable GetAuthRequest: %v, want ErrNotFound", err)
	}
	if _, err := db.TakeChallenge(ctx, "c1", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("durable TakeChallenge: %v, want ErrNotFound", err)
	}
	if _, err := db.RedeemAuthCode(ctx, []byte("h1"), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("durable RedeemAuthCode: %v, want ErrNotFound", err)
	}
	if err := db.Remember(ctx, "jti-1", now.Add(time.Minute), now); err != nil {
		t.Errorf("durable Remember: %v, want nil", err)
	}
	if got := s.Mem().Len(); got != 4 {
		t.Errorf("Len = %d, want 4", got)
	}
}

// write is one write to a Mem, named for messages.
type write struct {
	name string
	do   func() error
}

// otherWrites are one write of each kind of record but challenges, each
// to live an hour from now.
func otherWrites(ctx context.Context, m *flowmem.Mem, now time.Time) []write {
	return []write{
		{"CreateAuthRequest", func() error {
			return m.CreateAuthRequest(ctx, &store.AuthRequest{ID: "r", ExpiresAt: now.Add(time.Hour)})
		}},
		{"CreateAuthCode", func() error {
			return m.CreateAuthCode(ctx, &store.AuthCode{Hash: []byte("h"), ExpiresAt: now.Add(time.Hour)})
		}},
		{"Remember", func() error { return m.Remember(ctx, "jti", now.Add(time.Hour), now) }},
	}
}

func TestFull(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := now
	m := flowmem.New(flowmem.Options{MaxEntries: 4, Now: func() time.Time { return clock }})
	// Two that expire soon, two that live.
	for i, exp := range []time.Duration{time.Second, time.Second, time.Hour, time.Hour} {
		if err := m.PutChallenge(ctx, fmt.Sprint("c", i), nil, now.Add(exp)); err != nil {
			t.Fatal(err)
		}
	}
	writes := append([]write{
		{"PutChallenge", func() error { return m.PutChallenge(ctx, "new", nil, now.Add(time.Hour)) }},
	}, otherWrites(ctx, m, now)...)
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, flowmem.ErrFull) {
			t.Errorf("%s while full: %v, want ErrFull", w.name, err)
		}
	}
	// Replacing a challenge takes no room.
	if err := m.PutChallenge(ctx, "c3", []byte("again"), now.Add(time.Hour)); err != nil {
		t.Errorf("PutChallenge replacing while full: %v", err)
	}
	// Once two have expired, a write sweeps them and fits.
	clock = now.Add(time.Second)
	for _, w := range writes[:2] {
		if err := w.do(); err != nil {
			t.Errorf("%s after expiry: %v", w.name, err)
		}
	}
	if err := writes[2].do(); !errors.Is(err, flowmem.ErrFull) {
		t.Errorf("CreateAuthCode when full again: %v, want ErrFull", err)
	}
	if got := m.Len(); got != 4 {
		t.Errorf("Len = %d, want 4", got)
	}
}

// Challenges have their own bound in each namespace: anyone may begin a
// passkey ceremony without logging in, and a flood of them must not
// crowd out the requests, codes and replay cache of the logins going on,
// nor other kinds of challenge such as upstream logins' state.
func TestChallengesHaveTheirOwnBound(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := now
	m := flowmem.New(flowmem.Options{MaxEntries: 8, MaxChallenges: 2, Now: func() time.Time { return clock }})
	if err := m.PutChallenge(ctx, "passkey:soon", nil, now.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := m.PutChallenge(ctx, "passkey:later", nil, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	err := m.PutChallenge(ctx, "passkey:flood", nil, now.Add(time.Hour))
	if !errors.Is(err, flowmem.ErrFull) || !errors.Is(err, store.ErrFull) {
		t.Fatalf("PutChallenge over MaxChallenges: %v, want ErrFull", err)
	}
	others := append([]write{
		{"PutChallenge in another namespace", func() error { return m.PutChallenge(ctx, "upstream:x", nil, now.Add(time.Hour)) }},
	}, otherWrites(ctx, m, now)...)
	for _, o := range others {
		if err := o.do(); err != nil {
			t.Errorf("%s while passkey challenges are full: %v", o.name, err)
		}
	}
	// Replacing a challenge takes no room; taking one makes room.
	if err := m.PutChallenge(ctx, "passkey:later", []byte("again"), now.Add(time.Hour)); err != nil {
		t.Errorf("PutChallenge replacing: %v", err)
	}
	if _, err := m.TakeChallenge(ctx, "passkey:later", now); err != nil {
		t.Fatal(err)
	}
	if err := m.PutChallenge(ctx, "passkey:next", nil, now.Add(time.Hour)); err != nil {
		t.Errorf("PutChallenge after a take: %v", err)
	}
	// An expired challenge is swept for a write, but at most once a
	// second (the last sweep was for passkey:flood): a flood at the
	// bound does not sweep for every write.
	clock = now.Add(time.Second / 2)
	if err := m.PutChallenge(ctx, "passkey:after-expiry", nil, now.Add(time.Hour)); !errors.Is(err, flowmem.ErrFull) {
		t.Errorf("PutChallenge within a second of the last sweep: %v, want ErrFull", err)
	}
	clock = now.Add(time.Second)
	if err := m.PutChallenge(ctx, "passkey:after-expiry", nil, now.Add(time.Hour)); err != nil {
		t.Errorf("PutChallenge a second later: %v", err)
	}
	if got := m.Len(); got != 6 {
		t.Errorf("Len = %d, want 6", got)
	}
}

func TestRemembersSince(t *testing.T) {
	since := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	m := flowmem.New(flowmem.Options{Since: since})
	var h store.ReplayHorizon = flowmem.Over(nil, m)
	if got := h.RemembersSince(); !got.Equal(since) {
		t.Errorf("RemembersSince = %v, want %v", got, since)
	}
}

// A sweep of more records than it looks at per hold of the lock deletes
// exactly the expired ones while logins go on beside it.
func TestSweepInChunksBesideLogins(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	m := flowmem.New(flowmem.Options{})
	const n = 20000
	for i := range n {
		exp := now.Add(time.Hour)
		if i%2 == 0 {
			exp = now.Add(-time.Second)
		}
		if err := m.Remember(ctx, fmt.Sprint("jti-", i), exp, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				close(done)
				return
			default:
			}
			id := fmt.Sprint("ch-", i)
			if err := m.PutChallenge(ctx, id, []byte("x"), now.Add(time.Minute)); err != nil {
				done <- err
				return
			}
			if _, err := m.TakeChallenge(ctx, id, now); err != nil {
				done <- err
				return
			}
		}
	}()
	swept, err := m.DeleteExpired(ctx, now)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("login beside the sweep: %v", werr)
	}
	if err != nil || swept != n/2 {
		t.Fatalf("DeleteExpired = %d, %v; want %d", swept, err, n/2)
	}
	for i := range n {
		err := m.Remember(ctx, fmt.Sprint("jti-", i), now.Add(time.Hour), now)
		if live := i%2 == 1; live != errors.Is(err, store.ErrConflict) {
			t.Fatalf("jti-%d after the sweep: %v (live %v)", i, err, live)
		}
	}
}

// request is an authorization request as the front channel makes it,
// living an hour from now.
func request(id string, now time.Time) *store.AuthRequest {
	return &store.AuthRequest{
		ID: id, ClientID: "client-0123456789", RedirectURI: "https://rp.example.com/callback",
		Scope: []string{"openid", "profile"}, State: strings.Repeat("s", 43), Nonce: strings.Repeat("n", 43),
		CodeChallenge: strings.Repeat("c", 43), CodeChallengeMethod: "S256", ResponseMode: "query",
		MaxAge: -1, Browser: strings.Repeat("b", 43), CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
}

// A pushed request that is used is bound to the browser that used it
// (ADR 47), and its client's pushed requests then cost what they keep
// with the binding: a client cannot keep more than its bound by
// pushing requests and having them used.
func TestUsedPushedRequestCountsItsBinding(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	pushed := func(id string) *store.AuthRequest {
		r := request(id, now)
		r.Pushed, r.Browser = true, ""
		return r
	}
	used := pushed("a")
	used.Used, used.Browser = true, strings.Repeat("b", 43)
	m := flowmem.New(flowmem.Options{MaxPushedBytes: flowmem.Cost(used) + flowmem.Cost(pushed("b")) - 1, Now: func() time.Time { return now }})
	if err := m.CreateAuthRequest(ctx, pushed("a")); err != nil {
		t.Fatal(err)
	}
	if err := m.UseAuthRequest(ctx, "a", used.Browser, now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if got, err := m.GetAuthRequest(ctx, "a", now); err != nil || got.Browser != used.Browser {
		t.Fatalf("used request: %+v, %v", got, err)
	}
	if err := m.CreateAuthRequest(ctx, pushed("b")); !errors.Is(err, flowmem.ErrFull) {
		t.Errorf("a push beyond the client's bound, counting the binding: %v, want ErrFull", err)
	}
	if err := m.DeleteAuthRequest(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateAuthRequest(ctx, pushed("b")); err != nil {
		t.Errorf("a push once the used request is gone: %v", err)
	}
}

// longest is request with every parameter the authorization endpoint
// takes at its longest.
func longest(id string, now time.Time) *store.AuthRequest {
	r := request(id, now)
	r.State, r.Nonce, r.LoginHint = strings.Repeat("s", 1024), strings.Repeat("n", 512), strings.Repeat("l", 256)
	r.DPoPJKT, r.ProviderHint = strings.Repeat("k", 43), strings.Repeat("p", 63)
	r.Prompt, r.ACRValues = []string{"login", "consent", "select_account"}, []string{"high", "substantial", "low"}
	for i := range 10 {
		r.UILocales = append(r.UILocales, strings.Repeat(string(rune('a'+i)), 35))
	}
	return r
}

// The authorization requests made at the front channel have their own
// bound, in bytes: anyone may make one with a client's public client_id
// and redirect URI, and a flood of them must not crowd out pushed
// requests, codes, the replay cache or challenges.
func TestFrontRequestsHaveTheirOwnBound(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := now
	cost := flowmem.Cost(request("r0", now))
	m := flowmem.New(flowmem.Options{MaxEntries: 16, MaxFrontBytes: 3*cost + cost/2, Now: func() time.Time { return clock }})
	soon := request("r0", now)
	soon.ExpiresAt = now.Add(time.Millisecond)
	for _, r := range []*store.AuthRequest{soon, request("r1", now), request("r2", now)} {
		if err := m.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	err := m.CreateAuthRequest(ctx, request("flood", now))
	if !errors.Is(err, flowmem.ErrFull) || !errors.Is(err, store.ErrFull) {
		t.Fatalf("CreateAuthRequest over MaxFrontBytes: %v, want ErrFull", err)
	}
	pushed := request("pushed", now)
	pushed.Pushed = true
	others := append([]write{
		{"CreateAuthRequest pushed", func() error { return m.CreateAuthRequest(ctx, pushed) }},
		{"PutChallenge", func() error { return m.PutChallenge(ctx, "passkey:x", nil, now.Add(time.Hour)) }},
	}, otherWrites(ctx, m, now)[1:]...) // but the request
	for _, o := range others {
		if err := o.do(); err != nil {
			t.Errorf("%s while front requests are full: %v", o.name, err)
		}
	}
	// An update that grows a request past the bound is refused; one of
	// the same size is not.
	grown := request("r1", now)
	grown.State = strings.Repeat("s", 1024)
	if err := m.UpdateAuthRequest(ctx, grown); !errors.Is(err, flowmem.ErrFull) {
		t.Errorf("UpdateAuthRequest growing past the bound: %v, want ErrFull", err)
	}
	same := request("r1", now)
	same.State = strings.Repeat("t", 43)
	if err := m.UpdateAuthRequest(ctx, same); err != nil {
		t.Errorf("UpdateAuthRequest of the same size: %v", err)
	}
	// A code for a request, a deletion and a removed client each make
	// room; an expired request is swept for a write.
	frees := []write{
		{"CreateAuthCodeForRequest", func() error {
			return m.CreateAuthCodeForRequest(ctx, &store.AuthCode{Hash: []byte("h1"), ExpiresAt: now.Add(time.Hour)}, "r1")
		}},
		{"DeleteAuthRequest", func() error { return m.DeleteAuthRequest(ctx, "r2") }},
		{"DeleteClient", func() error { m.DeleteClient("client-0123456789"); return nil }},
	}
	for i, f := range frees {
		if err := f.do(); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		clock = now.Add(time.Duration(i+1) * time.Second)
		for j := 0; ; j++ {
			err := m.CreateAuthRequest(ctx, request(fmt.Sprint("after-", i, "-", j), now))
			if errors.Is(err, flowmem.ErrFull) {
				break
			}
			if err != nil || j > 3 {
				t.Fatalf("CreateAuthRequest after %s: %v, %d fitted", f.name, err, j)
			}
		}
	}
	st := m.Stats()
	if st.FrontRequests != 3 || st.FrontBytes != 3*cost || st.Requests != 3 {
		t.Errorf("Stats = %d front requests of %d bytes, %d requests; want 3 of %d bytes, 3",
			st.FrontRequests, st.FrontBytes, st.Requests, 3*cost)
	}
	if st.Refused[flowmem.BoundFront] != 5 || st.Refused[flowmem.BoundEntries] != 0 || st.Refused[flowmem.BoundChallenges] != 0 {
		t.Errorf("Stats.Refused = %v, want 5 by front_requests only", st.Refused)
	}
	if _, err := m.DeleteExpired(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.FrontRequests != 0 || st.FrontBytes != 0 || st.Requests != 0 {
		t.Errorf("Stats after the sweep = %d front requests of %d bytes, %d requests; want none",
			st.FrontRequests, st.FrontBytes, st.Requests)
	}
}

// The requests one client pushed have a bound of their own: a client
// whose credentials are stolen, or whose software pushes in a loop,
// fills its own and no more. Other clients' pushed requests, the front
// channel's and every other record go on; a request of the client's
// under way may still be updated; a code, a deletion or a sweep makes
// room again.
func TestPushedRequestsHaveABoundPerClient(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := now
	pushed := func(id, client string) *store.AuthRequest {
		r := request(id, now)
		r.Pushed, r.ClientID = true, client
		return r
	}
	cost := flowmem.Cost(pushed("p0", "flood"))
	m := flowmem.New(flowmem.Options{MaxEntries: 64, MaxPushedBytes: 3*cost + cost/2, Now: func() time.Time { return clock }})
	soon := pushed("p0", "flood")
	soon.ExpiresAt = now.Add(2500 * time.Millisecond)
	for _, r := range []*store.AuthRequest{soon, pushed("p1", "flood"), pushed("p2", "flood")} {
		if err := m.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	err := m.CreateAuthRequest(ctx, pushed("p3", "flood"))
	if !errors.Is(err, flowmem.ErrFull) || !errors.Is(err, store.ErrFull) {
		t.Fatalf("CreateAuthRequest over the client's MaxPushedBytes: %v, want ErrFull", err)
	}
	others := append([]write{
		{"CreateAuthRequest pushed by another client", func() error { return m.CreateAuthRequest(ctx, pushed("q1", "bank")) }},
		{"PutChallenge", func() error { return m.PutChallenge(ctx, "passkey:x", nil, now.Add(time.Hour)) }},
	}, otherWrites(ctx, m, now)...)
	for _, o := range others {
		if err := o.do(); err != nil {
			t.Errorf("%s while one client's pushed requests are full: %v", o.name, err)
		}
	}
	// A login under way is not ended for its client's other requests.
	grown := pushed("p1", "flood")
	grown.HintSubject = strings.Repeat("h", 64)
	if err := m.UpdateAuthRequest(ctx, grown); err != nil {
		t.Errorf("UpdateAuthRequest of a pushed request at the bound: %v", err)
	}
	frees := []write{
		{"CreateAuthCodeForRequest", func() error {
			return m.CreateAuthCodeForRequest(ctx, &store.AuthCode{Hash: []byte("h1"), ExpiresAt: now.Add(time.Hour)}, "p1")
		}},
		{"DeleteAuthRequest", func() error { return m.DeleteAuthRequest(ctx, "p2") }},
		{"a sweep", func() error { return nil }}, // once p0 has expired
	}
	for i, f := range frees {
		if err := f.do(); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		clock = now.Add(time.Duration(i+1) * time.Second)
		if err := m.CreateAuthRequest(ctx, pushed(fmt.Sprint("after-", i), "flood")); err != nil {
			t.Fatalf("CreateAuthRequest after %s: %v", f.name, err)
		}
		if err := m.CreateAuthRequest(ctx, pushed(fmt.Sprint("again-", i), "flood")); !errors.Is(err, flowmem.ErrFull) {
			t.Fatalf("a second CreateAuthRequest after %s: %v, want ErrFull", f.name, err)
		}
	}
	st := m.Stats()
	if st.Refused[flowmem.BoundPushed] != 4 || st.Refused[flowmem.BoundEntries] != 0 || st.Refused[flowmem.BoundFront] != 0 {
		t.Errorf("Stats.Refused = %v, want 4 by pushed_requests only", st.Refused)
	}
	if flowmem.BoundPushed.String() != "pushed_requests" {
		t.Errorf("BoundPushed is %q", flowmem.BoundPushed)
	}
}

// Cost is about the heap a request keeps alive, a little more, never
// less, for an honest request and for the longest one the authorization
// endpoint takes. The strings kept are copies: one cut from a longer
// string (a request's query, up to 64 KB) keeps none of the rest.
func TestCostIsTheHeapARequestKeeps(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes what the heap keeps; run without -race")
	}
	const n = 20000
	for _, tc := range []struct {
		name string
		make func(string, time.Time) *store.AuthRequest
	}{{"honest", request}, {"longest", longest}} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			m := flowmem.New(flowmem.Options{MaxEntries: 2 * n, MaxFrontBytes: 1 << 40})
			heap := func() int {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return int(ms.HeapAlloc)
			}
			before := heap()
			for i := range n {
				r := tc.make(fmt.Sprintf("%022d", i), now)
				// Its state and nonce cut from a query of its own.
				query := strings.Repeat("x", 4096) + r.State + r.Nonce
				r.State, r.Nonce = query[4096:4096+len(r.State)], query[4096+len(r.State):]
				if err := m.CreateAuthRequest(t.Context(), r); err != nil {
					t.Fatal(err)
				}
			}
			per := (heap() - before) / n
			runtime.KeepAlive(m)
			cost := flowmem.Cost(tc.make("0000000000000000000000", now))
			t.Logf("%d bytes of heap a request, Cost %d", per, cost)
			if per > cost || cost > per*3/2 {
				t.Errorf("a request keeps %d bytes of heap; Cost says %d", per, cost)
			}
		})
	}
}
