package app

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/provider"
	"github.com/varde-eid/varde/internal/provider/oidcup"
	"github.com/varde-eid/varde/internal/status"
	"github.com/varde-eid/varde/internal/store"
)

// upstreamIdleConns is how many idle connections the node keeps to each
// upstream. Every upstream login makes a PAR and a token request to the
// upstream; with net/http's default of two, concurrent logins beyond
// that open a connection each and close it again, a TCP handshake and a
// socket in TIME_WAIT per request.
const upstreamIdleConns = 64

// upstreamTransport is the HTTP transport to upstreams: the node's to
// other servers (an answer's header bounded), keeping more idle
// connections per upstream.
func upstreamTransport() *http.Transport {
	t := httpx.OutboundTransport()
	t.MaxIdleConnsPerHost = upstreamIdleConns
	t.MaxIdleConns = 4 * upstreamIdleConns
	return t
}

// upstreams builds one provider per configured upstream OpenID provider.
func (a *App) upstreams(cfg *config.Config, opt Options, st store.Store, pages *httpx.Pages, fin provider.Finisher, log *slog.Logger) ([]provider.Provider, error) {
	var out []provider.Provider
	hc := &http.Client{Transport: upstreamTransport()}
	// A login that fails on Varde's side counts against the component
	// that failed on the status page, not the upstream: the store, or
	// the node where it keeps flow state in memory (ADR 7).
	node := status.NodePrefix + cfg.Node
	stateAt := "store"
	if cfg.Store.FlowState == config.FlowStateMemory {
		stateAt = node
	}
	for _, u := range cfg.Upstreams {
		oc, err := upstreamConfig(cfg.Issuer, u)
		if err != nil {
			return nil, err // it names the upstream already
		}
		p, err := oidcup.New(oc, oidcup.Deps{
			HTTPClient: hc, Challenges: st, SharedChallenges: cfg.Store.Shared(), StateComponent: stateAt, NodeComponent: node,
			Finisher: fin, Pages: pages, Audit: a.Audit,
			Now: opt.Now, Rand: opt.Rand, Log: log.With("provider", u.ID),
		})
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.ID, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// upstreamConfig turns a validated config.Upstream into oidcup's
// configuration, reading its key or secret file, and checks it as
// oidcup.New does.
func upstreamConfig(issuer string, u config.Upstream) (oidcup.Config, error) {
	max, acrs := u.Levels()
	oc := oidcup.Config{
		ID: u.ID, Name: u.Name, Issuer: u.Issuer, ClientID: u.ClientID, AuthMethod: u.AuthMethod,
		RedirectURI: issuer + oidcup.CallbackPath(u.ID), Scopes: u.Scopes,
		UsePAR: u.UsePAR, PushEarly: u.PushEarly == nil || *u.PushEarly, PromptLogin: u.PromptLogin, ForwardLoginHint: u.ForwardLoginHint, MaxLevel: max, ACRMap: acrs,
		IdentifierClaim: u.IdentifierClaim, IdentifierSchemes: u.IdentifierSchemes,
	}
	if u.Timeout > 0 {
		oc.Timeouts.Request, oc.Timeouts.Token = u.Timeout, 2*u.Timeout
	}
	switch u.AuthMethod {
	case store.AuthPrivateKeyJWT:
		key, err := loadSigner("upstream "+u.ID+" client_key_file", u.ClientKeyFile)
		if err != nil {
			return oc, err
		}
		oc.ClientKey = key
		if oc.NextClientKey, oc.PreviousClientKey, err = rotationKeys(u, key); err != nil {
			return oc, err
		}
	case store.AuthClientSecretBasic:
		field := "upstream " + u.ID + " client_secret_file"
		raw, err := config.ReadSecretFile(field, u.ClientSecretFile)
		if err != nil {
			return oc, err
		}
		oc.ClientSecret = strings.TrimSpace(string(raw))
		if oc.ClientSecret == "" {
			// Sent as it is, an empty secret would fail every login at
			// the upstream's token endpoint, not here.
			return oc, fmt.Errorf("%s: %s is empty; it must hold the client secret the upstream issued", field, u.ClientSecretFile)
		}
	}
	// What oidcup.New refuses, such as a key it cannot sign client
	// assertions with (an RSA key under 2048 bits, a P-224 key), is
	// found here, so that CheckFiles finds it too. Its error names the
	// upstream.
	if err := oc.Validate(); err != nil {
		return oc, err
	}
	return oc, nil
}

// loadSigner reads a PEM private key (PKCS#8, SEC 1 or PKCS#1) of any
// kind oidcup can sign client assertions with.
func loadSigner(field, path string) (crypto.Signer, error) {
	raw, err := config.ReadSecretFile(field, path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: %s: no PEM block", field, path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: %s: unsupported PEM block %q", field, path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %s: not a signing key", field, path)
	}
	return s, nil
}

// rotationKeys reads the upstream's next and previous client keys, if
// it names them (ADR 56), and checks each as the key it is to be, or
// was: one that signs client assertions (oidcup.CheckClientKey), and a
// key of its own, not current's or the other's. Each problem names its
// setting and file, and says what to do.
func rotationKeys(u config.Upstream, current crypto.Signer) (next, previous crypto.Signer, err error) {
	type keyFile struct {
		setting, path string
		key           crypto.Signer
	}
	seen := []keyFile{{"client_key_file", u.ClientKeyFile, current}}
	var errs []error
	for _, f := range []struct {
		setting, path string
		dst           *crypto.Signer
	}{{"client_next_key_file", u.ClientNextKeyFile, &next}, {"client_previous_key_file", u.ClientPreviousKeyFile, &previous}} {
		if f.path == "" {
			continue
		}
		field := "upstream " + u.ID + " " + f.setting
		key, err := loadSigner(field, f.path)
		if err == nil {
			err = oidcup.CheckClientKey(key)
			if err != nil {
				err = fmt.Errorf("%s: %s: %w", field, f.path, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, s := range seen {
			if oidcup.SameKey(s.key, key) {
				errs = append(errs, fmt.Errorf("%s: %s holds the same key as %s (%s); %s", field, f.path, s.setting, s.path, rotationHowTo))
			}
		}
		seen = append(seen, keyFile{f.setting, f.path, key})
		*f.dst = key
	}
	return next, previous, errors.Join(errs...)
}

// rotationHowTo says what each of the three files holds during a
// rotation of the client key.
const rotationHowTo = "client_next_key_file is a new key, client_previous_key_file the key client_key_file held before the swap " +
	"(docs/upstream-key-rotation.md)"
