package oidcup

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Size limits on what the upstream sends.
const (
	maxMetadataSize = 64 << 10
	maxJWKSSize     = 256 << 10
	maxTokenSize    = 64 << 10
	maxIDTokenSize  = 16 << 10
	minRSABits      = 2048
)

// DiscoveryPath is appended to the issuer to find its metadata (OpenID
// Connect Discovery 1.0 §4.1).
const DiscoveryPath = "/.well-known/openid-configuration"

// idTokenAlgs are the ID token algorithms Varde accepts when the
// upstream advertises them: asymmetric only. "none" would accept any
// token, and an HMAC would let anyone holding the client secret mint
// tokens (and opens key confusion with a public key used as a secret).
// Never modified.
var idTokenAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// metadata is the part of the upstream's discovery document Varde uses
// (OpenID Connect Discovery 1.0 §3, RFC 8414 §2, RFC 9126 §5, RFC 9207
// §3).
type metadata struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	PAREndpoint           string   `json:"pushed_authorization_request_endpoint"`
	RequirePAR            bool     `json:"require_pushed_authorization_requests"`
	ResponseTypes         []string `json:"response_types_supported"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	TokenAuthAlgs         []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	ResponseIss           bool     `json:"authorization_response_iss_parameter_supported"`

	// algs are the ID token algorithms accepted: the advertised ones
	// that are asymmetric.
	algs []jose.SignatureAlgorithm
}

// parseMetadata parses and checks a discovery document for the upstream
// configured as issuer, for a client that authenticates with method
// (and alg, for private_key_jwt).
func parseMetadata(raw []byte, issuer, method, alg string) (*metadata, error) {
	var m metadata
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errors.New("metadata is not a JSON object of the expected shape")
	}
	// Discovery §4.3: the issuer MUST be identical to the one the
	// metadata was fetched for, or the document must not be used.
	if m.Issuer != issuer {
		return nil, errors.New("metadata issuer does not match the configured issuer")
	}
	for _, e := range []struct{ name, v string }{
		{"authorization_endpoint", m.AuthorizationEndpoint},
		{"token_endpoint", m.TokenEndpoint},
		{"jwks_uri", m.JWKSURI},
	} {
		if e.v == "" {
			return nil, fmt.Errorf("metadata has no %s", e.name)
		}
		if err := checkEndpoint(issuer, e.v); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", e.name, err)
		}
	}
	if m.PAREndpoint != "" {
		if err := checkEndpoint(issuer, m.PAREndpoint); err != nil {
			return nil, fmt.Errorf("metadata pushed_authorization_request_endpoint: %w", err)
		}
	}
	// RFC 9126 §5.
	if m.RequirePAR && m.PAREndpoint == "" {
		return nil, errors.New("metadata requires pushed requests but names no endpoint")
	}
	if len(m.ResponseTypes) > 0 && !slices.Contains(m.ResponseTypes, "code") {
		return nil, errors.New("upstream does not support the authorization code flow")
	}
	// RFC 7636 §4.3 and RFC 9700 §2.1.1: Varde always sends an S256
	// challenge; an upstream that lists methods must list S256.
	if len(m.CodeChallengeMethods) > 0 && !slices.Contains(m.CodeChallengeMethods, "S256") {
		return nil, errors.New("upstream does not support PKCE with S256")
	}
	// Discovery §3: the default is client_secret_basic.
	if len(m.TokenAuthMethods) > 0 && !slices.Contains(m.TokenAuthMethods, method) {
		return nil, fmt.Errorf("upstream does not accept %s", method)
	}
	if method == AuthPrivateKeyJWT && len(m.TokenAuthAlgs) > 0 && !slices.Contains(m.TokenAuthAlgs, alg) {
		return nil, fmt.Errorf("upstream does not accept client assertions signed with %s", alg)
	}
	// Discovery §3: id_token_signing_alg_values_supported is required and
	// must include RS256; a document without it gets RS256.
	advertised := m.IDTokenAlgs
	if len(advertised) == 0 {
		advertised = []string{string(jose.RS256)}
	}
	for _, a := range idTokenAlgs {
		if slices.Contains(advertised, string(a)) {
			m.algs = append(m.algs, a)
		}
	}
	if len(m.algs) == 0 {
		return nil, errors.New("upstream signs ID tokens with no asymmetric algorithm Varde accepts")
	}
	return &m, nil
}

// pkce reports whether the upstream checks PKCE with S256: it lists it
// in code_challenge_methods_supported (RFC 8414 §2: without the list it
// does not support PKCE), and must then refuse a code with the wrong
// code_verifier (RFC 7636 §4.6).
func (m *metadata) pkce() bool {
	return slices.Contains(m.CodeChallengeMethods, "S256")
}

// parseJWKS parses the upstream's key set, keeping the public signing
// keys Varde can use (RSA of at least 2048 bits, ECDSA, Ed25519) and
// skipping others, so one key of an unknown type does not hide the rest.
func parseJWKS(raw []byte) (jose.JSONWebKeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &doc); err != nil {
		return set, errors.New("jwks is not a JSON key set")
	}
	for _, k := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(k); err != nil {
			continue
		}
		if !jwk.Valid() || !jwk.IsPublic() || jwk.Use != "" && jwk.Use != "sig" {
			continue
		}
		switch pub := jwk.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue // symmetric keys never verify ID tokens
		}
		set.Keys = append(set.Keys, jwk)
	}
	if len(set.Keys) == 0 {
		return set, errors.New("jwks holds no usable public signing key")
	}
	return set, nil
}

// keyFits reports whether k can check a signature made with alg.
func keyFits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(string(alg), "ES")
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// candidates are the keys of set that may have made a signature with
// alg under kid (any kid when the token names none).
func candidates(set jose.JSONWebKeySet, kid string, alg jose.SignatureAlgorithm) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if (kid == "" || k.KeyID == kid) && keyFits(k, alg) {
			out = append(out, k)
		}
	}
	return out
}

// cached holds one fetched value. Fresh values are served without
// waiting; fetches happen one at a time; and fetches that are forced (an
// unknown kid, a failure elsewhere) or follow a failed fetch happen at
// most once per minimum interval. When a fetch fails the last good value
// is still served, so an upstream whose discovery endpoint blips does
// not stop logins, and a dead upstream is not asked again on every
// request. A value is fetched from a source (the JWKS's URI): a value
// from another source than the one asked for is fetched at once, unless
// the last attempt was at that source and failed within the interval.
type cached[T any] struct {
	mu       sync.Mutex
	fetching chan struct{} // holds a token while a fetch runs: one at a time
	val      T
	have     bool
	src      string    // where val came from
	at       time.Time // when val was fetched
	tried    time.Time // the last fetch attempt
	triedSrc string    // where the last attempt went
	lastErr  error     // of the last fetch attempt
	stale    bool      // a failure asked for a refetch
	gen      int       // counts fetch attempts
	// forced is the last fetch forced under a minimum interval (a
	// login's refetch on an unknown kid). After a good fetch, forced
	// fetches are spaced from each other only, not from other fetches
	// (health probes, regular refreshes), so a probe every few seconds
	// does not hold back a login's refetch.
	forced time.Time
	// started counts the fetches begun; a forced get shares only the
	// result of a fetch begun after it was asked for.
	started int
}

// fetchPolicy says when a cached value must be fetched again.
type fetchPolicy struct {
	now time.Time
	// maxAge is how long a value is used.
	maxAge time.Duration
	// minInterval spaces fetches other than the regular refresh of a
	// value that aged out after a successful fetch.
	minInterval time.Duration
	// force asks for a fetch (unknown kid, health probe).
	force bool
	// source is where the value is fetched from now ("" when it never
	// moves).
	source string
}

// errFetchWait: a get gave up waiting for another caller's fetch, when
// its context ended (see cached.get).
var errFetchWait = errors.New("gave up waiting for a fetch under way")

// errFetchCut: a fetch ran out of the time its caller had left after
// waiting for another fetch, less than a whole Timeouts.Request (see
// cached.get). It says nothing about the upstream: it is not recorded
// as the last attempt's failure, and the next caller fetches afresh.
var errFetchCut = errors.New("the time this login had left ran out before the upstream answered")

// lockFetch waits until no other fetch runs, or until ctx ends, and
// reports whether it had to wait.
func (c *cached[T]) lockFetch(ctx context.Context) (waited bool, err error) {
	c.mu.Lock()
	if c.fetching == nil {
		c.fetching = make(chan struct{}, 1)
	}
	sem := c.fetching
	c.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return false, nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("%w: %w", errFetchWait, context.Cause(ctx))
	}
}

func (c *cached[T]) unlockFetch() { <-c.fetching }

// get returns the value, fetching it when it is missing, too old, stale
// or forced. usable is false only when there is no value at all; err
// reports a failed fetch (this one, or a recent one that is not retried
// yet) even when an older value is returned. Waiting for another
// caller's fetch ends with ctx: get then returns the value held, if any,
// with an error wrapping errFetchWait and ctx's cause, and fetches
// nothing. A fetch that failed once ctx's deadline passed, after such a
// wait, had less than the whole time; it fails with errFetchCut and is
// not recorded, a health probe's too: the fetch waited for was asking
// the upstream already, and recorded what it got.
func (c *cached[T]) get(ctx context.Context, p fetchPolicy, fetch func() (T, error)) (val T, usable bool, err error) {
	c.mu.Lock()
	gen, asked := c.gen, c.started
	need, recent := c.needFetch(p)
	val, usable = c.val, c.have
	if recent {
		err = c.lastErr
	}
	c.mu.Unlock()
	if !need {
		return val, usable, err
	}
	waited, err := c.lockFetch(ctx)
	if err != nil {
		return val, usable, err
	}
	defer c.unlockFetch()
	c.mu.Lock()
	if c.gen != gen && (!p.force || c.started > asked) {
		// Another caller fetched while this one waited: use its result.
		val, usable, err = c.val, c.have, c.lastErr
		c.mu.Unlock()
		return val, usable, err
	}
	if c.gen != gen {
		// A forced get asks for what the source holds now (a login that
		// saw a new kid): the fetch it waited for was begun before it
		// asked (a health probe's, say) and may predate the rotation.
		// It fetches itself, unless that fetch failed so recently that
		// the source is not asked again yet.
		if need, recent := c.needFetch(p); !need {
			val, usable, err = c.val, c.have, nil
			if recent {
				err = c.lastErr
			}
			c.mu.Unlock()
			return val, usable, err
		}
	}
	c.started++
	c.mu.Unlock()
	v, err := fetch()
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := ctx.Deadline(); err != nil && waited && ok && !time.Now().Before(d) {
		// The fetch had only what the wait left of ctx, and ran out of
		// it: not a verdict on the upstream. Nothing is recorded, and a
		// caller with more time fetches itself.
		return c.val, c.have, fmt.Errorf("%w: %w", errFetchCut, err)
	}
	c.gen++
	c.tried, c.triedSrc, c.lastErr = p.now, p.source, err
	if p.force && p.minInterval > 0 {
		c.forced = p.now
	}
	if err != nil {
		return c.val, c.have, err
	}
	c.val, c.have, c.src, c.at, c.stale = v, true, p.source, p.now, false
	return v, true, nil
}

// needFetch reports whether to fetch, and whether the last attempt
// failed too recently to try again. Only an attempt at the same source
// holds a fetch back.
func (c *cached[T]) needFetch(p fetchPolicy) (need, recentFailure bool) {
	last := c.tried
	if p.force && c.lastErr == nil {
		// A forced fetch after a good one is spaced from the last
		// forced fetch only.
		last = c.forced
	}
	sinceTry := p.now.Sub(last)
	recent := !last.IsZero() && c.triedSrc == p.source && sinceTry >= 0 && sinceTry < p.minInterval
	want := !c.have || p.force || c.stale || c.src != p.source
	if c.have {
		age := p.now.Sub(c.at)
		if age < 0 || age >= p.maxAge {
			if c.lastErr == nil {
				return true, false // the regular refresh
			}
			want = true
		}
	}
	if !want {
		return false, false
	}
	if recent {
		return false, c.lastErr != nil
	}
	return true, false
}

// generation counts the fetch attempts made so far.
func (c *cached[T]) generation() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// peek returns the value held, if any, without fetching.
func (c *cached[T]) peek() (val T, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val, c.have
}

// invalidate asks the next get to fetch again (subject to the minimum
// interval): used when the upstream failed in a way stale metadata
// could explain.
func (c *cached[T]) invalidate() {
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
}

// fetchJSON GETs uri within the request timeout, or ctx's deadline when
// that is sooner, and returns at most limit bytes of a 200 response. The
// fetch outlives the person's request that caused it (other logins wait
// for and share its result, except a refetch asked for while it ran: see
// cached.get), so it is not cut short when that request is cancelled.
func (p *Provider) fetchJSON(ctx context.Context, uri string, limit int64) ([]byte, error) {
	deadline := time.Now().Add(p.t.Request)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Metadata and keys must come from the URL asked (see New): a
		// redirect is a failure, said as such, since "status 301" alone
		// reads as if it had been followed.
		return nil, fmt.Errorf("status %d: redirects are not followed (to %q)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, errors.New("response is too large")
	}
	return body, nil
}

// checkEndpoint checks an endpoint an upstream's metadata names: a URL
// as checkURL wants it, and https if the issuer is. An https upstream
// that named an http endpoint, loopback or not, would have the node post
// its client credentials and the person's code in clear, to whatever
// listens there (on loopback, the node's own listeners), and send the
// person's browser to their own machine. Only an upstream on http
// loopback (a simulated eID, a test) names http endpoints.
func checkEndpoint(issuer, endpoint string) error {
	if err := checkURL(endpoint); err != nil {
		return err
	}
	iu, err := url.Parse(issuer)
	if err != nil || iu.Scheme == "http" {
		return err
	}
	if eu, _ := url.Parse(endpoint); eu.Scheme != "https" {
		return errors.New("must use https, as the issuer does")
	}
	return nil
}

// discoveryFailed is the refusal of a login whose metadata could not be
// had: one that stopped waiting for another fetch because its request
// ended, or whose own fetch ran out of the time it had left, learnt
// nothing about the upstream.
func discoveryFailed(err error) *rejection {
	rej := reject(ReasonDiscovery, "%v", err)
	rej.unverified = errors.Is(err, errFetchWait) && errors.Is(err, context.Canceled) || errors.Is(err, errFetchCut)
	return rej
}

func (p *Provider) loadMetadata(ctx context.Context) (*metadata, error) {
	raw, err := p.fetchJSON(ctx, strings.TrimSuffix(p.cfg.Issuer, "/")+DiscoveryPath, maxMetadataSize)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	m, err := parseMetadata(raw, p.cfg.Issuer, p.cfg.AuthMethod, string(p.alg))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return m, nil
}

func (p *Provider) loadKeys(ctx context.Context, uri string) (jwks, error) {
	raw, err := p.fetchJSON(ctx, uri, maxJWKSSize)
	if err != nil {
		return jwks{}, fmt.Errorf("jwks: %w", err)
	}
	set, err := parseJWKS(raw)
	if err != nil {
		return jwks{}, fmt.Errorf("jwks: %w", err)
	}
	return jwks{uri: uri, set: set}, nil
}

// discovery returns the upstream's metadata (cached). Waiting for a
// fetch under way and the fetch that may follow take one
// Timeouts.Request in all, and the wait ends when ctx does; with no
// metadata held, the error then wraps errFetchWait.
func (p *Provider) discovery(ctx context.Context) (*metadata, error) {
	ctx, cancel := context.WithTimeout(ctx, p.t.Request)
	defer cancel()
	m, usable, err := p.meta.get(ctx, fetchPolicy{now: p.now(), maxAge: p.t.Discovery, minInterval: p.t.Refetch},
		func() (*metadata, error) { return p.loadMetadata(ctx) })
	if !usable {
		return nil, err
	}
	if err != nil {
		p.log.WarnContext(ctx, staleWarning(err, "discovery", "metadata"), "provider", p.cfg.ID, "err", err)
	}
	return m, nil
}

// staleWarning is the log message for a login that uses what is cached
// because err: it says whether this login fetched, and whether the
// upstream failed or this login's time ran out.
func staleWarning(err error, what, held string) string {
	switch {
	case errors.Is(err, errFetchWait):
		return "gave up waiting for another upstream " + what + " fetch; using cached " + held
	case errors.Is(err, errFetchCut):
		return "upstream " + what + " fetch ran out of this login's time; using cached " + held
	}
	return "upstream " + what + " fetch failed; using cached " + held
}

// jwks is the upstream's key set together with the URI it came from.
type jwks struct {
	uri string
	set jose.JSONWebKeySet
}

// errRefetchHeld: a refetch was asked for within Timeouts.Refetch of
// the last one, and the cached set is returned unchanged.
var errRefetchHeld = errors.New("jwks: refetch held back")

// keySet returns the upstream's keys from m.JWKSURI (cached). refetch
// asks for a fresh set, at most once per Timeouts.Refetch of the last
// refetch (OpenID Connect Core §10.1.1: a new kid means the upstream
// rotated its keys); health probes' fetches do not count towards that
// limit. A refetch held back returns the cached set with errRefetchHeld;
// a refetch made that fails returns its error and no keys, so a kid the
// keys held do not name is refused for the fetch failing.
// When jwks_uri has moved the new one is fetched at once, and, if that
// fails, not again within Timeouts.Refetch.
//
// Waiting for a fetch under way (a health probe's, another login's) and
// the fetch that may follow take one Timeouts.Request in all, and the
// wait ends when ctx does; an error then wraps errFetchWait. A fetch
// begun is not cut short by ctx: others may share its result. A refetch
// that ran out of what the wait left fails with errFetchCut.
func (p *Provider) keySet(ctx context.Context, m *metadata, refetch bool) (jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, p.t.Request)
	defer cancel()
	policy := fetchPolicy{now: p.now(), maxAge: p.t.JWKS, minInterval: p.t.Refetch, force: refetch, source: m.JWKSURI}
	gen := p.keys.generation()
	k, usable, err := p.keys.get(ctx, policy, func() (jwks, error) { return p.loadKeys(ctx, m.JWKSURI) })
	if errors.Is(err, errFetchWait) || errors.Is(err, errFetchCut) {
		// A refetch not made, or cut short, leaves an unknown kid
		// unknown, which says nothing against the upstream's keys;
		// otherwise the keys held are used, as after a failed fetch.
		err = fmt.Errorf("jwks: %w", err)
		if refetch {
			return jose.JSONWebKeySet{}, err
		}
	}
	if !usable || k.uri != m.JWKSURI {
		if err == nil {
			err = errors.New("jwks: no key set")
		}
		return jose.JSONWebKeySet{}, err
	}
	if refetch && err != nil {
		if p.keys.generation() != gen {
			// The refetch was made and the upstream failed it: the kid
			// stays unknown because the keys could not be fetched, which
			// the keys held cannot answer for.
			return jose.JSONWebKeySet{}, err
		}
		// Held back by a fetch that failed moments ago.
		return k.set, fmt.Errorf("%w: %w", errRefetchHeld, err)
	}
	if err != nil {
		p.log.WarnContext(ctx, staleWarning(err, "jwks", "keys"), "provider", p.cfg.ID, "err", err)
	}
	if refetch && p.keys.generation() == gen {
		return k.set, errRefetchHeld
	}
	return k.set, nil
}

// Probe fetches the upstream's metadata and keys afresh and reports
// whether both are usable and the token endpoint answers OAuth (see
// probeToken), for health checks. Successful fetches
// refresh the caches logins use. Waiting for a fetch under way (a
// login's) ends with ctx, as the fetches do: the probe takes no longer
// than its own deadline, and a wait cut off fails it.
func (p *Provider) Probe(ctx context.Context) error {
	now := p.now()
	m, _, err := p.meta.get(ctx, fetchPolicy{now: now, force: true}, func() (*metadata, error) { return p.loadMetadata(ctx) })
	if err != nil {
		return fmt.Errorf("upstream %s: %w", p.cfg.ID, err)
	}
	_, _, err = p.keys.get(ctx, fetchPolicy{now: now, force: true, source: m.JWKSURI}, func() (jwks, error) { return p.loadKeys(ctx, m.JWKSURI) })
	if err != nil {
		return fmt.Errorf("upstream %s: %w", p.cfg.ID, err)
	}
	if err := p.probeToken(ctx, m.TokenEndpoint); err != nil {
		return fmt.Errorf("upstream %s: %w", p.cfg.ID, err)
	}
	return nil
}

// probeToken checks that the token endpoint is reached and speaks OAuth:
// a POST with no grant and no client authentication must be answered
// with an OAuth error (RFC 6749 §5.2: invalid_request, invalid_client,
// unsupported_grant_type, or any other). No answer, or an answer that is
// no OAuth error (a firewall or proxy in front of the endpoint refusing
// every request, which logins record as token_refused and do not count),
// fails the probe. Whether the endpoint redeems codes is what logins
// tell: an OAuth error of any status passes.
func (p *Provider) probeToken(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(""))
	if err != nil {
		return fmt.Errorf("token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenSize+1))
	if err != nil {
		return fmt.Errorf("token endpoint: %w", err)
	}
	if len(body) > maxTokenSize || errorCode(body) == "?" {
		return fmt.Errorf("token endpoint answered %d without an OAuth error", resp.StatusCode)
	}
	return nil
}
