// Package passkeyidp is Varde's built-in identity provider: persons log
// in with passkeys (WebAuthn, package passkey) or, when they have lost
// them, with single-use recovery codes, or with a one-time code the help
// desk gave them after checking who they are in person (ADR 62), typed
// in the same field (Provider.useCode). It also serves the person's
// account page and, for demos and test environments, enrolment of
// synthetic test persons.
//
// It is policy-free: it reports evidence and lets the broker decide. A
// login's level is assurance.FromEvidence of the person's proofing level
// and the authenticator (a device-bound passkey with user verification
// supports high, a synced one substantial, a recovery code low), and its
// amr is assurance.AMR. The broker, through provider.Finisher, checks the
// level against the request and starts the session.
//
// # Pages
//
// Server-rendered through httpx.Pages in Norwegian Bokmål, English and
// Danish; they work without JavaScript except the WebAuthn ceremony
// itself, which web/static/passkey.js runs (no inline script: the CSP
// allows scripts from 'self' only).
//
//	GET  /passkey/login?attempt=ID     log in with a passkey
//	POST /passkey/cancel               form: attempt, csrf → Finisher.Fail("cancelled")
//	GET  /passkey/recover?attempt=ID   log in with a recovery code or a help desk code
//	POST /passkey/recover              form: attempt, code, csrf
//	GET  /passkey/enrol?attempt=ID     create a synthetic test person (SyntheticEnrolment only)
//	GET  /passkey/enrolled?t=TICKET    the new person's recovery codes, shown once,
//	                                   in the browser that enrolled
//	POST /passkey/enrolled/continue    form: ticket → finishes the login, once,
//	                                   within ten minutes; a ticket still held past
//	                                   them gets a page saying the step expired, one
//	                                   used or swept a page saying it is done
//	GET  /account                      the person's passkeys and recovery codes, and
//	                                   their recent activity: logins (refused ones
//	                                   marked), what each service received, changes
//	                                   to the account (refused ones marked too:
//	                                   adding or removing a passkey, new recovery
//	                                   codes, linking an eID), and a block by the
//	                                   help desk and its lifting (Provider.History, from the
//	                                   audit log; a person sees every disclosure
//	                                   about them): the newest 30 lines, and a
//	                                   link to older ones when there are more
//	GET  /account/activity[?page=CURSOR]  a page of 30 lines of the
//	                                   person's activity, older than an event
//	                                   or newer, with links to the pages
//	                                   either side and a heading naming its
//	                                   period (history.go); reads only; the
//	                                   cursor is sealed for the person
//	                                   (cursor.go): one that does not open for
//	                                   them gets 400 and a page saying the
//	                                   link does not work
//	GET  /account/passkeys/remove?credential=ID  asks whether to remove the
//	                                   passkey, naming it (when added, last used)
//	                                   and saying how the person can still log
//	                                   in; changes and records nothing (WCAG 2.2
//	                                   SC 3.3.4). A passkey gone meanwhile, or
//	                                   the last way in, gets the account page
//	                                   saying so
//	POST /account/passkeys/remove      form: csrf, credential, confirm=yes;
//	                                   without confirm=yes it answers as the
//	                                   GET does and removes nothing
//	GET  /account/passkeys/rename?credential=ID  the form that renames the
//	                                   passkey: its name in a labelled field;
//	                                   changes and records nothing (rename.go)
//	POST /account/passkeys/rename      form: csrf, credential, name → the
//	                                   passkey renamed, 303 to the account
//	                                   page saying so; a name refused (empty,
//	                                   over 100 characters, characters that do
//	                                   not show as themselves, another of the
//	                                   person's passkeys' name) gets the form
//	                                   again saying why, with what was typed;
//	                                   a login no longer recent enough keeps
//	                                   what was typed for the form after the
//	                                   new login (renamedraft.go)
//	GET  /account/recovery-codes/new   asks whether to replace the person's
//	                                   codes; changes and records nothing
//	POST /account/recovery-codes       form: csrf, and confirm=yes when the
//	                                   person holds codes (without it, it
//	                                   answers as the GET does and replaces
//	                                   nothing) → new codes, 303 to:
//	GET  /account/recovery-codes?t=TICKET  the new codes, shown once to
//	                                   the session that made them, so a
//	                                   reload never replaces them; with
//	                                   &n=NOTICE when making them logged the
//	                                   person out everywhere else, which the
//	                                   page then says
//	POST /account/sessions/end-others  form: csrf → the person's other sessions
//	                                   end (Log out everywhere else, offered
//	                                   only while there is another), their
//	                                   refresh tokens without offline_access
//	                                   with them; offline access stays (ADR 26);
//	                                   with none left, the page says nothing
//	                                   was ended
//	POST /account/services/stop        form: csrf, client → the person's grants
//	                                   to a service the page lists as holding
//	                                   offline access are revoked (Stop access);
//	                                   its next refresh gets invalid_grant
//	POST /account/session/keep         JSON (header X-CSRF-Token) → the
//	                                   session used now, {"ends_in",
//	                                   "extendable"}; or form: csrf, back (one
//	                                   of the account pages) → the same, 303
//	                                   back with kept=1 (keep.go, ADR 50)
//
// A session whose person is blocked (ADR 27: one stored as the block
// landed, after the broker read the person) is no session to the
// account pages (ADR 42): the browser is sent to log in, where the
// broker says the Varde ID is blocked, and nothing changes. A block
// landing after a page read the person and before its change is
// written stops the change too: the store's write of a passkey or of
// recovery codes reads the block (store.ErrBlocked), nothing is
// stored, the refusal is audited with reason person_blocked, and the
// person is answered as a blocked person's session is (401 "session",
// or sent to log in). A person blocked as they enrol, between their
// passkey's write and their codes', gets no codes: the login goes
// straight to the broker, which says the Varde ID is blocked. So it is
// with the session making the change ending meanwhile (the person
// logged out everywhere else, ADR 46): every write of the account page
// (a passkey added, at any level, removed or renamed, new codes, log
// out everywhere else, stop a service's access) reads the session
// (store.ErrNotFound), nothing changes, the refusal is audited with
// reason session_ended, and the browser is answered as a session that
// has ended is. And a passkey or recovery code taken away as a login
// with it finishes leaves that login no session: its result names the
// way in (provider.Result.WayIn), which the session's write reads
// (store.Session.WayIn).
//
// The account page lists the person's other live sessions (when each
// login was, and how: the way in and the level, nothing else) and, when
// Provider.Grants is set, the services holding offline access to their
// data (store.Grants.ListOfflineAccess), by name, with when access was
// given and last used.
//
// The attempt ID is the broker's; "" is a login to the account pages.
//
// # JSON API
//
// The ceremonies are JSON endpoints, used by passkey.js and by load
// generators. Every request must have Content-Type: application/json
// (a cross-site form cannot send it, and a cross-site script would need
// a CORS preflight, which is never granted). Bodies of WebAuthn responses
// may be up to passkey.MaxResponseSize bytes. Credentials are the
// standard JSON serialisation of a PublicKeyCredential (WebAuthn Level 3
// §5.1: id, rawId, type, response with base64url members,
// clientExtensionResults, authenticatorAttachment).
//
//	POST /passkey/login/begin
//	  request:  {"attempt": "ID"}
//	  response: 200 {"ceremony": "C", "options": {"publicKey": {...}}}
//	            options.publicKey is PublicKeyCredentialRequestOptionsJSON
//	            (challenge base64url, rpId, timeout, userVerification
//	            "required", no allowCredentials)
//	POST /passkey/login/finish?ceremony=C
//	  request:  the assertion credential JSON (response.clientDataJSON,
//	            authenticatorData, signature, userHandle)
//	  response: 200 {"redirect": "URL"}, the URL the broker's Finish returned
//
//	POST /passkey/enrol/begin                 (SyntheticEnrolment only)
//	  request:  {"attempt": "ID", "given_name": "Kari", "family_name":
//	            "Nordmann", "birth_date": "1990-05-17" or "", "kind":
//	            "fnr" or "dnr"}
//	  response: 200 {"ceremony": "C", "options": {"publicKey": {...}}}
//	            (PublicKeyCredentialCreationOptionsJSON)
//	POST /passkey/enrol/finish?ceremony=C
//	  request:  the attestation credential JSON (response.clientDataJSON,
//	            attestationObject, transports)
//	  response: 200 {"redirect": "/passkey/enrolled?t=TICKET"}
//
//	POST /account/passkeys/begin    header X-CSRF-Token (from the account page)
//	  request:  {"name": "My phone"}
//	  response: 200 {"ceremony": "C", "options": {"publicKey": {...}}}
//	POST /account/passkeys/finish?ceremony=C   header X-CSRF-Token
//	  request:  the attestation credential JSON
//	  response: 200 {"redirect": "/account?n=NOTICE"}: NOTICE is a
//	            ticket bound to the session, taken by the page, that says
//	            the passkey was added and whether adding it logged the
//	            person out everywhere else (as after a removal); a link
//	            made by anyone else shows no notice. After a link the
//	            broker sends ?done=linked|alreadylinked|raised; the page
//	            says so only when the newest link in the audit trail
//	            made in this session (not another of the same person),
//	            from the last two minutes, did that, and says the
//	            person was logged out everywhere else only when that
//	            link's event says so (never from the query)
//	POST /account/passkeys/cancel?ceremony=C   header X-CSRF-Token
//	  request:  {}, sent by the page when the browser called the
//	            ceremony off (NotAllowedError: cancelled or timed out)
//	  response: 200 {}; the ceremony ends and is audited as "cancelled",
//	            which the person's activity does not call refused; one
//	            begun by another session ends too, audited as
//	            "wrong_session", which it does
//
// Every failure is a JSON object {"error": CODE, "message": TEXT} where
// TEXT is plain language in the page language, speaking of what was
// being done (a login, adding a passkey, an enrolment), and CODE is one
// of:
// expired (a ceremony still held whose time ran out: begin again),
// replay (unknown, used or expired and swept ceremony: begin again),
// wrong_ceremony (a response for another ceremony: one of the other
// kind, such as a registration's posted to a login's finish, or one
// answering another challenge; the ceremony named is used up: begin
// again), wrong_origin,
// cloned_authenticator, unknown_credential, not_verified, bad_input,
// backup_eligibility_changed, concurrent_use, invalid, credential_exists,
// taken (a person or identifier drawn at the same moment by another
// enrolment: nothing stored, begin again),
// bad_request (wrong content type or malformed request), enrol_name,
// enrol_birth, passkey_name, session (no session: 401), csrf (403),
// reauth (403: adding a passkey needs a recent login, ReauthAfter, at
// a known level, the new passkey's cap),
// passkey_limit (409: the person holds MaxPasskeys passkeys already; from
// account/passkeys/begin, and from its finish when another addition
// reached the cap in between),
// busy (503 with Retry-After: the node holds as many ceremonies as it
// may; from login/begin and enrol/begin, and from enrol/finish when
// the tickets of the page that shows the new test person cannot be
// stored: the person is stored, and never shown), not_stored (500: the write of
// an added passkey or an enrolment got no answer and its read-back
// found nothing), unconfirmed (503: it got no answer and the store
// could not be read back, so the person is told how to check) and
// internal (500). A login finish the store could not serve
// (store.Unavailable) answers 503 "unavailable" with Retry-After and is
// audited with Reason store_unavailable; one whose write (the
// ceremony's take, the passkey's use) got no answer answers 500
// "internal", whose message asks the person to try again (the login did
// not happen, and a new ceremony is safe either way), and is audited
// with outcome_unknown; any other error of Varde's with internal. Ceremony
// failures are 400 and are recorded as audit events of type
// "authentication" (or "enrolment", "passkey_added") with Result
// failure and the code as Reason; an add finished by another session
// than the one that began it is answered replay but recorded as
// "wrong_session" against the person the add was begun for (whose
// account it would have changed, even when the session that finished
// or cancelled it is another person's), whose activity shows it as a
// refused change. A login with a passkey whose
// signature verified but which cannot be trusted (cloned_authenticator,
// backup_eligibility_changed: a copy of it may be in other hands) is
// recorded as its person's, with the passkey in Details["credential"],
// so that the person sees it in their recent activity. A failed login
// finish says in Details["ceremony"] (provider.DetailCeremony) whether
// its ceremony was found; one found names, through the Finisher
// (provider.Tracer, the broker), the login attempt it was begun for and
// the browser, so that the status page counts the people an outage
// kept out once each, and nothing for what anyone can send.
//
// A change to the account, made or refused (passkey_added,
// passkey_removed, passkey_renamed, recovery_codes_regenerated, logged_out_elsewhere
// with Details["count"] the sessions ended, offline_access_stopped
// with the service as ClientID, link_removed with the eID the number was
// linked through as Details["provider"] and its scheme, never the
// number, ADR 57), records how the session
// that asked for it was logged in: Details["method"] is "passkey",
// "recovery-code" or "upstream" (a login through a linked eID),
// Details["session_provider"] the session's provider and Details["amr"]
// its amr values. The recovery codes made at enrolment are recorded in
// the same write as they are stored, as recovery_codes_regenerated with
// Details["method"] "enrolment", so the person's recent activity shows
// every set of codes that was made.
//
// # Security notes
//
// Ceremonies and tickets are single use (taken from the store). Account
// forms carry a CSRF token derived from the session cookie, forms used
// before login a double-submit cookie token. The Continue ticket after
// an enrolment names the browser that enrolled (a hash of its form
// cookie), so no other browser can be logged in with it. The ticket
// that shows new recovery codes on the account is bound to the session
// that made them: another session, holding a copied link, finds nothing
// (410) and cannot use the ticket up. A session holds one such ticket and
// one notice, the newest: asking for new codes again and again replaces
// them rather than fill the challenge store everyone's logins share, and
// a store full for other reasons answers 503 "busy". Recovery codes
// carry 80 random bits and are stored as SHA-256 hashes. New codes wait
// to be shown, until shown once or for at most the ticket lifetime (10
// minutes), in the ticket that shows them, in the challenge store,
// sealed (AES-GCM) with a key derived from the ticket's token, which is
// only in the browser's link and kept nowhere on the server (the access
// log has paths, not queries): the store alone does not yield them. A
// code is used up before its person is read; if that read fails, or the
// person's Varde ID is blocked (the broker then refuses the login, ADR
// 27), the code is given back (store.RecoveryCodes.RestoreRecoveryCode), but a failure
// in the broker's finish step leaves it used, since the login may have
// been recorded: a code is never good twice. Each login the
// broker holds may try MaxRecoveryTries codes, an account login
// MaxRecoveryTries per browser in an hour, and the page at the limit
// says which (start the login at the service again, or wait the hour,
// which its 429 also gives as Retry-After: 3600);
// an attempt the broker does not hold (made up, or expired) gets the
// plain "start again" page and tries nothing. A browser is known by its
// form cookie only once a server has given it the account recovery form,
// for two hours, by a mark in a cookie of its own (varde_recover): the
// mark's expiry and an HMAC of it and the form cookie's hash, under a key
// every node derives from the subject salt, so that loading the form
// stores nothing. A form cookie the client made up, or one beside
// another's mark, tries nothing and gets the form back. These limits bound the tries
// per login and per browser, not a guesser's: a new login or a new
// browser costs a request or two and gets fresh tries. Against online
// guessing the codes' 80 bits are what hold: with ten million codes
// stored, a billion guesses find one with odds below one in a hundred
// million.
package passkeyidp
