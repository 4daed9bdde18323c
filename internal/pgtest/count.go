package pgtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Counter is a TCP proxy on loopback in front of a test server that
// reads what clients send through it (PostgreSQL's frontend protocol,
// version 3) and counts round trips, statements and transactions, so
// that a test can say what an operation costs in messages to the server
// whatever the driver does to send them.
//
//   - A round trip is a message after which the client waits for the
//     server's ReadyForQuery: a Sync (the end of an extended-protocol
//     exchange, or of a pipeline of several) or a simple Query.
//   - A statement is an Execute, or a statement of a simple Query (its
//     text split at semicolons; the store writes none inside literals).
//   - A transaction is a BEGIN, in a simple Query or prepared.
//
// A driver's health check (pgx's "-- ping", an empty query) is left out
// of every count: it is the pool's, not the operation's, and its timing
// depends on the machine's speed. So are the statements Ignore names,
// such as those of a client's rounds in the background.
type Counter struct {
	ln net.Listener
	// DSN is the DSN given to NewCounter with its host and port
	// replaced by the proxy's.
	DSN string

	mu     sync.Mutex
	counts Counts
	ignore []string
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// Counts is what a Counter counted since its last Reset.
type Counts struct {
	RoundTrips, Statements, Transactions int
	// Sent lists each statement's text in the order sent, one line per
	// round trip, its statements joined by " ⏎ ".
	Sent []string
}

// NewCounter starts a counting proxy to the server of dsn (a URL, as
// NewDatabase gives), closed when the test ends.
func NewCounter(tb testing.TB, dsn string) *Counter {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("pgtest: counter: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgtest: counter: %v", err)
	}
	target := u.Host
	u.Host = ln.Addr().String()
	c := &Counter{ln: ln, DSN: u.String(), conns: map[net.Conn]struct{}{}}
	c.wg.Add(1)
	go c.accept(target)
	tb.Cleanup(c.close)
	return c
}

// Reset sets every count to zero.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = Counts{}
}

// Ignore leaves out of the counts every round trip whose statements all
// hold text, and a transaction's BEGIN and COMMIT with them when that
// is all it did: what a statement sent in the background costs, and no
// more, whether it ran alone or in a transaction with others.
func (c *Counter) Ignore(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ignore = append(c.ignore, text)
}

// Counts returns what was counted since the last Reset.
func (c *Counter) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	out.Sent = append([]string(nil), c.counts.Sent...)
	return out
}

func (c *Counter) close() {
	c.ln.Close()
	c.mu.Lock()
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Counter) accept(target string) {
	defer c.wg.Done()
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", target)
		if err != nil {
			client.Close()
			continue
		}
		c.mu.Lock()
		c.conns[client], c.conns[server] = struct{}{}, struct{}{}
		c.mu.Unlock()
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			_, _ = io.Copy(client, server)
			client.Close()
		}()
		go func() {
			defer c.wg.Done()
			_ = c.relay(server, client)
			server.Close()
		}()
	}
}

// relay copies the client's messages to the server, counting them.
func (c *Counter) relay(server io.Writer, client io.Reader) error {
	r := bufio.NewReader(client)
	// The startup message has no type byte: a length, then the body.
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n < 8 || n > 1<<20 {
		return fmt.Errorf("pgtest: counter: startup message of %d bytes", n)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return err
	}
	if _, err := server.Write(append(head[:], body...)); err != nil {
		return err
	}
	var (
		prepared = map[string]string{} // statement name → text
		portals  = map[string]string{} // portal name → text
		trip     []string              // statements since the last round trip
		tx       txTrips
	)
	for {
		var h [5]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := binary.BigEndian.Uint32(h[1:])
		if n < 4 {
			return fmt.Errorf("pgtest: counter: message %q of length %d", h[0], n)
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch h[0] {
		case 'P': // Parse: name, text, …
			name, rest := cstring(body)
			text, _ := cstring(rest)
			prepared[name] = text
		case 'B': // Bind: portal, statement, …
			portal, rest := cstring(body)
			stmt, _ := cstring(rest)
			portals[portal] = prepared[stmt]
		case 'E': // Execute: portal, …
			portal, _ := cstring(body)
			trip = append(trip, portals[portal])
		case 'S': // Sync
			c.roundTrip(&tx, trip)
			trip = trip[:0]
		case 'Q': // Query: text
			text, _ := cstring(body)
			if strings.TrimSpace(text) != "-- ping" {
				c.roundTrip(&tx, append(trip, splitStatements(text)...))
			}
			trip = trip[:0]
		}
		if _, err := server.Write(append(h[:], body...)); err != nil {
			return err
		}
	}
}

// txTrips are the round trips of a connection's transaction in
// progress.
type txTrips struct {
	open  bool
	trips [][]string
}

// roundTrip takes one round trip of a connection that ran stmts. Those
// of a transaction are counted at its end, so that the transaction's
// BEGIN and COMMIT can be left out with what Ignore names.
func (c *Counter) roundTrip(tx *txTrips, stmts []string) {
	stmts = append([]string(nil), stmts...)
	first, last := "", ""
	if len(stmts) > 0 {
		first, last = strings.ToLower(firstWord(stmts[0])), strings.ToLower(firstWord(stmts[len(stmts)-1]))
	}
	if !tx.open && first != "begin" {
		c.count([][]string{stmts})
		return
	}
	tx.open = true
	tx.trips = append(tx.trips, stmts)
	if last == "commit" || last == "rollback" || last == "end" {
		c.count(tx.trips)
		tx.open, tx.trips = false, nil
	}
}

// count counts trips, a transaction's round trips or a lone one, but
// those Ignore names.
func (c *Counter) count(trips [][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var kept [][]string
	for _, t := range trips {
		if !c.ignored(t) {
			kept = append(kept, t)
		}
	}
	if len(kept) < len(trips) && len(kept) <= 2 && len(trips) > 2 {
		// What is left is the BEGIN and the COMMIT of a transaction
		// that did nothing else.
		kept = nil
	}
	for _, t := range kept {
		c.trip(t)
	}
}

// ignored reports whether every statement of a round trip holds a text
// Ignore named.
func (c *Counter) ignored(stmts []string) bool {
	if len(stmts) == 0 || len(c.ignore) == 0 {
		return false
	}
	for _, s := range stmts {
		if !slices.ContainsFunc(c.ignore, func(text string) bool { return strings.Contains(s, text) }) {
			return false
		}
	}
	return true
}

// trip counts one round trip that ran stmts; one that ran none (a
// Sync after a Parse, a statement prepared) counts as a round trip
// only. c.mu is held.
func (c *Counter) trip(stmts []string) {
	c.counts.RoundTrips++
	c.counts.Statements += len(stmts)
	for _, s := range stmts {
		if strings.EqualFold(firstWord(s), "begin") {
			c.counts.Transactions++
		}
	}
	line := strings.Join(stmts, " ⏎ ")
	if len(stmts) == 0 {
		line = "(prepare)"
	}
	c.counts.Sent = append(c.counts.Sent, line)
}

// cstring splits b at its first NUL.
func cstring(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

// splitStatements splits a simple Query's text into its statements.
func splitStatements(text string) []string {
	var out []string
	for _, s := range strings.Split(text, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t\n("); i >= 0 {
		return s[:i]
	}
	return s
}
