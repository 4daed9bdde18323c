package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOutboundTransport: an answer whose header passes MaxOutboundHeader
// is refused before it is read whole, one just under it is taken, and a
// server that offers no TLS version above 1.1 is not talked to.
func TestOutboundTransport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header int
		ok     bool
	}{
		{"a header under the bound", MaxOutboundHeader - 1024, true},
		{"a header over the bound", MaxOutboundHeader + 1, false},
		{"a header of a MiB", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Padding", strings.Repeat("a", tc.header))
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(srv.Close)
			res, err := (&http.Client{Transport: OutboundTransport()}).Get(srv.URL)
			if err == nil {
				res.Body.Close()
			}
			if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "response headers exceeded") {
				t.Fatalf("Get with a header of %d bytes: %v, want ok %v", tc.header, err, tc.ok)
			}
		})
	}

	old := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	old.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.StartTLS()
	t.Cleanup(old.Close)
	tr := OutboundTransport()
	roots := x509.NewCertPool()
	roots.AddCert(old.Certificate())
	tr.TLSClientConfig.RootCAs = roots
	if res, err := (&http.Client{Transport: tr}).Get(old.URL); err == nil {
		res.Body.Close()
		t.Fatal("a server offering TLS 1.1 at most was talked to")
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 server: %v, want a protocol version error", err)
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"": false, "localhost.example": false, "example.com": false, "10.0.0.1": false, "0.0.0.0": false, "::": false, "[::1]": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
