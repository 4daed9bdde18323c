package oidc

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	xoauth2 "golang.org/x/oauth2"

	"github.com/varde-eid/varde/internal/keys"
	"github.com/varde-eid/varde/internal/oauth2"
	"github.com/varde-eid/varde/internal/store"
)

// TestRS256ClientWithoutRSAKey: a node without an RSA key refuses a
// login of a client registered for RS256 ID tokens before the person
// authenticates, with temporarily_unavailable, which sends the client
// to try again (through a load balancer, at a node that has one): at
// PAR (503, Retry-After), and at the client's redirect URI from the
// authorization endpoint, also for a request pushed while it could be
// served, which is left unspent. A code issued before the client
// switched is not signed ES256 instead (the relying party would refuse
// it or, worse, take it against its registration; ADR 32) but refused
// unspent the same way. Its discovery lists ES256 alone.
func TestRS256ClientWithoutRSAKey(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	switchTo := func(id, alg string) {
		t.Helper()
		c, err := h.db.GetClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c.IDTokenAlg = alg
		if err := h.db.PutClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	unavailable := func(what string, status int, hdr http.Header, body map[string]any) {
		t.Helper()
		desc, _ := body["error_description"].(string)
		if status != http.StatusServiceUnavailable || body["error"] != oauth2.CodeTemporarilyUnavailable ||
			hdr.Get("Retry-After") == "" || !strings.Contains(desc, "RS256") || body["id_token"] != nil {
			t.Errorf("%s of an RS256 client at a node without an RSA key: %d %v Retry-After %q; want 503 temporarily_unavailable naming RS256, with Retry-After",
				what, status, body, hdr.Get("Retry-After"))
		}
	}
	redirected := func(what string, q url.Values, state string) {
		t.Helper()
		if q.Get("error") != oauth2.CodeTemporarilyUnavailable || q.Get("state") != state || q.Get("code") != "" {
			t.Errorf("%s of an RS256 client at a node without an RSA key: %v; want temporarily_unavailable with the state", what, q)
		}
	}
	if algs := h.p.Metadata().IDTokenSigningAlgValuesSupported; len(algs) != 1 || algs[0] != "ES256" {
		t.Fatalf("a node without an RSA key lists %v, want ES256 alone", algs)
	}

	// A code issued, and a request pushed, while the clients were ES256.
	verifier := xoauth2.GenerateVerifier()
	code := h.code(h.browser(), verifier)
	authURL, status, body := h.pushBank(bankForm("st", "n", xoauth2.GenerateVerifier()))
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d %v", status, body)
	}
	switchTo(taxID, store.IDTokenRS256)
	switchTo(bankID, store.IDTokenRS256)
	logins := h.logins.Load()

	status, hdr, body := h.postForm(PathToken, codeForm(code, verifier), taxID)
	unavailable("code exchange", status, hdr, body)
	status, hdr, body = h.postForm(PathPAR, h.bankAuth(bankForm("st2", "n2", xoauth2.GenerateVerifier())), "")
	unavailable("PAR", status, hdr, body)
	b := h.browser()
	resp, _ := b.get(h.issuer + PathAuthorize + "?" + taxQuery(nil).Encode())
	redirected("authorization request", h.callback(resp, taxCB), "st")
	resp, _ = b.get(authURL)
	redirected("pushed authorization request", h.callback(resp, bankCB), "st")
	if n := h.logins.Load() - logins; n != 0 {
		t.Errorf("%d logins began; want none", n)
	}
	if n := h.counter("varde_oidc_errors_total", map[string]string{"endpoint": "authorize", "error": "temporarily_unavailable"}); n != 2 {
		t.Errorf("temporarily_unavailable at authorize counted %v times, want 2", n)
	}

	// Neither the code nor the pushed request was spent.
	switchTo(taxID, store.IDTokenES256)
	switchTo(bankID, store.IDTokenES256)
	if status, _, body := h.postForm(PathToken, codeForm(code, verifier), taxID); status != http.StatusOK {
		t.Errorf("the code, redeemed once the client can be served: %d %v", status, body)
	}
	resp, _ = h.browser().get(authURL)
	if q := h.callback(resp, bankCB); q.Get("code") == "" {
		t.Errorf("the pushed request, used once the client can be served: %v", q)
	}
}

// TestRS256LogoutTokenRenewed: the logout token of a client registered
// for RS256 is signed RS256 by the node's RSA key (Back-Channel Logout
// 1.0 §2.6: validated as its ID tokens are), and signed anew with RS256
// when the outbox renews it; an ES256 client's stays ES256.
func TestRS256LogoutTokenRenewed(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, keys.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := keys.New(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(h *harness) { h.p.RSASigner = rsaSigner })
	ctx := context.Background()
	bank, err := h.db.GetClient(ctx, bankID)
	if err != nil {
		t.Fatal(err)
	}
	legacy := *bank
	legacy.ID, legacy.IDTokenAlg = "legacy", store.IDTokenRS256
	if err := h.db.PutClient(ctx, &legacy); err != nil {
		t.Fatal(err)
	}
	_, toks, err := h.p.logoutTokens(ctx, []*store.Client{&legacy, bank}, &store.Session{ID: "s1", PersonID: h.person.ID}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	later := h.clock.Now().Add(time.Minute)
	for i, want := range []struct{ alg, kid string }{{"RS256", rsaSigner.KID()}, {"ES256", h.p.Signer.KID()}} {
		renewed, err := h.p.RenewLogoutToken(logoutForm(toks[i]), later)
		if err != nil {
			t.Fatal(err)
		}
		form, err := url.ParseQuery(string(renewed))
		if err != nil {
			t.Fatal(err)
		}
		for name, raw := range map[string]string{"signed": toks[i], "renewed": form.Get("logout_token")} {
			tok, err := jwt.ParseSigned(raw, keys.Algorithms)
			if err != nil {
				t.Fatal(err)
			}
			if h := tok.Headers[0]; h.Algorithm != want.alg || h.KeyID != want.kid {
				t.Errorf("%s logout token for a client registered for %s: alg %s by %s", name, want.alg, h.Algorithm, h.KeyID)
			}
		}
	}

	// The bank registers for RS256 while its token waits: the token is
	// renewed for what the bank now verifies, as it goes to the URI the
	// bank has now (LogoutURI).
	bank.IDTokenAlg = store.IDTokenRS256
	if err := h.db.PutClient(ctx, bank); err != nil {
		t.Fatal(err)
	}
	renewed, err := h.p.RenewLogoutToken(logoutForm(toks[1]), later)
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(renewed))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(form.Get("logout_token"), keys.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	if h := tok.Headers[0]; h.Algorithm != "RS256" || h.KeyID != rsaSigner.KID() {
		t.Errorf("logout token of a client that switched to RS256, renewed: alg %s by %s", h.Algorithm, h.KeyID)
	}

	// A node without an RSA key cannot renew it, and says so with
	// ErrNoRSAKey: the outbox leaves it to a node with one
	// (webhook.Notifier.RenewElsewhere), never signs it ES256.
	h.p.RSASigner = nil
	if out, err := h.p.RenewLogoutToken(logoutForm(toks[0]), later); !errors.Is(err, ErrNoRSAKey) || errors.Is(err, ErrNotLogoutDelivery) || out != nil {
		t.Errorf("RenewLogoutToken of an RS256 client's token at a node without an RSA key = %q, %v; want ErrNoRSAKey alone", out, err)
	}
}

// TestRS256EndsLeftToANodeWithTheKey: at a node without an RSA key, the
// end of a session with an RS256 client in it is left pending for a
// node with one, uncounted, and the ends of other sessions, at the end
// of a request or behind it in housekeeping, are settled all the same:
// one such session does not hold up every relying party's logout.
func TestRS256EndsLeftToANodeWithTheKey(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ctx := context.Background()
	h.rs256Client("legacy")
	// ended ends a session of the person with the clients in it, as a
	// node that stopped right after would leave it.
	ended := func(id string, clients ...string) *store.Session {
		t.Helper()
		now := h.clock.Now()
		s := &store.Session{ID: id, PersonID: h.person.ID, Provider: "passkey", Level: "high", AMR: []string{"hwk"},
			Clients: clients, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := h.db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		e, err := h.db.EndSession(ctx, id, now)
		if err != nil || e == nil {
			t.Fatalf("EndSession(%s) = %v, %v", id, e, err)
		}
		return e
	}
	pending := func() []string {
		t.Helper()
		ss, err := h.db.PendingSessionEnds(ctx, h.clock.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range ss {
			ids = append(ids, s.ID)
		}
		return ids
	}

	// Left over: the RS256 session's end first, then a bank session's.
	ended("s-legacy", "legacy")
	h.clock.Add(time.Second)
	ended("s-bank", bankID)
	h.clock.Add(LeftoverEndsAfter + time.Second)
	if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 1 || err != nil {
		t.Errorf("SettleLeftoverEnds at a node without an RSA key = %d, %v; want the bank's session settled", n, err)
	}
	if n := len(h.deliveries(bankID)); n != 1 {
		t.Errorf("bank deliveries: %d, want 1", n)
	}
	// Two sessions ended by one request (a block, or the end of the
	// person's other sessions), the RS256 one first: the other's
	// relying party is told at once.
	h.p.SessionsEnded(ctx, "blocked", []*store.Session{ended("s-legacy-2", "legacy"), ended("s-tax", taxID)})
	if n := len(h.deliveries(taxID)); n != 1 {
		t.Errorf("tax deliveries at the end of its session: %d, want 1", n)
	}
	if got := pending(); !slices.Equal(got, []string{"s-legacy", "s-legacy-2"}) || len(h.deliveries("legacy")) != 0 {
		t.Fatalf("pending ends %v, legacy deliveries %d; want the RS256 sessions' alone, none sent", got, len(h.deliveries("legacy")))
	}
	// Rounds at the node without the key count no failure against it:
	// a day of them does not give it up.
	for range 30 {
		h.clock.Add(time.Hour)
		if _, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); err != nil {
			t.Fatalf("SettleLeftoverEnds with the RS256 end left over: %v", err)
		}
	}
	if got := pending(); len(got) != 2 {
		t.Fatalf("pending ends after a day at the node without an RSA key: %v; want both RS256 sessions'", got)
	}

	// A node with the key settles it, RS256.
	k, err := rsa.GenerateKey(rand.Reader, keys.MinRSABits)
	if err != nil {
		t.Fatal(err)
	}
	if h.p.RSASigner, err = keys.New(k, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 2 || err != nil {
		t.Fatalf("SettleLeftoverEnds at a node with an RSA key = %d, %v; want 2", n, err)
	}
	ds := h.deliveries("legacy")
	if len(ds) != 2 {
		t.Fatalf("legacy deliveries: %d, want 2", len(ds))
	}
	for _, d := range ds {
		form, err := url.ParseQuery(string(d.Payload))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(form.Get("logout_token"), keys.Algorithms)
		if err != nil {
			t.Fatal(err)
		}
		if alg := tok.Headers[0].Algorithm; alg != "RS256" {
			t.Errorf("legacy's logout token signed %s, want RS256", alg)
		}
	}
}

// countingClients counts the clients read, by ID.
type countingClients struct {
	store.Clients
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingClients) GetClient(ctx context.Context, id string) (*store.Client, error) {
	c.mu.Lock()
	c.reads[id]++
	c.mu.Unlock()
	return c.Clients.GetClient(ctx, id)
}

func (c *countingClients) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[id]
}

// countingOutbox counts the pending ends read, and the reads, of each
// round.
type countingOutbox struct {
	LogoutOutbox
	mu          sync.Mutex
	reads, rows int
}

func (o *countingOutbox) PendingSessionEnds(ctx context.Context, before time.Time, limit int) ([]*store.Session, error) {
	ends, err := o.LogoutOutbox.PendingSessionEnds(ctx, before, limit)
	o.mu.Lock()
	o.reads++
	o.rows += len(ends)
	o.mu.Unlock()
	return ends, err
}

// take returns the reads and ends read since it was last called.
func (o *countingOutbox) take() (reads, rows int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	reads, rows, o.reads, o.rows = o.reads, o.rows, 0, 0
	return reads, rows
}

// TestRS256EndsPassedOverOnce: in a cluster where no node has an RSA
// key, the ends of sessions with a client registered for RS256 stay
// pending (ADR 32). A node passes each over once, warning of it once,
// and does not try it again every round: over a day of rounds, each
// end is tried once every keylessRetryAfter, the warning is not
// repeated, and a round between reads the pending ends once, not page
// after page, each page again. Once the client is registered for ES256
// again, the node settles them at their next try.
func TestRS256EndsPassedOverOnce(t *testing.T) {
	h := newHarness(t)
	h.withBackchannel()
	ctx := context.Background()
	var logs bytes.Buffer
	h.p.Log = slog.New(slog.NewTextHandler(&logs, nil))
	clients := &countingClients{Clients: h.p.Clients, reads: map[string]int{}}
	h.p.Clients = clients
	outbox := &countingOutbox{LogoutOutbox: h.p.LogoutOutbox}
	h.p.LogoutOutbox = outbox
	legacy := h.rs256Client("legacy")
	const ends = 2*settleEndsBatch + 50 // more than a page
	for i := range ends {
		h.endedSession(fmt.Sprintf("s-legacy-%03d", i), "legacy")
	}
	h.clock.Add(LeftoverEndsAfter + time.Second)
	const warning = "back-channel logout left to a node with an RSA key"
	const rounds = 24 * 60 / 5 // a day, a round every 5 minutes
	heavy := 0                 // rounds reading more than the ends and a page, or more than once
	for i := range rounds {
		if n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now()); n != 0 || err != nil {
			t.Fatalf("round %d: SettleLeftoverEnds = %d, %v; want 0", i, n, err)
		}
		if reads, rows := outbox.take(); reads > 1 || rows > ends+settleEndsBatch {
			heavy++
		}
		h.clock.Add(5 * time.Minute)
	}
	if got := strings.Count(logs.String(), warning); got != 1 || !strings.Contains(logs.String(), fmt.Sprintf("sessions=%d", ends)) {
		t.Errorf("%d warnings over a day of rounds, want one naming the %d sessions:\n%s", got, ends, logs.String())
	}
	// Tried in the first round, then every keylessRetryAfter: 5 times
	// in a day of 6-hour retries, not once a round.
	tries := int(24*time.Hour/keylessRetryAfter + 1)
	if got, want := clients.count("legacy"), ends*tries; got > want {
		t.Errorf("the RS256 client read %d times in %d rounds, want at most %d (%d ends tried once every %v)",
			got, rounds, want, ends, keylessRetryAfter)
	}
	if heavy > tries {
		t.Errorf("%d of %d rounds read the pending ends more than once; want only the %d that try them", heavy, rounds, tries)
	}

	legacy.IDTokenAlg = store.IDTokenES256
	if err := h.db.PutClient(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	settled := 0
	for range int(keylessRetryAfter/(5*time.Minute)) + 1 {
		n, err := h.p.SettleLeftoverEnds(ctx, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		settled += n
		h.clock.Add(5 * time.Minute)
	}
	if settled != ends || len(h.deliveries("legacy")) != ends {
		t.Errorf("settled %d, %d deliveries once the client wants ES256; want %d", settled, len(h.deliveries("legacy")), ends)
	}
}

// rs256Client registers a client with ID id, as the bank but for its
// ID tokens, signed RS256, and its backchannel_logout_uri.
func (h *harness) rs256Client(id string) *store.Client {
	h.t.Helper()
	ctx := context.Background()
	bank, err := h.db.GetClient(ctx, bankID)
	if err != nil {
		h.t.Fatal(err)
	}
	c := *bank
	c.ID, c.IDTokenAlg, c.BackchannelLogoutURI = id, store.IDTokenRS256, "https://"+id+".example/backchannel-logout"
	if err := h.db.PutClient(ctx, &c); err != nil {
		h.t.Fatal(err)
	}
	return &c
}
