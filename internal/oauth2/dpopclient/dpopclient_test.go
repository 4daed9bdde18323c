package dpopclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	xoauth2 "golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store/flowmem"
)

// t0 is the time of every proof and of every check of one.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func now() time.Time { return t0 }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newProver(t testing.TB, key *ecdsa.PrivateKey) *Prover {
	t.Helper()
	p, err := New(key, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// thumbprint is the JWK SHA-256 thumbprint of key's public key (RFC
// 7638), as the server binds tokens to it.
func thumbprint(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	b, err := (&jose.JSONWebKey{Key: &key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newVerifier is Varde's own check of proofs (package oauth2), with
// nonces required: the independent judge of what a Prover makes.
func newVerifier() *oauth2.DPoPVerifier {
	return &oauth2.DPoPVerifier{
		Replay: flowmem.New(flowmem.Options{Since: t0.Add(-time.Hour), Now: now}),
		Nonces: &oauth2.DPoPNonces{Key: []byte(strings.Repeat("k", oauth2.MinDPoPNonceKeySize))},
		Now:    now,
	}
}

// answer is a server's answer that hands out nonce.
func answer(nonce string) *http.Response {
	h := http.Header{}
	if nonce != "" {
		h.Set(oauth2.DPoPNonceHeader, nonce)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h}
}

func requestWith(method, target, proof string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("DPoP", proof)
	return r
}

// TestProofVerifies: Varde's verifier takes a Prover's proofs, for the
// method and URL they were made for, with the access token they name,
// and binds them to the key's thumbprint (RFC 9449 §4.3, §6.1); without
// the nonce the server handed out, it asks for one (§8).
func TestProofVerifies(t *testing.T) {
	key := newKey(t)
	v := newVerifier()
	p := newProver(t, key)

	proof, err := p.Proof(http.MethodPost, "https://id.example/token", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(requestWith(http.MethodPost, "https://id.example/token", proof), "https://id.example/token", ""); oauth2.AsError(err).Code != oauth2.CodeUseDPoPNonce {
		t.Fatalf("proof without a nonce: %v, want use_dpop_nonce", err)
	}
	p.KeepNonce(answer(v.Nonces.Nonce(t0)))

	for _, tc := range []struct {
		name, method, target, endpoint, accessToken string
	}{
		{"token endpoint", http.MethodPost, "https://id.example/token", "https://id.example/token", ""},
		{"PAR endpoint", http.MethodPost, "https://id.example/par", "https://id.example/par", ""},
		{"protected resource with ath", http.MethodGet, "https://id.example/userinfo", "https://id.example/userinfo", "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"},
		{"query and fragment left out", http.MethodGet, "https://id.example/userinfo?schema=openid#x", "https://id.example/userinfo", "at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof, err := p.Proof(tc.method, tc.target, tc.accessToken)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(requestWith(tc.method, tc.target, proof), tc.endpoint, tc.accessToken)
			if err != nil || got == nil {
				t.Fatalf("Verify: %v, %v", got, err)
			}
			if want := thumbprint(t, key); got.JKT != want {
				t.Errorf("JKT %s, want %s", got.JKT, want)
			}
			if !got.IssuedAt.Equal(t0) {
				t.Errorf("iat %v, want %v", got.IssuedAt, t0)
			}
		})
	}
}

// TestProofRefused: the verifier refuses a Prover's proof used for
// another method, URL or access token than it was made for, so the
// acceptance above means the claims say what they should.
func TestProofRefused(t *testing.T) {
	v := newVerifier()
	p := newProver(t, newKey(t))
	p.KeepNonce(answer(v.Nonces.Nonce(t0)))
	for _, tc := range []struct {
		name, method, endpoint, accessToken string
	}{
		{"another method", http.MethodPost, "https://id.example/userinfo", "at"},
		{"another endpoint", http.MethodGet, "https://id.example/token", "at"},
		{"another access token", http.MethodGet, "https://id.example/userinfo", "another"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proof, err := p.Proof(http.MethodGet, "https://id.example/userinfo", "at")
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(requestWith(tc.method, tc.endpoint, proof), tc.endpoint, tc.accessToken)
			if oauth2.AsError(err).Code != oauth2.CodeInvalidDPoPProof {
				t.Errorf("Verify: %v, want invalid_dpop_proof", err)
			}
		})
	}
}

// decode returns the header and claims of a compact JWS, unchecked.
func decode(t *testing.T, jws string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", jws)
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			t.Fatalf("segment %d of %q is not base64url JSON", i, jws)
		}
	}
	return header, claims
}

// TestProofClaims: a proof's header and claims as RFC 9449 §4.2 writes
// them, ath by the specification's own example (§7.1), and the nonce of
// the last answer that carried one (§8.2).
func TestProofClaims(t *testing.T) {
	p := newProver(t, newKey(t))
	const token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU" // RFC 9449 §7.1
	proof, err := p.Proof(http.MethodGet, "https://resource.example.org/protectedresource?x=1", token)
	if err != nil {
		t.Fatal(err)
	}
	h, c := decode(t, proof)
	jwk, _ := h["jwk"].(map[string]any)
	if h["typ"] != "dpop+jwt" || h["alg"] != "ES256" || jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk["d"] != nil {
		t.Errorf("header %v, want typ dpop+jwt, alg ES256 and a public P-256 jwk", h)
	}
	want := map[string]any{
		"htm": "GET", "htu": "https://resource.example.org/protectedresource", "iat": float64(t0.Unix()),
		"ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo",
	}
	for k, w := range want {
		if c[k] != w {
			t.Errorf("%s = %v, want %v", k, c[k], w)
		}
	}
	jti, _ := c["jti"].(string)
	if b, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(b) < 12 {
		t.Errorf("jti %q: want at least 96 random bits (§4.2)", jti)
	}
	if _, ok := c["nonce"]; ok {
		t.Errorf("nonce %v before any was handed out", c["nonce"])
	}

	other, _ := p.Proof(http.MethodGet, "https://resource.example.org/protectedresource", "")
	_, oc := decode(t, other)
	if oc["jti"] == c["jti"] {
		t.Error("two proofs share a jti")
	}
	if _, ok := oc["ath"]; ok {
		t.Error("a proof without an access token has ath")
	}

	for _, step := range []struct {
		answer *http.Response
		want   string
	}{
		{answer("n1"), "n1"},
		{answer(""), "n1"}, // an answer without a nonce keeps the last
		{answer("n2"), "n2"},
	} {
		p.KeepNonce(step.answer)
		proof, _ := p.Proof(http.MethodPost, "https://id.example/token", "")
		if _, c := decode(t, proof); c["nonce"] != step.want {
			t.Errorf("after an answer with DPoP-Nonce %q: nonce %v, want %s", step.answer.Header.Get("DPoP-Nonce"), c["nonce"], step.want)
		}
	}
}

// issuer is a token endpoint and a protected resource that check proofs
// with Varde's verifier and require nonces, handing out the current one
// with every answer as Varde does.
type issuer struct {
	srv *httptest.Server
	v   *oauth2.DPoPVerifier

	mu sync.Mutex
	// proofs are the DPoP headers that came, in order, by path.
	proofs map[string][]string
	// jkts are the thumbprints of the proofs the token endpoint took.
	jkts []string
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{v: newVerifier(), proofs: map[string][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		is.record(r)
		w.Header().Set(oauth2.DPoPNonceHeader, is.v.Nonces.Nonce(t0))
		proof, err := is.v.Verify(r, is.srv.URL+"/token", "")
		if err == nil && proof == nil {
			err = oauth2.InvalidDPoPProof("a proof is required")
		}
		if err != nil {
			oauth2.WriteError(w, err)
			return
		}
		is.mu.Lock()
		is.jkts = append(is.jkts, proof.JKT)
		is.mu.Unlock()
		oauth2.WriteJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 600})
	})
	mux.HandleFunc("POST /other", func(w http.ResponseWriter, r *http.Request) {
		is.record(r)
		w.Header().Set(oauth2.DPoPNonceHeader, "nonce-of-another-endpoint")
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		is.record(r)
		w.Header().Set(oauth2.DPoPNonceHeader, is.v.Nonces.Nonce(t0))
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		if !ok {
			oauth2.WriteDPoPError(w, oauth2.InvalidToken("DPoP scheme required"))
			return
		}
		if _, err := is.v.Verify(r, is.srv.URL+"/userinfo", token); err != nil {
			oauth2.WriteDPoPError(w, err)
			return
		}
		oauth2.WriteJSON(w, http.StatusOK, map[string]string{"sub": "s1"})
	})
	mux.HandleFunc("GET /always-asks", func(w http.ResponseWriter, r *http.Request) {
		is.record(r)
		w.Header().Set(oauth2.DPoPNonceHeader, fmt.Sprintf("nonce-%d", len(is.proofsAt(r.URL.Path))))
		oauth2.WriteDPoPError(w, oauth2.UseDPoPNonce("a nonce is required"))
	})
	mux.HandleFunc("GET /refuses", func(w http.ResponseWriter, r *http.Request) {
		is.record(r)
		oauth2.WriteDPoPError(w, oauth2.InvalidToken("token expired"))
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) record(r *http.Request) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.proofs[r.URL.Path] = append(is.proofs[r.URL.Path], r.Header.Get("DPoP"))
}

func (is *issuer) proofsAt(path string) []string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]string(nil), is.proofs[path]...)
}

// nonces are the nonce claims of proofs ("" for a proof without one,
// "-" for no proof).
func nonces(t *testing.T, proofs []string) string {
	t.Helper()
	out := make([]string, len(proofs))
	for i, proof := range proofs {
		out[i] = "-"
		if proof != "" {
			_, c := decode(t, proof)
			out[i], _ = c["nonce"].(string)
		}
	}
	return strings.Join(out, ",")
}

// TestClient: through the Client, x/oauth2's token request carries a
// proof that the server takes, bound to the key; refused for want of a
// nonce, ExchangeAsksNonce says so, and the second try carries the
// nonce of the refusal (RFC 9449 §8). Requests to other URLs carry no
// proof, and the nonce of every answer is kept.
func TestClient(t *testing.T) {
	is := newIssuer(t)
	key := newKey(t)
	p := newProver(t, key)
	c, err := p.Client(is.srv.Client(), is.srv.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), xoauth2.HTTPClient, c)
	conf := &xoauth2.Config{ClientID: "rp", Endpoint: xoauth2.Endpoint{TokenURL: is.srv.URL + "/token", AuthStyle: xoauth2.AuthStyleInParams}}

	_, err = conf.Exchange(ctx, "code")
	if !ExchangeAsksNonce(err) {
		t.Fatalf("first token request: %v, want use_dpop_nonce", err)
	}
	tok, err := conf.Exchange(ctx, "code")
	if err != nil {
		t.Fatalf("token request with the nonce: %v", err)
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type %q", tok.TokenType)
	}
	want := is.v.Nonces.Nonce(t0)
	if got := nonces(t, is.proofsAt("/token")); got != ","+want {
		t.Errorf("token requests' nonces %q, want none, then %s", got, want)
	}
	is.mu.Lock()
	jkts := is.jkts
	is.mu.Unlock()
	if len(jkts) != 1 || jkts[0] != thumbprint(t, key) {
		t.Errorf("proofs taken with thumbprints %q, want the key's", jkts)
	}

	res, err := c.Post(is.srv.URL+"/other", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := nonces(t, is.proofsAt("/other")); got != "-" {
		t.Errorf("request to another URL: proofs %q, want none", got)
	}
	proof, _ := p.Proof(http.MethodPost, is.srv.URL+"/token", "")
	if _, c := decode(t, proof); c["nonce"] != "nonce-of-another-endpoint" {
		t.Errorf("nonce %v after the other answer, want its nonce", c["nonce"])
	}
}

// TestResource: a protected resource is asked with the DPoP scheme and
// a proof naming the token; refused for want of a nonce, the request is
// sent exactly once more, with the nonce of the refusal (RFC 9449 §9),
// and refused otherwise, not again.
func TestResource(t *testing.T) {
	is := newIssuer(t)
	current := is.v.Nonces.Nonce(t0)
	for _, tc := range []struct {
		name, path string
		// nonce is the one the Prover holds before the request.
		nonce      string
		wantStatus int
		wantNonces string
	}{
		{"asked for a nonce", "/userinfo", "", http.StatusOK, "," + current},
		{"with the nonce", "/userinfo", current, http.StatusOK, current},
		{"asked again after the retry", "/always-asks", "", http.StatusUnauthorized, ",nonce-1"},
		{"refused for another reason", "/refuses", "", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProver(t, newKey(t))
			p.KeepNonce(answer(tc.nonce))
			before := len(is.proofsAt(tc.path))
			res, err := p.Resource(context.Background(), is.srv.Client(), http.MethodGet, is.srv.URL+tc.path, "at")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if got := nonces(t, is.proofsAt(tc.path)[before:]); got != tc.wantNonces {
				t.Errorf("requests' nonces %q, want %q", got, tc.wantNonces)
			}
		})
	}
}

// TestAuthServerAsksNonce: only Varde's 400 use_dpop_nonce answer, as
// its one error writer makes it, asks for a nonce (RFC 9449 §8).
func TestAuthServerAsksNonce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(http.ResponseWriter)
		want  bool
	}{
		{"use_dpop_nonce", func(w http.ResponseWriter) { oauth2.WriteError(w, oauth2.UseDPoPNonce("a nonce is required")) }, true},
		{"invalid_dpop_proof", func(w http.ResponseWriter) { oauth2.WriteError(w, oauth2.InvalidDPoPProof("bad")) }, false},
		{"invalid_client", func(w http.ResponseWriter) { oauth2.WriteError(w, oauth2.InvalidClient("bad")) }, false},
		{"use_dpop_nonce at a resource", func(w http.ResponseWriter) { oauth2.WriteDPoPError(w, oauth2.UseDPoPNonce("a nonce is required")) }, false},
		{"success", func(w http.ResponseWriter) {
			oauth2.WriteJSON(w, http.StatusCreated, map[string]string{"request_uri": "urn:x"})
		}, false},
		{"not JSON", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("use_dpop_nonce"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.write(w)
			if got := AuthServerAsksNonce(w.Code, w.Body.Bytes()); got != tc.want {
				t.Errorf("AuthServerAsksNonce(%d, %s) = %v, want %v", w.Code, w.Body, got, tc.want)
			}
		})
	}
}

// TestResourceAsksNonce: only a 401 with a DPoP challenge naming
// use_dpop_nonce asks for a nonce (RFC 9449 §9).
func TestResourceAsksNonce(t *testing.T) {
	challenge := oauth2.DPoPChallenge(oauth2.UseDPoPNonce("a nonce is required"))
	for _, tc := range []struct {
		name      string
		status    int
		challenge []string
		want      bool
	}{
		{"DPoP challenge", http.StatusUnauthorized, []string{challenge}, true},
		{"after a Bearer challenge", http.StatusUnauthorized, []string{`Bearer error="invalid_token"`, challenge}, true},
		{"scheme in lower case", http.StatusUnauthorized, []string{"dpop" + strings.TrimPrefix(challenge, "DPoP")}, true},
		{"another error", http.StatusUnauthorized, []string{oauth2.DPoPChallenge(oauth2.InvalidToken("expired"))}, false},
		{"Bearer scheme", http.StatusUnauthorized, []string{`Bearer error="use_dpop_nonce"`}, false},
		{"not 401", http.StatusBadRequest, []string{challenge}, false},
		{"no challenge", http.StatusUnauthorized, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &http.Response{StatusCode: tc.status, Header: http.Header{"Www-Authenticate": tc.challenge}}
			if got := ResourceAsksNonce(res); got != tc.want {
				t.Errorf("ResourceAsksNonce(%d %q) = %v, want %v", tc.status, tc.challenge, got, tc.want)
			}
		})
	}
}

// TestExchangeAsksNonce: x/oauth2's error for a use_dpop_nonce answer,
// wrapped or not, asks for a nonce; other errors do not.
func TestExchangeAsksNonce(t *testing.T) {
	asks := &xoauth2.RetrieveError{ErrorCode: "use_dpop_nonce"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"use_dpop_nonce", asks, true},
		{"wrapped", fmt.Errorf("token: %w", asks), true},
		{"invalid_grant", &xoauth2.RetrieveError{ErrorCode: "invalid_grant"}, false},
		{"another error", errors.New("use_dpop_nonce"), false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExchangeAsksNonce(tc.err); got != tc.want {
				t.Errorf("ExchangeAsksNonce(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestConcurrentUse: one Prover serves many requests at once (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	p := newProver(t, newKey(t))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			p.KeepNonce(answer(fmt.Sprintf("n%d", i%2)))
			if _, err := p.Proof(http.MethodPost, "https://id.example/token", ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestNew: New needs a key.
func TestNew(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

// BenchmarkProof is the load generator's cost of one proof at the token
// endpoint.
func BenchmarkProof(b *testing.B) {
	p := newProver(b, newKey(b))
	p.KeepNonce(answer(base64.RawURLEncoding.EncodeToString(make([]byte, 32))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Proof(http.MethodPost, "http://127.0.0.1:8080/token", ""); err != nil {
			b.Fatal(err)
		}
	}
}
