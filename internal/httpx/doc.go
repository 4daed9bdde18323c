// Package httpx holds Varde's net/http plumbing: middleware (request IDs,
// security headers, body limits, access logs, CORS for resources that
// take no ambient credentials), language negotiation and the renderer for
// people-facing pages. It knows no protocol and no policy.
package httpx
