package oauth2

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/store"
)

// DPoPAlgs returns the signature algorithms accepted in DPoP proofs,
// the values of the discovery document's
// dpop_signing_alg_values_supported (RFC 9449 §5.1): asymmetric only
// (§4.3 item 5), the set AssertionAlgs accepts. "none" and the HMAC
// algorithms are refused: a proof shows possession of a private key.
func DPoPAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.PS256, jose.RS256}
}

// Defaults for DPoPVerifier.
const (
	DefaultDPoPMaxAge = 60 * time.Second // how old a proof's iat may be
	DefaultDPoPLeeway = 5 * time.Second  // how far in the future iat may be (clock skew)
)

const (
	// dpopType is the typ of a DPoP proof (RFC 9449 §4.2).
	dpopType = "dpop+jwt"
	// maxDPoPProofSize bounds the header field before anything parses
	// it; a proof with a 4096-bit RSA key takes about 2 KiB.
	maxDPoPProofSize = 8 << 10
	// maxDPoPJTISize bounds the jti kept in the replay cache.
	maxDPoPJTISize = 256
	// minDPoPRSABits is the smallest RSA modulus accepted (RFC 7518
	// §3.3, §3.5: 2048 bits or larger).
	minDPoPRSABits = 2048
)

// DPoPVerifier checks DPoP proofs (RFC 9449 §4.3).
type DPoPVerifier struct {
	// Replay remembers proof jti values (key "dpop:" + jkt + ":" + jti)
	// until iat+MaxAge+Leeway (RFC 9449 §11.1).
	Replay store.ReplayCache
	// Nonces, if set, makes a nonce this server provided recently
	// required in every proof (RFC 9449 §8, §9); nil: none is required,
	// and a proof's nonce claim is not looked at.
	Nonces *DPoPNonces
	Now    func() time.Time // nil: time.Now
	MaxAge time.Duration    // 0: DefaultDPoPMaxAge
	Leeway time.Duration    // 0: DefaultDPoPLeeway
}

// DPoPProof is a verified proof.
type DPoPProof struct {
	// JKT is the base64url (no padding) SHA-256 JWK thumbprint (RFC 7638)
	// of the proof's public key (RFC 9449 §6.1).
	JKT      string
	ID       string    // jti
	IssuedAt time.Time // iat
	// expires is when the replay cache may forget the jti.
	expires time.Time
}

func (v *DPoPVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Verify checks the DPoP header of r for a request to htu (the
// endpoint's URL as this server publishes it, e.g.
// "https://id.example/token") with r.Method, and, when accessToken is
// not "", its ath claim. It returns (nil, nil) when r has no DPoP
// header. Every problem with the proof is an *Error with code
// invalid_dpop_proof and a specific description, but for a missing or
// stale nonce when Nonces is set, which is use_dpop_nonce; other errors
// (the replay cache failing) are internal, wrapped.
//
// Binding the proof's key to a token (comparing JKT with the token's
// cnf.jkt, §4.3 item 12) is the caller's: only it knows the token.
//
// Verify is Check, then Record.
func (v *DPoPVerifier) Verify(r *http.Request, htu, accessToken string) (*DPoPProof, error) {
	proof, err := v.Check(r, htu, accessToken)
	if err != nil || proof == nil {
		return nil, err
	}
	if err := v.Record(r.Context(), proof); err != nil {
		return nil, err
	}
	return proof, nil
}

// Record spends the proof's jti (RFC 9449 §4.3 item 12, §11.1): a jti
// is accepted once within the window. An endpoint calls it after every
// check that writes nothing, so a proof that is refused anyway, or
// forged, cannot use up a jti. A proof already used is
// invalid_dpop_proof; other errors are internal.
func (v *DPoPVerifier) Record(ctx context.Context, proof *DPoPProof) error {
	if v.Replay == nil {
		return errors.New("dpop: verifier has no replay cache")
	}
	key := "dpop:" + proof.JKT + ":" + proof.ID
	switch err := v.Replay.Remember(ctx, key, proof.expires, v.now()); {
	case errors.Is(err, store.ErrConflict):
		return InvalidDPoPProof("DPoP proof was already used")
	case err != nil:
		return fmt.Errorf("remember DPoP proof: %w", err)
	}
	return nil
}

// Check makes every check of Verify that writes nothing: all of RFC
// 9449 §4.3 but the jti's single use, which Record makes. It returns
// (nil, nil) when r has no DPoP header.
func (v *DPoPVerifier) Check(r *http.Request, htu, accessToken string) (*DPoPProof, error) {
	fields := r.Header.Values("DPoP")
	if len(fields) == 0 {
		return nil, nil
	}
	endpoint, ok := normalizeHTU(htu)
	if !ok {
		return nil, fmt.Errorf("dpop: endpoint URL %q is not an absolute http or https URL", htu)
	}
	if v.Replay == nil {
		return nil, errors.New("dpop: verifier has no replay cache")
	}
	// §4.3 item 1: not more than one DPoP header field.
	if len(fields) > 1 {
		return nil, InvalidDPoPProof("request has more than one DPoP header field")
	}
	raw := fields[0]
	if len(raw) > maxDPoPProofSize {
		return nil, InvalidDPoPProof("DPoP proof is larger than %d bytes", maxDPoPProofSize)
	}
	jwk, payload, err := verifyDPoPJWS(raw)
	if err != nil {
		return nil, err
	}
	c, err := parseDPoPClaims(payload)
	if err != nil {
		return nil, err
	}
	// §4.3 item 8: htm is the request's method, compared exactly (HTTP
	// methods are case-sensitive, RFC 9110 §9.1).
	if c.htm != r.Method {
		return nil, InvalidDPoPProof("DPoP proof htm does not match the request method %s", r.Method)
	}
	// §4.3 item 9: htu is the request's URI without query and fragment,
	// compared after RFC 3986 §6.2.2 and §6.2.3 normalisation.
	got, ok := normalizeHTU(c.htu)
	if !ok {
		return nil, InvalidDPoPProof("DPoP proof htu is not an absolute http or https URI")
	}
	if got != endpoint {
		return nil, InvalidDPoPProof("DPoP proof htu does not match %s", htu)
	}
	// §4.3 item 10: with nonces required, the proof carries one this
	// server provided recently (§8, §9).
	now := v.now()
	if err := v.checkNonce(c.claims, now); err != nil {
		return nil, err
	}
	// §4.3 item 11 and §11.1: iat is within the window this server
	// accepts. A proof is accepted while now < iat+MaxAge+Leeway, the
	// moment the replay cache forgets its jti.
	maxAge := orDefault(v.MaxAge, DefaultDPoPMaxAge)
	leeway := orDefault(v.Leeway, DefaultDPoPLeeway)
	if c.iat.After(now.Add(leeway)) {
		return nil, InvalidDPoPProof("DPoP proof was issued in the future")
	}
	expires := c.iat.Add(maxAge + leeway)
	if !now.Before(expires) {
		return nil, InvalidDPoPProof("DPoP proof is too old: iat must be within the last %s", maxAge)
	}
	// §4.3 item 12 and §4.2: with an access token, ath is
	// BASE64URL(SHA-256(ASCII(token))). Without one, ath is ignored.
	if accessToken != "" {
		if err := checkATH(c.claims, accessToken); err != nil {
			return nil, err
		}
	}
	jkt, err := jwkThumbprint(jwk)
	if err != nil {
		return nil, fmt.Errorf("dpop: thumbprint: %w", err)
	}
	// A replay cache that forgets on restart (store.ReplayHorizon)
	// cannot say whether a proof made before then was used: refuse it,
	// as checkHorizon does for client assertions.
	if h, ok := v.Replay.(store.ReplayHorizon); ok && c.iat.Before(h.RemembersSince().Truncate(time.Second)) {
		return nil, InvalidDPoPProof("DPoP proof was made before this server restarted and may have been used; make a new one")
	}
	return &DPoPProof{JKT: jkt, ID: c.jti, IssuedAt: c.iat, expires: expires}, nil
}

// verifyDPoPJWS checks the proof's JOSE header and signature (RFC 9449
// §4.3 items 2 and 4 to 7) and returns its key and payload.
func verifyDPoPJWS(raw string) (*jose.JSONWebKey, []byte, error) {
	if raw == "" {
		return nil, nil, InvalidDPoPProof("DPoP header field is empty")
	}
	// §4.3 item 2: a single well-formed JWT, which is a JWS or JWE in
	// compact serialization (RFC 7519 §1); a proof must be signed.
	switch strings.Count(raw, ".") {
	case 2:
	case 4:
		return nil, nil, InvalidDPoPProof("DPoP proof must be a signed JWT, not an encrypted one")
	default:
		return nil, nil, InvalidDPoPProof("DPoP proof is not a JWT in compact serialization")
	}
	if err := checkDPoPHeader(raw[:strings.IndexByte(raw, '.')]); err != nil {
		return nil, nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, DPoPAlgs())
	if err != nil {
		return nil, nil, InvalidDPoPProof("DPoP proof is not a well-formed JWS")
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, InvalidDPoPProof("DPoP proof must have one signature")
	}
	// From here the header is go-jose's reading of it, the one the
	// signature is checked with.
	h := jws.Signatures[0].Header
	jwk := h.JSONWebKey
	// §4.3 item 7 (go-jose refuses private keys too; this keeps the
	// rule here, where it is stated).
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, nil, InvalidDPoPProof("DPoP proof jwk must be a public key")
	}
	if err := checkKeyFitsAlg(jwk.Key, jose.SignatureAlgorithm(h.Algorithm)); err != nil {
		return nil, nil, err
	}
	// §4.3 item 6: the signature verifies with the jwk.
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, nil, InvalidDPoPProof("DPoP proof signature does not verify with its jwk")
	}
	return jwk, payload, nil
}

// checkDPoPHeader reads the protected header of a compact JWS (its
// first segment) for the checks of RFC 9449 §4.3 that go-jose does not
// make, or does not explain when it refuses a header: typ (item 4), alg
// (item 5), no extensions, and a jwk that is present and public (items 6
// and 7).
func checkDPoPHeader(segment string) error {
	b, err := base64.RawURLEncoding.DecodeString(segment)
	var h map[string]json.RawMessage
	if err != nil || json.Unmarshal(b, &h) != nil || h == nil {
		return InvalidDPoPProof("DPoP proof header is not a base64url-encoded JSON object")
	}
	// §4.3 item 4 and §4.2: typ is dpop+jwt, so no other kind of JWT
	// can pass for a proof.
	var typ string
	if json.Unmarshal(h["typ"], &typ) != nil || typ != dpopType {
		return InvalidDPoPProof("DPoP proof typ must be %s", dpopType)
	}
	// §4.3 item 5: an asymmetric algorithm, not none, that Varde
	// accepts.
	var alg string
	_ = json.Unmarshal(h["alg"], &alg)
	switch {
	case alg == "none":
		return InvalidDPoPProof("DPoP proof alg none is refused: a proof must be signed")
	case alg == "HS256" || alg == "HS384" || alg == "HS512":
		return InvalidDPoPProof("DPoP proof alg %s is refused: a proof is signed with an asymmetric key", alg)
	case !slices.Contains(DPoPAlgs(), jose.SignatureAlgorithm(alg)):
		return InvalidDPoPProof("DPoP proof alg must be one of %s", algList())
	}
	// A JWT's payload is base64url-encoded (RFC 7519 §7.2 step 7): the
	// unencoded payload of RFC 7797 is not for JWTs (§7 there), and no
	// other extension is understood here (RFC 7515 §4.1.11).
	if _, ok := h["b64"]; ok {
		return InvalidDPoPProof("DPoP proof must not carry a b64 header: its payload is base64url-encoded")
	}
	if _, ok := h["crit"]; ok {
		return InvalidDPoPProof("DPoP proof crit header names extensions this server does not support")
	}
	// §4.2: jwk is the public key the proof is signed with.
	rawJWK, ok := h["jwk"]
	if !ok {
		return InvalidDPoPProof("DPoP proof has no jwk header")
	}
	var jwk map[string]json.RawMessage
	if json.Unmarshal(rawJWK, &jwk) != nil || jwk == nil {
		return InvalidDPoPProof("DPoP proof jwk is not a JSON object")
	}
	var kty string
	_ = json.Unmarshal(jwk["kty"], &kty)
	if kty == "oct" {
		return InvalidDPoPProof("DPoP proof jwk is a symmetric key; it must be a public key")
	}
	// §4.3 item 7: no private key. These are the private members of
	// RFC 7518 §6.2.2, §6.3.2 and RFC 8037 §2 (and "k" of a secret key
	// whatever its kty says).
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"} {
		if _, ok := jwk[m]; ok {
			return InvalidDPoPProof("DPoP proof jwk holds a private key; it must be a public key")
		}
	}
	var k jose.JSONWebKey
	if k.UnmarshalJSON(rawJWK) != nil {
		return InvalidDPoPProof("DPoP proof jwk is not a valid public key")
	}
	return nil
}

// checkKeyFitsAlg reports whether key is of the kind alg signs with:
// EC P-256 for ES256, P-384 for ES384 (RFC 7518 §3.4), Ed25519 for EdDSA
// (RFC 8037 §3.1), RSA of 2048 bits or more for RS256 and PS256 (RFC 7518
// §3.3, §3.5).
func checkKeyFitsAlg(key any, alg jose.SignatureAlgorithm) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if alg == jose.ES256 && k.Curve == elliptic.P256() || alg == jose.ES384 && k.Curve == elliptic.P384() {
			return nil
		}
	case ed25519.PublicKey:
		if alg == jose.EdDSA {
			return nil
		}
	case *rsa.PublicKey:
		if alg == jose.RS256 || alg == jose.PS256 {
			if k.N.BitLen() < minDPoPRSABits {
				return InvalidDPoPProof("DPoP proof jwk is an RSA key of %d bits; at least %d are required", k.N.BitLen(), minDPoPRSABits)
			}
			return nil
		}
	}
	return InvalidDPoPProof("DPoP proof jwk is not a key for alg %s", alg)
}

// dpopClaims are the claims of a DPoP proof (RFC 9449 §4.2).
type dpopClaims struct {
	jti, htm, htu string
	iat           time.Time
	// claims are all the claims, for ath and nonce.
	claims map[string]any
}

// parseDPoPClaims reads the required claims (RFC 9449 §4.3 item 3,
// §4.2). Claim names are matched exactly (RFC 7519 §4).
func parseDPoPClaims(payload []byte) (*dpopClaims, error) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, InvalidDPoPProof("DPoP proof payload is not a JSON object of claims")
	}
	c := &dpopClaims{claims: m}
	for _, s := range []struct {
		name string
		dst  *string
	}{{"jti", &c.jti}, {"htm", &c.htm}, {"htu", &c.htu}} {
		v, ok := m[s.name]
		if !ok {
			return nil, InvalidDPoPProof("DPoP proof has no %s claim", s.name)
		}
		if *s.dst, ok = v.(string); !ok {
			return nil, InvalidDPoPProof("DPoP proof %s claim must be a string", s.name)
		}
	}
	// §4.2: jti identifies the proof. It is kept in the replay cache,
	// whose store may hold only text: JSON allows a NUL ("\u0000"),
	// which no identifier needs.
	switch {
	case c.jti == "":
		return nil, InvalidDPoPProof("DPoP proof jti is empty")
	case len(c.jti) > maxDPoPJTISize:
		return nil, InvalidDPoPProof("DPoP proof jti is longer than %d bytes", maxDPoPJTISize)
	case strings.ContainsRune(c.jti, 0):
		return nil, InvalidDPoPProof("DPoP proof jti contains a NUL character")
	}
	v, ok := m["iat"]
	if !ok {
		return nil, InvalidDPoPProof("DPoP proof has no iat claim")
	}
	iat, ok := v.(float64)
	if !ok {
		return nil, InvalidDPoPProof("DPoP proof iat claim must be a number")
	}
	c.iat = numericDate(iat)
	return c, nil
}

// numericDate converts an RFC 7519 §2 NumericDate, clamped to years 1970
// to about 36800: anything outside is far outside every window.
func numericDate(f float64) time.Time {
	const latest = 1 << 40
	f = min(max(f, 0), latest)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// checkATH checks the proof's ath claim against accessToken (RFC 9449
// §4.3 item 12, §4.2).
func checkATH(claims map[string]any, accessToken string) error {
	v, ok := claims["ath"]
	if !ok {
		return InvalidDPoPProof("DPoP proof has no ath claim; it is required with an access token")
	}
	ath, ok := v.(string)
	if !ok {
		return InvalidDPoPProof("DPoP proof ath claim must be a string")
	}
	sum := sha256.Sum256([]byte(accessToken))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(ath), []byte(want)) != 1 {
		return InvalidDPoPProof("DPoP proof ath does not match the access token")
	}
	return nil
}

// jwkThumbprint is the base64url SHA-256 JWK thumbprint of k (RFC 7638
// §3, the jkt of RFC 9449 §6.1).
func jwkThumbprint(k *jose.JSONWebKey) (string, error) {
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// ValidJKT reports whether s is a well-formed JWK SHA-256 thumbprint:
// base64url without padding of exactly 32 bytes (for the dpop_jkt
// authorization request parameter, RFC 9449 §10).
func ValidJKT(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// DPoPChallenge is the WWW-Authenticate value for a protected
// resource's refusal (RFC 9449 §7.1): the DPoP scheme with the algs this
// server accepts and, when e is not nil, its error and description
// (RFC 6750 §3 syntax, so quote-safe like BearerChallenge).
func DPoPChallenge(e *Error) string {
	var b strings.Builder
	b.WriteString(`DPoP algs="`)
	for i, a := range DPoPAlgs() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(a))
	}
	b.WriteString(`"`)
	if e == nil {
		return b.String()
	}
	b.WriteString(", ")
	writeErrorParams(&b, e)
	return b.String()
}

// algList is DPoPAlgs for a description: "ES256, ES384, …".
func algList() string {
	var names []string
	for _, a := range DPoPAlgs() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// normalizeHTU returns the http or https URI s without its query and
// fragment (RFC 9449 §4.3 item 9), normalised as RFC 3986 §6.2.2 and
// §6.2.3 describe: scheme and host in lower case, the scheme's default
// port dropped, percent-encodings of unreserved characters decoded and
// the others in upper case, dot segments removed, an empty path "/".
// It reports false if s is not an absolute http or https URI.
func normalizeHTU(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	var defaultPort string
	switch scheme {
	case "https":
		defaultPort = "443"
	case "http":
		defaultPort = "80"
	default:
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", false
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal (RFC 3986 §3.2.2)
	}
	if port := u.Port(); port != "" && port != defaultPort {
		host += ":" + port
	}
	path, ok := normalizePercent(u.EscapedPath())
	if !ok {
		return "", false
	}
	path = removeDotSegments(path)
	if path == "" {
		path = "/"
	}
	var user string
	if u.User != nil {
		user = u.User.String() + "@"
	}
	return scheme + "://" + user + host + path, true
}

// normalizePercent applies RFC 3986 §6.2.2.1 and §6.2.2.2 to a path:
// percent-encoded unreserved characters are decoded, and other
// percent-encodings use upper-case hexadecimal digits.
func normalizePercent(p string) (string, bool) {
	if !strings.Contains(p, "%") {
		return p, true
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", false
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return b.String(), true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// removeDotSegments is the algorithm of RFC 3986 §5.2.4 (§6.2.2.3).
func removeDotSegments(in string) string {
	var out []byte
	// dropLast removes the last segment and its preceding "/" from out.
	dropLast := func() {
		i := strings.LastIndexByte(string(out), '/')
		out = out[:max(i, 0)]
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			dropLast()
		case in == "/..":
			in = "/"
			dropLast()
		case in == "." || in == "..":
			in = ""
		default:
			// Move the first segment, with its leading "/", to out.
			i := strings.IndexByte(in[1:], '/')
			if i < 0 {
				out = append(out, in...)
				in = ""
			} else {
				out = append(out, in[:i+1]...)
				in = in[i+1:]
			}
		}
	}
	return string(out)
}
