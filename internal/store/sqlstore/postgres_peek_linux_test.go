//go:build linux

package sqlstore

import (
	"net"
	"testing"
	"time"
)

// TestPostgresHeard: the peek tells a quiet connection from one the
// other end has written on or closed, and answers at once while another
// goroutine is blocked reading the same connection, as pgx's background
// reader may be when the write pool hands the connection out.
func TestPostgresHeard(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer server.Close()

	heard := func(what string, want bool) {
		t.Helper()
		got := make(chan bool, 1)
		go func() { got <- postgresHeard(c) }()
		select {
		case h := <-got:
			if h != want {
				t.Errorf("%s: heard %v, want %v", what, h, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the peek still waits after 5s", what)
		}
	}
	heard("a quiet connection", false)

	// A reader blocked on the connection holds its read lock until
	// something arrives.
	read := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = c.Read(b[:])
		close(read)
	}()
	time.Sleep(50 * time.Millisecond)
	heard("a quiet connection another goroutine is reading", false)
	if _, err := server.Write([]byte{'E'}); err != nil {
		t.Fatal(err)
	}
	<-read

	if _, err := server.Write([]byte{'E'}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !postgresHeard(c) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	heard("a byte pending", true)
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	heard("the byte read", false)
	server.Close()
	deadline = time.Now().Add(5 * time.Second)
	for !postgresHeard(c) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	heard("closed by the other end", true)
}
