package oauth2

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// nonceKey is the nonce key of the tests.
var nonceKey = []byte("a key every node holds, 32 bytes")

// TestDPoPNonces: a nonce is the MAC of its window's number, the same on
// every node with the key; it is handed out for one window and accepted
// from the window before it through the one after.
func TestDPoPNonces(t *testing.T) {
	n := &DPoPNonces{Key: nonceKey}
	// t0 begins a window: 12:00 UTC is a whole number of 5 minutes
	// since the epoch.
	if t0.Unix()%300 != 0 {
		t.Fatalf("t0 %v does not begin a window", t0)
	}
	issued := n.Nonce(t0.Add(2 * time.Minute))

	// The format every node must agree on: HMAC-SHA256 of the window's
	// number, 8 bytes big-endian, base64url without padding.
	m := hmac.New(sha256.New, nonceKey)
	_ = binary.Write(m, binary.BigEndian, t0.Unix()/300)
	if want := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); issued != want {
		t.Errorf("nonce = %s, want %s", issued, want)
	}
	if again := (&DPoPNonces{Key: append([]byte(nil), nonceKey...)}).Nonce(t0); again != issued {
		t.Errorf("another node with the same key made %s in the same window, want %s", again, issued)
	}
	if other := (&DPoPNonces{Key: []byte(strings.Repeat("k", 32))}).Nonce(t0); other == issued {
		t.Error("another key made the same nonce")
	}
	if n.Nonce(t0.Add(5*time.Minute-time.Nanosecond)) != issued || n.Nonce(t0.Add(5*time.Minute)) == issued {
		t.Error("the nonce does not change exactly at the end of its window")
	}

	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"two windows early", t0.Add(-5*time.Minute - time.Second), false},
		{"a window early, at a node whose clock is behind", t0.Add(-time.Second), true},
		{"at the start of its window", t0, true},
		{"in the next window", t0.Add(7 * time.Minute), true},
		{"at the end of the next window", t0.Add(10*time.Minute - time.Second), true},
		{"two windows later", t0.Add(10 * time.Minute), false},
		{"a day later", t0.Add(24 * time.Hour), false},
	}
	for _, tt := range tests {
		if got := n.Valid(issued, tt.at); got != tt.want {
			t.Errorf("%s: Valid = %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, s := range []string{"", issued + "=", issued[:42], issued + "A", strings.ToUpper(issued), "n-0S6_WzA2Mj"} {
		if n.Valid(s, t0) {
			t.Errorf("Valid(%q) = true", s)
		}
	}

	// Window sets the length; a nonce lives between one and two.
	short := &DPoPNonces{Key: nonceKey, Window: time.Minute}
	s := short.Nonce(t0)
	if short.Nonce(t0.Add(time.Minute)) == s || !short.Valid(s, t0.Add(119*time.Second)) || short.Valid(s, t0.Add(2*time.Minute)) {
		t.Error("a one-minute window does not rotate every minute")
	}
	if before := time.Unix(-1, 0); n.Nonce(before) == n.Nonce(time.Unix(0, 0)) {
		t.Error("the second before the epoch is in the epoch's window")
	}
}

// TestDPoPNonceRequired: with Nonces set, Verify takes only a proof
// whose nonce this server provided recently (RFC 9449 §4.3 item 10,
// §8, §9); a missing or stale nonce is use_dpop_nonce, so the client
// retries, and uses up no jti.
func TestDPoPNonceRequired(t *testing.T) {
	f := newDPoPFixture(t)
	f.v.Nonces = &DPoPNonces{Key: nonceKey}
	now := f.clock.Now()
	nonce := func(at time.Time) func(h, c map[string]any) {
		n := f.v.Nonces.Nonce(at)
		return func(h, c map[string]any) { c["nonce"] = n }
	}
	set := func(name string, v any) func(h, c map[string]any) {
		return func(h, c map[string]any) { c[name] = v }
	}
	foreign := (&DPoPNonces{Key: []byte(strings.Repeat("k", 32))}).Nonce(now)
	tests := []struct {
		name string
		mod  func(h, c map[string]any)
		want string
	}{
		{"current nonce", nonce(now), "accepted"},
		{"nonce of the previous window", nonce(now.Add(-5 * time.Minute)), "accepted"},
		{"nonce of the next window", nonce(now.Add(5 * time.Minute)), "accepted"},
		{"no nonce", nil, "use_dpop_nonce: DPoP proof has no nonce"},
		{"nonce two windows old", nonce(now.Add(-10 * time.Minute)), "use_dpop_nonce: DPoP proof nonce is not one this server provided recently"},
		{"nonce of another server", set("nonce", foreign), "use_dpop_nonce: DPoP proof nonce is not one"},
		{"empty nonce", set("nonce", ""), "use_dpop_nonce: DPoP proof nonce is not one"},
		{"nonce not a string", set("nonce", 7), "use_dpop_nonce: DPoP proof nonce is not one"},
		{"nonce made up by the client", set("nonce", "n-0S6_WzA2Mj"), "use_dpop_nonce"},
		// The checks before item 10 come first.
		{"good nonce, wrong htm", func(h, c map[string]any) { nonce(now)(h, c); c["htm"] = "GET" }, "invalid_dpop_proof: DPoP proof htm does not match"},
		{"good nonce, iat too old", func(h, c map[string]any) { nonce(now)(h, c); c["iat"] = now.Add(-time.Hour).Unix() }, "invalid_dpop_proof: DPoP proof is too old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := outcome(f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, tt.mod)), tokenURL, ""))
			if !strings.Contains(got, tt.want) {
				t.Errorf("Verify: %s, want %q", got, tt.want)
			}
		})
	}

	t.Run("refused for its nonce, its jti is still unused", func(t *testing.T) {
		jti := func(h, c map[string]any) { c["jti"] = "retried" }
		if got := outcome(f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, jti)), tokenURL, "")); !strings.HasPrefix(got, CodeUseDPoPNonce) {
			t.Fatalf("without a nonce: %s", got)
		}
		withNonce := func(h, c map[string]any) { jti(h, c); nonce(f.clock.Now())(h, c) }
		if got := outcome(f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, withNonce)), tokenURL, "")); got != "accepted" {
			t.Fatalf("retried with the nonce: %s", got)
		}
	})

	t.Run("a nonce expires", func(t *testing.T) {
		f := newDPoPFixture(t)
		f.v.Nonces = &DPoPNonces{Key: nonceKey}
		held := nonce(f.clock.Now())
		f.clock.Add(9 * time.Minute)
		if got := outcome(f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, held)), tokenURL, "")); got != "accepted" {
			t.Fatalf("9 minutes on: %s", got)
		}
		f.clock.Add(time.Minute)
		if got := outcome(f.v.Verify(dpopRequest("POST", f.proof(t, jose.ES256, held)), tokenURL, "")); !strings.HasPrefix(got, CodeUseDPoPNonce) {
			t.Fatalf("10 minutes on: %s, want use_dpop_nonce", got)
		}
	})
}

// TestDPoPCheckNonce: CheckNonce asks for a nonce without checking the
// rest of the proof, and never for one when the proof has a good nonce,
// when there is no proof, or when nonces are not required.
func TestDPoPCheckNonce(t *testing.T) {
	f := newDPoPFixture(t)
	f.v.Nonces = &DPoPNonces{Key: nonceKey}
	now := f.clock.Now()
	good := func(h, c map[string]any) { c["nonce"] = f.v.Nonces.Nonce(now) }
	stale := func(h, c map[string]any) { c["nonce"] = f.v.Nonces.Nonce(now.Add(-time.Hour)) }
	unrequired := &DPoPVerifier{Replay: f.v.Replay, Now: f.clock.Now}
	tests := []struct {
		name string
		v    *DPoPVerifier
		req  *http.Request
		want string
	}{
		{"no DPoP header", f.v, dpopRequest("POST"), ""},
		{"no nonce", f.v, dpopRequest("POST", f.proof(t, jose.ES256, nil)), CodeUseDPoPNonce},
		{"stale nonce", f.v, dpopRequest("POST", f.proof(t, jose.ES256, stale)), CodeUseDPoPNonce},
		{"current nonce", f.v, dpopRequest("POST", f.proof(t, jose.ES256, good)), ""},
		{"current nonce, signature not checked here", f.v, dpopRequest("POST", part(f.proof(t, jose.ES256, good), 2, "c2ln")), ""},
		{"no nonce, not required", unrequired, dpopRequest("POST", f.proof(t, jose.ES256, nil)), ""},
		// Verify refuses these, with reasons CheckNonce does not look for.
		{"not a JWT", f.v, dpopRequest("POST", "not a proof"), ""},
		{"payload not JSON", f.v, dpopRequest("POST", "e30.bm90IGpzb24.c2ln"), ""},
		{"two DPoP headers", f.v, dpopRequest("POST", f.proof(t, jose.ES256, nil), f.proof(t, jose.ES256, nil)), ""},
		{"oversized header", f.v, dpopRequest("POST", "e30."+base64.RawURLEncoding.EncodeToString([]byte(`{"x":"`+strings.Repeat("a", 8<<10)+`"}`))+".c2ln"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.CheckNonce(tt.req)
			var got string
			var e *Error
			if errors.As(err, &e) {
				got = e.Code
			} else if err != nil {
				got = "internal: " + err.Error()
			}
			if got != tt.want {
				t.Errorf("CheckNonce = %v, want %q", err, tt.want)
			}
		})
	}
	// It remembers nothing: the proof it passed is still good once.
	p := f.proof(t, jose.ES256, good)
	if err := f.v.CheckNonce(dpopRequest("POST", p)); err != nil {
		t.Fatal(err)
	}
	if got := outcome(f.v.Verify(dpopRequest("POST", p), tokenURL, "")); got != "accepted" {
		t.Errorf("Verify after CheckNonce: %s", got)
	}
}

// FuzzDPoPCheckNonce feeds arbitrary DPoP header values to CheckNonce,
// which reads them before anything else does. It must never panic, and
// must answer nil or use_dpop_nonce.
func FuzzDPoPCheckNonce(f *testing.F) {
	fx := newDPoPFixture(f)
	fx.v.Nonces = &DPoPNonces{Key: nonceKey}
	f.Add(fx.proof(f, jose.ES256, nil))
	f.Add(fx.proof(f, jose.ES256, func(h, c map[string]any) { c["nonce"] = fx.v.Nonces.Nonce(t0) }))
	f.Add("e30.eyJub25jZSI6bnVsbH0.")
	f.Add("e30.W10.")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodPost, tokenURL, nil)
		r.Header.Set("DPoP", raw)
		err := fx.v.CheckNonce(r)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Code != CodeUseDPoPNonce) {
			t.Fatalf("CheckNonce(%q) = %v; want nil or use_dpop_nonce", raw, err)
		}
	})
}
