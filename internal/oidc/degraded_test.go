package oidc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/assurance"
	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/store"
)

// TestDegradedModePolicy: a login the broker let through below the
// requested level (no provider meeting it was up) gets tokens only for a
// client that registered a degraded-mode level, with acr the level
// actually reached and "degraded": true; a client without such a policy
// never gets a lower level.
func TestDegradedModePolicy(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "substantial", true
	h.mu.Unlock()
	high := oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh)

	// Without a policy the person is sent back to log in, not let through.
	tax := h.rp(taxID, taxCB)
	resp, _ := h.browser().get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier(), high))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, taxCB) {
		t.Fatalf("a degraded login was accepted by a client without a policy: %s", loc)
	}

	c, err := h.db.GetClient(ctx, taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.DegradedLevel = "substantial"
	if err := h.db.PutClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	l := tax.loginFront(h.browser(), high)
	if l.claims.ACR != assurance.ACRSubstantial {
		t.Errorf("acr = %q, want the level reached", l.claims.ACR)
	}
	var extra struct {
		Degraded bool `json:"degraded"`
	}
	if err := l.idt.Claims(&extra); err != nil || !extra.Degraded {
		t.Errorf("degraded claim missing (%v)", err)
	}

	// The policy has a floor: a degraded login below it is refused too.
	h.mu.Lock()
	h.loginLevel = "low"
	h.mu.Unlock()
	resp, _ = h.browser().get(tax.authorizeURL("s", "n", oauth2.GenerateVerifier(), high))
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, taxCB) {
		t.Fatalf("a degraded login below the client's floor was accepted: %s", loc)
	}
}

// TestDegradedIsDecidedPerRequest: "degraded" says that this request
// was let through below the level it asked for, not that the session
// once was for another client. A degraded session that fully meets a
// request, or that a client without a degraded-mode policy accepts at
// the level it asked for, gives tokens without the mark, by single
// sign-on or at the end of a login alike.
func TestDegradedIsDecidedPerRequest(t *testing.T) {
	h := newHarness(t)
	const policyID, policyCB = "policy", "https://policy.example/cb"
	if err := h.db.AddClient(t.Context(), &store.Client{ID: policyID, AuthMethod: store.AuthNone,
		RedirectURIs: []string{policyCB}, DegradedLevel: "substantial"}, nil); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "substantial", true
	h.mu.Unlock()
	policy, kiosk := h.rp(policyID, policyCB), h.rp(publicID, kioskCB)
	acr := func(v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("acr_values", v) }
	degraded := func(l *login) bool {
		t.Helper()
		var extra struct {
			Degraded *bool `json:"degraded"`
		}
		if err := l.idt.Claims(&extra); err != nil {
			t.Fatal(err)
		}
		return extra.Degraded != nil && *extra.Degraded
	}

	b := h.browser()
	steps := []struct {
		name   string
		rp     *rp
		acr    string
		logins int64 // logins so far after the step
		want   bool
	}{
		{"policy client asks high: let through", policy, assurance.ACRHigh, 1, true},
		{"client without a policy asks substantial", kiosk, assurance.ACRSubstantial, 1, false},
		{"policy client asks substantial", policy, assurance.ACRSubstantial, 1, false},
		{"policy client asks high again", policy, assurance.ACRHigh, 1, true},
	}
	for _, s := range steps {
		l := s.rp.loginFront(b, acr(s.acr))
		if got := degraded(l); got != s.want || h.logins.Load() != s.logins || l.claims.ACR != assurance.ACRSubstantial {
			t.Errorf("%s: degraded = %v, want %v; logins = %d, want %d; acr = %s",
				s.name, got, s.want, h.logins.Load(), s.logins, l.claims.ACR)
		}
	}

	// A degraded login that ends at a client whose request it fully meets.
	if l := kiosk.loginFront(h.browser(), acr(assurance.ACRSubstantial)); degraded(l) || h.logins.Load() != 2 {
		t.Errorf("a new degraded login meeting the request: degraded = %v, logins = %d", degraded(l), h.logins.Load())
	}
}

// outageHarness is a harness whose DegradedNow says whether an outage
// is on: at first it is; the returned func switches it.
func outageHarness(t *testing.T) (*harness, func(bool)) {
	t.Helper()
	outage := true
	h := newHarness(t, func(h *harness) {
		h.p.DegradedNow = func(*store.AuthRequest, *store.Client) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return outage
		}
	})
	return h, func(on bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		outage = on
	}
}

// policyCB is the redirect URI of outagePolicy's client.
const policyCB = "https://policy.example/cb"

// outagePolicy is outageHarness with a client whose degraded-mode level
// is substantial, and logins at substantial marked degraded, as the
// broker makes them while no provider reaching high is up.
func outagePolicy(t *testing.T) (*harness, func(bool), *rp) {
	t.Helper()
	h, outage := outageHarness(t)
	if err := h.db.AddClient(t.Context(), &store.Client{ID: "policy", AuthMethod: store.AuthNone,
		RedirectURIs: []string{policyCB}, DegradedLevel: "substantial"}, nil); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "substantial", true
	h.mu.Unlock()
	return h, outage, h.rp("policy", policyCB)
}

// TestDegradedSessionNotReusedAfterTheOutage: a session let through
// below the level asked for under a client's degraded-mode policy is not
// reused by single sign-on once a provider that reaches that level is up
// again: the person logs in anew, as for a client without the policy.
// While the outage lasts it is reused.
func TestDegradedSessionNotReusedAfterTheOutage(t *testing.T) {
	h, outage, policy := outagePolicy(t)
	high := oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh)
	b := h.browser()
	policy.loginFront(b, high)
	policy.loginFront(b, high)
	if n := h.logins.Load(); n != 1 {
		t.Fatalf("logins during the outage = %d, want 1 (single sign-on)", n)
	}
	outage(false)
	policy.loginFront(b, high)
	if n := h.logins.Load(); n != 2 {
		t.Errorf("logins after the outage = %d, want 2 (the degraded session is not reused)", n)
	}
}

// TestRefreshKeepsTheLevelOfTheLogin: an ID token issued on refresh
// (OIDC Core §12.2) states the login the grant came from: its acr, amr
// and, for a login let through by the degraded-mode policy, "degraded",
// as introspection does. Neither the end of the outage nor a step-up in
// the same browser (acr_values with prompt=login) changes what an
// earlier grant says; the step-up's own grant has the level it reached
// and no mark.
func TestRefreshKeepsTheLevelOfTheLogin(t *testing.T) {
	h, outage := outageHarness(t)
	c, err := h.db.GetClient(t.Context(), taxID)
	if err != nil {
		t.Fatal(err)
	}
	c.DegradedLevel = "substantial"
	if err := h.db.PutClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "substantial", true
	h.mu.Unlock()
	idClaims := func(body map[string]any) map[string]any {
		t.Helper()
		idt, err := jwt.ParseSigned(body2str(body, "id_token"), []jose.SignatureAlgorithm{keys.Algorithm})
		if err != nil {
			t.Fatalf("id_token: %v (%v)", err, body)
		}
		var claims map[string]any
		if err := idt.UnsafeClaimsWithoutVerification(&claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	high := func(prompt string) func(url.Values) {
		return func(q url.Values) {
			q.Set("acr_values", assurance.ACRHigh)
			q.Set("scope", "openid offline_access")
			if prompt != "" {
				q.Set("prompt", prompt)
			}
		}
	}

	b := h.browser()
	first := h.taxTokensWith(b, high(""))
	if cl := idClaims(first); cl["acr"] != assurance.ACRSubstantial || cl["degraded"] != true {
		t.Fatalf("degraded login: acr %v, degraded %v", cl["acr"], cl["degraded"])
	}
	rt := body2str(first, "refresh_token")

	// The outage ends and the person steps up in the same browser.
	outage(false)
	h.mu.Lock()
	h.loginLevel, h.loginDegraded = "high", false
	h.mu.Unlock()
	stepped := h.taxTokensWith(b, high("login"))
	if cl := idClaims(stepped); cl["acr"] != assurance.ACRHigh || cl["degraded"] != nil {
		t.Errorf("step-up: acr %v, degraded %v; want high, no mark", cl["acr"], cl["degraded"])
	}

	status, refreshed := h.refresh(rt)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	cl := idClaims(refreshed)
	if cl["acr"] != assurance.ACRSubstantial || cl["degraded"] != true {
		t.Errorf("refreshed: acr %v, degraded %v; want the degraded login's substantial, degraded", cl["acr"], cl["degraded"])
	}
	if amr, _ := cl["amr"].([]any); len(amr) != 3 || amr[0] != "hwk" {
		t.Errorf("refreshed: amr %v, want the login's", cl["amr"])
	}
	got := h.introspect(t, taxID, body2str(refreshed, "access_token"), nil)
	if !got.Active || got.ACR != assurance.ACRSubstantial || !got.Degraded {
		t.Errorf("introspection of the refreshed access token: %+v", got)
	}
	got = h.introspect(t, taxID, body2str(stepped, "access_token"), nil)
	if !got.Active || got.ACR != assurance.ACRHigh || got.Degraded {
		t.Errorf("introspection of the step-up's access token: %+v", got)
	}
}

// TestDegradedSessionWithoutPrompt: prompt=none (OIDC Core §3.1.2.1)
// reuses a degraded session while the outage lasts, and the tokens say
// it is degraded; once a provider that reaches the level asked for is
// up, it is login_required, never a code at the lower level.
func TestDegradedSessionWithoutPrompt(t *testing.T) {
	h, outage, policy := outagePolicy(t)
	high := oauth2.SetAuthURLParam("acr_values", assurance.ACRHigh)
	none := oauth2.SetAuthURLParam("prompt", "none")
	b := h.browser()
	policy.loginFront(b, high)

	l := policy.loginFront(b, high, none)
	var extra struct {
		Degraded bool `json:"degraded"`
	}
	if err := l.idt.Claims(&extra); err != nil || !extra.Degraded || l.claims.ACR != assurance.ACRSubstantial {
		t.Errorf("prompt=none during the outage: acr %q, degraded %v (%v)", l.claims.ACR, extra.Degraded, err)
	}

	outage(false)
	resp, _ := b.get(policy.authorizeURL("s", "n", oauth2.GenerateVerifier(), high, none))
	if q := h.callback(resp, policyCB); q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Errorf("prompt=none after the outage: %v", q)
	}
	if n := h.logins.Load(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}
}
