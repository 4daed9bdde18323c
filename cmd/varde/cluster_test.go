package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/pgtest"
	"github.com/varde-eid/varde/internal/providersim"
)

// cluster is two nodes over one PostgreSQL database behind the
// balancer (nodeCluster), and the test's relying party.
type cluster struct {
	*nodeCluster
	lb     *clusterLB
	hc     *http.Client
	rp     *loadgen.RP
	client *keyClient
	// provider is the relying party's view of the issuer (go-oidc),
	// discovered through the load balancer.
	provider *gooidc.Provider
}

// clusterDSNSecret is the password in the cluster's DSN.
const clusterDSNSecret = "dsn-secret-5f3a"

// startCluster starts a simulated BankID (`varde provider-sim`), the
// nodes, with the relying party and the eID in their configuration, and
// the load balancer in front of them.
func startCluster(ctx context.Context, t *testing.T) *cluster {
	t.Helper()
	// The test server trusts every connection, so a password in the DSN
	// is never used: it is there to be looked for where it must not be.
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), clusterDSNSecret)
	dsn := u.String()
	dir := t.TempDir()
	nc, err := listenCluster(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{nodeCluster: nc, hc: benchHTTPClient(4)}
	t.Cleanup(func() {
		c.stop()
		for _, n := range c.nodes {
			if t.Failed() || n.exitErr != nil && !n.killed() {
				t.Logf("%s exited (%v); its log:\n%s", n.name, n.exitErr, tail(n.log, 30))
			}
		}
	})
	env := []string{childEnvMarker + "=1"}
	sim, upstream, err := startBenchSim(ctx, &benchOptions{logLevel: "warn"}, env, dir, c.issuer)
	if sim != nil {
		t.Cleanup(sim.stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	err = c.start(ctx, clusterSpec{dsn: dsn, names: []string{"a", "b"}, salt: []byte(rand.Text() + rand.Text()),
		env: env, logLevel: "info", upstreams: []any{upstream}})
	if err != nil {
		t.Fatal(err)
	}
	c.lb = newClusterLB(c.bal)
	c.serve(250 * time.Millisecond)

	c.rp = &loadgen.RP{Issuer: c.issuer, ClientID: clusterClient, RedirectURI: clusterCallback, Key: c.rpKey, KeyID: clusterKID, HTTP: c.hc}
	if err := c.rp.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	c.client = &keyClient{issuer: c.issuer, id: clusterClient, kid: clusterKID, key: c.rpKey, http: c.hc}
	if c.provider, err = gooidc.NewProvider(gooidc.ClientContext(ctx, c.hc), c.issuer); err != nil {
		t.Fatal(err)
	}
	return c
}

// killed reports whether the node was ended by SIGKILL.
func (n *clusterNode) killed() bool {
	var exit *exec.ExitError
	if !errors.As(n.exitErr, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// clusterLB is the test's hold on the balancer: each request goes to
// the node its route is pinned to, or else to the next node in turn
// (the balancer passes over a node that is down or cannot be connected
// to). Discovery and keys take turns of their own, so that a
// relying party fetching them does not change which node the steps of a
// login reach. It keeps the requests the balancer passed on.
type clusterLB struct {
	nodes int

	mu         sync.Mutex
	turn, meta int
	pinned     map[string]int // "METHOD /path" → node
	hops       []lbHop
}

// newClusterLB sets b's hooks; b must not serve yet.
func newClusterLB(b *balancer) *clusterLB {
	lb := &clusterLB{nodes: len(b.nodes), pinned: map[string]int{}}
	b.pick, b.observe = lb.pick, lb.observe
	return lb
}

func (lb *clusterLB) observe(h lbHop) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.hops = append(lb.hops, h)
}

func (lb *clusterLB) pick(r *http.Request) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if n, ok := lb.pinned[r.Method+" "+r.URL.Path]; ok {
		return n
	}
	if r.URL.Path == "/jwks" || strings.HasPrefix(r.URL.Path, "/.well-known/") {
		lb.meta++
		return lb.meta % lb.nodes
	}
	n := lb.turn % lb.nodes
	lb.turn++
	return n
}

// reset forgets the hops so far and pins, and gives the next request
// that is not pinned to node first; each route in pin goes to its node.
func (lb *clusterLB) reset(first int, pin map[string]int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.turn, lb.hops, lb.pinned = first, nil, pin
	if lb.pinned == nil {
		lb.pinned = map[string]int{}
	}
}

// steps returns the hops since reset, without discovery and keys.
func (lb *clusterLB) steps() []lbHop {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(lb.hops), func(h lbHop) bool {
		return h.route == "GET /jwks" || strings.HasPrefix(h.route, "GET /.well-known/")
	})
}

// served returns the node that answered route last since reset, or -1.
func (lb *clusterLB) served(route string) int {
	hops := lb.steps()
	for i := len(hops) - 1; i >= 0; i-- {
		if hops[i].route == route && hops[i].err == nil {
			return hops[i].node
		}
	}
	return -1
}

// kid is the key ID in a compact JWS's header.
func kid(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("id token: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

// jwksKIDs fetches the JWKS at base and returns its key IDs, sorted.
func jwksKIDs(t *testing.T, hc *http.Client, base string) []string {
	t.Helper()
	res, err := hc.Get(base + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("jwks at %s: %d %v", base, res.StatusCode, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

// TestCluster runs two `varde serve` nodes over one PostgreSQL database
// behind a load balancer, the issuer, and logs people in with a software
// passkey and a real relying party library, each step of a login on
// whichever node the balancer picks: logins, tokens, sessions and the
// audit log are the cluster's, not a node's. Then it kills one node and
// logs in through the other.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two nodes and runs logins for several seconds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	c := startCluster(ctx, t)
	t.Logf("PostgreSQL, a simulated eID and two nodes ready in %v", time.Since(start).Round(time.Millisecond))
	a, b := c.nodes[0], c.nodes[1]
	ab := []string{a.kid, b.kid}
	slices.Sort(ab)
	kidOf := map[string]int{a.kid: 0, b.kid: 1}

	person := loadgen.NewDevice(c.issuer, false)
	c.lb.reset(0, nil)
	if err := loadgen.Enrol(ctx, c.hc, c.issuer, person, "Kari", "Nordmann"); err != nil {
		t.Fatal(err)
	}
	if h := c.lb.steps(); len(h) != 2 || h[0].node == h[1].node {
		t.Errorf("enrolment's begin and finish reached %v, want one node each", h)
	}

	// 1. Each step of a login on the other node from the one before; the
	// ID token verifies against the JWKS fetched through the balancer
	// (loadgen verifies it with go-oidc), and the sub is the same
	// whichever node issued the token.
	logins := make([]*loadgen.Result, 2)
	t.Run("alternating", func(t *testing.T) {
		for first := range logins {
			c.lb.reset(first, nil)
			res, err := c.rp.Login(ctx, person, loadgen.LoginOptions{})
			if err != nil {
				t.Fatalf("login starting at node %d: %v", first, err)
			}
			info, err := c.provider.UserInfo(gooidc.ClientContext(ctx, c.hc), oauth2.StaticTokenSource(res.Token))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if info.Subject != res.IDToken.Subject {
				t.Errorf("userinfo sub %q, ID token sub %q", info.Subject, res.IDToken.Subject)
			}
			want := []string{"POST /par", "GET /authorize", "POST /passkey/login/begin", "POST /passkey/login/finish", "POST /token", "GET /userinfo"}
			hops := c.lb.steps()
			var routes []string
			for i, h := range hops {
				routes = append(routes, h.route)
				if h.node != (first+i)%2 {
					t.Errorf("login starting at node %d: %s reached node %d", first, h.route, h.node)
				}
			}
			if !slices.Equal(routes, want) {
				t.Errorf("login's steps %v, want %v", routes, want)
			}
			// The node that answered the token request signed the ID token.
			if signer, ok := kidOf[kid(t, res.RawIDToken)]; !ok || signer != c.lb.served("POST /token") {
				t.Errorf("ID token signed with key %q of node %d, token request answered by node %d", kid(t, res.RawIDToken), signer, c.lb.served("POST /token"))
			}
			logins[first] = res
		}
		if logins[0].IDToken.Subject != logins[1].IDToken.Subject || logins[0].IDToken.Subject == "" {
			t.Errorf("sub from node a %q, from node b %q: want one pairwise sub", logins[0].IDToken.Subject, logins[1].IDToken.Subject)
		}
	})
	if t.Failed() {
		return
	}

	// 2. Each node signs with its own key and publishes it; each node's
	// JWKS has both.
	t.Run("keys", func(t *testing.T) {
		if a.kid == b.kid {
			t.Fatalf("both nodes have key %q", a.kid)
		}
		if got := []string{kid(t, logins[0].RawIDToken), kid(t, logins[1].RawIDToken)}; !slices.Equal(got, []string{a.kid, b.kid}) {
			t.Errorf("ID tokens from nodes a and b signed with %v, want %v", got, []string{a.kid, b.kid})
		}
		for _, n := range c.nodes {
			if got := jwksKIDs(t, c.hc, n.url); !slices.Equal(got, ab) {
				t.Errorf("%s's JWKS has %v, want both nodes' keys %v", n.name, got, ab)
			}
		}
	})

	// 3. A refresh token node a issued rotates at node b; the old one
	// presented again at node a is reuse, which revokes the grant, so the
	// new one is refused too.
	t.Run("refresh", func(t *testing.T) {
		old := logins[0].Token.RefreshToken
		status, body := c.client.refresh(t, b.url, old)
		next, _ := body["refresh_token"].(string)
		access, _ := body["access_token"].(string)
		if status != http.StatusOK || next == "" || access == "" {
			t.Fatalf("refresh at node b of a token from node a: %d %v", status, body)
		}
		if got := userinfoStatus(t, c.hc, a.url, access); got != http.StatusOK {
			t.Errorf("userinfo at node a with the access token from node b: %d", got)
		}
		if status, body := c.client.refresh(t, a.url, old); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("the rotated refresh token again, at node a: %d %v, want 400 invalid_grant", status, body)
		}
		if status, body := c.client.refresh(t, b.url, next); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("after reuse, the new refresh token at node b: %d %v, want 400 invalid_grant (grant revoked)", status, body)
		}
		if got := userinfoStatus(t, c.hc, b.url, access); got != http.StatusUnauthorized {
			t.Errorf("after reuse, userinfo at node b with the grant's access token: %d, want 401", got)
		}
	})

	// A client assertion node b accepted is refused at node a: the
	// replay cache is the cluster's (RFC 7523 §3, item 7).
	t.Run("assertion", func(t *testing.T) {
		assertion := c.client.assertion(t)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {logins[1].Token.RefreshToken}}
		status, body := c.client.tokenWith(t, b.url, form, assertion)
		next, _ := body["refresh_token"].(string)
		if status != http.StatusOK || next == "" {
			t.Fatalf("refresh at node b: %d %v", status, body)
		}
		logins[1].Token.RefreshToken = next
		form.Set("refresh_token", next)
		if status, body := c.client.tokenWith(t, a.url, form, assertion); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("the same assertion at node a: %d %v, want 401 invalid_client", status, body)
		}
	})

	// 4. A code redeemed at node a is refused at node b, and presenting
	// it again revokes what it gave.
	t.Run("code", func(t *testing.T) {
		c.lb.reset(0, map[string]int{"POST /token": 0})
		res, err := c.rp.Login(ctx, person, loadgen.LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := userinfoStatus(t, c.hc, b.url, res.AccessToken); got != http.StatusOK {
			t.Fatalf("userinfo at node b with the access token from node a: %d", got)
		}
		status, body := c.client.token(t, b.url, url.Values{"grant_type": {"authorization_code"}, "code": {res.Code},
			"code_verifier": {res.CodeVerifier}, "redirect_uri": {clusterCallback}})
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("code redeemed at node a, again at node b: %d %v, want 400 invalid_grant", status, body)
		}
		if got := userinfoStatus(t, c.hc, a.url, res.AccessToken); got != http.StatusUnauthorized {
			t.Errorf("after the code's replay, userinfo at node a with its access token: %d, want 401", got)
		}
	})

	// 5. A session begun at one node serves single sign-on at the other;
	// logging out at node a ends it at node b too, even for a browser
	// that still sends the old cookie.
	t.Run("logout", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		issuer, _ := url.Parse(c.issuer)
		c.lb.reset(1, nil)
		first, err := c.rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
		if err != nil {
			t.Fatal(err)
		}
		cookies := jar.Cookies(issuer)
		c.lb.reset(0, map[string]int{"GET /authorize": 1})
		sso, err := c.rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
		if err != nil || !sso.SSO || sso.IDToken.Subject != first.IDToken.Subject {
			t.Fatalf("authorize at node b with the session from node a: %v, SSO %v; want a code at once", err, sso != nil && sso.SSO)
		}

		c.lb.reset(0, map[string]int{"GET /logout": 0})
		browser := &http.Client{Jar: jar, Transport: c.hc.Transport, CheckRedirect: c.hc.CheckRedirect}
		res, err := browser.Get(c.issuer + "/logout?" + url.Values{"id_token_hint": {sso.RawIDToken},
			"post_logout_redirect_uri": {clusterLogout}, "state": {"s1"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != clusterLogout+"?state=s1" || c.lb.served("GET /logout") != 0 {
			t.Fatalf("logout at node a: %d to %q", res.StatusCode, loc)
		}
		jar.SetCookies(issuer, cookies) // the old cookie, as another tab may still send it
		c.lb.reset(0, map[string]int{"GET /authorize": 1})
		after, err := c.rp.Login(ctx, person, loadgen.LoginOptions{Jar: jar})
		if err != nil {
			t.Fatal(err)
		}
		if after.SSO {
			t.Error("after logout at node a, node b issued a code from the ended session without a login")
		}
	})

	// A login through an upstream eID, each of Varde's steps on the other
	// node from the one before, the relying party naming the eID
	// (provider_hint) or the person choosing it on Varde's login page:
	// what Varde keeps of the upstream flow (state, nonce, PKCE verifier)
	// is in the database. With the hint, node a pushes the upstream
	// request early at PAR (ADR 8) and stores it; node b takes it from
	// the database, or pushes afresh if the browser got there before node
	// a was done, as on loopback it often does.
	t.Run("brokered", func(t *testing.T) {
		number := providersim.DefaultPersons()[0].Identifier.Value
		var subs []string
		for _, tc := range []struct {
			hint  string
			first int
			want  []string
		}{
			{benchUpstreamID, 0, []string{"POST /par", "GET /authorize", "GET /upstream/bankid/callback", "POST /token"}},
			{"", 1, []string{"POST /par", "GET /authorize", "GET /login", "GET /login/start", "GET /upstream/bankid/callback", "POST /token"}},
		} {
			c.lb.reset(tc.first, nil)
			res, err := c.rp.LoginWith(ctx, loadgen.Brokered{Provider: benchUpstreamID, Number: number}, loadgen.LoginOptions{ProviderHint: tc.hint})
			if err != nil {
				t.Fatalf("hint %q: %v", tc.hint, err)
			}
			if res.Claims["provider"] != benchUpstreamID {
				t.Errorf("provider %v", res.Claims["provider"])
			}
			var routes []string
			for i, h := range c.lb.steps() {
				routes = append(routes, h.route)
				if h.node != (tc.first+i)%2 {
					t.Errorf("hint %q: %s reached node %d", tc.hint, h.route, h.node)
				}
			}
			if !slices.Equal(routes, tc.want) {
				t.Errorf("hint %q: steps %v, want %v", tc.hint, routes, tc.want)
			}
			subs = append(subs, res.IDToken.Subject)
		}
		if subs[0] != subs[1] || subs[0] == logins[0].IDToken.Subject {
			t.Errorf("subs %v: want one person's, not the passkey person's %q", subs, logins[0].IDToken.Subject)
		}
	})

	// 6. Node b dies (SIGKILL) while logins run; every login that starts
	// after that completes at node a, the balancer passing over the node
	// that refuses connections. What node b signed still verifies.
	t.Run("kill", func(t *testing.T) {
		c.lb.reset(0, nil)
		// Two logins, then the kill lands while the third runs; then
		// logins until three have begun after it, ten at the most.
		killed := make(chan struct{})
		var failed []string
		tried, begunAfter, completedAfter := 0, 0, 0
		for ; tried < 10 && completedAfter < 3; tried++ {
			if tried == 2 {
				go func() { b.kill(); close(killed) }()
			}
			after := false
			select {
			case <-killed:
				after = true
			default:
			}
			_, err := c.rp.Login(ctx, person, loadgen.LoginOptions{})
			if err != nil {
				failed = append(failed, err.Error())
			}
			if after {
				begunAfter++
				if err == nil {
					completedAfter++
				}
			}
		}
		t.Logf("%d logins, %d of them begun after the kill; failed: %q", tried, begunAfter, failed)
		if begunAfter < 3 || completedAfter != begunAfter {
			t.Errorf("%d of %d logins begun after the kill completed, want at least 3, all (failures: %q)", completedAfter, begunAfter, failed)
		}
		var skipped int
		for _, h := range c.lb.steps() {
			if h.skipped {
				skipped++
			}
		}
		if skipped == 0 {
			t.Error("the balancer never passed over the killed node")
		}
		if got := jwksKIDs(t, c.hc, a.url); !slices.Equal(got, ab) {
			t.Errorf("node a's JWKS after node b died: %v, want %v", got, ab)
		}
		// Node b issued this refresh token; node a rotates it.
		if status, body := c.client.refresh(t, a.url, logins[1].Token.RefreshToken); status != http.StatusOK {
			t.Errorf("refresh at node a of a token from node b, after its death: %d %v", status, body)
		}
	})

	// 7. One audit log, written by both nodes, an unbroken chain.
	t.Run("audit", func(t *testing.T) {
		out, err := runCmd(t, "store", "verify", "--config", a.cfg)
		if err != nil || !strings.Contains(out, "an unbroken hash chain") || !strings.Contains(out, "anchor: ") {
			t.Errorf("store verify: %v\n%s", err, out)
		}
		if strings.Contains(out, clusterDSNSecret) {
			t.Errorf("store verify shows the DSN's password:\n%s", out)
		}
		out, err = runCmd(t, "store", "backup", "--config", a.cfg, "--out", filepath.Join(t.TempDir(), "backup"))
		if err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("store backup of a PostgreSQL store: %v\n%s", err, out)
		}
	})
	// 8. A node's log names its store, never the DSN's password.
	t.Run("logs", func(t *testing.T) {
		for _, n := range c.nodes {
			raw, err := os.ReadFile(n.log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), `store="postgres: database`) {
				t.Errorf("%s's log does not name its store:\n%s", n.name, tail(n.log, 10))
			}
			if strings.Contains(string(raw), clusterDSNSecret) {
				t.Errorf("%s's log shows the DSN's password", n.name)
			}
		}
	})
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}
