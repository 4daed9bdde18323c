package health

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// upstream is a fake OpenID provider on loopback that a test can stop
// and start again on the same address (as if the process were killed
// and restarted).
type upstream struct {
	t      *testing.T
	addr   string
	issuer string
	jwks   []byte

	mu  sync.Mutex
	srv *httptest.Server
}

// probe GETs the upstream's discovery document and JWKS, as the
// upstream providers' own probes do (package oidcup).
func (u *upstream) probe(ctx context.Context) error {
	for _, p := range []string{"/.well-known/openid-configuration", "/jwks"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.issuer+p, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &ProbeError{FailureStatus, fmt.Errorf("GET %s: status %d", p, resp.StatusCode)}
		}
	}
	return nil
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

func (u *upstream) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                   u.issuer,
		"authorization_endpoint":   u.issuer + "/authorize",
		"token_endpoint":           u.issuer + "/token",
		"jwks_uri":                 u.issuer + "/jwks",
		"response_types_supported": []string{"code"},
	})
}

func (u *upstream) keys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(u.jwks)
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
