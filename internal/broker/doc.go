// Package broker is Varde's login policy: which providers a relying
// party's request may use, handing the person to the chosen provider,
// turning a provider's result into a person and a session at the level
// actually reached, and recording every decision in the audit log.
//
// The OpenID endpoints (package oidc) hand a login over to the broker by
// redirecting to /login?req=ID and take it back at ResumeURL; providers
// report to the broker through provider.Finisher. Upstream providers,
// health-based routing and failover extend this package.
//
// Linking (link.go) lets a person who is logged in add another provider
// whose identifiers they hold, so that logging in through it reaches the
// same person and the same pairwise subs:
//
//	POST /account/link            form: csrf (from LinkOptions), provider
//	                              → the provider's login, attempt "link:…"
//	GET  /account/link/refused    ?why=taken|session|level|expired|
//	                              cancelled|failed|unavailable: a plain page
//
// The account page (package passkeyidp) lists LinkOptions. Both logins
// must reach LinkLevel, the link finishes only in the session that
// started it, an identifier held by another person is refused (persons
// are never joined), and every outcome is an audit event of type "link".
package broker
