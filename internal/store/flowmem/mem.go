package flowmem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// DefaultMaxEntries bounds the records a Mem holds, all kinds together.
// A login holds a handful for seconds; a million is far beyond any
// honest load on one node.
const DefaultMaxEntries = 1 << 20

// DefaultMaxChallenges bounds the challenges among them of each
// namespace: the part of the ID before its first ':' (or "" without
// one), such as "passkey" for WebAuthn ceremonies, "upstream" for
// upstream logins' state and "link" for link attempts. Anyone may begin
// a passkey ceremony without logging in, and each is kept (at most
// about 1.5 KB) for five minutes unless finished, so a flood of begins
// fills its namespace's bound, about 100 MB, and no more: authorization
// requests, codes, the replay cache and the other namespaces keep the
// rest. A ceremony is finished within seconds, so 65,536 leaves room,
// at the 1,000 logins/s one node was measured to serve, for one in five
// to be abandoned.
const DefaultMaxChallenges = 1 << 16

// ErrFull is returned by writes while a Mem holds MaxEntries unexpired
// records, or a challenge is written while its namespace holds
// MaxChallenges: the node refuses new logins rather than grow without
// bound. It wraps store.ErrFull.
var ErrFull = fmt.Errorf("flowmem: flow state is full: %w", store.ErrFull)

// sweepGap is the least time between the sweeps a full Mem makes for
// writes. Under a flood each sweep frees only the few records expired
// since the last, and sweeping for every write would hold the lock
// every login needs most of the time.
const sweepGap = time.Second

// Mem holds flow state in memory. It is safe for concurrent use; every
// single-use operation (taking a challenge, using a pushed request,
// redeeming a code, remembering a jti) is decided under one lock, so of
// two concurrent callers exactly one wins.
type Mem struct {
	max           int
	maxChallenges int
	since         time.Time
	now           func() time.Time

	mu         sync.Mutex
	swept      time.Time // the last sweep for a write while full
	requests   map[string]*store.AuthRequest
	challenges map[string]challenge
	spaces     map[string]int             // challenges by namespace
	codes      map[string]*store.AuthCode // by string(hash)
	replay     map[string]time.Time       // key → expiry
}

type challenge struct {
	data    []byte
	expires time.Time
}

// Options configure New.
type Options struct {
	// MaxEntries bounds the records held (default DefaultMaxEntries).
	MaxEntries int
	// MaxChallenges bounds the challenges of each namespace among them
	// (default DefaultMaxChallenges).
	MaxChallenges int
	// Since is when this memory began (default: now). Client assertions
	// that could have been presented before it are refused, since their
	// jti may have been used then (see RemembersSince).
	Since time.Time
	// Now is the clock used to sweep expired records when m is full
	// (default time.Now); the operations themselves take their time
	// from the caller, as every store does.
	Now func() time.Time
}

// New returns an empty Mem.
func New(opt Options) *Mem {
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = DefaultMaxEntries
	}
	if opt.MaxChallenges <= 0 {
		opt.MaxChallenges = DefaultMaxChallenges
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Since.IsZero() {
		opt.Since = opt.Now()
	}
	return &Mem{
		max:           opt.MaxEntries,
		maxChallenges: opt.MaxChallenges,
		since:         opt.Since,
		now:           opt.Now,
		requests:      make(map[string]*store.AuthRequest),
		challenges:    make(map[string]challenge),
		spaces:        make(map[string]int),
		codes:         make(map[string]*store.AuthCode),
		replay:        make(map[string]time.Time),
	}
}

var (
	_ store.AuthRequests  = (*Mem)(nil)
	_ store.Challenges    = (*Mem)(nil)
	_ store.AuthCodes     = (*Mem)(nil)
	_ store.ReplayCache   = (*Mem)(nil)
	_ store.Sweeper       = (*Mem)(nil)
	_ store.ReplayHorizon = (*Mem)(nil)
)

// RemembersSince implements store.ReplayHorizon: the replay cache knows
// nothing of values remembered before the process started.
func (m *Mem) RemembersSince() time.Time { return m.since }

// Len reports how many records m holds, expired ones not yet swept
// included.
func (m *Mem) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lenLocked()
}

func (m *Mem) lenLocked() int {
	return len(m.requests) + len(m.challenges) + len(m.codes) + len(m.replay)
}

// room makes space for one more record. m.mu is held.
func (m *Mem) room() error {
	return m.makeRoom(m.fits)
}

// challengeRoom makes space for one more challenge in namespace ns.
// m.mu is held.
func (m *Mem) challengeRoom(ns string) error {
	return m.makeRoom(func() bool { return m.spaces[ns] < m.maxChallenges && m.fits() })
}

func (m *Mem) fits() bool { return m.lenLocked() < m.max }

// makeRoom returns nil if the record fits; if not, it sweeps expired
// records (by the clock, read only then, and at most once per sweepGap)
// and asks again; ErrFull if it still does not fit. m.mu is held.
func (m *Mem) makeRoom(fits func() bool) error {
	if fits() {
		return nil
	}
	now := m.now()
	if now.Before(m.swept.Add(sweepGap)) {
		return ErrFull
	}
	m.swept = now
	m.sweepLocked(now, 0)
	if fits() {
		return nil
	}
	return ErrFull
}

// namespace is the part of a challenge ID before its first ':', "" if
// it has none.
func namespace(id string) string {
	if ns, _, ok := strings.Cut(id, ":"); ok {
		return ns
	}
	return ""
}

// dropChallenge deletes a challenge. m.mu is held.
func (m *Mem) dropChallenge(id string) {
	delete(m.challenges, id)
	ns := namespace(id)
	if m.spaces[ns]--; m.spaces[ns] <= 0 {
		delete(m.spaces, ns)
	}
}

// CreateAuthRequest implements store.AuthRequests; ErrConflict if the ID
// is taken.
func (m *Mem) CreateAuthRequest(_ context.Context, r *store.AuthRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[r.ID]; ok {
		return fmt.Errorf("create auth request: %w", store.ErrConflict)
	}
	if err := m.room(); err != nil {
		return fmt.Errorf("create auth request: %w", err)
	}
	m.requests[r.ID] = cloneRequest(r)
	return nil
}

// GetAuthRequest implements store.AuthRequests.
func (m *Mem) GetAuthRequest(_ context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	if !ok || !now.Before(r.ExpiresAt) {
		return nil, fmt.Errorf("get auth request: %w", store.ErrNotFound)
	}
	return cloneRequest(r), nil
}

// UseAuthRequest implements store.AuthRequests.
func (m *Mem) UseAuthRequest(_ context.Context, id string, expiresAt, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	switch {
	case !ok || !now.Before(r.ExpiresAt):
		return fmt.Errorf("use auth request: %w", store.ErrNotFound)
	case !r.Pushed:
		return fmt.Errorf("use auth request: not a pushed request: %w", store.ErrNotFound)
	case r.Used:
		return fmt.Errorf("use auth request: %w", store.ErrConflict)
	}
	r.Used, r.ExpiresAt = true, stored(expiresAt)
	return nil
}

// UpdateAuthRequest implements store.AuthRequests. Like a database row
// it can be updated after expiry until swept.
func (m *Mem) UpdateAuthRequest(_ context.Context, r *store.AuthRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[r.ID]; !ok {
		return fmt.Errorf("update auth request: %w", store.ErrNotFound)
	}
	m.requests[r.ID] = cloneRequest(r)
	return nil
}

// DeleteAuthRequest implements store.AuthRequests.
func (m *Mem) DeleteAuthRequest(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.requests, id)
	return nil
}

// PutChallenge implements store.Challenges.
func (m *Mem) PutChallenge(_ context.Context, id string, data []byte, expiresAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.challenges[id]; !ok {
		ns := namespace(id)
		if err := m.challengeRoom(ns); err != nil {
			return fmt.Errorf("put challenge: %w", err)
		}
		m.spaces[ns]++
	}
	m.challenges[id] = challenge{data: bytes.Clone(data), expires: stored(expiresAt)}
	return nil
}

// TakeChallenge implements store.Challenges.
func (m *Mem) TakeChallenge(_ context.Context, id string, now time.Time) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.challenges[id]
	if !ok {
		return nil, fmt.Errorf("take challenge: %w", store.ErrNotFound)
	}
	m.dropChallenge(id)
	if !now.Before(c.expires) {
		return nil, fmt.Errorf("take challenge: expired: %w", store.ErrNotFound)
	}
	return c.data, nil
}

// CreateAuthCode implements store.AuthCodes; ErrConflict if the hash is
// taken.
func (m *Mem) CreateAuthCode(_ context.Context, c *store.AuthCode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.createCodeLocked(c); err != nil {
		return fmt.Errorf("create auth code: %w", err)
	}
	return nil
}

func (m *Mem) createCodeLocked(c *store.AuthCode) error {
	if _, ok := m.codes[string(c.Hash)]; ok {
		return store.ErrConflict
	}
	if err := m.room(); err != nil {
		return err
	}
	m.codes[string(c.Hash)] = cloneCode(c)
	return nil
}

// CreateAuthCodeForRequest implements store.AuthCodes: the request goes
// and the code comes under one lock, so a request yields one code.
func (m *Mem) CreateAuthCodeForRequest(_ context.Context, c *store.AuthCode, requestID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[requestID]; !ok {
		return fmt.Errorf("create auth code for request %s: %w", requestID, store.ErrNotFound)
	}
	if err := m.createCodeLocked(c); err != nil {
		return fmt.Errorf("create auth code for request: %w", err)
	}
	delete(m.requests, requestID)
	return nil
}

// RedeemAuthCode implements store.AuthCodes.
func (m *Mem) RedeemAuthCode(_ context.Context, hash []byte, now time.Time) (*store.AuthCode, error) {
	if now.IsZero() {
		return nil, errors.New("redeem auth code: zero time")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[string(hash)]
	if !ok {
		return nil, fmt.Errorf("redeem auth code: %w", store.ErrNotFound)
	}
	if !c.UsedAt.IsZero() {
		return cloneCode(c), fmt.Errorf("redeem auth code: already used: %w", store.ErrConflict)
	}
	c.UsedAt = stored(now)
	return cloneCode(c), nil
}

// DeleteClient deletes the authorization requests of client id and its
// codes not yet redeemed, and returns how many it deleted: a client's
// removal ends its logins in flight (store.Clients.DeleteClient).
// Redeemed codes stay until they expire, so that a replay is still
// recognised. Like DeleteExpired it lets go of the lock every sweepChunk
// records.
func (m *Mem) DeleteClient(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, seen := 0, 0
	pause := func() {
		if seen++; seen%sweepChunk == 0 {
			m.mu.Unlock()
			m.mu.Lock()
		}
	}
	for rid, r := range m.requests {
		if r.ClientID == id {
			delete(m.requests, rid)
			n++
		}
		pause()
	}
	for h, c := range m.codes {
		if c.ClientID == id && c.UsedAt.IsZero() {
			delete(m.codes, h)
			n++
		}
		pause()
	}
	return n
}

// Remember implements store.ReplayCache.
func (m *Mem) Remember(_ context.Context, key string, expiresAt, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.replay[key]
	if ok && now.Before(exp) {
		return fmt.Errorf("remember: seen before: %w", store.ErrConflict)
	}
	if !ok {
		if err := m.room(); err != nil {
			return fmt.Errorf("remember: %w", err)
		}
	}
	m.replay[key] = stored(expiresAt)
	return nil
}

// DeleteExpired implements store.Sweeper for the records m holds. It
// lets go of the lock every sweepChunk records, so that logins are not
// held up while a busy node's hundreds of thousands of records are
// looked at.
func (m *Mem) DeleteExpired(_ context.Context, now time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sweepLocked(now, sweepChunk), nil
}

// sweepChunk is how many records a sweep looks at per hold of the lock.
const sweepChunk = 4096

// sweepLocked deletes the records expired at now. m.mu is held; if chunk
// is positive it is released and taken again after every chunk records
// (Go allows a map to change between the steps of a range over it; the
// lock orders those changes).
func (m *Mem) sweepLocked(now time.Time, chunk int) int64 {
	var n int64
	seen := 0
	pause := func() {
		if seen++; chunk > 0 && seen%chunk == 0 {
			m.mu.Unlock()
			m.mu.Lock()
		}
	}
	for id, r := range m.requests {
		if !now.Before(r.ExpiresAt) {
			delete(m.requests, id)
			n++
		}
		pause()
	}
	for id, c := range m.challenges {
		if !now.Before(c.expires) {
			m.dropChallenge(id)
			n++
		}
		pause()
	}
	for h, c := range m.codes {
		if !now.Before(c.ExpiresAt) {
			delete(m.codes, h)
			n++
		}
		pause()
	}
	for k, exp := range m.replay {
		if !now.Before(exp) {
			delete(m.replay, k)
			n++
		}
		pause()
	}
	return n
}

// stored returns t as a database gives it back: UTC, to the microsecond,
// the zero time kept, so records read from memory equal those read from
// any other backend.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// cloneRequest and cloneCode copy a record as a database gives it back.
func cloneRequest(r *store.AuthRequest) *store.AuthRequest {
	c := r.Clone()
	c.CreatedAt, c.ExpiresAt = stored(r.CreatedAt), stored(r.ExpiresAt)
	return c
}

func cloneCode(a *store.AuthCode) *store.AuthCode {
	c := a.Clone()
	c.AuthTime, c.CreatedAt = stored(a.AuthTime), stored(a.CreatedAt)
	c.ExpiresAt, c.UsedAt = stored(a.ExpiresAt), stored(a.UsedAt)
	return c
}
