package oidc

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/httpx"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
	"github.com/varde-eid/varde/web"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// discardOutbox has no ended sessions and drops the logout tokens it is
// given.
type discardOutbox struct{}

func (discardOutbox) PendingSessionEnds(context.Context, time.Time, int) ([]*store.Session, error) {
	return nil, nil
}

func (discardOutbox) DeferSessionEnd(context.Context, string, func(int) time.Time) (int, error) {
	return 0, store.ErrNotFound
}

func (discardOutbox) SettleSessionEnd(context.Context, string, []*store.WebhookDelivery) (bool, error) {
	return true, nil
}

func TestDiscoveryGolden(t *testing.T) {
	pages, err := httpx.NewPages(web.Templates, web.Locales, []httpx.Language{{Tag: "nb", Name: "Norsk bokmål"}, {Tag: "en", Name: "English"}, {Tag: "da", Name: "Dansk"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "https://id.example.no/", Pages: pages, LogoutOutbox: discardOutbox{}}
	mux := http.NewServeMux()
	p.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathDiscovery, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	golden := filepath.Join("testdata", "openid-configuration.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := rec.Body.String(); got != string(want) {
		t.Fatalf("discovery document changed (run with -update if intended):\n%s", got)
	}
}

func TestDiscoveryMatchesServer(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.issuer + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	// OIDC Discovery §4.3: issuer is exactly the URL the document was
	// fetched under.
	if d["issuer"] != h.issuer || d["token_endpoint"] != h.issuer+PathToken || d["authorization_response_iss_parameter_supported"] != true {
		t.Fatalf("discovery = %v", d)
	}
	// OIDC Discovery §3: request_uri_parameter_supported defaults to true
	// when absent, and Varde takes no request objects by reference (only
	// PAR's request URIs), so it says false.
	for _, k := range []string{"request_parameter_supported", "request_uri_parameter_supported"} {
		if v, ok := d[k]; !ok || v != false {
			t.Errorf("%s = %v (present %v), want false", k, v, ok)
		}
	}
}

// TestAuthorizationServerMetadata: the document is also at RFC 8414
// §3.1's location, byte for byte the same, with the issuer it was
// fetched under (§3.3).
func TestAuthorizationServerMetadata(t *testing.T) {
	h := newHarness(t)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(h.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	oidcResp, oidcDoc := get(PathDiscovery)
	oauthResp, oauthDoc := get(PathAuthorizationServer)
	if oauthResp.StatusCode != http.StatusOK || string(oauthDoc) != string(oidcDoc) {
		t.Fatalf("%s: %d\n%s\nwant 200 and the document at %s:\n%s", PathAuthorizationServer, oauthResp.StatusCode, oauthDoc, PathDiscovery, oidcDoc)
	}
	for _, k := range []string{"Content-Type", "Cache-Control"} {
		if got, want := oauthResp.Header.Get(k), oidcResp.Header.Get(k); got != want {
			t.Errorf("%s: %s %q, want %q", PathAuthorizationServer, k, got, want)
		}
	}
	var d map[string]any
	if err := json.Unmarshal(oauthDoc, &d); err != nil || d["issuer"] != h.issuer {
		t.Errorf("issuer = %v (%v), want %s", d["issuer"], err, h.issuer)
	}
}

func TestJWKS(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.issuer + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != h.p.Signer.KID() || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "ES256" {
		t.Fatalf("jwks = %+v", set.Keys)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("Content-Type = %s", ct)
	}
	// ADR 18: a relying party that honours HTTP caching fetches the set
	// again within a minute, so a retired key leaves its trust by then.
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Errorf("Cache-Control = %q, want public, max-age=60", cc)
	}
}

// TestJWKSStoreDown: while the store cannot be read the node serves the
// set it has, uncached, since it may lack keys that sign live tokens; a
// node left with no key to serve answers 503 with Retry-After rather than
// an empty set a relying party would cache and refuse every token by.
func TestJWKSStoreDown(t *testing.T) {
	get := func(h *harness) (*http.Response, jose.JSONWebKeySet) {
		t.Helper()
		resp, err := http.Get(h.issuer + PathJWKS)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		_ = json.NewDecoder(resp.Body).Decode(&set)
		return resp, set
	}

	h := newHarness(t)
	h.db.Close()
	resp, set := get(h)
	if resp.StatusCode != http.StatusOK || len(set.Keys) != 1 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("own key, store down: %d %q %+v", resp.StatusCode, resp.Header.Get("Cache-Control"), set.Keys)
	}
	// Past keys.DefaultMaxStale since the store was last read, a key
	// retired meanwhile could still be served: the node serves none.
	h.clock.Add(keys.DefaultMaxStale + time.Second)
	resp, set = get(h)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || len(set.Keys) != 0 {
		t.Errorf("store down past MaxStale: %d Retry-After %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), set.Keys)
	}

	h = newHarness(t)
	if _, err := h.db.RetirePublicKey(context.Background(), h.p.Signer.KID(), h.clock.Now(), nil); err != nil {
		t.Fatal(err)
	}
	// The node's own key was retired and no other node's is published:
	// no empty set for a relying party to cache for a minute.
	if resp, set := get(h); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Cache-Control") == "public, max-age=60" || len(set.Keys) != 0 {
		t.Fatalf("retired key, no other: %d Retry-After %q Cache-Control %q %+v",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"), set.Keys)
	}
	h.db.Close()
	h.clock.Add(time.Minute)
	resp, set = get(h)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || len(set.Keys) != 0 {
		t.Errorf("no key, store down: %d Retry-After %q %+v", resp.StatusCode, resp.Header.Get("Retry-After"), set.Keys)
	}
}
