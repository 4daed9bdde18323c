package app_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/npmtest"
	"github.com/varde-eid/varde/internal/oidc"
	"github.com/varde-eid/varde/internal/store"
)

// interopTimeout bounds one run of the relying party in Node, login
// included, so that a stuck process or login cannot hang the test; a
// run takes about half a second.
const interopTimeout = 60 * time.Second

// TestOpenIDClientInterop logs in at a real node with openid-client
// (npm), a relying-party library written independently of Varde and
// of the Go libraries its other end-to-end tests use, run in Node
// (third_party/openid-client/rp.mjs) the way a FAPI-minded relying
// party would: discovery, then
//
//   - a confidential client registered with PAR and DPoP required: PAR
//     with private_key_jwt (its own ES256 key, made here), PKCE S256
//     and a DPoP proof, which binds the code;
//   - a public client (none) that uses DPoP without being required to:
//     a plain authorization request with PKCE and dpop_jkt;
//
// then the person logs in at Varde's pages with a software
// authenticator; openid-client checks the authorization response (iss,
// RFC 9207, and state), redeems the code with PKCE and a DPoP proof,
// verifies the ID token's signature and claims and its nonce, fetches
// userinfo with DPoP, refreshes with DPoP, fetches userinfo again with
// the new access token, introspects it (RFC 7662: active, bound to its
// key; a public client is refused), revokes the new refresh token (RFC
// 7009), which is refused after, and introspects the access token again
// (no longer active). The bound access token sent as a bearer
// token must be refused (RFC 9449 §7.2), and so must the public
// client's refresh token without a proof or with another key's (§5),
// without spending it. Varde's store must hold the tokens bound to the
// thumbprint of openid-client's DPoP key.
//
// The node requires DPoP nonces (oidc.dpop_nonces, on by default; RFC
// 9449 §8, §9): openid-client's first proof, without one, is refused
// with use_dpop_nonce at PAR (private_key_jwt) or at the token endpoint
// (public client), and it retries with the nonce Varde sent; it asks
// UserInfo from a new DPoP handle, which holds no nonce, so it retries
// there too, on a 401 with a DPoP challenge. Its later proofs carry the
// nonce it was last given and are taken at once.
func TestOpenIDClientInterop(t *testing.T) {
	script := openIDClientScript(t)
	// At the root of the host, and under an issuer with a path, which
	// openid-client discovers at {issuer}/.well-known/openid-configuration
	// (Discovery §4).
	for _, base := range []string{"", "/eid"} {
		at := ""
		if base != "" {
			at = " under " + base
		}
		salt := make([]byte, 32)
		_, _ = rand.Read(salt)
		n, _ := startNodeUnder(t, "127.0.0.1:0", base, map[string]string{config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db")}, salt)
		person := n.enrol(t, false)
		ctx := context.Background()
		pk, err := n.app.Store.GetPasskey(ctx, person.Cred.ID)
		if err != nil {
			t.Fatal(err)
		}

		t.Run("private_key_jwt"+at, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			const kid = "fapi-rp-1"
			jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
			if err != nil {
				t.Fatal(err)
			}
			private, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: "ES256", Use: "sig"}.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			c := &store.Client{
				ID: "fapi-rp", Name: "FAPI RP", AuthMethod: store.AuthPrivateKeyJWT, JWKS: jwks,
				RedirectURIs: []string{"https://fapi-rp.example/cb"}, RequirePAR: true, DPoPBoundAccessTokens: true,
				RefreshTokens: true, SectorID: "fapi-rp.example", PostLogoutRedirectURIs: []string{"https://fapi-rp.example/bye"},
				Source: "test", CreatedAt: time.Now(),
			}
			if err := n.app.Store.PutClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			res := runOpenIDClient(t, n, script, person, c.RedirectURIs[0], map[string]string{
				"RP_CLIENT_ID": c.ID, "RP_CLIENT_JWK": string(private), "RP_PAR": "1", "RP_ACR_VALUES": assurance.ACRHigh,
				"RP_POST_LOGOUT_REDIRECT_URI": c.PostLogoutRedirectURIs[0],
			})
			checkEndSession(t, n, res, c.PostLogoutRedirectURIs[0])
			checkInterop(t, n, res, oidc.PairwiseSubject(salt, c.SectorID, pk.PersonID), c)
			// The proof at PAR was openid-client's first: asked for a nonce,
			// it retried; the token request then carried that nonce.
			checkExchanges(t, "PAR", res.Exchanges.PAR, askedForNonce, 201)
			checkExchanges(t, "code", res.Exchanges.Code, 200)
			// A confidential client's refresh token is bound to its client
			// authentication, not to the DPoP key (ADR 14), so it may move to
			// a new key.
			if rt := storedToken(t, n, res.RefreshToken); rt.JKT != "" {
				t.Errorf("the confidential client's refresh token is bound to %s; want it bound to the client's authentication only", rt.JKT)
			}
			// RFC 7662 with private_key_jwt: the refreshed access token is
			// active, with the subject and level of the ID token and the
			// key it is bound to (RFC 9449 §6.2); after the revocation, not.
			want := interopIntrospection{Status: 200, Active: true, Sub: res.Sub, ClientID: c.ID, TokenType: "DPoP",
				ACR: assurance.ACRHigh, Scope: "openid", JKT: thumbprint(t, res.DPoPJWK)}
			if got := res.Introspected; got == nil || *got != want {
				t.Errorf("introspection: %+v, want %+v", got, want)
			}
			if got := res.IntrospectedAfterRevocation; got == nil || *got != (interopIntrospection{Status: 200}) {
				t.Errorf("introspection after revocation: %+v, want only active: false", got)
			}
		})

		// Not registered with dpop_bound_access_tokens: any client may send
		// proofs, and the binding of its tokens, not its registration, is
		// what refuses the refresh token without one.
		t.Run("public client"+at, func(t *testing.T) {
			c := &store.Client{
				ID: "public-rp", Name: "Public RP", AuthMethod: store.AuthNone,
				RedirectURIs: []string{"https://public-rp.example/cb"}, RefreshTokens: true, Source: "test", CreatedAt: time.Now(),
			}
			if err := n.app.Store.PutClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			res := runOpenIDClient(t, n, script, person, c.RedirectURIs[0], map[string]string{"RP_CLIENT_ID": c.ID})
			checkInterop(t, n, res, oidc.PairwiseSubject(salt, c.ID, pk.PersonID), c)
			// No proof at PAR: the token request was openid-client's first.
			checkExchanges(t, "PAR", res.Exchanges.PAR)
			checkExchanges(t, "code", res.Exchanges.Code, askedForNonce, 200)
			// RFC 7662 §2.1: introspection needs client authentication,
			// which a public client has not.
			for _, got := range []*interopIntrospection{res.Introspected, res.IntrospectedAfterRevocation} {
				if got == nil || got.Status != 401 || got.Error != "invalid_client" {
					t.Errorf("introspection by a public client: %+v, want 401 invalid_client", got)
				}
			}
			// The public client's refresh token is bound to the DPoP key
			// (RFC 9449 §5): refused without a proof and with another key's,
			// and still good afterwards with the right one (the refreshed
			// result above came after both refusals).
			for name, r := range map[string]*interopRefusal{"without a proof": res.RefreshWithoutProof, "with another key's proof": res.RefreshOtherKey} {
				if r == nil || r.Status != 400 || r.Error != "invalid_dpop_proof" {
					t.Errorf("refresh %s: %+v, want 400 invalid_dpop_proof", name, r)
				}
			}
			jkt := thumbprint(t, res.DPoPJWK)
			for name, tok := range map[string]string{"first": res.RefreshToken, "refreshed": res.Refreshed.RefreshToken} {
				if got := storedToken(t, n, tok).JKT; got != jkt {
					t.Errorf("%s refresh token bound to %q, want the DPoP key %s", name, got, jkt)
				}
			}
			refusals := 0
			for _, e := range tokenEvents(t, n, c.ID) {
				if e.Result == store.ResultFailure && e.Reason == "dpop_key_mismatch" {
					refusals++
				}
			}
			if refusals != 2 {
				t.Errorf("audit log: %d refused refreshes (dpop_key_mismatch), want 2", refusals)
			}
		})

		// OpenID Connect Core §15.1: RS256 is mandatory to implement, and
		// it is openid-client's id_token_signed_response_alg unless a
		// relying party says otherwise (Registration 1.0 §2). A client
		// registered for it gets its ID tokens signed RS256, and
		// openid-client, told to take RS256 alone, verifies them with the
		// node's JWKS.
		t.Run("RS256 client"+at, func(t *testing.T) {
			c := &store.Client{
				ID: "rs256-rp", Name: "RS256 RP", AuthMethod: store.AuthNone, IDTokenAlg: store.IDTokenRS256,
				RedirectURIs: []string{"https://rs256-rp.example/cb"}, RefreshTokens: true, Source: "test", CreatedAt: time.Now(),
			}
			if err := n.app.Store.PutClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			res := runOpenIDClient(t, n, script, person, c.RedirectURIs[0], map[string]string{
				"RP_CLIENT_ID": c.ID, "RP_ID_TOKEN_ALG": "RS256"})
			checkInterop(t, n, res, oidc.PairwiseSubject(salt, c.ID, pk.PersonID), c)
			checkExchanges(t, "code", res.Exchanges.Code, askedForNonce, 200)
		})
	}
}

// interopResult is what rp.mjs prints once the flow is done.
type interopResult struct {
	DPoPJWK    json.RawMessage `json:"dpop_jwk"`
	DPoPJKT    string          `json:"dpop_jkt"`
	Sub        string          `json:"sub"`
	ACR        string          `json:"acr"`
	AMR        []string        `json:"amr"`
	TokenTypes []string        `json:"token_types"`
	// IDTokenAlgs are the alg headers of the ID tokens from the code and
	// from the refresh.
	IDTokenAlgs         []string        `json:"id_token_algs"`
	AccessToken         string          `json:"access_token"`
	RefreshToken        string          `json:"refresh_token"`
	UserinfoSub         string          `json:"userinfo_sub"`
	Bearer              *interopRefusal `json:"bearer"`
	RefreshWithoutProof *interopRefusal `json:"refresh_without_proof"`
	RefreshOtherKey     *interopRefusal `json:"refresh_other_key"`
	Refreshed           struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDTokenSub   string `json:"id_token_sub"`
		UserinfoSub  string `json:"userinfo_sub"`
	} `json:"refreshed"`
	RefreshAfterRevocation *interopRefusal `json:"refresh_after_revocation"`
	// The refreshed access token introspected (RFC 7662) before and
	// after the revocation.
	Introspected                *interopIntrospection `json:"introspected"`
	IntrospectedAfterRevocation *interopIntrospection `json:"introspected_after_revocation"`
	// EndSession is the RP-initiated logout URL openid-client built, and
	// the state it put in it; nil without RP_POST_LOGOUT_REDIRECT_URI.
	EndSession *struct {
		URL   string `json:"url"`
		State string `json:"state"`
	} `json:"end_session"`
	// Exchanges are the requests to the PAR, token and UserInfo
	// endpoints, by step of the flow.
	Exchanges struct {
		PAR               []interopExchange `json:"par"`
		Code              []interopExchange `json:"code"`
		Userinfo          []interopExchange `json:"userinfo"`
		Refresh           []interopExchange `json:"refresh"`
		RefreshedUserinfo []interopExchange `json:"refreshed_userinfo"`
	} `json:"exchanges"`
}

// interopIntrospection is an introspection answer as openid-client
// parsed it, or its refusal (Status and Error).
type interopIntrospection struct {
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Active    bool   `json:"active"`
	Sub       string `json:"sub"`
	ClientID  string `json:"client_id"`
	TokenType string `json:"token_type"`
	ACR       string `json:"acr"`
	Scope     string `json:"scope"`
	JKT       string `json:"jkt"`
}

// interopExchange is one request openid-client made to the PAR, token
// or UserInfo endpoint, and its answer, as they went on the wire.
type interopExchange struct {
	Proof       bool   `json:"proof"`
	NonceSent   bool   `json:"nonce_sent"`
	Status      int    `json:"status"`
	Error       string `json:"error"`
	Challenge   string `json:"challenge"`
	NonceHeader bool   `json:"nonce_header"`
}

// askedForNonce in checkExchanges is a request whose proof had no
// nonce, refused with use_dpop_nonce.
const askedForNonce = -1

// checkExchanges checks the requests openid-client made in one step of
// the flow: each with a DPoP proof, answered with the status in want
// (askedForNonce: a proof without a nonce, refused with use_dpop_nonce,
// RFC 9449 §8 and §9), the proof of every other carrying a nonce; and
// every answer with a DPoP-Nonce header.
func checkExchanges(t *testing.T, step string, got []interopExchange, want ...int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: openid-client made %d requests (%+v), want %d", step, len(got), got, len(want))
		return
	}
	for i, e := range got {
		if !e.Proof || !e.NonceHeader {
			t.Errorf("%s, request %d: %+v; want a DPoP proof, and DPoP-Nonce in the answer", step, i+1, e)
		}
		if want[i] != askedForNonce {
			if !e.NonceSent || e.Status != want[i] {
				t.Errorf("%s, request %d: %+v; want a proof with a nonce, answered %d", step, i+1, e, want[i])
			}
			continue
		}
		status := 400 // RFC 9449 §8: the authorization server
		if step == "userinfo" {
			status = 401 // §9: a protected resource, with a DPoP challenge
		}
		if e.NonceSent || e.Status != status || e.Error != "use_dpop_nonce" {
			t.Errorf("%s, request %d: %+v; want a proof without a nonce, refused %d use_dpop_nonce", step, i+1, e, status)
		}
		if status == 401 && (!strings.HasPrefix(e.Challenge, "DPoP ") || !strings.Contains(e.Challenge, `error="use_dpop_nonce"`)) {
			t.Errorf("%s, request %d: WWW-Authenticate %q; want a DPoP challenge naming use_dpop_nonce", step, i+1, e.Challenge)
		}
	}
}

// interopRefusal is a request openid-client made that was refused.
type interopRefusal struct {
	Status     int                `json:"status"`
	Error      string             `json:"error"`
	Challenges []interopChallenge `json:"challenges"`
}

// interopChallenge is a WWW-Authenticate challenge as openid-client
// parsed it (scheme in lower case).
type interopChallenge struct {
	Scheme string `json:"scheme"`
	Error  string `json:"error"`
}

// checkInterop checks what openid-client reported of one login by
// client c, and Varde's records of it.
func checkInterop(t *testing.T, n *node, res *interopResult, wantSub string, c *store.Client) {
	t.Helper()
	if res.Sub != wantSub {
		t.Errorf("sub = %q, want the pairwise subject %q of this person for this client", res.Sub, wantSub)
	}
	// RFC 7009: openid-client revoked the refreshed refresh token, and
	// Varde revoked the grant: the token is refused after.
	if r := res.RefreshAfterRevocation; r == nil || r.Status != 400 || r.Error != "invalid_grant" {
		t.Errorf("refresh after revocation: %+v, want 400 invalid_grant", r)
	}
	if g, err := n.app.Store.GetGrant(context.Background(), storedToken(t, n, res.Refreshed.RefreshToken).GrantID); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("grant of the revoked refresh token: %+v, %v; want it revoked", g, err)
	}
	if res.ACR != assurance.ACRHigh {
		t.Errorf("acr = %q, want %s (device-bound passkey, synthetic person proofed high)", res.ACR, assurance.ACRHigh)
	}
	if alg := c.IDTokenSigningAlg(); !slices.Equal(res.IDTokenAlgs, []string{alg, alg}) {
		t.Errorf("ID tokens from the code and the refresh signed %q, want %s, the client's id_token_signed_response_alg", res.IDTokenAlgs, alg)
	}
	if len(res.AMR) == 0 || res.AMR[0] != "hwk" {
		t.Errorf("amr = %q, want hwk first", res.AMR)
	}
	if res.UserinfoSub != res.Sub || res.Refreshed.UserinfoSub != res.Sub || res.Refreshed.IDTokenSub != res.Sub {
		t.Errorf("sub: ID token %q, userinfo %q; after refresh: ID token %q, userinfo %q; want all the same",
			res.Sub, res.UserinfoSub, res.Refreshed.IDTokenSub, res.Refreshed.UserinfoSub)
	}
	// RFC 9449 §5: token_type DPoP, as Varde wrote it, from the code
	// and from the refresh.
	if strings.Join(res.TokenTypes, " ") != "DPoP DPoP" {
		t.Errorf("token_type of the token responses %q, want DPoP twice (RFC 9449 §5)", res.TokenTypes)
	}
	// RFC 9449 §7.2: a bound token presented as a bearer token is refused,
	// with a Bearer challenge saying why (RFC 6750 §3) and a DPoP one
	// saying which scheme to use, as openid-client reads them.
	if b := res.Bearer; b == nil || b.Status != 401 || b.Error != "invalid_token" ||
		!slices.ContainsFunc(b.Challenges, func(c interopChallenge) bool { return c.Scheme == "dpop" }) {
		t.Errorf("bound access token as a bearer token: %+v, want 401 invalid_token and a DPoP challenge", b)
	}
	// UserInfo from a handle without a nonce: asked for one with 401 and
	// a DPoP challenge, openid-client retried. After the refresh, its
	// handle held the nonce the token endpoint gave it.
	checkExchanges(t, "userinfo", res.Exchanges.Userinfo, askedForNonce, 200)
	checkExchanges(t, "refresh", res.Exchanges.Refresh, 200)
	checkExchanges(t, "refreshed userinfo", res.Exchanges.RefreshedUserinfo, 200)
	// Varde bound both access tokens to the key openid-client made, by
	// its RFC 7638 thumbprint, and openid-client computes the same one.
	jkt := thumbprint(t, res.DPoPJWK)
	if res.DPoPJKT != jkt {
		t.Errorf("openid-client's thumbprint %s, ours %s", res.DPoPJKT, jkt)
	}
	for name, tok := range map[string]string{"first": res.AccessToken, "refreshed": res.Refreshed.AccessToken} {
		at := storedToken(t, n, tok)
		if at.Kind != store.TokenAccess || at.ClientID != c.ID || at.JKT != jkt {
			t.Errorf("%s access token: stored as %s of %s bound to %q; want an access token of %s bound to %s", name, at.Kind, at.ClientID, at.JKT, c.ID, jkt)
		}
	}
	// Every issue is in the audit log: the code's, then the refresh's,
	// then the revocation.
	var grants []string
	for _, e := range tokenEvents(t, n, c.ID) {
		switch {
		case e.Result != store.ResultSuccess:
		case e.Details["revoked"] != "":
			grants = append(grants, "revoked "+e.Details["revoked"])
		default:
			grants = append(grants, e.Details["grant_type"])
		}
	}
	if strings.Join(grants, ", ") != "authorization_code, refresh_token, revoked refresh_token" {
		t.Errorf("audit log: tokens issued to %s by %q, want authorization_code, refresh_token, then refresh_token revoked", c.ID, grants)
	}
}

// runOpenIDClient runs rp.mjs for one login by person: it starts the
// relying party with env, logs the person in at the authorization URL
// it prints, hands it the URL Varde redirected back to, and returns
// what it reports. The run is bounded by interopTimeout; the process is
// killed if it is still there when the test ends.
func runOpenIDClient(t *testing.T, n *node, script string, person *loadgen.Person, redirect string, env map[string]string) *interopResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), interopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), "RP_ISSUER="+n.issuer, "RP_REDIRECT_URI="+redirect)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	// fail ends the test with what went wrong and what the relying
	// party said about it.
	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		exited = true
		msg := fmt.Sprintf(format, args...)
		if ctx.Err() != nil {
			msg += fmt.Sprintf(" (after %v: %v)", interopTimeout, ctx.Err())
		}
		t.Fatalf("%s\nopenid-client: %s", msg, strings.TrimSpace(stderr.String()))
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 64<<10), 1<<20)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			fail("openid-client ended without answering (%v)", cmp.Or[error](lines.Err(), io.EOF))
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			fail("openid-client's answer %q: %v", lines.Bytes(), err)
		}
	}

	var begin struct {
		AuthorizationURL string `json:"authorization_url"`
	}
	next(&begin)
	browser := &loadgen.RP{Issuer: n.issuer, RedirectURI: redirect, HTTP: n.http}
	cb, err := browser.Authorize(ctx, person, begin.AuthorizationURL, loadgen.LoginOptions{})
	if err != nil {
		fail("login at %s: %v", begin.AuthorizationURL, err)
	}
	if _, err := io.WriteString(stdin, cb.String()+"\n"); err != nil {
		fail("handing the callback to openid-client: %v", err)
	}
	var res interopResult
	next(&res)
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Fatalf("openid-client: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	t.Logf("%s: openid-client's flow took %v", env["RP_CLIENT_ID"], time.Since(start).Round(time.Millisecond))
	return &res
}

// checkEndSession opens the RP-initiated logout URL openid-client built
// in a browser without a session at Varde, as the relying party would
// send the person there: its ID token as the hint, the browser is sent
// straight back to the post-logout redirect URI bye, with the state.
func checkEndSession(t *testing.T, n *node, res *interopResult, bye string) {
	t.Helper()
	if res.EndSession == nil || !strings.HasPrefix(res.EndSession.URL, n.issuer+oidc.PathLogout+"?") {
		t.Fatalf("openid-client built the logout URL %+v, want one at %s", res.EndSession, n.issuer+oidc.PathLogout)
	}
	resp, err := n.http.Get(res.EndSession.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := bye + "?" + url.Values{"state": {res.EndSession.State}}.Encode()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != want {
		t.Errorf("openid-client's logout URL %s: %d to %q, want 303 to %s", res.EndSession.URL, resp.StatusCode, loc, want)
	}
}

// openIDClientScript returns the path of rp.mjs after checking that
// Node and the pinned openid-client are installed. Their absence fails
// the test: it is the only relying party the suite has that Varde's
// authors did not write.
func openIDClientScript(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "third_party", "openid-client"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed (%v): run make openid-client", err)
	}
	if _, err := npmtest.Check(dir, "openid-client"); err != nil {
		t.Fatalf("%v: run make openid-client", err)
	}
	return filepath.Join(dir, "rp.mjs")
}

// thumbprint is the RFC 7638 SHA-256 thumbprint of a public JWK, by
// go-jose.
func thumbprint(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		t.Fatalf("DPoP key %s: %v", raw, err)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// storedToken is Varde's record of a token, found as Varde finds it:
// by its SHA-256.
func storedToken(t *testing.T, n *node, tok string) *store.Token {
	t.Helper()
	sum := sha256.Sum256([]byte(tok))
	rec, err := n.app.Store.GetToken(context.Background(), sum[:])
	if err != nil {
		t.Fatalf("stored token: %v", err)
	}
	return rec
}

// tokenEvents are the audit log's token events of one client.
func tokenEvents(t *testing.T, n *node, clientID string) []*store.AuditEvent {
	t.Helper()
	all, err := n.app.Store.ListAuditRange(context.Background(), store.AuditQuery{Types: []string{"token"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*store.AuditEvent
	for _, e := range all {
		if e.ClientID == clientID {
			out = append(out, e)
		}
	}
	return out
}
