package config

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/varde-eid/varde/internal/httpx"
)

// Version is the configuration format version this build reads.
const Version = 1

// Config is a node's whole configuration, read once by Load.
type Config struct {
	// Version must be 1.
	Version int `yaml:"version"`
	// Issuer is the OpenID issuer URL, e.g. "https://id.example.no", or
	// with a path under which the node serves everything,
	// "https://login.example.no/eid" (ADR 25); for local runs
	// "http://localhost:8080". Env VARDE_ISSUER.
	Issuer string `yaml:"issuer"`
	// Listen is the HTTP listen address; default ":8080". Env VARDE_LISTEN.
	Listen string `yaml:"listen"`
	// Node names this node in logs, keys and status: letters, digits,
	// '.', '_' and '-', at most 63. Default the host name. Env VARDE_NODE.
	Node     string   `yaml:"node"`
	Server   Server   `yaml:"server"`
	Store    Store    `yaml:"store"`
	Keys     Keys     `yaml:"keys"`
	OIDC     OIDC     `yaml:"oidc"`
	Passkey  Passkey  `yaml:"passkey"`
	Session  Session  `yaml:"session"`
	Audit    Audit    `yaml:"audit"`
	Health   Health   `yaml:"health"`
	Status   Status   `yaml:"status"`
	Support  Support  `yaml:"support"`
	Pages    Pages    `yaml:"pages"`
	Log      Log      `yaml:"log"`
	Metrics  Metrics  `yaml:"metrics"`
	Shutdown Shutdown `yaml:"shutdown"`
	Debug    Debug    `yaml:"debug"`
	// Clients declared here are written to the store at start-up and
	// replace stored clients with the same ID. A client once declared
	// here and taken out is removed from the store at the next start,
	// its grants revoked; clients added with varde clients add stay.
	Clients []Client `yaml:"clients"`
	// Upstreams are the upstream OpenID providers Varde brokers logins to,
	// besides its own passkey provider.
	Upstreams []Upstream `yaml:"upstreams"`
}

// Server configures how the node serves HTTP.
type Server struct {
	// TrustedProxies are the reverse proxies and load balancers in front
	// of the node, as IP addresses ("127.0.0.1") or networks in CIDR
	// notation ("10.0.0.0/24"). A request whose TCP peer is one of them
	// is taken to come from the address its X-Forwarded-For names,
	// read from the right past every address listed here; from any
	// other peer the header is ignored and the peer is the client. That
	// address goes into the access log and the audit events of the
	// request (docs/adr/0033). Default none: the header is believed
	// from no one. Env VARDE_SERVER_TRUSTED_PROXIES, comma-separated.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// TrustedPrefixes returns TrustedProxies as the networks
// httpx.ClientAddress takes.
func (s Server) TrustedPrefixes() ([]netip.Prefix, error) {
	p, err := httpx.ParseTrustedProxies(s.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	return p, nil
}

// Store selects and configures the storage backend.
type Store struct {
	// Driver is "sqlite", the default (one node, an embedded database
	// file), or "postgres" (several nodes over one PostgreSQL database;
	// see docs/adr/0013). Env VARDE_STORE_DRIVER.
	Driver string `yaml:"driver"`
	// DSN: for sqlite a file path without URI parameters (no ? or #:
	// Varde sets the pragmas), default "varde.db"; for postgres a
	// connection URL or key=value string as libpq takes it, required
	// (postgres://varde@db.example/varde?sslmode=verify-full). A
	// password is better given in VARDE_STORE_DSN, PGPASSWORD or a
	// ~/.pgpass file than in the configuration file. Env VARDE_STORE_DSN.
	DSN string `yaml:"dsn"`
	// FlowState is where login flow state lives (authorization requests,
	// ceremony challenges, authorization codes, the client assertion
	// replay cache): "memory", this process (the default with sqlite,
	// whose file one node writes; see docs/adr/0007), or "store", the
	// database (the default and the only choice with postgres, where
	// nodes share it). In memory a restart ends logins in flight.
	// Env VARDE_STORE_FLOW_STATE.
	FlowState string `yaml:"flow_state"`
	// StartTimeout, with postgres, is how long a starting node waits
	// for a server that takes writes (one that does not answer, or a
	// standby, during a failover) before it gives up and exits; 0, the
	// default, waits as long as it takes, since a node that exits
	// stays down once its supervisor stops restarting it. Not with
	// sqlite, whose file is there or not.
	StartTimeout time.Duration `yaml:"start_timeout"`
}

// Shared reports whether several nodes may write the store at once
// (postgres): then no node may count on being the only one.
func (s Store) Shared() bool { return s.Driver == "postgres" }

// Keys configures the node's signing key and subject salt.
type Keys struct {
	// SigningKeyFile is a PEM file with this node's ECDSA P-256 private
	// key (PKCS#8 or SEC 1; SigningKeyHowTo makes one). Env
	// VARDE_SIGNING_KEY_FILE. Required unless the issuer is on localhost
	// or a loopback address; there, if empty, a key is generated at
	// start-up (demos and tests).
	SigningKeyFile string `yaml:"signing_key_file"`
	// RSASigningKeyFile is a PEM file with this node's RSA private key
	// (at least 2048 bits, 3072 recommended; PKCS#8 or PKCS#1;
	// RSASigningKeyHowTo makes one), which signs the ID tokens and
	// logout tokens of clients registered with
	// id_token_signed_response_alg RS256 (ADR 32). Env
	// VARDE_RSA_SIGNING_KEY_FILE. Optional: a node without it signs
	// ES256 only, and refuses to start if a client wants RS256. Where
	// the ES256 key is made up at start-up, an RSA key is too, unless
	// this names one.
	RSASigningKeyFile string `yaml:"rsa_signing_key_file"`
	// SubjectSaltFile holds the secret salt for pairwise subject
	// identifiers (at least 32 bytes). Every node of a deployment must
	// use the same salt, and it must never change: it would change every
	// person's sub. Env VARDE_SUBJECT_SALT_FILE.
	SubjectSaltFile string `yaml:"subject_salt_file"`
}

// SignsRS256 reports whether a node of these settings has an RSA key:
// one from RSASigningKeyFile, or one made up at start-up along with its
// ES256 key, where SigningKeyFile is empty.
func (k Keys) SignsRS256() bool { return k.RSASigningKeyFile != "" || k.SigningKeyFile == "" }

// OIDC configures the OpenID provider endpoints. Each lifetime has an
// upper bound (the Max* constants).
type OIDC struct {
	CodeLifetime         time.Duration `yaml:"code_lifetime"`          // default 60s, at most 60s
	AuthRequestLifetime  time.Duration `yaml:"auth_request_lifetime"`  // default 10m, at most 1h
	PARLifetime          time.Duration `yaml:"par_lifetime"`           // default 90s, at most 10m
	AccessTokenLifetime  time.Duration `yaml:"access_token_lifetime"`  // default 10m, at most 1h
	IDTokenLifetime      time.Duration `yaml:"id_token_lifetime"`      // default 10m, at most 1h
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"` // default 8h, at most 90 days (2160h)
	// DPoPNonces makes every DPoP proof at the PAR, token and UserInfo
	// endpoints carry a nonce this server handed out in the last 5 to 10
	// minutes (RFC 9449 §8, §9), so that someone who held a client's key
	// only briefly cannot have made proofs for later. A proof without a
	// fresh nonce is refused with use_dpop_nonce and the nonce to use,
	// and the client tries again; DPoP client libraries do that by
	// themselves. Default true (docs/adr/0014). Env VARDE_OIDC_DPOP_NONCES
	// (true or false).
	DPoPNonces *bool `yaml:"dpop_nonces"`
	// RefreshReuseInterval is how long after a refresh token's rotation
	// the client it belongs to may present it again, proving the token
	// is its own (its client authentication, or a proof with the
	// token's DPoP key), and get a fresh pair in place of the one whose
	// answer it did not receive, as long as nothing from that answer
	// was used (docs/adr/0055). Default 30s, at most 60s; 0 turns it
	// off: every use of a rotated refresh token revokes its grant (RFC
	// 9700 §4.14.2). Env VARDE_OIDC_REFRESH_REUSE_INTERVAL (a duration
	// such as 30s).
	RefreshReuseInterval *time.Duration `yaml:"refresh_reuse_interval"`
}

// Passkey configures the built-in passkey provider.
type Passkey struct {
	// RPID is the WebAuthn relying party ID: the issuer's host name
	// unless set. It cannot be an IP address, and it must equal the
	// issuer's host or be a parent domain of it.
	RPID string `yaml:"rp_id"`
	// Origins allowed in WebAuthn client data; default the issuer origin
	// (scheme://host[:port]). Each origin's host must be within RPID.
	Origins []string `yaml:"origins"`
	// SyntheticEnrolment lets visitors create synthetic test persons and
	// enrol passkeys for them; such persons count as proofed at high. For
	// demos and test environments only: refused unless the issuer is on
	// localhost or a loopback address, or
	// SyntheticEnrolmentOnPublicIssuer is set too. A node with it on
	// says so in a warning at start-up.
	SyntheticEnrolment bool `yaml:"synthetic_enrolment"`
	// SyntheticEnrolmentOnPublicIssuer allows SyntheticEnrolment on an
	// issuer that is not on localhost: for a public test environment,
	// never for one where real people log in.
	SyntheticEnrolmentOnPublicIssuer bool `yaml:"synthetic_enrolment_on_public_issuer"`
}

// Session configures browser sessions at Varde.
type Session struct {
	Lifetime time.Duration `yaml:"lifetime"` // default 8h
	// IdleTimeout ends a session left unused that long, however long
	// its lifetime still runs. Each use moves the deadline, recorded at
	// most once a minute, so a session may end up to a minute sooner
	// after its last use. Default 30m, or the lifetime if shorter; it
	// cannot be longer than the lifetime.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// SecureCookie sets the Secure flag; default true unless the issuer
	// is http://localhost or http on a loopback address. It cannot be
	// false for an https issuer.
	SecureCookie *bool `yaml:"secure_cookie"`
}

// Audit configures the audit log.
type Audit struct {
	// AddressRetention is how long the client's address of an audit
	// event (ADR 33) is kept: then every node's housekeeping deletes it,
	// and the event stays, without it, and still verifies (ADR 38).
	// Addresses of events sealed before schema 0031 are in their hashed
	// body and stay with the event. Default 4320h (180 days); at least
	// 24h.
	AddressRetention time.Duration `yaml:"address_retention"`
}

// Log configures structured logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // json (default) or text
	// Access writes the access log, one line a request (method, path
	// without the query, status, duration, client address, request
	// ID), at info level rather than debug, so that a node at info keeps
	// a record of every request. Default false: a busy node writes a
	// line for each, and its proxy may keep one already.
	Access *bool `yaml:"access"`
}

// AccessAtInfo reports whether the access log is written at info
// level (log.access).
func (l Log) AccessAtInfo() bool { return l.Access != nil && *l.Access }

// Shutdown configures how a node stops (SIGTERM, SIGINT).
type Shutdown struct {
	// Drain is how long a stopping node keeps serving while /readyz
	// answers 503, before it closes its listener and finishes the
	// requests it holds: long enough for a load balancer's health checks
	// to send new requests elsewhere (their interval times the failures
	// they wait for), so that none reaches a closing listener. Default
	// 5s with postgres, where other nodes take over; 0 with sqlite, whose
	// one node has no one to hand over to. At most 1m. A second SIGTERM
	// or SIGINT ends the node at once.
	Drain *time.Duration `yaml:"drain"`
	// Grace is how long a stopping node, its listener closed, waits for
	// the requests it holds to finish. Those still running then are
	// cancelled (their store and upstream calls end), logged as cut
	// off, and waited for, so that the store is never closed under a
	// request. Default 10s; at most 5m.
	Grace *time.Duration `yaml:"grace"`
}

// Metrics configures where Prometheus metrics are served.
type Metrics struct {
	// Listen, if set, serves /metrics on this address, on a listener of
	// its own, and no longer on the public one: metrics show how many
	// people log in, through which provider, and how the node is doing,
	// which is for the operator's monitoring, not for everyone. Any
	// address (an internal interface, say "10.0.0.5:9090"); empty: on the
	// public listener, as a demo wants. Env VARDE_METRICS_LISTEN.
	Listen string `yaml:"listen"`
}

// Support is the operator's help desk, shown on error pages, on a login
// page showing an error, on the account page and on the status page
// (served and exported), where a person may need a human. Optional:
// left out, no page names a help desk, and none tells the person to
// contact one.
type Support struct {
	// URL is the help desk's web page, an absolute https URL (http only
	// on localhost).
	URL string `yaml:"url"`
	// Phone is the help desk's number as people dial it, e.g.
	// "+47 800 12 345": digits, spaces, '+', '-', '(' and ')'.
	Phone string `yaml:"phone"`
	// Hours are the opening hours, as plain text per page language (nb,
	// en, da); a language without its own text shows none.
	Hours map[string]string `yaml:"hours"`
}

// Debug configures diagnostics that are off unless asked for.
type Debug struct {
	// PprofListen, if set, serves Go's runtime profiles (net/http/pprof,
	// under /debug/pprof/) on this address, on a listener of its own and
	// never on the public one. Profiles reveal the program's internals,
	// so the host must be a loopback address or localhost, e.g.
	// "127.0.0.1:6060", and a request is answered only when it names the
	// listener by a loopback address or localhost and comes from no
	// other site's page (no DNS rebinding, no cross-site GET). Env
	// VARDE_DEBUG_PPROF_LISTEN.
	PprofListen string `yaml:"pprof_listen"`
}

// Client is a relying party declared in the configuration file.
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// AuthMethod (required): private_key_jwt, client_secret_basic or none.
	AuthMethod string `yaml:"auth_method"`
	// SecretFile holds the client secret (client_secret_basic), at least
	// 32 characters. Secrets never go in the configuration file itself.
	SecretFile string `yaml:"secret_file"`
	// JWKS is an inline JWK set (as YAML or a JSON string) or JWKSURI a
	// URL to fetch it from (private_key_jwt; exactly one of the two). The
	// set must hold public keys only. After Load, JWKS is always JSON.
	JWKS    string `yaml:"jwks"`
	JWKSURI string `yaml:"jwks_uri"`
	// RedirectURIs (at least one) and PostLogoutRedirectURIs are absolute
	// https URLs without a fragment; http only on localhost or loopback.
	// They are matched exactly, so none may hold a '*' (no wildcards).
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	RequirePAR             bool     `yaml:"require_par"`
	// AllowedLevels: "low", "substantial", "high"; empty means all.
	AllowedLevels []string `yaml:"allowed_levels"`
	// SectorID groups clients for pairwise subjects; default the client
	// ID, which then must not be another client's sector_id.
	SectorID string `yaml:"sector_id"`
	// SectorIDChangeAccepted names the sector the client had before its
	// sector_id changed (its old sector_id, or its ID if it had none): a
	// node refuses to start with a changed sector for a client people
	// have logged in to, since every one of them would get a new subject
	// identifier there, unless this says the change is meant. Then the
	// node changes it, revokes the client's refresh and access tokens
	// and records the change in the audit log (ADR 35). Empty: no
	// change is accepted.
	SectorIDChangeAccepted string `yaml:"sector_id_change_accepted"`
	// Claims the client may receive beyond sub: name, given_name,
	// family_name, birthdate, national_id.
	Claims []string `yaml:"claims"`
	// Providers are the providers this client accepts ("passkey" or an
	// upstream's id); empty means all.
	Providers []string `yaml:"providers"`
	// DegradedLevel is the degraded-mode policy: the lower level the
	// client accepts when no provider that meets the level it asked for is
	// up, the passkey provider aside (ADR 63); such logins carry
	// "degraded": true. Empty: never lowered.
	DegradedLevel string `yaml:"degraded_level"`
	// LegacyEndpointAudience (private_key_jwt only) lets the client's
	// assertions name the token, PAR, revocation or introspection
	// endpoint URL as their audience, alone, instead of the issuer
	// identifier, which is all any other client may name (draft-ietf-oauth-rfc7523bis), and
	// write that one audience as a one-element array, where any other
	// client must write a string (FAPI 2.0, ADR 51). A compatibility
	// switch for a relying party that cannot send the issuer yet; default
	// false.
	LegacyEndpointAudience bool `yaml:"legacy_endpoint_audience"`
	// DPoPBoundAccessTokens makes the client prove possession of a key
	// with a DPoP proof at every token request (RFC 9449 §5.2), so every
	// access token it gets is bound to that key and is worthless to
	// whoever steals it. Default false: such a client may still use DPoP.
	DPoPBoundAccessTokens bool `yaml:"dpop_bound_access_tokens"`
	// RefreshTokens lets the client get refresh tokens; default false:
	// its token responses have none. One of a grant without the
	// offline_access scope ends with the person's session at Varde
	// (ADR 22).
	RefreshTokens bool `yaml:"refresh_tokens"`
	// IDTokenSignedResponseAlg is the algorithm its ID tokens, and the
	// logout tokens sent to it, are signed with (OpenID Connect
	// Registration 1.0 §2): ES256, the default, or RS256 for a relying
	// party that verifies nothing else, which needs
	// keys.rsa_signing_key_file (ADR 32).
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
	// StatusWebhook is where the node POSTs signed notifications when a
	// component the client depends on changes state (package webhook):
	// an absolute https URL (http only on localhost or loopback), no
	// fragment or user information. Empty: no notifications.
	StatusWebhook string `yaml:"status_webhook"`
	// StatusComponents are the components the client hears about
	// ("store", "passkey", an upstream's id); empty: the providers it
	// accepts plus "store".
	StatusComponents []string `yaml:"status_components"`
	// BackchannelLogoutURI is where the node POSTs a logout token when a
	// session in which the client received tokens ends (OpenID Connect
	// Back-Channel Logout 1.0 §2.2): an absolute https URL (http only on
	// localhost or loopback), no fragment or user information. Empty:
	// the client is not told.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// BackchannelLogoutSessionRequired is the client's
	// backchannel_logout_session_required (Back-Channel Logout 1.0
	// §2.2): it needs sid in every logout token. Always met, as every
	// logout token carries sid, so it changes nothing; it needs
	// BackchannelLogoutURI.
	BackchannelLogoutSessionRequired bool `yaml:"backchannel_logout_session_required"`
	// IntrospectTokensOf makes this client the resource server of the
	// clients it names: it may introspect their access tokens (RFC 7662)
	// and learn the subject identifier each one knows the person by, so
	// they must share its pairwise sector (sector_id). Such a client
	// needs no redirect URI, and must authenticate (not auth_method
	// none). Every client may introspect its own tokens.
	IntrospectTokensOf []string `yaml:"introspect_tokens_of"`
}
