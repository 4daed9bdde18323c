package sqlstore

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/varde-eid/varde/internal/store"
)

// A login reads back, in later requests, the authorization request and
// the session it wrote moments before: the pushed request at
// /authorize, when the login finishes and at /authorize/resume; the
// session at resume. A read on a pooled connection costs far more than a
// map lookup, because SQLite drops a connection's page cache whenever
// the database changed since its last read, which under load is always.
//
// So the DB keeps the auth requests and sessions it wrote itself in
// memory (recent), as committed: the writer goroutine updates the copy
// after the commit that made a change, in commit order (writeReq.onCommit),
// so the copy never shows what the database does not hold. A record that
// is not in memory (written before a restart, or evicted) is read from
// the database, so dropping entries is always safe. This relies on ADR 5:
// one process writes a SQLite file's auth requests and sessions, the node
// that owns it. Callers get copies, never the cached value.
//
// Where other nodes write the same database at any moment (PostgreSQL),
// no copy can be trusted, so the DB keeps none: a nil *recent and a nil
// *persons keep nothing and find nothing.

// recentMax bounds each cache; past it, arbitrary entries go (and are
// read from the database again when needed).
const recentMax = 16384

// recent is a map of records by ID, each with its expiry.
type recent[T any] struct {
	mu sync.RWMutex
	m  map[string]*T
	// expires returns a record's expiry; clone copies it deeply.
	expires func(*T) time.Time
	clone   func(*T) *T
}

func newRecent[T any](expires func(*T) time.Time, clone func(*T) *T) *recent[T] {
	return &recent[T]{m: make(map[string]*T), expires: expires, clone: clone}
}

// get returns a copy of the record with this ID. found is false when the
// cache does not know it (the caller asks the database); a known record
// expired at now is reported found and nil.
func (c *recent[T]) get(id string, now time.Time) (v *T, found bool) {
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !c.expires(e).After(now) {
		return nil, true
	}
	return c.clone(e), true
}

// put stores v (which the caller must not keep) as committed.
func (c *recent[T]) put(id string, v *T) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= recentMax {
		c.shrink()
	}
	c.m[id] = v
}

// update changes the committed record with this ID in place, if known.
func (c *recent[T]) update(id string, fn func(*T)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if e, ok := c.m[id]; ok {
		fn(e)
	}
	c.mu.Unlock()
}

func (c *recent[T]) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// clear drops every entry.
func (c *recent[T]) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// prune drops the entries expired at now.
func (c *recent[T]) prune(now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for id, e := range c.m {
		if !c.expires(e).After(now) {
			delete(c.m, id)
		}
	}
	c.mu.Unlock()
}

// pruneIf drops every entry for which ended is true.
func (c *recent[T]) pruneIf(ended func(*T) bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for id, e := range c.m {
		if ended(e) {
			delete(c.m, id)
		}
	}
	c.mu.Unlock()
}

// shrink drops arbitrary entries until a quarter of the room is free
// (expired ones go when the sweeper runs, see DeleteExpired). c.mu is
// held.
func (c *recent[T]) shrink() {
	for id := range c.m {
		if len(c.m) < recentMax*3/4 {
			break
		}
		delete(c.m, id)
	}
}

// validStrings reports whether every string of ss is valid UTF-8. The
// database stores string lists as JSON, which turns invalid UTF-8 into
// U+FFFD; records holding such strings are not cached, so what the cache
// returns is exactly what the database would.
func validStrings(lists ...[]string) bool {
	for _, ss := range lists {
		for _, s := range ss {
			if !utf8.ValidString(s) {
				return false
			}
		}
	}
	return true
}

// asStored returns t as the database gives it back: UTC, to the
// microsecond, the zero time kept.
func asStored(t time.Time) time.Time { return fromMicros(micros(t)) }

// storedAuthRequest returns a copy of r as the database gives it back,
// or nil if it cannot be cached.
func storedAuthRequest(r *store.AuthRequest) *store.AuthRequest {
	if !validStrings(r.Scope, r.Prompt, r.ACRValues, r.UILocales) {
		return nil
	}
	c := r.Clone()
	c.CreatedAt, c.ExpiresAt = asStored(c.CreatedAt), asStored(c.ExpiresAt)
	return c
}

// storedSession is storedAuthRequest for sessions.
func storedSession(s *store.Session) *store.Session {
	if !validStrings(s.AMR, s.Clients) {
		return nil
	}
	c := s.Clone()
	c.WayIn = store.WayIn{}
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.LastUsed = asStored(c.AuthTime), asStored(c.CreatedAt), asStored(c.ExpiresAt), asStored(c.LastUsed)
	return c
}

// persons is a read-through cache of persons, by ID and by WebAuthn user
// handle. A login reads its person twice (when the passkey assertion is
// checked, and for the ID token's claims), and a person's row costs a
// JSON decode besides the query. Unlike recent, entries come from reads,
// so a read racing a write could store what the write just replaced: gen
// counts the writes (and drops) of persons, and a read's result is kept
// only if no write committed since the read began. Writes of persons
// drop the entry after their commit. No "not found" is kept.
//
// A login through an upstream eID finds its person by identifier
// (scheme and value), so the cache is indexed by those too: a person's
// identifiers are in its record, and change only by writes of that
// person, which drop it.
type persons struct {
	mu       sync.Mutex
	gen      uint64
	byID     map[string]*store.Person
	byHandle map[string]string // string(WebAuthnID) → person ID
	byIdent  map[identKey]string
}

type identKey struct{ scheme, value string }

func newPersons() *persons {
	return &persons{byID: make(map[string]*store.Person), byHandle: make(map[string]string), byIdent: make(map[identKey]string)}
}

// getByIdentifier returns a copy of the cached person holding this
// identifier, or nil.
func (c *persons) getByIdentifier(scheme, value string) *store.Person {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	p := c.byID[c.byIdent[identKey{scheme, value}]]
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Clone()
}

// get returns a copy of the cached person with this ID, or nil.
func (c *persons) get(id string) *store.Person {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	p := c.byID[id]
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Clone()
}

// getByHandle returns a copy of the cached person with this user handle,
// or nil.
func (c *persons) getByHandle(handle []byte) *store.Person {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	p := c.byID[c.byHandle[string(handle)]]
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Clone()
}

// begin is called before a read from the database; its result goes to add.
func (c *persons) begin() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// add keeps p, read from the database after begin returned gen, unless a
// write of persons committed since. The caller must not keep p.
func (c *persons) add(gen uint64, p *store.Person) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.byID) >= recentMax {
		c.clearLocked()
	}
	c.forget(p.ID)
	c.byID[p.ID] = p
	if len(p.WebAuthnID) > 0 {
		c.byHandle[string(p.WebAuthnID)] = p.ID
	}
	for _, id := range p.Identifiers {
		// The record's identifiers come from JSON, where invalid UTF-8
		// became U+FFFD; such a value is not what the identifier table
		// holds, so it is left to the database.
		if utf8.ValidString(id.Scheme) && utf8.ValidString(id.Value) && !strings.ContainsRune(id.Scheme+id.Value, utf8.RuneError) {
			c.byIdent[identKey{id.Scheme, id.Value}] = p.ID
		}
	}
}

// forget removes person id and its indexes. c.mu is held.
func (c *persons) forget(id string) {
	p := c.byID[id]
	if p == nil {
		return
	}
	delete(c.byHandle, string(p.WebAuthnID))
	for _, ident := range p.Identifiers {
		if k := (identKey{ident.Scheme, ident.Value}); c.byIdent[k] == id {
			delete(c.byIdent, k)
		}
	}
	delete(c.byID, id)
}

// drop forgets person id; the writer calls it after a commit that
// changed the person.
func (c *persons) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.forget(id)
}

// clear forgets every person.
func (c *persons) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.clearLocked()
}

func (c *persons) clearLocked() {
	clear(c.byID)
	clear(c.byHandle)
	clear(c.byIdent)
}
