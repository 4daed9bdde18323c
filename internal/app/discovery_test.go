package app_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

// discoveryOf fetches the node's discovery document.
func discoveryOf(t *testing.T, n *node) oidc.Discovery {
	t.Helper()
	var meta oidc.Discovery
	res, err := n.http.Get(n.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := jsonDecode(res, &meta); err != nil {
		t.Fatal(err)
	}
	return meta
}

// TestDiscoveryRefusalsAtTheNode: what the discovery document of a real
// node does not advertise is refused at its authorization endpoint with
// the error the specs name, in an authorization response that carries
// iss (RFC 9207 §2, authorization_response_iss_parameter_supported):
// request objects by value (request_parameter_supported false) with
// request_not_supported and by reference (request_uri_parameter_supported
// false) with request_uri_not_supported (OIDC Core §6, §3.1.2.6); a
// response type or PKCE method it does not list; a grant type and a
// client authentication method it does not list at the token endpoint
// (RFC 6749 §5.2), a request object at PAR, and a public client at
// introspection, whose auth methods leave out none (RFC 8414 §2).
func TestDiscoveryRefusalsAtTheNode(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	meta := discoveryOf(t, n)
	if meta.RequestParameterSupported || meta.RequestURIParameterSupported || !meta.AuthorizationResponseIssParameterSupported {
		t.Fatalf("discovery: request %v, request_uri %v, iss %v", meta.RequestParameterSupported, meta.RequestURIParameterSupported, meta.AuthorizationResponseIssParameterSupported)
	}
	const redirect = "https://plain.example/callback"
	err := n.app.Store.PutClient(ctx, &store.Client{
		ID: "plain", Name: "plain", AuthMethod: store.AuthNone,
		RedirectURIs: []string{redirect}, Source: "test", CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := *n.http
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := func() url.Values {
		return url.Values{
			"client_id": {"plain"}, "redirect_uri": {redirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st"},
			"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWb0ydoUcFm8c"},
			"code_challenge_method": {"S256"},
		}
	}
	cases := []struct {
		name string
		set  url.Values
		want string
	}{
		{"request object", url.Values{"request": {"eyJhbGciOiJub25lIn0.e30."}}, "request_not_supported"},
		{"request object by reference", url.Values{"request_uri": {"https://plain.example/request.jwt"}}, "request_uri_not_supported"},
		{"implicit", url.Values{"response_type": {"id_token"}}, "unsupported_response_type"},
		{"plain PKCE", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := base()
			for k, v := range tc.set {
				form[k] = v
			}
			res, err := noRedirect.Get(meta.AuthorizationEndpoint + "?" + form.Encode())
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(res)
			loc, err := url.Parse(res.Header.Get("Location"))
			if err != nil || res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), redirect+"?") {
				t.Fatalf("status %d, Location %q, want a redirect to the client: %s", res.StatusCode, res.Header.Get("Location"), body)
			}
			q := loc.Query()
			if q.Get("error") != tc.want || q.Get("iss") != meta.Issuer || q.Get("state") != "st" {
				t.Errorf("response %v, want error %s with iss %s and state", q, tc.want, meta.Issuer)
			}
		})
	}
	pushed := base()
	pushed.Set("request", "eyJhbGciOiJub25lIn0.e30.")
	introspect := url.Values{"token": {"x"}, "client_id": {"plain"}}
	if slices.Contains(meta.IntrospectionEndpointAuthMethodsSupported, store.AuthNone) {
		t.Fatal("introspection advertises none")
	}
	if slices.Contains(meta.TokenEndpointAuthMethodsSupported, "client_secret_post") {
		t.Fatal("client_secret_post advertised")
	}
	posts := []struct {
		name, endpoint string
		form           url.Values
		status         int
		want           string
	}{
		{"grant type not advertised", meta.TokenEndpoint, url.Values{"grant_type": {"client_credentials"}, "client_id": {"plain"}}, http.StatusBadRequest, "unsupported_grant_type"},
		{"client_secret_post", meta.TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"plain"}, "client_secret": {"s"}}, http.StatusUnauthorized, "invalid_client"},
		{"pushed request object", meta.PushedAuthorizationRequestEndpoint, pushed, http.StatusBadRequest, "request_not_supported"},
		{"introspection by a public client", meta.IntrospectionEndpoint, introspect, http.StatusUnauthorized, "invalid_client"},
	}
	for _, tc := range posts {
		t.Run(tc.name, func(t *testing.T) {
			res, err := n.http.PostForm(tc.endpoint, tc.form)
			if err != nil {
				t.Fatal(err)
			}
			var e struct{ Error string }
			if err := jsonDecode(res, &e); err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.status || e.Error != tc.want {
				t.Errorf("status %d, error %q, want %d %s", res.StatusCode, e.Error, tc.status, tc.want)
			}
		})
	}
}

// TestDiscoveryLocalesServed: every locale of ui_locales_supported is
// the language of the login page a request with that ui_locales reaches
// (OIDC Core §3.1.2.1, Discovery §3), and of the logout page.
func TestDiscoveryLocalesServed(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	meta := discoveryOf(t, n)
	const redirect = "https://plain.example/callback"
	err := n.app.Store.PutClient(ctx, &store.Client{
		ID: "plain", Name: "plain", AuthMethod: store.AuthNone,
		RedirectURIs: []string{redirect}, Source: "test", CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.UILocalesSupported) == 0 {
		t.Fatal("no ui_locales_supported")
	}
	for _, loc := range meta.UILocalesSupported {
		t.Run(loc, func(t *testing.T) {
			form := url.Values{
				"client_id": {"plain"}, "redirect_uri": {redirect}, "response_type": {"code"},
				"scope": {"openid"}, "state": {"st"}, "ui_locales": {loc},
				"code_challenge":        {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWb0ydoUcFm8c"},
				"code_challenge_method": {"S256"},
			}
			// A browser, which keeps the cookie that binds the login to
			// it (ADR 47).
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar}
			for _, u := range []string{meta.AuthorizationEndpoint + "?" + form.Encode(), meta.EndSessionEndpoint + "?" + url.Values{"ui_locales": {loc}}.Encode()} {
				res, err := browser.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(res)
				if !strings.Contains(body, `<html lang="`+loc+`"`) {
					t.Errorf("%s: status %d, page not in %s: %.300s", u, res.StatusCode, loc, body)
				}
			}
		})
	}
}

// TestDiscoveryClaimsIssued: every member of claims_supported reaches a
// client registered for the person's claims, in the ID token or at
// UserInfo (both verified by go-oidc with x/oauth2), for a person who
// has the data; a login asked for at each acr of acr_values_supported
// succeeds with an acr that list holds. "degraded" is only ever
// true, in a login let below the level asked for (internal/oidc's
// TestDegradedModePolicy).
func TestDiscoveryClaimsIssued(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	meta := discoveryOf(t, n)
	person := []string{"name", "given_name", "family_name", "birthdate", "national_id"}
	rp := n.addRP(t, "bank", "bank.example", person...)
	device := n.enrol(t, false)
	for _, acr := range meta.ACRValuesSupported {
		got, err := rp.Login(ctx, device, loadgen.LoginOptions{ACRValues: acr})
		if err != nil {
			t.Fatalf("login at %s: %v", acr, err)
		}
		if a, _ := got.Claims["acr"].(string); !slices.Contains(meta.ACRValuesSupported, a) {
			t.Errorf("acr %q issued, not in acr_values_supported %v", a, meta.ACRValuesSupported)
		}
	}
	got, err := rp.Login(ctx, device, loadgen.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, meta.UserinfoEndpoint, nil)
	req.Header.Set("Authorization", "Bearer "+got.AccessToken)
	res, err := n.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	if err := jsonDecode(res, &ui); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %v", res.StatusCode, err)
	}
	res.Body.Close()
	for _, c := range meta.ClaimsSupported {
		if c == "degraded" {
			continue
		}
		_, inToken := got.Claims[c]
		_, atUserinfo := ui[c]
		if !inToken && !atUserinfo {
			t.Errorf("claim %q of claims_supported is in neither the ID token %v nor UserInfo %v", c, got.Claims, ui)
		}
	}
}

// TestDiscoveryIDTokenAlgsIssued: for each algorithm of
// id_token_signing_alg_values_supported (ES256, and RS256 on a node with
// an RSA key, as this one made up at start), a client registered for it
// logs in with go-oidc accepting that algorithm alone, and gets its ID
// token signed with it by a key of the JWKS (OIDC Core §15.1, ADR 32).
func TestDiscoveryIDTokenAlgsIssued(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	meta := discoveryOf(t, n)
	if !slices.Contains(meta.IDTokenSigningAlgValuesSupported, "RS256") {
		t.Errorf("id_token_signing_alg_values_supported %v lacks RS256 (Discovery §3)", meta.IDTokenSigningAlgValuesSupported)
	}
	device := n.enrol(t, false)
	set := jwksOf(t, n)
	for _, alg := range meta.IDTokenSigningAlgValuesSupported {
		rp := n.addRPWith(t, "rp-"+strings.ToLower(alg), "", func(c *store.Client) { c.IDTokenAlg = alg })
		got, err := withIDTokenAlgs(t, rp, alg).Login(ctx, device, loadgen.LoginOptions{})
		if err != nil {
			t.Fatalf("login of a client registered for %s: %v", alg, err)
		}
		h, kid := jwsAlg(t, got.RawIDToken)
		if keys := set.Key(kid); h != alg || len(keys) != 1 || keys[0].Algorithm != alg {
			t.Errorf("ID token of a client registered for %s: alg %s by %s, which the JWKS lists as %v", alg, h, kid, keys)
		}
	}
}

// TestDiscoveryAssertionAlgs: a client whose key signs with any algorithm
// of token_endpoint_auth_signing_alg_values_supported authenticates with
// private_key_jwt at PAR, and with the same assertion algorithms at
// introspection and revocation, whose lists the document gives alike.
func TestDiscoveryAssertionAlgs(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	meta := discoveryOf(t, n)
	if !slices.Equal(meta.TokenEndpointAuthSigningAlgValuesSupported, meta.IntrospectionEndpointAuthSigningAlgValuesSupported) ||
		!slices.Equal(meta.TokenEndpointAuthSigningAlgValuesSupported, meta.RevocationEndpointAuthSigningAlgValuesSupported) {
		t.Fatalf("assertion algorithms differ: token %v, introspection %v, revocation %v", meta.TokenEndpointAuthSigningAlgValuesSupported,
			meta.IntrospectionEndpointAuthSigningAlgValuesSupported, meta.RevocationEndpointAuthSigningAlgValuesSupported)
	}
	for _, alg := range meta.TokenEndpointAuthSigningAlgValuesSupported {
		t.Run(alg, func(t *testing.T) {
			var key crypto.Signer
			switch jose.SignatureAlgorithm(alg) {
			case jose.ES256:
				key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			case jose.ES384:
				key, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			case jose.RS256, jose.PS256:
				key, _ = rsa.GenerateKey(rand.Reader, 2048)
			case jose.EdDSA:
				_, key, _ = ed25519.GenerateKey(rand.Reader)
			default:
				t.Fatalf("no key for %s", alg)
			}
			id := "rp-" + strings.ToLower(alg)
			jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: id, Algorithm: alg, Use: "sig"}}})
			redirect := "https://" + id + ".example/callback"
			err := n.app.Store.PutClient(ctx, &store.Client{
				ID: id, Name: id, AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
				RedirectURIs: []string{redirect}, Source: "test", CreatedAt: time.Now(),
			})
			if err != nil {
				t.Fatal(err)
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: key, KeyID: id}}, (&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				t.Fatal(err)
			}
			assertion := func() string {
				now := time.Now()
				tok, err := jwt.Signed(signer).Claims(jwt.Claims{
					Issuer: id, Subject: id, Audience: jwt.Audience{meta.Issuer}, ID: rand.Text(),
					IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
				}).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			auth := func(form url.Values) url.Values {
				form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				form.Set("client_assertion", assertion())
				return form
			}
			par := url.Values{
				"client_id": {id}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid"},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWb0ydoUcFm8c"}, "code_challenge_method": {"S256"},
			}
			for _, c := range []struct {
				endpoint string
				form     url.Values
				status   int
			}{
				{meta.PushedAuthorizationRequestEndpoint, par, http.StatusCreated},
				{meta.IntrospectionEndpoint, url.Values{"token": {"unknown"}}, http.StatusOK},
				{meta.RevocationEndpoint, url.Values{"token": {"unknown"}}, http.StatusOK},
			} {
				res, err := n.http.PostForm(c.endpoint, auth(c.form))
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(res)
				if res.StatusCode != c.status {
					t.Errorf("%s: status %d, want %d: %s", c.endpoint, res.StatusCode, c.status, body)
				}
			}
		})
	}
}
