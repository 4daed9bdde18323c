package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/varde-eid/varde/internal/store"
)

// nodeUID is the unprivileged user a root test runs the node as.
const nodeUID = 65534

// TestCheckUser runs the check with the process's user given, so that it
// runs whoever runs the tests: the store's directory belongs to a user
// other than root (as root the test gives it to nodeUID), and the
// cases pretend to be root, that user, or a third.
func TestCheckUser(t *testing.T) {
	dir := t.TempDir()
	owner := os.Geteuid()
	if owner == 0 {
		owner = nodeUID
		chown(t, dir, owner)
	}
	other := owner + 1
	path := filepath.Join(dir, "varde.db")
	withDB := func(t *testing.T) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		chown(t, path, owner)
		t.Cleanup(func() { os.Remove(path) })
	}
	// A file of root's in the owner's directory, or, where the test
	// cannot make one, a link to a directory of root's.
	rootsFile := func(t *testing.T, name string) {
		if os.Geteuid() == 0 {
			if err := os.WriteFile(name, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err := os.Symlink("/", name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(name) })
	}
	withForeignShm := func(t *testing.T) {
		withDB(t)
		rootsFile(t, path+"-shm")
	}
	withRootsDB := func(t *testing.T) { rootsFile(t, path) }
	none := func(*testing.T) {}
	for _, tc := range []struct {
		name    string
		setup   func(*testing.T)
		euid    int
		as      bool
		refused string // what the error names; "" if allowed
	}{
		{"root starts a node in the owner's empty directory", none, 0, asNode, dir},
		{"root starts a node on the owner's database", withDB, 0, asNode, path},
		{"root runs a tool on the owner's database", withDB, 0, asTool, ""},
		{"the owner starts a node in their empty directory", none, owner, asNode, ""},
		{"the owner starts a node on their database", withDB, owner, asNode, ""},
		{"the owner runs a tool on their database", withDB, owner, asTool, ""},
		{"another user runs a tool on the owner's database", withDB, other, asTool, path},
		{"another user starts a node on the owner's database", withDB, other, asNode, path},
		// A directory of the group the node runs in (Kubernetes' fsGroup)
		// may be another user's: the database the node makes is its own.
		{"another user starts a node in the owner's empty directory", none, other, asNode, ""},
		{"the owner starts a node beside a -shm file not theirs", withForeignShm, owner, asNode, path + "-shm"},
		{"the owner runs a tool beside a -shm file not theirs", withForeignShm, owner, asTool, path + "-shm"},
		{"root runs a tool beside a -shm file not the owner's", withForeignShm, 0, asTool, ""},
		// What a node run as root left before the check.
		{"the owner starts a node on a database of root's", withRootsDB, owner, asNode, path},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			err := checkUser(path, tc.euid, tc.as)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWrongUser) || !strings.Contains(err.Error(), tc.refused+" belongs to") {
				t.Fatalf("got %v, want ErrWrongUser naming %s", err, tc.refused)
			}
			if want := "chown " + login(tc.euid) + " " + tc.refused; tc.euid == owner && !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want ErrWrongUser naming %s", err, tc.refused)
			}
		})
	}
	if err := checkUser(path, -1, asNode); err != nil {
		t.Errorf("without file owners (euid -1): %v", err)
	}
}

// chown gives path to uid if the test runs as root; otherwise it is the
// test's user's already, which is uid.
func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestRootOnNodeStore runs, as root, what an operator runs with sudo on
// a node's store (the tools, and by mistake the node itself), with the
// node run before and after as its own unprivileged user, in a process
// of its own (this test binary, TestNodeProcess). The node must still
// start and write afterwards, and nothing in its directory may be
// root's. It needs root to act as two users; TestCheckUser covers the
// check for any user.
func TestRootOnNodeStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the node as another user; TestCheckUser runs the check itself")
	}
	ctx := t.Context()
	base := t.TempDir()
	bin := filepath.Join(base, "sqlstore.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(base, "state") // /var/lib/varde
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	chown(t, state, nodeUID)
	path := filepath.Join(state, "varde.db")
	node := func(step string) {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^TestNodeProcess$")
		cmd.Env = append(os.Environ(), "VARDE_TEST_NODE_DB="+path, "VARDE_TEST_NODE_CLIENT="+step)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nodeUID, Gid: nodeUID}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the node, as uid %d, %s: %v\n%s", nodeUID, step, err, out)
		}
	}
	allNodes := func(step string) {
		t.Helper()
		es, err := os.ReadDir(state)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if uid, _ := statOwner(fi); uid != nodeUID {
				t.Errorf("%s: %s belongs to uid %d, not the node's user", step, e.Name(), uid)
			}
		}
	}
	// root starts a node on the store: refused, before it makes a file.
	rootStartsNode := func(step string) {
		t.Helper()
		lock, err := LockNode(path)
		_ = lock.Unlock()
		if !errors.Is(err, ErrWrongUser) {
			t.Errorf("%s: the node lock as root: got %v, want ErrWrongUser", step, err)
		}
		db, err := OpenSQLite(ctx, path)
		if err == nil {
			db.Close()
		}
		if !errors.Is(err, ErrWrongUser) {
			t.Errorf("%s: OpenSQLite as root: got %v, want ErrWrongUser", step, err)
		}
		allNodes(step)
	}

	// A node started by root on the node's directory before the node's
	// first start would make the database and lock file root's.
	rootStartsNode("root's node start in the empty directory")
	node("first-start")
	allNodes("after the node's first start")

	// The tools as root, with the node stopped: they write through
	// SQLite, which makes -wal and -shm files.
	db, err := OpenExistingSQLite(ctx, path)
	if err != nil {
		t.Fatalf("a tool as root: %v", err)
	}
	if err := db.AddClient(ctx, &store.Client{ID: "by-root", Name: "Root", RedirectURIs: []string{"https://rp.example/cb"}}, nil); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenSQLiteReadOnly(ctx, path)
	if err != nil {
		t.Fatalf("read-only as root: %v", err)
	}
	allNodes("while root's tools have the store open")
	// The node starts while a tool still has the store open, and after.
	node("while-tools-open")
	ro.Close()
	db.Close()
	allNodes("after root's tools")
	node("after-tools")

	rootStartsNode("root's node start on the node's store")
	node("last")
}

// TestNodeProcess is the node of TestRootOnNodeStore, run as another
// user: it takes the node lock, opens the store as a node does and adds
// a client. Run otherwise, it does nothing.
func TestNodeProcess(t *testing.T) {
	path := os.Getenv("VARDE_TEST_NODE_DB")
	if path == "" {
		return
	}
	lock, err := LockNode(path)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	db, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := os.Getenv("VARDE_TEST_NODE_CLIENT")
	if err := db.AddClient(t.Context(), &store.Client{ID: id, Name: id, RedirectURIs: []string{"https://rp.example/cb"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetClient(t.Context(), "by-root"); id != "first-start" && err != nil {
		t.Fatal(fmt.Errorf("the client root added: %w", err))
	}
}
