//go:build linux

package pgtest

import "syscall"

// procAttr returns how initdb and postgres are started: as the account
// as when it is not nil, and killed if the test binary dies first (on a
// test timeout, say), so that no server outlives it. (The kernel sends
// the signal when the thread that started the child ends; Go ends a
// thread before the process only when a goroutine locked to it with
// runtime.LockOSThread returns, which tests do not do.)
func procAttr(as *account) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if as != nil {
		attr.Credential = &syscall.Credential{Uid: uint32(as.uid), Gid: uint32(as.gid)}
	}
	return attr, nil
}
