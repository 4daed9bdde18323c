//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
)

// procAttr returns how initdb and postgres are started. Only on Linux
// can they run as another account.
func procAttr(as *account) (*syscall.SysProcAttr, error) {
	if as != nil {
		return nil, errors.New("PostgreSQL refuses to run as root; run the tests as another user")
	}
	return nil, nil
}
