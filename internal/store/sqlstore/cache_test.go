package sqlstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// TestRecentMatchesDatabase runs auth requests and sessions through
// writes and checks after each that what GetAuthRequest and GetSession
// answer (from memory where cached) is exactly what the database holds.
func TestRecentMatchesDatabase(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	now := time.Date(2026, 5, 17, 12, 0, 0, 123456789, oslo)

	fromDB := func(id string, at time.Time) (*store.AuthRequest, error) {
		return scanAuthRequest(db.st.getAuthRequest.QueryRowContext(ctx, id, micros(at)))
	}
	checkReq := func(step, id string, at time.Time) {
		t.Helper()
		got, gerr := db.GetAuthRequest(ctx, id, at)
		want, werr := fromDB(id, at)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: GetAuthRequest = %+v, %v; database holds %+v, %v", step, got, gerr, want, werr)
		}
	}
	sessFromDB := func(id string, at time.Time) (*store.Session, error) {
		var lastUsed int64
		s, err := scanSessionThen(db.st.getSession.QueryRowContext(ctx, id, micros(at)), &lastUsed)
		if err == nil {
			s.LastUsed = fromMicros(lastUsed)
		}
		return s, err
	}
	checkSess := func(step, id string, at time.Time) {
		t.Helper()
		got, gerr := db.GetSession(ctx, id, at)
		want, werr := sessFromDB(id, at)
		if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: GetSession = %+v, %v; database holds %+v, %v", step, got, gerr, want, werr)
		}
	}

	reqs := []*store.AuthRequest{
		{ID: "plain", ClientID: "bank", Scope: []string{"openid"}, Prompt: nil, ACRValues: []string{},
			MaxAge: -1, Pushed: true, CreatedAt: now, ExpiresAt: now.Add(time.Minute)},
		{ID: "odd", ClientID: "bank", Scope: []string{"openid", "bad\xffutf8"}, State: "s\x00", CreatedAt: now,
			ExpiresAt: now.Add(time.Minute)},
	}
	for _, r := range reqs {
		if err := db.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Scope = append(r.Scope, "changed after create") // the cache keeps its own copy
		checkReq("create "+r.ID, r.ID, now)
	}
	got, err := db.GetAuthRequest(ctx, "plain", now)
	if err != nil {
		t.Fatal(err)
	}
	got.Scope[0] = "changed by a reader" // and hands out copies
	checkReq("after a reader's change", "plain", now)

	upd := *reqs[0]
	upd.Scope, upd.Used, upd.ExpiresAt = []string{"openid", "profile"}, true, now.Add(time.Hour)
	if err := db.UpdateAuthRequest(ctx, &upd); err != nil {
		t.Fatal(err)
	}
	checkReq("update", "plain", now)
	checkReq("expired", "plain", now.Add(2*time.Hour))
	if err := db.UpdateAuthRequest(ctx, &store.AuthRequest{ID: "missing"}); err == nil {
		t.Error("UpdateAuthRequest of a missing request succeeded")
	}
	checkReq("missing", "missing", now)
	for _, id := range []string{"plain", "odd"} {
		if err := db.DeleteAuthRequest(ctx, id); err != nil {
			t.Fatal(err)
		}
		checkReq("delete "+id, id, now)
	}

	s := &store.Session{ID: "s1", PersonID: "p1", Provider: "passkey", Level: "high", AMR: []string{"hwk", "user"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	checkSess("create", "s1", now)
	for _, at := range []time.Duration{2 * time.Minute, time.Minute} {
		if err := db.TouchSession(ctx, "s1", now.Add(at)); err != nil {
			t.Fatal(err)
		}
		checkSess(fmt.Sprintf("touch at +%v", at), "s1", now)
	}
	for _, c := range []string{"bank", "tax", "bank", "bad\xff"} {
		if err := db.AddSessionClient(ctx, "s1", c, nil); err != nil {
			t.Fatal(err)
		}
		checkSess("add client "+c, "s1", now)
	}
	checkSess("expired", "s1", now.Add(2*time.Hour))
	if n, err := db.DeleteExpired(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
	}
	checkSess("swept", "s1", now)
}

// TestRecentForgetsForeignWrites opens one file twice, as two processes
// would (which ADR 5 rules out for nodes, but an operator's tool may
// do): what the other one changed must not stay hidden behind the
// copies in memory once this one writes or its writer checks.
func TestRecentForgetsForeignWrites(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "varde.db")
	a, b := open(t, path), open(t, path)
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := &store.Session{ID: "s-foreign", PersonID: "p1", ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, s.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	// Any write by a checks first.
	if err := a.PutChallenge(ctx, "any", nil, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, s.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session deleted by another process: GetSession = %v, want ErrNotFound", err)
	}

	// An idle writer checks on its own.
	r := &store.AuthRequest{ID: "r-foreign", ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteAuthRequest(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * foreignCheckEvery)
	for {
		_, err := a.GetAuthRequest(ctx, r.ID, now)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request deleted by another process still found after %v: %v", 3*foreignCheckEvery, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPersonsCacheFollowsWrites reads persons while identifiers are added
// to them, then checks that what GetPerson and GetPersonByWebAuthnID
// answer from memory is what the database holds: a read racing a write
// must not leave the old person behind.
func TestPersonsCacheFollowsWrites(t *testing.T) {
	ctx := t.Context()
	db := openTemp(t)
	const people, adds = 4, 20
	for i := range people {
		p := &store.Person{ID: fmt.Sprint("p", i), WebAuthnID: []byte{byte(i), 1, 2, 3},
			Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: fmt.Sprint("v", i)}}}
		if err := db.CreatePerson(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range people {
		id := fmt.Sprint("p", i)
		wg.Go(func() {
			for j := range adds {
				if _, err := db.LinkIdentifiers(ctx, id, []store.Identifier{{Scheme: fmt.Sprint("test:", j), Value: id}}, nil, "", time.Now(), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range 4 * adds {
				if _, err := db.GetPerson(ctx, id); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.GetPersonByWebAuthnID(ctx, []byte{byte(i), 1, 2, 3}); err != nil {
					t.Error(err)
					return
				}
				if _, err := db.GetPersonByIdentifier(ctx, "no:fnr", fmt.Sprint("v", i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range people {
		id := fmt.Sprint("p", i)
		want, err := scanPerson(db.st.getPerson.QueryRowContext(ctx, id))
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Identifiers) != 1+adds {
			t.Fatalf("person %s has %d identifiers in the database, want %d", id, len(want.Identifiers), 1+adds)
		}
		for k := range 2 { // the first read may fill the cache, the second comes from it
			got, err := db.GetPerson(ctx, id)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("GetPerson(%s) read %d = %+v, %v; database holds %+v", id, k, got, err, want)
			}
			got, err = db.GetPersonByWebAuthnID(ctx, want.WebAuthnID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("GetPersonByWebAuthnID(%s) read %d = %+v, %v; database holds %+v", id, k, got, err, want)
			}
			// Every identifier, the ones added while readers ran included.
			for _, ident := range want.Identifiers {
				got, err = db.GetPersonByIdentifier(ctx, ident.Scheme, ident.Value)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("GetPersonByIdentifier(%s %s) read %d = %+v, %v; database holds %+v", ident.Scheme, ident.Value, k, got, err, want)
				}
			}
		}
		got, _ := db.GetPerson(ctx, id)
		got.Identifiers[0].Value = "changed by a reader"
		if again, _ := db.GetPerson(ctx, id); !reflect.DeepEqual(again, want) {
			t.Errorf("a reader's change reached the cache: %+v", again)
		}
	}
}

// TestPersonsAddAfterWrite pins down the rule that keeps a racing read
// out: a person read before a write committed is not kept.
func TestPersonsAddAfterWrite(t *testing.T) {
	c := newPersons()
	stale := &store.Person{ID: "p", WebAuthnID: []byte("h"), GivenName: "old"}
	gen := c.begin()
	c.drop("p") // a write of p (or any person) commits while the read runs
	c.add(gen, stale)
	if got := c.get("p"); got != nil {
		t.Errorf("a read from before a write was kept: %+v", got)
	}
	if got := c.getByHandle([]byte("h")); got != nil {
		t.Errorf("a read from before a write was kept by handle: %+v", got)
	}
	fresh := &store.Person{ID: "p", WebAuthnID: []byte("h"), GivenName: "new",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "1"}, {Scheme: "no:dnr", Value: "\uFFFD"}}}
	c.add(c.begin(), fresh)
	if got := c.getByHandle([]byte("h")); got == nil || got.GivenName != "new" {
		t.Errorf("getByHandle = %+v, want the person read after the write", got)
	}
	if got := c.getByIdentifier("no:fnr", "1"); got == nil || got.GivenName != "new" {
		t.Errorf("getByIdentifier = %+v, want the person read after the write", got)
	}
	if got := c.getByIdentifier("no:dnr", "\uFFFD"); got != nil {
		t.Errorf("an identifier that may have been invalid UTF-8 was indexed: %+v", got)
	}
	// A newer read of the same person replaces the indexes of the older.
	c.add(c.begin(), &store.Person{ID: "p", WebAuthnID: []byte("h2"), Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "2"}}})
	if got := c.getByIdentifier("no:fnr", "1"); got != nil {
		t.Errorf("an identifier the person no longer holds still finds it: %+v", got)
	}
	if got := c.getByHandle([]byte("h")); got != nil {
		t.Errorf("a user handle the person no longer has still finds it: %+v", got)
	}
	c.drop("p")
	if got := c.getByIdentifier("no:fnr", "2"); got != nil {
		t.Errorf("getByIdentifier after drop = %+v", got)
	}
	c.add(c.begin(), fresh)
	c.clear()
	if got := c.get("p"); got != nil {
		t.Errorf("get after clear = %+v", got)
	}
	if got := c.getByIdentifier("no:fnr", "1"); got != nil {
		t.Errorf("getByIdentifier after clear = %+v", got)
	}
}

// TestRecentBounded fills a cache past its bound: it stays bounded and
// keeps answering for what it holds.
func TestRecentBounded(t *testing.T) {
	c := newRecent(func(s *store.Session) time.Time { return s.ExpiresAt }, (*store.Session).Clone)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range recentMax + 10 {
		c.put(fmt.Sprint(i), &store.Session{ID: fmt.Sprint(i), ExpiresAt: exp})
	}
	if n := len(c.m); n > recentMax {
		t.Fatalf("cache holds %d entries, bound %d", n, recentMax)
	}
	last := fmt.Sprint(recentMax + 9)
	if s, found := c.get(last, exp.Add(-time.Hour)); !found || s.ID != last {
		t.Errorf("the entry put last is gone: %v, %v", s, found)
	}
	c.prune(exp)
	if n := len(c.m); n != 0 {
		t.Errorf("after prune at their expiry, %d entries left", n)
	}
}

// TestForeignWritesBeforeTheFirstCheck: what this process reads and
// keeps in memory before its writer has checked once must not hide what
// another process commits afterwards.
func TestForeignWritesBeforeTheFirstCheck(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "varde.db")
	a, b := open(t, path), open(t, path)
	if err := b.CreatePerson(ctx, &store.Person{ID: "p-first", WebAuthnID: []byte("w-first")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetPerson(ctx, "p-first"); err != nil { // kept in a's memory
		t.Fatal(err)
	}
	id := store.Identifier{Scheme: "no:fnr", Value: "15076500565"}
	if _, err := b.LinkIdentifiers(ctx, "p-first", []store.Identifier{id}, nil, "", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	// a's first write checks for other processes' commits.
	if err := a.PutChallenge(ctx, "any", nil, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p, err := a.GetPerson(ctx, "p-first")
	if err != nil || len(p.Identifiers) != 1 || p.Identifiers[0] != id {
		t.Fatalf("person after another process added an identifier: %+v, %v", p, err)
	}
}
