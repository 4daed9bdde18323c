// Package flowmem keeps a single node's login flow state in memory:
// authorization requests, ceremony challenges, authorization codes and
// the replay cache of client assertions. Every one of them lives for
// seconds to minutes and is written and read on every login, so on a
// node with an embedded SQLite file, which only that node writes (ADR
// 5), keeping them out of the file removes eight of the fifteen writes a
// passkey login makes, each a commit the login waits for when the node
// is not busy (ADR 7).
//
// Over composes a Mem with any store.Store: the flow aggregates come
// from memory, everything else (persons, passkeys, sessions, grants,
// tokens, the audit log, status) from the durable store, and the result
// passes the same conformance suite (storetest) as any backend.
//
// Memory is bounded: DefaultMaxEntries records in all, and among them
// DefaultMaxChallenges challenges per namespace (the ID up to its first
// ':'), since anyone may begin a passkey ceremony without logging in
// (ADR 10), DefaultMaxFrontBytes of authorization requests not
// pushed, since anyone may make one (ADR 19), and DefaultMaxPushedBytes
// of the requests each client pushed, so that one client cannot take
// the room of all (ADR 23). A write that does not fit
// fails with ErrFull (store.ErrFull), and the login is refused as busy.
// Records keep copies of their strings, never a slice of a longer one,
// so that what a record keeps alive is what Cost counts.
//
// What memory changes is restarts: in-flight logins, unredeemed codes
// and the memory of used assertion jti values end with the process.
// Logins and codes fail closed (the person or the relying party starts
// again); for replay protection Mem reports RemembersSince, and the
// client authenticator (package oauth2) refuses assertions that could
// have been presented before it. Removals are another: a client removed
// through this Store loses its requests and unredeemed codes here too,
// but one removed by another process (`varde clients remove` beside the
// node) does not, so the node checks a client's registration is no
// newer than the flow state it honours. Nodes sharing a clustered store
// keep flow state there instead.
package flowmem
