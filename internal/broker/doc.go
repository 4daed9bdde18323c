// Package broker is Varde's login policy: which providers a relying
// party's request may use, handing the person to the chosen provider,
// turning a provider's result into a person and a session at the level
// actually reached, and recording every decision in the audit log.
//
// The OpenID endpoints (package oidc) hand a login over to the broker by
// redirecting to /login?req=ID and take it back at ResumeURL; providers
// report to the broker through provider.Finisher. Upstream providers,
// health-based routing and failover extend this package.
package broker
