//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadSecretFileNamedPipe: a secret file that is a named pipe is
// refused as not a regular file at once, rather than waiting for a
// writer that never comes.
func TestReadSecretFileNamedPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "salt")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadSecretFile("keys.subject_salt_file", fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if want := "keys.subject_salt_file: " + fifo + " is not a regular file"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadSecretFile: %v, want %q", err, want)
		}
	case <-time.After(5 * time.Second):
		// Let the read that waits end, so the test does not leak it.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		t.Fatal("ReadSecretFile still waits on the named pipe after 5 s")
	}
}

// TestReadSecretFileDirectory: a directory named as a secret file is
// refused, naming the setting.
func TestReadSecretFileDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadSecretFile("keys.signing_key_file", dir); err == nil || !strings.Contains(err.Error(), "keys.signing_key_file: "+dir+" is not a regular file") {
		t.Errorf("ReadSecretFile: %v", err)
	}
}
