package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

func publicKey(t *testing.T, kid string, created, expires time.Time) *store.PublicKey {
	return &store.PublicKey{
		KID:              kid,
		Node:             "node-a",
		JWK:              json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"` + kid + `","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE"}`),
		CreatedAt:        created.In(loadZones(t).la),
		FirstPublishedAt: created,
		ExpiresAt:        expires,
	}
}

func testPublicKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	list := func(t *testing.T, at time.Time) []*store.PublicKey {
		t.Helper()
		got, err := s.ListPublicKeys(ctx, at)
		wantErr(t, "ListPublicKeys", err, nil)
		slices.SortFunc(got, func(a, b *store.PublicKey) int { return strings.Compare(a.KID, b.KID) })
		return got
	}

	t.Run("empty", func(t *testing.T) {
		if got := list(t, now); len(got) != 0 {
			t.Errorf("ListPublicKeys on an empty store = %d keys", len(got))
		}
	})

	old := publicKey(t, "k1-old", now.Add(-48*time.Hour), now.Add(-time.Hour))
	current := publicKey(t, "k2-current", now.Add(-24*time.Hour), now.Add(24*time.Hour).In(loadZones(t).tokyo))
	forever := publicKey(t, "k3-forever", now.Add(-time.Hour), time.Time{})

	t.Run("expiry", func(t *testing.T) {
		for _, k := range []*store.PublicKey{old, current, forever} {
			wantErr(t, "PutPublicKey", s.PutPublicKey(ctx, k), nil)
		}
		same(t, "keys now", []*store.PublicKey{current, forever}, list(t, now))
		same(t, "keys long ago", []*store.PublicKey{old, current, forever}, list(t, now.Add(-30*time.Hour)))
		same(t, "keys at the current key's expiry", []*store.PublicKey{forever}, list(t, current.ExpiresAt))
		same(t, "keys 1µs before it", []*store.PublicKey{current, forever},
			list(t, current.ExpiresAt.Add(-time.Microsecond)))
	})

	t.Run("put replaces", func(t *testing.T) {
		repl := publicKey(t, current.KID, now, now.Add(48*time.Hour))
		repl.Node = "node-b"
		repl.JWK = json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
		// What the caller says of the first publish is ignored: the
		// store keeps the CreatedAt the key was first stored with.
		repl.FirstPublishedAt = now
		wantErr(t, "PutPublicKey", s.PutPublicKey(ctx, repl), nil)
		repl.FirstPublishedAt = current.FirstPublishedAt
		same(t, "keys after replace: its last publish moves, its first stays", []*store.PublicKey{repl, forever}, list(t, now))
		current = repl
	})

	t.Run("retire", func(t *testing.T) {
		at := now.Add(time.Minute).In(loadZones(t).oslo)
		ev := &store.AuditEvent{Type: "key_retired", Time: at, Result: store.ResultSuccess, Details: map[string]string{"kid": forever.KID}}
		got, err := s.RetirePublicKey(ctx, forever.KID, at, ev)
		wantErr(t, "RetirePublicKey", err, nil)
		retired := *forever
		retired.RetiredAt = at
		same(t, "the retired key", &retired, got)
		// Listed with its retirement, for the key set to leave out.
		same(t, "keys after retiring one", []*store.PublicKey{current, &retired}, list(t, now))
		events, err := s.ListAudit(ctx, 0, 10)
		wantErr(t, "ListAudit", err, nil)
		if len(events) != 1 || events[0].Type != "key_retired" || events[0].Details["kid"] != forever.KID {
			t.Errorf("audit log after retiring: %+v, want the one key_retired event", events)
		}

		_, err = s.RetirePublicKey(ctx, forever.KID, at.Add(time.Hour), nil)
		wantErr(t, "RetirePublicKey again", err, store.ErrConflict)
		_, err = s.RetirePublicKey(ctx, "no-such-key", at, nil)
		wantErr(t, "RetirePublicKey unknown", err, store.ErrNotFound)
		// A node that still holds the key cannot publish it again.
		again := publicKey(t, forever.KID, at.Add(time.Hour), at.Add(7*24*time.Hour))
		again.Node = "node-c"
		wantErr(t, "PutPublicKey of a retired key", s.PutPublicKey(ctx, again), store.ErrConflict)
		same(t, "keys after a refused put", []*store.PublicKey{current, &retired}, list(t, now))
		if events, _ := s.ListAudit(ctx, 0, 10); len(events) != 1 {
			t.Errorf("refused retirements appended %d events", len(events)-1)
		}
	})

	t.Run("a retired key outlives its expiry", func(t *testing.T) {
		k := publicKey(t, "k4-short", now, now.Add(time.Hour))
		wantErr(t, "PutPublicKey", s.PutPublicKey(ctx, k), nil)
		_, err := s.RetirePublicKey(ctx, k.KID, now, nil)
		wantErr(t, "RetirePublicKey", err, nil)
		later := now.Add(90 * 24 * time.Hour)
		if _, err := s.DeleteExpired(ctx, later); err != nil {
			t.Fatal(err)
		}
		// Expired, so listed nowhere; still refused.
		if got := list(t, later); len(got) != 1 || got[0].KID != forever.KID {
			t.Errorf("keys listed long after: %v, want only the one that never expires", got)
		}
		wantErr(t, "PutPublicKey of a retired key after the sweep", s.PutPublicKey(ctx, publicKey(t, k.KID, later, later.Add(time.Hour))), store.ErrConflict)
		_, err = s.RetirePublicKey(ctx, k.KID, later, nil)
		wantErr(t, "RetirePublicKey of a swept-past key", err, store.ErrConflict)
		err = s.ClaimPublicKey(ctx, publicKey(t, k.KID, later, later.Add(time.Hour)))
		var held *store.KeyHeldError
		if !errors.Is(err, store.ErrConflict) || errors.As(err, &held) {
			t.Errorf("ClaimPublicKey of a retired key: %v, want ErrConflict and no KeyHeldError", err)
		}
	})

	t.Run("claim", func(t *testing.T) {
		claim := func(node string, at time.Time) *store.PublicKey {
			k := publicKey(t, "k5-claimed", at, at.Add(time.Hour))
			k.Node = node
			return k
		}
		held := func(t *testing.T, what string, err error, holder string) {
			t.Helper()
			var h *store.KeyHeldError
			if !errors.As(err, &h) || !errors.Is(err, store.ErrConflict) || h.Key.Node != holder {
				t.Errorf("%s: %v, want a KeyHeldError naming %s that is an ErrConflict", what, err, holder)
			}
		}
		holder := func(t *testing.T, at time.Time) string {
			t.Helper()
			i := slices.IndexFunc(list(t, at), func(k *store.PublicKey) bool { return k.KID == "k5-claimed" })
			if i < 0 {
				return ""
			}
			return list(t, at)[i].Node
		}
		wantErr(t, "ClaimPublicKey of a new key", s.ClaimPublicKey(ctx, claim("claim-a", now)), nil)
		wantErr(t, "ClaimPublicKey again by its node", s.ClaimPublicKey(ctx, claim("claim-a", now.Add(time.Minute))), nil)
		held(t, "ClaimPublicKey by another node", s.ClaimPublicKey(ctx, claim("claim-b", now.Add(2*time.Minute))), "claim-a")
		if got := holder(t, now.Add(2*time.Minute)); got != "claim-a" {
			t.Errorf("key held by %q after a refused claim, want claim-a", got)
		}
		// Its publication expired: another node may take it.
		expired := now.Add(time.Minute + time.Hour)
		wantErr(t, "ClaimPublicKey of an expired publication", s.ClaimPublicKey(ctx, claim("claim-b", expired)), nil)
		held(t, "ClaimPublicKey back by the first node", s.ClaimPublicKey(ctx, claim("claim-a", expired.Add(time.Minute))), "claim-b")
		// A departure from before its last publication does not count;
		// one at or after it does.
		wantErr(t, "RecordNodeLeft", s.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "claim-b", LeftAt: expired.Add(-time.Second), Reason: store.NodeStopped}, nil), nil)
		held(t, "ClaimPublicKey after a departure before the publication", s.ClaimPublicKey(ctx, claim("claim-a", expired.Add(time.Minute))), "claim-b")
		wantErr(t, "RecordNodeLeft", s.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "claim-b", LeftAt: expired, Reason: store.NodeForgotten}, nil), nil)
		wantErr(t, "ClaimPublicKey after its holder left", s.ClaimPublicKey(ctx, claim("claim-a", expired.Add(time.Minute))), nil)
		if got := holder(t, expired.Add(time.Minute)); got != "claim-a" {
			t.Errorf("key held by %q after its claim, want claim-a", got)
		}

		// Several nodes claim one new key at once: one gets it.
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				k := publicKey(t, "k6-raced", now, now.Add(time.Hour))
				k.Node = fmt.Sprintf("race-%d", i)
				errs[i] = s.ClaimPublicKey(ctx, k)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			if err == nil {
				won++
				continue
			}
			var h *store.KeyHeldError
			if !errors.As(err, &h) {
				t.Errorf("claim %d: %v, want nil or a KeyHeldError", i, err)
			}
		}
		if won != 1 {
			t.Errorf("%d of %d claims at once succeeded, want 1", won, len(errs))
		}
	})
}

// testSweeper stores one expired and one live record of each short-lived
// kind, sweeps, and checks that exactly the expired ones are gone.
func testSweeper(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	before := now.Add(-time.Hour) // when the expired records were still live

	for _, r := range []struct {
		name string
		exp  time.Time
	}{{"dead", past}, {"live", future}} {
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, &store.AuthRequest{ID: "ar-" + r.name, ExpiresAt: r.exp}), nil)
		wantErr(t, "PutChallenge", s.PutChallenge(ctx, "ch-"+r.name, []byte(r.name), r.exp), nil)
		wantErr(t, "CreateSession", s.CreateSession(ctx, &store.Session{ID: "s-" + r.name, ExpiresAt: r.exp}), nil)
		wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, &store.AuthCode{Hash: hash("code-" + r.name), ExpiresAt: r.exp}), nil)
		wantErr(t, "CreateToken", s.CreateToken(ctx, &store.Token{Hash: hash("tok-" + r.name), Kind: store.TokenRefresh, ExpiresAt: r.exp}), nil)
		wantErr(t, "Remember", s.Remember(ctx, "jti-"+r.name, r.exp, before), nil)
	}
	// Records that do not expire stay whatever their age.
	wantErr(t, "CreateGrant", s.CreateGrant(ctx, &store.Grant{ID: "g", CreatedAt: before}), nil)
	wantErr(t, "AddClient", s.AddClient(ctx, &store.Client{ID: "c", CreatedAt: before}, nil), nil)
	// A grant goes with the last of its tokens: "spent" has only expired
	// ones, "half" one of each. A revoked grant that never had tokens (a
	// replayed code's tombstone) goes once it is older than TombstoneAge;
	// one with a live token stays until that token goes.
	grantTokens := func(id string, revoked time.Time, exps ...time.Time) {
		t.Helper()
		var toks []*store.Token
		for i, exp := range exps {
			toks = append(toks, &store.Token{Hash: hash(fmt.Sprintf("%s-%d", id, i)), Kind: store.TokenRefresh, GrantID: id, ExpiresAt: exp})
		}
		g := &store.Grant{ID: id, CreatedAt: before.Add(-store.TombstoneAge), RevokedAt: revoked}
		if len(toks) == 0 {
			wantErr(t, "CreateGrant "+id, s.CreateGrant(ctx, g), nil)
			return
		}
		wantErr(t, "CreateGrantTokens "+id, s.CreateGrantTokens(ctx, g, nil, toks...), nil)
	}
	grantTokens("g-spent", time.Time{}, past, past)
	grantTokens("g-half", time.Time{}, past, future)
	grantTokens("g-tomb-old", now.Add(-store.TombstoneAge-time.Second))
	grantTokens("g-tomb-new", now.Add(-time.Minute))
	grantTokens("g-revoked-live", now.Add(-2*store.TombstoneAge), future)

	// Webhook deliveries go FinishedDeliveryAge after they were made, once
	// delivered or abandoned; one still being retried stays.
	old, recent := now.Add(-store.FinishedDeliveryAge-time.Second), now.Add(-time.Hour)
	deliveries := []*store.WebhookDelivery{
		{ID: "wh-delivered-old", CreatedAt: old, DeliveredAt: old.Add(time.Second)},
		{ID: "wh-abandoned-old", CreatedAt: old, AbandonedAt: old.Add(3 * time.Hour)},
		{ID: "wh-retrying-old", CreatedAt: old, NextAttemptAt: now, Attempts: 3},
		{ID: "wh-delivered-recent", CreatedAt: recent, DeliveredAt: recent},
	}
	for _, d := range deliveries {
		d.ClientID, d.URL, d.Event, d.ContentType = "c", "https://c.example/hook", "component_state", "application/secevent+jwt"
	}
	wantErr(t, "EnqueueWebhooks", s.EnqueueWebhooks(ctx, deliveries), nil)

	n, err := s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired", err, nil)
	// Six short-lived records, three expired tokens, two grants and two
	// deliveries.
	if n != 6+3+2+2 {
		t.Errorf("DeleteExpired = %d, want %d", n, 6+3+2+2)
	}
	left, err := s.ListWebhookDeliveries(ctx, "c", 10)
	wantErr(t, "ListWebhookDeliveries", err, nil)
	var ids []string
	for _, d := range left {
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	if want := []string{"wh-delivered-recent", "wh-retrying-old"}; !slices.Equal(ids, want) {
		t.Errorf("deliveries after the sweep: %v, want %v", ids, want)
	}
	for id, want := range map[string]error{"g-spent": store.ErrNotFound, "g-half": nil, "g-tomb-old": store.ErrNotFound,
		"g-tomb-new": nil, "g-revoked-live": nil} {
		_, err := s.GetGrant(ctx, id)
		wantErr(t, "GetGrant "+id+" after the sweep", err, want)
	}

	// The expired records are gone, not just hidden: asked about a time
	// when they were live, the store no longer has them.
	_, err = s.GetAuthRequest(ctx, "ar-dead", before)
	wantErr(t, "GetAuthRequest swept", err, store.ErrNotFound)
	_, err = s.TakeChallenge(ctx, "ch-dead", before)
	wantErr(t, "TakeChallenge swept", err, store.ErrNotFound)
	_, err = s.GetSession(ctx, "s-dead", before)
	wantErr(t, "GetSession swept", err, store.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("code-dead"), before)
	wantErr(t, "RedeemAuthCode swept", err, store.ErrNotFound)
	_, err = s.GetToken(ctx, hash("tok-dead"))
	wantErr(t, "GetToken swept", err, store.ErrNotFound)
	wantErr(t, "Remember swept key", s.Remember(ctx, "jti-dead", future, before), nil)

	_, err = s.GetAuthRequest(ctx, "ar-live", now)
	wantErr(t, "GetAuthRequest live", err, nil)
	_, err = s.TakeChallenge(ctx, "ch-live", now)
	wantErr(t, "TakeChallenge live", err, nil)
	_, err = s.GetSession(ctx, "s-live", now)
	wantErr(t, "GetSession live", err, nil)
	_, err = s.RedeemAuthCode(ctx, hash("code-live"), now)
	wantErr(t, "RedeemAuthCode live", err, nil)
	_, err = s.GetToken(ctx, hash("tok-live"))
	wantErr(t, "GetToken live", err, nil)
	wantErr(t, "Remember live key", s.Remember(ctx, "jti-live", future, now), store.ErrConflict)
	_, err = s.GetGrant(ctx, "g")
	wantErr(t, "GetGrant", err, nil)
	_, err = s.GetClient(ctx, "c")
	wantErr(t, "GetClient", err, nil)

	// jti-dead was stored again above, live until future.
	n, err = s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired again", err, nil)
	if n != 0 {
		t.Errorf("DeleteExpired again = %d, want 0", n)
	}
}

// testSweeperIdleSessions: with an idle timeout set, the sweeper removes
// the sessions left unused that long, however far their lifetime runs,
// and keeps those used since; without one it keeps both.
func testSweeperIdleSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base(t)
	const idle = 30 * time.Minute
	for _, r := range []struct {
		id   string
		used time.Time
	}{{"s-idle", now.Add(-idle)}, {"s-used", now.Add(-idle + time.Microsecond)}} {
		ss := &store.Session{ID: r.id, PersonID: "ada", CreatedAt: now.Add(-2 * time.Hour), LastUsed: r.used, ExpiresAt: now.Add(6 * time.Hour)}
		wantErr(t, "CreateSession "+r.id, s.CreateSession(ctx, ss), nil)
	}
	got := func(t *testing.T, id string) bool {
		t.Helper()
		_, err := s.GetSession(ctx, id, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetSession %s: %v", id, err)
		}
		return err == nil
	}
	n, err := s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired with no idle timeout", err, nil)
	if n != 0 || !got(t, "s-idle") || !got(t, "s-used") {
		t.Errorf("with no idle timeout DeleteExpired = %d and removed a session", n)
	}
	s.SetSessionIdleTimeout(idle)
	n, err = s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired", err, nil)
	if n != 1 {
		t.Errorf("DeleteExpired = %d, want 1", n)
	}
	if got(t, "s-idle") {
		t.Error("a session unused for the idle timeout is still found after the sweep")
	}
	if !got(t, "s-used") {
		t.Error("a session used within the idle timeout was swept")
	}
	if ended, err := s.DeleteSession(ctx, "s-idle"); ended != nil || err != nil {
		t.Errorf("DeleteSession of the swept session = %v, %v, want nil, nil", ended, err)
	}
}
