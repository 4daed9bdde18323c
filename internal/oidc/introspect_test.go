package oidc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/store"
)

// Resource servers for the introspection tests.
const (
	bankAPI = "bank-api" // the bank's and its mobile app's resource server, sector bank.example
	spyAPI  = "spy-api"  // names tax, but is its own sector
)

// addResourceServers registers bankAPI and spyAPI, neither with a
// redirect URI: they never log anyone in.
func (h *harness) addResourceServers() {
	h.t.Helper()
	for _, c := range []*store.Client{
		{ID: bankAPI, AuthMethod: store.AuthClientSecretBasic, SecretHash: h.secret(bankAPI), SectorID: "bank.example",
			IntrospectTokensOf: []string{bankID, mobileID}},
		{ID: spyAPI, AuthMethod: store.AuthClientSecretBasic, SecretHash: h.secret(spyAPI), IntrospectTokensOf: []string{taxID}},
	} {
		if err := h.db.AddClient(context.Background(), c, nil); err != nil {
			h.t.Fatal(err)
		}
	}
}

// introspection is an answer of the introspection endpoint (RFC 7662
// §2.2), decoded strictly, as a resource server reads it.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope"`
	ClientID  string   `json:"client_id"`
	TokenType string   `json:"token_type"`
	Exp       int64    `json:"exp"`
	IAT       int64    `json:"iat"`
	Sub       string   `json:"sub"`
	Iss       string   `json:"iss"`
	AuthTime  int64    `json:"auth_time"`
	ACR       string   `json:"acr"`
	AMR       []string `json:"amr"`
	Provider  string   `json:"provider"`
	Degraded  bool     `json:"degraded"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// introspect asks, as Basic client basicID (or with the form's own
// client authentication), about token tok, and returns the answer,
// failing t unless it is a 200 that must not be cached.
func (h *harness) introspect(t *testing.T, basicID, tok string, form url.Values) introspection {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("token", tok)
	status, hdr, body := h.postForm(PathIntrospection, form, basicID)
	if status != http.StatusOK || hdr.Get("Cache-Control") != "no-store" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("introspection: %d %v %v, want 200 JSON, no-store", status, hdr, body)
	}
	raw, _ := json.Marshal(body)
	var out introspection
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Active && len(body) != 1 {
		// §2.2: nothing but "active" about a token the caller may not
		// know about.
		t.Errorf("inactive answer says more: %v", body)
	}
	return out
}

// TestIntrospection: RFC 7662 — a client learns about its own tokens, and
// a resource server about the access tokens of the clients it names and
// shares a sector with, each with the subject identifier the token's
// client knows the person by and how the person logged in. Everything
// else is {"active": false}, and a refusal to a resource server is
// audited.
func TestIntrospection(t *testing.T) {
	h := newHarness(t)
	h.addResourceServers()
	var meta struct {
		Endpoint string   `json:"introspection_endpoint"`
		Methods  []string `json:"introspection_endpoint_auth_methods_supported"`
	}
	tax, bank, mobile := h.rp(taxID, taxCB), h.rp(bankID, bankCB), h.rp(mobileID, mobileCB)
	if err := tax.provider.Claims(&meta); err != nil || meta.Endpoint != h.issuer+PathIntrospection || slices.Contains(meta.Methods, store.AuthNone) {
		t.Fatalf("metadata: %+v (%v)", meta, err)
	}
	taxLogin := tax.loginFront(h.browser())
	bankLogin := h.loginBank(bank, h.browser())
	mobileLogin := mobile.loginFront(h.browser())
	bankAsBank := func() url.Values { return h.bankAuth(url.Values{}) }

	tests := []struct {
		name    string
		client  string              // Basic client, or ""
		form    func() url.Values   // the form's own client authentication
		login   *login              // whose token
		token   func(*login) string // which of its tokens
		active  bool                // want active
		typ     string              // want token_type
		result  string              // want metric label
		refusal bool                // want an audit event
	}{
		{"own access token", taxID, nil, taxLogin, access, true, "Bearer", introspectionActive, false},
		{"own refresh token", taxID, nil, taxLogin, refresh, true, "", introspectionActive, false},
		{"own token, private_key_jwt", "", bankAsBank, bankLogin, access, true, "Bearer", introspectionActive, false},
		{"resource server, its client's access token", bankAPI, nil, bankLogin, access, true, "Bearer", introspectionActive, false},
		{"resource server, its other client's access token", bankAPI, nil, mobileLogin, access, true, "Bearer", introspectionActive, false},
		{"resource server, its client's refresh token", bankAPI, nil, bankLogin, refresh, false, "", introspectionNotPermitted, true},
		{"resource server, a client it does not name", bankAPI, nil, taxLogin, access, false, "", introspectionNotPermitted, true},
		{"resource server of another sector", spyAPI, nil, taxLogin, access, false, "", introspectionNotPermitted, true},
		{"another client's token", taxID, nil, bankLogin, access, false, "", introspectionNotPermitted, true},
		{"unknown token", taxID, nil, taxLogin, func(*login) string { return rand.Text() }, false, "", introspectionUnknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refusals := len(h.eventsWithReason("introspection_not_permitted"))
			before := h.counter("varde_token_introspections_total", map[string]string{"result": tt.result})
			form := url.Values{}
			if tt.form != nil {
				form = tt.form()
			}
			got := h.introspect(t, tt.client, tt.token(tt.login), form)
			if got.Active != tt.active {
				t.Fatalf("active = %v, want %v", got.Active, tt.active)
			}
			if after := h.counter("varde_token_introspections_total", map[string]string{"result": tt.result}); after != before+1 {
				t.Errorf("varde_token_introspections_total{result=%q} went from %v to %v", tt.result, before, after)
			}
			if n := len(h.eventsWithReason("introspection_not_permitted")) - refusals; n != map[bool]int{true: 1}[tt.refusal] {
				t.Errorf("%d refusal events, want refusal %v", n, tt.refusal)
			}
			if !tt.active {
				return
			}
			c := tt.login.claims
			want := introspection{
				Active: true, Scope: "openid", ClientID: c.AZP, TokenType: tt.typ,
				// The token's expires_in counted from the harness's
				// clock (x/oauth2's Expiry counts from the real one).
				Exp: h.clock.Now().Add(DefaultAccessTokenLifetime).Unix(), IAT: h.clock.Now().Unix(),
				// The subject identifier the token's client has from
				// its ID token, whoever asks.
				Sub: c.Sub, Iss: h.issuer, AuthTime: c.AuthTime, ACR: c.ACR, AMR: c.AMR, Provider: c.Provider,
			}
			if tt.typ == "" {
				want.Exp = h.clock.Now().Add(DefaultRefreshTokenLifetime).Unix()
			}
			if !equalJSON(got, want) {
				t.Errorf("introspection\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func access(l *login) string  { return l.token.AccessToken }
func refresh(l *login) string { return l.token.RefreshToken }

// equalJSON compares two values by their JSON encoding.
func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// eventsWithReason returns the audit events with reason r.
func (h *harness) eventsWithReason(r string) []*store.AuditEvent {
	var out []*store.AuditEvent
	for _, e := range h.auditEvents("token") {
		if e.Reason == r {
			out = append(out, e)
		}
	}
	return out
}

// TestIntrospectionInactive: a token stops being active when it expires,
// when its grant is revoked, and (a refresh token) once rotated; the
// answer then says nothing else (RFC 7662 §2.2).
func TestIntrospectionInactive(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)

	t.Run("rotated refresh token", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		status, _, body := h.postForm(PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {l.token.RefreshToken}}, taxID)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, body)
		}
		if h.introspect(t, taxID, l.token.RefreshToken, nil).Active {
			t.Error("a rotated refresh token is active")
		}
		if !h.introspect(t, taxID, body["refresh_token"].(string), nil).Active {
			t.Error("the new refresh token is not active")
		}
		if !h.introspect(t, taxID, body["access_token"].(string), nil).Active {
			t.Error("the new access token is not active")
		}
	})
	t.Run("revoked", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		h.revokeOK(t, url.Values{"token": {l.token.RefreshToken}}, taxID)
		for _, tok := range []string{l.token.AccessToken, l.token.RefreshToken} {
			if h.introspect(t, taxID, tok, nil).Active {
				t.Error("a token of a revoked grant is active")
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		l := tax.loginFront(h.browser())
		h.clock.Add(DefaultAccessTokenLifetime - time.Second)
		if !h.introspect(t, taxID, l.token.AccessToken, nil).Active {
			t.Fatal("access token inactive before it expires")
		}
		h.clock.Add(time.Second)
		if h.introspect(t, taxID, l.token.AccessToken, nil).Active {
			t.Error("access token active at its expiry")
		}
		if !h.introspect(t, taxID, l.token.RefreshToken, nil).Active {
			t.Error("refresh token inactive before it expires")
		}
	})
}

// TestIntrospectionDPoP: a token bound to a DPoP key says so, with the
// key's thumbprint (RFC 9449 §6.2), so the resource server can check
// the proof that comes with it.
func TestIntrospectionDPoP(t *testing.T) {
	h := newHarness(t)
	tax := h.rp(taxID, taxCB)
	k := h.dpopHolder()
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	resp, _ := h.browser().get(tax.authorizeURL(state, nonce, verifier))
	tok, err := tax.conf.Exchange(k.context(), h.callback(resp, taxCB).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("exchange: %v %v", tok, err)
	}
	got := h.introspect(t, taxID, tok.AccessToken, nil)
	if !got.Active || got.TokenType != "DPoP" || got.Cnf == nil || got.Cnf.JKT != k.jkt {
		t.Errorf("introspection of a bound access token: %+v, want active, token_type DPoP, cnf.jkt %s", got, k.jkt)
	}
	// §5: a confidential client's refresh token is bound to the client,
	// which authenticates to use it, not to the key.
	if got := h.introspect(t, taxID, tok.RefreshToken, nil); !got.Active || got.Cnf != nil || got.TokenType != "" {
		t.Errorf("introspection of the refresh token: %+v, want active, no cnf, no token_type", got)
	}
}

// TestIntrospectionRefusals: the endpoint takes only authenticated
// clients (RFC 7662 §2.1) and a token; the errors are the token
// endpoint's (RFC 6749 §5.2).
func TestIntrospectionRefusals(t *testing.T) {
	h := newHarness(t)
	l := h.rp(publicID, kioskCB).loginFront(h.browser())
	tests := []struct {
		name   string
		form   url.Values
		basic  string
		status int
		code   string
	}{
		{"public client", url.Values{"client_id": {publicID}, "token": {l.token.AccessToken}}, "", http.StatusUnauthorized, "invalid_client"},
		{"no client", url.Values{"token": {l.token.AccessToken}}, "", http.StatusUnauthorized, "invalid_client"},
		{"no token", url.Values{}, taxID, http.StatusBadRequest, "invalid_request"},
		{"two tokens", url.Values{"token": {"a", "b"}}, taxID, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := h.postForm(PathIntrospection, tt.form, tt.basic)
			if status != tt.status || body["error"] != tt.code {
				t.Errorf("%d %v, want %d %s", status, body, tt.status, tt.code)
			}
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		h.secrets[taxID] = "not-the-secret-" + rand.Text()
		status, _, body := h.postForm(PathIntrospection, url.Values{"token": {l.token.AccessToken}}, taxID)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%d %v, want 401 invalid_client", status, body)
		}
	})
}

// TestIntrospectionWrongMethod: a method the introspection endpoint
// does not serve is answered 405 with Allow and an OAuth JSON
// invalid_request that the resource server's library reads, and, as
// the endpoint is server to server (ADR 17), no CORS.
func TestIntrospectionWrongMethod(t *testing.T) {
	h := newHarness(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodOptions} {
		req, _ := http.NewRequest(m, h.issuer+PathIntrospection, nil)
		req.Header.Set("Origin", "https://spa.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || err != nil || body.Error != "invalid_request" || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d Allow %q %q %v", m, resp.StatusCode, resp.Header.Get("Allow"), body.Error, err)
		}
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", m, v)
		}
	}
}
