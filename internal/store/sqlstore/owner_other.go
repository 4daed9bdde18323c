//go:build !unix

package sqlstore

import "io/fs"

// statOwner reports no owner where files have no owning user id: the
// store's owner is not checked (checkUser).
func statOwner(fs.FileInfo) (int, bool) { return 0, false }
