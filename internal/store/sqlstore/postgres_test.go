package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openPostgres opens the PostgreSQL database at dsn, closed at cleanup.
func openPostgres(t testing.TB, dsn string) *DB {
	t.Helper()
	return closedAtCleanup(t)(OpenPostgres(context.Background(), dsn))
}

func TestConformancePostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t, pgtest.NewDatabase(t)) })
}

// TestPostgresNodes runs the shared-store suite with two DB values over
// one database, as two nodes hold them.
func TestPostgresNodes(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := pgtest.NewDatabase(t)
		return openPostgres(t, dsn), openPostgres(t, dsn)
	})
}

// TestPostgresMigrateTogether opens one new database from several nodes
// at once: each migration is applied once and every node starts.
func TestPostgresMigrateTogether(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const nodes = 4
	var wg sync.WaitGroup
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Go(func() { dbs[i], errs[i] = OpenPostgres(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if t.Failed() {
		return
	}
	var n, versions int
	if err := dbs[0].r.QueryRowContext(t.Context(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(dbs[0].d.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || versions != len(ms) {
		t.Errorf("schema_migrations has %d rows of %d versions, want %d", n, versions, len(ms))
	}
}

func TestPostgresAuditLogAppendOnly(t *testing.T) {
	ctx := t.Context()
	db := openPostgres(t, pgtest.NewDatabase(t))
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "x", Result: store.ResultSuccess, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckIntegrity(ctx); err != nil {
		t.Fatalf("check of a sound database: %v", err)
	}
	for _, q := range []string{
		"UPDATE audit_log SET result = 'failure'",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
	} {
		if _, err := db.w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	all, err := db.ListAudit(ctx, 0, 10)
	if err != nil || len(all) != 1 || all[0].Result != store.ResultSuccess {
		t.Errorf("log after refused changes: %v, %v", all, err)
	}
	// Each trigger refusing a change to the audit log or its addresses
	// kept apart, disabled, fails the check.
	for _, q := range []string{
		"ALTER TABLE audit_addresses DISABLE TRIGGER audit_addresses_no_update",
		"ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
	} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckIntegrity(ctx); !errors.Is(err, ErrCorrupt) {
			t.Errorf("check after %s: %v, want ErrCorrupt", q, err)
		}
	}
	if err := db.BackupTo(ctx, t.TempDir()+"/b.db"); !errors.Is(err, ErrBackupUnsupported) {
		t.Errorf("backup of a PostgreSQL store: %v, want ErrBackupUnsupported", err)
	}
}

func TestOpenExistingPostgres(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	if db, err := OpenExistingPostgres(ctx, dsn); !errors.Is(err, ErrNoDatabase) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open an empty database as existing: %v, want ErrNoDatabase", err)
	}
	openPostgres(t, dsn)
	db, err := OpenExistingPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenPostgresErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	const secret = "s3cret-pw"
	for _, dsn := range []string{
		"postgres://varde:" + secret + "@127.0.0.1:1/varde?sslmode=disable&connect_timeout=2",
		"postgres://varde:" + secret + "@[::1/varde", // not a URL
	} {
		db, err := OpenPostgres(ctx, dsn)
		if err == nil {
			db.Close()
			t.Fatalf("%q opened", dsn)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if got := DescribeDSN("postgres", "postgres://varde:"+secret+"@db.example:5433/idp"); strings.Contains(got, secret) ||
		got != `database "idp" on db.example:5433` {
		t.Errorf("DescribeDSN = %q", got)
	}
}

func TestRebindDollar(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                              "SELECT 1",
		"SELECT a FROM t WHERE b = ? AND c = ?": "SELECT a FROM t WHERE b = $1 AND c = $2",
		"SELECT '?' || ? FROM \"?\" LIMIT ?":    "SELECT '?' || $1 FROM \"?\" LIMIT $2",
		"VALUES (?, ?, ?), (?, ?, ?)":           "VALUES ($1, $2, $3), ($4, $5, $6)",
	} {
		if got := rebindDollar(in); got != want {
			t.Errorf("rebindDollar(%q) = %q, want %q", in, got, want)
		}
	}
}

// stallProxy forwards TCP connections to a server until stalled: then it
// forwards nothing, in either direction, and answers nothing, as a
// network partition does. Resume drops the stalled connections and
// forwards new ones again.
type stallProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	stalled bool
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.resume() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *stallProxy) serve(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	stalled := p.stalled
	p.mu.Unlock()
	if stalled {
		return // held open, never answered
	}
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, s)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			p.mu.Lock()
			stalled := p.stalled
			p.mu.Unlock()
			if err != nil || stalled {
				return // a stalled connection swallows what it read
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(s, c)
	go pipe(c, s)
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *stallProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.stalled = nil, false
}

// TestPostgresPartition: when the server stops answering, a write fails
// within the write timeout instead of holding the node's writer (and
// every write behind it) for as long as TCP takes to give up; once the
// server answers again, writes work again and the audit chain is whole.
func TestPostgresPartition(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	db := openPostgres(t, u.String())
	const timeout = time.Second
	db.wr.d.writeTimeout = timeout // before the first write reaches the writer
	event := func() *store.AuditEvent { return &store.AuditEvent{Type: "t", Time: time.Now()} }
	if err := db.AppendAudit(ctx, event()); err != nil {
		t.Fatal(err)
	}

	proxy.stall()
	start := time.Now()
	err = db.AppendAudit(ctx, event())
	if took := time.Since(start); err == nil || took > 3*timeout {
		t.Fatalf("write during the partition: %v after %v; want an error within about %v", err, took, timeout)
	}
	start = time.Now()
	if err := db.CreateAuthCode(ctx, &store.AuthCode{Hash: []byte("c"), CreatedAt: start, ExpiresAt: start.Add(time.Minute)}); err == nil {
		t.Error("a one-statement write during the partition succeeded")
	}
	if took := time.Since(start); took > 3*timeout {
		t.Errorf("a one-statement write during the partition took %v", took)
	}

	proxy.resume()
	var last error
	for range 5 {
		if last = db.AppendAudit(ctx, event()); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("writes after the partition ended: %v", last)
	}
	all, err := db.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
}

func TestOpenExistingPostgresSchema(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	openPostgres(t, dsn).Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	d, err := postgresDialect()
	if err != nil {
		t.Fatal(err)
	}
	testOpenExistingSchema(t, d, raw, func() (*DB, error) { return OpenExistingPostgres(t.Context(), dsn) })
}

// adminDB opens a plain handle on dsn, apart from the node's, closed
// when the test ends.
func adminDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// endSessions ends, through admin, every session of the database but
// admin's own, as a server restart or failover does, and returns how
// many it ended once the server's word of it has had time to reach the
// other connections' sockets.
func endSessions(t *testing.T, admin *sql.DB) int {
	t.Helper()
	var n int
	err := admin.QueryRowContext(t.Context(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "+
		"WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	return n
}

// TestPostgresWriteAfterSessionsEnd: when the server ends the node's
// sessions (a restart, a failover, pg_terminate_backend), the next
// write gets a new connection rather than failing on the dead one, even
// if the writer used it moments before, whether it begins a transaction
// or is one statement in autocommit.
func TestPostgresWriteAfterSessionsEnd(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn)
	admin := adminDB(t, dsn)
	event := func() *store.AuditEvent { return &store.AuditEvent{Type: "t", Time: time.Now()} }
	for i := range 3 {
		if err := db.AppendAudit(ctx, event()); err != nil {
			t.Fatalf("write %d before the sessions end: %v", i, err)
		}
		if n := endSessions(t, admin); n == 0 {
			t.Fatal("no session of the node's to end")
		}
		if err := db.AppendAudit(ctx, event()); err != nil {
			t.Fatalf("write %d after the sessions end: %v", i, err)
		}
		// Writes of one statement, which run in autocommit and so must
		// not be sent on the session that ended.
		for j, when := range []string{"before", "after"} {
			if _, err := db.Pin(ctx, "pin-"+strconv.Itoa(i)+"-"+when, []byte("v"), time.Now()); err != nil {
				t.Fatalf("one-statement write %d %s the sessions end: %v", i, when, err)
			}
			if j == 0 {
				endSessions(t, admin)
			}
		}
	}
	// Read through another node's handle: the read pool's connections
	// meet the end of their sessions on their own.
	all, err := openPostgres(t, dsn).ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Errorf("%d events, want 6", len(all))
	}
	if err := store.VerifyAuditChain(nil, all); err != nil {
		t.Error(err)
	}
}

// TestPostgresReadAfterSessionsEnd: when the server ends the node's
// sessions, reads on pooled connections used moments before (too
// recently for the pool to ping them) run again on other connections
// rather than failing: prepared statements, plain queries and snapshot
// transactions alike.
func TestPostgresReadAfterSessionsEnd(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn)
	admin := adminDB(t, dsn)
	if err := db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	reads := []struct {
		name string
		read func() error
	}{
		{"prepared", func() error { _, err := db.ListAudit(ctx, 0, 10); return err }},
		{"prepared, no row", func() error {
			if _, err := db.GetClient(ctx, "none"); !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return nil
		}},
		{"query", func() error { _, err := db.ListMaintenance(ctx, time.Time{}, time.Time{}); return err }},
		{"snapshot", func() error { _, err := db.ListIncidents(ctx, store.IncidentQuery{}); return err }},
		{"ping", func() error { return db.Ping(ctx) }},
	}
	const conns = 4
	for round := range 3 {
		// Use several read connections at once, twice, so that the pool
		// holds that many, each reused within the last second (the pool
		// pings a connection it reuses after a second idle, and a new
		// one at its first reuse). A connection held this way is not
		// replaced when its session has ended (the pool may still hold
		// one from the round before): take another.
		for range 2 {
			useReadConns(t, db, conns)
		}
		if n := endSessions(t, admin); n < conns {
			t.Fatalf("ended %d sessions, want at least %d", n, conns)
		}
		for _, r := range reads {
			if err := r.read(); err != nil {
				t.Errorf("round %d, read %s after the sessions end: %v", round, r.name, err)
			}
		}
	}
}

// TestPostgresReadPoolWriteNotRetried: a statement on the read pool
// that is not a SELECT is not run again when its session has ended, since
// the server may have done it before it ended the session.
func TestPostgresReadPoolWriteNotRetried(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn)
	admin := adminDB(t, dsn)
	const conns = 2
	for range 2 {
		useReadConns(t, db, conns)
	}
	endSessions(t, admin)
	rows, err := db.r.QueryContext(ctx, "INSERT INTO pins (name, value, created_at) VALUES ('p', 'v', 1) RETURNING value")
	if err == nil {
		rows.Close()
		t.Fatal("a write on a read connection whose session ended was run again")
	}
	var n int
	if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pins WHERE name = 'p'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d pins written", n)
	}
}

// TestIsSelect: what the read pool runs again after its session ended.
func TestIsSelect(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"SELECT 1", true},
		{"  select id FROM clients", true},
		{"\n\tSELECT 1", true},
		{"INSERT INTO pins (name, value, created_at) VALUES ('a', 'b', 1) RETURNING value", false},
		{"WITH d AS (DELETE FROM pins RETURNING name) SELECT name FROM d", false},
		{"UPDATE pins SET value = 'c' RETURNING value", false},
		{"SELEC", false},
		{"", false},
	} {
		if got := isSelect(tc.q); got != tc.want {
			t.Errorf("isSelect(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

// useReadConns runs a query on n of db's read connections held at once,
// then gives them back to the pool.
func useReadConns(t *testing.T, db *DB, n int) {
	t.Helper()
	held := make([]*sql.Conn, n)
	defer func() {
		for _, c := range held {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range held {
		for try := 0; held[i] == nil; try++ {
			c, err := db.r.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var one int
			if err := c.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
				c.Close()
				if try == 2*n {
					t.Fatal(err)
				}
				continue
			}
			held[i] = c
		}
	}
}

// TestPostgresNoAuditDeadlock has two nodes change the same sessions at
// once, in orders that cross, each change with an audit event. Every
// transaction that may append to the audit chain takes the chain's lock
// before any row's, so no two of them wait for each other in a cycle:
// the server finds no deadlock (each would stall a login for
// deadlock_timeout before one side is aborted and run again).
func TestPostgresNoAuditDeadlock(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	now := time.Now().UTC()
	const sessions, goroutines, rounds = 3, 4, 10
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = "s-cross-" + strconv.Itoa(i)
		s := &store.Session{ID: ids[i], PersonID: "p-1", Provider: "passkey", Level: "high", AuthTime: now,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for n, db := range []*DB{a, b} {
		for g := range goroutines {
			wg.Go(func() {
				for r := range rounds {
					for k := range sessions {
						i := (g + k) % sessions
						if n == 1 {
							i = sessions - 1 - i
						}
						client := "c-" + strconv.Itoa(n) + "-" + strconv.Itoa(g) + "-" + strconv.Itoa(r)
						e := &store.AuditEvent{Type: "consent", Time: now, ClientID: client}
						if err := db.AddSessionClient(ctx, ids[i], client, e); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
	}
	wg.Wait()
	// A server process adds its counts to pg_stat_database when it ends.
	a.Close()
	b.Close()
	stats, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	time.Sleep(time.Second)
	var deadlocks int64
	if err := stats.QueryRowContext(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&deadlocks); err != nil {
		t.Fatal(err)
	}
	if deadlocks != 0 {
		t.Errorf("the server found %d deadlocks", deadlocks)
	}
}

// TestPostgresCommitLost: a write whose COMMIT got no answer (the
// connection dropped) may have been stored or not, and its error says
// so rather than read as a plain failure.
func TestPostgresCommitLost(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	db := openPostgres(t, u.String())
	err = db.wr.do(ctx, true, func(ctx context.Context, tx querier) error {
		if err := insertGrant(db, "lost")(ctx, tx); err != nil {
			return err
		}
		proxy.resume() // the connection drops before COMMIT
		return nil
	})
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want store.ErrOutcomeUnknown", err)
	}
	if !strings.Contains(err.Error(), "may or may not") {
		t.Errorf("err = %q does not say the write may or may not be stored", err)
	}
}

// TestPostgresStatementLost: a write of one statement, run in
// autocommit, whose connection drops after the statement was sent may
// have been carried out, as may a COMMIT that got no answer, and its
// error says so too.
func TestPostgresStatementLost(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newStallProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	db := openPostgres(t, u.String())
	err = db.wr.doOne(ctx, func(ctx context.Context, tx querier) error {
		proxy.stall() // the statement is swallowed, and then the connection drops
		drop := time.AfterFunc(200*time.Millisecond, proxy.resume)
		defer drop.Stop()
		return insertGrant(db, "lost")(ctx, tx)
	}, nil)
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want store.ErrOutcomeUnknown", err)
	}
	// A statement the server answered has a known outcome.
	if err := db.wr.doOne(ctx, insertGrant(db, "known"), nil); err != nil {
		t.Fatal(err)
	}
	err = db.wr.doOne(ctx, insertGrant(db, "known"), nil)
	if !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("duplicate: err = %v, want store.ErrConflict alone", err)
	}
}

// TestPostgresCommitClash: a COMMIT the server refuses for a
// serialization failure (here a deferred constraint trigger's, the
// first two times) wrote nothing, so the batch's operations run again,
// as they do after a clash met while they ran.
func TestPostgresCommitClash(t *testing.T) {
	ctx := t.Context()
	db := openPostgres(t, pgtest.NewDatabase(t))
	for _, q := range []string{
		`CREATE SEQUENCE commit_clashes`,
		`CREATE FUNCTION commit_clash() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('commit_clashes') <= 2 THEN
				RAISE EXCEPTION 'clash at commit' USING ERRCODE = '40001';
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE CONSTRAINT TRIGGER commit_clash AFTER INSERT ON grants
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_clash()`,
	} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.wr.do(ctx, true, insertGrant(db, "clashed")); err != nil {
		t.Fatalf("write whose COMMIT clashed twice: %v", err)
	}
	if _, err := db.GetGrant(ctx, "clashed"); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresWriteAfterRestart: after the server restarts, the first
// write on the connection the node held from before succeeds, whatever
// its kind: one statement in autocommit (whose statement is its commit,
// so it must not be sent on a session that has ended), one operation
// in a transaction, or several.
func TestPostgresWriteAfterRestart(t *testing.T) {
	srv := pgtest.NewServer(t)
	db := openPostgres(t, srv.DSN())
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	writes := []struct {
		name  string
		write func(i int) error
	}{
		{"one statement", func(i int) error {
			_, err := db.Pin(ctx, "pin-"+strconv.Itoa(i), []byte("v"), time.Now())
			return err
		}},
		{"transaction", func(int) error { return db.AppendAudit(ctx, &store.AuditEvent{Type: "t", Time: time.Now()}) }},
		{"several statements", func(i int) error {
			return db.update(ctx, func(ctx context.Context, tx querier) error {
				if err := insertGrant(db, "g-"+strconv.Itoa(i)+"-1")(ctx, tx); err != nil {
					return err
				}
				return insertGrant(db, "g-"+strconv.Itoa(i)+"-2")(ctx, tx)
			})
		}},
	}
	i := 0
	for _, before := range writes {
		for _, after := range writes {
			i++
			if err := before.write(i); err != nil {
				t.Fatalf("%s before the restart: %v", before.name, err)
			}
			srv.Stop()
			srv.Start()
			i++
			if err := after.write(i); err != nil {
				t.Errorf("%s after the restart, following a %s before it: %v", after.name, before.name, err)
			}
		}
	}
}

// endOwnSession returns an op that, the first times times it runs,
// has the server end its connection's session after its first
// statement and then tries a second, as a restart or a failover that
// comes in the middle of a transaction does; it counts its runs in
// runs. Its effects are an audit event and the grant named id.
func endOwnSession(t *testing.T, db *DB, admin *sql.DB, id string, times int, runs *int) op {
	return func(ctx context.Context, tx querier) error {
		*runs++
		if err := db.appendAudit(&store.AuditEvent{Type: "mid", Time: time.Now(), ClientID: id})(ctx, tx); err != nil {
			return err
		}
		if *runs <= times {
			var pid int
			if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			var ended bool
			if err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ended); err != nil || !ended {
				t.Errorf("end the writer's session: %v, %v", ended, err)
			}
		}
		return insertGrant(db, id)(ctx, tx)
	}
}

// countAudit returns how many audit events name client.
func countAudit(t *testing.T, admin *sql.DB, client string) int {
	t.Helper()
	var n int
	if err := admin.QueryRowContext(t.Context(), "SELECT count(*) FROM audit_log WHERE client_id = $1", client).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPostgresSessionEndsMidTransaction: a write transaction whose
// session the server ends after its first statement, before its COMMIT
// was sent, took no effect, and runs again whole on a new connection:
// each of its operations takes effect once, and what runs after a
// commit runs once, after the one that succeeded. It runs again only
// once: a session that ends again fails it, as unavailable, with
// nothing stored.
func TestPostgresSessionEndsMidTransaction(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.NewDatabase(t)
	db := openPostgres(t, dsn)
	admin := adminDB(t, dsn)

	t.Run("alone", func(t *testing.T) {
		var runs, commits, runsAtCommit int
		err := db.wr.doThen(ctx, true, endOwnSession(t, db, admin, "alone", 1, &runs), func() {
			commits++
			runsAtCommit = runs
		})
		if err != nil {
			t.Fatalf("write whose session ended before its COMMIT: %v", err)
		}
		if runs != 2 || commits != 1 || runsAtCommit != 2 {
			t.Errorf("ran %d times, committed %d times (after run %d), want 2 runs and 1 commit after the second", runs, commits, runsAtCommit)
		}
		if n := countAudit(t, admin, "alone"); n != 1 {
			t.Errorf("%d audit events, want 1", n)
		}
		if _, err := db.GetGrant(ctx, "alone"); err != nil {
			t.Error(err)
		}
	})

	t.Run("batch", func(t *testing.T) {
		var runs int
		commits := make([]int, 3)
		batch := []*writeReq{
			req(ctx, false, insertGrant(db, "batch-before")),
			req(ctx, true, endOwnSession(t, db, admin, "batch", 1, &runs)),
			req(ctx, false, db.appendAudit(&store.AuditEvent{Type: "after", Time: time.Now(), ClientID: "batch-after"})),
		}
		for i, r := range batch {
			r.onCommit = func() { commits[i]++ }
		}
		db.wr.run(batch)
		for i, r := range batch {
			// A run of an op after the first would find the grant it
			// stored, were the first run's effects kept.
			if r.err != nil || commits[i] != 1 {
				t.Errorf("request %d: %v, committed %d times, want no error and 1", i, r.err, commits[i])
			}
		}
		if runs != 2 {
			t.Errorf("the op that ended its session ran %d times, want 2", runs)
		}
		for _, client := range []string{"batch", "batch-after"} {
			if n := countAudit(t, admin, client); n != 1 {
				t.Errorf("%d audit events of %s, want 1", n, client)
			}
		}
		for _, id := range []string{"batch-before", "batch"} {
			if _, err := db.GetGrant(ctx, id); err != nil {
				t.Errorf("grant %s: %v", id, err)
			}
		}
	})

	t.Run("twice", func(t *testing.T) {
		var runs, commits int
		err := db.wr.doThen(ctx, true, endOwnSession(t, db, admin, "twice", 2, &runs), func() { commits++ })
		if !store.Unavailable(err) {
			t.Errorf("write whose session ended twice: %v, want store.ErrUnavailable and a known outcome", err)
		}
		if runs != 2 || commits != 0 {
			t.Errorf("ran %d times, committed %d times, want 2 runs and no commit", runs, commits)
		}
		if n := countAudit(t, admin, "twice"); n != 0 {
			t.Errorf("%d audit events, want none", n)
		}
		if _, err := db.GetGrant(ctx, "twice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant: %v, want store.ErrNotFound", err)
		}
	})
}

// TestPostgresSessionEndsAtCommit: a write whose session ends at its
// commit (here a deferred trigger has the server end it, with FATAL
// 57P01 admin_shutdown, as pg_terminate_backend or a shutdown does) may
// have been stored or not, as far as the node can tell: it is not run
// again, its error says the outcome is unknown, and nothing that
// follows a commit runs. That holds for a transaction, whose COMMIT
// was sent, and for a statement alone in autocommit, whose statement
// is its commit: the answer 57P01 comes after the server received it,
// and a session may end after its commit and before its answer.
func TestPostgresSessionEndsAtCommit(t *testing.T) {
	ctx := t.Context()
	db := openPostgres(t, pgtest.NewDatabase(t))
	for _, q := range []string{
		`CREATE FUNCTION end_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM pg_terminate_backend(pg_backend_pid());
			PERFORM pg_sleep(10);
			RETURN NULL;
		END $$`,
		`CREATE CONSTRAINT TRIGGER end_at_commit AFTER INSERT ON grants
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION end_at_commit()`,
	} {
		if _, err := db.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	writes := []struct {
		name string
		do   func(ctx context.Context, fn op, onCommit func()) error
	}{
		{"transaction", func(ctx context.Context, fn op, onCommit func()) error {
			return db.wr.doThen(ctx, true, fn, onCommit)
		}},
		{"one statement in autocommit", db.wr.doOne},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var runs, commits int
			err := w.do(ctx, func(ctx context.Context, tx querier) error {
				runs++
				return insertGrant(db, "at-commit "+w.name)(ctx, tx)
			}, func() { commits++ })
			if !errors.Is(err, store.ErrOutcomeUnknown) || store.Unavailable(err) {
				t.Errorf("write whose session ended at its commit: %v, want store.ErrOutcomeUnknown", err)
			}
			if runs != 1 || commits != 0 {
				t.Errorf("ran %d times, committed %d times, want 1 run and no commit", runs, commits)
			}
		})
	}
}

// TestOpenPostgresNotOwner: a node whose user may not create the schema
// in a database it does not own is refused with the server's refusal
// and what to do: make the user the database's owner.
func TestOpenPostgresNotOwner(t *testing.T) {
	role := pgtest.NewRole(t, pgtest.NewDatabase(t))
	db, err := OpenPostgres(t.Context(), role.DSN)
	if err == nil {
		db.Close()
		t.Fatal("a user without the right to create the schema opened the store")
	}
	for _, want := range []string{"42501", `the user "` + role.Name + `" may not create the store's tables`,
		"ALTER DATABASE ", ` OWNER TO "` + role.Name + `"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("OpenPostgres: %v, want it to say %q", err, want)
		}
	}
}
