package flowmem

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// Over returns a store.Store whose authorization requests, challenges,
// authorization codes and replay cache are m's, and everything else
// durable's. Closing it closes durable.
func Over(durable store.Store, m *Mem) *Store {
	return &Store{Store: durable, mem: m, durable: durable}
}

// Store is a durable store with its flow state in a Mem.
type Store struct {
	store.Store // every aggregate not overridden below
	mem         *Mem
	durable     store.Store
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.ReplayHorizon = (*Store)(nil)
)

// Durable is the store under the flow state, for what must outlive the
// process even when it is a replay cache (rate limits, for instance).
func (s *Store) Durable() store.Store { return s.durable }

// Mem is the flow state.
func (s *Store) Mem() *Mem { return s.mem }

// RemembersSince implements store.ReplayHorizon.
func (s *Store) RemembersSince() time.Time { return s.mem.RemembersSince() }

// DeleteClient implements store.Clients: the durable store removes the
// client, revokes its grants and abandons its webhook deliveries, then
// the client's requests and unredeemed codes leave memory.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time, e *store.AuditEvent) (int, error) {
	n, err := s.durable.DeleteClient(ctx, id, now, e)
	if err != nil {
		return n, err
	}
	s.mem.DeleteClient(id)
	return n, nil
}

// CreateAuthRequest implements store.AuthRequests.
func (s *Store) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	return s.mem.CreateAuthRequest(ctx, r)
}

// GetAuthRequest implements store.AuthRequests.
func (s *Store) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	return s.mem.GetAuthRequest(ctx, id, now)
}

// UseAuthRequest implements store.AuthRequests.
func (s *Store) UseAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time) error {
	return s.mem.UseAuthRequest(ctx, id, browser, expiresAt, now)
}

// ExtendAuthRequest implements store.AuthRequests.
func (s *Store) ExtendAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time, limit time.Duration) error {
	return s.mem.ExtendAuthRequest(ctx, id, browser, expiresAt, now, limit)
}

// UpdateAuthRequest implements store.AuthRequests.
func (s *Store) UpdateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	return s.mem.UpdateAuthRequest(ctx, r)
}

// DeleteAuthRequest implements store.AuthRequests.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.mem.DeleteAuthRequest(ctx, id)
}

// PutChallenge implements store.Challenges.
func (s *Store) PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	return s.mem.PutChallenge(ctx, id, data, expiresAt)
}

// TakeChallenge implements store.Challenges.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error) {
	return s.mem.TakeChallenge(ctx, id, now)
}

// CreateAuthCode implements store.AuthCodes.
func (s *Store) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	return s.mem.CreateAuthCode(ctx, c)
}

// CreateAuthCodeForRequest implements store.AuthCodes.
func (s *Store) CreateAuthCodeForRequest(ctx context.Context, c *store.AuthCode, requestID string) error {
	return s.mem.CreateAuthCodeForRequest(ctx, c, requestID)
}

// GetAuthCode implements store.AuthCodes.
func (s *Store) GetAuthCode(ctx context.Context, hash []byte) (*store.AuthCode, error) {
	return s.mem.GetAuthCode(ctx, hash)
}

// RedeemAuthCode implements store.AuthCodes.
func (s *Store) RedeemAuthCode(ctx context.Context, hash []byte, now time.Time) (*store.AuthCode, error) {
	return s.mem.RedeemAuthCode(ctx, hash, now)
}

// CreateGrantTokensForCode implements store.Grants in two steps, as the
// code is in memory and the grant in the durable store: the code is
// spent in memory, then the grant, its tokens and e are stored. If that
// write fails, whether it was refused or its outcome is unknown, the
// code is unspent again, so the client may retry: a grant that was
// stored after all keeps the code's grant ID, and the retry finds it
// taken (ErrConflict). Spending in memory is no durable write, so no
// crash of the node can leave the code spent without its grant: it
// loses the code with the rest of its memory.
func (s *Store) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	c, err := s.mem.RedeemAuthCode(ctx, codeHash, now)
	switch {
	case errors.Is(err, store.ErrConflict):
		return c, fmt.Errorf("create grant with tokens for code: %w", store.ErrUsed)
	case err != nil:
		return nil, fmt.Errorf("create grant with tokens for code: %w", err)
	}
	if err := s.durable.CreateGrantTokens(ctx, g, e, tokens...); err != nil {
		s.mem.unspend(codeHash, now)
		return nil, fmt.Errorf("create grant with tokens for code: %w", err)
	}
	return c, nil
}

// Remember implements store.ReplayCache.
func (s *Store) Remember(ctx context.Context, key string, expiresAt, now time.Time) error {
	return s.mem.Remember(ctx, key, expiresAt, now)
}

// Remembered implements store.ReplayCache.
func (s *Store) Remembered(ctx context.Context, key string, now time.Time) (bool, error) {
	return s.mem.Remembered(ctx, key, now)
}

// DeleteExpired implements store.Sweeper over both parts.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.mem.DeleteExpired(ctx, now)
	d, derr := s.durable.DeleteExpired(ctx, now)
	return n + d, errors.Join(err, derr)
}
