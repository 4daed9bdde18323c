package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

// auditStoredCols are audit_log's columns; auditCols adds the address
// and salt kept apart (audit_addresses), which auditFrom joins.
const (
	auditStoredCols = "seq, time, type, person_id, client_id, provider, level, result, reason, details, " +
		"prev_hash, hash, addr_digest"
	auditCols = auditStoredCols + ", addr, salt"
	auditFrom = "audit_log LEFT JOIN audit_addresses ON event_seq = seq"
)

func scanAudit(s scanner) (*store.AuditEvent, error) {
	var (
		e       store.AuditEvent
		t       int64
		details string
		addr    sql.NullString
	)
	err := s.Scan(&e.Seq, &t, &e.Type, &e.PersonID, &e.ClientID, &e.Provider, &e.Level, &e.Result,
		&e.Reason, &details, &e.PrevHash, &e.Hash, &e.AddrDigest, &addr, &e.AddrSalt)
	if err != nil {
		return nil, err
	}
	e.Time = fromMicros(t)
	if err := decodeJSON("details", details, &e.Details); err != nil {
		return nil, err
	}
	if addr.Valid {
		// Put back where it was given and every reader looks for it.
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details[store.DetailAddr] = addr.String
	}
	return &e, nil
}

// storedDetails is what audit_log.details holds of e: its details
// without the address if that is kept apart (AddrDigest).
func storedDetails(e *store.AuditEvent) string {
	if len(e.AddrDigest) == 0 {
		return jsonText(e.Details)
	}
	d := maps.Clone(e.Details)
	delete(d, store.DetailAddr)
	return jsonText(d)
}

// keepAddrApart gives an event with an address a random salt and the
// digest its hash covers instead (store.AuditEvent.KeepAddrApart).
func keepAddrApart(e *store.AuditEvent) error {
	if e.Details[store.DetailAddr] == "" || len(e.AddrDigest) > 0 {
		return nil
	}
	salt := make([]byte, store.AddrSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("address salt: %w", err)
	}
	return e.KeepAddrApart(salt)
}

// AppendAudit implements store.AuditLog: reading the chain's head and
// inserting the next event happen in one write transaction, and the
// write lock is taken at BEGIN, so appends from any connection or
// process serialise.
//
// The writer goroutine is this process's only writer, so it keeps the
// head it last wrote (writer.head) and appends after it without reading
// it back. The head is forgotten whenever a transaction or savepoint is
// rolled back, and read again. Should another process have appended
// meanwhile, the insert clashes with that event's seq (the primary key):
// the head is then read and the append tried once more, so the chain
// never forks.
//
// An event with an address keeps it apart (audit_addresses, ADR 38):
// its two inserts are one statement where the dialect allows
// (dialect.writableWith), and otherwise go in one savepoint, so neither
// is stored without the other.
//
// Over PostgreSQL, where other nodes append too, the writer also keeps
// the head of its last commit (ADR 52): under the chain's lock, taken
// at BEGIN, an event at the seq after it is refused only if another
// node appended since, and the statement that finds so reads the head
// in the same round trip (insertEvent).
func (db *DB) AppendAudit(ctx context.Context, e *store.AuditEvent) error {
	run := db.single
	if e.Details[store.DetailAddr] != "" && db.st.appendAuditWithAddr == nil {
		run = db.update
	}
	if err := run(ctx, db.appendAudit(e)); err != nil {
		return fmt.Errorf("append audit %s event: %w", e.Type, err)
	}
	return nil
}

// appendAudit is the op that appends e after the writer's audit head.
func (db *DB) appendAudit(e *store.AuditEvent) op {
	w := db.wr
	return func(ctx context.Context, tx querier) error {
		if err := keepAddrApart(e); err != nil {
			return err
		}
		for attempt := 0; ; attempt++ {
			if !w.txHead.known {
				var (
					last int64
					prev []byte
				)
				err := tx.StmtContext(ctx, db.st.lastAudit).QueryRowContext(ctx).Scan(&last, &prev)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				w.txHead = auditHead{known: true, seq: last, hash: prev}
			}
			e.Seq = w.txHead.seq + 1
			e.Seal(w.txHead.hash)
			head, clashed, err := db.insertEvent(ctx, tx, e)
			if clashed && attempt == 0 {
				w.txHead = head // another node appended: after its event
				continue
			}
			if clashed {
				return fmt.Errorf("audit event %d: %w", e.Seq, store.ErrConflict)
			}
			err = db.d.classify(err)
			if errors.Is(err, store.ErrConflict) && attempt == 0 {
				w.txHead = auditHead{} // someone else appended: read the head
				continue
			}
			if err != nil {
				return err
			}
			w.txHead = auditHead{known: true, seq: e.Seq, hash: bytes.Clone(e.Hash)}
			return nil
		}
	}
}

// insertEvent inserts e, sealed, and its address if it keeps one apart.
//
// Where the dialect allows (writableWith) it is one statement, which
// inserts nothing if e's seq is taken or the event before it is not
// the one e was sealed after, and then reads the chain's head instead:
// clashed reports it, with the head, and the transaction stays usable,
// so that the writer may append after a head it kept from its last
// commit (ADR 52). Elsewhere the event and its address are two
// inserts, and a seq taken is the first one's error.
func (db *DB) insertEvent(ctx context.Context, tx querier, e *store.AuditEvent) (head auditHead, clashed bool, err error) {
	args := []any{e.Seq, micros(e.Time), e.Type, e.PersonID, e.ClientID, e.Provider, e.Level, e.Result, e.Reason,
		storedDetails(e), e.PrevHash, e.Hash, e.AddrDigest}
	addr := e.Details[store.DetailAddr]
	if db.st.appendAudit != nil {
		args = append(args, e.Seq-1, e.PrevHash, e.Seq-1) // the head it follows (insertAfterHead)
		st := db.st.appendAudit
		if len(e.AddrDigest) > 0 {
			st, args = db.st.appendAuditWithAddr, append(args, addr, e.AddrSalt)
		}
		err := tx.StmtContext(ctx, st).QueryRowContext(ctx, args...).Scan(&head.seq, &head.hash)
		if errors.Is(err, sql.ErrNoRows) {
			return auditHead{}, false, nil // inserted
		}
		if err != nil {
			return auditHead{}, false, err
		}
		head.known = true
		return head, true, nil
	}
	if _, err := tx.StmtContext(ctx, db.st.insertAudit).ExecContext(ctx, args...); err != nil || len(e.AddrDigest) == 0 {
		return auditHead{}, false, err
	}
	_, err = tx.StmtContext(ctx, db.st.insertAuditAddr).ExecContext(ctx, e.Seq, micros(e.Time), addr, e.AddrSalt)
	if err != nil {
		return auditHead{}, false, fmt.Errorf("keep the address apart: %w", err)
	}
	return auditHead{}, false, nil
}

// appendEvents appends events, in their order, in tx.
func (db *DB) appendEvents(ctx context.Context, tx querier, events []*store.AuditEvent) error {
	for _, e := range events {
		if err := db.appendAudit(e)(ctx, tx); err != nil {
			return fmt.Errorf("audit %s event: %w", e.Type, err)
		}
	}
	return nil
}

// ListAudit implements store.AuditLog. A limit below 1 returns no events.
func (db *DB) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]*store.AuditEvent, error) {
	if limit < 1 {
		return []*store.AuditEvent{}, nil
	}
	rows, err := read(db.st.listAudit.QueryContext(ctx, afterSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// LastAudit implements store.AuditLog.
func (db *DB) LastAudit(ctx context.Context) (*store.AuditEvent, error) {
	e, err := scanAudit(db.st.newestAudit.QueryRowContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("last audit event: %w", notFound(err))
	}
	return e, nil
}

// ListPersonAudit implements store.AuditLog over the index of the log by
// person.
func (db *DB) ListPersonAudit(ctx context.Context, personID string, limit int) ([]*store.AuditEvent, error) {
	if db.unmatchable(personID) {
		return []*store.AuditEvent{}, nil
	}
	if limit < 1 || personID == "" {
		return []*store.AuditEvent{}, nil
	}
	return listPersonEvents(ctx, db.st.listPersonAudit, personID, limit)
}

// listPersonEvents reads the events of a person that stmt selects with
// args.
func listPersonEvents(ctx context.Context, stmt *sql.Stmt, args ...any) ([]*store.AuditEvent, error) {
	rows, err := read(stmt.QueryContext(ctx, args...))
	if err != nil {
		return nil, fmt.Errorf("list audit of a person: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit of a person: %w", err)
	}
	return out, nil
}

// ListPersonAuditAfter implements store.AuditLog over the index of the
// log by person. A limit below 1 returns no events.
func (db *DB) ListPersonAuditAfter(ctx context.Context, personID string, afterSeq int64, limit int) ([]*store.AuditEvent, error) {
	if limit < 1 || personID == "" || db.unmatchable(personID) {
		return []*store.AuditEvent{}, nil
	}
	return listPersonEvents(ctx, db.rstmt(ctx, db.st.listPersonAuditAfter), personID, afterSeq, limit)
}

// ListPersonAuditBefore implements store.AuditLog over the index of the
// log by person. A limit below 1 returns no events.
func (db *DB) ListPersonAuditBefore(ctx context.Context, personID string, beforeSeq int64, limit int) ([]*store.AuditEvent, error) {
	if limit < 1 || personID == "" || db.unmatchable(personID) {
		return []*store.AuditEvent{}, nil
	}
	return listPersonEvents(ctx, db.st.listPersonAuditBefore, personID, beforeSeq, limit)
}

// ListAuditRange implements store.AuditLog over the index of the log by
// time. A query without bounds or types is a plain walk by Seq. The log
// has no index by client, which every appended event would pay for: a
// query by client reads it through, which only an operator's rare
// question (has anyone logged in to this client?) asks.
func (db *DB) ListAuditRange(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error) {
	conds := []string{"seq > ?"}
	args := []any{q.AfterSeq}
	if !q.Since.IsZero() {
		conds = append(conds, "time >= ?")
		args = append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "time < ?")
		args = append(args, micros(q.Until))
	}
	if q.ClientID != "" {
		conds = append(conds, "client_id = ?")
		args = append(args, q.ClientID)
	}
	if len(q.Types) > 0 {
		conds = append(conds, "type IN ("+placeholders(len(q.Types))+")")
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	query := "SELECT " + auditCols + " FROM " + auditFrom + " WHERE " + strings.Join(conds, " AND ") + " ORDER BY seq"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := read(db.reads().QueryContext(ctx, db.d.rebind(query), args...))
	if err != nil {
		return nil, fmt.Errorf("list audit range: %w", err)
	}
	out, err := collect(rows, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit range: %w", err)
	}
	return out, nil
}

// DeleteAuditAddresses implements store.AuditLog. It walks the
// addresses by their events' seq, sweepChunk at a time, read by the
// primary key so that no index by time costs every append a write, and
// goes on while a chunk holds any expired address: each chunk's
// expired addresses are deleted, in a write of its own as DeleteExpired
// does, but for those a live hold covers (ADR 45), which the walk
// passes over rather than stop at. Events are stamped just before they
// are written, so seq follows time closely but, with several nodes'
// clocks, not exactly. No address goes before its time; one goes late
// only if a whole chunk of addresses stamped after it comes before it
// by seq (a node whose clock ran ahead), and then as soon as those
// expire. Nodes that delete at once delete each address once: a row
// another deleted first is simply not found. A chunk is read on a read
// connection, and the writer is asked for only when it holds an
// address to delete, so held addresses cost a round reads, not writes.
func (db *DB) DeleteAuditAddresses(ctx context.Context, before, now time.Time) (store.AddrSweep, error) {
	var (
		sweep store.AddrSweep
		after int64
	)
	for {
		var end, expired, held int64
		err := db.st.addrChunk.QueryRowContext(ctx, micros(before), micros(before), micros(now), after, sweepChunk).
			Scan(&end, &expired, &held)
		if err != nil {
			return sweep, fmt.Errorf("delete audit addresses after seq %d: %w", after, unavailable(err, false))
		}
		if expired == 0 {
			return sweep, nil
		}
		sweep.Held += held
		if expired > held {
			n, err := db.execN(ctx, db.st.deleteAddrChunk, after, end, micros(before), micros(now))
			sweep.Deleted += n
			if err != nil {
				return sweep, fmt.Errorf("delete audit addresses after seq %d: %w", after, err)
			}
		}
		after = end
	}
}
