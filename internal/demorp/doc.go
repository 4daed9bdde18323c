// Package demorp is "Demo Bank", the relying party that `varde demo`
// serves next to Varde. It is an ordinary OpenID Connect client built on
// github.com/coreos/go-oidc and golang.org/x/oauth2, integrating the way a
// real bank would: pushed authorization requests (RFC 9126), PKCE,
// private_key_jwt client authentication, ID token verification (with its
// nonce and azp, OIDC Core §3.1.3.7; a claim it reads present as null is
// refused, not taken for one left out), RFC 9207 iss checks, a check that the level reached (acr) is at least
// the one asked for (OIDC Core §5.5.1.1), tokens bound to its key with DPoP (RFC 9449),
// retrying when Varde asks for a DPoP nonce, RP-initiated logout, and
// back-channel logout (OpenID Connect Back-Channel Logout 1.0): a logout
// token POSTed to /demo-bank/backchannel-logout ends the bank's session
// of its sid, so logging out at Varde or at another service logs the
// person out of the bank too. A logout token whose jti the bank took
// before ends nothing (it gets 200, as Varde sends a token again when it
// missed the answer), so a copy of one cannot end a later login. Logging
// out ends the bank's session first; when Varde's metadata cannot then
// be read, the page says so with 502, that Varde's session may still be
// live, and links to /demo-bank/logout/varde, which asks Varde again
// (without the ID token, gone with the bank's session, so Varde asks
// the person to confirm). It is demo code, kept small, and never
// part of a production node.
//
// Demo Bank has its own templates, style sheet (served under its path)
// and strings, in Norwegian Bokmål, English and Danish, so that it looks
// and behaves like a separate service; it shares nothing with Varde's
// pages.
// The language a person picks at Demo Bank is sent to Varde as
// ui_locales, so Varde's pages follow it. The pages name the assurance
// levels (Substantial, High) and show what the ID token said: name,
// level, provider, the pairwise subject identifier and every claim. Each
// page's title names it, and starts with "Error" when the page shows one;
// an address Demo Bank does not serve gets its own page with the way
// home, and a form's address asked for by GET leads home. What went
// wrong between Demo Bank and Varde goes to the log; the page says in
// plain words what happened and what to do. The bank reads at most
// 64 KiB of Varde's PAR and UserInfo responses; a longer one fails the
// login, and the log says it was too large. It reads at most 64 KiB of
// a login form or a logout token sent to it; a login form past that gets
// 413 and a page asking to choose a level and try again.
//
// A login begun and not yet back at the callback is kept an hour, as
// long as Varde lets a person who asks for more time keep their login
// open (ADR 50); the state cookie holds the last five begun in one browser, so a login in
// one tab still finishes after another was begun in a second. At most
// 10 000 logins are kept at once; past that, POST /login answers 503
// with Retry-After and a page asking to try again in a few minutes,
// before asking Varde for anything. A person stays logged in for an hour
// at most, and at most 10 000 are logged in at once; past that, a login
// coming back to the callback gets the same 503 and page, and no session.
// Each login that succeeds gets a new session identifier, and the
// session the browser held before ends then. An expired session is
// dropped when its cookie comes back, and every expired session and
// login goes with the first page served each minute, so they do not
// stay in memory while no one logs in.
//
// Its cookies (the login's state, the session, the language) are
// HttpOnly, SameSite=Lax and under its path, and Secure when BaseURL is
// https; the demo on localhost serves plain http, where they are not.
// The login and logout forms are refused with 403 and a page saying why
// when another site sends them (http.CrossOriginProtection, by
// Sec-Fetch-Site or Origin), so a page elsewhere cannot log the person
// out or begin a login in their browser.
package demorp
