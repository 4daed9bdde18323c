package keys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/sqlstore"
)

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSetPublishesEveryNodesKeys(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, _ := Generate(rand.Reader)
	b, _ := Generate(rand.Reader)
	setA := &Set{Store: db, Local: a, Node: "a", Now: clock, PublishTTL: time.Hour}
	setB := &Set{Store: db, Local: b, Node: "b", Now: clock, PublishTTL: time.Hour}
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := setB.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	jwks, err := setA.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 2 || jwks.Keys[0].KeyID != a.KID() || len(jwks.Key(b.KID())) != 1 {
		t.Fatalf("jwks = %+v", jwks.Keys)
	}
	for _, k := range jwks.Keys {
		if !k.IsPublic() {
			t.Fatal("private key in JWKS")
		}
	}

	// A token signed on node b verifies on node a.
	tok, _ := b.SignJWT(map[string]string{"iss": "x"})
	var claims map[string]string
	if err := setA.Verify(ctx, tok, &claims); err != nil || claims["iss"] != "x" {
		t.Fatalf("verify: %v %v", claims, err)
	}

	// A key that is not republished drops out after its TTL.
	now = now.Add(2 * time.Hour)
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	jwks, _ = setA.JWKS(ctx)
	if len(jwks.Keys) != 1 || jwks.Keys[0].KeyID != a.KID() {
		t.Fatalf("after TTL jwks = %+v", jwks.Keys)
	}
	if err := setA.Verify(ctx, tok, &claims); err != ErrUnknownKey {
		t.Fatalf("expired key: err = %v", err)
	}
}

// twoNodes returns the key sets of nodes a and b over one store, on a
// clock the test moves through *now.
func twoNodes(t *testing.T) (setA, setB *Set, now *time.Time) {
	t.Helper()
	db := openStore(t)
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	a, _ := Generate(rand.Reader)
	b, _ := Generate(rand.Reader)
	return &Set{Store: db, Local: a, Node: "a", Now: clock}, &Set{Store: db, Local: b, Node: "b", Now: clock}, &at
}

func TestSetCachesBriefly(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if err := setB.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if jwks, _ := setA.JWKS(ctx); len(jwks.Keys) != 1 {
		t.Fatalf("cache not used: %d keys", len(jwks.Keys))
	}
	*now = now.Add(DefaultCacheTTL)
	if jwks, _ := setA.JWKS(ctx); len(jwks.Keys) != 2 {
		t.Fatalf("cache not refreshed: %d keys", len(jwks.Keys))
	}
}

// TestUntilKnown: a key new to the store is known to every node's JWKS
// only a CacheTTL after it was published; a key the store held already
// (a node restarted with its key) is known at once.
func TestUntilKnown(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	a := setA.Local
	if _, err := setB.JWKS(ctx); err != nil { // node b caches the set without a's key
		t.Fatal(err)
	}
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := setA.UntilKnown(); got != DefaultCacheTTL {
		t.Fatalf("UntilKnown right after the first publish = %v, want %v", got, DefaultCacheTTL)
	}
	*now = now.Add(DefaultCacheTTL - time.Millisecond)
	if jwks, _ := setB.JWKS(ctx); len(jwks.Key(a.KID())) != 0 || setA.UntilKnown() != time.Millisecond {
		t.Fatalf("before the wait ends: b lists a's key = %v, UntilKnown = %v", len(jwks.Key(a.KID())) != 0, setA.UntilKnown())
	}
	*now = now.Add(time.Millisecond)
	if jwks, _ := setB.JWKS(ctx); len(jwks.Key(a.KID())) != 1 || setA.UntilKnown() != 0 {
		t.Fatalf("when the wait ends: b lists a's key = %v, UntilKnown = %v", len(jwks.Key(a.KID())) != 0, setA.UntilKnown())
	}
	restarted := &Set{Store: setA.Store, Local: a, Node: "a", Now: setA.Now}
	if err := restarted.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := restarted.UntilKnown(); got != 0 {
		t.Errorf("UntilKnown after a restart with a published key = %v, want 0", got)
	}
}

func TestVerifyRefusesForeignAndMalformed(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	a, _ := Generate(rand.Reader)
	stranger, _ := Generate(rand.Reader)
	set := &Set{Store: db, Local: a, Node: "a"}
	foreign, _ := stranger.SignJWT(map[string]string{"iss": "y"})
	good, _ := a.SignJWT(map[string]string{"iss": "x"})
	parts := func(s string) []string {
		var out []string
		last := 0
		for i := range len(s) {
			if s[i] == '.' {
				out = append(out, s[last:i])
				last = i + 1
			}
		}
		return append(out, s[last:])
	}
	g := parts(good)
	for name, tok := range map[string]string{
		"foreign key":     foreign,
		"garbage":         "not a jwt",
		"swapped payload": g[0] + "." + parts(foreign)[1] + "." + g[2],
		"alg none":        "eyJhbGciOiJub25lIn0." + g[1] + ".",
		"empty signature": g[0] + "." + g[1] + ".",
	} {
		var out map[string]any
		if err := set.Verify(ctx, tok, &out); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestKeepPublished: the key is published again once a seventh of its
// lifetime has passed since the last Publish, and not before.
func TestKeepPublished(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	k, _ := Generate(rand.Reader)
	s := &Set{Store: db, Local: k, Node: "a", Now: func() time.Time { return now }, PublishTTL: 7 * time.Hour}
	expiry := func() time.Time {
		keys, err := db.ListPublicKeys(ctx, now)
		if err != nil || len(keys) != 1 {
			t.Fatalf("published keys: %d, %v", len(keys), err)
		}
		return keys[0].ExpiresAt
	}
	if err := s.KeepPublished(ctx); err != nil { // never published: publishes
		t.Fatal(err)
	}
	first := expiry()
	now = now.Add(59 * time.Minute)
	if err := s.KeepPublished(ctx); err != nil || !expiry().Equal(first) {
		t.Fatalf("republished within the hour: %v, expiry %v → %v", err, first, expiry())
	}
	now = now.Add(time.Minute)
	if err := s.KeepPublished(ctx); err != nil || !expiry().Equal(now.Add(7*time.Hour)) {
		t.Fatalf("not republished after an hour: %v, expiry %v", err, expiry())
	}
}

// TestRetiredKey: a key an operator retired leaves every node's JWKS
// within a CacheTTL, its own node's included, verifies nothing there any
// more, and cannot be published again: a node restarted with it is
// refused, and has to get a new key.
func TestRetiredKey(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	for _, s := range []*Set{setA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tok, _ := setA.Local.SignJWT(map[string]string{"iss": "a"})
	var claims map[string]string
	for _, s := range []*Set{setA, setB} {
		if err := s.Verify(ctx, tok, &claims); err != nil {
			t.Fatalf("node %s before retirement: %v", s.Node, err)
		}
	}
	if got := setA.Retired(ctx); !got.IsZero() {
		t.Fatalf("Retired before retirement = %v", got)
	}

	retiredAt := now.Add(time.Second)
	if _, err := setA.Store.RetirePublicKey(ctx, setA.Local.KID(), retiredAt, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	for _, s := range []*Set{setA, setB} {
		jwks, err := s.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(jwks.Keys) != 1 || jwks.Keys[0].KeyID != setB.Local.KID() {
			t.Errorf("node %s's JWKS after retirement: %v, want b's key alone", s.Node, kids(jwks.Keys))
		}
		if err := s.Verify(ctx, tok, &claims); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("node %s verifies with the retired key: %v", s.Node, err)
		}
	}
	if got := setA.Retired(ctx); !got.Equal(retiredAt) {
		t.Errorf("a's Retired = %v, want %v", got, retiredAt)
	}
	if got := setB.Retired(ctx); !got.IsZero() {
		t.Errorf("b's Retired = %v, want zero", got)
	}
	// Neither the running node's regular republishing nor a restart with
	// the same key brings it back.
	*now = now.Add(2 * 24 * time.Hour)
	if err := setA.KeepPublished(ctx); !errors.Is(err, ErrRetired) {
		t.Errorf("KeepPublished of a retired key: %v, want ErrRetired", err)
	}
	// Past the retired key's expiry the store no longer lists it; node a
	// still serves and trusts it no more.
	*now = now.Add(DefaultPublishTTL)
	if err := setB.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if jwks, _ := setA.JWKS(ctx); len(jwks.Keys) != 1 || jwks.Keys[0].KeyID != setB.Local.KID() {
		t.Errorf("a's JWKS after the retired key expired: %v, want b's key alone", kids(jwks.Keys))
	}
	if got := setA.Retired(ctx); got.IsZero() {
		t.Error("a's key reads as not retired once it expired")
	}
	restarted := &Set{Store: setA.Store, Local: setA.Local, Node: "a", Now: setA.Now}
	if err := restarted.Publish(ctx); !errors.Is(err, ErrRetired) {
		t.Errorf("Publish of a retired key after a restart: %v, want ErrRetired", err)
	}
	if jwks, _ := setB.JWKS(ctx); len(jwks.Keys) != 1 {
		t.Errorf("b's JWKS after a refused publish: %v", kids(jwks.Keys))
	}
	// With a new key, node a is back.
	fresh, _ := Generate(rand.Reader)
	renewed := &Set{Store: setA.Store, Local: fresh, Node: "a", Now: setA.Now}
	if err := renewed.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := renewed.Retired(ctx); !got.IsZero() {
		t.Errorf("a new key reads as retired: %v", got)
	}
}

func kids(ks []jose.JSONWebKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.KeyID)
	}
	return out
}

// TestRetiredKeySignsNothing: a node stops signing with its key as soon
// as its key set reads that the key was retired, without a restart,
// while the other node's key still signs.
func TestRetiredKeySignsNothing(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	for _, s := range []*Set{setA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := setA.Store.RetirePublicKey(ctx, setA.Local.KID(), *now, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if tok, err := setA.Local.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrRetired) {
		t.Errorf("a signs with its retired key: %q, %v; want ErrRetired", tok, err)
	}
	if _, err := setA.Local.SignTyped(map[string]string{"iss": "a"}, "logout+jwt"); !errors.Is(err, ErrRetired) {
		t.Errorf("a signs a logout token with its retired key: %v; want ErrRetired", err)
	}
	tok, err := setB.Local.SignJWT(map[string]string{"iss": "b"})
	if err != nil {
		t.Fatalf("b cannot sign: %v", err)
	}
	var claims map[string]string
	if err := setA.Verify(ctx, tok, &claims); err != nil {
		t.Errorf("a does not verify b's token: %v", err)
	}
}

// conflicting is the real store whose PutPublicKey answers
// store.ErrConflict, as a backend may for a cause other than retirement.
type conflicting struct{ *sqlstore.DB }

func (c conflicting) PutPublicKey(ctx context.Context, k *store.PublicKey) error {
	return fmt.Errorf("put public key %s: %w", k.KID, store.ErrConflict)
}

func (c conflicting) ClaimPublicKey(ctx context.Context, k *store.PublicKey) error {
	return c.PutPublicKey(ctx, k)
}

// TestPublishConflictNotRetired: a conflict from the store on publishing
// a key the store does not hold as retired is an error, not a
// retirement: the node keeps signing and Retired stays zero. A key
// retired and past its expiry still reads as retired.
func TestPublishConflictNotRetired(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	db := setA.Store.(*sqlstore.DB)
	flaky := &Set{Store: conflicting{db}, Local: setA.Local, Node: "a", Now: setA.Now}
	err := flaky.Publish(ctx)
	if err == nil || errors.Is(err, ErrRetired) || !errors.Is(err, store.ErrConflict) {
		t.Errorf("Publish with a conflict on a live key: %v, want the conflict and not ErrRetired", err)
	}
	if _, err := flaky.Local.SignJWT(map[string]string{"iss": "a"}); err != nil {
		t.Errorf("a stops signing after a conflict on a live key: %v", err)
	}
	if got := flaky.Retired(ctx); !got.IsZero() {
		t.Errorf("Retired after a conflict on a live key = %v, want zero", got)
	}

	if _, err := db.RetirePublicKey(ctx, setA.Local.KID(), *now, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(2 * DefaultPublishTTL)
	restarted := &Set{Store: conflicting{db}, Local: setA.Local, Node: "a", Now: setA.Now}
	if err := restarted.Publish(ctx); !errors.Is(err, ErrRetired) {
		t.Errorf("Publish of a key retired and expired: %v, want ErrRetired", err)
	}
	if _, err := restarted.Local.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrRetired) {
		t.Errorf("a signs with its retired key: %v, want ErrRetired", err)
	}
}

// TestPublishKeepsSetForOutage: publishing the local key again makes
// the next JWKS read the store, but a store that then fails still gets
// the other nodes' keys last read, not the local key alone.
func TestPublishKeepsSetForOutage(t *testing.T) {
	ctx := context.Background()
	setA, setB, _ := twoNodes(t)
	for _, s := range []*Set{setA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if jwks, err := setA.JWKS(ctx); err != nil || len(jwks.Keys) != 2 {
		t.Fatalf("JWKS = %d keys, %v; want both nodes'", len(jwks.Keys), err)
	}
	if err := setA.Publish(ctx); err != nil { // as KeepPublished does each day
		t.Fatal(err)
	}
	if err := setA.Store.(*sqlstore.DB).Close(); err != nil {
		t.Fatal(err)
	}
	jwks, err := setA.JWKS(ctx)
	if err == nil {
		t.Fatal("JWKS from a closed store: no error")
	}
	if len(jwks.Key(setB.Local.KID())) != 1 || len(jwks.Key(setA.Local.KID())) != 1 {
		t.Errorf("JWKS while the store fails after a publish = %d keys, want both nodes' last read", len(jwks.Keys))
	}
}

// TestUntilKnownAfterCrash: a node that published a new key and was
// restarted before every node's key set could hold it (it crashed half
// way through a rotation) still waits out the rest of that time.
func TestUntilKnownAfterCrash(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(2 * time.Second)
	restarted := &Set{Store: setA.Store, Local: setA.Local, Node: "a", Now: setA.Now}
	if err := restarted.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := restarted.UntilKnown(), DefaultCacheTTL-2*time.Second; got != want {
		t.Errorf("UntilKnown after a restart %v after the key's first publish = %v, want %v", 2*time.Second, got, want)
	}
}

// countingKeys counts the reads of the store it wraps.
type countingKeys struct {
	store.PublicKeys
	reads int
}

func (c *countingKeys) ListPublicKeys(ctx context.Context, now time.Time) ([]*store.PublicKey, error) {
	c.reads++
	return c.PublicKeys.ListPublicKeys(ctx, now)
}

// TestJWKSReadsFailingStoreOncePerSecond: while the store fails, the
// key set reads it at most once a second and answers the callers in
// between with what it read last and the error, so callers do not each
// wait for a failing read of their own.
func TestJWKSReadsFailingStoreOncePerSecond(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	db := setA.Store.(*sqlstore.DB)
	counted := &countingKeys{PublicKeys: db}
	setA.Store = counted
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	before := counted.reads
	for range 10 {
		jwks, err := setA.JWKS(ctx)
		if err == nil || len(jwks.Key(setA.Local.KID())) != 1 {
			t.Fatalf("JWKS from a failing store = %d keys, %v; want the set last read and an error", len(jwks.Keys), err)
		}
	}
	if got := counted.reads - before; got != 1 {
		t.Errorf("10 JWKS within a second of a failing store read it %d times, want once", got)
	}
	*now = now.Add(time.Second)
	if _, err := setA.JWKS(ctx); err == nil || counted.reads-before != 2 {
		t.Errorf("a second later: %d reads, err %v; want a second read and its error", counted.reads-before, err)
	}
}

// TestStaleSetFailsClosed: a key retired while this node cannot read the
// store still verifies here, from the set last read, for at most
// MaxStale; then the node verifies nothing and serves no key until the
// store can be read again.
func TestStaleSetFailsClosed(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	for _, s := range []*Set{setA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := setB.Local.SignJWT(map[string]string{"iss": "b"})
	if err != nil {
		t.Fatal(err)
	}
	own, err := setA.Local.SignJWT(map[string]string{"iss": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if jwks, err := setA.JWKS(ctx); err != nil || len(jwks.Keys) != 2 {
		t.Fatalf("JWKS = %d keys, %v; want both nodes'", len(jwks.Keys), err)
	}
	// Another node retires b's key; then a's store fails before a reads
	// it again.
	if _, err := setB.Store.RetirePublicKey(ctx, setB.Local.KID(), *now, nil); err != nil {
		t.Fatal(err)
	}
	if err := setA.Store.(*sqlstore.DB).Close(); err != nil {
		t.Fatal(err)
	}
	var claims map[string]string
	*now = now.Add(DefaultMaxStale)
	if err := setA.Verify(ctx, tok, &claims); err != nil {
		t.Errorf("within MaxStale of the last read: %v, want the set last read", err)
	}
	*now = now.Add(time.Second)
	for _, tk := range []string{tok, own} {
		if err := setA.Verify(ctx, tk, &claims); !errors.Is(err, ErrStale) {
			t.Errorf("Verify past MaxStale = %v, want ErrStale", err)
		}
	}
	jwks, err := setA.JWKS(ctx)
	if !errors.Is(err, ErrStale) || len(jwks.Keys) != 0 {
		t.Errorf("JWKS past MaxStale = %v, %v; want no key and ErrStale", kids(jwks.Keys), err)
	}
}

// TestLapsedPublicationSignsNothing: a node that cannot publish its key
// again (the store refuses the write but can be read) signs until
// PublishTTL after its last publish, when the other nodes' key sets drop
// the key; from then on it signs nothing and says so, until a publish
// succeeds.
func TestLapsedPublicationSignsNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	db, err := sqlstore.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, _ := Generate(rand.Reader)
	b, _ := Generate(rand.Reader)
	setA := &Set{Store: db, Local: a, Node: "a", Now: clock, PublishTTL: 7 * time.Hour}
	setB := &Set{Store: db, Local: b, Node: "b", Now: clock, PublishTTL: 7 * time.Hour}
	for _, s := range []*Set{setA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, stmt := range []string{
		"CREATE TRIGGER keys_no_insert BEFORE INSERT ON public_keys BEGIN SELECT RAISE(ABORT, 'read-only'); END",
		"CREATE TRIGGER keys_no_update BEFORE UPDATE ON public_keys BEGIN SELECT RAISE(ABORT, 'read-only'); END",
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	now = now.Add(7*time.Hour - time.Second)
	if err := setA.KeepPublished(ctx); err == nil {
		t.Fatal("KeepPublished into a store that refuses the write: no error")
	}
	if got := setA.Lapsed(); !got.IsZero() {
		t.Errorf("Lapsed before PublishTTL = %v, want zero", got)
	}
	if _, err := a.SignJWT(map[string]string{"iss": "a"}); err != nil {
		t.Errorf("sign before PublishTTL: %v", err)
	}
	now = now.Add(time.Second)
	if err := setA.KeepPublished(ctx); err == nil {
		t.Fatal("KeepPublished into a store that refuses the write: no error")
	}
	// b no longer lists a's key.
	if jwks, _ := setB.JWKS(ctx); len(jwks.Key(a.KID())) != 0 {
		t.Fatalf("b's JWKS past a's publish TTL still lists a's key")
	}
	want := now
	if got := setA.Lapsed(); !got.Equal(want) {
		t.Errorf("Lapsed = %v, want %v", got, want)
	}
	if tok, err := a.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrLapsed) {
		t.Errorf("sign past PublishTTL = %q, %v; want ErrLapsed", tok, err)
	}
	if _, err := raw.Exec("DROP TRIGGER keys_no_insert; DROP TRIGGER keys_no_update"); err != nil {
		t.Fatal(err)
	}
	if err := setA.KeepPublished(ctx); err != nil {
		t.Fatal(err)
	}
	if got := setA.Lapsed(); !got.IsZero() {
		t.Errorf("Lapsed after a publish = %v, want zero", got)
	}
	if _, err := a.SignJWT(map[string]string{"iss": "a"}); err != nil {
		t.Errorf("sign after a publish: %v", err)
	}
}

// TestLapsedSignerRefusesUnlooked: the Signer refuses once its key's
// publication runs out, also when nothing asked the Set since (no
// housekeeping, /readyz or JWKS request), and signs again after a
// publish.
func TestLapsedSignerRefusesUnlooked(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	a, _ := Generate(rand.Reader)
	set := &Set{Store: db, Local: a, Node: "a", Now: func() time.Time { return now }, PublishTTL: 7 * time.Hour}
	if err := set.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(7*time.Hour - time.Nanosecond)
	if _, err := a.SignJWT(map[string]string{"iss": "a"}); err != nil {
		t.Errorf("sign just before PublishTTL: %v", err)
	}
	now = now.Add(time.Nanosecond)
	if tok, err := a.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrLapsed) {
		t.Errorf("sign at PublishTTL, the Set not asked since = %q, %v; want ErrLapsed", tok, err)
	}
	if err := set.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SignJWT(map[string]string{"iss": "a"}); err != nil {
		t.Errorf("sign after a publish: %v", err)
	}
}

// TestSharedWithClears: SharedWith names another node that published
// the local key only while that node holds it; KeepPublished leaves the
// key to it meanwhile, and claims it back once it has left.
func TestSharedWithClears(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	db := setA.Store.(*sqlstore.DB)
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	// a is forgotten while it runs, and c starts with its key file.
	if err := db.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "a", LeftAt: *now, Reason: store.NodeForgotten}, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Second)
	setC := &Set{Store: db, Local: setA.Local, Node: "c", Now: setA.Now}
	if err := setC.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if other, _ := setA.SharedWith(); other != "c" {
		t.Fatalf("SharedWith once c published a's key = %q, want c", other)
	}
	if err := setA.KeepPublished(ctx); err != nil {
		t.Errorf("KeepPublished while c holds the key: %v, want nil", err)
	}
	if other, _ := setA.SharedWith(); other != "c" {
		t.Errorf("SharedWith after KeepPublished while c holds the key = %q, want c", other)
	}
	*now = now.Add(time.Second)
	if err := db.RecordNodeLeft(ctx, &store.NodeDeparture{Node: "c", LeftAt: *now, Reason: store.NodeStopped}, nil); err != nil {
		t.Fatal(err)
	}
	if err := setA.KeepPublished(ctx); err != nil {
		t.Fatalf("KeepPublished once c left: %v", err)
	}
	if other, _ := setA.SharedWith(); other != "" {
		t.Errorf("SharedWith once c left and a published again = %q, want none", other)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if other, _ := setA.SharedWith(); other != "" {
		t.Errorf("SharedWith after a read of the store = %q, want none", other)
	}
}

// A node's RSA key, published through a Set of its own over the same
// store, is in every node's JWKS with alg RS256 and use sig, and what it
// signs verifies (an id_token_hint of an RS256 client); retired, it is
// in no JWKS and verifies nothing.
func TestRSAKeyInJWKSUntilRetired(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	rsaSigner, err := New(testRSAKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaA := &Set{Store: setA.Store, Local: rsaSigner, Node: "a", Now: setA.Now}
	for _, s := range []*Set{setA, rsaA, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	jwks, err := setB.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := jwks.Key(rsaSigner.KID())
	if len(got) != 1 || got[0].Algorithm != "RS256" || got[0].Use != "sig" || len(jwks.Keys) != 3 {
		t.Fatalf("node b's JWKS: %v, want a's two keys and its own, a's RSA key with alg RS256", kids(jwks.Keys))
	}
	tok, err := rsaSigner.SignJWT(map[string]string{"iss": "a"})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]string
	for _, s := range []*Set{setA, setB} {
		if err := s.Verify(ctx, tok, &claims); err != nil || claims["iss"] != "a" {
			t.Fatalf("node %s verifies an RS256 token: %v %v", s.Node, claims, err)
		}
	}

	if _, err := setA.Store.RetirePublicKey(ctx, rsaSigner.KID(), now.Add(time.Second), nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	for _, s := range []*Set{setA, setB} {
		jwks, _ := s.JWKS(ctx)
		if len(jwks.Key(rsaSigner.KID())) != 0 || len(jwks.Keys) != 2 {
			t.Errorf("node %s's JWKS after the RSA key was retired: %v", s.Node, kids(jwks.Keys))
		}
		if err := s.Verify(ctx, tok, &claims); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("node %s verifies with a retired RSA key: err = %v", s.Node, err)
		}
	}
	if at := rsaA.Retired(ctx); at.IsZero() {
		t.Fatal("the RSA key's own set does not read it as retired")
	}
	if _, err := rsaSigner.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrRetired) {
		t.Fatalf("a retired RSA key signs: err = %v", err)
	}
	// The EC key of node a is untouched.
	if at := setA.Retired(ctx); !at.IsZero() {
		t.Fatalf("node a's EC key read as retired at %v", at)
	}
}

// A stored key whose alg does not fit its type, or an RSA key too
// small or with a small public exponent, is left out of the JWKS: a key's alg says how what it signed is
// verified.
func TestJWKSLeavesOutMismatchedKeys(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := Generate(rand.Reader)
	ecAsRS := ec.PublicJWK()
	ecAsRS.Algorithm, ecAsRS.KeyID = "RS256", "ec-as-rs"
	rsAsES := jose.JSONWebKey{Key: testRSAKey(t).Public(), Algorithm: "ES256", Use: "sig", KeyID: "rs-as-es"}
	tooSmall := jose.JSONWebKey{Key: small.Public(), Algorithm: "RS256", Use: "sig", KeyID: "small"}
	e3 := jose.JSONWebKey{Key: rsaExponent3Key(t).Public(), Algorithm: "RS256", Use: "sig", KeyID: "e3"}
	for _, jwk := range []jose.JSONWebKey{ecAsRS, rsAsES, tooSmall, e3} {
		raw, err := json.Marshal(jwk)
		if err != nil {
			t.Fatal(err)
		}
		if err := setA.Store.PutPublicKey(ctx, &store.PublicKey{KID: jwk.KeyID, Node: "x", JWK: raw,
			CreatedAt: *now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	jwks, err := setA.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 || jwks.Keys[0].KeyID != setA.Local.KID() {
		t.Fatalf("JWKS = %v, want a's key alone", kids(jwks.Keys))
	}
}

// TestAlsoReadsOnce: a node's two key sets over one store, its RSA
// key's in its ES256 key's Also, read the store once between them, as
// /readyz asks each whether its key was retired: what the first reads,
// the second takes, its own key's retirement and a failed read
// included.
func TestAlsoReadsOnce(t *testing.T) {
	ctx := context.Background()
	setA, _, now := twoNodes(t)
	db := setA.Store.(*sqlstore.DB)
	counted := &countingKeys{PublicKeys: db}
	rsaSigner, err := New(testRSAKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaA := &Set{Store: counted, Local: rsaSigner, Node: "a", Now: setA.Now, MaxStale: time.Minute}
	setA.Store, setA.Also, setA.MaxStale = counted, []*Set{rsaA}, time.Minute
	for _, s := range []*Set{setA, rsaA} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// asked reads each set's retirement, as /readyz does, and returns
	// how many reads of the store that took.
	asked := func() (es, rs time.Time, reads int) {
		before := counted.reads
		es, rs = setA.Retired(ctx), rsaA.Retired(ctx)
		return es, rs, counted.reads - before
	}
	*now = now.Add(DefaultCacheTTL)
	if es, rs, reads := asked(); !es.IsZero() || !rs.IsZero() || reads != 1 {
		t.Fatalf("retired %v and %v in %d reads; want neither, in one read", es, rs, reads)
	}

	if _, err := db.RetirePublicKey(ctx, rsaSigner.KID(), *now, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if es, rs, reads := asked(); !es.IsZero() || rs.IsZero() || reads != 1 {
		t.Fatalf("once the RSA key was retired: retired %v and %v in %d reads; want the RSA key alone, in one read", es, rs, reads)
	}
	if _, err := rsaSigner.SignJWT(map[string]string{"iss": "a"}); !errors.Is(err, ErrRetired) {
		t.Fatalf("a retired RSA key read through the other set signs: err = %v", err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, _, reads := asked(); reads != 1 {
		t.Errorf("a failing store read %d times, want once", reads)
	}
	*now = now.Add(time.Minute)
	_, _, _ = asked()
	if err := rsaA.Stale(); !errors.Is(err, ErrStale) {
		t.Errorf("the RSA key's set past MaxStale of a failing store: %v, want ErrStale", err)
	}
}

// TestSameNameElsewhere: a second process started with this node's name
// and a key of its own (a configuration copied without changing node)
// publishes a key that this Set did not, after this Set began:
// SameNameElsewhere names it, also when that key was first published
// before (the other process restarted). This node's own RSA key, its
// keys from before it started, and a key of that process that is
// retired, do not count; nor does the older process show up for the
// newer until it publishes again.
func TestSameNameElsewhere(t *testing.T) {
	ctx := context.Background()
	setA, setB, now := twoNodes(t)
	db := setA.Store.(*sqlstore.DB)
	// a's key of before a restart, and b's.
	old, _ := Generate(rand.Reader)
	before := &Set{Store: db, Local: old, Node: "a", Now: setA.Now}
	for _, s := range []*Set{before, setB} {
		if err := s.Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	*now = now.Add(time.Hour)
	rsaSigner, err := New(testRSAKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaA := &Set{Store: db, Local: rsaSigner, Node: "a", Now: setA.Now}
	setA.Also = []*Set{rsaA}
	if err := setA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Second)
	if err := rsaA.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := setA.SameNameElsewhere(); kid != "" {
		t.Fatalf("SameNameElsewhere with a's own keys alone = %q, want none", kid)
	}
	// Another process named a, with a key of its own.
	*now = now.Add(time.Minute)
	twin, _ := Generate(rand.Reader)
	setTwin := &Set{Store: db, Local: twin, Node: "a", Now: setA.Now}
	if err := setTwin.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	started := *now
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, at := setA.SameNameElsewhere(); kid != twin.KID() || !at.Equal(started) {
		t.Errorf("SameNameElsewhere = %q at %v, want %q at %v", kid, at, twin.KID(), started)
	}
	if kid, _ := rsaA.SameNameElsewhere(); kid != "" {
		t.Errorf("SameNameElsewhere of a's RSA key set = %q, want none: the twin has no RSA key", kid)
	}
	if _, err := setTwin.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := setTwin.SameNameElsewhere(); kid != "" {
		t.Errorf("SameNameElsewhere of the later process = %q, want none", kid)
	}
	// The twin's key retired: it signs nothing any more.
	if _, err := db.RetirePublicKey(ctx, twin.KID(), *now, nil); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := setA.SameNameElsewhere(); kid != "" {
		t.Errorf("SameNameElsewhere once the twin's key was retired = %q, want none", kid)
	}
	// A process started with a's key of before its restart.
	*now = now.Add(time.Minute)
	again := &Set{Store: db, Local: old, Node: "a", Now: setA.Now}
	if err := again.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := *now
	*now = now.Add(DefaultCacheTTL)
	if _, err := setA.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, at := setA.SameNameElsewhere(); kid != old.KID() || !at.Equal(restarted) {
		t.Errorf("SameNameElsewhere once a key first published before a began is published again = %q at %v, want %q at %v",
			kid, at, old.KID(), restarted)
	}
}
