package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxProbeBody caps what a probe reads of one response.
const maxProbeBody = 1 << 20

// OIDCProber probes an upstream OpenID provider the way a login would
// use it: it fetches the discovery document, checks that it names this
// issuer and its endpoints, then fetches the JWKS it points to and
// checks that it holds keys.
type OIDCProber struct {
	// Issuer is the provider's issuer URL as configured.
	Issuer string
	// HTTPClient makes the requests; nil means a client with Go's
	// default transport.
	HTTPClient *http.Client
	// Timeout bounds the whole probe (both requests); zero leaves it to
	// the caller's context.
	Timeout time.Duration
}

// Probe implements Prober. Failures are *ProbeError values.
func (p OIDCProber) Probe(ctx context.Context) error {
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
		defer cancel()
	}
	client := p.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	body, err := fetch(ctx, client, DiscoveryURL(p.Issuer))
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	jwksURI, err := parseDiscovery(body, p.Issuer)
	if err != nil {
		return &ProbeError{FailureInvalid, fmt.Errorf("discovery: %w", err)}
	}
	if body, err = fetch(ctx, client, jwksURI); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	if err := checkJWKS(body); err != nil {
		return &ProbeError{FailureInvalid, fmt.Errorf("jwks: %w", err)}
	}
	return nil
}

// DiscoveryURL is where issuer publishes its configuration: OpenID
// Connect Discovery 1.0 §4 says to remove any terminating "/" from the
// issuer before appending /.well-known/openid-configuration.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// fetch GETs u and returns the body of a 200 response.
func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &ProbeError{FailureInvalid, err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody)) // keep the connection reusable
		return nil, &ProbeError{FailureStatus, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody+1))
	if err != nil {
		return nil, transportError(ctx, err)
	}
	if len(body) > maxProbeBody {
		return nil, &ProbeError{FailureInvalid, fmt.Errorf("GET %s: body over %d bytes", u, maxProbeBody)}
	}
	return body, nil
}

// transportError classifies a request that got no complete answer.
func transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || FailureReason(err) == FailureTimeout {
		return &ProbeError{FailureTimeout, err}
	}
	return &ProbeError{FailureConnect, err}
}

// parseDiscovery checks an OpenID provider configuration document
// (OpenID Connect Discovery 1.0 §3, §4.2) from issuer and returns its
// jwks_uri.
func parseDiscovery(body []byte, issuer string) (string, error) {
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		JWKSURI               string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	// §4.3: the issuer value returned MUST be identical to the issuer
	// URL used to fetch the configuration.
	if doc.Issuer != issuer {
		return "", fmt.Errorf("issuer %q, want %q", doc.Issuer, issuer)
	}
	// §3: authorization_endpoint and jwks_uri are REQUIRED; Varde logs
	// in with the code flow, so it needs token_endpoint too.
	for _, f := range []struct{ name, v string }{
		{"authorization_endpoint", doc.AuthorizationEndpoint},
		{"token_endpoint", doc.TokenEndpoint},
		{"jwks_uri", doc.JWKSURI},
	} {
		if err := checkHTTPURL(f.v); err != nil {
			return "", fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return doc.JWKSURI, nil
}

func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// checkJWKS checks a JWK set (RFC 7517 §5): the "keys" member is
// REQUIRED, and every key MUST have "kty" (§4.1). A set without keys
// cannot verify any ID token, so it fails the probe too.
func checkJWKS(body []byte) error {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("not a JWK set: %w", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("no keys")
	}
	for i, k := range set.Keys {
		if k.Kty == "" {
			return fmt.Errorf("key %d has no kty", i)
		}
	}
	return nil
}
