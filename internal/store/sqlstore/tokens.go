package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const authCodeCols = "hash, grant_id, client_id, redirect_uri, scope, nonce, code_challenge, " +
	"code_challenge_method, session_id, person_id, provider, level, amr, auth_time, created_at, " +
	"expires_at, used_at, degraded, dpop_jkt"

func scanAuthCode(s scanner) (*store.AuthCode, error) {
	var (
		c                                  store.AuthCode
		scope, amr                         string
		authTime, created, expires, usedAt int64
	)
	err := s.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.RedirectURI, &scope, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.SessionID, &c.PersonID, &c.Provider, &c.Level, &amr, &authTime,
		&created, &expires, &usedAt, &c.Degraded, &c.DPoPJKT)
	if err != nil {
		return nil, err
	}
	c.AuthTime = fromMicros(authTime)
	c.CreatedAt = fromMicros(created)
	c.ExpiresAt = fromMicros(expires)
	c.UsedAt = fromMicros(usedAt)
	if err := errors.Join(
		decodeStringsInto("scope", scope, &c.Scope),
		decodeStringsInto("amr", amr, &c.AMR),
	); err != nil {
		return nil, err
	}
	return &c, nil
}

// CreateAuthCode implements store.AuthCodes; ErrConflict if the hash is
// taken.
func (db *DB) CreateAuthCode(ctx context.Context, c *store.AuthCode) error {
	if err := db.exec(ctx, db.st.insertAuthCode, authCodeArgs(c)...); err != nil {
		return fmt.Errorf("create auth code: %w", err)
	}
	return nil
}

func authCodeArgs(c *store.AuthCode) []any {
	return []any{c.Hash, c.GrantID, c.ClientID, c.RedirectURI, encodeStrings(c.Scope), c.Nonce,
		c.CodeChallenge, c.CodeChallengeMethod, c.SessionID, c.PersonID, c.Provider, c.Level,
		encodeStrings(c.AMR), micros(c.AuthTime), micros(c.CreatedAt), micros(c.ExpiresAt), micros(c.UsedAt),
		boolInt(c.Degraded), c.DPoPJKT}
}

// CreateAuthCodeForRequest implements store.AuthCodes: the request is
// deleted first, and only if that deleted a row is the code inserted;
// both are one statement (dialect.writableWith), or run in one
// savepoint, so of two concurrent calls for one request exactly one
// stores its code.
func (db *DB) CreateAuthCodeForRequest(ctx context.Context, c *store.AuthCode, requestID string) error {
	if db.st.createAuthCodeForRequest != nil {
		return db.createAuthCodeForRequest(ctx, c, requestID)
	}
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		res, err := tx.StmtContext(ctx, db.st.deleteAuthRequest).ExecContext(ctx, requestID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(fmt.Errorf("request %s: %w", requestID, store.ErrNotFound), err)
		}
		_, err = tx.StmtContext(ctx, db.st.insertAuthCode).ExecContext(ctx, authCodeArgs(c)...)
		return db.d.classify(err)
	}, func() { db.authReqs.drop(requestID) })
	if err != nil {
		return fmt.Errorf("create auth code for request: %w", err)
	}
	return nil
}

// createAuthCodeForRequest is CreateAuthCodeForRequest in one
// statement, which may run in autocommit: a round trip, where the
// savepoint's way costs BEGIN, the delete, the insert and COMMIT.
func (db *DB) createAuthCodeForRequest(ctx context.Context, c *store.AuthCode, requestID string) error {
	n, err := db.execThen(ctx, func(int64) { db.authReqs.drop(requestID) }, db.st.createAuthCodeForRequest,
		append([]any{requestID}, authCodeArgs(c)...)...)
	if err == nil && n == 0 {
		err = fmt.Errorf("request %s: %w", requestID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create auth code for request: %w", err)
	}
	return nil
}

// GetAuthCode implements store.AuthCodes.
func (db *DB) GetAuthCode(ctx context.Context, hash []byte) (*store.AuthCode, error) {
	c, err := scanAuthCode(db.st.getAuthCode.QueryRowContext(ctx, hash))
	if err != nil {
		return nil, fmt.Errorf("get auth code: %w", notFound(err))
	}
	return c, nil
}

// RedeemAuthCode implements store.AuthCodes with one conditional
// UPDATE ... RETURNING; only when it matches nothing does a read tell a
// reused code from an unknown one.
func (db *DB) RedeemAuthCode(ctx context.Context, hash []byte, now time.Time) (*store.AuthCode, error) {
	if now.IsZero() {
		return nil, errors.New("redeem auth code: zero time")
	}
	var c *store.AuthCode
	err := db.one(ctx, func(ctx context.Context, tx querier) error {
		var err error
		c, err = scanAuthCode(tx.StmtContext(ctx, db.st.redeemAuthCode).QueryRowContext(ctx, micros(now), hash))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		c, err = scanAuthCode(tx.StmtContext(ctx, db.st.getAuthCodeW).QueryRowContext(ctx, hash))
		if err != nil {
			return notFound(err)
		}
		return fmt.Errorf("already used: %w", store.ErrConflict)
	})
	if err != nil {
		return c, fmt.Errorf("redeem auth code: %w", err)
	}
	return c, nil
}

const grantCols = "id, client_id, person_id, session_id, scope, provider, level, amr, auth_time, " +
	"created_at, revoked_at, degraded"

func scanGrant(s scanner) (*store.Grant, error) {
	var (
		g                          store.Grant
		scope, amr                 string
		authTime, created, revoked int64
	)
	err := s.Scan(&g.ID, &g.ClientID, &g.PersonID, &g.SessionID, &scope, &g.Provider, &g.Level, &amr,
		&authTime, &created, &revoked, &g.Degraded)
	if err != nil {
		return nil, err
	}
	g.AuthTime = fromMicros(authTime)
	g.CreatedAt = fromMicros(created)
	g.RevokedAt = fromMicros(revoked)
	if err := errors.Join(
		decodeStringsInto("scope", scope, &g.Scope),
		decodeStringsInto("amr", amr, &g.AMR),
	); err != nil {
		return nil, err
	}
	return &g, nil
}

func grantArgs(g *store.Grant) []any {
	return []any{g.ID, g.ClientID, g.PersonID, g.SessionID, encodeStrings(g.Scope), g.Provider, g.Level,
		encodeStrings(g.AMR), micros(g.AuthTime), micros(g.CreatedAt), micros(g.RevokedAt), boolInt(g.Degraded)}
}

// CreateGrant implements store.Grants; ErrConflict if the ID is taken.
func (db *DB) CreateGrant(ctx context.Context, g *store.Grant) error {
	if err := db.exec(ctx, db.st.insertGrant, grantArgs(g)...); err != nil {
		return fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	return nil
}

// CreateGrantTokens implements store.Grants: one operation of several
// statements, so it runs in a savepoint and a conflict undoes all of it.
func (db *DB) CreateGrantTokens(ctx context.Context, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) error {
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		return db.insertGrantIssued(ctx, tx, g, e, tokens)
	})
	if err != nil {
		return fmt.Errorf("create grant with tokens: %w", err)
	}
	return nil
}

// CreateGrantTokensForCode implements store.Grants: the conditional
// UPDATE ... RETURNING of RedeemAuthCode and the inserts of
// CreateGrantTokens run in one savepoint, so a failed insert leaves the
// code unspent.
func (db *DB) CreateGrantTokensForCode(ctx context.Context, codeHash []byte, now time.Time, g *store.Grant, e *store.AuditEvent, tokens ...*store.Token) (*store.AuthCode, error) {
	if now.IsZero() {
		return nil, errors.New("create grant with tokens for code: zero time")
	}
	var c *store.AuthCode
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		var err error
		c, err = scanAuthCode(tx.StmtContext(ctx, db.st.redeemAuthCode).QueryRowContext(ctx, micros(now), codeHash))
		if errors.Is(err, sql.ErrNoRows) {
			c, err = scanAuthCode(tx.StmtContext(ctx, db.st.getAuthCodeW).QueryRowContext(ctx, codeHash))
			if err != nil {
				return fmt.Errorf("code: %w", notFound(err))
			}
			return fmt.Errorf("code: %w", store.ErrUsed)
		}
		if err != nil {
			return fmt.Errorf("code: %w", err)
		}
		return db.insertGrantIssued(ctx, tx, g, e, tokens)
	})
	if err != nil {
		if !errors.Is(err, store.ErrUsed) {
			c = nil
		}
		return c, fmt.Errorf("create grant with tokens for code: %w", err)
	}
	return c, nil
}

// insertGrantIssued stores g and its tokens in tx and appends e, the
// event recording their issue, if it is not nil. Where a WITH may hold
// an INSERT (dialect.writableWith), the grant and its tokens are one
// statement, a round trip rather than one each.
func (db *DB) insertGrantIssued(ctx context.Context, tx querier, g *store.Grant, e *store.AuditEvent, tokens []*store.Token) error {
	if !db.d.writableWith || len(tokens) == 0 {
		if _, err := tx.StmtContext(ctx, db.st.insertGrant).ExecContext(ctx, grantArgs(g)...); err != nil {
			return fmt.Errorf("grant %s: %w", g.ID, db.d.classify(err))
		}
		return db.insertIssued(ctx, tx, e, tokens)
	}
	row := "(" + placeholders(len(splitCols(tokenCols))) + ")"
	q := "WITH g AS (" + insertSQL("grants", grantCols) + ") INSERT INTO tokens (" + tokenCols + ") VALUES " +
		strings.TrimSuffix(strings.Repeat(row+", ", len(tokens)), ", ")
	args := grantArgs(g)
	for _, t := range tokens {
		args = append(args, tokenArgs(t)...)
	}
	if _, err := tx.ExecContext(ctx, db.d.rebind(q), args...); err != nil {
		return fmt.Errorf("grant %s with its tokens: %w", g.ID, db.d.classify(err))
	}
	return db.auditIn(ctx, tx, e)
}

// insertIssued stores tokens in tx and appends e, the event recording
// their issue, if it is not nil.
func (db *DB) insertIssued(ctx context.Context, tx querier, e *store.AuditEvent, tokens []*store.Token) error {
	ins := tx.StmtContext(ctx, db.st.insertToken)
	for _, t := range tokens {
		if _, err := ins.ExecContext(ctx, tokenArgs(t)...); err != nil {
			return fmt.Errorf("%s token: %w", t.Kind, db.d.classify(err))
		}
	}
	return db.auditIn(ctx, tx, e)
}

// GetGrant implements store.Grants.
func (db *DB) GetGrant(ctx context.Context, id string) (*store.Grant, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get grant: %w", store.ErrNotFound)
	}
	g, err := scanGrant(db.st.getGrant.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get grant %s: %w", id, notFound(err))
	}
	return g, nil
}

// RevokeGrant implements store.Grants; a second revocation keeps the
// first RevokedAt.
func (db *DB) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	if db.unmatchable(id) {
		return fmt.Errorf("revoke grant: %w", store.ErrNotFound)
	}
	if now.IsZero() {
		return fmt.Errorf("revoke grant %s: zero time", id)
	}
	if err := db.execOne(ctx, db.st.revokeGrant, micros(now), id); err != nil {
		return fmt.Errorf("revoke grant %s: %w", id, err)
	}
	return nil
}

const tokenCols = "hash, kind, grant_id, client_id, scope, created_at, expires_at, used_at, jkt, parent, revoked_at"

func scanToken(s scanner) (*store.Token, error) {
	var (
		t                                 store.Token
		scope                             string
		created, expires, usedAt, revoked int64
	)
	err := s.Scan(&t.Hash, &t.Kind, &t.GrantID, &t.ClientID, &scope, &created, &expires, &usedAt, &t.JKT, &t.Parent, &revoked)
	if err != nil {
		return nil, err
	}
	if len(t.Parent) == 0 {
		t.Parent = nil
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
	t.UsedAt = fromMicros(usedAt)
	t.RevokedAt = fromMicros(revoked)
	if err := decodeStringsInto("scope", scope, &t.Scope); err != nil {
		return nil, err
	}
	return &t, nil
}

func tokenArgs(t *store.Token) []any {
	return []any{t.Hash, t.Kind, t.GrantID, t.ClientID, encodeStrings(t.Scope), micros(t.CreatedAt),
		micros(t.ExpiresAt), micros(t.UsedAt), t.JKT, append([]byte{}, t.Parent...), micros(t.RevokedAt)}
}

// CreateToken implements store.Tokens; ErrConflict if the hash is taken.
func (db *DB) CreateToken(ctx context.Context, t *store.Token) error {
	if err := db.exec(ctx, db.st.insertToken, tokenArgs(t)...); err != nil {
		return fmt.Errorf("create %s token: %w", t.Kind, err)
	}
	return nil
}

// GetToken implements store.Tokens.
func (db *DB) GetToken(ctx context.Context, hash []byte) (*store.Token, error) {
	t, err := scanToken(db.st.getToken.QueryRowContext(ctx, hash))
	if err != nil {
		return nil, fmt.Errorf("get token: %w", notFound(err))
	}
	return t, nil
}

// RotateToken implements store.Tokens. The use is a conditional UPDATE
// with RETURNING, as in RedeemAuthCode, so two concurrent rotations
// cannot both win; with new tokens or an event it runs in a savepoint
// with their inserts, which a failure undoes together with the use.
func (db *DB) RotateToken(ctx context.Context, hash []byte, now time.Time, e *store.AuditEvent, tokens ...*store.Token) (*store.Token, error) {
	if now.IsZero() {
		return nil, errors.New("rotate token: zero time")
	}
	var used, reused *store.Token
	err := db.wr.do(ctx, len(tokens) > 0 || e != nil, func(ctx context.Context, tx querier) error {
		used, reused = nil, nil
		t, err := scanToken(tx.StmtContext(ctx, db.st.useToken).QueryRowContext(ctx, micros(now), hash))
		if errors.Is(err, sql.ErrNoRows) {
			t, err = scanToken(tx.StmtContext(ctx, db.st.getTokenW).QueryRowContext(ctx, hash))
			if err != nil {
				return notFound(err)
			}
			reused = t
			return fmt.Errorf("already used: %w", store.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := db.insertIssued(ctx, tx, e, issuedBy(hash, tokens)); err != nil {
			return err
		}
		used = t
		return nil
	})
	if err != nil {
		return reused, fmt.Errorf("rotate token: %w", err)
	}
	return used, nil
}

// issuedBy sets the Parent of tokens to hash, the refresh token whose
// rotation issues them, and returns them.
func issuedBy(hash []byte, tokens []*store.Token) []*store.Token {
	for _, t := range tokens {
		t.Parent = hash
	}
	return tokens
}

// RetryRotation implements store.Tokens in one savepoint: the rotated
// token's row is held (holdRotated), the tokens issued from it and
// still unused are replaced, and only if none issued from it is left
// live, that is used, are the new tokens stored. The writer's
// transactions of every node run one at a time already (the audit
// chain's lock, ADR 13); the held row keeps the retry right without
// that: on PostgreSQL concurrent retries of one token then run one
// after the other, each statement of the later one seeing what the
// earlier one committed (READ COMMITTED), and a use of a token issued
// from it (RotateToken, MarkTokenUsed), waiting for the replacement's
// lock on its row or holding it, either finds it replaced or leaves it
// used.
func (db *DB) RetryRotation(ctx context.Context, hash []byte, since, now time.Time, e *store.AuditEvent, tokens ...*store.Token) (*store.Token, []*store.Token, error) {
	if now.IsZero() {
		return nil, nil, errors.New("retry rotation: zero time")
	}
	var (
		old      *store.Token
		replaced []*store.Token
	)
	err := db.wr.do(ctx, true, func(ctx context.Context, tx querier) error {
		old, replaced = nil, nil
		t, err := db.holdRotated(ctx, tx, hash, since)
		if err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, db.st.replaceIssued).QueryContext(ctx, micros(now), micros(now), hash)
		if err != nil {
			return err
		}
		if replaced, err = collect(rows, scanToken); err != nil {
			return err
		}
		var live int64
		if err := tx.StmtContext(ctx, db.st.liveIssued).QueryRowContext(ctx, hash).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return fmt.Errorf("%d tokens issued by the rotation were used: %w", live, store.ErrUsed)
		}
		if len(replaced) == 0 {
			return fmt.Errorf("no token issued by the rotation to replace: %w", store.ErrConflict)
		}
		if err := db.insertIssued(ctx, tx, e, issuedBy(hash, tokens)); err != nil {
			return err
		}
		old = t
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("retry rotation: %w", err)
	}
	return old, replaced, nil
}

// holdRotated writes, changing nothing, the refresh token with hash
// rotated at or after since, and returns it; ErrConflict if it is not
// such a token, ErrNotFound if it is unknown.
func (db *DB) holdRotated(ctx context.Context, tx querier, hash []byte, since time.Time) (*store.Token, error) {
	t, err := scanToken(tx.StmtContext(ctx, db.st.holdRotated).QueryRowContext(ctx, hash))
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := scanToken(tx.StmtContext(ctx, db.st.getTokenW).QueryRowContext(ctx, hash)); err != nil {
			return nil, notFound(err)
		}
		return nil, fmt.Errorf("not a rotated refresh token: %w", store.ErrConflict)
	}
	if err != nil {
		return nil, err
	}
	if t.UsedAt.Before(since) {
		return nil, fmt.Errorf("rotated at %s, before %s: %w", t.UsedAt.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano), store.ErrConflict)
	}
	return t, nil
}

// MarkTokenUsed implements store.Tokens with one conditional UPDATE;
// only when it matches nothing does a read tell a replaced token from
// one used already or an unknown one.
func (db *DB) MarkTokenUsed(ctx context.Context, hash []byte, now time.Time) (bool, error) {
	if now.IsZero() {
		return false, errors.New("mark token used: zero time")
	}
	n, err := db.execN(ctx, db.st.markTokenUsed, micros(now), hash)
	if err != nil {
		return false, fmt.Errorf("mark token used: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	t, err := db.GetToken(ctx, hash)
	if err != nil {
		return false, fmt.Errorf("mark token used: %w", err)
	}
	return t.RevokedAt.IsZero(), nil
}

// Remember implements store.ReplayCache with one upsert that only
// overwrites an entry already expired at now. Any string is a key
// (storedKey).
func (db *DB) Remember(ctx context.Context, key string, expiresAt, now time.Time) error {
	n, err := db.execN(ctx, db.st.remember, db.storedKey(key), micros(expiresAt), micros(now))
	if err != nil {
		return fmt.Errorf("remember: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("remember: seen before: %w", store.ErrConflict)
	}
	return nil
}

// Remembered implements store.ReplayCache with one read.
func (db *DB) Remembered(ctx context.Context, key string, now time.Time) (bool, error) {
	var n int64
	if err := db.st.remembered.QueryRowContext(ctx, key, micros(now)).Scan(&n); err != nil {
		return false, fmt.Errorf("remembered: %w", err)
	}
	return n > 0, nil
}

// ListOfflineAccess implements store.Grants: the person's live refresh
// tokens under grants not revoked, those of grants with offline_access
// gathered by client.
func (db *DB) ListOfflineAccess(ctx context.Context, personID string, now time.Time) ([]*store.OfflineAccess, error) {
	if db.unmatchable(personID) {
		return nil, nil
	}
	rows, err := read(db.st.offlineRefreshTokens.QueryContext(ctx, personID, micros(now)))
	if err != nil {
		return nil, fmt.Errorf("list offline access of person %s: %w", personID, err)
	}
	byClient := map[string]*store.OfflineAccess{}
	for rows.Next() {
		var (
			clientID, scope    string
			granted, tokenMade int64
			scopes             []string
		)
		if err := rows.Scan(&clientID, &scope, &granted, &tokenMade); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list offline access: %w", unavailable(err, false))
		}
		if err := decodeStringsInto("scope", scope, &scopes); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list offline access: %w", err)
		}
		if !slices.Contains(scopes, store.ScopeOfflineAccess) {
			continue
		}
		a := byClient[clientID]
		if a == nil {
			a = &store.OfflineAccess{ClientID: clientID, GrantedAt: fromMicros(granted)}
			byClient[clientID] = a
		}
		if g := fromMicros(granted); g.Before(a.GrantedAt) {
			a.GrantedAt = g
		}
		// A refresh token made after its grant was made by a refresh.
		if tokenMade > granted {
			if r := fromMicros(tokenMade); r.After(a.RefreshedAt) {
				a.RefreshedAt = r
			}
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("list offline access: %w", unavailable(err, false))
	}
	out := slices.Collect(maps.Values(byClient))
	slices.SortFunc(out, func(a, b *store.OfflineAccess) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// ListPersonGrants implements store.Grants with one read: each grant
// with the newest of its refresh tokens made by a refresh and the last
// expiry of those still live.
func (db *DB) ListPersonGrants(ctx context.Context, personID string, now time.Time) ([]*store.PersonGrant, error) {
	if personID == "" || db.unmatchable(personID) {
		return []*store.PersonGrant{}, nil
	}
	rows, err := read(db.rstmt(ctx, db.st.listPersonGrants).QueryContext(ctx, micros(now), personID))
	if err != nil {
		return nil, fmt.Errorf("list grants of person %s: %w", personID, err)
	}
	out, err := collect(rows, func(s scanner) (*store.PersonGrant, error) {
		var refreshed, until int64
		g, err := scanGrant(withExtra{s, []any{&refreshed, &until}})
		if err != nil {
			return nil, err
		}
		return &store.PersonGrant{Grant: *g, RefreshedAt: fromMicros(refreshed), RefreshUntil: fromMicros(until)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list grants of person %s: %w", personID, err)
	}
	return out, nil
}

// withExtra scans a row that has, after the columns a scan function
// reads, the columns extra points to.
type withExtra struct {
	s     scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.s.Scan(append(dest, w.extra...)...) }

// RevokePersonClientGrants implements store.Grants: a read of the
// session asking (changingSessionIn), one UPDATE and the event, in one
// savepoint. The session is read as committed, without a lock, as
// EndPersonSessions reads it.
func (db *DB) RevokePersonClientGrants(ctx context.Context, personID, clientID, by string, now time.Time, e *store.AuditEvent) (int, error) {
	if now.IsZero() {
		return 0, errors.New("revoke grants of person to client: zero time")
	}
	var n int64
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		n = 0
		if err := db.changingSessionIn(ctx, tx, personID, by); err != nil {
			return err
		}
		if !db.unmatchable(personID, clientID) {
			var err error
			if n, err = db.execCount(ctx, tx, db.st.revokePersonClientGrants, micros(now), personID, clientID); err != nil {
				return fmt.Errorf("revoke grants: %w", err)
			}
		}
		return db.auditIn(ctx, tx, e)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke grants of person %s to client %s: %w", personID, clientID, err)
	}
	return int(n), nil
}
