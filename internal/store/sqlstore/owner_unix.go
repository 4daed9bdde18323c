//go:build unix

package sqlstore

import (
	"io/fs"
	"syscall"
)

// statOwner returns the owner of the file fi describes.
func statOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
