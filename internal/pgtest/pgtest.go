package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bounds on everything the harness waits for, so that no test hangs on
// PostgreSQL.
const (
	initdbTimeout = 2 * time.Minute
	readyTimeout  = 30 * time.Second
	stopTimeout   = 15 * time.Second
	queryTimeout  = 30 * time.Second
	portAttempts  = 5
	tailLines     = 25
)

// superuser is the role initdb creates and every DSN connects as.
const superuser = "postgres"

// The test binary's one server: started by the first NewDatabase,
// stopped by Main.
var (
	mainRunning atomic.Bool
	startOnce   sync.Once
	shared      *server
	startErr    error
	databases   atomic.Int64
)

// Main runs the tests of m, then stops the server if a test started one
// and removes its directory. A package whose tests call NewDatabase runs
// them through it:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// A server that does not stop cleanly makes the run fail.
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)
	// Waits for a start still under way, and keeps any later call from
	// starting a server nobody would stop.
	startOnce.Do(func() { startErr = errors.New("the tests have ended") })
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			code = max(code, 1)
		}
	}
	return code
}

// NewDatabase creates a new, empty database on the test binary's server,
// starting the server on first use, and returns its DSN for pgx:
// postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable, where the
// postgres role is a superuser. The database is dropped when the test
// ends, even with connections still open to it.
//
// NewDatabase fails the test when PostgreSQL is missing or cannot start
// (and every later call fails with the same error), and when the
// package's tests do not run through Main.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatal("pgtest: NewDatabase needs the package's TestMain to run the tests with os.Exit(pgtest.Main(m))")
	}
	startOnce.Do(func() { shared, startErr = start() })
	if startErr != nil {
		tb.Fatalf("pgtest: %v", startErr)
	}
	s := shared
	name := fmt.Sprintf("test_%d", databases.Add(1))
	if err := s.exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		err := s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		if err != nil && !s.exited() {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// server is a running postmaster, a child process of the test binary.
type server struct {
	dir     string // temporary: the cluster (data/), the socket and the logs
	data    string
	port    int
	log     string
	proc    *os.Process
	done    chan struct{} // closed when the process has exited
	waitErr error         // how it exited, once done is closed
}

func (s *server) dsn(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, database)
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// exec runs one statement in the maintenance database, postgres.
func (s *server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// start finds PostgreSQL, makes a new cluster in a new temporary
// directory and runs a server on it until it accepts connections.
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	as, err := runAs()
	if err != nil {
		return nil, err
	}
	attr, err := procAttr(as)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s, err := startIn(dir, bin, as, attr)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

func startIn(dir, bin string, as *account, attr *syscall.SysProcAttr) (*server, error) {
	if as != nil {
		if err := reachable(dir, as); err != nil {
			return nil, err
		}
		// initdb creates the cluster here and postgres its socket.
		if err := os.Chown(dir, as.uid, as.gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if err := initdb(bin, dir, data, attr); err != nil {
		return nil, err
	}
	return runOnFreePort(bin, dir, data, attr)
}

// runOnFreePort runs postgres on the cluster data on a port free on
// 127.0.0.1, another if a process took that one first.
func runOnFreePort(bin, dir, data string, attr *syscall.SysProcAttr) (*server, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := run(bin, dir, data, port, attr)
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return s, err
		}
	}
}

func initdb(bin, dir, data string, attr *syscall.SysProcAttr) error {
	// --no-sync: a throwaway cluster need not reach the disk.
	return runTool(bin, "initdb", dir, attr, "-D", data, "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
}

// runTool runs PostgreSQL's program name from bin in dir, started as
// attr says, within initdbTimeout; its failure quotes the end of what it
// printed.
func runTool(bin, name, dir string, attr *syscall.SysProcAttr, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), initdbTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Dir = dir
	cmd.SysProcAttr = attr
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, tail(out))
	}
	return nil
}

// errPortTaken is run's error when another process took the port first.
var errPortTaken = errors.New("port taken")

// run starts postgres on the cluster data, listening on 127.0.0.1:port,
// and waits until it accepts connections.
func run(bin, dir, data string, port int, attr *syscall.SysProcAttr) (*server, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("postgres-%d.log", port))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// Settings for a throwaway test server only: no durability (fsync,
	// synchronous commit and full-page writes off), room for many test
	// connections, little shared memory. Never use them for real data.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = attr
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &server{dir: dir, data: data, port: port, log: logPath, proc: cmd.Process, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.ready(); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// ready waits, readyTimeout at most, until the server accepts
// connections. If the server exits first it says why, with the end of
// the server's log.
func (s *server) ready() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			log := s.logTail()
			if strings.Contains(log, "could not bind") {
				return fmt.Errorf("%w: %d", errPortTaken, s.port)
			}
			return fmt.Errorf("postgres exited (%v) before accepting connections; its log ends:\n%s", s.waitErr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %v (%v); its log ends:\n%s", readyTimeout, err, s.logTail())
		}
	}
}

// ping connects once and checks that the server answering is this one,
// not another that took the port.
func (s *server) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var data string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&data); err != nil {
		return err
	}
	if data != s.data {
		return fmt.Errorf("port %d answered by the server of %s", s.port, data)
	}
	return nil
}

// stop shuts the server down (SIGINT: fast shutdown, which ends every
// session), kills it if it has not stopped within stopTimeout, and
// removes its directory.
func (s *server) stop() error {
	var err error
	if s.proc.Signal(os.Interrupt) == nil {
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			err = fmt.Errorf("postgres did not stop within %v of SIGINT; killed", stopTimeout)
		}
	}
	s.kill()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// kill ends the server at once and waits, boundedly, for it to go.
func (s *server) kill() {
	_ = s.proc.Kill()
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
	}
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b)
}

// tail returns the last tailLines lines of out.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-tailLines):], "\n")
}

// freePort returns a port free on 127.0.0.1 at this moment. Another
// process may take it before postgres binds it: run then returns
// errPortTaken and startIn tries another.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// binDir returns the directory of PostgreSQL's server programs, initdb
// and postgres: pg_config --bindir when pg_config is on PATH and that
// directory has them, else the newest /usr/lib/postgresql/VERSION/bin
// (where Debian puts them), else the directory of initdb on PATH.
func binDir() (string, error) {
	var dirs []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(debian, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	dirs = append(dirs, debian...)
	if path, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(path))
	}
	for _, dir := range dirs {
		if isProgram(filepath.Join(dir, "initdb")) && isProgram(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL's initdb and postgres not found with pg_config --bindir, " +
		"in /usr/lib/postgresql/*/bin or on PATH; install PostgreSQL with scripts/ensure-postgres.sh")
}

// version returns the version that names a Debian directory
// /usr/lib/postgresql/VERSION/bin (15, 9.6), or 0.
func version(bin string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
	return v
}

func isProgram(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// account is a system user to run PostgreSQL as.
type account struct {
	name     string
	uid, gid int
}

// runAs returns the account to run initdb and postgres as: nil, the test
// binary's own user, unless that is root, which both refuse; then the
// postgres user that Debian's package creates.
func runAs() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no postgres user to run it as (%w); "+
			"install PostgreSQL with scripts/ensure-postgres.sh, or run the tests as another user", err)
	}
	uid, uidErr := strconv.Atoi(u.Uid)
	gid, gidErr := strconv.Atoi(u.Gid)
	if err := errors.Join(uidErr, gidErr); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &account{name: u.Username, uid: uid, gid: gid}, nil
}

// reachable checks that the account as can reach dir: every directory
// above it must let others search it.
func reachable(dir string, as *account) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("user %s cannot reach %s, as %s is closed to other users; "+
				"set TMPDIR to a directory it can reach, such as /tmp", as.name, dir, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// Server is a PostgreSQL server of one test's own, apart from the test
// binary's shared one, which the test may stop and start again to see
// how its code meets a store that cannot be reached. It is stopped and
// its directory removed when the test ends.
type Server struct {
	tb   testing.TB
	bin  string
	attr *syscall.SysProcAttr
	dir  string
	port int
	s    *server // nil while stopped
}

// NewServer starts a new server with a new cluster and returns it
// running; its database postgres is empty.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	as, err := runAs()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	attr, err := procAttr(as)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	s, err := startIn(dir, bin, as, attr)
	if err != nil {
		tb.Fatalf("pgtest: %v", errors.Join(err, os.RemoveAll(dir)))
	}
	srv := &Server{tb: tb, bin: bin, attr: attr, dir: dir, port: s.port, s: s}
	srv.removeWhenDone()
	return srv
}

// removeWhenDone has srv stopped, if it runs, and its directory removed
// when its test ends.
func (srv *Server) removeWhenDone() {
	srv.tb.Cleanup(func() {
		if srv.s != nil {
			if err := srv.s.stop(); err != nil {
				srv.tb.Errorf("pgtest: %v", err)
			}
			return
		}
		if err := os.RemoveAll(srv.dir); err != nil {
			srv.tb.Errorf("pgtest: %v", err)
		}
	})
}

// DSN is the server's database postgres, as NewDatabase's DSNs are.
func (srv *Server) DSN() string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, srv.port)
}

// Stop shuts the server down (fast shutdown: every session ends) and
// keeps its cluster, so that Start serves the same data again.
func (srv *Server) Stop() {
	srv.tb.Helper()
	srv.end(os.Interrupt, "SIGINT")
}

// Crash ends the server as an immediate shutdown does (SIGQUIT to the
// postmaster, what `pg_ctl stop -m immediate` sends): every server
// process exits at once, without a checkpoint, and keeps its cluster,
// so that Start recovers it from its WAL, as after a crash. A commit
// is in that WAL only if its session committed synchronously: the
// server runs with synchronous_commit off, so a test that needs its
// commits to outlive a Crash sets it on for its sessions (in its DSN,
// synchronous_commit=on).
func (srv *Server) Crash() {
	srv.tb.Helper()
	srv.end(syscall.SIGQUIT, "SIGQUIT")
}

// end sends the running server sig and waits for it to exit, failing
// the test if it has not within stopTimeout.
func (srv *Server) end(sig os.Signal, name string) {
	srv.tb.Helper()
	if srv.s == nil {
		return
	}
	s := srv.s
	srv.s = nil
	if s.proc.Signal(sig) == nil {
		select {
		case <-s.done:
			return
		case <-time.After(stopTimeout):
		}
	}
	s.kill()
	srv.tb.Fatalf("pgtest: postgres did not stop within %v of %s; killed", stopTimeout, name)
}

// Log is the running server's log since it last started ("" while it
// is stopped): what it says of its start, a recovery among it.
func (srv *Server) Log() string {
	srv.tb.Helper()
	if srv.s == nil {
		return ""
	}
	b, err := os.ReadFile(srv.s.log)
	if err != nil {
		srv.tb.Fatalf("pgtest: %v", err)
	}
	return string(b)
}

// Start runs the stopped server again on the same port and cluster and
// waits until it accepts connections.
func (srv *Server) Start() {
	srv.tb.Helper()
	if srv.s != nil {
		return
	}
	s, err := run(srv.bin, srv.dir, filepath.Join(srv.dir, "data"), srv.port, srv.attr)
	if err != nil {
		srv.tb.Fatalf("pgtest: start again: %v", err)
	}
	srv.s = s
}

// NewStandby makes a hot standby of srv, which must be running: a copy
// of its cluster taken with pg_basebackup, streaming its WAL from it
// (primary_conninfo, standby.signal), served on a port of its own. It
// takes reads and refuses writes, as a standby behind a proxy does
// before a failover moves the proxy on, until Promote. It is stopped and
// its directory removed when the test ends.
func (srv *Server) NewStandby() *Server {
	srv.tb.Helper()
	tb := srv.tb
	if srv.s == nil {
		tb.Fatal("pgtest: a standby of a stopped server")
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	st := &Server{tb: tb, bin: srv.bin, attr: srv.attr, dir: dir}
	st.removeWhenDone()
	if srv.attr.Credential != nil {
		if err := os.Chown(dir, int(srv.attr.Credential.Uid), int(srv.attr.Credential.Gid)); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	if err := basebackup(srv.bin, dir, data, srv.port, srv.attr); err != nil {
		tb.Fatalf("pgtest: standby: %v", err)
	}
	s, err := runOnFreePort(srv.bin, dir, data, srv.attr)
	if err != nil {
		tb.Fatalf("pgtest: standby: %v", err)
	}
	st.s, st.port = s, s.port
	return st
}

// basebackup copies the cluster of the server on 127.0.0.1:port into
// data, WAL included, and writes what makes it start as its standby
// (-R).
func basebackup(bin, dir, data string, port int, attr *syscall.SysProcAttr) error {
	return runTool(bin, "pg_basebackup", dir, attr, "-D", data, "-R",
		"-X", "stream", "--no-sync", "--checkpoint=fast",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s", port, superuser))
}

// Promote makes a standby (NewStandby) a primary that takes writes, as a
// failover does, and waits until it does.
func (srv *Server) Promote() {
	srv.tb.Helper()
	if srv.s == nil {
		srv.tb.Fatal("pgtest: promote a stopped server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.s.dsn("postgres"))
	if err != nil {
		srv.tb.Fatalf("pgtest: promote: %v", err)
	}
	defer conn.Close(ctx)
	// pg_promote waits (up to its second argument, in seconds) until
	// recovery has ended.
	var promoted bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, $1)", int(readyTimeout/time.Second)).Scan(&promoted); err != nil || !promoted {
		srv.tb.Fatalf("pgtest: promote: %v (promoted: %v)", err, promoted)
	}
}

// PasswordRole creates a role name with password on srv, which must be
// running, and has the server ask every role but the superuser for its
// password over TCP (scram-sha-256), as a production server does. It
// returns the DSN of name with password, for a test to change.
func (srv *Server) PasswordRole(name, password string) string {
	srv.tb.Helper()
	if srv.s == nil {
		srv.tb.Fatal("pgtest: a role on a stopped server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.s.dsn("postgres"))
	if err != nil {
		srv.tb.Fatalf("pgtest: password role: %v", err)
	}
	defer conn.Close(ctx)
	create := "CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN SUPERUSER PASSWORD " + quoteLiteral(password)
	if _, err := conn.Exec(ctx, create); err != nil {
		srv.tb.Fatalf("pgtest: password role: %v", err)
	}
	// Overwritten in place, so that the file keeps the owner the server
	// runs as.
	hba := "local all all trust\nhost all " + superuser + " 127.0.0.1/32 trust\nhost replication " + superuser + " 127.0.0.1/32 trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(srv.dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		srv.tb.Fatalf("pgtest: password role: %v", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		srv.tb.Fatalf("pgtest: password role: %v", err)
	}
	dsn := func(password string) string {
		return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/postgres?sslmode=disable", name, password, srv.port)
	}
	// The server reloads its configuration after pg_reload_conf returns:
	// wait until it refuses a wrong password.
	for {
		c, err := pgx.Connect(ctx, dsn(password+"-wrong"))
		if err != nil && ctx.Err() == nil {
			break
		}
		if c != nil {
			_ = c.Close(ctx)
		}
		if ctx.Err() != nil {
			srv.tb.Fatalf("pgtest: password role: the server still takes any password after %v", readyTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return dsn(password)
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Dump runs pg_dump of the server's version on the database of dsn (a
// URL, as NewDatabase gives) in format (pg_dump's -F: c, d, t or p)
// and returns the path of what it wrote, in a directory of tb's own: a
// backup as an operator makes one with the server's tools.
func Dump(tb testing.TB, dsn, format string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "varde.dump")
	runClient(tb, "pg_dump", "-F", format, "-f", out, "-d", dsn)
	return out
}

// Restore runs pg_restore of the server's version of the dump at path
// (Dump's, in format c, d or t) into the database of dsn, as its owner.
func Restore(tb testing.TB, path, dsn string) {
	tb.Helper()
	runClient(tb, "pg_restore", "--no-owner", "--exit-on-error", "-d", dsn, path)
}

// runClient runs the client program name of the server's version with
// args as the test binary's user, failing tb with its output if it
// fails.
func runClient(tb testing.TB, name string, args ...string) {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if msg, err := exec.CommandContext(ctx, filepath.Join(bin, name), args...).CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: %s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
}
