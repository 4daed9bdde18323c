// Package providersim runs simulated national identity providers ("Demo
// BankID", "Demo MinID") for the demo and for resilience tests: real
// OpenID Providers — Varde's own endpoints (package oidc) over their own
// store, keys and sessions — whose login is a simulated eID page, and
// whose behaviour an operator or a test can switch at run time to down,
// slow or failing to watch failover.
//
// A sim is not Varde policy: it asserts whatever person is picked, at
// the level it is configured for. Every person is synthetic (Norwegian
// numbers with 80 added to the month); a typed number that is not
// synthetic is refused.
//
// # Persons
//
// DefaultPersons is a fixed list (names, birth dates, kinds of number)
// whose individual numbers come from identity.SyntheticNO over a
// ChaCha8 stream keyed by DefaultSeed, so every sim, in any process,
// asserts the same identifier for the same person; the broker then
// links logins through either sim to one person. ID tokens carry
// national_id {"scheme": "no:fnr"|"no:dnr", "value": …}, name,
// given_name, family_name and birthdate to clients registered for them
// (Client.Claims, default all of them, as a national eID gives), acr the
// sim's level (ADR 2) and amr by level.
//
// # Issuer listener
//
//	/.well-known/openid-configuration, /jwks, /par, /authorize, /token, …
//	                        package oidc, unchanged
//	GET  /sim/login?req=ID  the simulated login page (the OpenID
//	                        Provider's LoginURL): pick a person or type a
//	                        synthetic number
//	POST /sim/login         form: req=ID and person=<Person.ID> or
//	                        number=<11 digits>; starts the sim's session at
//	                        its level and answers 303 to
//	                        /authorize/resume?req=ID. 400 with the page for
//	                        a bad choice, 403 if the request's acr_values
//	                        ask for more than the sim's level
//	                        The page's Cancel is a form posted to the
//	                        sim's own /authorize/cancel, which ends the
//	                        login with error=access_denied at the client's
//	                        redirect URI (RFC 6749 §4.1.2.1), as a real
//	                        eID's cancel does
//	GET  /sim/persons       the persons as JSON, for load generators
//	GET  /                  what the sim is and its persons
//
// A program drives a login by following the authorization request to
// the 303 Location "/sim/login?req=ID", posting req and number (or
// person) there with no Origin header, and following the redirects
// with a cookie jar. Browsers' posts must come from the sim's own
// origin. The session cookie is "varde_sim_<ID>", not Varde's
// "varde_session": cookies do not separate ports, and a sim on
// localhost must not log the person out of a Varde on localhost. It is
// Secure, as the admin cookie is, when the sim was reached over https.
//
// # Client keys
//
// A client with private_key_jwt is registered with its JWK set
// (Client.JWKS, as an eID that holds a client's keys in its
// registration) or with a jwks_uri (Client.JWKSURI), whose keys the sim
// fetches and keeps for Config.ClientKeysCache: by default 5 minutes,
// and fetched again at most every 30 seconds for a kid it lacks; given,
// that long in both cases, as an eID that caches its clients' keys for
// hours does (varde provider-sim --client-jwks-cache). Rotating Varde's
// client key is tested against both (ADR 56).
//
// # Faults
//
//	ok       normal
//	down     the issuer listener is closed and open connections dropped:
//	         connections are refused; switching back listens on the same
//	         address again
//	slow     every response of the issuer listener waits Fault.Delay first
//	         (default Config.SlowDelay, 3 s; at most 60 s)
//	failing  discovery, the JWKS and the sim's pages answer; the
//	         authorization endpoint redirects straight back with
//	         error=server_error and iss (RFC 6749 §4.1.2.1, RFC 9207) when
//	         the client and redirect URI are registered; PAR, token and
//	         userinfo answer 500 {"error":"server_error"}. Probes see the
//	         provider up; only real logins fail, mid-flow included.
//
// # Admin listener
//
// A second loopback listener, which stays up whatever the fault:
//
//	GET  /fault        {"mode":"slow","delay":"3s"}    Authorization: Bearer TOKEN
//	POST /fault        body {"mode":"down"} or {"mode":"slow","delay":"2s"};
//	                   answers the fault now in force; 400 invalid_request,
//	                   401 invalid_token, 500 server_error if the port
//	                   could not be taken again
//	GET  /?token=TOKEN the admin page: keeps the token in an HttpOnly,
//	                   SameSite=Strict cookie, Secure when the page was
//	                   reached over https (TLS, or a TLS proxy's
//	                   X-Forwarded-Proto or a form's Origin), and shows a
//	                   button per mode; its forms must come from its own
//	                   origin
//
// The token is random at start unless Config.AdminToken sets it.
// AdminClient is the API's client; Ready and WriteReadyFile describe a
// sim to other processes (`varde provider-sim --ready-file`).
//
// # Elsewhere
//
// The caller opens the Store (SQLite in the command) and closes it;
// cmd/varde wires `varde provider-sim`, `varde provider fault` and the
// demo's two sims. Varde's side of the federation is package oidcup.
package providersim
