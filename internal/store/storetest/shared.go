package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// RunShared runs the tests of a store that several nodes share: open
// returns two stores over one new, empty database, as two nodes would
// hold them. Each checks that what one node remembers of its own writes
// never hides the other's, and that single-use and read-then-write
// operations hold when the two race.
func RunShared(t *testing.T, open func(t *testing.T) (a, b store.Store)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, a, b store.Store)
	}{
		{"AuditChain", sharedAuditChain},
		{"AuditReadInOrder", sharedAuditReadInOrder},
		{"AuditAddresses", sharedAuditAddresses},
		{"AuditHolds", sharedAuditHolds},
		{"RecordsWrittenByTheOtherNode", sharedRecords},
		{"ReadChangeWrite", sharedReadChangeWrite},
		{"ReadChangeWriteClash", sharedReadChangeWriteClash},
		{"DeclareClient", sharedDeclareClient},
		{"WebhookClaims", sharedWebhookClaims},
		{"WebhookClaimsPerEndpoint", sharedWebhookClaimsPerEndpoint},
		{"KeyClaims", sharedKeyClaims},
		{"SessionEnds", sharedSessionEnds},
		{"SweptSessionEnds", sharedSweptSessionEnds},
		{"IncidentTimeline", sharedIncidentTimeline},
		{"IncidentSnapshot", sharedIncidentSnapshot},
		{"OneCodeTwoNodes", sharedOneCode},
		{"SingleUse", sharedSingleUse},
		{"TokenRetries", tokenRetries},
		{"RecoveryCodes", sharedRecoveryCodes},
		{"Snapshot", snapshotReads},
		{"BlockWhileAddingWaysIn", sharedBlockWhileAddingWaysIn},
		{"SessionWhileWayInGoes", sharedSessionWhileWayInGoes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tt.run(t, a, b)
		})
	}
}

// appendFromBoth has goroutines goroutines on each of a and b append
// each events of type "t" at once. errs yields their errors and is
// closed when they are all done.
func appendFromBoth(ctx context.Context, a, b store.Store, goroutines, each int) (errs <-chan error) {
	var wg sync.WaitGroup
	ch := make(chan error, 2*goroutines)
	for _, db := range []store.Store{a, b} {
		for range goroutines {
			wg.Go(func() {
				for range each {
					if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()}); err != nil {
						ch <- err
						return
					}
				}
			})
		}
	}
	go func() { wg.Wait(); close(ch) }()
	return ch
}

func sharedAuditChain(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const goroutines, each = 8, 25
	for err := range appendFromBoth(ctx, a, b, goroutines, each) {
		t.Error(err)
	}
	all, err := a.ListAudit(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*goroutines*each {
		t.Errorf("%d events, want %d", len(all), 2*goroutines*each)
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
}

// sharedAuditReadInOrder: while both nodes append, a reader going on
// from the last Seq it read (as status counts people affected) never
// finds a gap: an event is seen only once every event before it is, so
// none is passed over.
func sharedAuditReadInOrder(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const goroutines, each = 4, 50
	errs := appendFromBoth(ctx, a, b, goroutines, each)
	var after int64
	// read reads one page and says how many events it held.
	read := func() int {
		evs, err := b.ListAuditRange(ctx, store.AuditQuery{AfterSeq: after, Types: []string{"t"}, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Seq != after+1 {
				t.Fatalf("read event %d after %d: %d events passed over", e.Seq, after, e.Seq-after-1)
			}
			after = e.Seq
		}
		return len(evs)
	}
	for running := true; running; {
		select {
		case err, ok := <-errs:
			if ok {
				t.Error(err)
			}
			running = ok
		default:
		}
		read()
	}
	// The writers are done; read what is left, a page at a time.
	for read() > 0 {
	}
	if after != 2*goroutines*each {
		t.Errorf("read up to %d, want %d", after, 2*goroutines*each)
	}
}

func sharedRecords(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	p := &store.Person{ID: "p-1", GivenName: "Kari", FamilyName: "Nordmann", BirthDate: "1990-01-01",
		Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "01019012345"}}, CreatedAt: now}
	if err := a.CreatePerson(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetPerson(ctx, p.ID); err != nil { // read, as a cache would keep it
		t.Fatal(err)
	}
	if err := b.UpdatePersonProfile(ctx, p.ID, store.Profile{GivenName: "Kari Anne", FamilyName: "Nordmann", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetPerson(ctx, p.ID); err != nil || got.GivenName != "Kari Anne" {
		t.Errorf("node a reads %+v, %v after node b renamed the person", got, err)
	}

	s := &store.Session{ID: "s-1", PersonID: p.ID, Provider: "passkey", Level: "high", AuthTime: now,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, s.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := b.AddSessionClient(ctx, s.ID, "bank", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := a.GetSession(ctx, s.ID, now); err != nil || len(got.Clients) != 1 {
		t.Errorf("node a reads %+v, %v after node b added a client", got, err)
	}
	if _, err := b.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetSession(ctx, s.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("node a still finds the session node b ended (logout): %v", err)
	}

	r := &store.AuthRequest{ID: "r-1", ClientID: "bank", RedirectURI: "https://bank.example/cb", Pushed: true,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := a.CreateAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.UseAuthRequest(ctx, r.ID, "browser-b", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := a.UseAuthRequest(ctx, r.ID, "browser-a", now.Add(time.Minute), now); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a pushed request used at node b was used again at node a: %v", err)
	}
	if got, err := a.GetAuthRequest(ctx, r.ID, now); err != nil {
		t.Error(err)
	} else if got.Browser != "browser-b" {
		t.Errorf("node a reads a request node b used as bound to %q, want node b's browser", got.Browser)
	}
}

func sharedReadChangeWrite(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	// Clients added to one session at both nodes at once: none lost.
	s := &store.Session{ID: "s-2", PersonID: "p-1", Provider: "passkey", Level: "high", AuthTime: now,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	const adders = 8
	var wg sync.WaitGroup
	for i := range adders {
		db := []store.Store{a, b}[i%2]
		wg.Go(func() {
			if err := db.AddSessionClient(ctx, s.ID, "client-"+string(rune('a'+i)), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := b.GetSession(ctx, s.ID, now); err != nil || len(got.Clients) != adders {
		t.Errorf("session after %d concurrent additions: %v, %v", adders, got, err)
	}

	// Two identifiers added to one person at both nodes at once.
	q := &store.Person{ID: "p-2", Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: "02029012345"}}, CreatedAt: now}
	if err := a.CreatePerson(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i, db := range []store.Store{a, b} {
		wg.Go(func() {
			if _, err := db.LinkIdentifiers(ctx, q.ID, []store.Identifier{{Scheme: "test:" + string(rune('a'+i)), Value: "1"}}, nil, "", now, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := a.GetPerson(ctx, q.ID); err != nil || len(got.Identifiers) != 3 {
		t.Errorf("person after two concurrent additions: %v, %v", got, err)
	}

	// Two numbers of one scheme linked to one person at both nodes at
	// once: one link must be refused, or the person holds both.
	for round := range 10 {
		pid := "p-second-" + string(rune('a'+round))
		if err := a.CreatePerson(ctx, &store.Person{ID: pid, Identifiers: []store.Identifier{{Scheme: "no:fnr", Value: pid}}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		for i, db := range []store.Store{a, b} {
			wg.Go(func() {
				_, errs[i] = db.LinkIdentifiers(ctx, pid, []store.Identifier{{Scheme: "no:dnr", Value: fmt.Sprint(pid, "-", i)}}, nil, "", now, nil)
			})
		}
		wg.Wait()
		got, err := b.GetPerson(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Identifiers) != 2 || (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: identifiers %v, links returned %v and %v; want one number added, one link refused", round, got.Identifiers, errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, store.ErrSecondNumber) {
				t.Fatalf("round %d: refused link returned %v, want ErrSecondNumber", round, err)
			}
		}
	}

	// A person's last two passkeys removed at both nodes at once: one
	// removal must be refused, or the person is locked out.
	for round := range 10 {
		pid := "p-del-" + string(rune('a'+round))
		if err := a.CreatePerson(ctx, &store.Person{ID: pid, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		keys := [][]byte{[]byte(pid + "-1"), []byte(pid + "-2")}
		for _, k := range keys {
			if err := a.CreatePasskey(ctx, &store.Passkey{CredentialID: k, PersonID: pid, CreatedAt: now}, 0, ""); err != nil {
				t.Fatal(err)
			}
		}
		errs := make([]error, 2)
		for i, db := range []store.Store{a, b} {
			wg.Go(func() { errs[i] = deletePasskey(ctx, db, pid, keys[i]) })
		}
		wg.Wait()
		left, err := a.ListPasskeys(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: %d passkeys left, removals returned %v and %v; want 1 left, one refused", round, len(left), errs[0], errs[1])
		}
	}

	// A person one below their passkey cap adds one at both nodes at
	// once: one addition must be refused, or the cap is passed.
	for round := range 10 {
		pid := "p-cap-" + string(rune('a'+round))
		if err := a.CreatePerson(ctx, &store.Person{ID: pid, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreatePasskey(ctx, &store.Passkey{CredentialID: []byte(pid + "-0"), PersonID: pid, CreatedAt: now}, 2, ""); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		for i, db := range []store.Store{a, b} {
			wg.Go(func() {
				errs[i] = db.CreatePasskey(ctx, &store.Passkey{CredentialID: fmt.Appendf(nil, "%s-%d", pid, i+1), PersonID: pid, CreatedAt: now}, 2, "")
			})
		}
		wg.Wait()
		held, err := a.ListPasskeys(ctx, pid)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: %d passkeys held, additions returned %v and %v; want 2 held, one refused", round, len(held), errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, store.ErrLimit) {
				t.Fatalf("round %d: refused addition returned %v, want ErrLimit", round, err)
			}
		}
	}
}

// sharedReadChangeWriteClash has both nodes read, change and write the
// same few rows at once, each operation with an audit event, in orders
// that cross, so that their transactions clash (PostgreSQL resolves a
// deadlock or serialization failure by aborting one of them). No
// operation may fail for it, and no change may be lost: the store runs a
// transaction that lost such a clash again, its reads included.
func sharedReadChangeWriteClash(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	const sessions, goroutines, rounds = 3, 4, 12
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("s-clash-%d", i)
		s := &store.Session{ID: ids[i], PersonID: "p-1", Provider: "passkey", Level: "high", AuthTime: now,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines)
	for n, db := range []store.Store{a, b} {
		for g := range goroutines {
			wg.Go(func() {
				for r := range rounds {
					for k := range sessions {
						// One node goes through the sessions upwards, the
						// other downwards.
						i := (g + k) % sessions
						if n == 1 {
							i = sessions - 1 - i
						}
						client := fmt.Sprintf("c-%d-%d-%d", n, g, r)
						e := &store.AuditEvent{Type: "consent", Time: now, ClientID: client}
						if err := db.AddSessionClient(ctx, ids[i], client, e); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, id := range ids {
		got, err := b.GetSession(ctx, id, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Clients) != 2*goroutines*rounds {
			t.Errorf("session %s lists %d clients, want %d", id, len(got.Clients), 2*goroutines*rounds)
		}
	}
}

func sharedDeclareClient(t *testing.T, a, b store.Store) {
	// Nodes starting at once with one configuration file each declare
	// its clients: each new client and each change is stored and
	// audited once, whichever node wins.
	ctx := t.Context()
	now := time.Now().UTC()
	c := &store.Client{ID: "declared-together", Name: "Bank", AuthMethod: store.AuthNone,
		RedirectURIs: []string{"https://bank.example/cb"}, Source: "config", CreatedAt: now}
	var (
		wg      sync.WaitGroup
		changes atomic.Int32
	)
	for round, name := range []string{"Bank", "Bank, renamed"} {
		for i := range 8 {
			db := []store.Store{a, b}[i%2]
			wg.Go(func() {
				d := c.Clone()
				d.Name = name
				changed, err := db.DeclareClient(ctx, d, func(old *store.Client) *store.AuditEvent {
					return &store.AuditEvent{Time: now, Type: "client_declared", ClientID: d.ID, Result: store.ResultSuccess}
				})
				if err != nil {
					t.Error(err)
				}
				if changed {
					changes.Add(1)
				}
			})
		}
		wg.Wait()
		evs, err := b.ListAuditRange(ctx, store.AuditQuery{ClientID: c.ID, Types: []string{"client_declared"}})
		if err != nil {
			t.Fatal(err)
		}
		if n := changes.Load(); n != int32(round+1) || len(evs) != round+1 {
			t.Errorf("round %d: %d declarations changed the client, %d events; want %d and %d", round, n, len(evs), round+1, round+1)
		}
	}
}

func sharedWebhookClaims(t *testing.T, a, b store.Store) {
	// Both nodes claim due deliveries at once, many times over: no
	// delivery may be leased to both, or its receiver gets it twice.
	ctx := t.Context()
	now := time.Now().UTC()
	const n = 200
	var ds []*store.WebhookDelivery
	for i := range n {
		ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("wh-%03d", i), ClientID: "bank", URL: "https://bank.example/status",
			Event: "component_state", Payload: []byte("{}"), ContentType: "application/jwt",
			CreatedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Second)})
	}
	if err := a.EnqueueWebhooks(ctx, ds); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string]string{}
	)
	for i := range 8 {
		db, node := []store.Store{a, b}[i%2], fmt.Sprint("node-", i)
		wg.Go(func() {
			for range 20 {
				got, err := db.ClaimWebhooks(ctx, node, now, now.Add(time.Minute), 5, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range got {
					if other, ok := claimed[d.ID]; ok {
						t.Errorf("delivery %s leased to %s and %s", d.ID, other, node)
					}
					claimed[d.ID] = node
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d of %d deliveries claimed", len(claimed), n)
	}
}

func sharedWebhookClaimsPerEndpoint(t *testing.T, a, b store.Store) {
	// Nodes on both handles (or on one, in Run) claim and finish
	// deliveries of two endpoints at once, over and over, with a limit
	// per endpoint: no endpoint ever has more deliveries leased than the
	// limit, whichever nodes leased them. Held counts what each claim
	// returned until its node starts to finish it, so it never counts
	// more than is leased.
	ctx := t.Context()
	now := time.Now().UTC()
	const perEndpoint, claimers, each = 2, 6, 40
	endpoints := []string{"bank", "tax"}
	var ds []*store.WebhookDelivery
	for _, client := range endpoints {
		for i := range 10 {
			ds = append(ds, &store.WebhookDelivery{ID: fmt.Sprintf("wh-%s-%02d", client, i), ClientID: client,
				URL: "https://" + client + ".example/status", Event: "component_state", Payload: []byte("{}"),
				ContentType: "application/jwt", CreatedAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Second)})
		}
	}
	if err := a.EnqueueWebhooks(ctx, ds); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		held = map[string]int{}
		most = map[string]int{}
	)
	ready := make(chan struct{})
	for i := range claimers {
		db, node := []store.Store{a, b}[i%2], fmt.Sprint("node-", i)
		wg.Go(func() {
			<-ready
			for range each {
				got, err := db.ClaimWebhooks(ctx, node, now, now.Add(time.Minute), 1+i%3, perEndpoint)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range got {
					held[d.ClientID]++
					most[d.ClientID] = max(most[d.ClientID], held[d.ClientID])
				}
				mu.Unlock()
				for _, d := range got {
					mu.Lock()
					held[d.ClientID]--
					mu.Unlock()
					d.Attempts++
					if err := db.FinishWebhookAttempt(ctx, node, d); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	close(ready)
	wg.Wait()
	for _, client := range endpoints {
		if most[client] > perEndpoint {
			t.Errorf("%d deliveries of %s leased at once, want at most %d", most[client], client, perEndpoint)
		}
		if most[client] == 0 {
			t.Errorf("no delivery of %s claimed", client)
		}
	}
}

func sharedKeyClaims(t *testing.T, a, b store.Store) {
	// Two nodes claim one new key at the same moment, round after
	// round: exactly one gets it, and the other learns who holds it.
	ctx := t.Context()
	now := time.Now().UTC()
	for round := range 20 {
		kid := fmt.Sprintf("kid-%02d", round)
		errs := make([]error, 2)
		ready := make(chan struct{})
		var wg sync.WaitGroup
		for i, db := range []store.Store{a, b} {
			wg.Go(func() {
				<-ready
				errs[i] = db.ClaimPublicKey(ctx, &store.PublicKey{KID: kid, Node: fmt.Sprint("node-", i),
					JWK: []byte(`{}`), CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			})
		}
		close(ready)
		wg.Wait()
		var held *store.KeyHeldError
		if (errs[0] == nil) == (errs[1] == nil) || !errors.As(errors.Join(errs...), &held) {
			t.Fatalf("round %d: claims at once = %v, %v, want one nil and one KeyHeldError", round, errs[0], errs[1])
		}
		ks, err := b.ListPublicKeys(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ks, func(k *store.PublicKey) bool { return k.KID == kid })
		if i < 0 || ks[i].Node != held.Key.Node {
			t.Fatalf("round %d: key stored as %v, want it held by %s as the refusal said", round, ks, held.Key.Node)
		}
	}
}

func sharedIncidentTimeline(t *testing.T, a, b store.Store) {
	// Both nodes add to one incident's timeline at once: every entry
	// is kept, numbered 1, 2, 3, … without a gap or a repeat.
	ctx := t.Context()
	now := time.Now().UTC()
	in := &store.Incident{ID: "inc-1", Component: "bankid", StartedAt: now, OpenedAt: now}
	if err := a.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 5
	var wg sync.WaitGroup
	for i := range writers {
		db := []store.Store{a, b}[i%2]
		wg.Go(func() {
			for range each {
				u := &store.IncidentUpdate{IncidentID: in.ID, Time: now, Kind: store.UpdateOperator, Message: "note", Author: "ops"}
				if err := db.AddIncidentUpdate(ctx, u); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := b.GetIncident(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Updates) != writers*each {
		t.Fatalf("%d timeline entries, want %d", len(got.Updates), writers*each)
	}
	for i, u := range got.Updates {
		if u.Seq != i+1 {
			t.Fatalf("entry %d has seq %d", i, u.Seq)
		}
	}
}

// sharedIncidentSnapshot: one node lists incidents while the other
// changes one, each step a change of its fields (Version + 1) and then an
// entry in its timeline. A listing reads the incident and its timeline
// from one snapshot, so it never shows more entries than changes: read
// apart, the timeline could be read after changes the fields were read
// before.
func sharedIncidentSnapshot(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	in := &store.Incident{ID: "inc-snap", Component: "bankid", StartedAt: now, OpenedAt: now}
	if err := a.OpenIncident(ctx, in); err != nil {
		t.Fatal(err)
	}
	base := int64(len(in.Updates)) - in.Version // entries beyond changes at the start
	const steps = 150
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range steps {
			in.PeopleAffected++
			if err := a.UpdateIncident(ctx, in); err != nil {
				t.Error(err)
				return
			}
			u := &store.IncidentUpdate{IncidentID: in.ID, Time: now, Kind: store.UpdateOperator, Message: "note", Author: "ops"}
			if err := a.AddIncidentUpdate(ctx, u); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			if reads == 0 {
				t.Error("no listing made while the incident changed")
			}
			return
		default:
		}
		got, err := b.ListIncidents(ctx, store.IncidentQuery{Component: "bankid"})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.ID == in.ID && int64(len(g.Updates))-g.Version > base {
				t.Fatalf("listing %d: %d timeline entries at version %d: the timeline was read after the fields", reads, len(g.Updates), g.Version)
			}
		}
	}
}

func sharedOneCode(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC()
	for i := range 20 {
		c := &store.AuthCode{Hash: []byte{byte(i), 1, 2, 3}, GrantID: "g", ClientID: "bank", PersonID: "p-1",
			Level: "high", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := a.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		var wins, losses int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, db := range []store.Store{a, b, a, b} {
			wg.Go(func() {
				_, err := db.RedeemAuthCode(ctx, c.Hash, now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
					losses++
				default:
					t.Errorf("redeem: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || losses != 3 {
			t.Fatalf("code %d: %d redemptions won, %d lost; want 1 and 3", i, wins, losses)
		}
	}
}

// sharedSingleUse races each single-use operation from both nodes, two
// callers each: exactly one wins, every other caller learns it lost.
func sharedSingleUse(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t)
	nodes := []store.Store{a, b, a, b}
	if err := a.CreatePerson(ctx, &store.Person{ID: "p-use", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		r := fmt.Sprint(round)
		if err := errors.Join(
			a.Remember(ctx, "seed-"+r, now.Add(time.Minute), now),
			a.PutChallenge(ctx, "ch-"+r, []byte("data"), now.Add(time.Minute)),
			a.ReplaceRecoveryCodes(ctx, "p-use", [][]byte{hash("rc-" + r)}, now),
			a.CreateToken(ctx, &store.Token{Hash: hash("rt-" + r), Kind: store.TokenRefresh, GrantID: "g",
				ClientID: "bank", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}),
		); err != nil {
			t.Fatal(err)
		}
		// After the recovery codes, which would take it with them.
		if _, err := b.IssueDeskCode(ctx, "p-use", hash("desk-"+r), now.Add(time.Hour), now, false, nil); err != nil {
			t.Fatal(err)
		}
		oneWinner(t, race(len(nodes), func(i int) error {
			return nodes[i].Remember(ctx, "jti-"+r, now.Add(time.Minute), now)
		}), store.ErrConflict)
		oneWinner(t, race(len(nodes), func(i int) error {
			_, err := nodes[i].TakeChallenge(ctx, "ch-"+r, now)
			return err
		}), store.ErrNotFound)
		oneWinner(t, race(len(nodes), func(i int) error {
			_, err := nodes[i].UseRecoveryCode(ctx, hash("rc-"+r), now)
			return err
		}), store.ErrNotFound)
		oneWinner(t, race(len(nodes), func(i int) error {
			_, err := nodes[i].UseDeskCode(ctx, hash("desk-"+r), now)
			return err
		}), store.ErrUsed)
		oneWinner(t, race(len(nodes), func(i int) error {
			_, err := nodes[i].RotateToken(ctx, hash("rt-"+r), now, nil)
			return err
		}), store.ErrConflict)
	}
}

// sharedRecoveryCodes replaces one person's recovery codes at both nodes
// at once, many times: afterwards exactly one of the sets is valid, as
// if the replacements had run one after the other.
func sharedRecoveryCodes(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t)
	if err := a.CreatePerson(ctx, &store.Person{ID: "p-rc", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const perSet = 10
	set := func(node, round int) [][]byte {
		var hs [][]byte
		for i := range perSet {
			hs = append(hs, hash(fmt.Sprintf("rc-%d-%d-%d", node, round, i)))
		}
		return hs
	}
	nodes := []store.Store{a, b}
	for round := range 10 {
		for _, err := range race(len(nodes), func(i int) error {
			return nodes[i].ReplaceRecoveryCodes(ctx, "p-rc", set(i, round), now)
		}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		n, err := a.CountRecoveryCodes(ctx, "p-rc")
		if err != nil {
			t.Fatal(err)
		}
		if n != perSet {
			t.Fatalf("round %d: %d recovery codes valid after two replacements of %d each; want one set", round, n, perSet)
		}
	}
}

func sharedSessionEnds(t *testing.T, a, b store.Store) {
	// A session ended on one node; both settle its end at once (the node
	// that ended it, and the other's housekeeping): its logout tokens are
	// queued once.
	ctx := t.Context()
	now := time.Now().UTC()
	for round := range 20 {
		id := fmt.Sprintf("s-%02d", round)
		s := &store.Session{ID: id, PersonID: "p", Provider: "passkey", Level: "high", AMR: []string{"hwk"},
			Clients: []string{"bank"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if ended, err := []store.Store{a, b}[round%2].EndSession(ctx, id, now); err != nil || ended == nil {
			t.Fatalf("EndSession = %v, %v", ended, err)
		}
		var wg sync.WaitGroup
		won := make([]bool, 2)
		for i, db := range []store.Store{a, b} {
			wg.Go(func() {
				d := &store.WebhookDelivery{ID: fmt.Sprintf("%s-%d", id, i), ClientID: "bank", URL: "https://bank.example/logout",
					Event: "backchannel_logout", Payload: []byte("logout_token=x"), ContentType: "application/x-www-form-urlencoded",
					CreatedAt: now, NextAttemptAt: now}
				ok, err := db.SettleSessionEnd(ctx, id, []*store.WebhookDelivery{d})
				if err != nil {
					t.Error(err)
				}
				won[i] = ok
			})
		}
		wg.Wait()
		if won[0] == won[1] {
			t.Fatalf("round %d: settles returned %v, want exactly one true", round, won)
		}
	}
	ds, err := b.ListWebhookDeliveries(ctx, "bank", 0)
	if err != nil || len(ds) != 20 {
		t.Fatalf("%d deliveries queued, %v; want 20", len(ds), err)
	}
	left, err := a.PendingSessionEnds(ctx, now.Add(time.Hour), 100)
	if err != nil || len(left) != 0 {
		t.Fatalf("pending ends left: %d, %v", len(left), err)
	}
}

// sharedAuditAddresses: both nodes append events with addresses, half
// of them past their retention, and both delete the expired addresses
// while they append (ADR 38). Every expired address is deleted once,
// by one node or the other; every other one stays with its own event;
// the chain verifies.
func sharedAuditAddresses(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	const goroutines, each = 4, 24 // each even: half expired
	now := time.Now()
	cut := now.Add(-100 * 24 * time.Hour)
	var wg sync.WaitGroup
	for n, db := range []store.Store{a, b} {
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					at := now
					if i%2 == 0 {
						at = now.Add(-200 * 24 * time.Hour)
					}
					e := &store.AuditEvent{Type: "t", Time: at, Details: map[string]string{store.DetailAddr: fmt.Sprintf("10.%d.%d.%d", n, g, i)}}
					if err := db.AppendAudit(ctx, e); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	var deleted [2]int64
	for n, db := range []store.Store{a, b} {
		wg.Go(func() {
			for range 20 {
				d, err := db.DeleteAuditAddresses(ctx, cut, now)
				if err != nil {
					t.Error(err)
					return
				}
				deleted[n] += d.Deleted
			}
		})
	}
	wg.Wait()
	// What the deleters may have missed while appends went on.
	for n, db := range []store.Store{a, b} {
		d, err := db.DeleteAuditAddresses(ctx, cut, now)
		if err != nil {
			t.Fatal(err)
		}
		deleted[n] += d.Deleted
	}
	all, err := b.ListAudit(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
	old, kept := 0, 0
	for _, e := range all {
		_, has := e.Details[store.DetailAddr]
		switch {
		case e.Time.Before(cut) && has:
			t.Errorf("event %d of %s still has its address", e.Seq, e.Time.Format(time.DateOnly))
		case e.Time.Before(cut):
			old++
		case has:
			kept++
		}
	}
	if want := goroutines * each; old != want || kept != want {
		t.Errorf("%d expired addresses deleted and %d kept, want %d of each", old, kept, want)
	}
	if got := deleted[0] + deleted[1]; got != int64(old) {
		t.Errorf("the nodes deleted %d and %d addresses, %d in all, want %d", deleted[0], deleted[1], got, old)
	}
}

// sharedBlockWhileAddingWaysIn: a node blocks a person while the other
// adds a passkey to them and takes a number off them at the same
// moment (the block and the passkey each lock the person's row, in
// writes that also append to the audit chain). None of them waits for
// ever or fails for the other, and a passkey is stored only if its
// write came before the block's: its event precedes the block's in the
// audit log. The number is removed whichever came first.
func sharedBlockWhileAddingWaysIn(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := base(t)
	const persons = 12
	ev := func(typ, person string) *store.AuditEvent {
		return &store.AuditEvent{Time: now, Type: typ, PersonID: person, Result: store.ResultSuccess}
	}
	for i := range persons {
		p := fullPerson(t, fmt.Sprint("bw-", i))
		wantErr(t, "CreatePerson", a.CreatePerson(ctx, p), nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*persons)
	for i := range persons {
		id := fmt.Sprint("bw-", i)
		// Each node blocks some persons and adds passkeys to others, so
		// that whichever node's write comes first, some blocks come
		// before their passkey and some after.
		blocker, adder := a, b
		if i%2 == 1 {
			blocker, adder = b, a
		}
		wg.Go(func() {
			_, err := blocker.BlockPerson(ctx, id, "stolen phone", now, func(int, int) []*store.AuditEvent {
				return []*store.AuditEvent{ev("person_blocked", id)}
			})
			errs <- err
		})
		wg.Go(func() {
			err := adder.CreatePasskey(ctx, fullPasskey(t, id, id), 5, "", ev("passkey_added", id))
			if errors.Is(err, store.ErrBlocked) {
				err = nil
			}
			errs <- err
		})
		wg.Go(func() {
			_, err := adder.RemoveIdentifier(ctx, id, store.Identifier{Scheme: "passport:NOR", Value: "pp-" + id}, now, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a write racing a block: %v", err)
		}
	}
	for i := range persons {
		id := fmt.Sprint("bw-", i)
		p, err := b.GetPerson(ctx, id)
		wantErr(t, "GetPerson", err, nil)
		if !p.Blocked() || len(p.Identifiers) != 1 {
			t.Errorf("%s after the race: blocked %v, identifiers %v; want blocked with one", id, p.Blocked(), p.Identifiers)
		}
		keys, err := b.ListPasskeys(ctx, id)
		wantErr(t, "ListPasskeys", err, nil)
		events, err := b.ListPersonAudit(ctx, id, 10)
		wantErr(t, "ListPersonAudit", err, nil)
		var blockedAt, addedAt int64
		for _, e := range events {
			switch e.Type {
			case "person_blocked":
				blockedAt = e.Seq
			case "passkey_added":
				addedAt = e.Seq
			}
		}
		if (len(keys) == 1) != (addedAt != 0) || (addedAt != 0 && addedAt > blockedAt) {
			t.Errorf("%s: %d passkeys, added at seq %d, blocked at seq %d; a passkey only from a write before the block", id, len(keys), addedAt, blockedAt)
		}
	}
}

// sharedSweptSessionEnds: both nodes sweep at once while one of them ends
// some of the same sessions, all of which ran out of time with a client
// registered for back-channel logout in them: each session's end is
// recorded once, with one audit event, whoever deleted it.
func sharedSweptSessionEnds(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	const (
		sessions = 120
		idle     = 30 * time.Minute
	)
	for _, db := range []store.Store{a, b} {
		db.SetSessionIdleTimeout(idle)
	}
	if err := a.AddClient(ctx, &store.Client{ID: "bank", CreatedAt: now, BackchannelLogoutURI: "https://bank.example/logout"}, nil); err != nil {
		t.Fatal(err)
	}
	head, err := a.LastAudit(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	var seq int64
	if head != nil {
		seq = head.Seq
	}
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = fmt.Sprintf("s-%03d", i)
		s := &store.Session{ID: ids[i], PersonID: "p", Provider: "passkey", Level: "high", Clients: []string{"bank"},
			AuthTime: now.Add(-2 * time.Hour), CreatedAt: now.Add(-2 * time.Hour), LastUsed: now.Add(-idle - time.Minute), ExpiresAt: now.Add(time.Hour)}
		if i%2 == 0 {
			s.LastUsed, s.ExpiresAt = now.Add(-time.Minute), now.Add(-time.Second)
		}
		if err := []store.Store{a, b}[i%2].CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	errs := race(3, func(i int) error {
		if i < 2 {
			_, err := []store.Store{a, b}[i].DeleteExpired(ctx, now)
			return err
		}
		for _, id := range ids[:sessions/3] {
			if _, err := b.EndSession(ctx, id, now); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ends, err := b.PendingSessionEnds(ctx, now.Add(time.Hour), 2*sessions)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range ends {
		got[e.ID]++
	}
	events, err := a.ListAudit(ctx, seq, 2*sessions)
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int{}
	for _, e := range events {
		if e.Type == store.EventSessionExpired {
			audited[e.Details["session"]]++
		}
	}
	for _, id := range ids {
		if got[id] != 1 || audited[id] != 1 {
			t.Errorf("session %s: %d ends recorded, %d audit events; want one each", id, got[id], audited[id])
		}
	}
	if len(ends) != sessions {
		t.Errorf("%d ends pending, want %d", len(ends), sessions)
	}
}
