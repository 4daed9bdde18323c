// Package webhook tells relying parties when a component they depend on
// changes state, so a bank can show "BankID is down, use a passkey"
// before its customers find out the hard way.
//
// It owns the notification format, the outbox writes and the delivery
// worker. When components change state is package health's business;
// where a relying party's webhook URL comes from is package config's and
// the clients command's; the outbox itself is store.Webhooks. Announced
// maintenance is not notified: relying parties read it from the status
// API (package status).
//
// # Format
//
// Each notification is a Security Event Token (SET, RFC 8417): a JWT
// signed ES256 with the node's signing key, JWS header typ
// "secevent+jwt" (RFC 8417 §2.3) and kid naming the key in the issuer's
// JWKS (the jwks_uri of its OpenID discovery document), delivered by push
// (RFC 8935). This is the contract relying parties code against:
//
//	POST /varde/events HTTP/1.1
//	Host: bank.example
//	Content-Type: application/secevent+jwt
//	Accept: application/json
//
//	eyJhbGciOiJFUzI1NiIsImtpZCI6Ii4uLiIsInR5cCI6InNlY2V2ZW50K2p3dCJ9.eyJpc3Mi...
//
// whose JWS payload is
//
//	{
//	  "iss": "https://id.example.no",
//	  "iat": 1795254330,
//	  "jti": "3q2-7wAAAAAAAAAAAAAAAQ",
//	  "aud": "bank",
//	  "txn": "i5ej7YgVgJxN3eZ0FDqVtw",
//	  "events": {
//	    "https://varde.dev/secevent/component-state": {
//	      "component": "bankid",
//	      "state": "down",
//	      "previous_state": "operational",
//	      "reason": "probe timeout",
//	      "since": 1795254318,
//	      "node": "node-a",
//	      "status_url": "https://id.example.no/status/api/v1/summary"
//	    }
//	  }
//	}
//
// The claims (type Claims):
//
//   - iss: the issuer; verify the signature with its JWKS, and check typ,
//     iss and that aud is your client ID.
//   - iat: when this copy of the SET was signed, a NumericDate (seconds
//     since the epoch). Each attempt signs the SET again, so a retry
//     carries the time of its attempt, with the same jti and events; to
//     order changes of one component use since, or the order of first
//     arrival by jti.
//   - jti: 128 random bits, base64url. A SET may arrive more than once
//     (a lost response, a lease taken over): drop duplicates by jti.
//   - aud: the receiving client's ID.
//   - txn: the same in the SETs that every client gets about one change.
//   - events: one member, ComponentStateEvent
//     ("https://varde.dev/secevent/component-state"), whose object holds
//     component ("store", "passkey" or an upstream provider's ID), state
//     and previous_state (operational, degraded, down or unknown), reason (machine-readable, may be absent), since (when the
//     evidence for the new state began, a NumericDate like iat; absent if
//     not known), node (the node that measured it) and status_url (the
//     component on the public status API; absent if not configured).
//
// Every node measures on its own and notifies on its own, so in a
// cluster one outage can be reported once per node, each with its node;
// relying parties treat the SETs as hints and the status API as the
// truth.
//
// # What is sent
//
// Notify (or OnTransition, for health.Monitor.Subscribe) maps health
// states to public ones (up → operational, degraded, down, unknown) and
// sends nothing when the public state did not change, or when it went
// from unknown to operational: every component does that when a node
// starts, which is not news. A client hears about a component if it has
// a status webhook and the component is among its status components,
// or, if it named none, the component is "store" or a provider the
// client accepts (every provider if it accepts all). One SET per client
// per change is written to the outbox; each attempt to deliver it signs
// it again, as of that attempt (a fresh iat, the same jti, txn and
// events), so a receiver that refuses an old iat still takes a retry.
// A stored payload that is not such a SET is abandoned (ErrNotSET).
// The outbox is trusted like the rest of the store: a renewal reuses
// the stored claims without checking the stored signature (it may be
// by a key rotated out since), and whoever can write the outbox can as
// well write a client's webhook URL or its accepted providers, so a
// check would protect nothing. The same holds for the logout tokens
// package oidc renews.
//
// OnTransition never blocks: the transition waits in a queue in memory
// (Config.QueueSize) until Run writes it to the outbox; while the store
// cannot take it, it waits, in order, and is retried every round, so
// even "the store is down" reaches relying parties once the store is
// back. A node that stops writes what still waits before Run returns,
// for at most Config.AttemptTimeout (what the store does not take by
// then is logged as lost); a node that crashes loses what waits, which
// only its memory held. A full queue still takes the new change, and
// makes room by merging the oldest change of a component that has a
// later one waiting into that one (down then up becomes one change from
// what relying parties last heard, so nothing is sent if that was up),
// or, only if every waiting change is of a different component, by
// dropping the oldest; either is counted.
//
// Run writes the waiting changes on a goroutine of its own, so a store
// or a signer slow to take them never holds up the deliveries already
// in the outbox, logout tokens included. A change is signed for every
// interested client first, each SET within Config.AttemptTimeout, and
// then written in one write within Config.Lease of its own, so signing
// for many clients takes nothing from the write. A signer that does not
// answer in time fails the change, which waits for the next round; the
// signature it did not give runs on until it answers, and while it does
// no other is started.
//
// # Delivery and retries
//
// Run keeps up to Config.Concurrency (4) attempts in flight, each
// within Config.AttemptTimeout (5 s), all of it: finding where the
// delivery goes, renewing its payload and the POST. Every
// Config.PollInterval (1 s), and as soon as a slot frees while more are
// due, it claims due deliveries for its free slots, each for
// Config.Lease (30 s) under this node's name, so two nodes never send
// the same delivery at once, and POSTs each at once. No more than
// Config.PerEndpoint (2) deliveries of one endpoint (a client and an
// event) are in flight at once, on all nodes together, also when they
// claim at the same moment (store.Webhooks.ClaimWebhooks):
// a receiver that answers slowly or not at all, even with thousands
// queued while it was down, holds at most that many slots, and the
// others keep going.
//
// Leases are judged by the nodes' clocks, not the database's: a node
// leases until its own now plus Config.Lease, and claims what is leased
// until its own now or before. This matters only where two nodes' clocks
// differ by more than Config.Lease less Config.AttemptTimeout (25 s; at
// least half the lease, which Config.Validate keeps at twice the
// attempt timeout or more): only then can a node take over a delivery
// another may still be sending, or count fewer of an endpoint's
// deliveries in flight than there are. A lease ends when its attempt
// is recorded, long before its time, so a smaller difference only
// moves when a crashed node's deliveries are taken over, or when a
// retry is due, by as much. Nodes keep their clocks in step (NTP: within
// milliseconds) for much else that a difference of tens of seconds
// would break first (a session's age, a client assertion's exp and
// iat), and a SET or logout token that arrives twice is one a receiver
// must drop anyway (a lost response): by its jti. So a claim takes its
// times from its node, as every other call to the store does, not from
// the database server.
//
// RFC 8935 §2.2: the receiver acknowledges with 202; any 2xx counts as
// delivered. §2.3: a 400, with {"err": ..., "description": ...}, means
// the receiver refuses that SET (a bad key, a wrong audience): it is
// abandoned at once and the error kept in LastError.
// Any other status, a 3xx (redirects are never followed), a timeout or
// a connection failure is retried after
//
//	5 s, 15 s, 45 s, 2 m 15 s, 6 m 45 s, 20 m 15 s, 30 m, 30 m, …
//
// (Config.FirstRetry times Config.Factor per failure, capped at
// Config.MaxDelay, each shortened by a random share of up to
// Config.Jitter, 20 %), and abandoned after Config.MaxAttempts (12)
// attempts, about three hours. A 429 or a 503 whose Retry-After
// (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) asks for longer
// than the next delay is not tried again before then, nor later than
// Config.MaxDelay; Retry-After never makes the schedule shorter. An error that names the receiver's URL
// (a connection failure, a refused URL) names it without its query,
// fragment or user information, each shown as "redacted", in the log
// and in LastError, so a secret a relying party put in its URL is not
// copied there. Deliveries stay in the store, delivered
// or abandoned, for store.FinishedDeliveryAge (30 days), for operators
// to inspect (varde status webhooks --client ID, which shows each URL
// redacted the same way; varde clients list does so too). A delivery
// that ends keeps its record (attempts, last error, times), not its
// payload: the SET or logout token is dropped then, as it is never sent
// again and a logout token holds a person's pairwise sub and sid.
//
// # Where a delivery goes
//
// Each attempt goes to the URL the client registers for the delivery's
// event at that moment (SendTo: its status webhook, for a SET), not the
// one it was queued with, and the delivery records where it went. A
// relying party that moves its endpoint, perhaps because its old host
// was handed to someone else, gets what was waiting for it at the new
// one as soon as the new registration is in the store (a node started
// with an edited configuration file puts it there), and the old one
// gets nothing more; an attempt already under way at that moment still
// goes where it was going. A delivery whose client no longer registers
// a URL for its event is abandoned ("URL no longer registered" in
// LastError). Removing a client (varde clients remove) abandons its
// deliveries not yet made in the same write, so nothing more goes to
// its URLs ("client removed").
//
// # Logout tokens
//
// The outbox also holds back-channel logout tokens, which package oidc
// writes when a person's session ends (event "backchannel_logout", ADR
// 15). Run delivers them like SETs, sending each body and Content-Type
// as stored (a form, logout_token=...). Back-Channel Logout 1.0 §2.8
// has the relying party answer 400 when "the logout failed", which may
// pass (it has not yet fetched the key that signed the token, its store
// is down a moment), so for the event the app registers with
// RetryRefused a 400 is retried on the schedule, its OAuth error
// ({"error", "error_description"}) kept in LastError, and abandoned only
// after Config.MaxAttempts, not at once like a SET error. A logout token lives two minutes, so each
// attempt sends what package oidc renews it into (RenewWith): a payload
// it cannot read is abandoned, while a signer that fails (a hardware
// module out of reach) fails only that attempt, retried on the schedule.
// So does a signer that hangs, once the attempt's time is up: the
// attempt stops waiting for it, and its slot goes on. Since a signature
// cannot be called off, the renewal runs on until the signer answers;
// at most Concurrency are left so at once, and while that many are, no
// attempt starts another. A renewal only another node can make (a
// token for an RS256 client at a node without an RSA key, ADR 32;
// RenewElsewhere) is no attempt: the delivery's lease is released
// uncounted, and it is due again a poll interval later for the next
// node that claims it, so a node without the key cannot use up its
// attempts, nor claim and release it without pause. Where no node
// renews it, it is abandoned once it has waited as long as its
// attempts would have taken at most. Logout tokens go to the client's
// backchannel_logout_uri as registered at each attempt.
//
// # Security
//
// The SET is signed, so a receiver needs no shared secret, and carries
// nothing about any person. Webhook URLs are registered only by
// operators (configuration file or the clients command) and must be
// https, or http only to localhost or a loopback address; the rule is
// checked again before each POST. The node never follows a redirect,
// keeps no cookies, keeps at most 4 KiB of a response's body (read for
// an error; up to 64 KiB more is read and discarded, so the connection
// can serve the next POST, and the rest is left unread), and strips
// control characters from receivers' error text before it is logged or
// stored.
//
// # Metrics
//
//	varde_webhook_deliveries_total{event,result}  attempts: delivered, retry, abandoned;
//	                                              elsewhere: a pass left to another node (RenewElsewhere)
//	varde_webhook_enqueued_total                  SETs written to the outbox
//	varde_webhook_events_dropped_total            state changes dropped from a full queue
//	varde_webhook_attempt_duration_seconds        time each POST took
//
// The event label of an attempt is its delivery's event:
// component_state for a SET, backchannel_logout for a logout token
// (each event registered with SendTo), or "other" for one nobody
// registered, which is abandoned. The duration covers both. An attempt
// is counted once the outbox has recorded it: one whose record failed
// (its lease went to another node while it ran) is made again, and
// counted then, so the count agrees with the attempts the outbox holds.
package webhook
