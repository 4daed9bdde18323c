package sqlstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ErrLocked means another node holds the database's node lock.
var ErrLocked = errors.New("database in use by another node")

// NodeLock is a node's hold on a SQLite database (LockNode).
type NodeLock struct {
	f    *os.File
	once sync.Once
	err  error
}

// LockNode takes the node lock of the SQLite database at path: one node
// writes a SQLite file (ADR 5), and keeps login flow state and its
// replay cache in its own memory (ADR 7), so a second node on the same
// file would split logins between two memories and double their
// single-use checks. The lock is an exclusive lock on the file
// path+".lock", taken without waiting: if another process holds it,
// LockNode fails at once with an error wrapping ErrLocked that names
// that process. The operating system releases it when the process
// ends, however it ends; Unlock releases it before. The lock file
// itself stays. Tools that only read and write through SQLite's own
// locking (varde clients, varde status) do not take it.
//
// Run as root, LockNode refuses a store that belongs to another user,
// whose node could not open a lock file root made (checkUser), before
// it creates anything.
//
// Where the operating system has no flock (see lock_other.go), LockNode
// takes nothing and always succeeds.
func LockNode(path string) (*NodeLock, error) {
	if err := checkUser(path, os.Geteuid(), asNode); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node lock: %w", err)
	}
	held, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("node lock %s: %w", name, err)
	}
	if !held {
		holder, _ := os.ReadFile(name)
		f.Close()
		who := "another process"
		if pid := strings.TrimSpace(string(holder)); pid != "" {
			who = "process " + pid
		}
		return nil, fmt.Errorf("%w: %s holds %s; one node writes a SQLite database: stop the other node, "+
			"or give this one a store.dsn of its own", ErrLocked, who, name)
	}
	// Who holds it, for the message above; the lock does not depend on it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &NodeLock{f: f}, nil
}

// Unlock releases the lock; later calls, and calls on nil, do nothing.
func (l *NodeLock) Unlock() error {
	if l == nil {
		return nil // no lock taken (a shared database)
	}
	l.once.Do(func() {
		if l.f != nil {
			l.err = l.f.Close() // closing the file releases the lock
		}
	})
	return l.err
}
