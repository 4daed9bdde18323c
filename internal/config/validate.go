package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/store"
)

// Upper bounds on the lifetimes in OIDC. A longer lifetime is more time
// for a stolen code, request URI or token to be used, and for a person
// whose access was withdrawn to go on being let in.
const (
	// MaxCodeLifetime: FAPI 2.0 Security Profile §5.3.2.1 ("shall issue
	// authorization codes with a maximum lifetime of 60 seconds").
	MaxCodeLifetime = 60 * time.Second
	// MaxPARLifetime: RFC 9126 §2.2 expects request URIs to live
	// "between 5 and 600 seconds".
	MaxPARLifetime = 10 * time.Minute
	// MaxAuthRequestLifetime is how long a person may take over a login.
	MaxAuthRequestLifetime = time.Hour
	// MaxAccessTokenLifetime and MaxIDTokenLifetime: bearer tokens that
	// no one can revoke once handed on (an ID token at all; an access
	// token at a resource server that does not ask Varde) stay short;
	// relying parties refresh.
	MaxAccessTokenLifetime = time.Hour
	MaxIDTokenLifetime     = time.Hour
	// MaxRefreshTokenLifetime bounds a grant's refresh tokens from the
	// login, however often they are rotated.
	MaxRefreshTokenLifetime = 90 * 24 * time.Hour
	// MaxRefreshReuseInterval bounds OIDC.RefreshReuseInterval: the
	// time a client's retry takes, a timeout and a backoff or two, and
	// no longer, since within it a rotated refresh token is not taken
	// for a stolen one (docs/adr/0055).
	MaxRefreshReuseInterval = time.Minute
)

// MinLifetime is the shortest lifetime in OIDC and of a session. Tokens
// carry their times in whole seconds (RFC 7519 §2, NumericDate), so a
// shorter one would expire as it is issued, and every login would fail:
// "code_lifetime: 60ms" for 60s is refused, not served.
const MinLifetime = time.Second

// MinAddressRetention is the shortest audit.address_retention: a day,
// so that a person who sees a login they did not make, or the help desk
// they call, still finds where it came from.
const MinAddressRetention = 24 * time.Hour

// KnownClaims returns the claims a client may be allowed beyond sub.
func KnownClaims() []string {
	return []string{"name", "given_name", "family_name", "birthdate", "national_id"}
}

// FieldError is one problem with one field, named by its path in the
// file, e.g. "clients[2].redirect_uris[0]".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// problems collects FieldErrors in the order they are found.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Validate reports every problem with c at once, as errors.Join of
// *FieldError values (nil if there is none). It does no I/O: files named
// by the configuration are read later, by their users.
func (c *Config) Validate() error {
	var p problems
	switch {
	case c.Version == 0:
		p.add("version", "missing; must be %d", Version)
	case c.Version != Version:
		p.add("version", "is %d; this build reads version %d", c.Version, Version)
	}
	issuer := c.validateIssuer(&p)
	if c.Listen == "" {
		p.add("listen", "required")
	} else {
		checkListen(&p, "listen", c.Listen)
	}
	if !validNode(c.Node) {
		p.add("node", "%q must be 1 to 63 letters, digits, '.', '_' or '-'", c.Node)
	}
	for i, tp := range c.Server.TrustedProxies {
		if _, err := httpx.ParseTrustedProxy(tp); err != nil {
			p.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	switch c.Store.Driver {
	case "sqlite":
	case "postgres":
		if c.Store.FlowState == FlowStateMemory {
			// ADR 7: nodes that share a database share login flow state
			// through it; each node's memory would split every login.
			p.add("store.flow_state", "must be store with postgres, where several nodes share the database")
		}
	case "":
		p.add("store.driver", "required")
	default:
		p.add("store.driver", "%q is not sqlite or postgres", c.Store.Driver)
	}
	if c.Store.DSN == "" {
		p.add("store.dsn", "required")
	} else if c.Store.Driver == "sqlite" && looksLikePostgresDSN(c.Store.DSN) {
		// Not shown: it may hold a password. Taken as a file name, it
		// would be logged at start and made into directories.
		p.add("store.dsn", "is a PostgreSQL connection string, not a SQLite file: set store.driver: postgres (or VARDE_STORE_DRIVER=postgres)")
	} else if c.Store.Driver == "sqlite" && strings.ContainsAny(c.Store.DSN, "?#") {
		// Not shown: a file: URI's parameters may hold a key
		// (?_pragma=key(...)). Taken as a file name, it would be made into
		// a lock file before the store refused it.
		p.add("store.dsn", "holds '?' or '#': for sqlite it is the database file's path, without URI parameters (Varde sets the pragmas itself)")
	}
	switch c.Store.FlowState {
	case FlowStateStore, FlowStateMemory:
	case "":
		p.add("store.flow_state", "required")
	default:
		p.add("store.flow_state", "%q is not memory or store", c.Store.FlowState)
	}
	switch t := c.Store.StartTimeout; {
	case t < 0:
		p.add("store.start_timeout", "%v is negative: 0 waits for the database as long as it takes", t)
	case t > 0 && !c.Store.Shared():
		p.add("store.start_timeout", "applies only to driver postgres: a node on sqlite does not wait for its file")
	}
	c.validateOIDC(&p)
	c.validatePasskey(&p, issuer)
	c.validatePublic(&p, issuer)
	if d := c.Shutdown.Drain; d != nil && (*d < 0 || *d > time.Minute) {
		p.add("shutdown.drain", "%v is not between 0 and 1m", *d)
	}
	if d := c.Shutdown.Grace; d != nil && (*d < 0 || *d > 5*time.Minute) {
		p.add("shutdown.grace", "%v is not between 0 and 5m", *d)
	}
	if c.Session.Lifetime <= 0 {
		p.add("session.lifetime", "must be positive")
	} else if c.Session.Lifetime < MinLifetime {
		p.add("session.lifetime", "%v is shorter than %v: every session would end as it begins", c.Session.Lifetime, MinLifetime)
	}
	if c.Session.IdleTimeout <= 0 {
		p.add("session.idle_timeout", "must be positive")
	} else if c.Session.IdleTimeout < MinLifetime {
		p.add("session.idle_timeout", "%v is shorter than %v: every session would end as it begins", c.Session.IdleTimeout, MinLifetime)
	} else if c.Session.Lifetime > 0 && c.Session.IdleTimeout > c.Session.Lifetime {
		p.add("session.idle_timeout", "%v is longer than session.lifetime (%v)", c.Session.IdleTimeout, c.Session.Lifetime)
	}
	if r := c.Audit.AddressRetention; r < MinAddressRetention {
		p.add("audit.address_retention", "%v is shorter than %v: addresses would be gone before a person or the help desk could look at them "+
			"(durations have no days: 180 days is 4320h)", r, MinAddressRetention)
	}
	if c.Session.SecureCookie != nil && !*c.Session.SecureCookie && issuer != nil && issuer.Scheme == "https" {
		p.add("session.secure_cookie", "cannot be false for an https issuer")
	}
	c.Health.validate(&p)
	c.Status.validate(&p)
	c.Support.validate(&p)
	c.Pages.validate(&p)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		p.add("log.format", "%q is not json or text", c.Log.Format)
	}
	if a := c.Metrics.Listen; a != "" {
		if checkListen(&p, "metrics.listen", a) && sameListener(a, c.Listen) {
			p.add("metrics.listen", "%q is the public listener's address (listen: %q); give metrics one of their own, or leave it empty", a, c.Listen)
		}
	}
	if a := c.Debug.PprofListen; a != "" {
		host, _, _ := net.SplitHostPort(a)
		switch {
		case !checkListen(&p, "debug.pprof_listen", a):
		case !httpx.LoopbackHost(host):
			p.add("debug.pprof_listen", "%q must be on a loopback address or localhost: profiles reveal the program's internals", a)
		case sameListener(a, c.Listen):
			p.add("debug.pprof_listen", "%q is the public listener's address (listen: %q); give profiles one of their own", a, c.Listen)
		case sameListener(a, c.Metrics.Listen):
			p.add("debug.pprof_listen", "%q is metrics.listen's address (%q); give profiles one of their own", a, c.Metrics.Listen)
		}
	}
	c.validateUpstreams(&p)
	c.validateClientProviders(&p)
	c.validateClientWebhooks(&p)
	c.validateClientSectors(&p)
	c.validateSectorChanges(&p)
	c.validateClientIntrospection(&p)
	c.validateRSAKey(&p)
	seen := make(map[string]int, len(c.Clients))
	for i := range c.Clients {
		cl := &c.Clients[i]
		path := fmt.Sprintf("clients[%d]", i)
		if j, dup := seen[cl.ID]; dup && cl.ID != "" {
			p.add(path+".id", "%q is also clients[%d].id", cl.ID, j)
		} else {
			seen[cl.ID] = i
		}
		cl.validate(&p, path)
	}
	return errors.Join(p...)
}

// checkListen checks a listener's address: host:port, the port a number
// from 0 to 65535 (0: any free port), and reports whether it is one. A
// port the node could not listen on (":99999") or a service name
// (":https", looked up on the host at start-up) would pass here and stop
// the node only when it starts.
func checkListen(p *problems, field, addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(field, "%q is not host:port", addr)
		return false
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(field, "%q: the port must be a number from 0 to 65535, e.g. :8080", addr)
		return false
	}
	return true
}

// sameListener reports whether listeners at a and b (host:port) would
// take the same port on a common address, so that the second could not
// start: the same port, not 0 (any free one), on the same host, or with
// either on every address ("", 0.0.0.0 or ::, which on Linux takes IPv4
// as well). Written differently, ":8080", "0.0.0.0:8080" and
// "[::]:8080" are one listener, and each takes "127.0.0.1:8080" too.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}
	na, errA := strconv.ParseUint(pa, 10, 16)
	nb, errB := strconv.ParseUint(pb, 10, 16)
	if errA != nil || errB != nil || na != nb || na == 0 {
		return false
	}
	ha, hb = listenHost(ha), listenHost(hb)
	return ha == "" || hb == "" || ha == hb
}

// listenHost is a listener's host as sameListener compares it: "" for
// every address, an IP address in one form, "localhost" as 127.0.0.1
// (where Go listens for it), a name in lower case.
func listenHost(h string) string {
	if strings.EqualFold(h, "localhost") {
		return "127.0.0.1"
	}
	ip := net.ParseIP(h)
	switch {
	case h == "":
		return ""
	case ip == nil:
		return strings.ToLower(h)
	case ip.IsUnspecified():
		return ""
	}
	return ip.String()
}

// validateIssuer checks the issuer and returns it parsed, or nil if it is
// unusable. OpenID Connect Discovery 1.0 §3: the issuer is a case
// sensitive https URL with scheme, host and optionally port and path, and
// no query or fragment. With a path, the node serves everything under
// it (ADR 25).
func (c *Config) validateIssuer(p *problems) *url.URL {
	if c.Issuer == "" {
		p.add("issuer", "required")
		return nil
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		p.add("issuer", "%q is not an absolute URL", c.Issuer)
		return nil
	}
	ok := true
	if u.Scheme != "https" && !(u.Scheme == "http" && httpx.LoopbackHost(u.Hostname())) {
		p.add("issuer", "%q must use https (http only on localhost or a loopback address)", c.Issuer)
		ok = false
	}
	if u.RawQuery != "" || u.ForceQuery {
		p.add("issuer", "%q must not have a query", c.Issuer)
		ok = false
	}
	if u.Fragment != "" || strings.Contains(c.Issuer, "#") {
		p.add("issuer", "%q must not have a fragment", c.Issuer)
		ok = false
	}
	if u.User != nil {
		p.add("issuer", "%q must not have user information", c.Issuer)
		ok = false
	}
	if strings.IndexFunc(c.Issuer, unicode.IsSpace) >= 0 {
		// Relying parties compare the issuer as a string with the one in
		// tokens and discovery, and build URLs on it (RFC 3986 §2 has no
		// space in a URI).
		p.add("issuer", "%q holds white space, which a URL cannot (RFC 3986 §2)", c.Issuer)
		ok = false
	}
	if u.Path != "" && !strings.HasSuffix(u.Path, "/") && !cleanBasePath(u.Path, u.RawPath) {
		// Discovery §3 allows a path; the node serves everything under
		// it (ADR 25). Plain segments only, so that the path a proxy
		// forwards, the cookie Path and the URLs in discovery compare
		// byte for byte.
		p.add("issuer", "%q has a path (%s) with a segment that is empty, . or .., or holds a character other than letters, digits and -._~", c.Issuer, u.Path)
		ok = false
	}
	if strings.HasSuffix(u.Path, "/") {
		// Discovery §4 appends "/.well-known/openid-configuration" to the
		// issuer, and RPs compare issuers as exact strings.
		p.add("issuer", "%q must not end with /: write it as %q, as relying parties compare it with the iss of every token",
			c.Issuer, strings.TrimRight(c.Issuer, "/"))
		ok = false
	}
	if !ok {
		return nil
	}
	return u
}

func (c *Config) validateOIDC(p *problems) {
	for _, d := range []struct {
		field  string
		v, max time.Duration
	}{
		{"oidc.code_lifetime", c.OIDC.CodeLifetime, MaxCodeLifetime},
		{"oidc.auth_request_lifetime", c.OIDC.AuthRequestLifetime, MaxAuthRequestLifetime},
		{"oidc.par_lifetime", c.OIDC.PARLifetime, MaxPARLifetime},
		{"oidc.access_token_lifetime", c.OIDC.AccessTokenLifetime, MaxAccessTokenLifetime},
		{"oidc.id_token_lifetime", c.OIDC.IDTokenLifetime, MaxIDTokenLifetime},
		{"oidc.refresh_token_lifetime", c.OIDC.RefreshTokenLifetime, MaxRefreshTokenLifetime},
	} {
		switch {
		case d.v <= 0:
			p.add(d.field, "must be positive")
		case d.v < MinLifetime:
			p.add(d.field, "%v is shorter than %v: everything it is the lifetime of would expire as it is issued", d.v, MinLifetime)
		case d.v > d.max:
			p.add(d.field, "%v is longer than %v", d.v, d.max)
		}
	}
	if r := c.OIDC.RefreshReuseInterval; r != nil {
		switch {
		case *r < 0:
			p.add("oidc.refresh_reuse_interval", "%v is negative; 0 turns retries off", *r)
		case *r > MaxRefreshReuseInterval:
			p.add("oidc.refresh_reuse_interval", "%v is longer than %v: within it a rotated refresh token presented again is not taken for a stolen one", *r, MaxRefreshReuseInterval)
		}
	}
}

// validatePasskey checks the WebAuthn RP ID and origins. WebAuthn Level 3
// §5.1.3 and §5.1.4: the RP ID must be a registrable domain suffix of, or
// equal to, the origin's effective domain, and origins must be secure
// contexts. The public suffix list is not consulted: an RP ID such as
// "co.uk" passes here and is refused by browsers.
func (c *Config) validatePasskey(p *problems, issuer *url.URL) {
	rpID := c.Passkey.RPID
	switch {
	case rpID == "":
		if issuer != nil {
			p.add("passkey.rp_id", "required")
		}
		return
	case issuer != nil && net.ParseIP(issuer.Hostname()) != nil:
		p.add("passkey.rp_id", "the issuer's host %q is an IP address; passkeys need the issuer on a domain name (use localhost for local runs)", issuer.Hostname())
		return
	case net.ParseIP(strings.Trim(rpID, "[]")) != nil:
		p.add("passkey.rp_id", "%q is an IP address; WebAuthn needs a domain name", rpID)
		return
	case strings.ContainsAny(rpID, ":/ ") || rpID != strings.ToLower(rpID):
		p.add("passkey.rp_id", "%q must be a lower-case host name without scheme or port", rpID)
		return
	case !strings.Contains(rpID, ".") && rpID != "localhost":
		p.add("passkey.rp_id", "%q is a top-level domain", rpID)
		return
	}
	if issuer != nil && !domainWithin(strings.ToLower(issuer.Hostname()), rpID) {
		p.add("passkey.rp_id", "%q is neither the issuer's host %q nor a parent domain of it", rpID, issuer.Hostname())
	}
	for i, o := range c.Passkey.Origins {
		field := fmt.Sprintf("passkey.origins[%d]", i)
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			p.add(field, "%q is not an origin (scheme://host[:port])", o)
			continue
		}
		if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(o, "?#") {
			p.add(field, "%q must be only scheme://host[:port]", o)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && httpx.LoopbackHost(u.Hostname())) {
			p.add(field, "%q must use https (http only on localhost or a loopback address)", o)
		}
		if !domainWithin(strings.ToLower(u.Hostname()), rpID) {
			p.add(field, "host of %q is not within rp_id %q", o, rpID)
		}
	}
}

// SigningKeyHowTo says how to make a signing key that keys.ParsePEM
// reads.
const SigningKeyHowTo = "openssl ecparam -name prime256v1 -genkey -noout -out signing-key.pem"

// RSASigningKeyHowTo says how to make an RSA signing key (3072 bits,
// PKCS #8) that keys.ParsePEM reads.
const RSASigningKeyHowTo = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rsa-signing-key.pem"

// validatePublic refuses, for an issuer that is not on localhost or a
// loopback address, what is only fit for a machine of one's own: a
// signing key made up at start-up, which relying parties stop trusting
// at the next restart, and synthetic enrolment, which lets anyone create
// an unproofed test person who logs in at high, unless a public test
// environment says so in as many words.
func (c *Config) validatePublic(p *problems, issuer *url.URL) {
	if c.Passkey.SyntheticEnrolmentOnPublicIssuer && !c.Passkey.SyntheticEnrolment {
		p.add("passkey.synthetic_enrolment_on_public_issuer", "is set but synthetic_enrolment is not")
	}
	if issuer == nil || httpx.LoopbackHost(issuer.Hostname()) {
		return
	}
	if c.Passkey.SyntheticEnrolment && !c.Passkey.SyntheticEnrolmentOnPublicIssuer {
		p.add("passkey.synthetic_enrolment", "lets anyone create an unproofed test person who logs in at level high, "+
			"so it is refused for the issuer %q, which is not on localhost; for a public test environment that must have it, "+
			"set passkey.synthetic_enrolment_on_public_issuer: true as well", c.Issuer)
	}
	if c.Keys.SigningKeyFile == "" {
		p.add("keys.signing_key_file", "required for the issuer %q, which is not on localhost: without it the node signs "+
			"with a key made up at start-up, which relying parties stop trusting at the next restart; create one with `%s`",
			c.Issuer, SigningKeyHowTo)
	}
}

// BasePath is the issuer's path ("/eid"), under which the node serves
// every endpoint, page and asset, or "" for an issuer at the root of
// its host (ADR 25).
func (c *Config) BasePath() string {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Path == "/" {
		return ""
	}
	return u.Path
}

// cleanBasePath reports whether path (raw, its escaped form, if any)
// is "/" and segments of letters, digits and -._~ (RFC 3986 §2.3),
// none of them . or .. nor empty.
func cleanBasePath(path, raw string) bool {
	if raw != "" && raw != path {
		return false
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
				return false
			}
		}
	}
	return strings.HasPrefix(path, "/")
}

// PublicIssuer reports whether the issuer is on a host other than
// localhost or a loopback address: a node people reach from elsewhere.
func (c *Config) PublicIssuer() bool {
	u, err := url.Parse(c.Issuer)
	return err == nil && u.Hostname() != "" && !httpx.LoopbackHost(u.Hostname())
}

// domainWithin reports whether host is domain or a subdomain of it.
func domainWithin(host, domain string) bool {
	return host == domain || strings.HasSuffix(host, "."+domain)
}

func validNode(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (cl *Client) validate(p *problems, path string) {
	switch {
	case cl.ID == "":
		p.add(path+".id", "required")
	case len(cl.ID) > 255 || strings.IndexFunc(cl.ID, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		p.add(path+".id", "%q must be 1 to 255 printable ASCII characters without spaces", cl.ID)
	}
	// The name is shown to people on the login pages and to operators in
	// varde clients list, one client a line; a line break or tab in it
	// would make it look like another client there.
	if strings.IndexFunc(cl.Name, unicode.IsControl) >= 0 {
		p.add(path+".name", "%q holds a control character (a line break or tab, say); a name is one line of text", cl.Name)
	}
	hasJWKS := cl.JWKS != "" || cl.JWKSURI != ""
	switch cl.AuthMethod {
	case store.AuthPrivateKeyJWT:
		// RFC 7523 §2.2 and OpenID Connect Core §9: the client signs with
		// a key the provider knows from its registered JWK set.
		switch {
		case cl.JWKS == "" && cl.JWKSURI == "":
			p.add(path, "auth_method private_key_jwt needs jwks or jwks_uri")
		case cl.JWKS != "" && cl.JWKSURI != "":
			p.add(path, "set only one of jwks and jwks_uri")
		}
		if cl.SecretFile != "" {
			p.add(path+".secret_file", "must be empty for auth_method private_key_jwt")
		}
	case store.AuthClientSecretBasic:
		if cl.SecretFile == "" {
			p.add(path+".secret_file", "required for auth_method client_secret_basic")
		}
		if hasJWKS {
			p.add(path, "jwks and jwks_uri must be empty for auth_method client_secret_basic")
		}
	case store.AuthNone:
		if cl.SecretFile != "" {
			p.add(path+".secret_file", "must be empty for auth_method none")
		}
		if hasJWKS {
			p.add(path, "jwks and jwks_uri must be empty for auth_method none")
		}
	case "":
		p.add(path+".auth_method", "required (private_key_jwt, client_secret_basic or none)")
	default:
		p.add(path+".auth_method", "%q is not private_key_jwt, client_secret_basic or none", cl.AuthMethod)
	}
	if cl.LegacyEndpointAudience && cl.AuthMethod != store.AuthPrivateKeyJWT {
		p.add(path+".legacy_endpoint_audience", "is only for auth_method private_key_jwt")
	}
	if cl.JWKS != "" {
		for _, msg := range checkJWKS(cl.JWKS) {
			p.add(path+".jwks", "%s", msg)
		}
	}
	if cl.JWKSURI != "" {
		checkURL(p, path+".jwks_uri", cl.JWKSURI)
	}
	if len(cl.RedirectURIs) == 0 && len(cl.IntrospectTokensOf) == 0 {
		p.add(path+".redirect_uris", "at least one is required (none only for a resource server, a client with introspect_tokens_of)")
	}
	for i, u := range cl.RedirectURIs {
		checkRedirectURI(p, fmt.Sprintf("%s.redirect_uris[%d]", path, i), u)
	}
	for i, u := range cl.PostLogoutRedirectURIs {
		checkRedirectURI(p, fmt.Sprintf("%s.post_logout_redirect_uris[%d]", path, i), u)
	}
	for i, l := range cl.AllowedLevels {
		if lv, err := assurance.Parse(l); err != nil || lv.String() != l {
			p.add(fmt.Sprintf("%s.allowed_levels[%d]", path, i), "%q is not low, substantial or high", l)
		}
	}
	known := KnownClaims()
	for i, c := range cl.Claims {
		if !slices.Contains(known, c) {
			p.add(fmt.Sprintf("%s.claims[%d]", path, i), "%q is not one of %s", c, strings.Join(known, ", "))
		}
	}
	if cl.DegradedLevel != "" {
		if lv, err := assurance.Parse(cl.DegradedLevel); err != nil || lv.String() != cl.DegradedLevel {
			p.add(path+".degraded_level", "%q is not low, substantial or high", cl.DegradedLevel)
		}
	}
	if err := CheckIDTokenAlg(cl.IDTokenSignedResponseAlg); err != nil {
		p.add(path+".id_token_signed_response_alg", "%v", err)
	}
}

// CheckIDTokenAlg checks a client's id_token_signed_response_alg (OpenID
// Connect Registration 1.0 §2): ES256, the default (also when empty),
// or RS256; Varde signs ID tokens with nothing else, and never "none".
func CheckIDTokenAlg(alg string) error {
	switch alg {
	case "", store.IDTokenES256, store.IDTokenRS256:
		return nil
	}
	return fmt.Errorf("%q is not an algorithm Varde signs ID tokens with: ES256 (the default) or RS256", alg)
}

// validateRSAKey refuses clients registered for RS256 ID tokens on a
// node that will have no RSA key to sign them with: one whose ES256 key
// comes from a file, without keys.rsa_signing_key_file. A node whose
// key is made up at start (on localhost) makes up an RSA key too. The
// node checks the clients added with varde clients add at start (ADR
// 32).
func (c *Config) validateRSAKey(p *problems) {
	if c.Keys.SignsRS256() {
		return
	}
	for i, cl := range c.Clients {
		if cl.IDTokenSignedResponseAlg == store.IDTokenRS256 {
			p.add(fmt.Sprintf("clients[%d].id_token_signed_response_alg", i), "RS256 needs an RSA signing key, and keys.rsa_signing_key_file is not set; "+
				"create one with `%s`", RSASigningKeyHowTo)
		}
	}
}

// validateClientProviders checks that clients name only providers this
// node has: "passkey" and the configured upstreams.
func (c *Config) validateClientProviders(p *problems) {
	known := []string{"passkey"}
	for _, u := range c.Upstreams {
		known = append(known, u.ID)
	}
	for i, cl := range c.Clients {
		for j, id := range cl.Providers {
			if !slices.Contains(known, id) {
				p.add(fmt.Sprintf("clients[%d].providers[%d]", i, j), "%q is not a provider of this node (%s)", id, strings.Join(known, ", "))
			}
		}
	}
}

// looksLikePostgresDSN reports whether dsn is a PostgreSQL connection
// string, as a URL (postgres:// or postgresql://) or as keyword=value
// settings, rather than a file path.
func looksLikePostgresDSN(dsn string) bool {
	d := strings.ToLower(strings.TrimSpace(dsn))
	if strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://") {
		return true
	}
	for _, kw := range []string{"host=", "hostaddr=", "user=", "password=", "dbname=", "port=", "sslmode="} {
		if strings.HasPrefix(d, kw) || strings.Contains(d, " "+kw) {
			return true
		}
	}
	return false
}

// checkURL checks a redirect or JWKS URI: absolute, no fragment (RFC 6749
// §3.1.2), no white space (RFC 3986 §2), https, http only on localhost or loopback (RFC 9700 §2.1,
// RFC 8252 §7.3). The URL is named in a problem without its query,
// fragment or user information (httpx.RedactURL): a jwks_uri, webhook or
// back-channel logout URI may carry a secret there, and configuration
// errors reach the startup log.
func checkURL(p *problems, field, raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		p.add(field, "does not parse as a URL")
		return
	}
	shown := httpx.RedactURL(raw)
	if !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		p.add(field, "%q is not an absolute URL", shown)
		return
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		p.add(field, "%q must not have a fragment", shown)
	}
	if strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
		// RFC 3986 §2 has no space in a URI: one written here would be
		// compared with what a relying party sends, or requested, as
		// no such URI is.
		p.add(field, "%q holds white space, which a URI cannot (RFC 3986 §2): write a space as %%20", shown)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && httpx.LoopbackHost(u.Hostname())) {
		p.add(field, "%q must use https (http only on localhost or a loopback address)", shown)
	}
	if u.User != nil {
		p.add(field, "%q must not have user information", shown)
	}
	if strings.Contains(u.Hostname(), "*") {
		p.add(field, "%q has a '*' in its host: no host has one, and a URL here is never a pattern "+
			"(redirect URIs are matched exactly, RFC 9700 §4.1.3); name each host in full", shown)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.add(field, "%q has port %s, not one from 1 to 65535", shown, port)
		}
	}
}

// checkRedirectURI checks a redirect or post-logout redirect URI as
// checkURL does, and refuses a '*' anywhere in it: the URI a request
// names must match a registered one exactly (RFC 9700 §4.1.3, OpenID
// Connect Core §3.1.2.1), so a '*' written as a wildcard would match
// nothing but itself, and every login from the relying party would fail.
func checkRedirectURI(p *problems, field, raw string) {
	checkURL(p, field, raw)
	if u, err := url.Parse(raw); err == nil && !strings.Contains(u.Hostname(), "*") && strings.Contains(raw, "*") {
		p.add(field, "%q holds a '*': redirect URIs are matched exactly (RFC 9700 §4.1.3), so it is no wildcard; "+
			"register each URI in full", httpx.RedactURL(raw))
	}
}

// checkJWKS parses a JWK set (RFC 7517 §5) and returns what is wrong with
// it: it must hold at least one key, every key a usable public signature
// key, with no private or symmetric key material.
func checkJWKS(raw string) []string {
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return []string{fmt.Sprintf("not a JSON JWK set: %v", err)}
	}
	if len(set.Keys) == 0 {
		return []string{`has no keys (want {"keys": [...]})`}
	}
	// Members that carry private or symmetric key material (RFC 7518
	// §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2; "priv" for ML-DSA).
	privateJWKParams := []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}
	var msgs []string
	for i, k := range set.Keys {
		var private []string
		for _, name := range privateJWKParams {
			if _, ok := k[name]; ok {
				private = append(private, name)
			}
		}
		if len(private) > 0 {
			msgs = append(msgs, fmt.Sprintf("keys[%d] holds private or symmetric key material (%s); publish public keys only", i, strings.Join(private, ", ")))
			continue
		}
		one, _ := json.Marshal(k)
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(one); err != nil {
			msgs = append(msgs, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		if !jwk.IsPublic() || !jwk.Valid() {
			msgs = append(msgs, fmt.Sprintf("keys[%d] is not a valid public key", i))
			continue
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			msgs = append(msgs, fmt.Sprintf("keys[%d] has use %q; client authentication needs sig", i, jwk.Use))
		}
	}
	return msgs
}

// supportLanguages are the page languages support.hours may name.
var supportLanguages = []string{"nb", "en", "da"}

// validate checks the help desk: a URL people can open, a number they
// can dial, and hours only beside a way to reach it.
func (s *Support) validate(p *problems) {
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		switch {
		case err != nil || u.Host == "" || u.User != nil:
			p.add("support.url", "%q is not an absolute URL without user information", s.URL)
		case u.Scheme != "https" && !(u.Scheme == "http" && httpx.LoopbackHost(u.Hostname())):
			p.add("support.url", "%q must be https (http only on localhost)", s.URL)
		}
	}
	if s.Phone != "" {
		digits := 0
		for _, r := range s.Phone {
			switch {
			case r >= '0' && r <= '9':
				digits++
			case strings.ContainsRune("+-() ", r):
			default:
				p.add("support.phone", "%q may hold only digits, spaces, '+', '-', '(' and ')'", s.Phone)
				return
			}
		}
		if digits < 3 || digits > 20 || len(s.Phone) > 32 {
			p.add("support.phone", "%q must have 3 to 20 digits, at most 32 characters in all", s.Phone)
		}
	}
	for lang, h := range s.Hours {
		switch {
		case !slices.Contains(supportLanguages, lang):
			p.add("support.hours."+lang, "%q is not a page language (nb, en, da)", lang)
		case strings.TrimSpace(h) == "" || len(h) > 200:
			p.add("support.hours."+lang, "must be 1 to 200 characters")
		}
	}
	if len(s.Hours) > 0 && s.URL == "" && s.Phone == "" {
		p.add("support.hours", "given without support.url or support.phone to reach the help desk by")
	}
}
