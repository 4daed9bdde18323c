// Package provider defines what an identity provider is to Varde: the
// small Provider interface every provider implements, the optional
// abilities found by type assertion (Router, Preparer), and the
// Finisher through which a provider hands its result back to the
// broker.
//
// Implementations live in subpackages: passkeyidp is Varde's built-in
// passkey provider; upstream OpenID providers come next. Providers
// authenticate and report evidence; they never decide policy (which
// level is enough, which provider to use, who the person is across
// providers): that is the broker's.
package provider
