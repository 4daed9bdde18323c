package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/store"
)

// Defaults for Set.
const (
	DefaultPublishTTL = 7 * 24 * time.Hour
	DefaultCacheTTL   = 5 * time.Second
	DefaultMaxStale   = 5 * time.Minute
)

// ErrUnknownKey means a JWS names a key that is in no node's key set.
var ErrUnknownKey = errors.New("keys: unknown signing key")

// ErrStale means the store has not been read for longer than MaxStale:
// a key retired meanwhile would still be trusted, so the set trusts and
// serves no key until the store can be read again.
var ErrStale = errors.New("keys: key set not read from the store for too long")

// ErrRetired means the local key was retired (store.PublicKeys.RetirePublicKey,
// varde keys retire): it is in no JWKS and cannot be published again, so
// the node needs a new key.
var ErrRetired = errors.New("keys: this node's signing key was retired")

// ErrLapsed means the local key's publication ran out (PublishTTL after
// its last Publish) because it could not be published again: the other
// nodes' key sets no longer list it, so relying parties that fetch the
// JWKS from them refuse what it signs.
var ErrLapsed = errors.New("keys: this node's signing key is no longer published")

// Set is the cluster's key set as this node sees it: its own Signer plus
// every other node's published public keys.
type Set struct {
	Store store.PublicKeys
	Local *Signer
	// Node names this node in the store.
	Node string
	Now  func() time.Time
	// PublishTTL is how long a published key stays in the JWKS after its
	// last Publish (default 7 days). It must outlive every token the key
	// signed that someone may still verify, so a running node publishes
	// again well before it runs out (KeepPublished); a key that stops
	// being published (its node is gone) drops out after PublishTTL.
	PublishTTL time.Duration
	// CacheTTL is how long JWKS reuses what it read (default 5 s).
	CacheTTL time.Duration
	// MaxStale is how long after its last good read of the store, while
	// the store fails, the set still serves and verifies with what it
	// read then (default 5 minutes). Past it JWKS returns no key and
	// ErrStale, and Verify fails with ErrStale: a key retired by another
	// node during this node's outage must not stay trusted here without
	// end.
	MaxStale time.Duration
	// Also are the key sets of this node's other keys over the same
	// Store (its RSA key's, beside its ES256 key's): each read of the
	// store here is theirs too, so that the node reads the public keys
	// once for all of its keys. None of them may list this Set in its
	// own Also.
	Also []*Set

	mu       sync.Mutex
	cached   jose.JSONWebKeySet
	cachedAt time.Time
	haveSet  bool
	// published is when Publish last succeeded.
	published time.Time
	// newSince is when the key was first published, as the first
	// Publish read it: when it stored a key the store did not hold yet,
	// or when the store held it already (a restart) since its last
	// publish.
	newSince time.Time
	// failedAt is when a read of the store last failed, and failErr
	// why; zero once a read succeeds.
	failedAt time.Time
	failErr  error
	// readAt is when the store was last read successfully (by JWKS, or
	// by the first Publish).
	readAt time.Time
	// retiredAt is when the local key was retired, as first read from
	// the store (or when the store refused to publish it and read it as
	// retired); zero if it was not.
	retiredAt time.Time
	// sharedWith names another node the store read as having published
	// the local key after this Set did, and sharedAt when; empty if
	// none did.
	sharedWith string
	sharedAt   time.Time
	// began is when this Set's first Publish succeeded: when this
	// process began signing. twin is a key of the local key's
	// algorithm that another process published under this node's name
	// after began, and twinAt when it last did (SameNameElsewhere);
	// empty if none.
	began  time.Time
	twin   string
	twinAt time.Time
}

func (s *Set) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Publish claims the local public key in the store
// (store.PublicKeys.ClaimPublicKey). It fails with a *store.KeyHeldError,
// wrapped, if another node holds the key; after an earlier Publish
// succeeded, SharedWith then names that node until a Publish succeeds.
func (s *Set) Publish(ctx context.Context) error {
	jwk := s.Local.PublicJWK()
	raw, err := json.Marshal(jwk)
	if err != nil {
		return fmt.Errorf("publish key: %w", err)
	}
	ttl := s.PublishTTL
	if ttl <= 0 {
		ttl = DefaultPublishTTL
	}
	now := s.now()
	s.mu.Lock()
	first := s.published.IsZero()
	s.mu.Unlock()
	// since is when the key was first published, as far as this process
	// can tell: now if the store does not hold it, else when it was last
	// published, perhaps moments ago by a process that stopped before
	// every node's key set could hold the key.
	var since time.Time
	if first {
		stored, err := s.Store.ListPublicKeys(ctx, now)
		if err != nil {
			return fmt.Errorf("publish key: %w", err)
		}
		since = now
		s.mu.Lock()
		s.readAt = now
		s.mu.Unlock()
		if i := slices.IndexFunc(stored, func(k *store.PublicKey) bool { return k.KID == jwk.KeyID }); i >= 0 && stored[i].CreatedAt.Before(now) {
			since = stored[i].CreatedAt
		}
	}
	// Every Publish claims the key: it fails with a *store.KeyHeldError
	// if another node that has not left publishes it (one key file given
	// to two nodes), however close together they start, and a node never
	// takes the key from one that holds it.
	err = s.Store.ClaimPublicKey(ctx, &store.PublicKey{
		KID: jwk.KeyID, Node: s.Node, JWK: raw, CreatedAt: now, ExpiresAt: now.Add(ttl),
	})
	if held := (*store.KeyHeldError)(nil); errors.As(err, &held) {
		if !first {
			s.mu.Lock()
			s.sharedWith, s.sharedAt = held.Key.Node, held.Key.CreatedAt
			s.mu.Unlock()
		}
		return fmt.Errorf("publish key: %w", err)
	}
	if errors.Is(err, store.ErrConflict) {
		// The store refuses to publish a retired key, but a conflict may
		// have other causes; only a key the store reads as retired stops
		// this node signing.
		retired, rerr := s.storedRetired(ctx, jwk.KeyID)
		if rerr != nil {
			return fmt.Errorf("publish key: %w (and reading whether kid %s was retired: %w)", err, jwk.KeyID, rerr)
		}
		if !retired {
			return fmt.Errorf("publish key: %w", err)
		}
		s.mu.Lock()
		if s.retiredAt.IsZero() {
			s.retiredAt = now
		}
		s.Local.retired.Store(true)
		s.haveSet = false
		s.mu.Unlock()
		return fmt.Errorf("%w (kid %s): give this node a new signing key", ErrRetired, jwk.KeyID)
	}
	if err != nil {
		return fmt.Errorf("publish key: %w", err)
	}
	s.mu.Lock()
	// The next JWKS reads the store again, but keeps what it read last
	// (every node's keys) should the store fail then.
	s.cachedAt = time.Time{}
	s.published = now
	s.Local.publication.Store(&publication{until: now.Add(ttl), now: s.now})
	s.Local.lapsed.Store(false)
	s.sharedWith, s.sharedAt = "", time.Time{}
	if first {
		s.newSince = since
		s.began = now
	}
	s.mu.Unlock()
	return nil
}

// storedRetired reads whether the store holds kid as retired, expired
// or not.
func (s *Set) storedRetired(ctx context.Context, kid string) (bool, error) {
	// A zero time lists every stored key: a retired key outlives its
	// expiry in the store so that it is never published again.
	stored, err := s.Store.ListPublicKeys(ctx, time.Time{})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(stored, func(k *store.PublicKey) bool {
		return k.KID == kid && !k.RetiredAt.IsZero()
	}), nil
}

// Lapsed reports when the local key's publication ran out, PublishTTL
// after its last Publish, if that time has passed (zero otherwise, and
// for a key this Set never published): the other nodes' key sets no
// longer list the key, and its Signer refuses to sign with ErrLapsed
// from that time (it compares its own clock with it, whether or not the
// Set has looked) until a Publish succeeds. A node that cannot publish its key should
// take no traffic.
func (s *Set) Lapsed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lapse(s.now())
}

// lapse is Lapsed at now, telling the Signer. The caller holds mu.
func (s *Set) lapse(now time.Time) time.Time {
	if s.published.IsZero() {
		return time.Time{}
	}
	ttl := s.PublishTTL
	if ttl <= 0 {
		ttl = DefaultPublishTTL
	}
	until := s.published.Add(ttl)
	if now.Before(until) {
		return time.Time{}
	}
	s.Local.lapsed.Store(true)
	return until
}

// UntilKnown is how long until every node's JWKS may be relied on to
// list the local key: a node reads the store at most CacheTTL after a
// key was first published, so a relying party that fetches the JWKS
// from any node sees it. Zero once that time has passed, which for a
// key the store held before this process published it is CacheTTL after
// it was last published (at once, unless an earlier process published
// it moments ago and stopped). A node that
// shares its store with others should not take traffic before then:
// a token it signs could fail verification at a relying party whose
// JWKS came from another node.
func (s *Set) UntilKnown() time.Duration {
	s.mu.Lock()
	since := s.newSince
	s.mu.Unlock()
	if since.IsZero() {
		return 0
	}
	ttl := s.CacheTTL
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	return max(0, since.Add(ttl).Sub(s.now()))
}

// KeepPublished publishes the local key again when the last Publish is a
// seventh of PublishTTL old (a day, by default) or never succeeded, so
// the key stays in every node's JWKS while this node signs with it, and
// whenever another node was read as publishing it (SharedWith), so that
// the key is this node's again once that node has left or its
// publication expired. While that node holds the key it returns nil:
// SharedWith says why. A node calls it regularly, as often as it likes.
// If it keeps failing until PublishTTL after the last Publish, the local
// Signer refuses to sign with ErrLapsed until a Publish succeeds (see
// Lapsed).
func (s *Set) KeepPublished(ctx context.Context) error {
	ttl := s.PublishTTL
	if ttl <= 0 {
		ttl = DefaultPublishTTL
	}
	s.mu.Lock()
	last, shared := s.published, s.sharedWith != ""
	s.lapse(s.now())
	s.mu.Unlock()
	if age := s.now().Sub(last); !shared && !last.IsZero() && age >= 0 && age < ttl/7 {
		return nil
	}
	err := s.Publish(ctx)
	if held := (*store.KeyHeldError)(nil); errors.As(err, &held) && !last.IsZero() {
		return nil
	}
	return err
}

// JWKS returns every node's unexpired public keys that were not retired,
// the local one first.
// It reads the store at most once per CacheTTL. If the store fails it
// returns the last set it read (or the local key alone) with the error,
// so callers can still serve something useful, until MaxStale after its
// last good read: from then on no key, and ErrStale.
func (s *Set) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	return s.jwks(ctx, false)
}

func (s *Set) jwks(ctx context.Context, fresh bool) (jose.JSONWebKeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl := s.CacheTTL
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	now := s.now()
	s.lapse(now)
	age := now.Sub(s.cachedAt)
	if fresh {
		// A forced re-read (unknown kid) happens at most once a second,
		// so made-up kids cannot turn every request into a store read.
		ttl = min(ttl, time.Second)
	}
	if s.haveSet && age >= 0 && age < ttl {
		return s.cached, nil
	}
	fallback := s.localSet
	if s.haveSet {
		fallback = func() jose.JSONWebKeySet { return s.cached }
	}
	// A store that failed is read again at most once a second (after
	// the failure, which may have taken a timeout's length), so the
	// callers that queued behind a failing read are answered at once,
	// not each after a read of its own.
	if since := now.Sub(s.failedAt); !s.failedAt.IsZero() && since >= 0 && since < time.Second {
		return s.stale(now, fallback)
	}
	stored, err := s.Store.ListPublicKeys(ctx, now)
	if err != nil {
		s.failedAt, s.failErr = s.now(), fmt.Errorf("list public keys: %w", err)
		for _, o := range s.Also {
			o.mu.Lock()
			o.failedAt, o.failErr = s.failedAt, s.failErr
			o.mu.Unlock()
		}
		return s.stale(now, fallback)
	}
	set := s.read(stored, now)
	for _, o := range s.Also {
		o.mu.Lock()
		o.read(stored, now)
		o.mu.Unlock()
	}
	return set, nil
}

// read takes in stored, what the store listed at now: it notes whether
// the local key was retired or published by another node since, and
// caches the key set it makes, which it returns. The caller holds mu.
func (s *Set) read(stored []*store.PublicKey, now time.Time) jose.JSONWebKeySet {
	s.failedAt, s.failErr, s.readAt = time.Time{}, nil, now
	// A key is never unretired: once seen, it stays retired here, also
	// after the store stops listing it (it expired).
	for _, k := range stored {
		// Each Publish writes this node's name: another one there means
		// another node published the same key since (this node's
		// publication lapsed, or it was said to have left, while it ran).
		// It holds until this node's name is there again (KeepPublished
		// claims the key back once that node has left).
		if k.KID == s.Local.KID() && s.Node != "" && !s.published.IsZero() {
			if k.Node != s.Node {
				s.sharedWith, s.sharedAt = k.Node, k.CreatedAt
			} else {
				s.sharedWith, s.sharedAt = "", time.Time{}
			}
		}
		if k.KID == s.Local.KID() && !k.RetiredAt.IsZero() && s.retiredAt.IsZero() {
			s.retiredAt = k.RetiredAt
			// The node stops signing with it as soon as it knows.
			s.Local.retired.Store(true)
		}
	}
	s.twin, s.twinAt = s.sameName(stored)
	set := s.localSet()
	for _, k := range stored {
		if k.KID == s.Local.KID() || !k.RetiredAt.IsZero() {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.JWK, &jwk); err != nil || !jwk.IsPublic() || !jwk.Valid() || jwk.KeyID != k.KID {
			continue
		}
		if !signsWith(jwk) {
			continue
		}
		set.Keys = append(set.Keys, jwk)
	}
	s.cached, s.cachedAt, s.haveSet = set, now, true
	return set
}

// stale answers for a store that failed (failErr): fallback while the
// last good read is at most MaxStale old (or there was none, so nothing
// can have changed since), else no key and ErrStale. The caller holds mu.
func (s *Set) stale(now time.Time, fallback func() jose.JSONWebKeySet) (jose.JSONWebKeySet, error) {
	limit := s.MaxStale
	if limit <= 0 {
		limit = DefaultMaxStale
	}
	if age := now.Sub(s.readAt); !s.readAt.IsZero() && age > limit {
		return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}},
			fmt.Errorf("%w: last read %s ago, more than %s: %w", ErrStale, age.Round(time.Second), limit, s.failErr)
	}
	return fallback(), s.failErr
}

// localSet is the local key alone, or no key if it was retired. The
// caller holds mu.
func (s *Set) localSet() jose.JSONWebKeySet {
	if !s.retiredAt.IsZero() {
		return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.Local.PublicJWK()}}
}

// Retired reports when the local key was retired, as the store said at
// most CacheTTL ago (it reads the store if its copy is older); zero if it
// was not. A node whose key was retired is in no JWKS: relying parties
// refuse what it signs, so it should take no traffic until it has a new
// key.
func (s *Set) Retired(ctx context.Context) time.Time {
	_, _ = s.jwks(ctx, false) // on error, what was read last
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retiredAt
}

// SharedWith names another node that published the local key after
// this Set did, and when, as the set's last read of the store (JWKS,
// Retired, Verify) or refused Publish found; "" if none did, or once
// this node's name is on the key again. Two nodes signing with one
// key are credited with it by whichever published last, so `varde keys
// list` and `keys retire` take one's key for the other's: each node
// needs its own key file. It reads no store.
func (s *Set) SharedWith() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sharedWith, s.sharedAt
}

// sameName finds in stored a key of the local key's algorithm, not
// retired, published under this node's name by another process: last
// published after this Set's first Publish, when no process of this
// node but this one publishes (a restart of it publishes a key only
// once this one is gone). It returns the first such key's kid and when
// it was last published, or "" if there is none. The caller holds mu.
func (s *Set) sameName(stored []*store.PublicKey) (string, time.Time) {
	if s.Node == "" || s.began.IsZero() {
		return "", time.Time{}
	}
	for _, k := range stored {
		if k.Node != s.Node || k.KID == s.Local.KID() || !k.RetiredAt.IsZero() || !k.CreatedAt.After(s.began) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.JWK, &jwk); err != nil || jwk.Algorithm != string(s.Local.Alg()) {
			continue
		}
		return k.KID, k.CreatedAt
	}
	return "", time.Time{}
}

// SameNameElsewhere names a key that another process publishes under
// this node's name, and when it last did, as the set's last
// read of the store found; "" if none does. Two processes given one
// node name (a configuration copied without changing node) are one
// node to the store: varde keys list credits both keys to it, so that
// keys retire takes this process's key for an older one, and the
// status page and varde nodes cannot tell them apart. The process that
// started first tells at once; the later one when the first publishes
// its key again (every day, KeepPublished): until then the earlier key
// looks like one from before a restart. It reads no store.
func (s *Set) SameNameElsewhere() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.twin, s.twinAt
}

// Stale returns ErrStale, saying when the store was last read and why
// reading it fails, if the store has failed since a good read more than
// MaxStale ago, as the set's last look at the store (JWKS, Retired,
// Verify) found; nil otherwise. It reads no store. A node whose key set
// is stale serves no JWKS and verifies nothing, so it should take no
// traffic.
func (s *Set) Stale() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failedAt.IsZero() {
		return nil
	}
	if _, err := s.stale(s.now(), s.localSet); errors.Is(err, ErrStale) {
		return err
	}
	return nil
}

// signsWith reports whether jwk is a public key Varde signs with: alg
// ES256 on an ECDSA P-256 key, or RS256 on an RSA key New takes
// (checkRSA), so a key's alg says how what it signed is verified.
func signsWith(jwk jose.JSONWebKey) bool {
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		return jwk.Algorithm == string(Algorithm) && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return jwk.Algorithm == string(RS256) && checkRSA(k) == nil
	}
	return false
}

// Verify checks that token is a compact JWS signed by a key in the set
// with the key's algorithm (ES256 or RS256) and unmarshals its payload
// into dest. It checks no claims: the
// caller decides what expiry, issuer and audience mean for its use.
// While the store fails it verifies with the keys last read, for at most
// MaxStale, then fails with ErrStale.
func (s *Set) Verify(ctx context.Context, token string, dest any) error {
	jws, err := jose.ParseSignedCompact(token, Algorithms)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return errors.New("keys: want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return errors.New("keys: signature has no kid")
	}
	key, err := s.find(ctx, kid)
	if err != nil {
		return err
	}
	// RFC 8725 §3.1: the key decides the algorithm, not the header.
	if alg := jws.Signatures[0].Header.Algorithm; alg != key.Algorithm {
		return fmt.Errorf("keys: signature is %s, but key %s signs %s", alg, kid, key.Algorithm)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := json.Unmarshal(payload, dest); err != nil {
		return fmt.Errorf("keys: payload: %w", err)
	}
	return nil
}

func (s *Set) find(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	// The set holds the local key first, unless it was retired.
	for _, fresh := range []bool{false, true} {
		set, err := s.jwks(ctx, fresh)
		if errors.Is(err, ErrStale) {
			return nil, err
		}
		if ks := set.Key(kid); len(ks) > 0 {
			return &ks[0], nil
		}
	}
	return nil, ErrUnknownKey
}
