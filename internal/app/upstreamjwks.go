package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/store"
)

// UpstreamJWKS reads the client key files of upstream id in cfg, as a
// node reads them at start, and returns the public JWK set the node
// serves for it at oidcup.JWKSPath: the key that signs, then the next
// and the previous key (ADR 56). It is what an operator registers at an
// eID that holds Varde's keys rather than fetching them.
func UpstreamJWKS(cfg *config.Config, id string) (jose.JSONWebKeySet, error) {
	i := slices.IndexFunc(cfg.Upstreams, func(u config.Upstream) bool { return u.ID == id })
	if i < 0 {
		ids := make([]string, len(cfg.Upstreams))
		for j, u := range cfg.Upstreams {
			ids[j] = u.ID
		}
		if len(ids) == 0 {
			return jose.JSONWebKeySet{}, fmt.Errorf("no upstream %q: the configuration names no upstreams", id)
		}
		return jose.JSONWebKeySet{}, fmt.Errorf("no upstream %q; the configuration's upstreams are %s", id, strings.Join(ids, ", "))
	}
	u := cfg.Upstreams[i]
	if u.AuthMethod != store.AuthPrivateKeyJWT {
		return jose.JSONWebKeySet{}, fmt.Errorf("upstream %s authenticates Varde with %s: it has no client keys to register", id, u.AuthMethod)
	}
	oc, err := upstreamConfig(cfg.Issuer, u)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return oc.ClientJWKS()
}
