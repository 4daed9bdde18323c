package oidcup

import (
	"crypto"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/identity"
	"github.com/varde-eid/varde/internal/oauth2"
)

// Client authentication methods at the upstream's token and PAR
// endpoints.
const (
	// AuthPrivateKeyJWT signs a client assertion with Config.ClientKey
	// (RFC 7523 §2.2, OpenID Connect Core §9).
	AuthPrivateKeyJWT = "private_key_jwt"
	// AuthClientSecretBasic sends Config.ClientSecret with HTTP Basic
	// authentication (RFC 6749 §2.3.1).
	AuthClientSecretBasic = "client_secret_basic"
)

// CallbackPath is the path of provider id's redirect URI at Varde: the
// path Register mounts and Config.RedirectURI must have.
func CallbackPath(id string) string { return "/upstream/" + id + "/callback" }

// JWKSPath is where Register serves the public key of a private_key_jwt
// client, for upstreams that fetch client keys from a jwks_uri.
func JWKSPath(id string) string { return "/upstream/" + id + "/jwks" }

// Config describes one upstream OpenID provider and Varde's registration
// there. It holds no policy beyond what the upstream can prove: the
// broker decides whether that is enough.
type Config struct {
	// ID is stable and URL-safe ("bankid", "minid"): lower-case letters,
	// digits and '-', at most 32.
	ID string
	// Name is shown to people, by language tag; "en" is required.
	Name map[string]string
	// Issuer is the upstream's issuer identifier, exactly as in its
	// discovery document and ID tokens.
	Issuer string
	// ClientID is Varde's client_id at the upstream.
	ClientID string
	// AuthMethod is AuthPrivateKeyJWT or AuthClientSecretBasic.
	AuthMethod string
	// ClientKey signs client assertions (private_key_jwt). ECDSA P-256,
	// P-384 or P-521, RSA (at least 2048 bits) or Ed25519; it may live in
	// a hardware module.
	ClientKey crypto.Signer
	// KeyID is the assertion's kid; default the key's RFC 7638
	// thumbprint. NextClientKey and PreviousClientKey are always named
	// by their thumbprints, so a key keeps its kid through a rotation
	// only while this is empty.
	KeyID string
	// NextClientKey (private_key_jwt, optional) is the key that is to
	// replace ClientKey: published at JWKSPath beside it, so that the
	// upstream knows it before any node signs with it, and never used
	// to sign (ADR 56).
	NextClientKey crypto.Signer
	// PreviousClientKey (private_key_jwt, optional) is the key ClientKey
	// replaced: still published, never used to sign, while nodes not yet
	// restarted sign with it and the upstream may fetch the key set from
	// a node that was (ADR 56).
	PreviousClientKey crypto.Signer
	// ClientKeyAlg is the assertion's alg; default ES256/ES384/ES512 by
	// curve, RS256 for RSA, EdDSA for Ed25519. PS256 is also accepted
	// for RSA keys.
	ClientKeyAlg string
	// ClientSecret is the secret for client_secret_basic.
	ClientSecret string
	// RedirectURI is Varde's callback as registered at the upstream:
	// Varde's issuer, which may have a path, followed by
	// CallbackPath(ID).
	RedirectURI string
	// Scopes requested; "openid" is always included.
	Scopes []string
	// UsePAR pushes authorization requests (RFC 9126) even when the
	// upstream does not require it.
	UsePAR bool
	// PushEarly, for an upstream whose requests are pushed, pushes a
	// login's request when the relying party's own pushed request names
	// this upstream in provider_hint, before the browser arrives (see
	// Prepare), instead of while the browser waits.
	PushEarly bool
	// PromptLogin sends prompt=login and max_age=0, so every login
	// through Varde is a fresh authentication at the upstream rather than
	// a reuse of the upstream's own single sign-on session, and refuses
	// an ID token without auth_time ("no_auth_time"; max_age makes it
	// required) or with one older than the request ("stale_auth_time").
	// Without it, the same is asked only of the logins whose relying
	// party asked for a new authentication (prompt=login or max_age=0),
	// a relying party's other max_age is passed on as it is, and an ID
	// token without auth_time counts as a login at its iat.
	PromptLogin bool
	// ForwardLoginHint passes the relying party's login_hint, which may
	// be a national identity number, on to this upstream (OIDC Core
	// §3.1.2.1), and only when the browser has come for a login here:
	// an attempt that carries a hint is then not pushed early (see
	// Prepare), so no upstream the person does not log in with is told
	// it. Without it the upstream never sees the hint and the person
	// says who they are there.
	ForwardLoginHint bool
	// MaxLevel is the highest level logins through this upstream can
	// reach, whatever the upstream asserts: its identity proofing and
	// authentication as Varde's operator has assessed them.
	MaxLevel assurance.Level
	// ACRMap maps the upstream's acr values to levels. An ID token whose
	// acr is not in the map is refused; a mapped level above MaxLevel is
	// capped at MaxLevel.
	ACRMap map[string]assurance.Level
	// IdentifierClaim names the ID token claim holding the person's
	// identifier ("pid", "national_id"). Its value is either a string or
	// an object {"scheme": ..., "value": ...}.
	IdentifierClaim string
	// IdentifierSchemes are the schemes the claim may hold ("no:fnr",
	// "no:dnr"). A string value takes the one scheme it is valid for; one
	// valid in several of them (a Finnish HETU with '-' is also a
	// well-formed Danish CPR number; two passport schemes always
	// overlap) is refused ("ambiguous_identifier"), so an upstream that
	// sends such identifiers must send the object form. An object's
	// scheme must be one of these.
	IdentifierSchemes []string
	// TrustedAudiences are audiences besides ClientID that an ID token
	// may also name (OpenID Connect Core §3.1.3.7 item 3). Usually none.
	TrustedAudiences []string
	Timeouts         Timeouts
}

// Timeouts bound the exchanges with the upstream. Zero fields take the
// defaults.
type Timeouts struct {
	// Request bounds each request other than the token request:
	// discovery, JWKS and PAR. Default 5 s.
	Request time.Duration
	// Token bounds the token request, reading the response included.
	// Default 10 s.
	Token time.Duration
	// Login is how long a person may take at the upstream between Start
	// and the callback. Default 10 min.
	Login time.Duration
	// Discovery is how long fetched metadata is used before it is
	// fetched again. Default 1 h.
	Discovery time.Duration
	// JWKS is how long a fetched key set is used. Default 1 h.
	JWKS time.Duration
	// Refetch is the least time between two fetches that are forced by
	// an unknown kid or by a failure. Default 30 s.
	Refetch time.Duration
	// Leeway is the clock skew allowed on exp, iat, nbf and auth_time.
	// Default 30 s.
	Leeway time.Duration
	// MaxTokenAge is how long ago an ID token may have been issued.
	// Default 5 min.
	MaxTokenAge time.Duration
}

// Default timeouts.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultTokenTimeout   = 10 * time.Second
	DefaultLoginTimeout   = 10 * time.Minute
	DefaultDiscoveryTTL   = time.Hour
	DefaultJWKSTTL        = time.Hour
	DefaultRefetch        = 30 * time.Second
	DefaultLeeway         = 30 * time.Second
	DefaultMaxTokenAge    = 5 * time.Minute
)

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Request, DefaultRequestTimeout)
	def(&t.Token, DefaultTokenTimeout)
	def(&t.Login, DefaultLoginTimeout)
	def(&t.Discovery, DefaultDiscoveryTTL)
	def(&t.JWKS, DefaultJWKSTTL)
	def(&t.Refetch, DefaultRefetch)
	def(&t.Leeway, DefaultLeeway)
	def(&t.MaxTokenAge, DefaultMaxTokenAge)
	return t
}

// Validate reports every problem with c at once, without any I/O.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validID(c.ID) {
		bad("id must be 1 to 32 lower-case letters, digits or '-'")
	}
	if c.Name["en"] == "" {
		bad("name must have an \"en\" entry")
	}
	if err := checkURL(c.Issuer); err != nil {
		bad("issuer: %w", err)
	}
	if c.ClientID == "" {
		bad("client_id is required")
	}
	switch c.AuthMethod {
	case AuthPrivateKeyJWT:
		if c.ClientKey == nil {
			bad("private_key_jwt needs a client key")
		} else if _, err := assertionAlg(c.ClientKey, c.ClientKeyAlg); err != nil {
			bad("client key: %w", err)
		}
		for _, e := range c.rotationProblems() {
			bad("%w", e)
		}
		if c.ClientSecret != "" {
			bad("a client secret is not used with private_key_jwt")
		}
	case AuthClientSecretBasic:
		if c.ClientSecret == "" {
			bad("client_secret_basic needs a client secret")
		}
		if c.ClientKey != nil || c.NextClientKey != nil || c.PreviousClientKey != nil {
			bad("a client key is not used with client_secret_basic")
		}
	default:
		bad("auth method must be %s or %s", AuthPrivateKeyJWT, AuthClientSecretBasic)
	}
	if err := checkURL(c.RedirectURI); err != nil {
		bad("redirect_uri: %w", err)
	} else if u, _ := url.Parse(c.RedirectURI); !strings.HasSuffix(u.Path, CallbackPath(c.ID)) || strings.HasSuffix(basePath(u.Path, c.ID), "/") || u.RawQuery != "" {
		bad("redirect_uri must be Varde's issuer followed by %s", CallbackPath(c.ID))
	}
	for _, s := range c.Scopes {
		if !oauth2.ValidScope(s) {
			bad("scope %q is not a valid scope token", s)
		}
	}
	if c.MaxLevel < assurance.Low || c.MaxLevel > assurance.High {
		bad("max level must be low, substantial or high")
	}
	if len(c.ACRMap) == 0 {
		bad("acr map must map at least one upstream acr value to a level")
	}
	for acr, l := range c.ACRMap {
		if acr == "" || l < assurance.Low || l > assurance.High {
			bad("acr map: %q must map to low, substantial or high", acr)
		}
	}
	if c.IdentifierClaim == "" {
		bad("identifier claim is required")
	}
	if len(c.IdentifierSchemes) == 0 {
		bad("at least one identifier scheme is required")
	}
	for _, s := range c.IdentifierSchemes {
		if err := identity.Validate(s, ""); errors.Is(err, identity.ErrUnknownScheme) || errors.Is(err, identity.ErrState) {
			bad("identifier scheme %q is unknown", s)
		}
	}
	t := c.Timeouts
	for _, d := range []time.Duration{t.Request, t.Token, t.Login, t.Discovery, t.JWKS, t.Refetch, t.Leeway, t.MaxTokenAge} {
		if d < 0 {
			bad("timeouts cannot be negative")
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("upstream %q: %w", c.ID, err)
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// checkURL accepts an absolute https URL without a fragment, or http on
// a loopback address or localhost (for tests and the demo). Discovery
// §4.3 and RFC 9207 compare issuers as exact strings, so nothing is
// normalised.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not have a fragment")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if httpx.LoopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http only on loopback)")
	}
	return errors.New("must use https")
}

// basePath is the path Varde is served under, the issuer's, as
// redirect, the path of a redirect URI that ends with CallbackPath(id),
// says: "" at the root of the host.
func basePath(redirect, id string) string {
	return strings.TrimSuffix(redirect, CallbackPath(id))
}
