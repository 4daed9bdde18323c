package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

const clientAddrKey ctxKey = 1

// headerForwardedFor is the one header a node reads the client's address
// from, and only when a trusted proxy sent the request (ADR 33). The
// RFC 7239 Forwarded header and X-Real-Ip are not read: a proxy that
// sets X-Forwarded-For passes them on as the client wrote them, so
// reading them too would let a client name its own address.
const headerForwardedFor = "X-Forwarded-For"

// ClientAddr returns the address of the client a request came from, as
// ClientAddress found it, and false for a request it did not see or
// whose peer has no IP address (a Unix socket).
func ClientAddr(ctx context.Context) (netip.Addr, bool) {
	a, ok := ctx.Value(clientAddrKey).(netip.Addr)
	return a, ok && a.IsValid()
}

// ClientAddress puts in each request's context (ClientAddr) the address
// of the client it came from. That is the TCP peer's, unless the peer is
// in trusted, the proxies in front of the node: then X-Forwarded-For is
// read from the right, passing over the addresses in trusted, and the
// first address not in it is the client's (every address in it: the
// leftmost). What a client writes into the header itself stays to the
// left of what its proxy appends, so it is never reached. A header
// whose part that is read is not a list of IP addresses (with a port or
// in brackets, as some proxies write them) gives the peer's address: a
// bad header never fails a request. r.RemoteAddr stays the peer's.
func ClientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := clientAddr(r, trusted)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey, a)))
	})
}

// clientAddr is the client's address of r (see ClientAddress); not valid
// if the peer has no IP address.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !contains(trusted, peer) {
		return peer
	}
	return forwardedFor(peer, r.Header.Values(headerForwardedFor), trusted)
}

// peerAddr is the IP address of a net/http RemoteAddr (host:port), in
// its plain form (IPv4 for an IPv4-mapped IPv6 address, no zone); not
// valid if it has none.
func peerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// forwardedFor reads the X-Forwarded-For fields values, sent by peer, a
// trusted proxy, as one comma-separated list (RFC 9110 §5.3) from its
// end: the first address not in trusted, or the leftmost if all are,
// or peer if there is none or an element read is not an address.
func forwardedFor(peer netip.Addr, values []string, trusted []netip.Prefix) netip.Addr {
	client := peer
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			el := list
			if k := strings.LastIndexByte(list, ','); k >= 0 {
				el, list = list[k+1:], list[:k]
			} else {
				list = ""
			}
			el = strings.Trim(el, " \t")
			if el == "" {
				continue // empty list elements are allowed (RFC 9110 §5.6.1)
			}
			a, ok := parseHop(el)
			if !ok {
				return peer
			}
			if !contains(trusted, a) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For element: an IP address, IPv4 with a
// port, or IPv6 in brackets with or without a port. No zone.
func parseHop(el string) (netip.Addr, bool) {
	host, port := el, ""
	if rest, ok := strings.CutPrefix(el, "["); ok {
		var found bool
		host, port, found = strings.Cut(rest, "]")
		if !found {
			return netip.Addr{}, false
		}
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return netip.Addr{}, false
			}
			port = p
			if port == "" {
				return netip.Addr{}, false
			}
		}
	} else if strings.Count(el, ":") == 1 {
		host, port, _ = strings.Cut(el, ":")
		if port == "" {
			return netip.Addr{}, false
		}
	}
	if port != "" && !validPort(port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort reports whether p is a decimal port number, 0 to 65535.
func validPort(p string) bool {
	if len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxy reads one trusted proxy, an IP address ("10.0.0.5",
// "::1") or a network in CIDR notation ("10.0.0.0/8",
// "2001:db8::/32"), as the prefix ClientAddress takes. An IPv4-mapped
// IPv6 address or network is taken as the IPv4 one, as peers are. It
// refuses a network written with host bits (10.0.0.1/8, naming the
// network meant), a zone, and a network of every address, which would
// let any client name its own address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, errors.New("empty: want an IP address or a network such as 10.0.0.0/8")
	}
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q has a zone; give the address without it", s)
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/8)", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has bits set past its length; the network is %s", s, p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/8)", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q is every address: any client could name its own; list the proxies in front of the node", s)
	}
	return p, nil
}

// ParseTrustedProxies reads each of list with ParseTrustedProxy; its
// error names every entry that is not one by its index ("[1] ...").
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	var errs []error
	for i, s := range list {
		p, err := ParseTrustedProxy(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("[%d] %w", i, err))
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
