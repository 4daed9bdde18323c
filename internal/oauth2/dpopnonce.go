package oauth2

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// DPoPNonceHeader is the response header that carries the nonce a
// client puts in its next DPoP proofs (RFC 9449 §8.1, §9).
const DPoPNonceHeader = "DPoP-Nonce"

// DefaultDPoPNonceWindow is how long each nonce is the one handed out.
const DefaultDPoPNonceWindow = 5 * time.Minute

// MinDPoPNonceKeySize is the shortest nonce key accepted: as long as
// HMAC-SHA256's output (RFC 2104 §3).
const MinDPoPNonceKeySize = sha256.Size

// DPoPNonces makes and checks the nonces this server provides for DPoP
// proofs (RFC 9449 §8 at the authorization server, §9 at a protected
// resource) without keeping any. Time is cut into windows of Window
// seconds, numbered from the Unix epoch; the nonce of window n is
// BASE64URL(HMAC-SHA256(Key, n as 8 bytes big-endian)). Every node that
// holds Key makes the same nonce in the same window and checks any
// other node's without asking the store.
//
// A nonce is handed out during its window and accepted through the
// next, so it lasts between Window and twice that. It is accepted in the
// window before its own too: a node whose clock runs a little ahead may
// hand it out first. No one can make that nonce early without Key.
type DPoPNonces struct {
	// Key is the MAC key: at least MinDPoPNonceKeySize bytes, secret, and
	// the same on every node.
	Key []byte
	// Window is a whole number of seconds; 0: DefaultDPoPNonceWindow.
	Window time.Duration
}

// Nonce returns the nonce to hand out at now.
func (n *DPoPNonces) Nonce(now time.Time) string {
	return base64.RawURLEncoding.EncodeToString(n.mac(n.window(now)))
}

// Valid reports whether nonce is one this server handed out recently:
// that of now's window, the one before it, or the one after it.
func (n *DPoPNonces) Valid(nonce string, now time.Time) bool {
	got, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	w := n.window(now)
	ok := 0
	for _, i := range []int64{w - 1, w, w + 1} {
		ok |= subtle.ConstantTimeCompare(got, n.mac(i))
	}
	return ok == 1
}

// window is the number of the window now falls in.
func (n *DPoPNonces) window(now time.Time) int64 {
	secs := int64(n.Window / time.Second)
	if secs <= 0 {
		secs = int64(DefaultDPoPNonceWindow / time.Second)
	}
	t := now.Unix()
	w := t / secs
	if t < 0 && t%secs != 0 {
		w-- // round down before the epoch as after it
	}
	return w
}

func (n *DPoPNonces) mac(window int64) []byte {
	m := hmac.New(sha256.New, n.Key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(window))
	m.Write(b[:])
	return m.Sum(nil)
}

// checkNonce checks the nonce claim of a proof's claims at now (RFC 9449
// §4.3 item 10): with nonces required, it is one this server provided
// recently. Any problem with it is use_dpop_nonce, which a client
// answers by making a new proof with the nonce of the DPoP-Nonce
// header.
func (v *DPoPVerifier) checkNonce(claims map[string]any, now time.Time) error {
	if v.Nonces == nil {
		return nil
	}
	raw, ok := claims["nonce"]
	if !ok {
		return UseDPoPNonce("DPoP proof has no nonce; this server requires one: make a new proof with the nonce of the DPoP-Nonce header")
	}
	if s, _ := raw.(string); !v.Nonces.Valid(s, now) {
		return UseDPoPNonce("DPoP proof nonce is not one this server provided recently; make a new proof with the nonce of the DPoP-Nonce header")
	}
	return nil
}

// CheckNonce returns a use_dpop_nonce error when nonces are required,
// r carries one DPoP header, and the nonce claim of the proof in it is
// missing or stale. It reads the claim without checking the proof's
// signature or anything else, which Verify does, nonce included: it
// lets an endpoint ask for a nonce before it does anything costlier,
// such as authenticating the client, which spends its assertion. To
// every other request, malformed proofs included, it answers nil.
func (v *DPoPVerifier) CheckNonce(r *http.Request) error {
	if v.Nonces == nil {
		return nil
	}
	fields := r.Header.Values("DPoP")
	if len(fields) != 1 || len(fields[0]) > maxDPoPProofSize {
		return nil
	}
	parts := strings.Split(fields[0], ".")
	if len(parts) != 3 {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims == nil {
		return nil
	}
	return v.checkNonce(claims, v.now())
}
