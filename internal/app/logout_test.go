package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/varde-eid/varde/internal/app"
	"github.com/varde-eid/varde/internal/config"
	"github.com/varde-eid/varde/internal/keytest"
	"github.com/varde-eid/varde/internal/loadgen"
	"github.com/varde-eid/varde/internal/store"
)

// TestBackchannelLogoutReachesRelyingParty: on a real node, a session's
// end reaches the relying party's back-channel logout endpoint as a
// logout token (Back-Channel Logout 1.0 §2.5), whichever way it ended:
// another person logging in in the same browser, then an RP-initiated
// logout. The token is verified with go-oidc's key set against the
// node's JWKS, and names the sid and sub of the ID token it ends.
func TestBackchannelLogoutReachesRelyingParty(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	endpoint, tokens := logoutEndpoint(t)
	bank := n.addRPWith(t, "bank", "bank.example", func(c *store.Client) { c.BackchannelLogoutURI = endpoint })
	keys := oidc.NewRemoteKeySet(ctx, n.issuer+"/jwks")
	told := func(what string, idToken *loadgen.Result) {
		t.Helper()
		var raw string
		select {
		case raw = <-tokens:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no logout token within 15 s", what)
		}
		payload, err := keys.VerifySignature(ctx, raw)
		if err != nil {
			t.Fatalf("%s: logout token signature: %v", what, err)
		}
		var claims struct {
			Iss, Sub, Aud, Sid string
			Events             map[string]any
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if claims.Iss != n.issuer || claims.Aud != "bank" || claims.Sub != idToken.IDToken.Subject ||
			claims.Sid == "" || claims.Sid != idToken.Claims["sid"] {
			t.Errorf("%s: logout token %+v; want sub %s and sid %v", what, claims, idToken.IDToken.Subject, idToken.Claims["sid"])
		}
		if _, ok := claims.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
			t.Errorf("%s: events %v", what, claims.Events)
		}
	}

	kari, ola := n.enrol(t, false), n.enrol(t, false)
	jar, _ := cookiejar.New(nil)
	first, err := bank.Login(ctx, kari, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatal(err)
	}
	// Another person logs in in the same browser: Kari's session ends.
	second, err := bank.Login(ctx, ola, loadgen.LoginOptions{Jar: jar, Prompt: "login"})
	if err != nil {
		t.Fatal(err)
	}
	if second.IDToken.Subject == first.IDToken.Subject {
		t.Fatal("two persons share a sub")
	}
	told("another person's login", first)

	// The bank logs Ola out (RP-initiated, with the ID token as hint).
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(n.issuer + "/logout?" + url.Values{"id_token_hint": {second.RawIDToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	told("RP-initiated logout", second)
	select {
	case raw := <-tokens:
		t.Errorf("a third logout token: %s", raw)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestBackchannelLogoutAtIdleTimeoutOnANode: on a real node, a session
// left unused for session.idle_timeout ends for the relying party too
// (Back-Channel Logout 1.0 §2.7: expiry included). The node's
// housekeeping sweeps the session, queues the logout token and its
// outbox POSTs it to the bank's endpoint over loopback; go-oidc checks
// it against the node's JWKS: iss, aud, the sub and sid of the bank's ID
// token, the back-channel logout event, no nonce. The node's clock is
// moved on; nobody waits half an hour.
func TestBackchannelLogoutAtIdleTimeoutOnANode(t *testing.T) {
	const idle = 30 * time.Minute
	var clock offsetClock
	salt := make([]byte, 32)
	n, _ := startNodeOpts(t, "127.0.0.1:0", "", map[string]string{config.EnvStoreDSN: filepath.Join(t.TempDir(), "varde.db")},
		app.Options{SubjectSalt: salt, RSASigner: keytest.RSASigner(t), Now: clock.Now},
		func(c *config.Config) { c.Session.IdleTimeout = idle })
	ctx := context.Background()
	endpoint, tokens := logoutEndpoint(t)
	bank := n.addRPWith(t, "bank", "bank.example", func(c *store.Client) { c.BackchannelLogoutURI = endpoint })
	kari := n.enrol(t, false)
	jar, _ := cookiejar.New(nil)
	login, err := bank.Login(ctx, kari, loadgen.LoginOptions{Jar: jar})
	if err != nil {
		t.Fatal(err)
	}
	clock.pass(idle - time.Second)
	n.app.Housekeep(ctx)
	noLogoutToken(t, tokens, "while the session was live")
	clock.pass(time.Minute)
	n.app.Housekeep(ctx)

	raw := nextLogoutToken(t, tokens, "the sweep")
	payload, err := oidc.NewRemoteKeySet(ctx, n.issuer+"/jwks").VerifySignature(ctx, raw)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	events, _ := claims["events"].(map[string]any)
	if claims["iss"] != n.issuer || claims["aud"] != "bank" || claims["sub"] != login.IDToken.Subject ||
		claims["sid"] == nil || claims["sid"] != login.Claims["sid"] || events["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Errorf("logout token %v; want iss %s, aud bank, sub %s, sid %v and the event", claims, n.issuer, login.IDToken.Subject, login.Claims["sid"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Errorf("logout token has a nonce: %v", claims)
	}
	clock.pass(time.Minute)
	n.app.Housekeep(ctx)
	noLogoutToken(t, tokens, "after the first")
}

// nextLogoutToken is the next logout token out of tokens, which must
// come within 15 s of what.
func nextLogoutToken(t *testing.T, tokens <-chan string, what string) string {
	t.Helper()
	select {
	case raw := <-tokens:
		return raw
	case <-time.After(15 * time.Second):
		t.Fatalf("no logout token within 15 s of %s", what)
		return ""
	}
}

// noLogoutToken fails the test if a logout token comes out of tokens
// within 200 ms.
func noLogoutToken(t *testing.T, tokens <-chan string, when string) {
	t.Helper()
	select {
	case raw := <-tokens:
		t.Errorf("a logout token %s: %s", when, raw)
	case <-time.After(200 * time.Millisecond):
	}
}

// logoutEndpoint is a relying party's back-channel logout endpoint,
// served until the test ends: the logout tokens POSTed to it come out
// of tokens.
func logoutEndpoint(t *testing.T) (url string, tokens <-chan string) {
	t.Helper()
	ch := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ch <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/logout", ch
}

// TestHousekeepingSettlesLeftOverEnds: a node ended a session (the write
// that deleted it recorded its end) and stopped before queueing the
// logout token. Housekeeping on the next node queues it, once the end is
// old enough that its own node would have settled it, and only once.
func TestHousekeepingSettlesLeftOverEnds(t *testing.T) {
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	a := clockedNode(t, &now, nil)
	ctx := context.Background()
	bank := &store.Client{ID: "bank", RedirectURIs: []string{"https://bank.example/cb"}, AuthMethod: "client_secret_basic",
		SecretHash: []byte("x"), AllowedLevels: []string{"substantial"}, BackchannelLogoutURI: "https://bank.example/logout"}
	if err := a.Store.AddClient(ctx, bank, nil); err != nil {
		t.Fatal(err)
	}
	s := &store.Session{ID: "s1", PersonID: "p1", Provider: "passkey", Level: "high", AMR: []string{"hwk"},
		Clients: []string{"bank"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.Store.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if ended, err := a.Store.EndSession(ctx, s.ID, now); err != nil || ended == nil {
		t.Fatalf("EndSession = %v, %v", ended, err)
	}
	deliveries := func() []*store.WebhookDelivery {
		t.Helper()
		ds, err := a.Store.ListWebhookDeliveries(ctx, "bank", 0)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	a.Housekeep(ctx)
	if n := len(deliveries()); n != 0 {
		t.Fatalf("%d deliveries right after the end, want none yet", n)
	}
	now = now.Add(time.Minute)
	a.Housekeep(ctx)
	ds := deliveries()
	if len(ds) != 1 || ds[0].URL != bank.BackchannelLogoutURI || !strings.HasPrefix(string(ds[0].Payload), "logout_token=") {
		t.Fatalf("deliveries after housekeeping: %+v", ds)
	}
	now = now.Add(time.Minute)
	a.Housekeep(ctx)
	if n := len(deliveries()); n != 1 {
		t.Errorf("%d deliveries after housekeeping again, want still 1", n)
	}
}

// TestHousekeepingBoundsSettlingEnds: a housekeeping round settles
// pending session ends for a bounded time only; a round whose time is
// up leaves the ends for the next, says so in its warning, and the next
// round settles them.
func TestHousekeepingBoundsSettlingEnds(t *testing.T) {
	now := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	a := clockedNode(t, &now, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	bank := &store.Client{ID: "bank", RedirectURIs: []string{"https://bank.example/cb"}, AuthMethod: "client_secret_basic",
		SecretHash: []byte("x"), AllowedLevels: []string{"substantial"}, BackchannelLogoutURI: "https://bank.example/logout"}
	if err := a.Store.AddClient(ctx, bank, nil); err != nil {
		t.Fatal(err)
	}
	const ends = 50
	for i := range ends {
		s := &store.Session{ID: fmt.Sprintf("s%d", i), PersonID: "p1", Provider: "passkey", Level: "high", AMR: []string{"hwk"},
			Clients: []string{"bank"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := a.Store.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if ended, err := a.Store.EndSession(ctx, s.ID, now); err != nil || ended == nil {
			t.Fatalf("EndSession = %v, %v", ended, err)
		}
	}
	deliveries := func() int {
		t.Helper()
		ds, err := a.Store.ListWebhookDeliveries(ctx, "bank", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	now = now.Add(time.Minute)
	a.SetSettleEndsRound(time.Nanosecond)
	a.Housekeep(ctx)
	if n := deliveries(); n != 0 {
		t.Errorf("%d deliveries after a round with no time to settle ends, want none", n)
	}
	if !strings.Contains(logs.String(), "queue the logout tokens of ended sessions") {
		t.Errorf("no warning for the round cut short:\n%s", logs.String())
	}
	a.SetSettleEndsRound(time.Minute)
	a.Housekeep(ctx)
	if n := deliveries(); n != ends {
		t.Errorf("%d deliveries after the next round, want %d", n, ends)
	}
}
