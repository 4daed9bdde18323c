package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Upstream modes.
const (
	modeOK = iota
	modeFailing
	modeSlow
	modeWrongIssuer
	modeNoKeys
	modeHuge
)

// upstream is a fake OpenID provider on loopback that a test can switch
// to failing, slow or broken, and stop and start again on the same
// address (as if the process were killed and restarted).
type upstream struct {
	t      *testing.T
	addr   string
	issuer string
	jwks   []byte
	mode   atomic.Int32
	// hits counts requests to either document.
	hits atomic.Int32

	mu  sync.Mutex
	srv *httptest.Server
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{t: t, jwks: jwks}
	u.start("127.0.0.1:0")
	u.addr = u.srv.Listener.Addr().String()
	u.issuer = "http://" + u.addr + "/op"
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) start(addr string) {
	u.t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		u.t.Fatalf("listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /op/.well-known/openid-configuration", u.discovery)
	mux.HandleFunc("GET /op/jwks", u.keys)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	u.mu.Lock()
	u.srv = srv
	u.mu.Unlock()
}

// stop closes the listener and every connection: the provider is gone.
func (u *upstream) stop() {
	u.mu.Lock()
	srv := u.srv
	u.srv = nil
	u.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// restart serves again on the same address.
func (u *upstream) restart() { u.start(u.addr) }

// stall holds a slow response until the client gives up (at most 5 s).
func stall(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func (u *upstream) discovery(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	iss := u.issuer
	switch u.mode.Load() {
	case modeFailing:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	case modeSlow:
		stall(r)
		return
	case modeWrongIssuer:
		iss = "https://evil.example"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                   iss,
		"authorization_endpoint":   u.issuer + "/authorize",
		"token_endpoint":           u.issuer + "/token",
		"jwks_uri":                 u.issuer + "/jwks",
		"response_types_supported": []string{"code"},
	})
}

func (u *upstream) keys(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	w.Header().Set("Content-Type", "application/json")
	switch u.mode.Load() {
	case modeNoKeys:
		_, _ = w.Write([]byte(`{"keys":[]}`))
	case modeHuge:
		_, _ = w.Write([]byte(`{"keys":[{"kty":"EC"}],"pad":"` + strings.Repeat("x", maxProbeBody) + `"}`))
	default:
		_, _ = w.Write(u.jwks)
	}
}

func TestOIDCProber(t *testing.T) {
	u := newUpstream(t)
	p := OIDCProber{Issuer: u.issuer, HTTPClient: &http.Client{}, Timeout: 200 * time.Millisecond}
	tests := []struct {
		name string
		mode int32
		want string // failure reason; "" for success
	}{
		{"healthy", modeOK, ""},
		{"failing", modeFailing, FailureStatus},
		{"slow", modeSlow, FailureTimeout},
		{"wrong issuer", modeWrongIssuer, FailureInvalid},
		{"no keys", modeNoKeys, FailureInvalid},
		{"oversized JWKS", modeHuge, FailureInvalid},
		{"healthy again", modeOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u.mode.Store(tt.mode)
			start := time.Now()
			err := p.Probe(t.Context())
			if got := FailureReason(err); got != tt.want {
				t.Errorf("Probe: reason %q (%v), want %q", got, err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Probe took %v despite its 200ms timeout", d)
			}
		})
	}

	t.Run("trailing slash in the issuer", func(t *testing.T) {
		u.mode.Store(modeOK)
		// §4.3: the document's issuer must be identical to the configured
		// one, so "…/op/" fails against a provider whose issuer is "…/op".
		err := OIDCProber{Issuer: u.issuer + "/", Timeout: time.Second}.Probe(t.Context())
		if FailureReason(err) != FailureInvalid {
			t.Errorf("Probe: %v, want an invalid issuer", err)
		}
	})

	t.Run("down", func(t *testing.T) {
		u.stop()
		err := p.Probe(t.Context())
		if got := FailureReason(err); got != FailureConnect {
			t.Errorf("Probe of a closed listener: reason %q (%v), want %q", got, err, FailureConnect)
		}
	})

	t.Run("caller's deadline", func(t *testing.T) {
		u.restart()
		u.mode.Store(modeSlow)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		err := OIDCProber{Issuer: u.issuer}.Probe(ctx)
		if got := FailureReason(err); got != FailureTimeout {
			t.Errorf("Probe: reason %q (%v), want %q", got, err, FailureTimeout)
		}
	})
}

func TestFailureReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"probe error", &ProbeError{FailureStatus, errors.New("503")}, FailureStatus},
		{"wrapped probe error", errors.Join(errors.New("x"), &ProbeError{FailureInvalid, errors.New("y")}), FailureInvalid},
		{"deadline", context.DeadlineExceeded, FailureTimeout},
		{"net error", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, FailureConnect},
		{"other", errors.New("boom"), FailureOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailureReason(tt.err); got != tt.want {
				t.Errorf("FailureReason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestParseDiscovery(t *testing.T) {
	const iss = "https://id.example/op"
	doc := func(mod func(m map[string]any)) []byte {
		m := map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
			"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks"}
		mod(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"valid", doc(func(map[string]any) {}), true},
		{"not JSON", []byte("<html>"), false},
		{"array", []byte("[]"), false},
		{"other issuer", doc(func(m map[string]any) { m["issuer"] = "https://id.example/op/" }), false},
		{"no jwks_uri", doc(func(m map[string]any) { delete(m, "jwks_uri") }), false},
		{"relative jwks_uri", doc(func(m map[string]any) { m["jwks_uri"] = "/jwks" }), false},
		{"ftp jwks_uri", doc(func(m map[string]any) { m["jwks_uri"] = "ftp://id.example/jwks" }), false},
		{"no token endpoint", doc(func(m map[string]any) { delete(m, "token_endpoint") }), false},
		{"issuer not a string", doc(func(m map[string]any) { m["issuer"] = 7 }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDiscovery(tt.body, iss)
			if (err == nil) != tt.ok {
				t.Fatalf("parseDiscovery: %q, %v; want ok=%v", got, err, tt.ok)
			}
		})
	}
}

func TestCheckJWKS(t *testing.T) {
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"one key", `{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}`, true},
		{"no keys member", `{}`, false},
		{"empty", `{"keys":[]}`, false},
		{"key without kty", `{"keys":[{"kty":"EC"},{"crv":"P-256"}]}`, false},
		{"null", `null`, false},
		{"trailing garbage", `{"keys":[{"kty":"EC"}]}x`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkJWKS([]byte(tt.body)); (err == nil) != tt.ok {
				t.Errorf("checkJWKS(%s) = %v, want ok=%v", tt.body, err, tt.ok)
			}
		})
	}
}

func TestDiscoveryURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://id.example":      "https://id.example/.well-known/openid-configuration",
		"https://id.example/":     "https://id.example/.well-known/openid-configuration",
		"https://id.example/op/":  "https://id.example/op/.well-known/openid-configuration",
		"https://id.example/a/op": "https://id.example/a/op/.well-known/openid-configuration",
	} {
		if got := DiscoveryURL(in); got != want {
			t.Errorf("DiscoveryURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseDiscovery: an upstream's discovery document is untrusted
// input. Whatever it holds, parsing does not panic, and what it accepts
// names the issuer and an absolute http(s) jwks_uri.
func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://id.example","authorization_endpoint":"https://id.example/a","token_endpoint":"https://id.example/t","jwks_uri":"https://id.example/jwks"}`), "https://id.example")
	f.Add([]byte(`{"issuer":"x","jwks_uri":"http://[::1]:80/k"}`), "x")
	f.Add([]byte(`{"ISSUER":"x","jwks_uri":"//host/k"}`), "x")
	f.Fuzz(func(t *testing.T, body []byte, issuer string) {
		u, err := parseDiscovery(body, issuer)
		if err != nil {
			return
		}
		if checkHTTPURL(u) != nil {
			t.Errorf("accepted jwks_uri %q", u)
		}
		if !json.Valid(body) {
			t.Errorf("accepted invalid JSON %q", body)
		}
	})
}

// FuzzCheckJWKS: a JWK set from an upstream is untrusted input.
func FuzzCheckJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}`))
	f.Add([]byte(`{"keys":[{"kty":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJWKS(body) == nil && !json.Valid(body) {
			t.Errorf("accepted invalid JSON %q", body)
		}
	})
}
