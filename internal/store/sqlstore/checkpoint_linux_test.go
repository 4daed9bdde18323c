//go:build linux

package sqlstore

import (
	"bytes"
	"database/sql"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCheckpointFailureLogged: when the WAL cannot be copied back into
// the database file, because the file may not grow (here the process's
// file size limit, as a full disk would), each failed checkpoint is
// counted and the first is logged with its error, but not every one
// after it. The limit holds for the whole process, so the test runs in
// a process of its own.
func TestCheckpointFailureLogged(t *testing.T) {
	if os.Getenv("VARDE_TEST_CHECKPOINT_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointFailureLogged$", "-test.v")
		cmd.Env = append(os.Environ(), "VARDE_TEST_CHECKPOINT_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestCheckpointFailureLogged")) {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	path := filepath.Join(t.TempDir(), "ck.db")
	dsn, err := sqliteDSN(path, roleWrite)
	if err != nil {
		t.Fatal(err)
	}
	// The writer: autocheckpoint off, so the WAL keeps what it wrote
	// until the checkpointer below copies it back. It stays open, since
	// the last connection to close checkpoints.
	w, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	if _, err := w.Exec("CREATE TABLE t (v BLOB)"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A megabyte in the WAL, which the database file cannot take.
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	limit.Cur = uint64(fi.Size()) + 64<<10
	for range 16 {
		if _, err := w.Exec("INSERT INTO t (v) VALUES (randomblob(65536))"); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}

	ck, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ck.SetMaxOpenConns(1)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	c := newCheckpointer(ck, 5*time.Millisecond, func() *slog.Logger { return log })
	for deadline := time.Now().Add(10 * time.Second); c.failures.Load() < 5; {
		if time.Now().After(deadline) {
			c.close()
			t.Fatalf("%d checkpoints failed, want at least 5", c.failures.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.close(); err != nil {
		t.Error(err)
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines for %d failures, want 1 within %v:\n%s", len(lines), c.failures.Load(), checkpointFailureLogEvery, logged.String())
	}
	if !strings.Contains(lines[0], "WAL checkpoint failed") || !strings.Contains(lines[0], "err=") || !strings.Contains(lines[0], "level=ERROR") {
		t.Errorf("log line %q does not say the checkpoint failed and why", lines[0])
	}
	t.Log(lines[0])
}
