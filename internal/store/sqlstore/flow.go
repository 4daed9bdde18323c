package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const authRequestCols = "id, client_id, redirect_uri, scope, state, nonce, code_challenge, " +
	"code_challenge_method, response_mode, prompt, max_age, acr_values, ui_locales, login_hint, " +
	"pushed, used, created_at, expires_at, provider_hint, dpop_jkt, hint_subject, browser"

// authRequestArgs lists r's columns with the ID first (for INSERT) or
// last (for UPDATE ... WHERE id = ?).
func authRequestArgs(r *store.AuthRequest, idLast bool) []any {
	args := []any{
		r.ClientID, r.RedirectURI, encodeStrings(r.Scope), r.State, r.Nonce, r.CodeChallenge,
		r.CodeChallengeMethod, r.ResponseMode, encodeStrings(r.Prompt), int64(r.MaxAge),
		encodeStrings(r.ACRValues), encodeStrings(r.UILocales), r.LoginHint, boolInt(r.Pushed),
		boolInt(r.Used), micros(r.CreatedAt), micros(r.ExpiresAt), r.ProviderHint, r.DPoPJKT, r.HintSubject, r.Browser,
	}
	if idLast {
		return append(args, r.ID)
	}
	return append([]any{r.ID}, args...)
}

func scanAuthRequest(s scanner) (*store.AuthRequest, error) {
	var (
		r                           store.AuthRequest
		scope, prompt, acr, locales string
		maxAge, created, expires    int64
	)
	err := s.Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scope, &r.State, &r.Nonce, &r.CodeChallenge,
		&r.CodeChallengeMethod, &r.ResponseMode, &prompt, &maxAge, &acr, &locales, &r.LoginHint,
		&r.Pushed, &r.Used, &created, &expires, &r.ProviderHint, &r.DPoPJKT, &r.HintSubject, &r.Browser)
	if err != nil {
		return nil, err
	}
	r.MaxAge = int(maxAge)
	r.CreatedAt = fromMicros(created)
	r.ExpiresAt = fromMicros(expires)
	if err := errors.Join(
		decodeStringsInto("scope", scope, &r.Scope),
		decodeStringsInto("prompt", prompt, &r.Prompt),
		decodeStringsInto("acr_values", acr, &r.ACRValues),
		decodeStringsInto("ui_locales", locales, &r.UILocales),
	); err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateAuthRequest implements store.AuthRequests; ErrConflict if the ID
// is taken.
func (db *DB) CreateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	stored := storedAuthRequest(r)
	_, err := db.execThen(ctx, func(int64) {
		if stored != nil {
			db.authReqs.put(stored.ID, stored)
		}
	}, db.st.insertAuthRequest, authRequestArgs(r, false)...)
	if err != nil {
		return fmt.Errorf("create auth request: %w", err)
	}
	return nil
}

// GetAuthRequest implements store.AuthRequests.
func (db *DB) GetAuthRequest(ctx context.Context, id string, now time.Time) (*store.AuthRequest, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get auth request: %w", store.ErrNotFound)
	}
	if r, found := db.authReqs.get(id, now); found {
		if r == nil {
			return nil, fmt.Errorf("get auth request: expired: %w", store.ErrNotFound)
		}
		return r, nil
	}
	r, err := scanAuthRequest(db.st.getAuthRequest.QueryRowContext(ctx, id, micros(now)))
	if err != nil {
		return nil, fmt.Errorf("get auth request: %w", notFound(err))
	}
	return r, nil
}

// UpdateAuthRequest implements store.AuthRequests.
func (db *DB) UpdateAuthRequest(ctx context.Context, r *store.AuthRequest) error {
	stored := storedAuthRequest(r)
	n, err := db.execThen(ctx, func(n int64) {
		switch {
		case n == 0:
		case stored != nil:
			db.authReqs.put(stored.ID, stored)
		default:
			db.authReqs.drop(r.ID)
		}
	}, db.st.updateAuthRequest, authRequestArgs(r, true)...)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update auth request: %w", err)
	}
	return nil
}

// UseAuthRequest implements store.AuthRequests: one conditional UPDATE,
// so of two concurrent uses exactly one succeeds.
func (db *DB) UseAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time) error {
	if db.unmatchable(id) {
		return fmt.Errorf("use auth request: %w", store.ErrNotFound)
	}
	n, err := db.execThen(ctx, func(int64) { db.authReqs.drop(id) }, db.st.useAuthRequest, micros(expiresAt), browser, id, micros(now))
	if err != nil {
		return fmt.Errorf("use auth request: %w", err)
	}
	if n == 1 {
		return nil
	}
	r, err := db.GetAuthRequest(ctx, id, now)
	switch {
	case err != nil:
		return fmt.Errorf("use auth request: %w", err)
	case r.Pushed && r.Used:
		return fmt.Errorf("use auth request: %w", store.ErrConflict)
	}
	return fmt.Errorf("use auth request: not a pushed request: %w", store.ErrNotFound)
}

// ExtendAuthRequest implements store.AuthRequests: one conditional
// UPDATE, so that the checks and the write are one step; when it
// changes nothing, a read tells why.
func (db *DB) ExtendAuthRequest(ctx context.Context, id, browser string, expiresAt, now time.Time, limit time.Duration) error {
	if db.unmatchable(id) || browser == "" {
		return fmt.Errorf("extend auth request: %w", store.ErrNotFound)
	}
	n, err := db.execThen(ctx, func(int64) { db.authReqs.drop(id) }, db.st.extendAuthRequest,
		micros(expiresAt), id, browser, micros(now), micros(expiresAt), micros(expiresAt.Add(-limit)))
	if err != nil {
		return fmt.Errorf("extend auth request: %w", err)
	}
	if n == 1 {
		return nil
	}
	r, err := db.GetAuthRequest(ctx, id, now)
	switch {
	case err != nil:
		return fmt.Errorf("extend auth request: %w", err)
	case r.Browser != browser || r.Pushed && !r.Used:
		return fmt.Errorf("extend auth request: not this browser's: %w", store.ErrNotFound)
	}
	return fmt.Errorf("extend auth request: not forward within %v of its creation: %w", limit, store.ErrConflict)
}

// DeleteAuthRequest implements store.AuthRequests; deleting an unknown
// request is not an error.
func (db *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	if db.unmatchable(id) {
		return nil
	}
	_, err := db.execThen(ctx, func(int64) { db.authReqs.drop(id) }, db.st.deleteAuthRequest, id)
	if err != nil {
		return fmt.Errorf("delete auth request: %w", err)
	}
	return nil
}

// PutChallenge implements store.Challenges; it replaces a challenge with
// the same ID.
func (db *DB) PutChallenge(ctx context.Context, id string, data []byte, expiresAt time.Time) error {
	if err := db.exec(ctx, db.st.putChallenge, id, data, micros(expiresAt)); err != nil {
		return fmt.Errorf("put challenge: %w", err)
	}
	return nil
}

// TakeChallenge implements store.Challenges with one DELETE ... RETURNING,
// so of two concurrent takes only one gets a row.
func (db *DB) TakeChallenge(ctx context.Context, id string, now time.Time) ([]byte, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("take challenge: %w", store.ErrNotFound)
	}
	var (
		data    []byte
		expires int64
	)
	err := db.one(ctx, func(ctx context.Context, tx querier) error {
		return notFound(tx.StmtContext(ctx, db.st.takeChallenge).QueryRowContext(ctx, id).Scan(&data, &expires))
	})
	if err != nil {
		return nil, fmt.Errorf("take challenge: %w", err)
	}
	if expires <= micros(now) {
		return nil, fmt.Errorf("take challenge: expired: %w", store.ErrNotFound)
	}
	return data, nil
}

const sessionCols = "id, person_id, provider, level, amr, auth_time, clients, created_at, expires_at, degraded, continues"

func scanSession(s scanner) (*store.Session, error) { return scanSessionThen(s) }

// scanUsedSession is scanSession for a row of sessionCols and last_used.
// A last_used of 0 is a session stored by a node that predates the
// column (0021_session_last_used), which nodes sharing a database may
// still run while they are upgraded one by one: it counts as last used
// when it was created.
func scanUsedSession(s scanner) (*store.Session, error) {
	var lastUsed int64
	ss, err := scanSessionThen(s, &lastUsed)
	if err != nil {
		return nil, err
	}
	ss.LastUsed = fromMicros(lastUsed)
	if lastUsed == 0 {
		ss.LastUsed = ss.CreatedAt
	}
	return ss, nil
}

// scanSessionThen is scanSession for a row with more columns after
// sessionCols, scanned into more.
func scanSessionThen(s scanner, more ...any) (*store.Session, error) {
	var (
		ss                         store.Session
		amr, clients               string
		authTime, created, expires int64
	)
	err := s.Scan(append([]any{&ss.ID, &ss.PersonID, &ss.Provider, &ss.Level, &amr, &authTime, &clients, &created, &expires, &ss.Degraded, &ss.Continues}, more...)...)
	if err != nil {
		return nil, err
	}
	ss.AuthTime = fromMicros(authTime)
	ss.CreatedAt = fromMicros(created)
	ss.ExpiresAt = fromMicros(expires)
	if err := errors.Join(
		decodeStringsInto("amr", amr, &ss.AMR),
		decodeStringsInto("clients", clients, &ss.Clients),
	); err != nil {
		return nil, &undecodableSession{id: ss.ID, err: err}
	}
	return &ss, nil
}

// undecodableSession is the error of a session row that was read but
// whose amr or clients do not decode, with the row's ID, so that the
// sweep can delete it still (sweepEnds).
type undecodableSession struct {
	id  string
	err error
}

func (e *undecodableSession) Error() string { return e.err.Error() }
func (e *undecodableSession) Unwrap() error { return e.err }

// CreateSession implements store.Sessions; ErrConflict if the ID is
// taken. With events, or a way in to read (wayInHeldIn), it is one
// operation of several statements, in a savepoint, so a conflict or a
// way in gone stores nothing and appends nothing.
func (db *DB) CreateSession(ctx context.Context, s *store.Session, events ...*store.AuditEvent) error {
	lastUsed := s.LastUsed
	if lastUsed.IsZero() {
		lastUsed = s.CreatedAt
	}
	stored := storedSession(s)
	if stored != nil {
		stored.LastUsed = asStored(lastUsed)
	}
	cache := func() {
		if stored != nil {
			db.sessions.put(stored.ID, stored)
		}
	}
	args := []any{s.ID, s.PersonID, s.Provider, s.Level, encodeStrings(s.AMR),
		micros(s.AuthTime), encodeStrings(s.Clients), micros(s.CreatedAt), micros(s.ExpiresAt), boolInt(s.Degraded), s.Continues, micros(lastUsed)}
	var err error
	if len(events) == 0 && s.WayIn.IsZero() {
		_, err = db.execThen(ctx, func(int64) { cache() }, db.st.insertSession, args...)
	} else {
		err = db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
			if err := db.wayInHeldIn(ctx, tx, s.PersonID, s.WayIn); err != nil {
				return err
			}
			if _, err := tx.StmtContext(ctx, db.st.insertSession).ExecContext(ctx, args...); err != nil {
				return db.d.classify(err)
			}
			return db.appendEvents(ctx, tx, events)
		}, cache)
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// GetSession implements store.Sessions: a session left unused for the
// idle timeout (SetSessionIdleTimeout) is not found, as an expired one
// is not, whether or not the sweep has deleted it yet.
func (db *DB) GetSession(ctx context.Context, id string, now time.Time) (*store.Session, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get session: %w", store.ErrNotFound)
	}
	s, found := db.sessions.get(id, now)
	if found && s == nil {
		return nil, fmt.Errorf("get session: expired: %w", store.ErrNotFound)
	}
	if !found {
		var err error
		s, err = scanUsedSession(db.rstmt(ctx, db.st.getSession).QueryRowContext(ctx, id, micros(now)))
		if err != nil {
			return nil, fmt.Errorf("get session: %w", notFound(err))
		}
	}
	if !store.SessionLive(s, now, db.SessionIdleTimeout()) {
		return nil, fmt.Errorf("get session: idle: %w", store.ErrNotFound)
	}
	return s, nil
}

// SessionLineLive implements store.Sessions: root itself, else the
// sessions that continue it, each read as GetSession reads it (so a
// session's use this node has not written yet counts).
func (db *DB) SessionLineLive(ctx context.Context, root string, now time.Time) (bool, error) {
	if db.unmatchable(root) {
		return false, nil
	}
	live := func(id string) (bool, error) {
		_, err := db.GetSession(ctx, id, now)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	if ok, err := live(root); ok || err != nil {
		return ok, err
	}
	ids, err := readIDs(ctx, db.st.sessionsContinuing, root, micros(now))
	if err != nil {
		return false, fmt.Errorf("sessions continuing %s: %w", root, err)
	}
	for _, id := range ids {
		if ok, err := live(id); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// SetSessionIdleTimeout implements store.Sessions.
func (db *DB) SetSessionIdleTimeout(d time.Duration) { db.idle.Store(int64(max(d, 0))) }

// SessionIdleTimeout is what SetSessionIdleTimeout set: 0 for none.
func (db *DB) SessionIdleTimeout() time.Duration { return time.Duration(db.idle.Load()) }

// idleBefore is the sweep's arguments for the sessions left unused for
// the idle timeout at now: those last used at or before it, twice (the
// chunk's choice, and the row deleted). With no idle timeout it is
// below every time, so none are.
func (db *DB) idleBefore(now int64) []any {
	d := db.SessionIdleTimeout()
	before := int64(math.MinInt64)
	if d > 0 {
		before = now - d.Microseconds()
	}
	return []any{before, before}
}

// TouchSession implements store.Sessions.
func (db *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	if db.unmatchable(id) {
		return fmt.Errorf("touch session: %w", store.ErrNotFound)
	}
	t := micros(at)
	n, err := db.execThen(ctx, func(n int64) {
		if n > 0 {
			db.sessions.update(id, func(s *store.Session) {
				if micros(s.LastUsed) < t {
					s.LastUsed = fromMicros(t)
				}
			})
		}
	}, db.st.touchSession, t, t, id)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("touch session: %w", store.ErrNotFound)
	}
	return nil
}

// AddSessionClient implements store.Sessions. A client is listed once,
// however often it receives tokens; ErrNotFound if the session is gone.
func (db *DB) AddSessionClient(ctx context.Context, id, clientID string, e *store.AuditEvent) error {
	if db.unmatchable(id) {
		return fmt.Errorf("add client to session: %w", store.ErrNotFound)
	}
	var clients []string // the list as stored, if this call changed it
	err := db.wr.doThen(ctx, e != nil, func(ctx context.Context, tx querier) error {
		clients = nil
		var text string
		if err := tx.StmtContext(ctx, db.st.getSessionClients).QueryRowContext(ctx, id).Scan(&text); err != nil {
			return notFound(err)
		}
		var list []string
		if err := decodeStringsInto("clients", text, &list); err != nil {
			return err
		}
		if !slices.Contains(list, clientID) {
			list = append(list, clientID)
			if _, err := tx.StmtContext(ctx, db.st.setSessionClients).ExecContext(ctx, encodeStrings(list), id); err != nil {
				return err
			}
			clients = list
		}
		return db.auditIn(ctx, tx, e)
	}, func() {
		switch {
		case clients == nil:
		case validStrings(clients):
			db.sessions.update(id, func(s *store.Session) { s.Clients = clients })
		default:
			db.sessions.drop(id)
		}
	})
	if err != nil {
		return fmt.Errorf("add client %s to session: %w", clientID, err)
	}
	return nil
}

// DeleteSession implements store.Sessions with one DELETE that returns
// the row; deleting an unknown session returns nil.
func (db *DB) DeleteSession(ctx context.Context, id string) (*store.Session, error) {
	if db.unmatchable(id) {
		return nil, nil
	}
	var ended *store.Session
	err := db.wr.doOne(ctx, func(ctx context.Context, tx querier) error {
		ended = nil
		s, err := scanUsedSession(tx.StmtContext(ctx, db.st.deleteSession).QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		ended = s
		return err
	}, func() { db.sessions.drop(id) })
	if err != nil {
		return nil, fmt.Errorf("delete session: %w", err)
	}
	return ended, nil
}

// EndSession implements store.Sessions: the DELETE that returns the row
// and, if the session was live and lists clients, its end, in one
// operation.
func (db *DB) EndSession(ctx context.Context, id string, now time.Time) (*store.Session, error) {
	if db.unmatchable(id) {
		return nil, nil
	}
	var ended *store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		s, err := scanUsedSession(tx.StmtContext(ctx, db.st.deleteSession).QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		ended = s
		return db.recordEnd(ctx, tx, s, now)
	}, func() { db.sessions.drop(id) })
	if err != nil {
		return nil, fmt.Errorf("end session: %w", err)
	}
	return ended, nil
}

// EndPersonSessions implements store.Sessions with one DELETE that
// returns the rows, so the in-memory copies go too, and the ends of
// those that need them, and the events, in one transaction, after a
// read of the session asking (changingSessionIn).
func (db *DB) EndPersonSessions(ctx context.Context, personID, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	unmatchable := db.unmatchable(personID)
	if unmatchable && events == nil {
		return nil, nil
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if err := db.changingSessionIn(ctx, tx, personID, except); err != nil {
			return err
		}
		var err error
		ended, err = db.endOthersIn(ctx, tx, personID, except, now, events)
		return err
	}, func() { db.dropSessions(ended) })
	if err != nil {
		return nil, fmt.Errorf("end sessions of person %s: %w", personID, err)
	}
	return ended, nil
}

// endOthersIn ends, within tx, every session of personID but except, as
// endPersonSessionsIn does, and appends the events events returns for
// the number ended (none if events is nil): a change to a person's ways
// in and the end of the sessions it voids are one write.
func (db *DB) endOthersIn(ctx context.Context, tx querier, personID, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	ended, err := db.endPersonSessionsIn(ctx, tx, personID, except, now)
	if err != nil {
		return nil, err
	}
	if events != nil {
		if err := db.appendEvents(ctx, tx, events(len(ended))); err != nil {
			return nil, err
		}
	}
	return ended, nil
}

// dropSessions drops the in-memory copies of sessions a committed
// transaction ended.
func (db *DB) dropSessions(ended []*store.Session) {
	for _, s := range ended {
		db.sessions.drop(s.ID)
	}
}

// endPersonSessionsIn deletes, within tx, every session of personID but
// except, records the ends of those that need them (recordEnd) and
// returns them.
func (db *DB) endPersonSessionsIn(ctx context.Context, tx querier, personID, except string, now time.Time) ([]*store.Session, error) {
	if db.unmatchable(personID) {
		return nil, nil
	}
	rows, err := tx.StmtContext(ctx, db.st.deletePersonSessions).QueryContext(ctx, personID, except)
	if err != nil {
		return nil, err
	}
	var ended []*store.Session
	for rows.Next() {
		s, err := scanUsedSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		ended = append(ended, s)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for _, s := range ended {
		if err := db.recordEnd(ctx, tx, s, now); err != nil {
			return nil, err
		}
	}
	return ended, nil
}

// recordEnd records, within tx, the end of s, just deleted at now, if
// relying parties are to be told of it: it lists clients and was live,
// or it ran out of time (expired, or left unused for the idle timeout)
// and a client in it registered a back-channel logout URI, as the sweep
// would have recorded it (recordTimedOut).
func (db *DB) recordEnd(ctx context.Context, tx querier, s *store.Session, now time.Time) error {
	if len(s.Clients) == 0 {
		return nil
	}
	if store.SessionLive(s, now, db.SessionIdleTimeout()) {
		return db.insertEnd(ctx, tx, s, now, "")
	}
	told, err := logoutClientsIn(ctx, tx, db.st.logoutClients)
	if err != nil {
		return fmt.Errorf("record the end of session: %w", err)
	}
	return db.recordTimedOut(ctx, tx, s, now, told)
}

// recordTimedOut records, within tx, the end of s, which ran out of time
// and was deleted at now, if a client in it is one of told (those that
// registered a back-channel logout URI): the end dates from when s ran
// out (store.SessionTimedOut), and an audit event says why
// (store.SessionExpiredEvent). A session no such client got tokens in
// ends for nobody, so the sweep of ordinary sessions writes nothing more.
func (db *DB) recordTimedOut(ctx context.Context, tx querier, s *store.Session, now time.Time, told map[string]bool) error {
	if !slices.ContainsFunc(s.Clients, func(c string) bool { return told[c] }) {
		return nil
	}
	reason, at := store.SessionTimedOut(s, db.SessionIdleTimeout())
	if err := db.insertEnd(ctx, tx, s, at, reason); err != nil {
		return err
	}
	return db.appendEvents(ctx, tx, []*store.AuditEvent{store.SessionExpiredEvent(s, reason, now)})
}

// insertEnd stores, within tx, the end of s at at, due then, for reason
// (store.Session.EndReason).
func (db *DB) insertEnd(ctx context.Context, tx querier, s *store.Session, at time.Time, reason string) error {
	_, err := tx.StmtContext(ctx, db.st.insertSessionEnd).ExecContext(ctx, s.ID, s.PersonID, s.Provider, s.Level,
		encodeStrings(s.AMR), micros(s.AuthTime), encodeStrings(s.Clients), micros(s.CreatedAt), micros(s.ExpiresAt),
		boolInt(s.Degraded), s.Continues, micros(at), micros(at), reason)
	if err != nil {
		return fmt.Errorf("record the end of session: %w", db.d.classify(err))
	}
	return nil
}

// logoutClientsIn reads, within tx, the IDs of the clients that
// registered a back-channel logout URI (st, logoutClients): few, and
// read only for sessions that ran out of time.
func logoutClientsIn(ctx context.Context, tx querier, st *sql.Stmt) (map[string]bool, error) {
	rows, err := tx.StmtContext(ctx, st).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("clients with a back-channel logout URI: %w", err)
	}
	told := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("clients with a back-channel logout URI: %w", err)
		}
		told[id] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("clients with a back-channel logout URI: %w", err)
	}
	return told, nil
}

// PendingSessionEnds implements store.SessionEnds.
func (db *DB) PendingSessionEnds(ctx context.Context, before time.Time, limit int) ([]*store.Session, error) {
	if limit < 1 {
		return []*store.Session{}, nil
	}
	rows, err := read(db.r.QueryContext(ctx, db.d.rebind("SELECT "+sessionCols+", reason FROM session_ends WHERE due_at < ? ORDER BY due_at, id LIMIT ?"),
		micros(before), limit))
	if err != nil {
		return nil, fmt.Errorf("pending session ends: %w", err)
	}
	ends, err := collect(rows, func(s scanner) (*store.Session, error) {
		var reason string
		ss, err := scanSessionThen(s, &reason)
		if err != nil {
			return nil, err
		}
		ss.EndReason = reason
		return ss, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending session ends: %w", err)
	}
	return ends, nil
}

// DeferSessionEnd implements store.SessionEnds: the count and the due
// time in one transaction, so two nodes' failures are both counted.
func (db *DB) DeferSessionEnd(ctx context.Context, id string, due func(attempts int) time.Time) (int, error) {
	if db.unmatchable(id) {
		return 0, fmt.Errorf("defer the end of a session: %w", store.ErrNotFound)
	}
	var attempts int
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		err := tx.QueryRowContext(ctx, db.d.rebind("UPDATE session_ends SET attempts = attempts + 1 WHERE id = ? RETURNING attempts"),
			id).Scan(&attempts)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.d.rebind("UPDATE session_ends SET due_at = ? WHERE id = ?"), micros(due(attempts)), id)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("defer the end of a session: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("defer the end of a session: %w", err)
	}
	return attempts, nil
}

// SettleSessionEnd implements store.SessionEnds: the end's DELETE, and the
// deliveries only if it deleted a row. On PostgreSQL a second node's
// DELETE of the same row waits for the first's commit and then finds
// nothing.
func (db *DB) SettleSessionEnd(ctx context.Context, id string, ds []*store.WebhookDelivery) (bool, error) {
	if db.unmatchable(id) {
		return false, nil
	}
	var settled bool
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		settled = false
		res, err := tx.StmtContext(ctx, db.st.deleteSessionEnd).ExecContext(ctx, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if err := db.insertWebhooks(ctx, tx, ds); err != nil {
			return err
		}
		settled = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("settle the end of a session: %w", err)
	}
	return settled, nil
}

// ListPersonSessions implements store.Sessions: the IDs of the person's
// unexpired sessions, then each read as GetSession reads it, so that a
// session idle past the timeout (by the use this node recorded last) is
// left out, as is one ended meanwhile.
func (db *DB) ListPersonSessions(ctx context.Context, personID string, now time.Time) ([]*store.Session, error) {
	if db.unmatchable(personID) {
		return nil, nil
	}
	ids, err := readIDs(ctx, db.rstmt(ctx, db.st.personSessionIDs), personID, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list sessions of person %s: %w", personID, err)
	}
	var out []*store.Session
	for _, id := range ids {
		s, err := db.GetSession(ctx, id, now)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list sessions of person: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// readIDs runs st, a read of one text column, and returns its values;
// an error reading them is marked as unavailable marks it.
func readIDs(ctx context.Context, st *sql.Stmt, args ...any) ([]string, error) {
	rows, err := read(st.QueryContext(ctx, args...))
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, unavailable(err, false)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, unavailable(err, false)
	}
	return ids, nil
}
