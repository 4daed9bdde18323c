package httpx

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
)

// MaxOutboundHeader bounds the header of an answer to a request the node
// makes to another server (a client's jwks_uri, a webhook or back-channel
// logout receiver, an upstream eID). Each caller bounds the body it
// reads; without this, net/http reads up to 10 MiB of header first,
// per request, from a server that chooses to send it. Real answers to
// these requests have headers of a few hundred bytes.
const MaxOutboundHeader = 64 << 10

// OutboundTransport is the transport of requests to other servers:
// net/http's default (proxy from the environment, dial and TLS handshake
// timeouts, HTTP/2), with the answer's header bounded by
// MaxOutboundHeader and TLS 1.2 at least, whatever GODEBUG says. The
// caller bounds the whole exchange (http.Client.Timeout or the request's
// context) and refuses redirects.
func OutboundTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxResponseHeaderBytes = MaxOutboundHeader
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// LoopbackHost reports whether host (a name or IP address without port
// or brackets) is localhost, in any case, or a loopback IP address: the
// hosts plain http is allowed to, as for a node's own tests and demo,
// and the only names the profile listener answers.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
