package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

const personCols = "id, webauthn_id, given_name, family_name, birth_date, identifiers, " +
	"proofing_level, proofing_method, synthetic, created_at, blocked_at, blocked_reason"

func scanPerson(s scanner) (*store.Person, error) {
	var (
		p       store.Person
		ids     string
		created int64
		blocked int64
	)
	err := s.Scan(&p.ID, &p.WebAuthnID, &p.GivenName, &p.FamilyName, &p.BirthDate, &ids,
		&p.ProofingLevel, &p.ProofingMethod, &p.Synthetic, &created, &blocked, &p.BlockedReason)
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromMicros(created)
	p.BlockedAt = fromMicros(blocked)
	if p.Identifiers, err = decodeIdentifiers(ids); err != nil {
		return nil, err
	}
	return &p, nil
}

// decodeIdentifiers reads a person's list of identifiers, each one's
// LinkedAt and LastUsedAt as the same instant in UTC to the microsecond,
// as the store gives every time.
func decodeIdentifiers(text string) ([]store.Identifier, error) {
	var ids []store.Identifier
	if err := decodeJSON("identifiers", text, &ids); err != nil {
		return nil, err
	}
	for i := range ids {
		for _, t := range []*time.Time{&ids[i].LinkedAt, &ids[i].LastUsedAt} {
			if !t.IsZero() {
				*t = t.UTC().Truncate(time.Microsecond)
			}
		}
	}
	return ids, nil
}

// CreatePerson implements store.Persons: the person and every identifier
// are stored in one transaction.
func (db *DB) CreatePerson(ctx context.Context, p *store.Person) error {
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		return db.insertPerson(ctx, tx, p)
	}, func() { db.people.drop(p.ID) })
	if err != nil {
		return fmt.Errorf("create person %s: %w", p.ID, err)
	}
	return nil
}

// insertPerson writes p and its identifiers in tx.
func (db *DB) insertPerson(ctx context.Context, tx querier, p *store.Person) error {
	_, err := tx.StmtContext(ctx, db.st.insertPerson).ExecContext(ctx,
		p.ID, p.WebAuthnID, p.GivenName, p.FamilyName, p.BirthDate, jsonText(p.Identifiers),
		p.ProofingLevel, p.ProofingMethod, boolInt(p.Synthetic), micros(p.CreatedAt), micros(p.BlockedAt), p.BlockedReason)
	if err != nil {
		return db.d.classify(err)
	}
	ins := tx.StmtContext(ctx, db.st.insertIdentifier)
	for _, id := range p.Identifiers {
		if _, err := ins.ExecContext(ctx, id.Scheme, id.Value, p.ID); err != nil {
			return fmt.Errorf("identifier %s: %w", id.Scheme, db.d.classify(err))
		}
	}
	return nil
}

// GetPerson implements store.Persons.
func (db *DB) GetPerson(ctx context.Context, id string) (*store.Person, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get person: %w", store.ErrNotFound)
	}
	if p := db.people.get(id); p != nil {
		return p, nil
	}
	gen := db.people.begin()
	p, err := scanPerson(db.rstmt(ctx, db.st.getPerson).QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("get person %s: %w", id, notFound(err))
	}
	db.people.add(gen, p.Clone())
	return p, nil
}

// GetPersonByWebAuthnID implements store.Persons.
func (db *DB) GetPersonByWebAuthnID(ctx context.Context, webauthnID []byte) (*store.Person, error) {
	if len(webauthnID) == 0 {
		return nil, fmt.Errorf("get person by webauthn id: %w", store.ErrNotFound)
	}
	if p := db.people.getByHandle(webauthnID); p != nil {
		return p, nil
	}
	gen := db.people.begin()
	p, err := scanPerson(db.st.getPersonByWebAuthnID.QueryRowContext(ctx, webauthnID))
	if err != nil {
		return nil, fmt.Errorf("get person by webauthn id: %w", notFound(err))
	}
	db.people.add(gen, p.Clone())
	return p, nil
}

// GetPersonByIdentifier implements store.Persons. The identifier's value
// is personal data and stays out of errors.
func (db *DB) GetPersonByIdentifier(ctx context.Context, scheme, value string) (*store.Person, error) {
	if db.unmatchable(scheme, value) {
		return nil, fmt.Errorf("get person by identifier: %w", store.ErrNotFound)
	}
	if p := db.people.getByIdentifier(scheme, value); p != nil {
		return p, nil
	}
	gen := db.people.begin()
	p, err := scanPerson(db.st.getPersonByIdentifier.QueryRowContext(ctx, scheme, value))
	if err != nil {
		return nil, fmt.Errorf("get person by %s identifier: %w", scheme, notFound(err))
	}
	db.people.add(gen, p.Clone())
	return p, nil
}

// identifiersIn reads personID's identifiers inside tx, and whether the
// person is blocked; ErrNotFound if the person does not exist. Where
// other nodes write at the same time the row is read FOR UPDATE, so
// neither can change before tx ends.
func (db *DB) identifiersIn(ctx context.Context, tx querier, personID string) ([]store.Identifier, bool, error) {
	var (
		text      string
		blockedAt int64
	)
	if err := tx.StmtContext(ctx, db.st.getPersonIdentifiers).QueryRowContext(ctx, personID).Scan(&text, &blockedAt); err != nil {
		return nil, false, notFound(err)
	}
	ids, err := decodeIdentifiers(text)
	if err != nil {
		return nil, false, err
	}
	return ids, blockedAt != 0, nil
}

// LinkIdentifiers implements store.Persons: the identifiers, the end of
// the other sessions and the events in one transaction, which reads
// first whether the person is blocked, and their identifiers, their row
// locked: a block stored before the link's transaction stops it
// (ErrBlocked), and one stored after it blocks the person with what the
// link gave them; a number of a scheme another link added before it
// stops it (ErrSecondNumber), so that of two links at once of two
// numbers of one scheme one stands.
func (db *DB) LinkIdentifiers(ctx context.Context, personID string, add []store.Identifier, raise []store.LevelChange, except string, now time.Time, events func(raised []store.LevelChange, n int) []*store.AuditEvent) ([]*store.Session, error) {
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		ids, blocked, err := db.identifiersIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		if blocked {
			return store.ErrBlocked
		}
		if err := db.changingSessionIn(ctx, tx, personID, except); err != nil {
			return err
		}
		for _, id := range add {
			if _, err := tx.StmtContext(ctx, db.st.insertIdentifier).ExecContext(ctx, id.Scheme, id.Value, personID); err != nil {
				return fmt.Errorf("add %s identifier: %w", id.Scheme, db.d.classify(err))
			}
		}
		if scheme := store.SecondOfScheme(ids, add); scheme != "" {
			return fmt.Errorf("add %s identifier: %w", scheme, store.ErrSecondNumber)
		}
		ids = append(ids, add...)
		var raised []store.LevelChange
		for _, c := range raise {
			i := slices.IndexFunc(ids, func(h store.Identifier) bool { return h.Scheme == c.Scheme && h.Value == c.Value })
			if i < 0 || ids[i].MaxLevel != c.Was {
				continue
			}
			ids[i].MaxLevel = c.MaxLevel
			raised = append(raised, c)
		}
		if len(add) == 0 && len(raised) == 0 {
			return nil
		}
		if _, err := tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(ids), personID); err != nil {
			return err
		}
		if ended, err = db.endPersonSessionsIn(ctx, tx, personID, except, now); err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return db.appendEvents(ctx, tx, events(raised, len(ended)))
	}, func() {
		db.people.drop(personID)
		db.dropSessions(ended)
	})
	if err != nil {
		return nil, fmt.Errorf("link identifiers to person %s: %w", personID, err)
	}
	return ended, nil
}

// changingSessionIn reads, in tx, after the person's row was locked,
// that session except, the one making a change to the person's ways in
// (if named), is still personID's: ErrNotFound if it ended. A removal
// of a number (RemoveIdentifier) locks the row too and ends every
// session of the person, so a link from a session it ended cannot add
// back the number it removed; and a session ended by the person (log
// out everywhere else, or another change to their ways in) adds,
// replaces or removes nothing from then on.
func (db *DB) changingSessionIn(ctx context.Context, tx querier, personID, except string) error {
	if except == "" {
		return nil
	}
	var one int
	err := tx.QueryRowContext(ctx, db.d.rebind("SELECT 1 FROM sessions WHERE id = ? AND person_id = ?"), except, personID).Scan(&one)
	if err != nil {
		return fmt.Errorf("the session making the change: %w", notFound(err))
	}
	return nil
}

// NoteIdentifierUse implements store.Persons: the person's identifiers
// are read and written back in one transaction, their row read FOR
// UPDATE where other nodes write, as a link reads them, so that neither
// undoes the other.
func (db *DB) NoteIdentifierUse(ctx context.Context, personID string, ids []store.Identifier, at time.Time) error {
	if at.IsZero() {
		return fmt.Errorf("note identifier use of person %s: zero time", personID)
	}
	at = at.UTC().Truncate(time.Microsecond)
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		if db.unmatchable(personID) {
			return store.ErrNotFound
		}
		held, _, err := db.identifiersIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		changed := false
		for i, h := range held {
			used := slices.ContainsFunc(ids, func(id store.Identifier) bool { return id.Scheme == h.Scheme && id.Value == h.Value })
			if used && h.LastUsedAt.Before(at) {
				held[i].LastUsedAt, changed = at, true
			}
		}
		if !changed {
			return nil
		}
		_, err = tx.StmtContext(ctx, db.st.setPersonIdentifiers).ExecContext(ctx, jsonText(held), personID)
		return err
	}, func() { db.people.drop(personID) })
	if err != nil {
		return fmt.Errorf("note identifier use of person %s: %w", personID, err)
	}
	return nil
}

// UpdatePersonProfile implements store.Persons.
func (db *DB) UpdatePersonProfile(ctx context.Context, personID string, pr store.Profile) error {
	n, err := db.execThen(ctx, func(int64) { db.people.drop(personID) }, db.st.setPersonProfile,
		pr.GivenName, pr.FamilyName, pr.BirthDate, personID)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("update profile of person %s: %w", personID, err)
	}
	return nil
}

const passkeyCols = "credential_id, person_id, public_key, attestation_type, aaguid, sign_count, " +
	"transports, user_present, user_verified, backup_eligible, backup_state, name, created_at, last_used_at, max_level"

func scanPasskey(s scanner) (*store.Passkey, error) {
	var (
		p                store.Passkey
		transports       string
		count            int64
		created, lastUse int64
	)
	err := s.Scan(&p.CredentialID, &p.PersonID, &p.PublicKey, &p.AttestationType, &p.AAGUID, &count,
		&transports, &p.UserPresent, &p.UserVerified, &p.BackupEligible, &p.BackupState, &p.Name,
		&created, &lastUse, &p.MaxLevel)
	if err != nil {
		return nil, err
	}
	p.SignCount = uint32(count)
	p.CreatedAt = fromMicros(created)
	p.LastUsedAt = fromMicros(lastUse)
	if err := decodeStringsInto("transports", transports, &p.Transports); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePasskey implements store.Passkeys; ErrNotFound if the person does
// not exist, ErrBlocked if they are blocked. It reads the block, counts
// the person's passkeys (with a cap) and inserts in one transaction:
// SQLite runs it under the database's write lock, and where other nodes
// write at the same time (PostgreSQL) it first locks the person's row,
// so that two additions, or an addition and a block, run one after the
// other, the second seeing what the first stored. The session adding
// it, if named, is read after the person's row is locked
// (changingSessionIn). The events, if any, are appended after the
// insert in the same transaction.
func (db *DB) CreatePasskey(ctx context.Context, p *store.Passkey, max int, by string, events ...*store.AuditEvent) error {
	// Without events, or a session to read after it, the insert is the
	// one write: what it reads before needs no savepoint. A read after
	// it that refuses the passkey must undo the insert.
	err := db.wr.do(ctx, len(events) > 0 || by != "", func(ctx context.Context, tx querier) error {
		if err := db.insertPasskeyCapped(ctx, tx, p, max); err != nil {
			return err
		}
		if err := db.changingSessionIn(ctx, tx, p.PersonID, by); err != nil {
			return err
		}
		return db.appendEvents(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("create passkey for person %s: %w", p.PersonID, err)
	}
	return nil
}

// insertPasskeyCapped inserts p in tx unless its person is blocked
// (ErrBlocked) or already holds max passkeys (ErrLimit; no cap if max is
// 0 or less). Where other nodes write at the same time the person's row
// is locked first (unblockedIn), so that two additions run one after the
// other, the second counting what the first stored.
func (db *DB) insertPasskeyCapped(ctx context.Context, tx querier, p *store.Passkey, max int) error {
	if err := db.unblockedIn(ctx, tx, p.PersonID); err != nil {
		return err
	}
	if max > 0 {
		var n int
		if err := tx.StmtContext(ctx, db.st.countPasskeysW).QueryRowContext(ctx, p.PersonID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return fmt.Errorf("holds %d passkeys: %w", n, store.ErrLimit)
		}
	}
	return db.insertPasskey(ctx, tx, p)
}

// CreatePasskeyEndingOthers implements store.Passkeys: the read of the
// block, the count, the insert, the read of the session adding it
// (changingSessionIn), the end of the other sessions and the events are
// one transaction, under the person's row lock where other nodes write.
func (db *DB) CreatePasskeyEndingOthers(ctx context.Context, p *store.Passkey, max int, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if err := db.insertPasskeyCapped(ctx, tx, p, max); err != nil {
			return err
		}
		if err := db.changingSessionIn(ctx, tx, p.PersonID, except); err != nil {
			return err
		}
		var err error
		ended, err = db.endOthersIn(ctx, tx, p.PersonID, except, now, events)
		return err
	}, func() { db.dropSessions(ended) })
	if err != nil {
		return nil, fmt.Errorf("create passkey for person %s: %w", p.PersonID, err)
	}
	return ended, nil
}

// CreatePersonWithPasskey implements store.Passkeys: the person, their
// identifiers, the passkey and the events are stored in one
// transaction.
func (db *DB) CreatePersonWithPasskey(ctx context.Context, person *store.Person, p *store.Passkey, events ...*store.AuditEvent) error {
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		if err := db.insertPerson(ctx, tx, person); err != nil {
			return err
		}
		if err := db.insertPasskey(ctx, tx, p); err != nil {
			return err
		}
		return db.appendEvents(ctx, tx, events)
	}, func() { db.people.drop(person.ID) })
	if err != nil {
		return fmt.Errorf("create person %s with passkey: %w", person.ID, err)
	}
	return nil
}

// insertPasskey writes p in tx.
func (db *DB) insertPasskey(ctx context.Context, tx querier, p *store.Passkey) error {
	_, err := tx.StmtContext(ctx, db.st.insertPasskey).ExecContext(ctx,
		p.CredentialID, p.PersonID, p.PublicKey, p.AttestationType, p.AAGUID, int64(p.SignCount),
		encodeStrings(p.Transports), boolInt(p.UserPresent), boolInt(p.UserVerified),
		boolInt(p.BackupEligible), boolInt(p.BackupState), p.Name, micros(p.CreatedAt), micros(p.LastUsedAt), p.MaxLevel)
	return db.d.classify(err)
}

// GetPasskey implements store.Passkeys.
func (db *DB) GetPasskey(ctx context.Context, credentialID []byte) (*store.Passkey, error) {
	p, err := scanPasskey(db.st.getPasskey.QueryRowContext(ctx, credentialID))
	if err != nil {
		return nil, fmt.Errorf("get passkey: %w", notFound(err))
	}
	return p, nil
}

// ListPasskeys implements store.Passkeys, oldest first.
func (db *DB) ListPasskeys(ctx context.Context, personID string) ([]*store.Passkey, error) {
	if db.unmatchable(personID) {
		return []*store.Passkey{}, nil
	}
	rows, err := read(db.rstmt(ctx, db.st.listPasskeys).QueryContext(ctx, personID))
	if err != nil {
		return nil, fmt.Errorf("list passkeys of person %s: %w", personID, err)
	}
	out, err := collect(rows, scanPasskey)
	if err != nil {
		return nil, fmt.Errorf("list passkeys of person %s: %w", personID, err)
	}
	return out, nil
}

// UpdatePasskeyUse implements store.Passkeys as one conditional UPDATE;
// only when it matches nothing does a read tell a moved count from a
// missing passkey.
func (db *DB) UpdatePasskeyUse(ctx context.Context, credentialID []byte, oldSignCount uint32, u store.PasskeyUse) error {
	err := db.one(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.StmtContext(ctx, db.st.updatePasskeyUse).ExecContext(ctx,
			int64(u.SignCount), boolInt(u.BackupState), micros(u.LastUsedAt), credentialID, int64(oldSignCount))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var one int
		err = tx.StmtContext(ctx, db.st.passkeyExistsW).QueryRowContext(ctx, credentialID).Scan(&one)
		if err == nil {
			return fmt.Errorf("sign count is not %d: %w", oldSignCount, store.ErrConflict)
		}
		return notFound(err)
	})
	if err != nil {
		return fmt.Errorf("update passkey use: %w", err)
	}
	return nil
}

// DeletePasskey implements store.Passkeys with one conditional DELETE:
// SQLite runs it under the database's write lock, so no other removal
// can change the count it checks. Where other nodes write at the same
// time (PostgreSQL), it first locks the person's row, so that two
// removals of one person's passkeys run one after the other, the second
// counting what the first left.
//
// With events it is one operation of several statements: the events are
// appended after the removal, and only if it removed the passkey. The
// session removing it is read first (changingSessionIn): one that has
// ended removes nothing.
func (db *DB) DeletePasskey(ctx context.Context, personID string, credentialID []byte, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.d.shared {
			var one int
			if err := tx.StmtContext(ctx, db.st.lockPerson).QueryRowContext(ctx, personID).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		if err := db.changingSessionIn(ctx, tx, personID, except); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, db.st.deletePasskey).ExecContext(ctx, personID, credentialID, personID, personID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n > 0 {
			ended, err = db.endOthersIn(ctx, tx, personID, except, now, events)
			return err
		}
		var one int
		err = tx.StmtContext(ctx, db.st.passkeyOfPersonW).QueryRowContext(ctx, personID, credentialID).Scan(&one)
		if err == nil {
			return fmt.Errorf("it is the last way in: %w", store.ErrConflict)
		}
		return notFound(err)
	}, func() { db.dropSessions(ended) })
	if err != nil {
		return nil, fmt.Errorf("delete passkey of person %s: %w", personID, err)
	}
	return ended, nil
}

// RenamePasskey implements store.Passkeys: whether the person is
// blocked is read, the person's passkeys read, the name checked against
// the others' and changed, and the events appended, in one transaction.
// SQLite runs it under the database's write lock; where other nodes
// write at the same time (PostgreSQL) the person's row is read FOR
// UPDATE, so that two renames of one person's passkeys run one after
// the other, the second seeing the name the first gave, and a block
// cannot land in between. The session renaming it, if named, is read
// after that (changingSessionIn).
func (db *DB) RenamePasskey(ctx context.Context, personID string, credentialID []byte, name, by string, events ...*store.AuditEvent) error {
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		_, blocked, err := db.identifiersIn(ctx, tx, personID)
		if err != nil {
			return err
		}
		if blocked {
			return store.ErrBlocked
		}
		if err := db.changingSessionIn(ctx, tx, personID, by); err != nil {
			return err
		}
		if err := db.passkeyNameFree(ctx, tx, personID, credentialID, name); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, db.st.renamePasskey).ExecContext(ctx, name, personID, credentialID); err != nil {
			return err
		}
		return db.appendEvents(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("rename passkey of person %s: %w", personID, err)
	}
	return nil
}

// passkeyNameFree checks, in tx, that personID holds credentialID
// (else ErrNotFound) and that none of their other passkeys is called
// name (else ErrConflict).
func (db *DB) passkeyNameFree(ctx context.Context, tx querier, personID string, credentialID []byte, name string) error {
	rows, err := tx.StmtContext(ctx, db.st.passkeyNamesW).QueryContext(ctx, personID)
	if err != nil {
		return err
	}
	defer rows.Close()
	found, taken := false, false
	for rows.Next() {
		var (
			id    []byte
			other string
		)
		if err := rows.Scan(&id, &other); err != nil {
			return err
		}
		switch {
		case bytes.Equal(id, credentialID):
			found = true
		case store.SamePasskeyName(other, name):
			taken = true
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	switch {
	case !found:
		return store.ErrNotFound
	case taken:
		return fmt.Errorf("another passkey has that name: %w", store.ErrConflict)
	}
	return nil
}

// ReplaceRecoveryCodes implements store.RecoveryCodes; ErrNotFound if the
// person does not exist, ErrBlocked if they are blocked and hashes is
// not empty. The person's row is read FOR UPDATE where other nodes write
// too, so that two replacements, or a replacement and a block, run one
// after the other and one set of codes remains, not both.
func (db *DB) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, now time.Time, events ...*store.AuditEvent) error {
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		if err := db.replaceCodesIn(ctx, tx, personID, hashes, now); err != nil {
			return err
		}
		return db.appendEvents(ctx, tx, events)
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes of person %s: %w", personID, err)
	}
	return nil
}

// ReplaceRecoveryCodesEndingOthers implements store.RecoveryCodes: the
// replacement of ReplaceRecoveryCodes, the read of the session asking
// for it (changingSessionIn), the end of the person's other sessions and
// the events are one transaction.
func (db *DB) ReplaceRecoveryCodesEndingOthers(ctx context.Context, personID string, hashes [][]byte, except string, now time.Time, events func(n int) []*store.AuditEvent) ([]*store.Session, error) {
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if err := db.replaceCodesIn(ctx, tx, personID, hashes, now); err != nil {
			return err
		}
		if err := db.changingSessionIn(ctx, tx, personID, except); err != nil {
			return err
		}
		var err error
		ended, err = db.endOthersIn(ctx, tx, personID, except, now, events)
		return err
	}, func() { db.dropSessions(ended) })
	if err != nil {
		return nil, fmt.Errorf("replace recovery codes of person %s: %w", personID, err)
	}
	return ended, nil
}

// replaceCodesIn replaces personID's codes with hashes in tx;
// ErrNotFound if the person does not exist, ErrBlocked if they are
// blocked and hashes is not empty: dropping a blocked person's codes
// gives them no way in, new ones would. The person's row is read FOR
// UPDATE where other nodes write too (unblockedIn), so that two
// replacements run one after the other and one set of codes remains,
// not both.
func (db *DB) replaceCodesIn(ctx context.Context, tx querier, personID string, hashes [][]byte, now time.Time) error {
	err := db.unblockedIn(ctx, tx, personID)
	if errors.Is(err, store.ErrBlocked) && len(hashes) == 0 {
		err = nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, db.st.deleteRecoveryCodes).ExecContext(ctx, personID); err != nil {
		return err
	}
	ins := tx.StmtContext(ctx, db.st.insertRecoveryCode)
	for _, h := range hashes {
		if _, err := ins.ExecContext(ctx, h, personID, micros(now)); err != nil {
			return db.d.classify(err)
		}
	}
	return nil
}

// UseRecoveryCode implements store.RecoveryCodes as one conditional UPDATE.
func (db *DB) UseRecoveryCode(ctx context.Context, hash []byte, now time.Time) (string, error) {
	if now.IsZero() {
		return "", errors.New("use recovery code: zero time")
	}
	var personID string
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		return notFound(tx.StmtContext(ctx, db.st.useRecoveryCode).QueryRowContext(ctx, micros(now), hash).Scan(&personID))
	})
	if err != nil {
		return "", fmt.Errorf("use recovery code: %w", err)
	}
	return personID, nil
}

// RestoreRecoveryCode implements store.RecoveryCodes.
func (db *DB) RestoreRecoveryCode(ctx context.Context, hash []byte, usedAt time.Time) error {
	if usedAt.IsZero() {
		return errors.New("restore recovery code: zero time")
	}
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.StmtContext(ctx, db.st.restoreRecoveryCode).ExecContext(ctx, hash, micros(usedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore recovery code: %w", err)
	}
	return nil
}

// CountRecoveryCodes implements store.RecoveryCodes.
func (db *DB) CountRecoveryCodes(ctx context.Context, personID string) (int, error) {
	if db.unmatchable(personID) {
		return 0, nil
	}
	var n int
	if err := db.st.countRecoveryCodes.QueryRowContext(ctx, personID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count recovery codes of person %s: %w", personID, err)
	}
	return n, nil
}

// DescribeRecoveryCodes implements store.RecoveryCodes with one
// counting read.
func (db *DB) DescribeRecoveryCodes(ctx context.Context, personID string) (store.RecoveryCodeSet, error) {
	var rc store.RecoveryCodeSet
	if db.unmatchable(personID) {
		return rc, nil
	}
	var left, used, made, lastUsed int64
	if err := db.rstmt(ctx, db.st.describeRecoveryCodes).QueryRowContext(ctx, personID).Scan(&left, &used, &made, &lastUsed); err != nil {
		return rc, fmt.Errorf("describe recovery codes of person %s: %w", personID, unavailable(err, false))
	}
	rc.Left, rc.Used, rc.MadeAt, rc.LastUsedAt = int(left), int(used), fromMicros(made), fromMicros(lastUsed)
	return rc, nil
}

// HasRecoveryCode implements store.RecoveryCodes.
func (db *DB) HasRecoveryCode(ctx context.Context, personID string, hash []byte) (bool, error) {
	if db.unmatchable(personID) {
		return false, nil
	}
	var n int
	if err := db.st.hasRecoveryCode.QueryRowContext(ctx, personID, hash).Scan(&n); err != nil {
		return false, fmt.Errorf("find recovery code of person %s: %w", personID, err)
	}
	return n > 0, nil
}

// IssueDeskCode implements store.DeskCodes in one transaction: the
// person's block read (their row FOR UPDATE where other nodes write, so
// that an issue and a block, or a passkey added, run one after the
// other), the help desk code before deleted and the new one stored, the
// passkeys deleted if asked, the person's sessions ended and grants
// revoked, and the events appended.
func (db *DB) IssueDeskCode(ctx context.Context, personID string, hash []byte, expires, now time.Time, removePasskeys bool, events func(passkeys, sessions, grants int) []*store.AuditEvent) ([]*store.Session, error) {
	if !expires.After(now) {
		return nil, fmt.Errorf("issue help desk code to person %s: it expires before it is issued", personID)
	}
	var ended []*store.Session
	err := db.wr.doThen(ctx, true, func(ctx context.Context, tx querier) error {
		ended = nil
		if db.unmatchable(personID) {
			return store.ErrNotFound
		}
		if err := db.unblockedIn(ctx, tx, personID); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, db.st.deleteDeskCodes).ExecContext(ctx, personID); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, db.st.insertDeskCode).ExecContext(ctx, hash, personID, micros(now), micros(expires)); err != nil {
			return db.d.classify(err)
		}
		var removed int64
		if removePasskeys {
			res, err := tx.ExecContext(ctx, db.d.rebind("DELETE FROM passkeys WHERE person_id = ?"), personID)
			if err != nil {
				return db.d.classify(err)
			}
			if removed, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		var (
			grants int64
			err    error
		)
		if ended, grants, err = db.endAccessIn(ctx, tx, personID, now); err != nil {
			return err
		}
		if events == nil {
			return nil
		}
		return db.appendEvents(ctx, tx, events(int(removed), len(ended), int(grants)))
	}, func() { db.dropSessions(ended) })
	if err != nil {
		return nil, fmt.Errorf("issue help desk code to person %s: %w", personID, err)
	}
	return ended, nil
}

// UseDeskCode implements store.DeskCodes as one conditional UPDATE,
// and, when it changes nothing, a read of why.
func (db *DB) UseDeskCode(ctx context.Context, hash []byte, now time.Time) (string, error) {
	if now.IsZero() {
		return "", errors.New("use help desk code: zero time")
	}
	var personID string
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		err := tx.StmtContext(ctx, db.st.useDeskCode).QueryRowContext(ctx, micros(now), hash, micros(now)).Scan(&personID)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return notFound(err)
		}
		var usedAt, expiresAt int64
		if err := tx.StmtContext(ctx, db.st.deskCodeState).QueryRowContext(ctx, hash).Scan(&usedAt, &expiresAt); err != nil {
			return notFound(err)
		}
		if usedAt != 0 {
			return store.ErrUsed
		}
		return store.ErrExpired
	})
	if err != nil {
		return "", fmt.Errorf("use help desk code: %w", err)
	}
	return personID, nil
}

// GetDeskCode implements store.DeskCodes with one read.
func (db *DB) GetDeskCode(ctx context.Context, personID string) (store.DeskCode, error) {
	var c store.DeskCode
	if db.unmatchable(personID) {
		return c, fmt.Errorf("help desk code of person %s: %w", personID, store.ErrNotFound)
	}
	var issued, expires, used int64
	if err := db.rstmt(ctx, db.st.getDeskCode).QueryRowContext(ctx, personID).Scan(&issued, &expires, &used); err != nil {
		return c, fmt.Errorf("help desk code of person %s: %w", personID, notFound(err))
	}
	c.IssuedAt, c.ExpiresAt, c.UsedAt = fromMicros(issued), fromMicros(expires), fromMicros(used)
	return c, nil
}
