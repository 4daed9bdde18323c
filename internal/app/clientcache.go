package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// clientCacheTTL is how long a node serves a relying party's registration
// from memory. Every login looks its client up five times (PAR, the
// authorization endpoint, the login attempt, the code, the token
// endpoint), and each lookup is a database read; clients change rarely,
// by an operator. A client
// removed or changed through another process (`varde clients`, another
// node) therefore takes effect on this node within this long; changes
// made through this node's own store take effect at once.
const clientCacheTTL = time.Second

// clientCache is store.Clients with GetClient answered from memory for up
// to ttl. Unknown clients and errors are never cached, so a client added
// elsewhere works at once. Callers get a copy each time, so none can
// change what another sees.
type clientCache struct {
	store.Clients
	ttl time.Duration
	now func() time.Time
	// watch, if set, is told what each read of the store found: the
	// client, or nil for one the store does not hold.
	watch func(id string, c *store.Client)

	mu sync.RWMutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c       *store.Client
	fetched time.Time
}

// maxCachedClients bounds the cache; past it, it starts over.
const maxCachedClients = 4096

func newClientCache(c store.Clients, ttl time.Duration, now func() time.Time) *clientCache {
	return &clientCache{Clients: c, ttl: ttl, now: now, m: map[string]cachedClient{}}
}

// GetClient implements store.Clients.
func (cc *clientCache) GetClient(ctx context.Context, id string) (*store.Client, error) {
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.m[id]
	cc.mu.RUnlock()
	if ok && now.Sub(e.fetched) >= 0 && now.Sub(e.fetched) < cc.ttl {
		return e.c.Clone(), nil
	}
	c, err := cc.Clients.GetClient(ctx, id)
	switch {
	case cc.watch == nil:
	case err == nil:
		cc.watch(id, c)
	case errors.Is(err, store.ErrNotFound):
		cc.watch(id, nil)
	}
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if len(cc.m) >= maxCachedClients {
		clear(cc.m)
	}
	cc.m[id] = cachedClient{c: c.Clone(), fetched: now}
	cc.mu.Unlock()
	return c, nil
}

// AddClient implements store.Clients.
func (cc *clientCache) AddClient(ctx context.Context, c *store.Client, e *store.AuditEvent) error {
	defer cc.forget(c.ID)
	return cc.Clients.AddClient(ctx, c, e)
}

// PutClient implements store.Clients.
func (cc *clientCache) PutClient(ctx context.Context, c *store.Client) error {
	defer cc.forget(c.ID)
	return cc.Clients.PutClient(ctx, c)
}

// DeclareClient implements store.Clients.
func (cc *clientCache) DeclareClient(ctx context.Context, c *store.Client, audit func(old *store.Client) *store.AuditEvent) (bool, error) {
	defer cc.forget(c.ID)
	return cc.Clients.DeclareClient(ctx, c, audit)
}

// ChangeClientSector implements store.Clients.
func (cc *clientCache) ChangeClientSector(ctx context.Context, c *store.Client, from string, now time.Time, e *store.AuditEvent) (int, error) {
	defer cc.forget(c.ID)
	return cc.Clients.ChangeClientSector(ctx, c, from, now, e)
}

// DeleteClient implements store.Clients.
func (cc *clientCache) DeleteClient(ctx context.Context, id string, now time.Time, e *store.AuditEvent) (int, error) {
	defer cc.forget(id)
	return cc.Clients.DeleteClient(ctx, id, now, e)
}

func (cc *clientCache) forget(id string) {
	cc.mu.Lock()
	delete(cc.m, id)
	cc.mu.Unlock()
}

var _ store.Clients = (*clientCache)(nil)
