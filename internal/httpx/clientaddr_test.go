package httpx

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustTrust(t testing.TB, list ...string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClientAddress: the address a request came from, by the TCP peer
// and, only from a trusted proxy, X-Forwarded-For walked from the right.
func TestClientAddress(t *testing.T) {
	trusted := mustTrust(t, "127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48")
	for _, tc := range []struct {
		name, peer string
		xff        []string // each one X-Forwarded-For field
		want       string
	}{
		{"no header", "198.51.100.7:4000", nil, "198.51.100.7"},
		{"untrusted peer, forged header", "198.51.100.7:4000", []string{"203.0.113.9"}, "198.51.100.7"},
		{"untrusted peer that the list's network does not hold", "11.0.0.1:4000", []string{"203.0.113.9"}, "11.0.0.1"},
		{"trusted peer, no header", "127.0.0.1:4000", nil, "127.0.0.1"},
		{"trusted peer, empty header", "127.0.0.1:4000", []string{""}, "127.0.0.1"},
		{"trusted peer, one address", "127.0.0.1:4000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"forged on the left of what the proxy appended", "127.0.0.1:4000", []string{"192.0.2.66, 203.0.113.9"}, "203.0.113.9"},
		{"trusted hops passed", "127.0.0.1:4000", []string{"192.0.2.66, 203.0.113.9, 10.1.2.3, 10.9.9.9"}, "203.0.113.9"},
		{"several fields are one list", "127.0.0.1:4000", []string{"192.0.2.66", "203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"every hop trusted: the first", "127.0.0.1:4000", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5"},
		{"spaces and tabs", "127.0.0.1:4000", []string{" \t203.0.113.9 \t,10.1.2.3 "}, "203.0.113.9"},
		{"empty elements skipped", "127.0.0.1:4000", []string{"203.0.113.9,, ,"}, "203.0.113.9"},
		{"IPv4 with a port", "127.0.0.1:4000", []string{"203.0.113.9:51234"}, "203.0.113.9"},
		{"IPv6", "127.0.0.1:4000", []string{"2001:db8:2::7"}, "2001:db8:2::7"},
		{"IPv6 in brackets", "127.0.0.1:4000", []string{"[2001:db8:2::7]"}, "2001:db8:2::7"},
		{"IPv6 in brackets with a port", "127.0.0.1:4000", []string{"[2001:db8:2::7]:443"}, "2001:db8:2::7"},
		{"IPv6 written long", "127.0.0.1:4000", []string{"2001:0DB8:0002:0000:0000:0000:0000:0007"}, "2001:db8:2::7"},
		{"IPv4-mapped IPv6 taken as IPv4", "127.0.0.1:4000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped trusted hop passed", "127.0.0.1:4000", []string{"203.0.113.9, ::ffff:10.1.2.3"}, "203.0.113.9"},
		{"trusted IPv6 peer", "[2001:db8:1::5]:4000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped trusted peer", "[::ffff:127.0.0.1]:4000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"untrusted IPv6 peer", "[2001:db8:2::5]:4000", []string{"203.0.113.9"}, "2001:db8:2::5"},
		{"malformed: a name", "127.0.0.1:4000", []string{"unknown"}, "127.0.0.1"},
		{"malformed: an obfuscated identifier", "127.0.0.1:4000", []string{"_hidden"}, "127.0.0.1"},
		{"malformed: half an address", "127.0.0.1:4000", []string{"203.0.113"}, "127.0.0.1"},
		{"malformed: IPv6 zone", "127.0.0.1:4000", []string{"fe80::1%eth0"}, "127.0.0.1"},
		{"malformed: a bad port", "127.0.0.1:4000", []string{"203.0.113.9:http"}, "127.0.0.1"},
		{"malformed: unclosed bracket", "127.0.0.1:4000", []string{"[2001:db8::7"}, "127.0.0.1"},
		{"malformed: a prefix", "127.0.0.1:4000", []string{"203.0.113.0/24"}, "127.0.0.1"},
		{"malformed right of the client", "127.0.0.1:4000", []string{"203.0.113.9, nonsense, 10.1.2.3"}, "127.0.0.1"},
		{"malformed left of the client is never read", "127.0.0.1:4000", []string{"nonsense, 203.0.113.9"}, "203.0.113.9"},
		{"control bytes", "127.0.0.1:4000", []string{"203.0.113.9\x00"}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := clientAddr(r, trusted)
			if got.String() != tc.want {
				t.Errorf("peer %s, X-Forwarded-For %q: %v, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

// TestClientAddressOtherHeaders: only X-Forwarded-For is read, even from
// a trusted proxy; a Forwarded or X-Real-Ip header a client sent
// through a proxy that does not manage it is ignored.
func TestClientAddressOtherHeaders(t *testing.T) {
	trusted := mustTrust(t, "127.0.0.1")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("Forwarded", "for=192.0.2.66")
	r.Header.Set("X-Real-Ip", "192.0.2.67")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if got := clientAddr(r, trusted); got.String() != "203.0.113.9" {
		t.Errorf("got %v, want X-Forwarded-For's 203.0.113.9", got)
	}
}

// TestClientAddressNoPeer: a request whose peer has no IP address (one
// served over a Unix socket, or built in a test) has no client address,
// whatever its header says.
func TestClientAddressNoPeer(t *testing.T) {
	trusted := mustTrust(t, "127.0.0.1")
	for _, peer := range []string{"", "@", "pipe", "not-an-address:1"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := clientAddr(r, trusted); got.IsValid() {
			t.Errorf("peer %q: %v, want no address", peer, got)
		}
	}
}

// TestClientAddressMiddleware: the address reaches handlers through the
// request's context, and the access log line carries it; a request the
// middleware did not see has none.
func TestClientAddressMiddleware(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen netip.Addr
	var ok bool
	h := ClientAddress(mustTrust(t, "127.0.0.1"), AccessLog(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, ok = ClientAddr(r.Context())
	})))
	r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "192.0.2.66, 203.0.113.9")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !ok || seen.String() != "203.0.113.9" {
		t.Errorf("ClientAddr: %v %v, want 203.0.113.9", seen, ok)
	}
	if line := logs.String(); !strings.Contains(line, " addr=203.0.113.9 ") {
		t.Errorf("access log %q: want addr=203.0.113.9", line)
	}
	if _, ok := ClientAddr(httptest.NewRequest(http.MethodGet, "/", nil).Context()); ok {
		t.Error("ClientAddr of a request the middleware did not see: want none")
	}
}

// TestAccessLogWithoutMiddleware: without ClientAddress in front, the
// access log carries the TCP peer's address, never a header's.
func TestAccessLogWithoutMiddleware(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "198.51.100.7:4000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	AccessLog(log, http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)
	if line := logs.String(); !strings.Contains(line, " addr=198.51.100.7 ") {
		t.Errorf("access log %q: want addr=198.51.100.7", line)
	}
}

// TestParseTrustedProxies: addresses and networks, each problem named.
func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies([]string{"127.0.0.1", " ::1 ", "10.0.0.0/8", "2001:db8::/32", "::ffff:192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1/32", "::1/128", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("[%d] %s, want %s", i, p, want[i])
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"proxy.example.no", "not an IP address or network"},
		{"10.0.0.1/8", "10.0.0.0/8"},
		{"10.0.0.0/33", "not an IP address or network"},
		{"fe80::1%eth0", "zone"},
		{"0.0.0.0/0", "every address"},
		{"::/0", "every address"},
		{"10.0.0.1:80", "not an IP address or network"},
	} {
		_, err := ParseTrustedProxies([]string{"127.0.0.1", tc.in})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "[1] ") {
			t.Errorf("%q: %v, want an error at [1] saying %q", tc.in, err, tc.want)
		}
	}
}

// FuzzForwardedFor: whatever X-Forwarded-For holds, the client address
// is the peer's or one written in the header, never a trusted proxy's
// unless every hop is one, and nothing panics.
func FuzzForwardedFor(f *testing.F) {
	for _, s := range []string{
		"", "203.0.113.9", "192.0.2.66, 203.0.113.9, 10.1.2.3", "[2001:db8::7]:443", "unknown, _x",
		"::ffff:10.0.0.1", "10.0.0.1,10.0.0.2", "1.2.3.4:", "[::1", "]:80", ",,,", "fe80::1%25eth0",
	} {
		f.Add(s)
	}
	trusted := mustTrust(f, "127.0.0.1", "10.0.0.0/8")
	peer := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, v string) {
		got := forwardedFor(peer, []string{v}, trusted)
		if !got.IsValid() {
			t.Fatalf("%q: no address", v)
		}
		if got != got.Unmap() || got.Zone() != "" {
			t.Fatalf("%q: %v not in its plain form", v, got)
		}
		if got == peer {
			return
		}
		written := false
		for _, el := range strings.Split(v, ",") {
			el = strings.Trim(el, " \t")
			if host, _, err := net.SplitHostPort(el); err == nil {
				el = host
			}
			el = strings.TrimSuffix(strings.TrimPrefix(el, "["), "]")
			if a, err := netip.ParseAddr(el); err == nil && a.Unmap() == got {
				written = true
			}
		}
		if !written {
			t.Fatalf("%q: %v is not written there", v, got)
		}
	})
}
