package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
)

// waitingNode is `varde serve` run in the test's process on a
// PostgreSQL store that may not take writes yet, with pauses between
// its tries to open it of a few milliseconds.
type waitingNode struct {
	issuer string
	key    *ecdsa.PrivateKey
	logs   *syncBuffer
	done   chan error
	stop   context.CancelFunc
}

// startWaitingNode starts a node on dsn with relying party "bank"
// (private_key_jwt, key "bank-1") declared in its configuration and
// synthetic enrolment on. It returns at once: the node may be waiting.
func startWaitingNode(t *testing.T, dsn string) *waitingNode {
	t.Helper()
	return startWaitingNodeWith(t, dsn, "")
}

// startWaitingNodeWith is startWaitingNode with settings of store added
// (", start_timeout: 1s").
func startWaitingNodeWith(t *testing.T, dsn, storeExtra string) *waitingNode {
	t.Helper()
	cfgPath, issuer, key := waitingConfig(t, dsn, storeExtra)
	ctx, cancel := context.WithCancel(context.Background())
	n := &waitingNode{issuer: issuer, key: key, logs: &syncBuffer{}, done: make(chan error, 1), stop: cancel}
	so := serveOptions{waitFirst: 20 * time.Millisecond, waitMax: 100 * time.Millisecond}
	go func() { n.done <- serveWith(ctx, []string{"--config", cfgPath}, n.logs, so) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			t.Errorf("the node did not stop\n%s", n.logs.String())
		}
	})
	return n
}

// waitingConfig writes the configuration of startWaitingNodeWith and
// returns its path, the node's issuer and relying party bank's key.
func waitingConfig(t *testing.T, dsn, storeExtra string) (cfgPath, issuer string, key *ecdsa.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	salt := filepath.Join(dir, "salt")
	if err := os.WriteFile(salt, []byte(strings.Repeat("s", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "bank-1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	addr, issuer := freeAddr(t)
	cfgPath = filepath.Join(dir, "varde.yaml")
	body := fmt.Sprintf("version: 1\nissuer: %s\nlisten: %s\nnode: w1\nstore: {driver: postgres, dsn: '%s'%s}\n"+
		"keys: {subject_salt_file: %s}\npasskey: {synthetic_enrolment: true}\nlog: {level: info, format: text}\n"+
		"shutdown: {drain: 0s}\nclients:\n  - id: bank\n    name: Bank\n    auth_method: private_key_jwt\n    jwks: '%s'\n"+
		"    redirect_uris: [https://bank.example/cb]\n    require_par: true\n",
		issuer, addr, dsn, storeExtra, salt, jwks)
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, issuer, key
}

// get answers path at the node: its status, its Retry-After and its
// body; status 0 if the node does not answer.
func (n *waitingNode) get(path string) (status int, retryAfter, body string) {
	res, err := http.Get(n.issuer + path)
	if err != nil {
		return 0, "", ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Retry-After"), string(b)
}

// exited returns serve's error once it returns, failing the test if
// that takes longer than within (what says when it should have).
func (n *waitingNode) exited(t *testing.T, within time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("the node still runs %v %s\n%s", within, what, n.logs.String())
		return nil
	}
}

// waiting checks that the node waits for its store, saying why in its
// log (want) and on its listener.
func (n *waitingNode) waiting(t *testing.T, want string) {
	t.Helper()
	waitFor(t, "the node to say it waits", 10*time.Second, func() bool {
		select {
		case err := <-n.done:
			n.done <- err // for the cleanup
			t.Fatalf("serve returned while its store was not there: %v\n%s", err, n.logs.String())
		default:
		}
		return strings.Count(n.logs.String(), want) >= 3
	})
	if status, _, body := n.get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while waiting: %d %q, want 200", status, body)
	}
	if status, _, body := n.get("/readyz"); status != http.StatusServiceUnavailable || body != "waiting for the database\n" {
		t.Errorf("/readyz while waiting: %d %q, want 503 saying it waits for the database", status, body)
	}
	if status, retry, body := n.get("/.well-known/openid-configuration"); status != http.StatusServiceUnavailable || retry == "" ||
		!strings.Contains(body, `"error":"temporarily_unavailable"`) {
		t.Errorf("discovery while waiting: %d, Retry-After %q, %s; want 503 temporarily_unavailable with Retry-After", status, retry, body)
	}
	if status, retry, body := n.get("/account?lang=en"); status != http.StatusServiceUnavailable || retry == "" ||
		!strings.Contains(body, "We cannot reach our records right now") {
		t.Errorf("a page while waiting: %d, Retry-After %q, %s; want 503 with Retry-After and the page saying so", status, retry, body)
	}
	if strings.Contains(n.logs.String(), "level=ERROR") {
		t.Errorf("the node logged an error while waiting:\n%s", n.logs.String())
	}
}

// serves checks that the node, its store back, becomes ready and logs a
// person in.
func (n *waitingNode) serves(t *testing.T) {
	t.Helper()
	waitFor(t, "the node to be ready", 20*time.Second, func() bool {
		status, _, _ := n.get("/readyz")
		return status == http.StatusOK
	})
	_, rp, person := bankWithPerson(t, n.issuer, n.key)
	if _, err := rp.Login(context.Background(), person, loadgen.LoginOptions{}); err != nil {
		t.Fatalf("login once the store is back: %v\n%s", err, n.logs.String())
	}
}

// TestServeWaitsForStandbyToBePromoted: a node started on a standby (a
// failover under way, its address still pointing there) waits, saying
// so, and serves logins once the standby is promoted.
func TestServeWaitsForStandbyToBePromoted(t *testing.T) {
	srv := pgtest.NewServer(t)
	standby := srv.NewStandby()
	srv.Stop() // the old primary is gone
	n := startWaitingNode(t, standby.DSN())
	n.waiting(t, "is read-only (a standby, or set read-only): waiting for a primary")
	standby.Promote()
	n.serves(t)
}

// TestServeWaitsForStoppedServer: a node started while its server is
// down waits, saying so, and serves logins once it is up.
func TestServeWaitsForStoppedServer(t *testing.T) {
	srv := pgtest.NewServer(t)
	srv.Stop()
	n := startWaitingNode(t, srv.DSN())
	n.waiting(t, "cannot be reached or cannot serve yet: waiting for it")
	srv.Start()
	n.serves(t)
}

// TestServeStopsWhileWaiting: a node told to stop while it waits for
// its store stops at once, as a normal stop (no error).
func TestServeStopsWhileWaiting(t *testing.T) {
	srv := pgtest.NewServer(t)
	srv.Stop()
	n := startWaitingNode(t, srv.DSN())
	n.waiting(t, "waiting for it")
	n.stop()
	// A node that did not stop waits for ever (no start_timeout): the
	// bound is room for a busy machine, not the point.
	if err := n.exited(t, stopWait, "after being told to stop"); err != nil {
		t.Errorf("serve stopped while waiting: %v, want no error", err)
	}
}

// stopWait is how long a node told to stop while it waits for its
// store may take to exit, on a machine busy running every test: one
// that did not stop waits for ever, since these nodes have no
// start_timeout.
const stopWait = 10 * time.Second

// TestServeSIGTERMWhileWaiting: `varde serve` sent SIGTERM while it
// waits for its database exits at once with status 0, a normal stop.
func TestServeSIGTERMWhileWaiting(t *testing.T) {
	srv := pgtest.NewServer(t)
	srv.Stop()
	cfgPath, _, _ := waitingConfig(t, srv.DSN(), "")
	p := startServeProcess(t, cfgPath)
	waitFor(t, "the node to say it waits", 10*time.Second, func() bool { return strings.Contains(p.logs.String(), "waiting for it") })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("varde serve sent SIGTERM while waiting: %v, want exit status 0\n%s", p.err, p.logs.String())
		}
	case <-time.After(stopWait):
		t.Fatalf("varde serve still runs %v after SIGTERM while waiting\n%s", stopWait, p.logs.String())
	}
}

// TestServeStartTimeout: a node with store.start_timeout gives up
// waiting after it, naming the setting, and exits with status 1, for
// its supervisor to start it again.
func TestServeStartTimeout(t *testing.T) {
	srv := pgtest.NewServer(t)
	srv.Stop()
	start := time.Now()
	n := startWaitingNodeWith(t, srv.DSN(), ", start_timeout: 300ms")
	err := n.exited(t, 10*time.Second, "into its start_timeout of 300ms")
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the node gave up after %v, before its start_timeout of 300ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "store.start_timeout") || exitStatus(err, io.Discard) != 1 {
		t.Errorf("serve: %v, want a failure (exit status 1) naming store.start_timeout", err)
	}
}

// TestServeWrongPasswordExitsAtOnce: a wrong password is no failover:
// the node exits at once (status 1), naming the server, not the
// password, and does not wait.
func TestServeWrongPasswordExitsAtOnce(t *testing.T) {
	srv := pgtest.NewServer(t)
	dsn := strings.Replace(srv.PasswordRole("varde", "right-6b1c"), "right-6b1c", "wrong-6b1c", 1)
	n := startWaitingNode(t, dsn)
	err := n.exited(t, 10*time.Second, "after its server refused its password")
	if err == nil || !strings.Contains(err.Error(), "28P01") {
		t.Fatalf("serve: %v, want the server's refusal of the password (28P01)", err)
	}
	if code := exitStatus(err, io.Discard); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if all := err.Error() + n.logs.String(); strings.Contains(all, "wrong-6b1c") || strings.Contains(all, "waiting") {
		t.Errorf("the node waited, or showed the password:\n%v\n%s", err, n.logs.String())
	}
	if errors.Is(err, context.Canceled) {
		t.Error("the node was stopped, not refused")
	}
}

// TestServeWaitsThroughSilentServer: a node whose database address
// takes connections and never answers (a proxy whose back end hangs, a
// firewall in between) gives each try up after the DSN's
// connect_timeout, saying so in its log each time, rather than hanging
// on the first; once a server answers there, it serves logins.
func TestServeWaitsThroughSilentServer(t *testing.T) {
	srv := pgtest.NewServer(t)
	u, err := url.Parse(srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	gate := newSilentGate(t, u.Host)
	u.Host = gate.addr
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	start := time.Now()
	n := startWaitingNode(t, u.String())
	n.waiting(t, "cannot be reached or cannot serve yet: waiting for it")
	// Three tries, each given up after 1s, with pauses of at most 100ms.
	if took := time.Since(start); took > 3*(time.Second+100*time.Millisecond)+5*time.Second {
		t.Errorf("three tries took %v, want each given up after connect_timeout=1 (1s)", took)
	}
	if !strings.Contains(n.logs.String(), "timeout") {
		t.Errorf("the node's log does not say its tries timed out:\n%s", n.logs.String())
	}
	gate.open()
	n.serves(t)
}

// silentGate listens on loopback in front of a PostgreSQL server:
// until open, it takes each connection and never answers; after, it
// passes each new one on to the server.
type silentGate struct {
	addr    string
	backend string
	opened  atomic.Bool
}

// newSilentGate starts a closed silentGate in front of backend, until
// the test ends.
func newSilentGate(t *testing.T, backend string) *silentGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	g := &silentGate{addr: ln.Addr().String(), backend: backend}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	return g
}

// open lets the connections that come from now on through.
func (g *silentGate) open() { g.opened.Store(true) }

// serve reads c without answering until its client gives up, or, the
// gate open, copies between it and the server both ways.
func (g *silentGate) serve(c net.Conn) {
	defer c.Close()
	if !g.opened.Load() {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	b, err := net.Dial("tcp", g.backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		_, _ = io.Copy(b, c)
		_ = b.(*net.TCPConn).CloseWrite()
	}()
	_, _ = io.Copy(c, b)
}
