package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/store"
)

var (
	_ store.Incidents    = (*DB)(nil)
	_ store.Maintenances = (*DB)(nil)
)

// Status page queries are built per call rather than prepared at open,
// like the health queries: they run a few times per probe round or page
// render, not per login, and their WHERE clauses depend on the filters.

const (
	incidentCols = "id, component, components, severity, started_at, opened_at, recovered_at, resolved_at, " +
		"people_affected, failed_attempts, rerouted, counted_at, rca, rca_published_at, version"
	// incidentMutableCols are the columns UpdateIncident replaces.
	incidentMutableCols = "components, severity, recovered_at, resolved_at, people_affected, failed_attempts, " +
		"rerouted, counted_at, rca, rca_published_at"
	incidentUpdateCols = "incident_id, seq, time, kind, state, reason, message, author"
	maintenanceCols    = "id, components, start_at, end_at, title, message, created_at, cancelled_at, announced_end_at"

	// idsPerQuery caps the IDs bound in one IN (...) list, well below
	// SQLite's limit on bound parameters.
	idsPerQuery = 500
)

func scanIncident(s scanner) (*store.Incident, error) {
	var (
		in                                   store.Incident
		components                           string
		started, opened, recovered, resolved int64
		counted, published                   int64
	)
	err := s.Scan(&in.ID, &in.Component, &components, &in.Severity, &started, &opened, &recovered, &resolved,
		&in.PeopleAffected, &in.FailedAttempts, &in.Rerouted, &counted, &in.RCA, &published, &in.Version)
	if err != nil {
		return nil, err
	}
	in.StartedAt, in.OpenedAt = fromMicros(started), fromMicros(opened)
	in.RecoveredAt, in.ResolvedAt = fromMicros(recovered), fromMicros(resolved)
	in.CountedAt, in.RCAPublishedAt = fromMicros(counted), fromMicros(published)
	if err := decodeStringsInto("components", components, &in.Components); err != nil {
		return nil, err
	}
	return &in, nil
}

func scanIncidentUpdate(s scanner) (*store.IncidentUpdate, error) {
	var (
		u  store.IncidentUpdate
		at int64
	)
	if err := s.Scan(&u.IncidentID, &u.Seq, &at, &u.Kind, &u.State, &u.Reason, &u.Message, &u.Author); err != nil {
		return nil, err
	}
	u.Time = fromMicros(at)
	return &u, nil
}

// incidentComponents is every component in affected: its component
// first, then its components, each once.
func incidentComponents(in *store.Incident) []string {
	out := []string{in.Component}
	for _, c := range in.Components {
		found := false
		for _, o := range out {
			if o == c {
				found = true
				break
			}
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}

// putIncidentComponents replaces the rows of incident_components of in.
func (db *DB) putIncidentComponents(ctx context.Context, tx querier, in *store.Incident) error {
	if _, err := tx.ExecContext(ctx, db.d.rebind("DELETE FROM incident_components WHERE incident_id = ?"), in.ID); err != nil {
		return err
	}
	ins := db.d.rebind("INSERT INTO incident_components (component, incident_id) VALUES (?, ?)")
	for _, c := range incidentComponents(in) {
		if _, err := tx.ExecContext(ctx, ins, c, in.ID); err != nil {
			return db.d.classify(err)
		}
	}
	return nil
}

// OpenIncident implements store.Incidents. The partial unique index on
// the component of open incidents decides between concurrent openers,
// in this process or any other sharing the database.
func (db *DB) OpenIncident(ctx context.Context, in *store.Incident) error {
	if !in.ResolvedAt.IsZero() {
		return fmt.Errorf("open incident %s: it is resolved", in.ID)
	}
	if in.Component == "" {
		return fmt.Errorf("open incident %s: no component", in.ID)
	}
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, db.d.rebind(insertSQL("incidents", incidentCols)),
			in.ID, in.Component, encodeStrings(in.Components), in.Severity, micros(in.StartedAt), micros(in.OpenedAt),
			micros(in.RecoveredAt), 0, in.PeopleAffected, in.FailedAttempts, in.Rerouted, micros(in.CountedAt),
			in.RCA, micros(in.RCAPublishedAt), 1)
		if err != nil {
			return db.d.classify(err)
		}
		if err := db.putIncidentComponents(ctx, tx, in); err != nil {
			return err
		}
		ins := db.d.rebind(insertSQL("incident_updates", incidentUpdateCols))
		for i, u := range in.Updates {
			if _, err := tx.ExecContext(ctx, ins, in.ID, i+1, micros(u.Time), u.Kind, u.State, u.Reason, u.Message, u.Author); err != nil {
				return fmt.Errorf("update %d: %w", i+1, db.d.classify(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open incident %s of %s: %w", in.ID, in.Component, err)
	}
	in.Version = 1
	for i, u := range in.Updates {
		u.IncidentID, u.Seq = in.ID, i+1
	}
	return nil
}

// LastResolvedBy implements store.Incidents, through the index on
// resolved_at.
func (db *DB) LastResolvedBy(ctx context.Context, t time.Time) (time.Time, error) {
	var v sql.NullInt64
	q := db.d.rebind("SELECT MAX(resolved_at) FROM incidents WHERE resolved_at > 0 AND resolved_at <= ?")
	if err := db.r.QueryRowContext(ctx, q, micros(t)).Scan(&v); err != nil {
		return time.Time{}, fmt.Errorf("last resolved incident: %w", err)
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromMicros(v.Int64), nil
}

// GetIncident implements store.Incidents.
func (db *DB) GetIncident(ctx context.Context, id string) (*store.Incident, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get incident %q: %w", id, store.ErrNotFound)
	}
	ins, err := db.listIncidents(ctx, " WHERE id = ?", []any{id})
	if err != nil {
		return nil, fmt.Errorf("get incident %s: %w", id, err)
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("get incident %s: %w", id, store.ErrNotFound)
	}
	return ins[0], nil
}

// ListIncidents implements store.Incidents: one query for the incidents
// and one per idsPerQuery of them for their timelines, in one read
// transaction so the two agree.
func (db *DB) ListIncidents(ctx context.Context, q store.IncidentQuery) ([]*store.Incident, error) {
	var (
		conds []string
		args  []any
	)
	if q.Component != "" {
		conds = append(conds, "id IN (SELECT incident_id FROM incident_components WHERE component = ?)")
		args = append(args, q.Component)
	}
	if q.Open {
		conds = append(conds, "resolved_at = 0")
	}
	if q.RCAOwed {
		conds = append(conds, "resolved_at > 0 AND rca_published_at = 0")
	}
	if !q.Since.IsZero() {
		conds = append(conds, "(resolved_at = 0 OR resolved_at >= ?)")
		args = append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		conds = append(conds, "started_at < ?")
		args = append(args, micros(q.Until))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	where += " ORDER BY started_at DESC, id DESC"
	if q.Limit > 0 {
		where += " LIMIT ?"
		args = append(args, q.Limit)
	}
	out, err := db.listIncidents(ctx, where, args)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

// listIncidents selects incidents with the clause rest and fills their
// timelines. The result is never nil.
func (db *DB) listIncidents(ctx context.Context, rest string, args []any) ([]*store.Incident, error) {
	// One snapshot for the incidents and their timelines, so that the two
	// agree even while another node resolves one of them.
	tx, err := db.r.BeginTx(ctx, db.d.snapshot)
	if err != nil {
		return nil, unavailable(err, false)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	rows, err := read(tx.QueryContext(ctx, db.d.rebind("SELECT "+incidentCols+" FROM incidents"+rest), args...))
	if err != nil {
		return nil, err
	}
	out, err := collect(rows, scanIncident)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Incident, len(out))
	for _, in := range out {
		byID[in.ID] = in
	}
	for start := 0; start < len(out); start += idsPerQuery {
		chunk := out[start:min(len(out), start+idsPerQuery)]
		ids := make([]any, len(chunk))
		for i, in := range chunk {
			ids[i] = in.ID
		}
		q := "SELECT " + incidentUpdateCols + " FROM incident_updates WHERE incident_id IN (" +
			placeholders(len(ids)) + ") ORDER BY incident_id, seq"
		rows, err := read(tx.QueryContext(ctx, db.d.rebind(q), ids...))
		if err != nil {
			return nil, err
		}
		us, err := collect(rows, scanIncidentUpdate)
		if err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		for _, u := range us {
			in := byID[u.IncidentID]
			in.Updates = append(in.Updates, u)
		}
	}
	return out, nil
}

// placeholders is n comma-separated '?'.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// UpdateIncident implements store.Incidents with an UPDATE conditional
// on the version; if it changes nothing, a second look tells a missing
// incident from a lost race.
func (db *DB) UpdateIncident(ctx context.Context, in *store.Incident) error {
	if db.unmatchable(in.ID) {
		return fmt.Errorf("update incident %q: %w", in.ID, store.ErrNotFound)
	}
	set := strings.ReplaceAll(incidentMutableCols, ",", " = ?,") + " = ?, version = version + 1"
	q := db.d.rebind("UPDATE incidents SET " + set + " WHERE id = ? AND version = ?")
	err := db.update(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, q, encodeStrings(in.Components), in.Severity, micros(in.RecoveredAt),
			micros(in.ResolvedAt), in.PeopleAffected, in.FailedAttempts, in.Rerouted, micros(in.CountedAt), in.RCA,
			micros(in.RCAPublishedAt), in.ID, in.Version)
		if err != nil {
			// Reopening while another incident of the component is open.
			return db.d.classify(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := tx.QueryRowContext(ctx, db.d.rebind("SELECT 1 FROM incidents WHERE id = ?"), in.ID).Scan(&one)
			if err != nil {
				return notFound(err)
			}
			return fmt.Errorf("version %d is stale: %w", in.Version, store.ErrConflict)
		}
		// The stored component, not in's, heads the list.
		var component string
		if err := tx.QueryRowContext(ctx, db.d.rebind("SELECT component FROM incidents WHERE id = ?"), in.ID).Scan(&component); err != nil {
			return err
		}
		return db.putIncidentComponents(ctx, tx, &store.Incident{ID: in.ID, Component: component, Components: in.Components})
	})
	if err != nil {
		return fmt.Errorf("update incident %s: %w", in.ID, err)
	}
	in.Version++
	return nil
}

// AddIncidentUpdate implements store.Incidents in one statement: the
// insert numbers the entry after the incident's last, and the foreign
// key refuses an unknown incident. Where other nodes write at the same
// time (PostgreSQL), the incident's row is locked first, so that two
// nodes' entries take turns rather than the same number.
func (db *DB) AddIncidentUpdate(ctx context.Context, u *store.IncidentUpdate) error {
	if db.unmatchable(u.IncidentID) {
		return fmt.Errorf("add update to incident %q: %w", u.IncidentID, store.ErrNotFound)
	}
	q := db.d.rebind("INSERT INTO incident_updates (" + incidentUpdateCols + ") " +
		"SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM incident_updates WHERE incident_id = ? RETURNING seq")
	lock := db.d.rebind("SELECT 1 FROM incidents WHERE id = ?" + db.d.forUpdate)
	var seq int
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		if db.d.shared {
			var one int
			if err := tx.QueryRowContext(ctx, lock, u.IncidentID).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		err := tx.QueryRowContext(ctx, q, u.IncidentID, micros(u.Time), u.Kind, u.State, u.Reason, u.Message, u.Author,
			u.IncidentID).Scan(&seq)
		return db.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("add update to incident %s: %w", u.IncidentID, err)
	}
	u.Seq = seq
	return nil
}

func scanMaintenance(s scanner) (*store.Maintenance, error) {
	var (
		m                              store.Maintenance
		components                     string
		start, end, created, cancelled int64
		announced                      int64
	)
	if err := s.Scan(&m.ID, &components, &start, &end, &m.Title, &m.Message, &created, &cancelled, &announced); err != nil {
		return nil, err
	}
	m.Start, m.End, m.AnnouncedEnd = fromMicros(start), fromMicros(end), fromMicros(announced)
	m.CreatedAt, m.CancelledAt = fromMicros(created), fromMicros(cancelled)
	if err := decodeStringsInto("components", components, &m.Components); err != nil {
		return nil, err
	}
	return &m, nil
}

// CreateMaintenance implements store.Maintenances.
func (db *DB) CreateMaintenance(ctx context.Context, m *store.Maintenance) error {
	q := db.d.rebind(insertSQL("maintenance", maintenanceCols))
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		_, err := tx.ExecContext(ctx, q, m.ID, encodeStrings(m.Components), micros(m.Start), micros(m.End),
			m.Title, m.Message, micros(m.CreatedAt), micros(m.CancelledAt), micros(m.AnnouncedEnd))
		return db.d.classify(err)
	})
	if err != nil {
		return fmt.Errorf("create maintenance %s: %w", m.ID, err)
	}
	return nil
}

// ListMaintenance implements store.Maintenances.
func (db *DB) ListMaintenance(ctx context.Context, since, until time.Time) ([]*store.Maintenance, error) {
	var (
		conds []string
		args  []any
	)
	if !since.IsZero() {
		conds = append(conds, "(end_at = 0 OR end_at > ?)")
		args = append(args, micros(since))
	}
	if !until.IsZero() {
		conds = append(conds, "start_at < ?")
		args = append(args, micros(until))
	}
	q := "SELECT " + maintenanceCols + " FROM maintenance"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := read(db.r.QueryContext(ctx, db.d.rebind(q+" ORDER BY start_at, id"), args...))
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	out, err := collect(rows, scanMaintenance)
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	return out, nil
}

// GetMaintenance implements store.Maintenances.
func (db *DB) GetMaintenance(ctx context.Context, id string) (*store.Maintenance, error) {
	if db.unmatchable(id) {
		return nil, fmt.Errorf("get maintenance %q: %w", id, store.ErrNotFound)
	}
	row := db.r.QueryRowContext(ctx, db.d.rebind("SELECT "+maintenanceCols+" FROM maintenance WHERE id = ?"), id)
	m, err := scanMaintenance(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get maintenance %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get maintenance %s: %w", id, err)
	}
	return m, nil
}

// CancelMaintenance implements store.Maintenances. A zero now is refused:
// it is how "not cancelled" is stored.
func (db *DB) CancelMaintenance(ctx context.Context, id string, now time.Time) error {
	// Whether the window has begun is decided by the write itself, so a
	// window that begins between a caller's check and this write is not
	// cancelled.
	return db.changeMaintenance(ctx, "cancel", id, now,
		"UPDATE maintenance SET cancelled_at = CASE WHEN cancelled_at = 0 THEN ? ELSE cancelled_at END WHERE id = ? AND (cancelled_at <> 0 OR start_at > ?)",
		micros(now), id, micros(now))
}

// EndMaintenance implements store.Maintenances.
func (db *DB) EndMaintenance(ctx context.Context, id string, now time.Time) error {
	at := micros(now)
	return db.changeMaintenance(ctx, "end", id, now,
		"UPDATE maintenance SET announced_end_at = CASE WHEN announced_end_at = 0 THEN end_at ELSE announced_end_at END, end_at = ? WHERE id = ? AND cancelled_at = 0 AND start_at < ? AND (end_at = 0 OR end_at > ?)",
		at, id, at, at)
}

// changeMaintenance runs q, a write to window id on the condition it
// states, at now: when it changes no row, maintenanceMissed says why.
func (db *DB) changeMaintenance(ctx context.Context, what, id string, now time.Time, q string, args ...any) error {
	if now.IsZero() {
		return fmt.Errorf("%s maintenance %s: %w", what, id, errors.New("zero time"))
	}
	if db.unmatchable(id) {
		return fmt.Errorf("%s maintenance %q: %w", what, id, store.ErrNotFound)
	}
	q = db.d.rebind(q)
	err := db.single(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		return db.maintenanceMissed(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("%s maintenance %s: %w", what, id, err)
	}
	return nil
}

// maintenanceMissed is why a conditional write to maintenance id changed
// no row: store.ErrNotFound if there is no such window, else
// store.ErrConflict.
func (db *DB) maintenanceMissed(ctx context.Context, tx querier, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, db.d.rebind("SELECT 1 FROM maintenance WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return store.ErrConflict
}
