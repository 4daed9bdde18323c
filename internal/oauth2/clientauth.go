package oauth2

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// AssertionType is the client_assertion_type of a JWT client assertion
// (RFC 7523 §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlgs returns the signature algorithms accepted in client
// assertions: asymmetric only. "none" and the HMAC algorithms are refused
// because a shared secret would make the assertion a password.
func AssertionAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}
}

// Defaults for ClientAuthenticator.
const (
	DefaultMaxAssertionLifetime = 5 * time.Minute
	DefaultLeeway               = 30 * time.Second
	DefaultJWKSCacheTTL         = 5 * time.Minute
	DefaultJWKSRefetch          = 30 * time.Second
	maxAssertionSize            = 8 << 10
	maxJWKSSize                 = 256 << 10
)

// ClientAuthenticator authenticates clients at the token and PAR
// endpoints with the one method each client registered:
// private_key_jwt (RFC 7523 §2.2, §3; OpenID Connect Core §9),
// client_secret_basic (RFC 6749 §2.3.1) or none (public clients).
type ClientAuthenticator struct {
	Clients store.Clients
	// Replay remembers assertion jti values until they expire.
	Replay store.ReplayCache
	// Audiences are this server's identifiers, the issuer identifier
	// first: the one value an assertion's aud may be. The others (the
	// URLs of the endpoints that authenticate clients) are accepted in its place only from a
	// client registered for it (store.Client.LegacyEndpointAudience). See
	// checkAudience.
	Audiences []string
	// HTTPClient fetches clients' jwks_uri; nil, or a client without a
	// timeout, means a 5 s timeout, and one without a transport
	// httpx.OutboundTransport (an answer's header bounded). Redirects are
	// never followed, whatever its CheckRedirect: keys come from the URL
	// the client registered.
	HTTPClient *http.Client
	// Log records why a jwks_uri could not be fetched; nil logs nothing.
	Log *slog.Logger
	Now func() time.Time
	// MaxAssertionLifetime caps exp − now (default 5 min); Leeway is the
	// clock skew allowed on exp, nbf and iat (default 30 s).
	MaxAssertionLifetime time.Duration
	Leeway               time.Duration
	// JWKSCacheTTL is how long a fetched jwks_uri is used (default 5 min);
	// an unknown kid, or an assertion without one that the keys held do
	// not verify (a client with one key replacing it), triggers a refetch
	// at most every JWKSRefetch
	// (default 30 s). A jwks_uri that fails is tried again at most every
	// JWKSRefetch, its keys last fetched used meanwhile (none if it was
	// never fetched: its clients are refused without a try). A jwks_uri
	// is fetched once at a time; requests that need it meanwhile share
	// that fetch.
	JWKSCacheTTL time.Duration
	JWKSRefetch  time.Duration

	// transport is what fetches jwks_uri for an HTTPClient without one,
	// made once.
	transport     *http.Transport
	transportOnce sync.Once

	mu   sync.Mutex
	jwks map[string]*fetchedJWKS
	// fetching holds, for each jwks_uri being fetched, a channel closed
	// when that fetch has stored its result.
	fetching map[string]chan struct{}
	// inline caches parsed registered (inline) JWK sets by their JSON
	// text, so a client's keys are not parsed again on every request. Keyed
	// by content, it can never serve keys a client no longer has.
	inline map[string]jose.JSONWebKeySet
}

// maxInlineJWKS bounds the parsed-JWKS cache; past it, it starts over.
const maxInlineJWKS = 1024

// MaxKeysWithoutKid is how many of a client's keys an assertion is
// checked against when it has no kid header (or names a kid that many
// keys share). Only keys of the type and curve its alg needs count
// (RFC 7518 §3.1): a client whose set holds more such keys must name
// the key, for each one tried is a signature check, and anyone who
// knows the client_id can send assertions.
const MaxKeysWithoutKid = 4

// maxFetchedJWKS bounds the jwks_uri cache: past it, the jwks_uri used
// longest ago is dropped, so the keys of clients since removed do not
// stay for as long as the node runs.
const maxFetchedJWKS = 1024

type fetchedJWKS struct {
	set       jose.JSONWebKeySet
	fetchedAt time.Time
	// usedAt is when the set was last stored or served.
	usedAt time.Time
	// failedAt is when the last try to fetch the set failed; until
	// JWKSRefetch after it, set is used (none if fetchedAt is zero: the
	// jwks_uri was never fetched) without trying again.
	failedAt time.Time
}

func (a *ClientAuthenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ClientAuthentication is a client whose credentials Check found good.
// A client assertion's jti is not spent yet: Record spends it.
type ClientAuthentication struct {
	Client *store.Client
	// jtiKey is the replay cache key of the assertion's jti, "" for a
	// method with nothing to spend; jtiExpires is when it may be
	// forgotten.
	jtiKey     string
	jtiExpires time.Time
}

// Authenticate returns the authenticated client, its assertion's jti
// (if any) spent: Check, then Record.
func (a *ClientAuthenticator) Authenticate(r *http.Request) (*store.Client, error) {
	ca, err := a.Check(r)
	if err != nil {
		return nil, err
	}
	if err := a.Record(r.Context(), ca); err != nil {
		return nil, err
	}
	return ca.Client, nil
}

// Record spends what ca used once: a client assertion's jti (OpenID
// Connect Core §9, RFC 7523 §3 item 7). An assertion already used is
// invalid_client; other errors are internal.
func (a *ClientAuthenticator) Record(ctx context.Context, ca *ClientAuthentication) error {
	if ca.jtiKey == "" {
		return nil
	}
	switch err := a.Replay.Remember(ctx, ca.jtiKey, ca.jtiExpires, a.now()); {
	case errors.Is(err, store.ErrConflict):
		return InvalidClient("client assertion was already used")
	case err != nil:
		return fmt.Errorf("remember assertion: %w", err)
	}
	return nil
}

// Check authenticates the client of r without writing anything: a
// client assertion's jti is checked but not spent, so an endpoint can
// make its other checks that write nothing (a DPoP proof's) before
// Record spends it. Protocol failures are *Error values (invalid_client
// for every credential problem, with a description saying which); other
// errors are internal. It parses the request's form; credentials are
// read from the body only (RFC 6749 §2.3.1) and the Authorization
// header.
func (a *ClientAuthenticator) Check(r *http.Request) (*ClientAuthentication, error) {
	if err := r.ParseForm(); err != nil {
		return nil, InvalidRequest("malformed request body")
	}
	form := r.PostForm
	for _, k := range []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
		if len(form[k]) > 1 {
			// RFC 6749 §3.2: parameters MUST NOT be included more than once.
			return nil, InvalidRequest("%s is repeated", k)
		}
	}
	formID := form.Get("client_id")
	user, pass, basic := r.BasicAuth()
	if h := r.Header.Get("Authorization"); h != "" && !basic {
		// RFC 7617 §2: the scheme is case-insensitive; its credentials are
		// base64 of id ":" secret.
		if len(h) >= len("Basic ") && strings.EqualFold(h[:len("Basic ")], "Basic ") {
			return nil, InvalidClient("Basic credentials are not base64 of the form-urlencoded client_id, a colon and the form-urlencoded secret")
		}
		return nil, InvalidClient("unsupported Authorization scheme")
	}
	// RFC 6749 §3.1: a parameter sent without a value is treated as if
	// it were omitted (some libraries send client_secret= for a public
	// client).
	assertion := form.Get("client_assertion") != ""
	assertionType := form.Get("client_assertion_type") != ""
	secretPost := form.Get("client_secret") != ""
	var methods []string
	for _, m := range []struct {
		used bool
		name string
	}{{basic, store.AuthClientSecretBasic}, {assertion || assertionType, store.AuthPrivateKeyJWT}, {secretPost, "client_secret_post"}} {
		if m.used {
			methods = append(methods, m.name)
		}
	}
	if len(methods) > 1 {
		// RFC 6749 §2.3: a client MUST NOT use more than one method.
		// Naming them tells a developer what their library sent (a
		// Basic header beside an assertion, say), and nothing of the
		// client's registration.
		return nil, InvalidRequest("more than one client authentication method used (%s): send only the one the client is registered for",
			strings.Join(methods, ", "))
	}
	ctx := r.Context()
	var c *store.Client
	var err error
	switch {
	case basic:
		c, err = a.basic(ctx, user, pass, formID)
	case assertion || assertionType:
		return a.privateKeyJWT(ctx, form.Get("client_assertion_type"), form.Get("client_assertion"), formID)
	case secretPost:
		return nil, InvalidClient("client_secret_post is not supported: send the client ID and secret in the Authorization header (client_secret_basic, RFC 6749 section 2.3.1)")
	case formID != "":
		c, err = a.public(ctx, formID)
	default:
		return nil, InvalidClient("client authentication is required")
	}
	if err != nil {
		return nil, err
	}
	return &ClientAuthentication{Client: c}, nil
}

func (a *ClientAuthenticator) client(ctx context.Context, id, method string) (*store.Client, error) {
	if id == "" {
		return nil, InvalidClient("client_id is missing")
	}
	c, err := a.Clients.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, InvalidClient("unknown client")
	}
	if err != nil {
		return nil, fmt.Errorf("get client: %w", err)
	}
	if c.AuthMethod != method {
		// RFC 6749 §5.2: invalid_client is all the caller needs. Which
		// method the client is registered for is not told to whoever
		// knows its client_id (it would say which credential to go
		// after), only logged and audited.
		e := InvalidClient("client authentication failed: the client does not authenticate this way")
		e.Detail = fmt.Sprintf("client %q is registered for %s, not %s", id, c.AuthMethod, method)
		return nil, e
	}
	return c, nil
}

func (a *ClientAuthenticator) public(ctx context.Context, id string) (*store.Client, error) {
	return a.client(ctx, id, store.AuthNone)
}

// basic implements client_secret_basic: RFC 6749 §2.3.1 has the client
// form-urlencode its ID and secret before Basic encoding.
func (a *ClientAuthenticator) basic(ctx context.Context, user, pass, formID string) (*store.Client, error) {
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, InvalidClient("malformed Basic credentials")
	}
	if formID != "" && formID != id {
		return nil, InvalidClient("client_id does not match the Basic credentials")
	}
	c, err := a.client(ctx, id, store.AuthClientSecretBasic)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if len(c.SecretHash) != sha256.Size || subtle.ConstantTimeCompare(sum[:], c.SecretHash) != 1 {
		return nil, InvalidClient("client secret is wrong")
	}
	return c, nil
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	jwt.Claims
	// audArray is whether aud was written as a JSON array, which
	// jwt.Audience reads as it reads a string.
	audArray bool
}

// UnmarshalJSON reads the claims and notes the JSON type of aud, in one
// pass over the payload: aud is taken raw (the outer field hides the
// embedded Claims' own) and read as jwt.Audience reads it.
func (c *assertionClaims) UnmarshalJSON(b []byte) error {
	var raw struct {
		jwt.Claims
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	c.Claims = raw.Claims
	c.audArray = len(raw.Aud) > 0 && raw.Aud[0] == '['
	if len(raw.Aud) > 0 {
		if err := json.Unmarshal(raw.Aud, &c.Audience); err != nil {
			return err
		}
	}
	return nil
}

// parsedAssertion is a client assertion before its signature is checked.
type parsedAssertion struct {
	token  *jwt.JSONWebToken
	alg    string
	kid    string
	claims assertionClaims
}

// parseAssertion parses a compact JWS client assertion with an allowed
// algorithm and reads its claims without verifying them.
func parseAssertion(raw string) (*parsedAssertion, error) {
	if raw == "" {
		return nil, InvalidClient("client_assertion is missing")
	}
	if len(raw) > maxAssertionSize {
		return nil, InvalidClient("client_assertion is too large")
	}
	tok, err := jwt.ParseSigned(raw, AssertionAlgs())
	if err != nil {
		return nil, InvalidClient("client_assertion is not a JWS signed with an accepted asymmetric algorithm")
	}
	if len(tok.Headers) != 1 {
		return nil, InvalidClient("client_assertion must have one signature")
	}
	if !assertionTyp(tok.Headers[0]) {
		return nil, InvalidClient("client_assertion typ must be absent, JWT or client-authentication+jwt")
	}
	p := &parsedAssertion{token: tok, alg: tok.Headers[0].Algorithm, kid: tok.Headers[0].KeyID}
	if err := tok.UnsafeClaimsWithoutVerification(&p.claims); err != nil {
		return nil, InvalidClient("client_assertion claims are malformed")
	}
	return p, nil
}

// assertionTyp reports whether h's typ may be a client assertion's:
// absent, "JWT" or "client-authentication+jwt"
// (draft-ietf-oauth-rfc7523bis §4), compared as media types (RFC 7515
// §4.1.9: case-insensitive, "application/" may be left out). A JWT
// that says it is something else, a DPoP proof or a logout token, is
// not accepted in its place.
func assertionTyp(h jose.Header) bool {
	v, ok := h.ExtraHeaders[jose.HeaderType]
	if !ok {
		return true
	}
	typ, ok := v.(string)
	if !ok {
		return false
	}
	typ = strings.ToLower(typ)
	typ = strings.TrimPrefix(typ, "application/")
	return typ == "jwt" || typ == "client-authentication+jwt"
}

// privateKeyJWT checks a client assertion; its jti is left for Record.
func (a *ClientAuthenticator) privateKeyJWT(ctx context.Context, typ, raw, formID string) (*ClientAuthentication, error) {
	if typ != AssertionType {
		return nil, InvalidClient("client_assertion_type must be %s", AssertionType)
	}
	p, err := parseAssertion(raw)
	if err != nil {
		return nil, err
	}
	id := p.claims.Issuer
	if formID != "" && formID != id {
		return nil, InvalidClient("client_id does not match the client assertion issuer")
	}
	c, err := a.client(ctx, id, store.AuthPrivateKeyJWT)
	if err != nil {
		return nil, err
	}
	// The claims are checked unverified first, so an assertion that is
	// expired, for another audience or without a jti is refused before
	// its signature is checked and before any fetch of the client's
	// jwks_uri: knowing a client_id is not enough to make the node fetch.
	if _, err := a.checkClaims(c, &p.claims); err != nil {
		return nil, err
	}
	claims, err := a.verifySignature(ctx, c, p)
	if err != nil {
		return nil, err
	}
	// Checked again from the verified payload, with the time now: a
	// jwks_uri fetch may have taken a while.
	exp, err := a.checkClaims(c, claims)
	if err != nil {
		return nil, err
	}
	if err := a.checkHorizon(claims, exp); err != nil {
		return nil, err
	}
	// OpenID Connect Core §9: the jti is used once. Record remembers it,
	// after the signature check, so forged assertions cannot burn jti
	// values.
	return &ClientAuthentication{Client: c, jtiKey: "jti:" + c.ID + ":" + claims.ID,
		jtiExpires: exp.Add(orDefault(a.Leeway, DefaultLeeway))}, nil
}

// checkClaims applies RFC 7523 §3 to client cl's assertion and returns
// the expiry.
func (a *ClientAuthenticator) checkClaims(cl *store.Client, c *assertionClaims) (time.Time, error) {
	now := a.now()
	leeway := orDefault(a.Leeway, DefaultLeeway)
	// §3 items 1, 2: iss and sub are the client_id (OIDC Core §9).
	if c.Issuer != cl.ID || c.Subject != cl.ID {
		return time.Time{}, InvalidClient("client assertion iss and sub must both be the client_id")
	}
	if err := a.checkAudience(cl, c.Audience, c.audArray); err != nil {
		return time.Time{}, err
	}
	// §3 item 4: exp is required and in the future. An assertion is
	// accepted while now < exp+Leeway: its jti is remembered until that
	// moment (privateKeyJWT) and a replay cache forgets a value at the
	// moment it was told, so accepting it then too would accept it twice.
	if c.Expiry == nil {
		return time.Time{}, InvalidClient("client assertion has no exp")
	}
	exp := c.Expiry.Time()
	if !now.Before(exp.Add(leeway)) {
		return time.Time{}, InvalidClient("client assertion has expired")
	}
	if exp.After(now.Add(orDefault(a.MaxAssertionLifetime, DefaultMaxAssertionLifetime) + leeway)) {
		return time.Time{}, InvalidClient("client assertion expires too far in the future: exp may be at most %d seconds from now",
			int(orDefault(a.MaxAssertionLifetime, DefaultMaxAssertionLifetime)/time.Second))
	}
	// §3 items 5, 6: nbf and iat are honoured when present.
	if c.NotBefore != nil && c.NotBefore.Time().After(now.Add(leeway)) {
		return time.Time{}, InvalidClient("client assertion is not valid yet")
	}
	if c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(leeway)) {
		return time.Time{}, InvalidClient("client assertion was issued in the future")
	}
	// §3 item 7 and OIDC Core §9: jti identifies the assertion.
	if c.ID == "" {
		return time.Time{}, InvalidClient("client assertion has no jti")
	}
	// A jti is kept in the replay cache, whose store may hold only text:
	// JSON allows a NUL ("\u0000"), which no identifier needs.
	if strings.ContainsRune(c.ID, 0) {
		return time.Time{}, InvalidClient("client assertion's jti contains a NUL character")
	}
	return exp, nil
}

// checkAudience applies RFC 7523 §3 item 3 as
// draft-ietf-oauth-rfc7523bis updates it: aud is this server's issuer
// identifier, compared exactly, and nothing else. An endpoint URL or an
// array that also names another server is how an assertion made for one
// server gets replayed at another: a client that takes its audience
// from a metadata document an attacker controls, or lists several
// servers, signs an assertion this server would otherwise accept (the
// audience injection of the OpenID Foundation's 2025 advisory). The
// issuer cannot be forged that way, since a client checks it against
// where it fetched the metadata (RFC 8414 §3.3).
//
// aud is a JSON string (isArray false): FAPI 2.0 Security Profile
// §5.3.2.1 item 8 has the server accept its issuer identifier "as a
// string" only, and the draft has clients send a string, "not a
// single-valued JSON array", so an array is refused, even one holding
// the issuer alone (ADR 51).
//
// A client registered with LegacyEndpointAudience, the switch for a
// client that cannot send what the draft asks yet, may name the URL of
// an endpoint that authenticates clients instead (token, PAR,
// revocation, introspection: Audiences), as OIDC Core §9 and RFC 9126
// §2 let clients do for the first two and libraries do for the
// endpoint they call, and may write it as a one-element array, as some
// JWT libraries always do; but still as the one audience.
func (a *ClientAuthenticator) checkAudience(c *store.Client, aud jwt.Audience, isArray bool) error {
	if len(a.Audiences) == 0 {
		return InvalidClient("client assertion audience does not name this server")
	}
	issuer := a.Audiences[0]
	if isArray && !c.LegacyEndpointAudience {
		return InvalidClient("client assertion aud must be the issuer identifier %s as a JSON string, not an array", issuer)
	}
	if len(aud) != 1 {
		return InvalidClient("client assertion must have one audience: the issuer identifier %s", issuer)
	}
	if aud[0] == issuer || c.LegacyEndpointAudience && slices.Contains(a.Audiences[1:], aud[0]) {
		return nil
	}
	return InvalidClient("client assertion audience must be the issuer identifier %s", issuer)
}

// checkHorizon refuses an assertion that could have been presented
// before a replay cache that forgets (store.ReplayHorizon: one kept in
// memory, emptied by a restart) began to remember: its jti cannot be
// checked. An assertion exists from its iat; without iat, from the
// earliest moment its exp allows (exp − MaxAssertionLifetime − Leeway).
// A client whose clock runs ahead, by at most Leeway, narrows this by
// its skew.
func (a *ClientAuthenticator) checkHorizon(c *assertionClaims, exp time.Time) error {
	h, ok := a.Replay.(store.ReplayHorizon)
	if !ok {
		return nil
	}
	since := h.RemembersSince()
	made := exp.Add(-orDefault(a.MaxAssertionLifetime, DefaultMaxAssertionLifetime) - orDefault(a.Leeway, DefaultLeeway))
	if c.IssuedAt != nil {
		made = c.IssuedAt.Time()
	}
	if made.Before(since.Truncate(time.Second)) {
		return InvalidClient("client assertion was made before this server restarted and may have been used; sign a new one")
	}
	return nil
}

// verifySignature checks the assertion against the client's registered
// keys only: its inline JWKS or its jwks_uri.
func (a *ClientAuthenticator) verifySignature(ctx context.Context, c *store.Client, p *parsedAssertion) (*assertionClaims, error) {
	var candidates []jose.JSONWebKey
	for _, refetch := range []bool{false, true} {
		set, err := a.clientKeys(ctx, c, refetch)
		if err != nil {
			return nil, err
		}
		candidates = usableKeys(set, p.kid, p.alg)
		if len(candidates) > MaxKeysWithoutKid {
			if p.kid == "" {
				return nil, InvalidClient("client assertion has no kid, and %d of the client's keys could have made it: name the key in the kid header (at most %d are tried without one)",
					len(candidates), MaxKeysWithoutKid)
			}
			return nil, InvalidClient("client assertion's kid '%s' names %d of the client's keys; at most %d are tried", p.kid, len(candidates), MaxKeysWithoutKid)
		}
		for i := range candidates {
			var claims assertionClaims
			if err := p.token.Claims(candidates[i].Key, &claims); err == nil {
				return &claims, nil
			}
		}
		// Refetch only when the kid is not in the set, or there is none
		// and the keys held do not verify: a key rotation at the client (a
		// client with one key need not name it, OpenID Connect Core
		// §10.1.1). A bad signature by a named, known key is just bad.
		// Anyone can make the node refetch by naming a made-up kid, so
		// the kid-less case adds nothing an attacker lacks; the rate
		// limit is what bounds both.
		if c.JWKSURI == "" || len(candidates) > 0 && p.kid != "" {
			break
		}
	}
	// A client's keys are public: saying that none of them fits the
	// assertion's kid and alg tells its developer which header to mend,
	// and an attacker nothing the client's JWK set does not. The kid is
	// not repeated: it is the sender's, and error_description holds
	// printable ASCII only (RFC 6749 §5.2).
	switch {
	case len(candidates) > 0:
		return nil, InvalidClient("client assertion signature is invalid")
	case p.kid != "":
		return nil, InvalidClient("no key registered for the client has the client assertion's kid and can check an %s signature (its kid and alg headers)", p.alg)
	default:
		return nil, InvalidClient("no key registered for the client can check an %s signature (the client assertion's alg header)", p.alg)
	}
}

// usableKeys are the public signing keys that can check a signature
// made with alg under kid (any kid if kid is empty): of the key type, and
// for ECDSA the curve, that alg names (RFC 7518 §3.1, RFC 8037 §3.1).
func usableKeys(set jose.JSONWebKeySet, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Use != "" && k.Use != "sig" || k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if !k.Valid() || !k.IsPublic() || !keyFitsAlg(k.Key, alg) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// keyFitsAlg reports whether key is of the type, and curve, alg signs
// with.
func keyFitsAlg(key any, alg string) bool {
	switch jose.SignatureAlgorithm(alg) {
	case jose.ES256:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P256()
	case jose.ES384:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == elliptic.P384()
	case jose.RS256, jose.PS256:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

func (a *ClientAuthenticator) clientKeys(ctx context.Context, c *store.Client, refetch bool) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if len(c.JWKS) > 0 {
		a.mu.Lock()
		set, ok := a.inline[string(c.JWKS)]
		a.mu.Unlock()
		if ok {
			return set, nil
		}
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return set, fmt.Errorf("client %s: registered jwks: %w", c.ID, err)
		}
		a.mu.Lock()
		if a.inline == nil || len(a.inline) >= maxInlineJWKS {
			a.inline = map[string]jose.JSONWebKeySet{}
		}
		a.inline[string(c.JWKS)] = set
		a.mu.Unlock()
		return set, nil
	}
	if c.JWKSURI == "" {
		return set, InvalidClient("client has no registered keys")
	}
	return a.fetchJWKS(ctx, c.JWKSURI, refetch)
}

func (a *ClientAuthenticator) fetchJWKS(ctx context.Context, uri string, refetch bool) (jose.JSONWebKeySet, error) {
	var (
		now    time.Time
		cached *fetchedJWKS
	)
	for {
		now = a.now()
		a.mu.Lock()
		cached = a.jwks[uri]
		if set, ok, err := a.cachedJWKS(cached, now, refetch); ok {
			cached.usedAt = now
			a.mu.Unlock()
			return set, err
		}
		// One fetch of a jwks_uri at a time: requests that need it while
		// it runs wait for its result, so a burst of assertions (any
		// caller can send one with an unknown kid) makes one request to
		// the client's server, not one each.
		wait := a.fetching[uri]
		if wait == nil {
			if a.fetching == nil {
				a.fetching = map[string]chan struct{}{}
			}
			done := make(chan struct{})
			a.fetching[uri] = done
			a.mu.Unlock()
			defer func() {
				a.mu.Lock()
				delete(a.fetching, uri)
				a.mu.Unlock()
				close(done)
			}()
			break
		}
		a.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return jose.JSONWebKeySet{}, ctx.Err()
		}
	}
	// The fetch serves every request waiting for it, so it is bounded by
	// the HTTP client's timeout, not by the request that started it.
	set, err := a.download(context.WithoutCancel(ctx), uri)
	if err != nil {
		// A client may keep a secret in its jwks_uri's query: the log
		// shows it, and where a redirect pointed, without one.
		if a.Log != nil {
			a.Log.WarnContext(ctx, "jwks_uri fetch failed", "jwks_uri", httpx.RedactURL(uri), "err", redactURLError(err))
		}
		// Stale keys, if any, are served while the client's server is
		// down; a jwks_uri never fetched leaves none.
		failed := &fetchedJWKS{failedAt: now}
		if cached != nil {
			failed.set, failed.fetchedAt = cached.set, cached.fetchedAt
		}
		a.storeJWKS(uri, failed)
		if !failed.fetchedAt.IsZero() {
			return failed.set, nil
		}
		if errors.Is(err, errJWKSRedirect) {
			return set, InvalidClient("could not fetch the client's jwks_uri: it answered with a redirect, which is not followed")
		}
		if errors.Is(err, errJWKSContentType) {
			return set, InvalidClient("could not fetch the client's jwks_uri: it answered with a Content-Type other than application/json or application/jwk-set+json")
		}
		return set, InvalidClient("could not fetch the client's jwks_uri")
	}
	a.storeJWKS(uri, &fetchedJWKS{set: set, fetchedAt: now})
	return set, nil
}

// redactURLError returns err with the URL it names (Go's *url.Error) cut
// down by httpx.RedactURL.
func redactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: httpx.RedactURL(ue.URL), Err: ue.Err}
}

// cachedJWKS returns what cached holds for a request (refetch: one that
// met an unknown kid) at now, with ok false when the jwks_uri must be
// fetched instead.
func (a *ClientAuthenticator) cachedJWKS(cached *fetchedJWKS, now time.Time, refetch bool) (jose.JSONWebKeySet, bool, error) {
	if cached == nil {
		return jose.JSONWebKeySet{}, false, nil
	}
	age := now.Sub(cached.fetchedAt)
	fresh := age >= 0 && age < orDefault(a.JWKSCacheTTL, DefaultJWKSCacheTTL)
	if refetch {
		fresh = age >= 0 && age < orDefault(a.JWKSRefetch, DefaultJWKSRefetch)
	}
	// While the jwks_uri fails, it is tried again at most every
	// JWKSRefetch: each try may take the whole HTTP timeout, and
	// every request of the client would wait it out.
	if since := now.Sub(cached.failedAt); !cached.failedAt.IsZero() && since >= 0 && since < orDefault(a.JWKSRefetch, DefaultJWKSRefetch) {
		fresh = true
	}
	if fresh && cached.fetchedAt.IsZero() {
		return cached.set, true, InvalidClient("could not fetch the client's jwks_uri")
	}
	return cached.set, fresh, nil
}

// storeJWKS records what fetching uri gave. Entries are keyed by
// the jwks_uri values clients registered, never one a request names;
// past maxFetchedJWKS of them, the one used longest ago is dropped.
func (a *ClientAuthenticator) storeJWKS(uri string, f *fetchedJWKS) {
	f.usedAt = a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jwks == nil {
		a.jwks = map[string]*fetchedJWKS{}
	}
	if _, ok := a.jwks[uri]; !ok && len(a.jwks) >= maxFetchedJWKS {
		var oldest string
		for u, e := range a.jwks {
			if oldest == "" || e.usedAt.Before(a.jwks[oldest].usedAt) {
				oldest = u
			}
		}
		delete(a.jwks, oldest)
	}
	a.jwks[uri] = f
}

// errJWKSRedirect is a jwks_uri that answered with a redirect.
var errJWKSRedirect = errors.New("jwks_uri: redirect refused")

// errJWKSContentType is a jwks_uri that answered with a body that says
// it is not JSON: an error page, say, or an HTML login page in front of
// the keys.
var errJWKSContentType = errors.New("jwks_uri: not application/json or application/jwk-set+json")

func (a *ClientAuthenticator) download(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	hc := http.Client{Timeout: 5 * time.Second}
	if a.HTTPClient != nil {
		hc = *a.HTTPClient
	}
	// A redirect could take the fetch to another host, to plain http or
	// to an address the registered URL does not name: the keys must come
	// from the jwks_uri itself.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if hc.Timeout <= 0 {
		hc.Timeout = 5 * time.Second
	}
	if hc.Transport == nil {
		a.transportOnce.Do(func() { a.transport = httpx.OutboundTransport() })
		hc.Transport = a.transport
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return set, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := hc.Do(req)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return set, fmt.Errorf("%w: status %d to %q", errJWKSRedirect, resp.StatusCode, httpx.RedactURL(resp.Header.Get("Location")))
	}
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("jwks_uri: status %d", resp.StatusCode)
	}
	// RFC 7517 §8.5.1 registers application/jwk-set+json; most servers
	// send application/json. Parameters (charset) are allowed.
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" && mt != "application/jwk-set+json" {
		return set, fmt.Errorf("%w: Content-Type %q", errJWKSContentType, ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return set, err
	}
	if len(body) > maxJWKSSize {
		return set, errors.New("jwks_uri: response too large")
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, fmt.Errorf("jwks_uri: %w", err)
	}
	return set, nil
}
