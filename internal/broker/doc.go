// Package broker is Varde's login policy: which providers a relying
// party's request may use, handing the person to the chosen provider,
// turning a provider's result into a person and a session at the level
// actually reached, and recording every decision in the audit log.
//
// The OpenID endpoints (package oidc) hand a login over to the broker by
// redirecting to /login?req=ID and take it back through Continue, which
// issues the code once the broker has the session; providers report to
// the broker through provider.Finisher. Upstream providers,
// health-based routing and failover extend this package.
//
// # Audit events for counting people affected
//
// Package status counts, per incident, the attempts and the people a
// provider's outage affected from these audit events, so their shape is
// a contract:
//
//	Type "authentication" (EventAuthentication), from Finish and Fail:
//	  Result   "success" or "failure"
//	  Provider the provider used
//	  ClientID the relying party ("" for an account login or an
//	           attempt that had expired)
//	  PersonID the person reached (success); on a failure, the person
//	           the result names, if they exist already (a refused
//	           result creates nobody)
//	  Level    the level the provider reached, never above its
//	           configured maximum (Finish only)
//	  Reason   on failure: the provider's reason ("cancelled" is the
//	           person's choice; "unverified_response" is a response
//	           that came back through the browser without the
//	           provider's word for it, which anyone can forge;
//	           "node_error" is a failure of this node's own;
//	           "account_refused" is the provider's valid answer about an
//	           account Varde cannot use, which counts against the
//	           provider's health once per account in the health
//	           window; anything else counts against the provider at
//	           every login), or attempt_expired (a good result that
//	           came back after the attempt expired: not the
//	           provider's failure), client_gone (a good result
//	           that came back after the login's client was deleted:
//	           not the provider's failure; the login page then says
//	           the service no longer uses Varde),
//	           unknown_provider, provider_not_accepted (the client's
//	           registration does not name it), insufficient_level,
//	           unknown_person (the result named no person),
//	           invalid_identifier (an identifier the result proved is
//	           no valid number of its scheme: the provider's failure),
//	           identifier_conflict (its identifiers belong to
//	           different persons; not the provider's failure),
//	           person_blocked (the person's Varde identity is
//	           blocked, store.PersonBlocks; not the provider's
//	           failure: the login page says so, 403),
//	           identifier_removed (the number the login found its
//	           person by was taken off them, ADR 44, as it finished:
//	           its session's write stored nothing,
//	           store.ErrWayInGone, ADR 49, and the login page says
//	           the login did not work),
//	           way_in_removed (the passkey or recovery code the login
//	           used was taken away by its person, ADR 46, as it
//	           finished: likewise),
//	           session_error, outcome_unknown (the write of the
//	           session and its success event got no answer: both may
//	           be stored; Details "stored" is "unknown" and "session"
//	           names the session); a result whose person this node's
//	           store could not find or create is recorded as node_error
//	Type "routing" (EventRouting), when the broker routes a person around
//	a provider that is down: the login page shows it down, provider_hint=
//	any skips it, or it went down between the page and /login/start:
//	  Result   "rerouted" (ResultRerouted), Reason "provider_down", while
//	           another provider the attempt may use is up; "failure",
//	           Reason "no_provider_available", when none is
//	  Provider the provider that was down
//	  ClientID as above
//	  Details  "via" (DetailVia): "page" (listed unavailable), "hint"
//	           (listed unavailable, and the relying party's
//	           provider_hint named it), "any" (provider_hint=any went
//	           elsewhere) or "start" (the person chose it and it went
//	           down meanwhile); only "hint" and "start" show the person
//	           was headed for it
//
// Both carry in Details:
//
//	"attempt" (DetailAttempt)  Handle(attempt ID): the same for every
//	                           event of one login attempt; absent for an
//	                           account login. The attempt ID is a bearer
//	                           handle and is never recorded.
//	"browser" (DetailBrowser)  Handle(varde_browser cookie value); absent
//	                           when the request carried no such cookie
//	                           (a provider's cross-site POST back).
//
// One attempt may have several routing events for the same provider
// (each page view records the providers it shows down), so count
// distinct attempt handles. A failure through one provider followed by a
// success through another in the same attempt shares the attempt handle.
//
// The varde_browser cookie (BrowserCookie) is set on GET /login and GET
// /login/start when missing, and by the authorization endpoint when it
// takes a request: 128 random bits, base64url, first-party, HttpOnly,
// SameSite=Lax, Path and Secure as the session cookie, Max-Age 400
// days, and named as the session cookie is (session.SecureName):
// __Host-varde_browser over HTTPS (__Secure- under an issuer's path), so
// that a cookie a sibling subdomain set (cookie tossing) is not read,
// can neither skew the count nor pass for the browser a login is bound
// to. It holds no personal data. It is used to count, once each, the
// people affected by outages, including those who never got in (the
// audit log keeps only its Handle), and to bind a login for a relying
// party to the browser that began it (ADR 47): the authorization
// endpoint stores a hash of its value with the request (BrowserMarks,
// oidc.InBrowser), and the login page, /login/start and Finish serve
// that login only in that browser.
//
// The varde_notice cookie (NoticeCookie, ADR 48) binds a notice to the
// browser the outcome happened in: the redirects that carry one (the
// login page's ?err=, with &from= naming the provider a login failed
// through, which the page then lists last, marked; the link refusal's
// ?why= and &scheme=) set it to
// a digest of the notice's parameters, Max-Age NoticeLifetime, HttpOnly,
// SameSite=Lax, named and scoped as varde_browser. The login page and
// the refusal page show the notice only when the cookie matches; the
// same address opened elsewhere (a phishing mail linking to Varde's own
// page) is the plain login page, or the account page.
//
// # Persons from eIDs
//
// A result from an upstream eID names the person by identifier. The
// first login proving an identifier nobody holds creates a person,
// proofed by that eID at the level it reached, with the name and date
// of birth it reported (event "person_created"), and marked as a test
// person if its numbers are synthetic ones (identity.Number.Synthetic),
// as test eIDs assert. Later logins proving the identifier reach that
// person whichever eID they come through, however it spells the number:
// identifiers are taken in the canonical form package identity gives
// them, and one that is no valid number of its scheme is refused
// (Reason "invalid_identifier"). A login at or above the level the
// person was proofed at that reports another name or date of birth
// updates them, as the population register behind the eID changed
// (event "profile_updated", Details "claims": which claims changed,
// never their values). A weaker login never overwrites a stronger one.
// A login proving identifiers that belong to two different persons is
// refused (Reason "identifier_conflict"), with a page saying so: which
// person it is cannot be told, and persons are never joined.
//
// A person whose Varde identity the help desk blocked (varde persons
// block, store.PersonBlocks, ADR 27) is refused at every Finish,
// whichever provider proved them and however (a passkey, a recovery
// code, an eID whose identifier resolves to them), and at the end of a
// link: Reason "person_blocked", no session, and a page (403) that says
// the Varde ID is blocked and that the help desk lifts blocks, naming
// it when the deployment has one (config support). A relying party's
// login can only go back to the service, which gets access_denied and
// nothing that says why. The person is read from the store at each
// login, so a block is seen at once on every node.
//
// Linking (link.go) lets a person who is logged in add another provider
// whose identifiers they hold, so that logging in through it reaches the
// same person and the same pairwise subs:
//
//	POST /account/link            form: csrf (from LinkOptions), provider
//	                              → the provider's login, attempt "link:…"
//	GET  /account/link/refused    ?why=taken|session|level|proofing|
//	                              stale|expired|cancelled|failed|refused|
//	                              unavailable|blocked|number: a plain page;
//	                              number with &scheme= names the kind of
//	                              number that clashed, never the number;
//	                              without the varde_notice cookie of that
//	                              refusal, 303 to the account page
//
// The account page (package passkeyidp) lists LinkOptions, or, when
// there are none, says why (LinkWhyNot: the login is too old, too weak
// or below the proofing level, or no provider is up), naming the level
// a link needs as the LinkLevel method gives it. Both logins
// must reach LinkLevel, the session's also the level its person was
// proofed at (a linked identifier reaches the person through every
// provider that proves it), what the link adds reaches no more than the
// lower of the two logins' levels (store.Identifier.MaxLevel), the link
// finishes only in the session that
// started it, an identifier held by another person is refused (a link
// never joins persons; only the help desk moves a number, from a person
// who holds nothing else, with varde persons add-number --merge, ADR
// 30), a number of a scheme the person holds one of already is refused
// too (someone else's, or a replaced one, which only the help desk adds,
// with varde persons add-number, ADR 30 and 42), and every outcome is an
// audit event of type "link"
// (Details "stage": "start" for a link refused before any provider was
// asked; Details "session", once the session that started the link is
// back, the first 12 characters of its ID, as a login's event has them).
// A failed one's Reason is session_level, reauth, below_proofing,
// unknown_provider (the form named no provider that can be linked; the
// event then names none), provider_down, attempt_expired,
// session_changed, insufficient_level, identifier_taken, second_number,
// no_identifier,
// invalid_identifier (as for a login), person_blocked (the person was
// blocked since the link began), person_not_found (the session's
// person is no longer stored), store_unavailable (the store could not
// be reached, store.Unavailable: nothing was written, and the person is
// told to try again), internal (any other error of Varde's),
// outcome_unknown (the link's write got no answer, so it may be
// stored), or the provider's own reason for failing the login. The identifiers a
// link adds or raises, the end of the person's other sessions and the
// link's events are one store write (store.Persons.LinkIdentifiers):
// all of the link is stored, or none of it. That write reads the block
// too (store.ErrBlocked), so a block landing after the link looked and
// before it writes still adds no way in: person_blocked, as above. It
// reads the person's identifiers too (store.ErrSecondNumber), so of two
// links finishing at once, each of another number of one scheme, one
// adds nothing: second_number, as above. And it reads that the
// linking session is still there (store.ErrNotFound), so a removal of a
// number (ADR 44), which ends every session of the person, landing
// after the link looked, is not undone by it: session_changed, as
// above.
//
// A relying party's login request lives RequestLifetime (keep.go, ADR
// 50). The login page says until when, and so do the passkey login,
// recovery code and synthetic enrolment pages, which ask Hold
// (provider.Holder): whether the login is held, whether their way in
// could end it, and its end, from one read of the request, and a
// recovery code posted ends the login on that read (Hold.Finish) while
// its end is ahead; with script they warn before the end and extend
// it, without script the page's own button does:
//
//	POST /login/keep    JSON {"req": ID, "lang": the page's}, header
//	                    X-CSRF-Token (an HMAC of the ID keyed with the
//	                    browser's mark) → {"ends_in", "extendable",
//	                    "info": the page's sentence with the new end};
//	                    401 "login" for a
//	                    request that ended, is unknown, unbound or
//	                    another browser's; 403 "csrf"; nothing changed
//	POST /login/keep    form req, csrf (the same HMAC), back (the page,
//	                    "/login" or one of KeepPages, with its query) →
//	                    303 to back with kept=1; to back alone when
//	                    nothing was kept; 400 for another back, 403 for
//	                    another token, before anything is kept
//
// Each keep moves the end to RequestLifetime from now, never past
// MaxLoginTime from the request's creation.
package broker
