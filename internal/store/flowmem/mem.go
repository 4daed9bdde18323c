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

// DefaultMaxFrontBytes bounds the memory, as Cost counts it, of the
// authorization requests made at the front channel: those not pushed
// (RFC 9126), which anyone may make with a client's public client_id and
// redirect URI, each kept for ten minutes unless a login finishes it. A
// flood of them takes this much, about 40,000 requests with every
// parameter at its longest, and no more: pushed requests, codes, the
// replay cache and challenges keep the rest. An honest request costs
// about 800 bytes, so 128 MiB holds about 170,000: at the 1,000
// logins/s one node was measured to serve, room for more than one in
// four to be abandoned.
const DefaultMaxFrontBytes = 128 << 20

// DefaultMaxPushedBytes bounds the memory, as Cost counts it, of the
// authorization requests each client has pushed (RFC 9126): a client
// authenticates to push, but its credentials may be stolen, or its
// software may push in a loop, and a pushed request used at the
// authorization endpoint is kept as long as the login it starts (ten
// minutes by default). Without this bound one client's requests, up to
// about 3.3 KB each, could take every record there is, about 3.4 GB,
// and every other relying party's logins would be refused or the node
// would run out of memory. With it, one client takes 64 MiB, about
// 20,000 requests with every parameter at its longest or 80,000 honest
// ones, and no more: at the 1,000 logins/s one node was measured to
// serve, all of them one client's, that is room for every login in
// flight for a minute.
const DefaultMaxPushedBytes = 64 << 20

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
	maxFront      int
	maxPushed     int
	since         time.Time
	now           func() time.Time

	mu         sync.Mutex
	swept      time.Time // the last sweep for a write while full
	requests   map[string]*store.AuthRequest
	front      int            // Cost of the requests not pushed
	frontN     int            // how many they are
	pushed     map[string]int // Cost of the pushed requests by client
	challenges map[string]challenge
	spaces     map[string]int             // challenges by namespace
	codes      map[string]*store.AuthCode // by string(hash)
	replay     map[string]time.Time       // key → expiry
	refused    [boundCount]uint64
}

// Bound names a bound that refused a write, for Stats.
type Bound int

const (
	// BoundEntries is MaxEntries, all records together.
	BoundEntries Bound = iota
	// BoundChallenges is MaxChallenges, in one namespace.
	BoundChallenges
	// BoundFront is MaxFrontBytes, the front channel's requests.
	BoundFront
	// BoundPushed is MaxPushedBytes, one client's pushed requests.
	BoundPushed
	boundCount
)

func (b Bound) String() string {
	switch b {
	case BoundEntries:
		return "entries"
	case BoundChallenges:
		return "challenges"
	case BoundFront:
		return "front_requests"
	case BoundPushed:
		return "pushed_requests"
	}
	return fmt.Sprintf("Bound(%d)", int(b))
}

// Bounds lists every Bound, for metrics.
var Bounds = []Bound{BoundEntries, BoundChallenges, BoundFront, BoundPushed}

// Stats is what a Mem holds, for metrics: the records of each kind,
// expired ones not yet swept included, and the writes refused as full
// since New, by the bound that refused them.
type Stats struct {
	// Requests counts every authorization request, FrontRequests those
	// among them not pushed.
	Requests, FrontRequests, Challenges, Codes, Replay int
	// FrontBytes is the Cost of the front channel's requests.
	FrontBytes int
	// MaxEntries and MaxFrontBytes are the bounds m was made with.
	MaxEntries, MaxFrontBytes int
	Refused                   map[Bound]uint64
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
	// MaxFrontBytes bounds the Cost of the authorization requests not
	// pushed among them (default DefaultMaxFrontBytes).
	MaxFrontBytes int
	// MaxPushedBytes bounds the Cost of the authorization requests each
	// client pushed (default DefaultMaxPushedBytes).
	MaxPushedBytes int
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
	if opt.MaxFrontBytes <= 0 {
		opt.MaxFrontBytes = DefaultMaxFrontBytes
	}
	if opt.MaxPushedBytes <= 0 {
		opt.MaxPushedBytes = DefaultMaxPushedBytes
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
		maxFront:      opt.MaxFrontBytes,
		maxPushed:     opt.MaxPushedBytes,
		since:         opt.Since,
		now:           opt.Now,
		requests:      make(map[string]*store.AuthRequest),
		challenges:    make(map[string]challenge),
		spaces:        make(map[string]int),
		pushed:        make(map[string]int),
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

// Stats reports what m holds and has refused.
func (m *Mem) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{
		Requests: len(m.requests), Challenges: len(m.challenges),
		Codes: len(m.codes), Replay: len(m.replay), FrontRequests: m.frontN, FrontBytes: m.front,
		MaxEntries: m.max, MaxFrontBytes: m.maxFront, Refused: make(map[Bound]uint64, boundCount),
	}
	for _, b := range Bounds {
		st.Refused[b] = m.refused[b]
	}
	return st
}

// room makes space for one more record. m.mu is held.
func (m *Mem) room() error {
	return m.makeRoom(func() Bound { return m.over() })
}

// challengeRoom makes space for one more challenge in namespace ns.
// m.mu is held.
func (m *Mem) challengeRoom(ns string) error {
	return m.makeRoom(func() Bound {
		if m.spaces[ns] >= m.maxChallenges {
			return BoundChallenges
		}
		return m.over()
	})
}

// requestRoom makes space for request r, new or in place of the one
// with its ID. A request its client pushed is refused only when new: a
// login under way is not ended for its client's other requests. m.mu is
// held.
func (m *Mem) requestRoom(r *store.AuthRequest) error {
	return m.makeRoom(func() Bound {
		old, replacing := m.requests[r.ID]
		if !r.Pushed && m.front-frontCost(old)+Cost(r) > m.maxFront {
			return BoundFront
		}
		if replacing {
			return noBound
		}
		if r.Pushed && m.pushed[r.ClientID]+Cost(r) > m.maxPushed {
			return BoundPushed
		}
		return m.over()
	})
}

// noBound is what a room check returns when the record fits.
const noBound = Bound(-1)

// over is BoundEntries if m has no room for one more record, noBound if
// it has.
func (m *Mem) over() Bound {
	if m.lenLocked() >= m.max {
		return BoundEntries
	}
	return noBound
}

// makeRoom returns nil if the record fits (check returns noBound); if
// not, it sweeps expired records (by the clock, read only then, and at
// most once per sweepGap) and asks again; ErrFull if it still does not
// fit, counted against the bound that refused it. m.mu is held.
func (m *Mem) makeRoom(check func() Bound) error {
	b := check()
	if b == noBound {
		return nil
	}
	if now := m.now(); !now.Before(m.swept.Add(sweepGap)) {
		m.swept = now
		m.sweepLocked(now, 0)
		if b = check(); b == noBound {
			return nil
		}
	}
	m.refused[b]++
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

// Cost is what an authorization request counts against MaxFrontBytes:
// about the heap it keeps alive on a 64-bit machine. That is the record
// with its place in the map, and each string rounded up to the size
// classes of the allocator (with its header, within a slice).
func Cost(r *store.AuthRequest) int {
	const (
		record = 448 // the struct, its pointer and key in the map
		header = 16  // a string's header within a slice
	)
	n := record
	for _, s := range []string{r.ID, r.ClientID, r.RedirectURI, r.State, r.Nonce, r.CodeChallenge,
		r.CodeChallengeMethod, r.ResponseMode, r.LoginHint, r.ProviderHint, r.DPoPJKT, r.HintSubject, r.Browser} {
		n += allocated(len(s))
	}
	for _, l := range [][]string{r.Scope, r.Prompt, r.ACRValues, r.UILocales} {
		if len(l) > 0 {
			n += allocated(header * len(l))
		}
		for _, s := range l {
			n += allocated(len(s))
		}
	}
	return n
}

// allocated is about what the heap gives for n bytes: n rounded up to 16.
func allocated(n int) int { return (n + 15) &^ 15 }

// putRequest stores a copy of r, in place of old (nil for none). m.mu
// is held.
func (m *Mem) putRequest(r, old *store.AuthRequest) {
	r = ownRequest(r)
	m.front += frontCost(r) - frontCost(old)
	m.frontN += front(r) - front(old)
	m.dropPushed(old)
	if r.Pushed {
		m.pushed[r.ClientID] += Cost(r)
	}
	m.requests[r.ID] = r
}

// dropPushed takes r, if its client pushed it, from its client's Cost
// of pushed requests. m.mu is held.
func (m *Mem) dropPushed(r *store.AuthRequest) {
	if r == nil || !r.Pushed {
		return
	}
	if m.pushed[r.ClientID] -= Cost(r); m.pushed[r.ClientID] <= 0 {
		delete(m.pushed, r.ClientID)
	}
}

// dropRequest deletes a request. m.mu is held.
func (m *Mem) dropRequest(id string) {
	if r, ok := m.requests[id]; ok {
		m.front -= frontCost(r)
		m.frontN -= front(r)
		m.dropPushed(r)
		delete(m.requests, id)
	}
}

// front is 1 if r is a request made at the front channel (not pushed),
// and 0 if it was pushed or is nil; frontCost is r's Cost if it is 1.
func front(r *store.AuthRequest) int {
	if r == nil || r.Pushed {
		return 0
	}
	return 1
}

func frontCost(r *store.AuthRequest) int {
	if front(r) == 0 {
		return 0
	}
	return Cost(r)
}

// CreateAuthRequest implements store.AuthRequests; ErrConflict if the ID
// is taken.
func (m *Mem) CreateAuthRequest(_ context.Context, r *store.AuthRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[r.ID]; ok {
		return fmt.Errorf("create auth request: %w", store.ErrConflict)
	}
	if err := m.requestRoom(r); err != nil {
		return fmt.Errorf("create auth request: %w", err)
	}
	m.putRequest(r, nil)
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
func (m *Mem) UseAuthRequest(_ context.Context, id, browser string, expiresAt, now time.Time) error {
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
	// In place, so that its client's cost of pushed requests takes in
	// the browser's binding: a login under way needs no room for it.
	used := *r
	used.Used, used.ExpiresAt, used.Browser = true, stored(expiresAt), browser
	m.putRequest(&used, r)
	return nil
}

// ExtendAuthRequest implements store.AuthRequests.
func (m *Mem) ExtendAuthRequest(_ context.Context, id, browser string, expiresAt, now time.Time, limit time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	switch {
	case !ok || !now.Before(r.ExpiresAt):
		return fmt.Errorf("extend auth request: %w", store.ErrNotFound)
	case browser == "" || r.Browser != browser || r.Pushed && !r.Used:
		return fmt.Errorf("extend auth request: not this browser's: %w", store.ErrNotFound)
	}
	expiresAt = stored(expiresAt)
	if !expiresAt.After(r.ExpiresAt) || expiresAt.After(stored(r.CreatedAt.Add(limit))) {
		return fmt.Errorf("extend auth request: not forward within %v of its creation: %w", limit, store.ErrConflict)
	}
	// In place, as UseAuthRequest: the request's cost does not change.
	extended := *r
	extended.ExpiresAt = expiresAt
	m.putRequest(&extended, r)
	return nil
}

// UpdateAuthRequest implements store.AuthRequests. Like a database row
// it can be updated after expiry until swept; an update that would take
// the front channel's requests over MaxFrontBytes fails with ErrFull.
func (m *Mem) UpdateAuthRequest(_ context.Context, r *store.AuthRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[r.ID]; !ok {
		return fmt.Errorf("update auth request: %w", store.ErrNotFound)
	}
	if err := m.requestRoom(r); err != nil {
		return fmt.Errorf("update auth request: %w", err)
	}
	// A sweep for room takes the request if it has expired.
	old, ok := m.requests[r.ID]
	if !ok {
		return fmt.Errorf("update auth request: expired: %w", store.ErrNotFound)
	}
	m.putRequest(r, old)
	return nil
}

// DeleteAuthRequest implements store.AuthRequests.
func (m *Mem) DeleteAuthRequest(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropRequest(id)
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
	m.codes[string(c.Hash)] = ownCode(c)
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
	m.dropRequest(requestID)
	return nil
}

// GetAuthCode implements store.AuthCodes.
func (m *Mem) GetAuthCode(_ context.Context, hash []byte) (*store.AuthCode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[string(hash)]
	if !ok {
		return nil, fmt.Errorf("get auth code: %w", store.ErrNotFound)
	}
	return cloneCode(c), nil
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

// unspend undoes RedeemAuthCode of the code with hash at now, if the
// code is still there and used at now: a redemption whose grant could
// not be stored leaves the code for the client's retry.
func (m *Mem) unspend(hash []byte, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.codes[string(hash)]; ok && c.UsedAt.Equal(stored(now)) {
		c.UsedAt = time.Time{}
	}
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
			m.dropRequest(rid)
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

// Remembered implements store.ReplayCache.
func (m *Mem) Remembered(_ context.Context, key string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.replay[key]
	return ok && now.Before(exp), nil
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
			m.dropRequest(id)
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

// ownRequest and ownCode copy a record to be kept, its strings too: one
// cut from a request's query or form would keep the whole of it (up to
// 64 KB) alive as long as the record, which Cost does not count.
func ownRequest(r *store.AuthRequest) *store.AuthRequest {
	c := cloneRequest(r)
	for _, s := range []*string{&c.ID, &c.ClientID, &c.RedirectURI, &c.State, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.ResponseMode, &c.LoginHint, &c.ProviderHint, &c.DPoPJKT, &c.HintSubject, &c.Browser} {
		*s = strings.Clone(*s)
	}
	for _, l := range [][]string{c.Scope, c.Prompt, c.ACRValues, c.UILocales} {
		for i := range l {
			l[i] = strings.Clone(l[i])
		}
	}
	return c
}

func ownCode(a *store.AuthCode) *store.AuthCode {
	c := cloneCode(a)
	for _, s := range []*string{&c.GrantID, &c.ClientID, &c.RedirectURI, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.SessionID, &c.PersonID, &c.Provider, &c.Level, &c.DPoPJKT} {
		*s = strings.Clone(*s)
	}
	for _, l := range [][]string{c.Scope, c.AMR} {
		for i := range l {
			l[i] = strings.Clone(l[i])
		}
	}
	return c
}
