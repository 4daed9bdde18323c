package sqlstore

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrWrongUser means a SQLite store was opened by a user who would
// leave files in it that its owner cannot open (checkUser).
var ErrWrongUser = errors.New("wrong user for the store")

// Who opens a store, for checkUser: the node, which creates its files,
// or a tool that works on a node's store (varde clients, keys, status,
// store, config check).
const (
	asTool = false
	asNode = true
)

// checkUser refuses to open the SQLite store at path as the user euid
// (os.Geteuid) if what that user would create there would be theirs,
// where the store's owner cannot open it (0600) and the node, run as
// that owner, would fail to start or to write: an outage caused by a
// routine command. The store's owner is the owner of its file, or, for
// a node that creates it, of the directory it goes in.
//
//   - Root may run the tools on another user's store: SQLite gives the
//     files it makes beside the database (-wal, -shm, a journal) to the
//     database's owner when it runs as root, and the tools create
//     nothing else there. Root may not run a node on it: the database
//     it would create and its lock file would be root's.
//   - Any other user may open only a store whose file is their own, for
//     the files SQLite makes would be theirs; nor one beside whose file
//     is a -wal, -shm or .lock file of another user, which they cannot
//     open. A database or such a file of root's is most likely what a
//     node or tool run as root left behind before this check: the error
//     says how to give it back.
//
// A path that is not a plain file path (sqliteDSN refuses it) and a
// system without file owners (euid -1) are not checked.
func checkUser(path string, euid int, as bool) error {
	if euid < 0 || strings.ContainsAny(path, "?#") {
		return nil
	}
	owner, at, ok := fileOwner(path)
	if !ok && as == asNode {
		// A node creates the file: it would be the node's, in a
		// directory that is someone else's.
		owner, at, ok = fileOwner(filepath.Dir(path))
	}
	if euid == 0 {
		if ok && owner != 0 && as == asNode {
			return fmt.Errorf("%w: %s belongs to the user %s, and this node runs as root: the database and lock file "+
				"it made there would be root's, which the node could not open when run as %s; "+
				"start it as that user (User=%s in its systemd unit, or sudo -u %s varde serve ...)",
				ErrWrongUser, at, userName(owner), login(owner), login(owner), login(owner))
		}
		return nil
	}
	if ok && owner != euid && owner != 0 && at == path {
		return fmt.Errorf("%w: the database %s belongs to the user %s, not to %s, who runs this command: "+
			"the files SQLite made beside it would be this user's, and a node run as the store's owner could not open them; "+
			"run the command as that user (sudo -u %s varde ...) or as root",
			ErrWrongUser, path, userName(owner), userName(euid), login(owner))
	}
	// What another user left in the store: root's, from a command run
	// as root that made it, or another user's beside this user's file.
	for _, f := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
		if o, _, ok := fileOwner(f); ok && o != euid {
			return fmt.Errorf("%w: %s belongs to the user %s, not to %s, who runs this command, "+
				"and cannot be opened by it; if the store is this user's, give the file back with the node stopped: chown %s %s",
				ErrWrongUser, f, userName(o), userName(euid), login(euid), f)
		}
	}
	return nil
}

// fileOwner returns the owner of the file at path, and path; ok is false
// if there is no such file or the system has no owners.
func fileOwner(path string) (uid int, at string, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, "", false
	}
	uid, ok = statOwner(fi)
	return uid, path, ok
}

// login names the user uid in a command (sudo -u, chown, User=): their
// name, or their number if the system does not know it.
func login(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return id
}

// userName names the user uid for a message: their name and number, or
// the number alone if the system does not know it.
func userName(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}
