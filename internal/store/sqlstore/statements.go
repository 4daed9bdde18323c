package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/varde-eid/varde/internal/store"
)

// statements are the prepared statements of every operation, prepared
// once at open. Those on the write pool are also used inside write
// transactions through Tx.StmtContext, which reuses the preparation.
type statements struct {
	insertClient, upsertClient, getClient, listClients, deleteClient *sql.Stmt
	// changeClientSector replaces a client whose sector is still the one
	// its caller read (store.Client.Sector: the sector_id, or else the ID).
	changeClientSector, getClientW *sql.Stmt

	insertPerson, insertIdentifier, getPerson, getPersonByWebAuthnID                    *sql.Stmt
	getPersonByIdentifier, getPersonIdentifiers, setPersonIdentifiers, setPersonProfile *sql.Stmt
	lockPerson                                                                          *sql.Stmt
	// lockPersonBlocked is lockPerson that reads whether the person is
	// blocked (unblockedIn).
	lockPersonBlocked *sql.Stmt

	insertPasskey, getPasskey, passkeyHeldW, listPasskeys, updatePasskeyUse, passkeyExistsW, deletePasskey, passkeyOfPersonW, countPasskeysW *sql.Stmt
	passkeyNamesW, renamePasskey                                                                                                             *sql.Stmt

	deleteRecoveryCodes, insertRecoveryCode, useRecoveryCode, restoreRecoveryCode, countRecoveryCodes, hasRecoveryCode, recoveryCodeHeldW *sql.Stmt
	deleteDeskCodes, insertDeskCode, useDeskCode, deskCodeState, getDeskCode                                                              *sql.Stmt
	describeRecoveryCodes                                                                                                                 *sql.Stmt

	insertAuthRequest, getAuthRequest, updateAuthRequest, useAuthRequest, extendAuthRequest, deleteAuthRequest *sql.Stmt

	putChallenge, takeChallenge *sql.Stmt

	insertSession, getSession, touchSession, getSessionClients, setSessionClients, deleteSession, deletePersonSessions *sql.Stmt
	insertSessionEnd, deleteSessionEnd, logoutClients                                                                  *sql.Stmt

	sessionsContinuing, personSessionIDs *sql.Stmt

	insertAuthCode, redeemAuthCode, getAuthCode, getAuthCodeW *sql.Stmt
	insertGrant, getGrant, revokeGrant, revokeClientGrants    *sql.Stmt
	offlineRefreshTokens, revokePersonClientGrants            *sql.Stmt
	listPersonGrants                                          *sql.Stmt
	insertToken, getToken, getTokenW, useToken                *sql.Stmt
	holdRotated, replaceIssued, liveIssued, markTokenUsed     *sql.Stmt
	remember                                                  *sql.Stmt
	remembered                                                *sql.Stmt

	// deleteClientRequests and deleteClientCodes end a removed client's
	// logins in flight (DeleteClient).
	deleteClientRequests, deleteClientCodes, abandonClientWebhooks *sql.Stmt

	// appendAudit and appendAuditWithAddr insert an event, and its
	// address, in one statement (dialect.writableWith), which inserts
	// nothing if the head the event follows is not the chain's, and
	// reads the chain's head instead (insertEvent); nil elsewhere.
	appendAudit, appendAuditWithAddr *sql.Stmt
	// createAuthCodeForRequest deletes a request and inserts its code,
	// only if the delete found it, in one statement
	// (dialect.writableWith), or is nil.
	createAuthCodeForRequest *sql.Stmt

	lastAudit, insertAudit, insertAuditAddr, addrChunk, deleteAddrChunk, listAudit, listPersonAudit, listPersonAuditAfter, listPersonAuditBefore, newestAudit *sql.Stmt

	putPublicKey, claimPublicKey, listPublicKeys, retirePublicKey *sql.Stmt

	pin *sql.Stmt

	// savepoint, rollbackTo and release wrap an operation of several
	// statements inside a shared transaction.
	savepoint, rollbackTo, release *sql.Stmt

	// dataVersion tells the writer whether another connection (another
	// process) committed since it last asked; nil for shared dialects.
	dataVersion *sql.Stmt

	// sweep deletes up to sweepChunk of one table's expired rows each,
	// given now; deleteEmptyGrant deletes a grant if no token has it.
	sweep            []sweepStmt
	deleteEmptyGrant *sql.Stmt

	all []*sql.Stmt
}

// stmtDef is a statement to prepare: where it goes, on which pool, and
// its query with '?' placeholders.
type stmtDef struct {
	dst  **sql.Stmt
	pool *sql.DB
	q    string
}

// prepare prepares every statement: writes, and reads inside write
// transactions, on the write pool; plain reads on the read pool.
func (db *DB) prepare(ctx context.Context) error {
	w, r := db.w, db.r
	defs := []stmtDef{
		{&db.st.insertClient, w, insertSQL("clients", clientCols)},
		{&db.st.upsertClient, w, upsertSQL("clients", "id", clientCols) +
			" WHERE " + sectorOf("clients") + " = " + sectorOf("excluded")},
		{&db.st.getClient, r, "SELECT " + clientCols + " FROM clients WHERE id = ?"},
		{&db.st.listClients, r, "SELECT " + clientCols + " FROM clients ORDER BY id"},
		{&db.st.deleteClient, w, "DELETE FROM clients WHERE id = ?"},
		{&db.st.changeClientSector, w, updateSQL("clients", "id", clientCols) + " AND " + sectorOf("clients") + " = ?"},
		{&db.st.getClientW, w, "SELECT " + clientCols + " FROM clients WHERE id = ?"},

		{&db.st.insertPerson, w, insertSQL("persons", personCols)},
		{&db.st.insertIdentifier, w, "INSERT INTO person_identifiers (scheme, value, person_id) VALUES (?, ?, ?)"},
		{&db.st.getPerson, r, "SELECT " + personCols + " FROM persons WHERE id = ?"},
		{&db.st.getPersonByWebAuthnID, r, "SELECT " + personCols + " FROM persons WHERE webauthn_id = ?"},
		{&db.st.getPersonByIdentifier, r, "SELECT " + prefixCols("p", personCols) +
			" FROM person_identifiers i JOIN persons p ON p.id = i.person_id WHERE i.scheme = ? AND i.value = ?"},
		{&db.st.getPersonIdentifiers, w, "SELECT identifiers, blocked_at FROM persons WHERE id = ?" + db.d.forUpdate},
		{&db.st.setPersonIdentifiers, w, "UPDATE persons SET identifiers = ? WHERE id = ?"},
		{&db.st.setPersonProfile, w, "UPDATE persons SET given_name = ?, family_name = ?, birth_date = ? WHERE id = ?"},
		{&db.st.lockPerson, w, "SELECT 1 FROM persons WHERE id = ?" + db.d.forUpdate},
		{&db.st.lockPersonBlocked, w, "SELECT blocked_at FROM persons WHERE id = ?" + db.d.forUpdate},

		{&db.st.insertPasskey, w, insertSQL("passkeys", passkeyCols)},
		{&db.st.getPasskey, r, "SELECT " + passkeyCols + " FROM passkeys WHERE credential_id = ?"},
		{&db.st.passkeyHeldW, w, "SELECT 1 FROM passkeys WHERE credential_id = ? AND person_id = ?" + db.d.forKeyShare},
		{&db.st.listPasskeys, r, "SELECT " + passkeyCols + " FROM passkeys WHERE person_id = ? ORDER BY created_at, credential_id"},
		{&db.st.updatePasskeyUse, w, "UPDATE passkeys SET sign_count = ?, backup_state = ?, last_used_at = ? " +
			"WHERE credential_id = ? AND sign_count = ?"},
		{&db.st.passkeyExistsW, w, "SELECT 1 FROM passkeys WHERE credential_id = ?"},
		{&db.st.deletePasskey, w, "DELETE FROM passkeys WHERE person_id = ? AND credential_id = ?" +
			" AND ((SELECT count(*) FROM passkeys WHERE person_id = ?) > 1" +
			" OR EXISTS (SELECT 1 FROM recovery_codes WHERE person_id = ? AND used_at = 0 AND expires_at = 0))"},
		{&db.st.passkeyOfPersonW, w, "SELECT 1 FROM passkeys WHERE person_id = ? AND credential_id = ?"},
		{&db.st.countPasskeysW, w, "SELECT count(*) FROM passkeys WHERE person_id = ?"},
		{&db.st.passkeyNamesW, w, "SELECT credential_id, name FROM passkeys WHERE person_id = ?"},
		{&db.st.renamePasskey, w, "UPDATE passkeys SET name = ? WHERE person_id = ? AND credential_id = ?"},

		{&db.st.deleteRecoveryCodes, w, "DELETE FROM recovery_codes WHERE person_id = ?"},
		{&db.st.insertRecoveryCode, w, "INSERT INTO recovery_codes (hash, person_id, created_at, used_at) VALUES (?, ?, ?, 0)"},
		{&db.st.useRecoveryCode, w, "UPDATE recovery_codes SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at = 0 RETURNING person_id"},
		{&db.st.restoreRecoveryCode, w, "UPDATE recovery_codes SET used_at = 0 WHERE hash = ? AND used_at = ?"},
		{&db.st.countRecoveryCodes, r, "SELECT count(*) FROM recovery_codes WHERE person_id = ? AND used_at = 0 AND expires_at = 0"},
		{&db.st.describeRecoveryCodes, r, "SELECT coalesce(sum(CASE WHEN used_at = 0 THEN 1 ELSE 0 END), 0), " +
			"coalesce(sum(CASE WHEN used_at <> 0 THEN 1 ELSE 0 END), 0), coalesce(max(created_at), 0), coalesce(max(used_at), 0) " +
			"FROM recovery_codes WHERE person_id = ? AND expires_at = 0"},
		// On the write pool: asked after a write that got no answer, it
		// reads what that write's connection left, not a reader's view.
		{&db.st.hasRecoveryCode, w, "SELECT count(*) FROM recovery_codes WHERE person_id = ? AND hash = ?"},
		{&db.st.recoveryCodeHeldW, w, "SELECT 1 FROM recovery_codes WHERE hash = ? AND person_id = ?" + db.d.forKeyShare},
		// A help desk code is a recovery code with an expiry (ADR 62).
		{&db.st.deleteDeskCodes, w, "DELETE FROM recovery_codes WHERE person_id = ? AND expires_at <> 0"},
		{&db.st.insertDeskCode, w, "INSERT INTO recovery_codes (hash, person_id, created_at, used_at, expires_at) VALUES (?, ?, ?, 0, ?)"},
		{&db.st.useDeskCode, w, "UPDATE recovery_codes SET used_at = ? WHERE hash = ? AND used_at = 0 AND expires_at > ? RETURNING person_id"},
		{&db.st.deskCodeState, w, "SELECT used_at, expires_at FROM recovery_codes WHERE hash = ? AND expires_at <> 0"},
		{&db.st.getDeskCode, r, "SELECT created_at, expires_at, used_at FROM recovery_codes WHERE person_id = ? AND expires_at <> 0"},

		{&db.st.insertAuthRequest, w, insertSQL("auth_requests", authRequestCols)},
		{&db.st.getAuthRequest, r, "SELECT " + authRequestCols + " FROM auth_requests WHERE id = ? AND expires_at > ?"},
		{&db.st.updateAuthRequest, w, updateSQL("auth_requests", "id", authRequestCols)},
		{&db.st.useAuthRequest, w, "UPDATE auth_requests SET used = 1, expires_at = ?, browser = ? WHERE id = ? AND pushed = 1 AND used = 0 AND expires_at > ?"},
		{&db.st.extendAuthRequest, w, "UPDATE auth_requests SET expires_at = ? WHERE id = ? AND browser = ? AND (pushed = 0 OR used = 1) " +
			"AND expires_at > ? AND expires_at < ? AND created_at >= ?"},
		{&db.st.deleteAuthRequest, w, "DELETE FROM auth_requests WHERE id = ?"},

		{&db.st.putChallenge, w, upsertSQL("challenges", "id", "id, data, expires_at")},
		{&db.st.takeChallenge, w, "DELETE FROM challenges WHERE id = ? RETURNING data, expires_at"},

		{&db.st.insertSession, w, insertSQL("sessions", sessionCols+", last_used")},
		{&db.st.getSession, r, "SELECT " + sessionCols + ", last_used FROM sessions WHERE id = ? AND expires_at > ?"},
		{&db.st.sessionsContinuing, r, "SELECT id FROM sessions WHERE continues = ? AND expires_at > ?"},
		{&db.st.personSessionIDs, r, "SELECT id FROM sessions WHERE person_id = ? AND expires_at > ? ORDER BY created_at, id"},
		{&db.st.touchSession, w, "UPDATE sessions SET last_used = CASE WHEN last_used < ? THEN ? ELSE last_used END WHERE id = ?"},
		{&db.st.getSessionClients, w, "SELECT clients FROM sessions WHERE id = ?" + db.d.forUpdate},
		{&db.st.setSessionClients, w, "UPDATE sessions SET clients = ? WHERE id = ?"},
		{&db.st.deleteSession, w, "DELETE FROM sessions WHERE id = ? RETURNING " + sessionCols + ", last_used"},
		{&db.st.deletePersonSessions, w, "DELETE FROM sessions WHERE person_id = ? AND id <> ? RETURNING " + sessionCols + ", last_used"},
		{&db.st.insertSessionEnd, w, insertSQL("session_ends", sessionCols+", ended_at, due_at, reason")},
		{&db.st.logoutClients, w, "SELECT id FROM clients WHERE backchannel_logout_uri <> ''"},
		{&db.st.deleteSessionEnd, w, "DELETE FROM session_ends WHERE id = ?"},

		{&db.st.insertAuthCode, w, insertSQL("auth_codes", authCodeCols)},
		{&db.st.redeemAuthCode, w, "UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at = 0 RETURNING " + authCodeCols},
		{&db.st.getAuthCode, r, "SELECT " + authCodeCols + " FROM auth_codes WHERE hash = ?"},
		{&db.st.getAuthCodeW, w, "SELECT " + authCodeCols + " FROM auth_codes WHERE hash = ?"},

		{&db.st.insertGrant, w, insertSQL("grants", grantCols)},
		{&db.st.getGrant, r, "SELECT " + grantCols + " FROM grants WHERE id = ?"},
		{&db.st.revokeGrant, w, "UPDATE grants SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?"},
		{&db.st.revokeClientGrants, w, "UPDATE grants SET revoked_at = ? WHERE revoked_at = 0 AND client_id = ? " +
			"AND id IN (SELECT grant_id FROM tokens WHERE client_id = ?)"},
		{&db.st.offlineRefreshTokens, r, "SELECT g.client_id, g.scope, g.created_at, t.created_at FROM grants g " +
			"JOIN tokens t ON t.grant_id = g.id WHERE g.person_id = ? AND g.revoked_at = 0 " +
			"AND t.kind = '" + store.TokenRefresh + "' AND t.used_at = 0 AND t.expires_at > ?"},
		// Every grant of the person, revoked ones too, which the index by
		// person (grants not revoked) does not hold: an operator's read.
		// A refresh token made after its grant was made by a refresh.
		{&db.st.listPersonGrants, r, "SELECT " + grantCols + ", " +
			"coalesce((SELECT max(t.created_at) FROM tokens t WHERE t.grant_id = g.id AND t.kind = '" + store.TokenRefresh + "' " +
			"AND t.created_at > g.created_at), 0), " +
			"coalesce((SELECT max(t.expires_at) FROM tokens t WHERE t.grant_id = g.id AND t.kind = '" + store.TokenRefresh + "' " +
			"AND t.used_at = 0 AND t.expires_at > ?), 0) " +
			"FROM grants g WHERE g.person_id = ? ORDER BY g.created_at, g.id"},
		{&db.st.revokePersonClientGrants, w, "UPDATE grants SET revoked_at = ? WHERE person_id = ? AND client_id = ? AND revoked_at = 0"},
		{&db.st.deleteClientRequests, w, "DELETE FROM auth_requests WHERE client_id = ? RETURNING id"},
		{&db.st.deleteClientCodes, w, "DELETE FROM auth_codes WHERE client_id = ? AND used_at = 0"},
		{&db.st.abandonClientWebhooks, w, "UPDATE webhook_deliveries SET abandoned_at = ?, last_error = ?, payload = ?, lease_node = '', " +
			"lease_until = 0 WHERE client_id = ? AND delivered_at = 0 AND abandoned_at = 0"},

		{&db.st.insertToken, w, insertSQL("tokens", tokenCols)},
		{&db.st.getToken, r, "SELECT " + tokenCols + " FROM tokens WHERE hash = ?"},
		{&db.st.getTokenW, w, "SELECT " + tokenCols + " FROM tokens WHERE hash = ?"},
		{&db.st.useToken, w, "UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at = 0 RETURNING " + tokenCols},
		// A retry (RetryRotation): the rotated token's row is written,
		// changing nothing, so that on PostgreSQL a concurrent retry of it
		// waits for this one to commit and then sees what it issued; the
		// tokens issued from it are found by the partial index on parent,
		// whose predicate each query repeats.
		{&db.st.holdRotated, w, "UPDATE tokens SET used_at = used_at WHERE hash = ? AND kind = '" + store.TokenRefresh + "' " +
			"AND used_at <> 0 RETURNING " + tokenCols},
		{&db.st.replaceIssued, w, "UPDATE tokens SET used_at = ?, revoked_at = ? WHERE parent = ? AND length(parent) > 0 " +
			"AND revoked_at = 0 AND used_at = 0 RETURNING " + tokenCols},
		{&db.st.liveIssued, w, "SELECT count(*) FROM tokens WHERE parent = ? AND length(parent) > 0 AND revoked_at = 0"},
		{&db.st.markTokenUsed, w, "UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at = 0 AND revoked_at = 0"},

		{&db.st.remember, w, "INSERT INTO replay_cache (key, expires_at) VALUES (?, ?) " +
			"ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay_cache.expires_at <= ?"},
		{&db.st.remembered, r, "SELECT COUNT(*) FROM replay_cache WHERE key = ? AND expires_at > ?"},

		{&db.st.lastAudit, w, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"},
		{&db.st.insertAudit, w, insertSQL("audit_log", auditStoredCols)},
		{&db.st.insertAuditAddr, w, insertSQL("audit_addresses", "event_seq, event_time, addr, salt")},
		// A chunk of addresses after a seq, read by the primary key, with
		// no index by time: where it ends, how many are expired, and how
		// many of those a live hold keeps (ADR 38, 45).
		{&db.st.addrChunk, r, "SELECT COALESCE(MAX(event_seq), 0), " +
			"COALESCE(SUM(CASE WHEN event_time < ? THEN 1 ELSE 0 END), 0), " +
			"COALESCE(SUM(CASE WHEN event_time < ? AND " + heldAddr("c") + " THEN 1 ELSE 0 END), 0) " +
			"FROM (SELECT event_seq, event_time FROM audit_addresses WHERE event_seq > ? ORDER BY event_seq LIMIT ?) c"},
		{&db.st.deleteAddrChunk, w, "DELETE FROM audit_addresses WHERE event_seq > ? AND event_seq <= ? AND event_time < ? " +
			"AND NOT " + heldAddr("audit_addresses")},
		{&db.st.listAudit, r, "SELECT " + auditCols + " FROM " + auditFrom + " WHERE seq > ? ORDER BY seq LIMIT ?"},
		{&db.st.newestAudit, r, "SELECT " + auditCols + " FROM " + auditFrom + " ORDER BY seq DESC LIMIT 1"},
		{&db.st.listPersonAudit, r, "SELECT " + auditCols + " FROM " + auditFrom + " WHERE person_id = ? AND person_id <> '' ORDER BY seq DESC LIMIT ?"},
		{&db.st.listPersonAuditAfter, r, "SELECT " + auditCols + " FROM " + auditFrom + " WHERE person_id = ? AND person_id <> '' AND seq > ? " +
			"ORDER BY seq LIMIT ?"},
		{&db.st.listPersonAuditBefore, r, "SELECT " + auditCols + " FROM " + auditFrom + " WHERE person_id = ? AND person_id <> '' AND seq < ? " +
			"ORDER BY seq DESC LIMIT ?"},

		// A retired key is not replaced: the upsert changes no row.
		// first_published_at is set when the key is first stored and kept.
		{&db.st.putPublicKey, w, insertSQL("public_keys", "kid, node, jwk, created_at, expires_at, first_published_at") +
			" ON CONFLICT (kid) DO UPDATE SET node = excluded.node, jwk = excluded.jwk, created_at = excluded.created_at, " +
			"expires_at = excluded.expires_at WHERE public_keys.retired_at = 0"},
		// A claim takes the key over only from its own node, from a
		// publication expired at the claim's time, or from a node that
		// left since it last published the key; the upsert changes no
		// row otherwise. It is one statement, so that two nodes claiming
		// at once cannot both pass: on PostgreSQL the second waits for
		// the first's row and then checks the row as the first left it.
		{&db.st.claimPublicKey, w, insertSQL("public_keys", "kid, node, jwk, created_at, expires_at, first_published_at") +
			" ON CONFLICT (kid) DO UPDATE SET node = excluded.node, jwk = excluded.jwk, created_at = excluded.created_at, " +
			"expires_at = excluded.expires_at WHERE public_keys.retired_at = 0 AND (public_keys.node = excluded.node " +
			"OR (public_keys.expires_at <> 0 AND public_keys.expires_at <= excluded.created_at) " +
			"OR EXISTS (SELECT 1 FROM node_departures d WHERE d.node = public_keys.node AND d.left_at >= public_keys.created_at))"},
		{&db.st.retirePublicKey, w, "UPDATE public_keys SET retired_at = ? WHERE kid = ? AND retired_at = 0 RETURNING " + publicKeyCols},
		{&db.st.listPublicKeys, r, "SELECT " + publicKeyCols + " FROM public_keys " +
			"WHERE expires_at = 0 OR expires_at > ? ORDER BY created_at, kid"},

		{&db.st.pin, w, "INSERT INTO pins (name, value, created_at) VALUES (?, ?, ?) " +
			"ON CONFLICT (name) DO UPDATE SET value = pins.value RETURNING value"},

		{&db.st.savepoint, w, "SAVEPOINT op"},
		{&db.st.rollbackTo, w, "ROLLBACK TO SAVEPOINT op"},
		{&db.st.release, w, "RELEASE SAVEPOINT op"},
	}
	if !db.d.shared {
		defs = append(defs, stmtDef{&db.st.dataVersion, w, "PRAGMA data_version"})
	}
	if db.d.writableWith {
		defs = append(defs,
			// The address goes in only with its event (ADR 38), and the
			// event only with it: one statement. An event after a head
			// that is not the chain's goes in not at all, and the head is
			// read instead:
			// the statement's snapshot, taken after the chain's lock,
			// holds every other node's events (ADR 52).
			stmtDef{&db.st.appendAudit, w, "WITH e AS (" + insertAfterHead + " RETURNING seq) " + auditHeadUnless},
			stmtDef{&db.st.appendAuditWithAddr, w, "WITH e AS (" + insertAfterHead + " RETURNING seq, time), " +
				"a AS (INSERT INTO audit_addresses (event_seq, event_time, addr, salt) SELECT seq, time, ?, ? FROM e) " + auditHeadUnless},
			// The code goes in only if the request was there to delete:
			// of two concurrent calls for one request, one finds it.
			stmtDef{&db.st.createAuthCodeForRequest, w, "WITH r AS (DELETE FROM auth_requests WHERE id = ? RETURNING id) " +
				"INSERT INTO auth_codes (" + authCodeCols + ") SELECT " + placeholders(len(splitCols(authCodeCols))) + " FROM r"})
	}
	for _, d := range defs {
		st, err := d.pool.PrepareContext(ctx, db.d.rebind(d.q))
		if err != nil {
			return fmt.Errorf("prepare %q: %w", d.q, err)
		}
		*d.dst = st
		db.st.all = append(db.st.all, st)
	}
	// Each sweep statement deletes at most sweepChunk rows, found through
	// an index, so that the one write connection is never held for long:
	// the writes of logins go in between the chunks.
	chunk := func(table, key, where string) string {
		return fmt.Sprintf("DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s LIMIT %d)", table, key, key, table, where, sweepChunk)
	}
	for _, q := range []struct {
		// name says which rows the statement sweeps, in its errors.
		name string
		sql  string
		args func(now int64) []any
		// grants: the statement returns the grant_id of each token it
		// deleted, and the grants left with no token go in the same write.
		grants bool
		// ends: sessions, whose ends the write records (sweepEnds).
		ends bool
	}{
		{name: "auth_requests", sql: chunk("auth_requests", "id", "expires_at <= ?"), args: at},
		{name: "challenges", sql: chunk("challenges", "id", "expires_at <= ?"), args: at},
		{name: "sessions", sql: chunk("sessions", "id", "expires_at <= ?"), args: at, ends: true},
		// Left unused for the idle timeout (store.SessionLive); one
		// stored by a node that predates last_used (scanUsedSession)
		// goes at its expiry. The condition is asked again of the row
		// the DELETE reaches: on PostgreSQL, a use another node recorded
		// after the chunk was chosen keeps the session.
		{name: "sessions left unused", sql: chunk("sessions", "id", "last_used <> 0 AND last_used <= ?") + " AND last_used <> 0 AND last_used <= ?", args: db.idleBefore, ends: true},
		{name: "auth_codes", sql: chunk("auth_codes", "hash", "expires_at <= ?"), args: at},
		// A grant goes with the last of its tokens.
		{name: "tokens", sql: chunk("tokens", "hash", "expires_at <= ?") + " RETURNING grant_id", args: at, grants: true},
		// Tombstones: revoked before any token was stored under them.
		{name: "grants", sql: chunk("grants", "id", "revoked_at <> 0 AND revoked_at <= ? AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id)"), args: tombstones},
		{name: "replay_cache", sql: chunk("replay_cache", "key", "expires_at <= ?"), args: at},
		{name: "public_keys", sql: chunk("public_keys", "kid", "expires_at <> 0 AND expires_at <= ? AND retired_at = 0"), args: at},
		{name: "webhook_deliveries", sql: chunk("webhook_deliveries", "id", "(delivered_at <> 0 OR abandoned_at <> 0) AND created_at <= ?"), args: finishedDeliveries},
		// Help desk codes, used or not, SpentDeskCodeAge after they
		// expired; recovery codes (expires_at 0) never expire. The
		// chunk's read takes the partial index of migration 0038.
		{name: "help desk codes", sql: chunk("recovery_codes", "hash", "expires_at <> 0 AND expires_at <= ?"), args: spentDeskCodes},
	} {
		st, err := w.PrepareContext(ctx, db.d.rebind(q.sql))
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q.sql, err)
		}
		sw := sweepStmt{name: q.name, st: st, args: q.args, grants: q.grants}
		db.st.all = append(db.st.all, st)
		if q.ends {
			ends := q.sql + " RETURNING " + sessionCols + ", last_used"
			if sw.ends, err = w.PrepareContext(ctx, db.d.rebind(ends)); err != nil {
				return fmt.Errorf("prepare %q: %w", ends, err)
			}
			db.st.all = append(db.st.all, sw.ends)
		}
		db.st.sweep = append(db.st.sweep, sw)
	}
	q := "DELETE FROM grants WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = ?)"
	st, err := w.PrepareContext(ctx, db.d.rebind(q))
	if err != nil {
		return fmt.Errorf("prepare %q: %w", q, err)
	}
	db.st.deleteEmptyGrant = st
	db.st.all = append(db.st.all, st)
	return nil
}

// insertAfterHead inserts an event (auditStoredCols) after the head
// the writer has, given after the event's columns as its seq, its hash
// and its seq again, only if that is the chain's head: the head is
// there, at its seq with its hash, or, at seq 0, the log is empty; and
// the event's seq is free (ADR 52). A head another node appended after takes the event's seq;
// one that is not there is a head the database lost, as a standby
// promoted before it received the last commits has, and the event
// must not follow it across the gap.
var insertAfterHead = "INSERT INTO audit_log (" + auditStoredCols + ") SELECT " + placeholders(len(splitCols(auditStoredCols))) +
	" WHERE EXISTS (SELECT 1 FROM audit_log WHERE seq = ? AND hash = ?)" +
	" OR (CAST(? AS BIGINT) = 0 AND NOT EXISTS (SELECT 1 FROM audit_log)) ON CONFLICT (seq) DO NOTHING"

// auditHeadUnless ends a statement that appends an event (e): no row
// if e inserted it, and otherwise one, the chain's head, which is seq 0
// and no hash in an empty log.
const auditHeadUnless = "SELECT COALESCE((SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1), 0), " +
	"(SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) WHERE NOT EXISTS (SELECT 1 FROM e)"

// sweepChunk is the most rows one sweep statement deletes. Smaller
// chunks hold the writer for less time each, but since rows are keyed by
// random values each chunk rewrites pages its predecessors rewrote too.
// BenchmarkSweepUnderLoad, 60,000 expired tokens: in one statement 0.4–
// 0.6 s, during which a login's write waited as long; in chunks of 2,048,
// 1.4 s in all and waits of at most 0.1–0.13 s; in chunks of 256, 3.3 s
// and 0.06 s.
const sweepChunk = 2048

// sweepStmt is one statement of the sweep and its arguments at now (in
// microseconds, as times are stored).
type sweepStmt struct {
	name   string
	st     *sql.Stmt
	args   func(now int64) []any
	grants bool
	// ends, for sessions, is st returning the rows it deleted, which the
	// sweep runs instead when a client registers a back-channel logout
	// URI (sweepEnds).
	ends *sql.Stmt
}

func at(now int64) []any { return []any{now} }
func finishedDeliveries(now int64) []any {
	return []any{now - store.FinishedDeliveryAge.Microseconds()}
}
func spentDeskCodes(now int64) []any {
	return []any{now - store.SpentDeskCodeAge.Microseconds()}
}
func tombstones(now int64) []any {
	return []any{now - store.TombstoneAge.Microseconds()}
}

func (s *statements) close() error {
	var errs []error
	for _, st := range s.all {
		errs = append(errs, st.Close())
	}
	s.all = nil
	return errors.Join(errs...)
}

// sectorOf is the SQL for the sector of the client row named table
// (store.Client.Sector): its sector_id, or else its ID.
func sectorOf(table string) string {
	return "(CASE WHEN " + table + ".sector_id = '' THEN " + table + ".id ELSE " + table + ".sector_id END)"
}
