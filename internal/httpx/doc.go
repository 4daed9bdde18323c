// Package httpx holds Varde's net/http plumbing: middleware (request IDs,
// the client's address, read from X-Forwarded-For only when a trusted
// proxy sent the request (clientaddr.go), security headers, body limits,
// access logs, recovery from a handler's panic, CORS for resources that
// take no ambient credentials), language
// negotiation and the renderer for people-facing pages, times and dates
// as each page language writes them in the pages' time zone (time.go),
// the rule that names every cookie of the node (SecureName), and the
// transport of the node's requests to other servers, their answers'
// headers bounded (OutboundTransport, outbound.go). It
// knows no protocol and no policy.
package httpx
