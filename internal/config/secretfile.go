package config

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// maxSecretFileSize bounds a file that holds a key or a secret.
const maxSecretFileSize = 64 << 10

// secretFileOpenModes are the permission bits a key or secret file must
// not have: any access by other users, or writing by its group. Owner
// only (600, 400) is right; 640 or 440 lets a group of the node's own,
// as with a file owned by root and readable by the node's group.
const secretFileOpenModes fs.FileMode = 0o027

// ReadSecretFile reads the key or secret file at path, which the setting
// field names (e.g. "keys.signing_key_file"). A file that other users
// can read or write, or that its group can write, is refused, naming the
// field, the file and its mode: a signing key, subject salt or client
// secret that others on the host can read is no longer a secret, and one
// they can write lets them choose it. Like OpenSSH and PostgreSQL with
// their keys, the node does not start with one rather than warn. (On
// Windows, where modes do not say who may read, the mode is not checked.)
// A path that is not a regular file (a directory, a named pipe, a
// device) is refused without being read.
func ReadSecretFile(field, path string) ([]byte, error) {
	// Opening a named pipe waits for a writer, and a device may never
	// end: such a path is refused before it is opened, so that a node,
	// or varde config check, does not hang on it. (The mode is checked
	// again on what was opened.)
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", field, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", field, path)
	}
	if err := secretMode(field, path, f); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", field, path, err)
	}
	if len(b) > maxSecretFileSize {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", field, path, maxSecretFileSize)
	}
	return b, nil
}

// secretMode refuses the open file f at path, which setting field holds
// or names, if other users can read or write it or its group can write
// it (secretFileOpenModes); not on Windows, where modes do not say who
// may read.
func secretMode(field, path string, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if m := fi.Mode().Perm(); m&secretFileOpenModes != 0 && runtime.GOOS != "windows" {
		who := "other users can read or write it"
		if m&0o007 == 0 {
			who = "its group can write it"
		}
		return fmt.Errorf("%s: %s has mode %04o: %s, so it is no longer a secret; "+
			"make it readable by the node's user only (chmod 600 %s) or by a group of its own too (chmod 640)", field, path, m, who, path)
	}
	return nil
}
