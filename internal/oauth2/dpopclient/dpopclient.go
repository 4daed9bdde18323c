package dpopclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

const (
	// nonceHeader is the response header that carries the nonce for the
	// next proofs (RFC 9449 §8.1, §9).
	nonceHeader = "DPoP-Nonce"
	// codeUseNonce is the error of a refusal for want of a fresh nonce
	// (RFC 9449 §8, §9).
	codeUseNonce = "use_dpop_nonce"
	// jtiBytes is how much randomness a proof's jti carries: more than
	// the 96 bits RFC 9449 §4.2 asks for.
	jtiBytes = 16
)

// Prover makes DPoP proofs with one key and keeps the nonce the server
// last handed out. It is safe for concurrent use: one Prover may serve
// every request of a client.
type Prover struct {
	signer jose.Signer
	now    func() time.Time
	// nonce is the last nonce handed out; nil until one is.
	nonce atomic.Pointer[string]
}

// New returns a Prover that signs proofs with key (ES256, RFC 9449 §4.2:
// the public key goes in the jwk header) and dates them with now (nil:
// time.Now).
func New(key *ecdsa.PrivateKey, now func() time.Time) (*Prover, error) {
	if key == nil {
		return nil, errors.New("dpop: no key")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, fmt.Errorf("dpop: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Prover{signer: signer, now: now}, nil
}

// claims are a proof's claims (RFC 9449 §4.2), marshalled from a struct
// rather than a map: fewer allocations and no sorting of keys.
type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a proof for a request with method to htu (RFC 9449
// §4.2), in compact form, for the DPoP header. The query and fragment of
// htu are left out, as §4.2 says. With accessToken not "", the proof
// names it in ath (§4.2, §7.1). It carries the nonce the server last
// handed out, if any (§8, §9).
func (p *Prover) Proof(method, htu, accessToken string) (string, error) {
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	c := claims{JTI: randomID(), HTM: method, HTU: htu, IAT: p.now().Unix()}
	if accessToken != "" {
		c.ATH = ath(accessToken)
	}
	if n := p.nonce.Load(); n != nil {
		c.Nonce = *n
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	jws, err := p.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// ath is the ath claim for accessToken: the base64url encoding of its
// SHA-256 hash (RFC 9449 §4.2).
func ath(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// KeepNonce keeps the nonce of the server's answer res, if it has one,
// for the next proofs (RFC 9449 §8.2, §9). Varde hands it out with every
// answer of its PAR, token and UserInfo endpoints, successes included.
func (p *Prover) KeepNonce(res *http.Response) {
	n := res.Header.Get(nonceHeader)
	if n == "" {
		return
	}
	if old := p.nonce.Load(); old != nil && *old == n {
		return // the one kept already: nothing to allocate
	}
	p.nonce.Store(&n)
}

// Client returns a copy of base (nil: http.DefaultClient) for
// golang.org/x/oauth2 (its HTTPClient context value) that sends a fresh
// proof with every POST to tokenURL, the token endpoint, and keeps the
// nonce of every answer. Other requests go through unchanged.
func (p *Prover) Client(base *http.Client, tokenURL string) (*http.Client, error) {
	u, err := url.Parse(tokenURL)
	if err != nil {
		return nil, fmt.Errorf("dpop: token endpoint: %w", err)
	}
	if base == nil {
		base = http.DefaultClient
	}
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *base
	c.Transport = &transport{p: p, next: next, tokenURL: u, htu: tokenURL}
	return &c, nil
}

// transport is Client's http.RoundTripper.
type transport struct {
	p        *Prover
	next     http.RoundTripper
	tokenURL *url.URL // compared field by field: no String() per request
	htu      string
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && *r.URL == *t.tokenURL {
		proof, err := t.p.Proof(r.Method, t.htu, "")
		if err != nil {
			return nil, fmt.Errorf("DPoP proof: %w", err)
		}
		// A RoundTripper must not change the request it is given.
		r = r.Clone(r.Context())
		r.Header.Set("DPoP", proof)
	}
	res, err := t.next.RoundTrip(r)
	if err == nil {
		t.p.KeepNonce(res)
	}
	return res, err
}

// Resource sends a request with method and no body to target, a
// protected resource, with accessToken in the DPoP scheme and a proof
// that names it (RFC 9449 §7.1), through c, and keeps the nonce of the
// answer. Refused for want of a fresh nonce (ResourceAsksNonce), it
// sends the request once more, with a proof that carries the nonce of
// the refusal (§9), and returns that answer, whatever it is.
func (p *Prover) Resource(ctx context.Context, c *http.Client, method, target, accessToken string) (*http.Response, error) {
	res, err := p.resource(ctx, c, method, target, accessToken)
	if err != nil || !ResourceAsksNonce(res) {
		return res, err
	}
	res.Body.Close()
	return p.resource(ctx, c, method, target, accessToken)
}

func (p *Prover) resource(ctx context.Context, c *http.Client, method, target, accessToken string) (*http.Response, error) {
	proof, err := p.Proof(method, target, accessToken)
	if err != nil {
		return nil, fmt.Errorf("DPoP proof: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "DPoP "+accessToken)
	req.Header.Set("DPoP", proof)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	p.KeepNonce(res)
	return res, nil
}

// AuthServerAsksNonce reports whether an authorization server's answer
// (PAR or token endpoint) of status with body refuses a proof for want
// of a fresh nonce: 400 with the JSON error use_dpop_nonce (RFC 9449
// §8). The caller sends the request once more, with a new proof and,
// since the first may have been spent, a new client assertion.
func AuthServerAsksNonce(status int, body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return status == http.StatusBadRequest && json.Unmarshal(body, &e) == nil && e.Error == codeUseNonce
}

// ExchangeAsksNonce reports whether err, from a token request made with
// golang.org/x/oauth2, is the authorization server asking for a fresh
// nonce (RFC 9449 §8); as for AuthServerAsksNonce, the caller tries
// once more. The Client kept the nonce of the refusal.
func ExchangeAsksNonce(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == codeUseNonce
}

// ResourceAsksNonce reports whether a protected resource's answer res
// refuses a proof for want of a fresh nonce: 401 with a DPoP challenge
// whose error is use_dpop_nonce (RFC 9449 §9).
func ResourceAsksNonce(res *http.Response) bool {
	if res.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, c := range res.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(c, " ")
		if strings.EqualFold(scheme, "DPoP") && strings.Contains(params, `error="`+codeUseNonce+`"`) {
			return true
		}
	}
	return false
}

// randomID is a proof's jti: jtiBytes random bytes, base64url-encoded.
func randomID() string {
	var b [jtiBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
