// Package session manages a person's browser session at Varde: the
// cookie that carries it and the stored record behind it. The broker
// starts sessions after a provider authenticates someone; the OpenID
// endpoints and the account pages read them.
//
// A session ends at its lifetime (session.lifetime), or sooner when left
// unused for session.idle_timeout: Manager.Current, through which every
// reader finds a session, no longer finds it, nor does the store
// (store.Sessions.GetSession, told the timeout by SetSessionIdleTimeout). Each use moves the idle
// deadline; the store records a use at most once a minute
// (store.Sessions.TouchSession), so reading a session seldom writes, and
// every node reads the deadline the store holds. A session ended so, like
// an expired one, is told to its relying parties when it is deleted
// later, by the sweep or by a later end: the write that deletes it
// records its end, from when it ran out of time, if a client in it
// registered a back-channel logout URI, and housekeeping queues the
// logout tokens (store.Sweeper, ADR 60).
package session
