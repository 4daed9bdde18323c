package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const clientCols = "id, name, auth_method, secret_hash, jwks, jwks_uri, redirect_uris, " +
	"post_logout_redirect_uris, require_par, allowed_levels, sector_id, claims, source, created_at, providers, degraded_level, " +
	"status_webhook, status_components, legacy_endpoint_audience, dpop_bound_access_tokens, backchannel_logout_uri, introspect_tokens_of, refresh_tokens, id_token_alg"

func clientArgs(c *store.Client) []any {
	return []any{
		c.ID, c.Name, c.AuthMethod, c.SecretHash, []byte(c.JWKS), c.JWKSURI,
		encodeStrings(c.RedirectURIs), encodeStrings(c.PostLogoutRedirectURIs), boolInt(c.RequirePAR),
		encodeStrings(c.AllowedLevels), c.SectorID, encodeStrings(c.Claims), c.Source, micros(c.CreatedAt),
		encodeStrings(c.Providers), c.DegradedLevel, c.StatusWebhook, encodeStrings(c.StatusComponents),
		boolInt(c.LegacyEndpointAudience), boolInt(c.DPoPBoundAccessTokens), c.BackchannelLogoutURI,
		encodeStrings(c.IntrospectTokensOf), boolInt(c.RefreshTokens), c.IDTokenAlg,
	}
}

func scanClient(s scanner) (*store.Client, error) {
	var (
		c                             store.Client
		jwks                          []byte
		redirects, postLogout, levels string
		claims, providers, components string
		introspect                    string
		created                       int64
	)
	err := s.Scan(&c.ID, &c.Name, &c.AuthMethod, &c.SecretHash, &jwks, &c.JWKSURI,
		&redirects, &postLogout, &c.RequirePAR, &levels, &c.SectorID, &claims, &c.Source, &created, &providers, &c.DegradedLevel,
		&c.StatusWebhook, &components, &c.LegacyEndpointAudience, &c.DPoPBoundAccessTokens, &c.BackchannelLogoutURI,
		&introspect, &c.RefreshTokens, &c.IDTokenAlg)
	if err != nil {
		return nil, err
	}
	if jwks != nil {
		c.JWKS = json.RawMessage(jwks)
	}
	c.CreatedAt = fromMicros(created)
	if err := errors.Join(
		decodeStringsInto("redirect_uris", redirects, &c.RedirectURIs),
		decodeStringsInto("post_logout_redirect_uris", postLogout, &c.PostLogoutRedirectURIs),
		decodeStringsInto("allowed_levels", levels, &c.AllowedLevels),
		decodeStringsInto("claims", claims, &c.Claims),
		decodeStringsInto("providers", providers, &c.Providers),
		decodeStringsInto("status_components", components, &c.StatusComponents),
		decodeStringsInto("introspect_tokens_of", introspect, &c.IntrospectTokensOf),
	); err != nil {
		return nil, err
	}
	return &c, nil
}

// AddClient implements store.Clients: the insert and the audit event in
// one savepoint, so that neither is kept without the other.
func (db *DB) AddClient(ctx context.Context, c *store.Client, e *store.AuditEvent) error {
	err := db.wr.do(ctx, true, func(ctx context.Context, tx querier) error {
		if _, err := db.execCount(ctx, tx, db.st.insertClient, clientArgs(c)...); err != nil {
			return err
		}
		return db.auditIn(ctx, tx, e)
	})
	if err != nil {
		return fmt.Errorf("add client %s: %w", c.ID, err)
	}
	return nil
}

// PutClient implements store.Clients with one statement: an upsert
// that replaces only a client of the same sector, and so changes no row
// otherwise.
func (db *DB) PutClient(ctx context.Context, c *store.Client) error {
	n, err := db.execN(ctx, db.st.upsertClient, clientArgs(c)...)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: the stored client has another sector than %q", store.ErrConflict, c.Sector())
	}
	if err != nil {
		return fmt.Errorf("put client %s: %w", c.ID, err)
	}
	return nil
}

// DeclareClient implements store.Clients: the stored client read,
// compared and replaced, and the event appended, in one savepoint. On
// PostgreSQL the write transaction holds the audit chain's lock from
// its BEGIN, as every node's does, so no other node's write comes
// between the read and the replacement; the upsert keeps its sector
// condition all the same.
func (db *DB) DeclareClient(ctx context.Context, c *store.Client, audit func(old *store.Client) *store.AuditEvent) (bool, error) {
	var changed bool
	err := db.wr.do(ctx, true, func(ctx context.Context, tx querier) error {
		changed = false
		old, err := scanClient(tx.StmtContext(ctx, db.st.getClientW).QueryRowContext(ctx, c.ID))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = nil
		case err != nil:
			return notFound(err)
		case old.Sector() != c.Sector():
			return fmt.Errorf("%w: the stored client has another sector than %q", store.ErrConflict, c.Sector())
		case len(old.Changes(c)) == 0:
			return nil
		}
		put := c
		if old != nil {
			put = c.Clone()
			put.CreatedAt = old.CreatedAt
		}
		n, err := db.execCount(ctx, tx, db.st.upsertClient, clientArgs(put)...)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: the stored client has another sector than %q", store.ErrConflict, c.Sector())
		}
		changed = true
		if audit == nil {
			return nil
		}
		return db.auditIn(ctx, tx, audit(old))
	})
	if err != nil {
		return false, fmt.Errorf("declare client %s: %w", c.ID, err)
	}
	return changed, nil
}

// GetClient implements store.Clients.
func (db *DB) GetClient(ctx context.Context, id string) (*store.Client, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get client: %w", store.ErrNotFound)
	}
	c, err := scanClient(db.rstmt(ctx, db.st.getClient).QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get client %s: %w", id, notFound(err))
	}
	return c, nil
}

// ListClients implements store.Clients; clients come ordered by ID.
func (db *DB) ListClients(ctx context.Context) ([]*store.Client, error) {
	rows, err := read(db.st.listClients.QueryContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	out, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return out, nil
}

// DeleteClient implements store.Clients: one operation of several
// statements, so it runs in a savepoint and a failure undoes all of it.
// The client's grants are found through its stored tokens: the tokens
// table holds only tokens not yet swept, while grants are kept for good,
// and neither has an index by client that every login would pay for.
// Nor have authorization requests and codes, which live for minutes:
// the few rows of them are found by reading the tables through. Webhook
// deliveries are found by their index by client.
func (db *DB) DeleteClient(ctx context.Context, id string, now time.Time, e *store.AuditEvent) (int, error) {
	if now.IsZero() {
		return 0, fmt.Errorf("delete client %s: zero time", id)
	}
	var (
		revoked  int64
		requests []string
	)
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		requests = requests[:0]
		n, err := db.execCount(ctx, tx, db.st.deleteClient, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if revoked, err = db.execCount(ctx, tx, db.st.revokeClientGrants, micros(now), id, id); err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		if requests, err = deleteIDs(ctx, tx.StmtContext(ctx, db.st.deleteClientRequests), id); err != nil {
			return fmt.Errorf("delete authorization requests: %w", db.d.classify(err))
		}
		if _, err := tx.StmtContext(ctx, db.st.deleteClientCodes).ExecContext(ctx, id); err != nil {
			return fmt.Errorf("delete authorization codes: %w", db.d.classify(err))
		}
		_, err = tx.StmtContext(ctx, db.st.abandonClientWebhooks).ExecContext(ctx, micros(now), store.DeliveryClientRemoved, []byte{}, id)
		if err != nil {
			return fmt.Errorf("abandon webhook deliveries: %w", db.d.classify(err))
		}
		return db.auditIn(ctx, tx, e)
	}, func() {
		for _, r := range requests {
			db.authReqs.drop(r)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("delete client %s: %w", id, err)
	}
	return int(revoked), nil
}

// ChangeClientSector implements store.Clients: one operation of two
// statements and the audit event, in a savepoint. The update names the
// sector read before it, so a change made meanwhile by another node is
// not overwritten; the grants are found as DeleteClient finds them.
func (db *DB) ChangeClientSector(ctx context.Context, c *store.Client, from string, now time.Time, e *store.AuditEvent) (int, error) {
	if now.IsZero() {
		return 0, fmt.Errorf("change the sector of client %s: zero time", c.ID)
	}
	args := append(clientArgs(c)[1:], c.ID, from)
	var revoked int64
	err := db.wr.do(ctx, true, func(ctx context.Context, tx querier) error {
		n, err := db.execCount(ctx, tx, db.st.changeClientSector, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.sectorMismatch(ctx, tx, c.ID, from)
		}
		if revoked, err = db.execCount(ctx, tx, db.st.revokeClientGrants, micros(now), c.ID, c.ID); err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		return db.auditIn(ctx, tx, e)
	})
	if err != nil {
		return 0, fmt.Errorf("change the sector of client %s: %w", c.ID, err)
	}
	return int(revoked), nil
}

// sectorMismatch says why ChangeClientSector changed no row: there is
// no client id (store.ErrNotFound), or its sector is not from
// (store.ErrConflict).
func (db *DB) sectorMismatch(ctx context.Context, tx querier, id, from string) error {
	c, err := scanClient(tx.StmtContext(ctx, db.st.getClientW).QueryRowContext(ctx, id))
	if err != nil {
		return notFound(err)
	}
	return fmt.Errorf("%w: its sector is %q, not %q", store.ErrConflict, c.Sector(), from)
}

// deleteIDs runs a DELETE … RETURNING id and returns the IDs.
func deleteIDs(ctx context.Context, st *sql.Stmt, args ...any) ([]string, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// notFound turns sql.ErrNoRows into store.ErrNotFound, and marks an
// error that means the store could not be reached (unavailable).
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return unavailable(err, false)
}

// collect scans every row with scan and closes rows. The result is never
// nil, so it encodes as [] rather than null.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, unavailable(err, false)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err, false)
	}
	return out, nil
}
